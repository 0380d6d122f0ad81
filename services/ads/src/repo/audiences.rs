//! Custom audiences.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Audience {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub ad_account: String,
    pub name: String,
    pub platform_id: String,
    pub members: i32,
    pub dropped: i32,
    pub created_at: DateTime<Utc>,
    /// The contact-book segment it is read from; empty when a client sent the members.
    pub segment_id: String,
    /// Contacts of the segment left out (anonymized, or without marketing consent).
    pub excluded: i32,
    pub refresh_status: String,
    pub refresh_error: String,
    pub refreshed_at: Option<DateTime<Utc>>,
    /// custom or lookalike.
    pub kind: String,
    /// A lookalike's source, countries and ratio (%).
    pub origin_id: Option<Uuid>,
    pub countries: Vec<String>,
    pub ratio_percent: i32,
}

const COLUMNS: &str = "id, connection_id, ad_account, name, platform_id, members, dropped, created_at, segment_id, \
                       excluded, refresh_status, refresh_error, refreshed_at, kind, origin_id, countries, ratio_percent";

/// Stores a new audience; one made from a segment is due for refresh `refresh_every` from now.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    a: &Audience,
    next_refresh: Option<DateTime<Utc>>,
) -> Result<Audience, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audiences (id, tenant_id, connection_id, ad_account, name, platform_id, members, dropped, \
           segment_id, excluded, refresh_status, refresh_error, refreshed_at, next_refresh_at, kind, origin_id, \
           countries, ratio_percent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING {COLUMNS}"
    )))
    .bind(a.id)
    .bind(tenant.as_uuid())
    .bind(a.connection_id)
    .bind(&a.ad_account)
    .bind(&a.name)
    .bind(&a.platform_id)
    .bind(a.members)
    .bind(a.dropped)
    .bind(&a.segment_id)
    .bind(a.excluded)
    .bind(&a.refresh_status)
    .bind(&a.refresh_error)
    .bind(a.refreshed_at)
    .bind(next_refresh)
    .bind(&a.kind)
    .bind(a.origin_id)
    .bind(&a.countries)
    .bind(a.ratio_percent)
    .fetch_one(conn)
    .await
    .db()
}

/// One audience (RLS confines it to the transaction's workspace).
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Audience>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM audiences WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Audience>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audiences WHERE {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<Audience> = keyset.bind(q).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows, |a| (a.created_at, a.id)))
}

/// Whether there was one to delete.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let done = sqlx::query("DELETE FROM audiences WHERE id = $1").bind(id).execute(conn).await.db()?;
    Ok(done.rows_affected() > 0)
}
