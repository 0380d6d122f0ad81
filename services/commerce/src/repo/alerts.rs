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

/// Resolves the open alert of a kind for a subject (the problem went away).
pub async fn resolve(conn: &mut PgConnection, kind: &str, subject: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE alerts SET resolved_at = now() WHERE kind = $1 AND subject_id = $2 AND resolved_at IS NULL")
        .bind(kind)
        .bind(subject)
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
