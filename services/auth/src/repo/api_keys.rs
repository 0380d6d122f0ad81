//! `api_keys` (a tenant table: a key is found across workspaces only in a system transaction).

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{ApiKeyView, StoredKey};

const COLUMNS: &str = "id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at";

row!(ViewRow => ApiKeyView { id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at });

/// A key to insert.
pub struct NewKey<'a> {
    pub id: Uuid,
    pub workspace: Uuid,
    pub created_by: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a [&'a str],
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut PgConnection, k: &NewKey<'_>) -> Result<ApiKeyView, Error> {
    let row: ViewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (id, tenant_id, created_by, name, prefix, secret_hash, scopes, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(k.id)
    .bind(k.workspace)
    .bind(k.created_by)
    .bind(k.name)
    .bind(k.prefix)
    .bind(k.secret_hash)
    .bind(k.scopes)
    .bind(k.expires_at)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(row.0)
}

/// The transaction's workspace's keys, newest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<ApiKeyView>, Error> {
    let rows: Vec<ViewRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC")))
            .fetch_all(conn)
            .await
            .db()?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Revokes a key (once: a second revocation keeps the first time); false when there is none.
pub async fn revoke(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let revoked = sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .db()?
        .rows_affected();
    Ok(revoked > 0)
}

pub async fn by_prefix(conn: &mut PgConnection, prefix: &str) -> Result<Option<StoredKey>, Error> {
    type Row =
        (Uuid, Uuid, Uuid, Vec<u8>, Vec<String>, Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, tenant_id, created_by, secret_hash, scopes, expires_at, revoked_at, last_used_at FROM api_keys WHERE prefix = $1",
    )
    .bind(prefix)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|(id, tenant_id, created_by, secret_hash, scopes, expires_at, revoked_at, last_used_at)| StoredKey {
        id,
        tenant_id,
        created_by,
        secret_hash,
        scopes,
        expires_at,
        revoked_at,
        last_used_at,
    }))
}

pub async fn touch(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1").bind(id).execute(conn).await.db()?;
    Ok(())
}

/// Whether the key is neither revoked nor expired (as far as the connection's RLS lets it see).
pub async fn live(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .db()
}
