//! `checkout_sessions`: purchases in progress.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Row, from_row};
use crate::domain::{Checkout, NewCheckout};

const COLUMNS: &str = "id, provider, kind, plan_code, pack_code, currency, amount_minor, url, status";

from_row!(Checkout { id, provider, kind, plan_code, pack_code, currency, amount_minor, url, status });

pub async fn by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Checkout>, Error> {
    let row: Option<Row<Checkout>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM checkout_sessions WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|r| r.0))
}

/// A session, locked until the transaction ends.
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Checkout>, Error> {
    let row: Option<Row<Checkout>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM checkout_sessions WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|r| r.0))
}

/// Stores an open session unless one with its key exists.
pub async fn insert(conn: &mut PgConnection, tenant: TenantId, c: &NewCheckout<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO checkout_sessions (id, tenant_id, provider, kind, plan_code, pack_code, currency, amount_minor, url, status, idempotency_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10) ON CONFLICT DO NOTHING",
    )
    .bind(c.id)
    .bind(tenant.as_uuid())
    .bind(c.provider)
    .bind(c.kind)
    .bind(c.plan_code)
    .bind(c.pack_code)
    .bind(c.currency)
    .bind(c.amount_minor)
    .bind(c.url)
    .bind(c.idempotency_key)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Marks a session paid (the first completion time stays).
pub async fn complete(conn: &mut PgConnection, id: &str) -> Result<Option<Checkout>, Error> {
    let row: Option<Row<Checkout>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE checkout_sessions SET status = 'complete', completed_at = coalesce(completed_at, now()) WHERE id = $1 \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|r| r.0))
}

/// An open session can no longer be completed.
pub async fn expire(conn: &mut PgConnection, id: &str) -> Result<(), Error> {
    sqlx::query("UPDATE checkout_sessions SET status = 'expired' WHERE id = $1 AND status = 'open'")
        .bind(id)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// The workspace of a session (system transaction).
pub async fn tenant_of(conn: &mut PgConnection, id: &str) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar("SELECT tenant_id FROM checkout_sessions WHERE id = $1").bind(id).fetch_optional(conn).await.db()
}
