//! Alerts: at most one open per subject and kind.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Alert {
    pub id: Uuid,
    pub kind: String,
    pub subject_id: Uuid,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Raises an alert unless one of the kind is open for the subject; answers whether it did.
pub async fn raise(
    conn: &mut PgConnection,
    tenant: TenantId,
    kind: &str,
    subject: Uuid,
    detail: &serde_json::Value,
) -> Result<bool, Error> {
    let n = sqlx::query(
        "INSERT INTO alerts (id, tenant_id, kind, subject_id, detail) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, kind, subject_id) WHERE resolved_at IS NULL DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(kind)
    .bind(subject)
    .bind(detail)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

/// [`raise`] for many `(kind, subject, detail)` in one statement (a monitoring page's alerts);
/// answers how many were raised (those already open are left as they are).
pub async fn raise_many(
    conn: &mut PgConnection,
    tenant: TenantId,
    alerts: &[(&str, Uuid, serde_json::Value)],
) -> Result<u32, Error> {
    if alerts.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = alerts.iter().map(|_| Uuid::now_v7()).collect();
    let kinds: Vec<&str> = alerts.iter().map(|a| a.0).collect();
    let subjects: Vec<Uuid> = alerts.iter().map(|a| a.1).collect();
    let details: Vec<&serde_json::Value> = alerts.iter().map(|a| &a.2).collect();
    let n = sqlx::query(
        "INSERT INTO alerts (id, tenant_id, kind, subject_id, detail) \
         SELECT a.id, $1, a.kind, a.subject, a.detail FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::jsonb[]) \
           AS a(id, kind, subject, detail) \
         ON CONFLICT (tenant_id, kind, subject_id) WHERE resolved_at IS NULL DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(&ids)
    .bind(&kinds)
    .bind(&subjects)
    .bind(&details)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Resolves the open alerts of many `(kind, subject)` (their problems went away), in one
/// statement. Each pair is looked up through the open-alerts index on its own: the tenant is
/// spelled out (RLS holds it too) and `OFFSET 0` keeps the lookup from being folded into a join,
/// because a plan cached while the table was still empty would otherwise walk every alert of the
/// workspace for each page a sweep resolves.
pub async fn resolve_many(conn: &mut PgConnection, tenant: TenantId, alerts: &[(&str, Uuid)]) -> Result<(), Error> {
    if alerts.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = alerts.iter().map(|a| a.0).collect();
    let subjects: Vec<Uuid> = alerts.iter().map(|a| a.1).collect();
    sqlx::query(
        "UPDATE alerts SET resolved_at = now() WHERE id IN ( \
           SELECT o.id FROM unnest($1::text[], $2::uuid[]) AS r(kind, subject) CROSS JOIN LATERAL ( \
             SELECT a.id FROM alerts a \
             WHERE a.tenant_id = $3 AND a.kind = r.kind AND a.subject_id = r.subject AND a.resolved_at IS NULL OFFSET 0) o)",
    )
    .bind(&kinds)
    .bind(&subjects)
    .bind(tenant.as_uuid())
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Alert>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, kind, subject_id, detail, created_at, resolved_at FROM alerts WHERE {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<Alert> = keyset.bind(q).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows, |a| (a.created_at, a.id)))
}
