//! `feature_usage` and `feature_uses`: uses of limited features per period, once per key.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

pub async fn used(conn: &mut PgConnection, feature: &str, period: DateTime<Utc>) -> Result<i64, Error> {
    sqlx::query_scalar("SELECT coalesce(max(used), 0) FROM feature_usage WHERE feature = $1 AND period_start = $2")
        .bind(feature)
        .bind(period)
        .fetch_one(conn)
        .await
        .db()
}

/// Every feature's uses in the period starting at `period`.
pub async fn used_in(conn: &mut PgConnection, period: DateTime<Utc>) -> Result<HashMap<String, i64>, Error> {
    let found: Vec<(String, i64)> = sqlx::query_as("SELECT feature, used FROM feature_usage WHERE period_start = $1")
        .bind(period)
        .fetch_all(conn)
        .await
        .db()?;
    Ok(found.into_iter().collect())
}

/// Records a use by its key; `false` when the key was seen before.
pub async fn record_use(conn: &mut PgConnection, tenant: TenantId, key: &str, feature: &str) -> Result<bool, Error> {
    let q = sqlx::query(
        "INSERT INTO feature_uses (tenant_id, idempotency_key, feature) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    );
    super::inserted(q.bind(tenant.as_uuid()).bind(key).bind(feature), conn).await
}

/// Counts one use unless `limit` is reached; the uses after it, `None` at the limit.
pub async fn count_use(
    conn: &mut PgConnection,
    tenant: TenantId,
    feature: &str,
    period: DateTime<Utc>,
    limit: i64,
) -> Result<Option<i64>, Error> {
    sqlx::query_scalar(
        "INSERT INTO feature_usage AS u (tenant_id, feature, period_start, used) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (tenant_id, feature, period_start) DO UPDATE SET used = u.used + 1 WHERE u.used < $4 RETURNING used",
    )
    .bind(tenant.as_uuid())
    .bind(feature)
    .bind(period)
    .bind(limit)
    .fetch_optional(conn)
    .await
    .db()
}

/// Gives back the use recorded under `key` (a job that failed): forgets the key and takes one off
/// the count of the period the use fell in. `false` when there was no such use (given back
/// already, or never counted).
pub async fn release_use(conn: &mut PgConnection, tenant: TenantId, key: &str, feature: &str) -> Result<bool, Error> {
    let released: Option<i64> = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM feature_uses WHERE tenant_id = $1 AND idempotency_key = $2 AND feature = $3 \
         RETURNING created_at) \
         UPDATE feature_usage u SET used = u.used - 1 FROM gone \
         WHERE u.tenant_id = $1 AND u.feature = $3 AND u.used > 0 AND u.period_start = \
           (SELECT max(p.period_start) FROM feature_usage p \
             WHERE p.tenant_id = $1 AND p.feature = $3 AND p.period_start <= gone.created_at) \
         RETURNING u.used",
    )
    .bind(tenant.as_uuid())
    .bind(key)
    .bind(feature)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(released.is_some())
}
