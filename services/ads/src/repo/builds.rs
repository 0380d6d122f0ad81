//! Ad campaign builds and their steps.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Build {
    pub id: Uuid,
    pub request_key: String,
    pub connection_id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub provider: String,
    pub ad_account: String,
    pub currency: String,
    pub spec: serde_json::Value,
    pub status: String,
    pub error: String,
    pub daily_budget: i64,
    pub delivery: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the platform last said (the sweep refreshes it): delivery status and ad review.
    pub platform_status: String,
    pub review_status: String,
    pub review_reason: String,
    pub status_synced_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Step {
    pub step: String,
    pub tag: String,
    pub platform_id: Option<String>,
    pub status: String,
}

const COLUMNS: &str = "id, request_key, connection_id, campaign_id, provider, ad_account, currency, spec, status, error, \
                       daily_budget, delivery, created_at, updated_at, platform_status, review_status, review_reason, \
                       status_synced_at";

/// Inserts a build, or returns the one this request key started (a retry resumes it).
pub async fn insert_or_get(conn: &mut PgConnection, tenant: TenantId, b: &Build) -> Result<Build, Error> {
    sqlx::query(
        "INSERT INTO ad_builds (id, tenant_id, request_key, connection_id, campaign_id, provider, ad_account, currency, spec) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, request_key) DO NOTHING",
    )
    .bind(b.id)
    .bind(tenant.as_uuid())
    .bind(&b.request_key)
    .bind(b.connection_id)
    .bind(b.campaign_id)
    .bind(&b.provider)
    .bind(&b.ad_account)
    .bind(&b.currency)
    .bind(&b.spec)
    .execute(&mut *conn)
    .await
    .db()?;
    let q = format!("SELECT {COLUMNS} FROM ad_builds WHERE request_key = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(&b.request_key).fetch_one(conn).await.db()
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Build>, Error> {
    let q = format!("SELECT {COLUMNS} FROM ad_builds WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()
}

pub async fn steps(conn: &mut PgConnection, build: Uuid) -> Result<Vec<Step>, Error> {
    sqlx::query_as("SELECT step, tag, platform_id, status FROM ad_build_steps WHERE build_id = $1")
        .bind(build)
        .fetch_all(conn)
        .await
        .db()
}

/// Records that a step's call is about to go out.
pub async fn step_started(
    conn: &mut PgConnection,
    tenant: TenantId,
    build: Uuid,
    step: &str,
    tag: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO ad_build_steps (build_id, tenant_id, step, tag, status) VALUES ($1, $2, $3, $4, 'started') \
         ON CONFLICT (build_id, step) DO NOTHING",
    )
    .bind(build)
    .bind(tenant.as_uuid())
    .bind(step)
    .bind(tag)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Records a step's platform id (created) or its removal (deleted).
pub async fn step_done(
    conn: &mut PgConnection,
    build: Uuid,
    step: &str,
    platform_id: Option<&str>,
    status: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE ad_build_steps SET platform_id = coalesce($3, platform_id), status = $4, updated_at = now() \
         WHERE build_id = $1 AND step = $2",
    )
    .bind(build)
    .bind(step)
    .bind(platform_id)
    .bind(status)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn finish(conn: &mut PgConnection, build: Uuid, status: &str, error: &str) -> Result<(), Error> {
    sqlx::query("UPDATE ad_builds SET status = $2, error = $3, updated_at = now() WHERE id = $1")
        .bind(build)
        .bind(status)
        .bind(error)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Sets the live daily budget, recording the change (the daily guard reads it).
pub async fn set_budget(
    conn: &mut PgConnection,
    tenant: TenantId,
    build: Uuid,
    old: i64,
    new: i64,
) -> Result<(), Error> {
    sqlx::query("UPDATE ad_builds SET daily_budget = $2, updated_at = now() WHERE id = $1")
        .bind(build)
        .bind(new)
        .execute(&mut *conn)
        .await
        .db()?;
    if old != new && old != 0 {
        sqlx::query(
            "INSERT INTO ad_budget_changes (id, tenant_id, build_id, old_budget, new_budget) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(build)
        .bind(old)
        .bind(new)
        .execute(conn)
        .await
        .db()?;
    }
    Ok(())
}

/// The budget the current UTC day started with: the first change today's old value, else the
/// budget now.
pub async fn day_start_budget(conn: &mut PgConnection, build: Uuid, now: i64) -> Result<i64, Error> {
    let first: Option<i64> = sqlx::query_scalar(
        "SELECT old_budget FROM ad_budget_changes WHERE build_id = $1 \
           AND changed_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
         ORDER BY changed_at, id LIMIT 1",
    )
    .bind(build)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(first.unwrap_or(now))
}

/// The daily budgets of the workspace's live campaigns in `currency`, `except` left out.
pub async fn live_budgets(conn: &mut PgConnection, currency: &str, except: Option<Uuid>) -> Result<i64, Error> {
    let total: Option<i64> = sqlx::query_scalar(
        "SELECT sum(daily_budget)::bigint FROM ad_builds WHERE status = 'built' AND delivery <> 'archived' \
           AND currency = $1 AND ($2::uuid IS NULL OR id <> $2)",
    )
    .bind(currency)
    .bind(except)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(total.unwrap_or(0))
}

pub async fn set_delivery(conn: &mut PgConnection, build: Uuid, delivery: &str) -> Result<(), Error> {
    sqlx::query("UPDATE ad_builds SET delivery = $2, updated_at = now() WHERE id = $1")
        .bind(build)
        .bind(delivery)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// The built, not archived campaigns of an account of a connection (the sweep refreshes their
/// statuses).
pub async fn live_in_account(conn: &mut PgConnection, connection: Uuid, ad_account: &str) -> Result<Vec<Uuid>, Error> {
    sqlx::query_scalar(
        "SELECT id FROM ad_builds WHERE connection_id = $1 AND ad_account = $2 AND status = 'built' \
           AND delivery <> 'archived' ORDER BY created_at LIMIT 500",
    )
    .bind(connection)
    .bind(ad_account)
    .fetch_all(conn)
    .await
    .db()
}

/// Records what the platform says of a build; true when its review turned `rejected` with this
/// call (so the rejection is announced once).
pub async fn set_review(
    conn: &mut PgConnection,
    build: Uuid,
    platform_status: &str,
    review: &str,
    reason: &str,
) -> Result<bool, Error> {
    let old: Option<String> = sqlx::query_scalar("SELECT review_status FROM ad_builds WHERE id = $1 FOR UPDATE")
        .bind(build)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    sqlx::query(
        "UPDATE ad_builds SET platform_status = $2, review_status = $3, review_reason = $4, \
           status_synced_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(build)
    .bind(platform_status)
    .bind(review)
    .bind(reason)
    .execute(conn)
    .await
    .db()?;
    Ok(review == "rejected" && old.is_some_and(|o| o != "rejected"))
}

/// (platform status, review, reason) recorded for a build.
pub async fn review(conn: &mut PgConnection, build: Uuid) -> Result<(String, String, String), Error> {
    sqlx::query_as("SELECT platform_status, review_status, review_reason FROM ad_builds WHERE id = $1")
        .bind(build)
        .fetch_one(conn)
        .await
        .db()
}
