//! `write_keys`: looked up by hash, stored sealed.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::workspace::KeyGrant;

/// A write key as stored: the key itself still sealed.
#[derive(Debug, Clone)]
pub struct SealedKey {
    pub id: Uuid,
    pub tenant: TenantId,
    pub key_sealed: String,
    pub allowed_origins: Vec<String>,
    pub created_at: DateTime<Utc>,
}

type KeyRow = (Uuid, Uuid, String, Vec<String>, DateTime<Utc>);

fn sealed((id, tenant, key_sealed, allowed_origins, created_at): KeyRow) -> SealedKey {
    SealedKey { id, tenant: TenantId::from_uuid(tenant), key_sealed, allowed_origins, created_at }
}

/// What the active key of this hash grants. The key names the workspace: the lookup itself
/// cannot be confined to one tenant (a system transaction).
pub async fn grant(conn: &mut PgConnection, hash: &[u8; 32]) -> Result<Option<KeyGrant>, Error> {
    let row: Option<(Uuid, Uuid, Vec<String>)> = sqlx::query_as(
        "SELECT id, tenant_id, allowed_origins FROM write_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash.as_slice())
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|(key_id, tenant, allowed_origins)| KeyGrant {
        tenant: TenantId::from_uuid(tenant),
        key_id,
        allowed_origins,
    }))
}

pub async fn active(conn: &mut PgConnection, tenant: TenantId) -> Result<Option<SealedKey>, Error> {
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT id, tenant_id, key_sealed, allowed_origins, created_at FROM write_keys \
         WHERE tenant_id = $1 AND revoked_at IS NULL",
    )
    .bind(tenant.as_uuid())
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(sealed))
}

/// Stores a new active key; `None` when the workspace already has one (another request created
/// it first).
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    hash: &[u8; 32],
    key_sealed: &str,
    origins: &[String],
) -> Result<Option<SealedKey>, Error> {
    let row: Result<KeyRow, sqlx::Error> = sqlx::query_as(
        "INSERT INTO write_keys (id, tenant_id, key_hash, key_sealed, allowed_origins) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, tenant_id, key_sealed, allowed_origins, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(hash.as_slice())
    .bind(key_sealed)
    .bind(origins)
    .fetch_one(conn)
    .await;
    match row {
        Ok(r) => Ok(Some(sealed(r))),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e).db(),
    }
}

/// Revokes the workspace's active key; the hashes of what was revoked.
pub async fn revoke_active(conn: &mut PgConnection, tenant: TenantId) -> Result<Vec<Vec<u8>>, Error> {
    sqlx::query_scalar(
        "UPDATE write_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL RETURNING key_hash",
    )
    .bind(tenant.as_uuid())
    .fetch_all(conn)
    .await
    .db()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505")
}
