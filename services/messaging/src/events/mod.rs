//! Events messaging emits (into the outbox, inside the use case's transaction) and the events it
//! consumes: content's captured leads become contacts with a lead activity; content's page events
//! become webhook messages (`fanout`); auth's sign-ups and membership changes keep the members
//! projection (`members`); commerce's orders and refunds become purchase and refund activities of
//! the buyer's contact (`orders`); `deliver` is the webhook delivery worker.

pub mod deals;
pub mod deliver;
pub mod fanout;
pub mod inbox;
pub mod media;
pub mod members;
pub mod orders;
pub mod whatsapp;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nexus_kernel::ids::EventId;
use nexus_kernel::{Error, Locale, TenantId};
use nexus_platform::consumer::{Event, EventHandler, HandleError};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events as ev;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::App;
use crate::app::leads::Lead;
use crate::domain::consent::Consent;
use crate::domain::contact::Stage;

/// `contact.created`.
pub async fn contact_created(
    conn: &mut PgConnection,
    tenant: TenantId,
    contact: Uuid,
    source: &str,
    stage: Stage,
) -> Result<(), Error> {
    let event = ev::ContactCreated {
        workspace_id: tenant.to_string(),
        contact_id: contact.to_string(),
        source: source.to_owned(),
        stage: stage.as_str().to_owned(),
    };
    let id = enqueue(conn, "nexus.messaging.contact.created", Some(tenant), &event).await.db()?;
    contact_webhook(conn, tenant, "contact.created", id, contact).await
}

/// `contact.updated`: which attributes changed (no values: they are personal).
pub async fn contact_updated(
    conn: &mut PgConnection,
    tenant: TenantId,
    contact: Uuid,
    changed: &[String],
    (old, new): (Stage, Stage),
) -> Result<(), Error> {
    let stage_changed = old != new;
    let event = ev::ContactUpdated {
        workspace_id: tenant.to_string(),
        contact_id: contact.to_string(),
        changed: changed.to_vec(),
        old_stage: if stage_changed { old.as_str().to_owned() } else { String::new() },
        new_stage: if stage_changed { new.as_str().to_owned() } else { String::new() },
    };
    let id = enqueue(conn, "nexus.messaging.contact.updated", Some(tenant), &event).await.db()?;
    contact_webhook(conn, tenant, "contact.updated", id, contact).await
}

/// `contact.merged`.
pub async fn contacts_merged(conn: &mut PgConnection, tenant: TenantId, kept: Uuid, merged: Uuid) -> Result<(), Error> {
    let event = ev::ContactsMerged {
        workspace_id: tenant.to_string(),
        kept_id: kept.to_string(),
        merged_id: merged.to_string(),
    };
    let id = enqueue(conn, "nexus.messaging.contact.merged", Some(tenant), &event).await.db()?;
    let data = serde_json::json!({"kept_id": kept, "merged_id": merged});
    webhook(conn, tenant, "contact.merged", id, &data).await
}

/// `contact.anonymized`: other services erase what they hold of the person.
pub async fn contact_anonymized(conn: &mut PgConnection, tenant: TenantId, contact: Uuid) -> Result<(), Error> {
    let event = ev::ContactAnonymized { workspace_id: tenant.to_string(), contact_id: contact.to_string() };
    let id = enqueue(conn, "nexus.messaging.contact.anonymized", Some(tenant), &event).await.db()?;
    webhook(conn, tenant, "contact.anonymized", id, &serde_json::json!({"id": contact})).await
}

/// The workspace's webhook message of an event written just now (same transaction), keyed by
/// the event's id.
async fn webhook(
    conn: &mut PgConnection,
    tenant: TenantId,
    event_type: &str,
    event: EventId,
    data: &serde_json::Value,
) -> Result<(), Error> {
    crate::app::webhooks::publish(conn, tenant, event_type, &format!("event:{event}"), data).await?;
    Ok(())
}

/// A contact event's webhook message carries the contact as it is now: the workspace's own
/// systems are who the details are for.
async fn contact_webhook(
    conn: &mut PgConnection,
    tenant: TenantId,
    event_type: &str,
    event: EventId,
    contact: Uuid,
) -> Result<(), Error> {
    let c = crate::repo::contacts::get(conn, contact)
        .await?
        .ok_or_else(|| Error::internal(format!("{event_type}: contact {contact} not found")))?;
    webhook(conn, tenant, event_type, event, &contact_data(&c)).await
}

/// What a contact event's webhook message says of the contact.
fn contact_data(c: &crate::domain::contact::Contact) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "name": c.name,
        "phone": c.phone,
        "email": c.email,
        "language": c.language.map(|l| l.code()),
        "tags": c.tags,
        "stage": c.stage.as_str(),
        "source": c.source,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

