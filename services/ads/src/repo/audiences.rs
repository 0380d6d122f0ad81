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

/// Claims up to `limit` segment audiences of every workspace whose refresh is due, for `lease`
/// (system transaction): rows another replica holds (locked now, or leased) are skipped.
/// (workspace, id) of each.
pub async fn claim_due(
    conn: &mut PgConnection,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    let until: DateTime<Utc> = Utc::now() + lease;
    sqlx::query_as(
        "UPDATE audiences a SET lease_until = $1, refresh_status = 'refreshing' \
         FROM (SELECT id FROM audiences \
               WHERE next_refresh_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
               ORDER BY next_refresh_at LIMIT $2 FOR UPDATE SKIP LOCKED) d \
         WHERE a.id = d.id RETURNING a.tenant_id, a.id",
    )
    .bind(until)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// Claims one segment audience for a refresh asked for now; None when it is not one made from a
/// segment, or another refresh holds it.
pub async fn claim_one(conn: &mut PgConnection, id: Uuid, lease: chrono::Duration) -> Result<Option<Audience>, Error> {
    let until: DateTime<Utc> = Utc::now() + lease;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE audiences SET lease_until = $2, refresh_status = 'refreshing' \
         WHERE id = $1 AND segment_id <> '' AND (lease_until IS NULL OR lease_until < now()) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(until)
    .fetch_optional(conn)
    .await
    .db()
}

/// What a refresh found: the counts when it succeeded, the error code when it failed.
#[derive(Debug, Clone)]
pub enum Refreshed {
    Done { members: i32, dropped: i32, excluded: i32 },
    Failed(String),
}

/// Releases a refresh's claim with its outcome and the next refresh's time (None: never).
pub async fn finish_refresh(
    conn: &mut PgConnection,
    id: Uuid,
    outcome: &Refreshed,
    next: Option<DateTime<Utc>>,
) -> Result<Option<Audience>, Error> {
    let (ok, members, dropped, excluded, error) = match outcome {
        Refreshed::Done { members, dropped, excluded } => (true, *members, *dropped, *excluded, ""),
        Refreshed::Failed(code) => (false, 0, 0, 0, code.as_str()),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE audiences SET lease_until = NULL, next_refresh_at = $3, \
           refresh_status = CASE WHEN $2 THEN 'ready' ELSE 'failed' END, refresh_error = $7, \
           refreshed_at = CASE WHEN $2 THEN now() ELSE refreshed_at END, \
           members = CASE WHEN $2 THEN $4 ELSE members END, \
           dropped = CASE WHEN $2 THEN $5 ELSE dropped END, \
           excluded = CASE WHEN $2 THEN $6 ELSE excluded END \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(ok)
    .bind(next)
    .bind(members)
    .bind(dropped)
    .bind(excluded)
    .bind(error)
    .fetch_optional(conn)
    .await
    .db()
}
