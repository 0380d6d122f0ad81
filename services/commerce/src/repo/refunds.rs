//! Refunds and the commission reversals they made.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::refunds::RefundLine;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Refund {
    pub id: Uuid,
    pub order_id: Uuid,
    pub idempotency_key: String,
    /// pending, completed or failed.
    pub status: String,
    pub amount: Decimal,
    pub currency: String,
    pub lines: Json<Vec<RefundLine>>,
    pub reason: String,
    pub store_refund_id: Option<String>,
    pub failure: String,
    pub profit_reversed: Decimal,
    pub reporting_profit_reversed: Decimal,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, order_id, idempotency_key, status, amount, currency, lines, reason, store_refund_id, failure, \
                       profit_reversed, reporting_profit_reversed, created_at, completed_at";

/// Inserts a refund (pending, or completed for one the store made on its own).
pub async fn insert(conn: &mut PgConnection, tenant: TenantId, r: &Refund) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO refunds (id, tenant_id, order_id, idempotency_key, status, amount, currency, lines, reason, store_refund_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.id)
    .bind(tenant.as_uuid())
    .bind(r.order_id)
    .bind(&r.idempotency_key)
    .bind(&r.status)
    .bind(r.amount)
    .bind(&r.currency)
    .bind(&r.lines)
    .bind(&r.reason)
    .bind(&r.store_refund_id)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Refund>, Error> {
    let q = format!("SELECT {COLUMNS} FROM refunds WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()
}

pub async fn by_key(conn: &mut PgConnection, order: Uuid, key: &str) -> Result<Option<Refund>, Error> {
    let q = format!("SELECT {COLUMNS} FROM refunds WHERE order_id = $1 AND idempotency_key = $2");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(order).bind(key).fetch_optional(conn).await.db()
}

/// An order's refunds, oldest first.
pub async fn of_order(conn: &mut PgConnection, order: Uuid) -> Result<Vec<Refund>, Error> {
    let q = format!("SELECT {COLUMNS} FROM refunds WHERE order_id = $1 ORDER BY created_at, id");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(order).fetch_all(conn).await.db()
}

/// Records what a completed refund took back.
pub async fn complete(
    conn: &mut PgConnection,
    id: Uuid,
    store_refund_id: Option<&str>,
    (profit, reporting_profit): (Decimal, Decimal),
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE refunds SET status = 'completed', store_refund_id = coalesce($2, store_refund_id), profit_reversed = $3, \
         reporting_profit_reversed = $4, completed_at = now() WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(store_refund_id)
    .bind(profit)
    .bind(reporting_profit)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// A refund the store refused: its amount is refundable again.
pub async fn fail(conn: &mut PgConnection, id: Uuid, failure: &str) -> Result<(), Error> {
    sqlx::query("UPDATE refunds SET status = 'failed', failure = $2 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .bind(failure)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// How much of each commission of `sale` was taken back so far.
pub async fn reversed_of_sale(conn: &mut PgConnection, sale: Uuid) -> Result<HashMap<Uuid, Decimal>, Error> {
    let rows: Vec<(Uuid, Decimal)> = sqlx::query_as(
        "SELECT r.commission_id, sum(r.amount) FROM commission_reversals r JOIN commissions c ON c.id = r.commission_id \
         WHERE c.sale_id = $1 GROUP BY r.commission_id",
    )
    .bind(sale)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().collect())
}

pub async fn insert_reversal(
    conn: &mut PgConnection,
    tenant: TenantId,
    commission: Uuid,
    refund: Uuid,
    amount: Decimal,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO commission_reversals (id, tenant_id, commission_id, refund_id, amount, reversed_at) \
         VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (commission_id, refund_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(commission)
    .bind(refund)
    .bind(amount)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}
