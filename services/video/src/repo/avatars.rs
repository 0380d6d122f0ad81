//! `avatars`: uploaded avatar images (their bytes are in object storage).

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

/// An avatar as the service shows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Avatar {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub size_bytes: i64,
    pub storage_key: String,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, tenant_id, name, content_type, width, height, size_bytes, storage_key, created_at";

#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    tenant: TenantId,
    name: &str,
    content_type: &str,
    (width, height): (u32, u32),
    size: i64,
    key: &str,
) -> Result<Avatar, Error> {
    let sql = format!(
        "INSERT INTO avatars (id, tenant_id, name, content_type, width, height, size_bytes, storage_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(tenant.as_uuid())
        .bind(name)
        .bind(content_type)
        .bind(i32::try_from(width).unwrap_or(i32::MAX))
        .bind(i32::try_from(height).unwrap_or(i32::MAX))
        .bind(size)
        .bind(key)
        .fetch_one(conn)
        .await
        .db()
}

/// One avatar (in the transaction's workspace, or any for a system transaction).
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Avatar>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM avatars WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await.db()
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Avatar>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM avatars WHERE {}", Keyset::newest_first(1));
    let rows: Vec<Avatar> = keyset.bind(sqlx::query_as(sqlx::AssertSqlSafe(sql))).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows, |a| (a.created_at, a.id)))
}

/// Deletes an avatar; answers its storage key.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<Option<String>, Error> {
    sqlx::query_scalar("DELETE FROM avatars WHERE id = $1 RETURNING storage_key")
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}
