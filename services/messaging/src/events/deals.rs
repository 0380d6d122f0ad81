//! Events of the pipeline: a deal opened, a deal moved (won and lost are moves to closing stages).

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events as ev;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::deal::{Deal, Outcome};

/// `deal.created`.
pub async fn deal_created(conn: &mut PgConnection, tenant: TenantId, d: &Deal, outcome: Outcome) -> Result<(), Error> {
    let event = ev::DealCreated {
        workspace_id: tenant.to_string(),
        deal_id: d.id.to_string(),
        contact_id: d.contact_id.to_string(),
        stage_id: d.stage_id.to_string(),
        outcome: outcome.as_str().to_owned(),
        amount_minor: d.amount.amount_minor,
        currency: d.amount.currency.code().to_owned(),
    };
    enqueue(conn, "nexus.messaging.deal.created", Some(tenant), &event).await.db()?;
    Ok(())
}

/// `deal.stage_changed`: `d` as it is after the move from `from`.
pub async fn deal_stage_changed(
    conn: &mut PgConnection,
    tenant: TenantId,
    d: &Deal,
    from: Uuid,
    outcome: Outcome,
) -> Result<(), Error> {
    let event = ev::DealStageChanged {
        workspace_id: tenant.to_string(),
        deal_id: d.id.to_string(),
        contact_id: d.contact_id.to_string(),
        from_stage_id: from.to_string(),
        to_stage_id: d.stage_id.to_string(),
        outcome: outcome.as_str().to_owned(),
        amount_minor: d.amount.amount_minor,
        currency: d.amount.currency.code().to_owned(),
    };
    enqueue(conn, "nexus.messaging.deal.stage_changed", Some(tenant), &event).await.db()?;
    Ok(())
}
