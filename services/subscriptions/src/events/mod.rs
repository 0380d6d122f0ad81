//! Events: the consumers this service runs (provisioning, settlement) and the events it emits,
//! each written to the outbox in the transaction of the change it announces.

pub mod provision;
pub mod settlement;

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use sqlx::PgConnection;

pub async fn subscription_changed(
    conn: &mut PgConnection,
    tenant: TenantId,
    plan: &str,
    previous: &str,
    status: &str,
) -> Result<(), Error> {
    // The price travels with the change so analytics can compute MRR from events alone.
    let (currency, monthly_amount_minor) = crate::repo::catalogue::monthly_amount(&mut *conn, tenant, plan).await?;
    let event = events::SubscriptionChanged {
        workspace_id: tenant.to_string(),
        plan_code: plan.into(),
        previous_plan_code: previous.into(),
        status: status.into(),
        monthly_amount_minor,
        currency,
    };
    enqueue(conn, "nexus.subscriptions.subscription.changed", Some(tenant), &event).await.db()?;
    Ok(())
}

pub async fn credits_charged(
    conn: &mut PgConnection,
    tenant: TenantId,
    reservation: uuid::Uuid,
    action: &str,
    credits: i64,
) -> Result<(), Error> {
    let event = events::CreditsCharged {
        workspace_id: tenant.to_string(),
        reservation_id: reservation.to_string(),
        action: action.into(),
        credits,
    };
    enqueue(conn, "nexus.subscriptions.credits.charged", Some(tenant), &event).await.db()?;
    Ok(())
}

/// `credits.exhausted` at 100 %, `credits.low` below it.
pub async fn credits_notice(
    conn: &mut PgConnection,
    tenant: TenantId,
    percent: u32,
    available: i64,
    granted: i64,
) -> Result<(), Error> {
    if percent >= 100 {
        let event = events::CreditsExhausted { workspace_id: tenant.to_string() };
        enqueue(conn, "nexus.subscriptions.credits.exhausted", Some(tenant), &event).await.db()?;
    } else {
        let event = events::CreditsLow {
            workspace_id: tenant.to_string(),
            available,
            period_grant: granted,
            percent_used: percent,
        };
        enqueue(conn, "nexus.subscriptions.credits.low", Some(tenant), &event).await.db()?;
    }
    Ok(())
}

pub async fn invoice_paid(
    conn: &mut PgConnection,
    tenant: TenantId,
    invoice: &str,
    amount_minor: i64,
    currency: &str,
) -> Result<(), Error> {
    let event = events::InvoicePaid {
        workspace_id: tenant.to_string(),
        invoice_id: invoice.into(),
        amount_minor,
        currency: currency.to_uppercase(),
    };
    enqueue(conn, "nexus.subscriptions.invoice.paid", Some(tenant), &event).await.db()?;
    Ok(())
}

pub async fn payment_failed(conn: &mut PgConnection, tenant: TenantId, invoice: &str) -> Result<(), Error> {
    let event = events::PaymentFailed { workspace_id: tenant.to_string(), invoice_id: invoice.into() };
    enqueue(conn, "nexus.subscriptions.payment.failed", Some(tenant), &event).await.db()?;
    Ok(())
}
