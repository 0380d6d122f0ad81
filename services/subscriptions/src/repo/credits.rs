//! `credit_balances`, `reservations`, `credit_ledger` and `credit_notices`: the credit ledger.
//! Every change to credits is a call of one of the SQL functions of migration 0005 (where the
//! rules are, and the one ledger writer); this file only calls them and reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};
use uuid::Uuid;

use super::{Row, from_row, inserted, rows};
use crate::domain::{Balance, LedgerEntry, Notice, Reservation};

from_row!(LedgerEntry { id, kind, amount, balance_after, action, reservation_id, created_at });

/// A workspace's balance right after a charge: what the notices need.
#[derive(Debug, Clone, Copy)]
pub struct Charged {
    pub available: i64,
    pub used: i64,
    pub granted: i64,
}

pub async fn create_balance(conn: &mut PgConnection, tenant: TenantId) -> Result<(), Error> {
    sqlx::query("INSERT INTO credit_balances (tenant_id, available) VALUES ($1, 0) ON CONFLICT DO NOTHING")
        .bind(tenant.as_uuid())
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `grant_credits` (migration 0005): adds credits once per idempotency key (`false`: seen
/// before). `new_period` resets the period counters.
pub async fn grant(
    conn: &mut PgConnection,
    tenant: TenantId,
    amount: i64,
    kind: &str,
    key: &str,
    new_period: bool,
) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT grant_credits($1, $2, $3, $4, $5)")
        .bind(tenant.as_uuid())
        .bind(amount)
        .bind(kind)
        .bind(key)
        .bind(new_period)
        .fetch_one(conn)
        .await
        .db()
}

/// Whether a grant with this key was applied.
pub async fn granted(conn: &mut PgConnection, tenant: TenantId, key: &str) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM credit_ledger WHERE tenant_id = $1 AND idempotency_key = $2)")
        .bind(tenant.as_uuid())
        .bind(key)
        .fetch_one(conn)
        .await
        .db()
}

/// The tenant transaction's balance.
pub async fn balance(conn: &mut PgConnection) -> Result<Balance, Error> {
    let (available, reserved, period_grant, period_used) =
        sqlx::query_as("SELECT available, reserved, period_grant, period_used FROM credit_balances")
            .fetch_one(conn)
            .await
            .db()?;
    Ok(Balance { available, reserved, period_grant, period_used })
}

/// Available credits of the tenant transaction's workspace.
pub async fn available(conn: &mut PgConnection) -> Result<i64, Error> {
    sqlx::query_scalar("SELECT available FROM credit_balances").fetch_one(conn).await.db()
}

/// The tenant transaction's ledger, newest first.
pub async fn ledger(conn: &mut PgConnection, page: &Keyset) -> Result<Vec<LedgerEntry>, Error> {
    let found: Vec<Row<LedgerEntry>> = page
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, kind, amount, balance_after, action, reservation_id, created_at FROM credit_ledger WHERE {}",
            Keyset::newest_first(1)
        ))))
        .fetch_all(conn)
        .await
        .db()?;
    Ok(rows(found))
}

/// A reservation to make: its id, what it is for, and the audit settings of the request that
/// asked for it (actor id, request id, client IP, traceparent, tracestate).
#[derive(Debug, Clone)]
pub struct Hold {
    pub id: Uuid,
    pub action: String,
    pub amount: i64,
    pub key: String,
    pub ttl: Duration,
    pub audit: [String; 5],
}

/// `reserve_credits` (migrations 0005, 0007) in one autocommitted statement; `None`: too few
/// credits (or no balance row yet), nothing kept.
pub async fn reserve(
    conn: &mut PgConnection,
    tenant: TenantId,
    hold: &Hold,
) -> Result<Option<(Reservation, i64)>, Error> {
    let row: Result<PgRow, sqlx::Error> = sqlx::query(
        "SELECT r_id, r_action, r_amount, r_status, r_committed, r_expires_at, r_available \
         FROM reserve_credits($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.as_uuid())
    .bind(hold.id)
    .bind(&hold.key)
    .bind(&hold.action)
    .bind(hold.amount)
    .bind(hold.ttl.as_secs_f64())
    .bind(&hold.audit[..])
    .fetch_one(conn)
    .await;
    match row {
        Ok(r) => Ok(Some((reservation(&r).db()?, r.try_get("r_available").db()?))),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("NX402") => Ok(None),
        Err(e) => Err(nexus_platform::db::error(e)),
    }
}

/// `reserve_credits_many` (migration 0007): the holds of one workspace in one autocommitted
/// statement, each answered as [`reserve`] would, in order.
pub async fn reserve_many(
    conn: &mut PgConnection,
    tenant: TenantId,
    holds: &[&Hold],
) -> Result<Vec<Option<(Reservation, i64)>>, Error> {
    let rows: Vec<PgRow> = sqlx::query(
        "SELECT r_item, r_id, r_action, r_amount, r_status, r_committed, r_expires_at, r_available \
         FROM reserve_credits_many($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.as_uuid())
    .bind(holds.iter().map(|h| h.id).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.key.as_str()).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.action.as_str()).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.amount).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.ttl.as_secs_f64()).collect::<Vec<_>>())
    .bind(holds.iter().flat_map(|h| h.audit.iter().map(String::as_str)).collect::<Vec<_>>())
    .fetch_all(conn)
    .await
    .db()?;
    let mut out: Vec<Option<(Reservation, i64)>> = vec![None; holds.len()];
    for r in rows {
        let item: i32 = r.try_get("r_item").db()?;
        let slot = usize::try_from(item - 1)
            .ok()
            .and_then(|i| out.get_mut(i))
            .ok_or_else(|| Error::internal(format!("reserve_credits_many answered for item {item}")))?;
        *slot = Some((reservation(&r).db()?, r.try_get("r_available").db()?));
    }
    Ok(out)
}

