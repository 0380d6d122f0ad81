//! `subscriptions`: one row per workspace. Inside a tenant transaction RLS shows only that one.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Row, from_row, rows};
use crate::domain::{Observed, Subscription};

const COLUMNS: &str = "tenant_id, plan_code, status, billing, current_period_start, current_period_end, \
     cancel_at_period_end, pending_plan_code, stripe_customer_id, stripe_subscription_id, currency";

from_row!(Subscription {
    tenant_id,
    plan_code,
    status,
    billing,
    current_period_start,
    current_period_end,
    cancel_at_period_end,
    pending_plan_code,
    stripe_customer_id,
    stripe_subscription_id,
    currency
});

/// Puts the workspace on FREE from `start` unless it has a subscription; whether it was created.
pub async fn insert_free(
    conn: &mut PgConnection,
    tenant: TenantId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<bool, Error> {
    let created: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO subscriptions (tenant_id, plan_code, status, current_period_start, current_period_end) \
         VALUES ($1, 'free', 'active', $2, $3) ON CONFLICT (tenant_id) DO NOTHING RETURNING id",
    )
    .bind(tenant.as_uuid())
    .bind(start)
    .bind(end)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(created.is_some())
}

/// The tenant transaction's subscription.
pub async fn load(conn: &mut PgConnection) -> Result<Subscription, Error> {
    let row: Row<Subscription> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM subscriptions")))
        .fetch_one(conn)
        .await
        .db()?;
    Ok(row.0)
}

/// [`load`], locked until the transaction ends.
pub async fn lock(conn: &mut PgConnection) -> Result<Subscription, Error> {
    let row: Row<Subscription> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM subscriptions FOR UPDATE")))
            .fetch_one(conn)
            .await
            .db()?;
    Ok(row.0)
}

pub async fn period_start(conn: &mut PgConnection) -> Result<DateTime<Utc>, Error> {
    sqlx::query_scalar("SELECT current_period_start FROM subscriptions").fetch_one(conn).await.db()
}

pub async fn period_end(conn: &mut PgConnection) -> Result<DateTime<Utc>, Error> {
    sqlx::query_scalar("SELECT current_period_end FROM subscriptions").fetch_one(conn).await.db()
}

/// Locally billed subscriptions whose period ended, locked (system transaction), at most 200.
pub async fn lock_due_local(conn: &mut PgConnection) -> Result<Vec<Subscription>, Error> {
    let due: Vec<Row<Subscription>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE billing = 'local' AND current_period_end <= now() \
         ORDER BY current_period_end LIMIT 200 FOR UPDATE SKIP LOCKED"
    )))
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows(due))
}

/// The next local period on `plan`, with any pending change or cancellation applied.
pub async fn start_next_period(
    conn: &mut PgConnection,
    tenant: TenantId,
    plan: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE subscriptions SET plan_code = $2, current_period_start = $3, current_period_end = $4, cancel_at_period_end = false, \
         pending_plan_code = NULL, status = 'active', updated_at = now() WHERE tenant_id = $1",
    )
    .bind(tenant.as_uuid())
    .bind(plan)
    .bind(start)
    .bind(end)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The paid subscription is over: FREE on a local period from `start`.
pub async fn back_to_free(
    conn: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    stripe_customer: Option<&str>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE subscriptions SET plan_code = 'free', status = 'active', billing = 'local', stripe_subscription_id = NULL, \
         current_period_start = $1, current_period_end = $2, cancel_at_period_end = false, pending_plan_code = NULL, \
         stripe_customer_id = coalesce(stripe_customer_id, $3), updated_at = now()",
    )
    .bind(start)
    .bind(end)
    .bind(stripe_customer)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Stores what the billing source reports, with the plan in force and the pending one.
pub async fn apply(conn: &mut PgConnection, obs: &Observed, plan: &str, pending: Option<&str>) -> Result<(), Error> {
    sqlx::query(
        "UPDATE subscriptions SET plan_code = $1, status = $2, billing = $3, stripe_customer_id = coalesce($4, stripe_customer_id), \
         stripe_subscription_id = $5, current_period_start = $6, current_period_end = $7, cancel_at_period_end = $8, \
         pending_plan_code = $9, currency = coalesce($10, currency), updated_at = now()",
    )
    .bind(plan)
    .bind(&obs.status)
    .bind(obs.billing)
    .bind(&obs.stripe_customer)
    .bind(&obs.stripe_subscription)
    .bind(obs.period_start)
    .bind(obs.period_end)
    .bind(obs.cancel_at_period_end)
    .bind(pending)
    .bind(&obs.currency)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The workspace of a Stripe subscription or customer (system transaction).
pub async fn tenant_of_stripe(
    conn: &mut PgConnection,
    customer: Option<&str>,
    subscription: Option<&str>,
) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar(
        "SELECT tenant_id FROM subscriptions WHERE ($1::text IS NOT NULL AND stripe_subscription_id = $1) \
           OR ($2::text IS NOT NULL AND stripe_customer_id = $2) LIMIT 1",
    )
    .bind(subscription)
    .bind(customer)
    .fetch_optional(conn)
    .await
    .db()
}
