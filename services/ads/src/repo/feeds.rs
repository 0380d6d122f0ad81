//! iCal feeds of the post calendar: found by the SHA-256 of their token (a system read: the
//! caller is anonymous), listed and revoked by their workspace.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Feed {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    token_hash: &[u8],
    name: &str,
    created_by: Uuid,
) -> Result<Feed, Error> {
    sqlx::query_as(
        "INSERT INTO calendar_feeds (id, tenant_id, token_hash, name, created_by) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, name, created_at, revoked_at",
    )
    .bind(id)
    .bind(tenant.as_uuid())
    .bind(token_hash)
    .bind(name)
    .bind(created_by)
    .fetch_one(conn)
    .await
    .db()
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Feed>, Error> {
    sqlx::query_as("SELECT id, name, created_at, revoked_at FROM calendar_feeds ORDER BY created_at DESC, id LIMIT 100")
        .fetch_all(conn)
        .await
        .db()
}

/// Revokes a feed; `None` when there is no such feed.
pub async fn revoke(conn: &mut PgConnection, id: Uuid) -> Result<Option<Feed>, Error> {
    sqlx::query_as(
        "UPDATE calendar_feeds SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 \
         RETURNING id, name, created_at, revoked_at",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()
}

/// The workspace and name of a live feed with this token hash (system transaction).
pub async fn live_by_hash(conn: &mut PgConnection, token_hash: &[u8]) -> Result<Option<(Uuid, String)>, Error> {
    sqlx::query_as("SELECT tenant_id, name FROM calendar_feeds WHERE token_hash = $1 AND revoked_at IS NULL")
        .bind(token_hash)
        .fetch_optional(conn)
        .await
        .db()
}