/// How [`settle`] closes a reservation (see `settle_credits`, migration 0005).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    Released,
    /// Charging one whose hold expired before its settlement arrived.
    Late,
}

/// A reservation after [`settle`], with the workspace's balance.
#[derive(Debug, Clone)]
pub struct Settled {
    pub reservation: Reservation,
    pub balance: Charged,
    /// Whether this call changed it (else it is as it was found).
    pub settled: bool,
}

/// `settle_credits` (migration 0005) on a reservation of the transaction's workspace; `None`
/// when there is no such reservation.
pub async fn settle(
    conn: &mut PgConnection,
    id: Uuid,
    outcome: Outcome,
    charge: Option<i64>,
) -> Result<Option<Settled>, Error> {
    let outcome = match outcome {
        Outcome::Committed => "committed",
        Outcome::Released => "released",
        Outcome::Late => "late",
    };
    let row: Option<PgRow> = sqlx::query(
        "SELECT r_id, r_action, r_amount, r_status, r_committed, r_expires_at, r_available, r_used, r_granted, r_settled          FROM settle_credits($1, $2, $3)",
    )
    .bind(id)
    .bind(outcome)
    .bind(charge)
    .fetch_optional(conn)
    .await
    .db()?;
    let Some(r) = row else { return Ok(None) };
    let balance = Charged {
        available: r.try_get("r_available").db()?,
        used: r.try_get("r_used").db()?,
        granted: r.try_get("r_granted").db()?,
    };
    Ok(Some(Settled { reservation: reservation(&r).db()?, balance, settled: r.try_get("r_settled").db()? }))
}

/// The reservation columns (`r_…`) the credit functions answer with.
fn reservation(r: &PgRow) -> Result<Reservation, sqlx::Error> {
    Ok(Reservation {
        id: r.try_get("r_id")?,
        action: r.try_get("r_action")?,
        amount: r.try_get("r_amount")?,
        status: r.try_get("r_status")?,
        committed_amount: r.try_get("r_committed")?,
        expires_at: r.try_get("r_expires_at")?,
    })
}

/// `expire_credits` (migration 0005): gives back up to `limit` holds past their expiry, in
/// every workspace (system transaction). Returns how many.
pub async fn expire_due(conn: &mut PgConnection, limit: i32) -> Result<usize, Error> {
    let n: i32 = sqlx::query_scalar("SELECT expire_credits($1)").bind(limit).fetch_one(conn).await.db()?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// `expire_period_credits` (migration 0005): what is left of a period that does not roll over
/// expires.
pub async fn expire_period(conn: &mut PgConnection, tenant: TenantId) -> Result<(), Error> {
    sqlx::query("SELECT expire_period_credits($1)").bind(tenant.as_uuid()).execute(conn).await.db()?;
    Ok(())
}

/// Credits committed per action since `since`.
pub async fn committed_by_action(conn: &mut PgConnection, since: DateTime<Utc>) -> Result<Vec<(String, i64)>, Error> {
    sqlx::query_as(
        "SELECT action, sum(committed_amount)::bigint FROM reservations WHERE status = 'committed' AND settled_at >= $1 GROUP BY action ORDER BY action",
    )
    .bind(since)
    .fetch_all(conn)
    .await
    .db()
}

/// Records a notice once per period; whether it is new.
pub async fn insert_notice(
    conn: &mut PgConnection,
    tenant: TenantId,
    percent: i32,
    period: DateTime<Utc>,
) -> Result<bool, Error> {
    let q = sqlx::query(
        "INSERT INTO credit_notices (tenant_id, percent, period_start) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    );
    inserted(q.bind(tenant.as_uuid()).bind(percent).bind(period), conn).await
}

/// The tenant transaction's notices of its current period, newest first.
pub async fn notices(conn: &mut PgConnection) -> Result<Vec<Notice>, Error> {
    let found: Vec<(i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT n.percent, n.created_at FROM credit_notices n JOIN subscriptions s ON s.tenant_id = n.tenant_id \
         WHERE n.period_start = s.current_period_start ORDER BY n.created_at DESC, n.percent DESC",
    )
    .fetch_all(conn)
    .await
    .db()?;
    Ok(found.into_iter().map(|(percent, created_at)| Notice { percent, created_at }).collect())
}
