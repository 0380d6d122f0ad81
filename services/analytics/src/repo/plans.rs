//! `workspace_plans`: the plan each workspace is on, as the subscriptions events tell it.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

/// Records the plan as of `at`. Only a newer fact moves it: redelivered old events cannot roll
/// it back.
pub async fn set(conn: &mut PgConnection, tenant: TenantId, plan: &str, at: DateTime<Utc>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO workspace_plans (tenant_id, plan_code, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET plan_code = excluded.plan_code, updated_at = excluded.updated_at \
         WHERE workspace_plans.updated_at <= excluded.updated_at",
    )
    .bind(tenant.as_uuid())
    .bind(plan)
    .bind(at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn get(conn: &mut PgConnection, tenant: TenantId) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT plan_code FROM workspace_plans WHERE tenant_id = $1")
        .bind(tenant.as_uuid())
        .fetch_optional(conn)
        .await
        .db()
}
