//! The media job: messaging's own `message.media_pending` events, each copying one inbound
//! WhatsApp media into storage (durable consumer `messaging-media`). The platform inbox makes a
//! redelivery change nothing, and the job itself skips media already stored or failed for good;
//! passing failures go back to the consumer's backoff and, after its last delivery, to the
//! dead letters.

use std::sync::Arc;

use nexus_platform::config::NatsConfig;
use nexus_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use nexus_proto::events as ev;
use sqlx::PgConnection;

use crate::app::media::CopyOutcome;
use crate::app::whatsapp::WhatsApp;
use crate::events::whatsapp::MEDIA_PENDING;

pub const DURABLE: &str = "messaging-media";

pub fn spec(nats: &NatsConfig) -> ConsumerSpec {
    ConsumerSpec::new("messaging", DURABLE, MEDIA_PENDING, nats)
}

pub struct MediaHandler {
    pub wa: Arc<WhatsApp>,
    /// The consumer's delivery bound: the job gives up on the last one.
    pub max_deliveries: u32,
}

#[async_trait::async_trait]
impl EventHandler for MediaHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(tenant) = event.tenant else {
            return Err(HandleError::Permanent("media without a workspace".into()));
        };
        let e: ev::WhatsAppMediaPending = event.decode()?;
        let Ok(message) = uuid::Uuid::parse_str(&e.message_id) else {
            return Err(HandleError::Permanent("media of a malformed message id".into()));
        };
        match self.wa.copy_media(tx, tenant, message, self.max_deliveries).await? {
            CopyOutcome::Done | CopyOutcome::Failed(_) => Ok(()),
            CopyOutcome::Retry(reason) => Err(HandleError::Retry(reason)),
        }
    }
}
