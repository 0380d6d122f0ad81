//! The events the content service emits, each written to the outbox in the transaction that
//! makes its change (the platform relay publishes them). The service consumes none.
//!
//! Settlement: how a metered action ended is announced as `MeteredJobFinished` on
//! [`JOB_FINISHED`], in the transaction that stores its result (or, for a failure, one of its
//! own); subscriptions charges or gives back the hold from that event, so neither a lost token
//! nor a crash after the store can skip the charge or make it twice.

use nexus_kernel::{Error, Locale, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::Hold;
use crate::domain::generation::Generation;
use crate::domain::pages::LeadInput;
use crate::domain::{AgentId, ConversationId, GenerationId, LeadId, PageId};

/// Subject of the settlement events subscriptions consumes (`subscriptions-settlement-content`).
pub const JOB_FINISHED: &str = "nexus.content.job.finished";

/// How a metered action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Charge this many credits of the hold (at most its amount); the rest goes back.
    Charge(i64),
    /// Nothing was produced: give the whole hold back.
    Release,
}

/// Writes the settlement of `hold` into the outbox of the transaction `conn`. `job` names the
/// action for the logs (`content.generation:gen_…`).
pub async fn settle_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    hold: &Hold,
    job: &str,
    outcome: Outcome,
) -> Result<(), Error> {
    let (succeeded, credits) = match outcome {
        // Zero credits of a hold is the same as giving it back (and `credits: 0` would mean
        // "all of it" on the wire).
        Outcome::Charge(n) if n > 0 => (true, n.min(hold.amount)),
        Outcome::Charge(_) | Outcome::Release => (false, 0),
    };
    job_finished(conn, tenant, &hold.id, succeeded, credits, job).await
}

/// A provider image job's end: the whole hold charged when it succeeded (`credits: 0` means all
/// of it), given back when not. No user token is around by then; the event carries the tenant.
pub async fn image_job_finished(
    conn: &mut PgConnection,
    tenant: TenantId,
    image: Uuid,
    reservation: &str,
    succeeded: bool,
) -> Result<(), Error> {
    job_finished(conn, tenant, reservation, succeeded, 0, &format!("content.image:img_{}", image.simple())).await
}

async fn job_finished(
    conn: &mut PgConnection,
    tenant: TenantId,
    reservation: &str,
    succeeded: bool,
    credits: i64,
    job: &str,
) -> Result<(), Error> {
    let event = events::MeteredJobFinished {
        workspace_id: tenant.to_string(),
        reservation_id: reservation.to_owned(),
        succeeded,
        credits,
        job: job.to_owned(),
        ..Default::default()
    };
    enqueue(conn, JOB_FINISHED, Some(tenant), &event).await.db()?;
    Ok(())
}

/// `content.generated`: a generation was stored.
pub async fn content_generated(conn: &mut PgConnection, tenant: TenantId, g: &Generation) -> Result<(), Error> {
    let event = events::ContentGenerated {
        workspace_id: tenant.to_string(),
        generation_id: GenerationId::from_uuid(g.id).to_string(),
        kind: g.kind.clone(),
        language: g.language.clone(),
        provider: g.provider.clone(),
        model: g.model.clone(),
        total_tokens: g.usage.total_tokens,
        credits: g.credits,
        status: g.status.clone(),
    };
    enqueue(conn, "nexus.content.content.generated", Some(tenant), &event).await.db()?;
    Ok(())
}

/// `page.published`: a version of a page went public under a slug.
pub async fn page_published(
    conn: &mut PgConnection,
    tenant: TenantId,
    page: Uuid,
    slug: &str,
    version: i32,
    language: &str,
) -> Result<(), Error> {
    let event = events::PagePublished {
        workspace_id: tenant.to_string(),
        page_id: PageId::from_uuid(page).to_string(),
        slug: slug.to_owned(),
        version: u32::try_from(version).unwrap_or(0),
        language: language.to_owned(),
    };
    enqueue(conn, "nexus.content.page.published", Some(tenant), &event).await.db()?;
    Ok(())
}

/// `page.unpublished`: a page's slug no longer serves it.
pub async fn page_unpublished(conn: &mut PgConnection, tenant: TenantId, page: Uuid, slug: &str) -> Result<(), Error> {
    let event = events::PageUnpublished {
        workspace_id: tenant.to_string(),
        page_id: PageId::from_uuid(page).to_string(),
        slug: slug.to_owned(),
    };
    enqueue(conn, "nexus.content.page.unpublished", Some(tenant), &event).await.db()?;
    Ok(())
}

/// A captured lead, for the event.
pub struct CapturedLead<'a> {
    pub page: Uuid,
    pub lead: LeadId,
    pub slug: &'a str,
    pub language: Locale,
    pub contact: LeadInput,
    pub consent: bool,
}

/// `page.lead_captured`: a published page's form was submitted.
pub async fn lead_captured(conn: &mut PgConnection, tenant: TenantId, l: CapturedLead<'_>) -> Result<(), Error> {
    let event = events::PageLeadCaptured {
        workspace_id: tenant.to_string(),
        page_id: PageId::from_uuid(l.page).to_string(),
        lead_id: l.lead.to_string(),
        slug: l.slug.to_owned(),
        language: l.language.code().to_owned(),
        name: l.contact.name,
        email: l.contact.email,
        phone: l.contact.phone,
        message: l.contact.message,
        consent: l.consent,
    };
    enqueue(conn, "nexus.content.page.lead_captured", Some(tenant), &event).await.db()?;
    Ok(())
}

/// `agent.replied`: an agent answered a contact (and the reply was charged).
pub async fn agent_replied(
    conn: &mut PgConnection,
    tenant: TenantId,
    (agent, conversation): (Uuid, Uuid),
    contact: &str,
    provider: &str,
    credits: i64,
) -> Result<(), Error> {
    let event = events::AgentReplied {
        workspace_id: tenant.to_string(),
        agent_id: AgentId::from_uuid(agent).to_string(),
        conversation_id: ConversationId::from_uuid(conversation).to_string(),
        contact_id: contact.to_owned(),
        provider: provider.to_owned(),
        credits,
    };
    enqueue(conn, "nexus.content.agent.replied", Some(tenant), &event).await.db()?;
    Ok(())
}
