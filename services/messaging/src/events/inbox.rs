//! The live inbox feed's reading of the outbox's events: which subjects it follows and what each
//! event means for a workspace's inbox.

use nexus_kernel::TenantId;
use nexus_proto::events as ev;
use prost::Message as _;

use crate::app::inbox::InboxEvent;

/// The events a live inbox follows (the relay publishes them under the bus prefix).
pub const SUBJECTS: [&str; 5] = [
    "nexus.messaging.message.received",
    "nexus.messaging.message.sent",
    "nexus.messaging.message.status_changed",
    "nexus.messaging.conversation.changed",
    "nexus.messaging.bot.handoff",
];

/// `payload` (an envelope) as an inbox event of `tenant`; `None` for other workspaces' events
/// and anything unreadable.
pub fn decode(tenant: TenantId, payload: &[u8]) -> Option<InboxEvent> {
    let env = ev::Envelope::decode(payload).ok()?;
    // The envelope names the tenant by its bare uuid.
    if uuid::Uuid::parse_str(&env.tenant_id).ok()? != tenant.as_uuid() {
        return None;
    }
    let at = env.occurred_at.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?));
    let body = env.payload.as_slice();
    let message = |number_id: String, contact_id: String, message_id: String, direction, status: &str| InboxEvent {
        kind: "message",
        number_id,
        contact_id,
        message_id,
        direction,
        status: status.to_owned(),
        at,
    };
    let conversation = |number_id: String, contact_id: String, status: String| InboxEvent {
        kind: "conversation",
        number_id,
        contact_id,
        message_id: String::new(),
        direction: "",
        status,
        at,
    };
    let t = env.event_type.as_str();
    use prost::Name as _;
    if t == ev::WhatsAppMessageReceived::full_name() {
        let e = ev::WhatsAppMessageReceived::decode(body).ok()?;
        Some(message(e.number_id, e.contact_id, e.message_id, "in", "received"))
    } else if t == ev::WhatsAppMessageSent::full_name() {
        let e = ev::WhatsAppMessageSent::decode(body).ok()?;
        Some(message(e.number_id, e.contact_id, e.message_id, "out", "sent"))
    } else if t == ev::WhatsAppMessageStatusChanged::full_name() {
        let e = ev::WhatsAppMessageStatusChanged::decode(body).ok()?;
        Some(message(String::new(), e.contact_id, e.message_id, "out", &e.status))
    } else if t == ev::WhatsAppConversationChanged::full_name() {
        let e = ev::WhatsAppConversationChanged::decode(body).ok()?;
        Some(conversation(e.number_id, e.contact_id, e.change))
    } else if t == ev::WhatsAppBotHandoff::full_name() {
        let e = ev::WhatsAppBotHandoff::decode(body).ok()?;
        Some(conversation(e.number_id, e.contact_id, format!("handoff_{}", e.direction)))
    } else {
        None
    }
}
