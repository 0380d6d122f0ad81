//! WhatsApp events, each written to the outbox in the transaction of its change, and the
//! settlement of a message's credits.
//!
//! Settlement: how a send ended (Meta accepted or refused it) is announced as `MeteredJobFinished`
//! on [`JOB_FINISHED`] in the transaction that records it; subscriptions then charges the hold
//! or gives it back, so no crash between recording and settling makes a message free or charges
//! it twice.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events as ev;
use sqlx::PgConnection;
use uuid::Uuid;

/// Subject of the settlement events subscriptions consumes (`subscriptions-settlement-messaging`).
pub const JOB_FINISHED: &str = "nexus.messaging.job.finished";
/// The priced action of one message.
pub const SEND_ACTION: &str = "messaging.whatsapp_send";

/// Charges `credits` of the message's hold (`0`: gives it all back).
pub async fn settle_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    message: Uuid,
    reservation: &str,
    credits: i64,
) -> Result<(), Error> {
    settle_job(conn, tenant, &format!("whatsapp.message:{message}"), reservation, credits).await
}

/// Charges `credits` of a hold for `job` (`0`: gives it all back).
pub async fn settle_job(
    conn: &mut PgConnection,
    tenant: TenantId,
    job: &str,
    reservation: &str,
    credits: i64,
) -> Result<(), Error> {
    if reservation.is_empty() {
        return Ok(());
    }
    let event = ev::MeteredJobFinished {
        workspace_id: tenant.to_string(),
        reservation_id: reservation.to_owned(),
        succeeded: credits > 0,
        credits: credits.max(0),
        job: job.to_owned(),
        feature: String::new(),
        feature_use_key: String::new(),
    };
    enqueue(conn, JOB_FINISHED, Some(tenant), &event).await.db()?;
    Ok(())
}

/// The workspace's webhook message of the same event (same transaction, once per key).
async fn webhook(
    conn: &mut PgConnection,
    tenant: TenantId,
    kind: &str,
    key: String,
    data: serde_json::Value,
) -> Result<(), Error> {
    crate::app::webhooks::publish(conn, tenant, kind, &key, &data).await?;
    Ok(())
}

pub async fn message_received(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: ev::WhatsAppMessageReceived,
) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.message.received", Some(tenant), &e).await.db()?;
    let data = serde_json::json!({"message_id": e.message_id, "contact_id": e.contact_id, "number_id": e.number_id, "type": e.r#type});
    webhook(conn, tenant, "message.received", format!("wa:received:{}", e.message_id), data).await
}

pub async fn message_sent(conn: &mut PgConnection, tenant: TenantId, e: ev::WhatsAppMessageSent) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.message.sent", Some(tenant), &e).await.db()?;
    let data = serde_json::json!({"message_id": e.message_id, "contact_id": e.contact_id, "number_id": e.number_id,
                                  "type": e.r#type, "broadcast_id": e.broadcast_id});
    webhook(conn, tenant, "message.sent", format!("wa:sent:{}", e.message_id), data).await
}

/// [`message_sent`] of many messages of one workspace, in one statement each for the outbox
/// and the webhooks (a broadcast's batch).
pub async fn messages_sent(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[ev::WhatsAppMessageSent],
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    nexus_platform::outbox::enqueue_many(conn, "nexus.messaging.message.sent", Some(tenant), events).await.db()?;
    let items: Vec<(String, serde_json::Value)> = events
        .iter()
        .map(|e| {
            let data = serde_json::json!({"message_id": e.message_id, "contact_id": e.contact_id,
                                          "number_id": e.number_id, "type": e.r#type, "broadcast_id": e.broadcast_id});
            (format!("wa:sent:{}", e.message_id), data)
        })
        .collect();
    crate::app::webhooks::publish_many(conn, tenant, "message.sent", &items).await?;
    Ok(())
}

pub async fn status_changed(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: ev::WhatsAppMessageStatusChanged,
) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.message.status_changed", Some(tenant), &e).await.db()?;
    let data = serde_json::json!({"message_id": e.message_id, "contact_id": e.contact_id, "status": e.status,
                                  "error_code": e.error_code});
    webhook(conn, tenant, "message.status_changed", format!("wa:status:{}:{}", e.message_id, e.status), data).await
}

pub async fn broadcast_finished(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: ev::WhatsAppBroadcastFinished,
) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.broadcast.finished", Some(tenant), &e).await.db()?;
    let data = serde_json::json!({"broadcast_id": e.broadcast_id, "status": e.status, "sent": e.sent, "failed": e.failed,
                                  "unknown": e.unknown, "credits_charged": e.credits_charged});
    webhook(conn, tenant, "broadcast.finished", format!("wa:broadcast:{}", e.broadcast_id), data).await
}

pub async fn bot_handoff(conn: &mut PgConnection, tenant: TenantId, e: ev::WhatsAppBotHandoff) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.bot.handoff", Some(tenant), &e).await.db()?;
    let data = serde_json::json!({"number_id": e.number_id, "contact_id": e.contact_id, "direction": e.direction,
                                  "assigned_to": e.assigned_to});
    let key = format!("wa:handoff:{}:{}:{}", e.contact_id, e.direction, uuid::Uuid::now_v7());
    webhook(conn, tenant, "bot.handoff", key, data).await
}

/// Subject of [`ev::WhatsAppMediaPending`], consumed by messaging's own media job.
pub const MEDIA_PENDING: &str = "nexus.messaging.message.media_pending";

/// An inbound message's media waits to be copied into storage.
pub async fn media_pending(conn: &mut PgConnection, tenant: TenantId, message: Uuid) -> Result<(), Error> {
    let e = ev::WhatsAppMediaPending { workspace_id: tenant.to_string(), message_id: message.to_string() };
    enqueue(conn, MEDIA_PENDING, Some(tenant), &e).await.db()?;
    Ok(())
}

/// A shared-inbox change: live inbox streams follow it.
pub async fn conversation_changed(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: ev::WhatsAppConversationChanged,
) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.conversation.changed", Some(tenant), &e).await.db()?;
    Ok(())
}

/// A number's rating or tier changed as read from Meta.
pub async fn quality_changed(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: ev::WhatsAppNumberQualityChanged,
) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.number.quality_changed", Some(tenant), &e).await.db()?;
    Ok(())
}

/// A number was disconnected.
pub async fn number_disconnected(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: ev::WhatsAppNumberDisconnected,
) -> Result<(), Error> {
    enqueue(conn, "nexus.messaging.number.disconnected", Some(tenant), &e).await.db()?;
    Ok(())
}