/// `contact.created` for each contact an import created, in one outbox statement, and its
/// webhook messages in two more: the same event and messages as a contact created on its own,
/// so analytics and the workspace's endpoints see imported contacts too.
pub async fn contacts_created(
    conn: &mut PgConnection,
    tenant: TenantId,
    created: &[(Uuid, Stage)],
    source: &str,
) -> Result<(), Error> {
    let events: Vec<ev::ContactCreated> = created
        .iter()
        .map(|(contact, stage)| ev::ContactCreated {
            workspace_id: tenant.to_string(),
            contact_id: contact.to_string(),
            source: source.to_owned(),
            stage: stage.as_str().to_owned(),
        })
        .collect();
    let ids = nexus_platform::outbox::enqueue_many(conn, "nexus.messaging.contact.created", Some(tenant), &events)
        .await
        .db()?;
    let contacts = crate::repo::contacts::get_many(conn, &created.iter().map(|c| c.0).collect::<Vec<_>>()).await?;
    let data: std::collections::HashMap<Uuid, serde_json::Value> =
        contacts.iter().map(|c| (c.id, contact_data(c))).collect();
    let mut items = Vec::with_capacity(created.len());
    for ((contact, _), event) in created.iter().zip(&ids) {
        let payload = data
            .get(contact)
            .ok_or_else(|| Error::internal(format!("contact.created: contact {contact} not found")))?;
        items.push((format!("event:{event}"), payload.clone()));
    }
    crate::app::webhooks::publish_many(conn, tenant, "contact.created", &items).await?;
    Ok(())
}

/// `contacts.imported`: one summary per import that wrote contacts, never one event per row
/// (consumers that need the contacts ask for them, or export them).
pub async fn contacts_imported(
    conn: &mut PgConnection,
    tenant: TenantId,
    import: Uuid,
    c: crate::domain::import::Counts,
) -> Result<(), Error> {
    let event = ev::ContactsImported {
        workspace_id: tenant.to_string(),
        import_id: import.to_string(),
        total_rows: c.total_rows,
        created: c.created,
        updated: c.updated,
        failed: c.failed,
    };
    enqueue(conn, "nexus.messaging.contacts.imported", Some(tenant), &event).await.db()?;
    Ok(())
}

/// `book.do_not_sell_changed`.
pub async fn do_not_sell_changed(
    conn: &mut PgConnection,
    p: &nexus_platform::identity::Principal,
    on: bool,
) -> Result<(), Error> {
    let event = ev::DoNotSellChanged {
        workspace_id: p.workspace_id.to_string(),
        do_not_sell: on,
        actor_id: p.user_id.to_string(),
    };
    enqueue(conn, "nexus.messaging.book.do_not_sell_changed", Some(p.workspace_id), &event).await.db()?;
    Ok(())
}

/// `contact.consent_changed`.
pub async fn consent_changed(
    conn: &mut PgConnection,
    tenant: TenantId,
    contact: Uuid,
    c: &Consent,
) -> Result<(), Error> {
    let event = ev::ConsentChanged {
        workspace_id: tenant.to_string(),
        contact_id: contact.to_string(),
        channel: c.channel.as_str().to_owned(),
        purpose: c.purpose.as_str().to_owned(),
        status: c.status.as_str().to_owned(),
        source: c.source.clone(),
    };
    enqueue(conn, "nexus.messaging.contact.consent_changed", Some(tenant), &event).await.db()?;
    Ok(())
}

/// Content's `page.lead_captured` into the contact book (durable consumer `messaging-leads`;
/// the platform inbox and the lead activity's source key make a redelivery change nothing).
pub struct LeadHandler {
    pub app: Arc<App>,
}

#[async_trait::async_trait]
impl EventHandler for LeadHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let lead: ev::PageLeadCaptured = event.decode()?;
        let Some(tenant) = event.tenant else {
            return Err(HandleError::Permanent("a lead without a workspace".into()));
        };
        let lead = Lead {
            lead_id: &lead.lead_id,
            page_id: &lead.page_id,
            slug: &lead.slug,
            language: lead.language.parse::<Locale>().ok(),
            name: &lead.name,
            email: &lead.email,
            phone: &lead.phone,
            message: &lead.message,
            consent: lead.consent,
            occurred_at: event.envelope.occurred_at.as_ref().and_then(nexus_platform::grpc::from_ts),
        };
        crate::app::leads::capture(tx, tenant, &lead).await.map_err(HandleError::from)
    }
}

/// Subject of [`ev::WebhookEndpointDisabled`].
pub const ENDPOINT_DISABLED: &str = "nexus.messaging.webhook_endpoint.disabled";

/// `webhook_endpoint.disabled`: an endpoint was given up on. Mailing the workspace's owners
/// belongs to whoever consumes this.
pub async fn endpoint_disabled(
    conn: &mut PgConnection,
    tenant: TenantId,
    endpoint: Uuid,
    url: &str,
    reason: &str,
    failing_since: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    let event = ev::WebhookEndpointDisabled {
        workspace_id: tenant.to_string(),
        endpoint_id: endpoint.to_string(),
        url: url.to_owned(),
        reason: reason.to_owned(),
        failing_since: failing_since.map(nexus_platform::grpc::ts),
    };
    enqueue(conn, ENDPOINT_DISABLED, Some(tenant), &event).await.db()?;
    Ok(())
}
