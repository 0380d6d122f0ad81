//! `workspace_settings`, and the zones Postgres knows.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

/// A workspace's settings as stored: the salt still sealed.
#[derive(Debug, Clone)]
pub struct SealedSettings {
    pub time_zone: String,
    pub retention_days: i32,
    pub salt_sealed: String,
}

pub async fn get(conn: &mut PgConnection, tenant: TenantId) -> Result<Option<SealedSettings>, Error> {
    let row: Option<(String, i32, String)> =
        sqlx::query_as("SELECT time_zone, retention_days, salt_sealed FROM workspace_settings WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .fetch_optional(conn)
            .await
            .db()?;
    Ok(row.map(|(time_zone, retention_days, salt_sealed)| SealedSettings { time_zone, retention_days, salt_sealed }))
}

/// Creates the row unless another request just did.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    retention_days: i32,
    salt_sealed: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO workspace_settings (tenant_id, retention_days, salt_sealed) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(retention_days)
    .bind(salt_sealed)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Changes what is given, keeps the rest.
pub async fn update(
    conn: &mut PgConnection,
    tenant: TenantId,
    time_zone: Option<&str>,
    retention_days: Option<i32>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE workspace_settings SET time_zone = coalesce($2, time_zone), \
                retention_days = coalesce($3, retention_days), updated_at = now() WHERE tenant_id = $1",
    )
    .bind(tenant.as_uuid())
    .bind(time_zone)
    .bind(retention_days)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Whether Postgres knows the IANA zone `tz`.
pub async fn zone_known(conn: &mut PgConnection, tz: &str) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
        .bind(tz)
        .fetch_one(conn)
        .await
        .db()
}

/// Every workspace's retention in days (a system transaction: it spans workspaces).
pub async fn retentions(conn: &mut PgConnection) -> Result<Vec<(TenantId, i32)>, Error> {
    let rows: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT tenant_id, retention_days FROM workspace_settings").fetch_all(conn).await.db()?;
    Ok(rows.into_iter().map(|(t, d)| (TenantId::from_uuid(t), d)).collect())
}

/// The longest retention of any workspace, if there is one.
pub async fn longest_retention(conn: &mut PgConnection) -> Result<Option<i32>, Error> {
    sqlx::query_scalar("SELECT max(retention_days) FROM workspace_settings").fetch_one(conn).await.db()
}
