//! Other services' public events as webhook messages: content's page events become messages of
//! the catalogue's `page.*` types for the workspace's endpoints. The message's event key is the
//! event id, and the consumer's inbox records it in the same transaction, so a redelivered event
//! makes no second message.

use nexus_platform::config::NatsConfig;
use nexus_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use nexus_proto::events::{PageLeadCaptured, PagePublished, PageUnpublished};
use serde_json::json;
use sqlx::PgConnection;

use crate::app::webhooks::publish;

/// The durable consumer of content's page events.
pub fn spec(nats: &NatsConfig) -> ConsumerSpec {
    ConsumerSpec::new("content", "messaging-webhooks-content", "nexus.content.page.>", nats)
}

pub struct ContentFanout;

#[async_trait::async_trait]
impl EventHandler for ContentFanout {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (event_type, data) = match event.subject.as_str() {
            "nexus.content.page.lead_captured" => {
                let e: PageLeadCaptured = event.decode()?;
                let data = json!({
                    "page_id": e.page_id, "lead_id": e.lead_id, "slug": e.slug, "language": e.language,
                    "name": e.name, "email": e.email, "phone": e.phone, "message": e.message, "consent": e.consent,
                });
                ("page.lead_captured", data)
            }
            "nexus.content.page.published" => {
                let e: PagePublished = event.decode()?;
                let data = json!({"page_id": e.page_id, "slug": e.slug, "version": e.version, "language": e.language});
                ("page.published", data)
            }
            "nexus.content.page.unpublished" => {
                let e: PageUnpublished = event.decode()?;
                ("page.unpublished", json!({"page_id": e.page_id, "slug": e.slug}))
            }
            // Not a public event type: nothing to send.
            _ => return Ok(()),
        };
        let tenant = event.tenant.ok_or_else(|| HandleError::Permanent(format!("{event_type} without a workspace")))?;
        nexus_platform::db::enter_tenant(tx, tenant).await?;
        publish(tx, tenant, event_type, &format!("event:{}", event.event_id), &data).await?;
        Ok(())
    }
}
