//! `system_logs`: the audit trail of every service, and of analytics' own purges.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::report::{AuditEntry, AuditFilter, Range};

/// One audit entry to store, already scrubbed.
pub struct NewEntry<'a> {
    /// The event's id: a redelivered event is stored once.
    pub id: Uuid,
    pub tenant: Option<TenantId>,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub service: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub ip: Option<String>,
    pub request_id: &'a str,
}

pub async fn insert(conn: &mut PgConnection, e: NewEntry<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO system_logs (id, tenant_id, at, actor, action, service, resource_type, resource_id, before, after, \
                ip, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::inet, $12) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.tenant.map(|t| t.as_uuid()))
    .bind(e.at)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.service)
    .bind(e.resource_type)
    .bind(e.resource_id)
    .bind(e.before)
    .bind(e.after)
    .bind(e.ip)
    .bind(e.request_id)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The entry a retention purge leaves in the workspace's trail.
pub async fn record_purge(conn: &mut PgConnection, tenant: TenantId, after: Value) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO system_logs (id, tenant_id, at, actor, action, service, resource_type, after) \
         VALUES ($1, $2, now(), 'system', 'retention.purge', 'analytics', 'analytics.analytics_events', $3)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(after)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: Uuid,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    service: String,
    resource_type: String,
    resource_id: String,
    before: Option<String>,
    after: Option<String>,
    ip: Option<String>,
    request_id: String,
}

impl From<EntryRow> for AuditEntry {
    fn from(r: EntryRow) -> Self {
        Self {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            service: r.service,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            before: r.before,
            after: r.after,
            ip: r.ip,
            request_id: r.request_id,
        }
    }
}

/// The workspace's trail in `range`, newest first, one keyset page (ordered by `(at, id)`).
pub async fn search(
    conn: &mut PgConnection,
    tenant: TenantId,
    filter: &AuditFilter,
    range: Range,
    page: &Keyset,
) -> Result<nexus_kernel::Page<AuditEntry>, Error> {
    let sql = format!(
        "SELECT id, at, actor, action, service, resource_type, resource_id, before::text AS before, \
                after::text AS after, host(ip) AS ip, request_id \
         FROM system_logs \
         WHERE tenant_id = $1 AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR resource_type = $3) \
           AND ($4::text IS NULL OR resource_id = $4) AND at >= $5 AND at < $6 AND {}",
        Keyset::newest_first_by("at", "id", 7)
    );
    let q = sqlx::query_as::<_, EntryRow>(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(&filter.actor)
        .bind(&filter.resource_type)
        .bind(&filter.resource_id)
        .bind(range.from)
        .bind(range.to);
    let rows = page.bind(q).fetch_all(conn).await.db()?;
    Ok(page.page(rows.into_iter().map(AuditEntry::from).collect(), |r| (r.at, r.id)))
}
