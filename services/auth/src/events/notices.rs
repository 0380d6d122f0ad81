//! Consumer `auth-webhook-notices`: messaging's `webhook_endpoint.disabled` becomes a mail to
//! the workspace's owner and admins. The platform inbox records the event id in the transaction
//! that queues the mail, so a redelivered event mails nobody twice.

use nexus_platform::config::NatsConfig;
use nexus_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use nexus_proto::events::WebhookEndpointDisabled;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::notices::{self, EndpointDisabled};

/// Messaging's subject (its crate is not a dependency of auth's; the proto is the contract).
pub const ENDPOINT_DISABLED: &str = "nexus.messaging.webhook_endpoint.disabled";

pub const DURABLE: &str = "auth-webhook-notices";

pub fn spec(nats: &NatsConfig) -> ConsumerSpec {
    ConsumerSpec::new("messaging", DURABLE, ENDPOINT_DISABLED, nats)
}

pub struct EndpointDisabledHandler {
    /// Where links in mail point (`auth.public_url`).
    pub public_url: String,
}

#[async_trait::async_trait]
impl EventHandler for EndpointDisabledHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let e: WebhookEndpointDisabled = event.decode()?;
        // The consumer opened a tenant transaction for the envelope's workspace (and checked the
        // payload names the same one): the owners read are that workspace's.
        if event.tenant.is_none() {
            return Err(HandleError::Permanent("an endpoint without a workspace".into()));
        }
        let endpoint_id = Uuid::parse_str(&e.endpoint_id)
            .map_err(|_| HandleError::Permanent(format!("endpoint id {:?} is not a uuid", e.endpoint_id)))?;
        let disabled = EndpointDisabled { endpoint_id, url: &e.url, reason: &e.reason };
        let sent = notices::webhook_endpoint_disabled(tx, &self.public_url, &disabled).await?;
        tracing::info!(endpoint = %endpoint_id, recipients = sent, "webhook endpoint disabled: owners notified");
        Ok(())
    }
}
