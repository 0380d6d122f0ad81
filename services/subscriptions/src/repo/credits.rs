//! `credit_balances`, `reservations`, `credit_ledger` and `credit_notices`: the credit ledger.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};
use uuid::Uuid;

use super::{Row, from_row, inserted, rows};
use crate::domain::{Balance, LedgerEntry, Notice, Reservation};

const RESERVATION_COLUMNS: &str = "id, action, amount, status, committed_amount, expires_at";

from_row!(Reservation { id, action, amount, status, committed_amount, expires_at });

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

/// Adds credits once per idempotency key (`false`: seen before). `new_period` resets the
/// period counters.
pub async fn grant(
    conn: &mut PgConnection,
    tenant: TenantId,
    amount: i64,
    kind: &str,
    key: &str,
    new_period: bool,
) -> Result<bool, Error> {
    let fresh = sqlx::query(
        "INSERT INTO credit_ledger (tenant_id, kind, amount, balance_after, idempotency_key) \
         SELECT $1, $2, $3, available + $3, $4 FROM credit_balances WHERE tenant_id = $1 \
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(kind)
    .bind(amount)
    .bind(key)
    .execute(&mut *conn)
    .await
    .db()?
    .rows_affected()
        == 1;
    if fresh {
        sqlx::query(
            "UPDATE credit_balances SET available = available + $2, \
               period_grant = CASE WHEN $3 THEN $2 ELSE period_grant + $2 END, \
               period_used = CASE WHEN $3 THEN 0 ELSE period_used END, updated_at = now() WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .bind(amount)
        .bind(new_period)
        .execute(conn)
        .await
        .db()?;
    }
    Ok(fresh)
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

/// `reserve_credits` (migration 0003) in one autocommitted statement; `None`: too few credits
/// (or no balance row yet), nothing kept.
pub async fn reserve(
    conn: &mut PgConnection,
    tenant: TenantId,
    action: &str,
    amount: i64,
    key: &str,
    ttl: Duration,
) -> Result<Option<(Reservation, i64)>, Error> {
    let row: Result<PgRow, sqlx::Error> = sqlx::query(
        "SELECT r_id, r_action, r_amount, r_status, r_committed, r_expires_at, r_available \
         FROM reserve_credits($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.as_uuid())
    .bind(Uuid::now_v7())
    .bind(key)
    .bind(action)
    .bind(amount)
    .bind(ttl.as_secs_f64())
    .bind(nexus_platform::db::audit_settings().to_vec())
    .fetch_one(conn)
    .await;
    match row {
        Ok(r) => Ok(Some((
            Reservation {
                id: r.try_get("r_id").db()?,
                action: r.try_get("r_action").db()?,
                amount: r.try_get("r_amount").db()?,
                status: r.try_get("r_status").db()?,
                committed_amount: r.try_get("r_committed").db()?,
                expires_at: r.try_get("r_expires_at").db()?,
            },
            r.try_get("r_available").db()?,
        ))),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("NX402") => Ok(None),
        Err(e) => Err(nexus_platform::db::error(e)),
    }
}

/// A reservation, locked until the transaction ends.
pub async fn lock_reservation(conn: &mut PgConnection, id: Uuid) -> Result<Option<Reservation>, Error> {
    let row: Option<Row<Reservation>> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|r| r.0))
}

/// Held reservations past their expiry, locked (system transaction), at most 500.
pub async fn lock_expired(conn: &mut PgConnection) -> Result<Vec<(Uuid, Uuid)>, Error> {
    sqlx::query_as(
        "SELECT id, tenant_id FROM reservations WHERE status = 'held' AND expires_at <= now() ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(conn)
    .await
    .db()
}

/// Settles the hold of `reserved` credits charging `charged`: what was not used comes back.
pub async fn settle_hold(conn: &mut PgConnection, reserved: i64, charged: i64) -> Result<Charged, Error> {
    let (available, used, granted) = sqlx::query_as(
        "UPDATE credit_balances SET reserved = reserved - $1, available = available + $2, period_used = period_used + $3, updated_at = now() \
         RETURNING available, period_used, period_grant",
    )
    .bind(reserved)
    .bind(reserved - charged)
    .bind(charged)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(Charged { available, used, granted })
}

/// Gives a whole hold back to the workspace; the credits available after.
pub async fn give_back(conn: &mut PgConnection, tenant: TenantId, amount: i64) -> Result<i64, Error> {
    sqlx::query_scalar(
        "UPDATE credit_balances SET reserved = reserved - $1, available = available + $1, updated_at = now() WHERE tenant_id = $2 RETURNING available",
    )
    .bind(amount)
    .bind(tenant.as_uuid())
    .fetch_one(conn)
    .await
    .db()
}

/// Charges up to `wanted` from what is available now (never below zero), with no hold.
pub async fn charge_available(conn: &mut PgConnection, wanted: i64) -> Result<(i64, Charged), Error> {
    let before: i64 =
        sqlx::query_scalar("SELECT available FROM credit_balances FOR UPDATE").fetch_one(&mut *conn).await.db()?;
    let charged = wanted.min(before);
    let (available, used, granted) = sqlx::query_as(
        "UPDATE credit_balances SET available = available - $1, period_used = period_used + $1, updated_at = now() \
         RETURNING available, period_used, period_grant",
    )
    .bind(charged)
    .fetch_one(conn)
    .await
    .db()?;
    Ok((charged, Charged { available, used, granted }))
}

/// Takes what is left of a period that does not roll over; how much that was.
pub async fn expire_left(conn: &mut PgConnection, tenant: TenantId) -> Result<i64, Error> {
    let left: i64 = sqlx::query_scalar("SELECT available FROM credit_balances WHERE tenant_id = $1 FOR UPDATE")
        .bind(tenant.as_uuid())
        .fetch_one(&mut *conn)
        .await
        .db()?;
    if left > 0 {
        sqlx::query("UPDATE credit_balances SET available = 0 WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .execute(conn)
            .await
            .db()?;
    }
    Ok(left)
}

/// Closes a reservation as `status` with `committed` credits charged.
pub async fn close_reservation(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    committed: i64,
) -> Result<Reservation, Error> {
    let row: Row<Reservation> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE reservations SET status = $2, committed_amount = $3, settled_at = now() WHERE id = $1 RETURNING {RESERVATION_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(committed)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(row.0)
}

pub async fn ledger_row(
    conn: &mut PgConnection,
    tenant: TenantId,
    kind: &str,
    amount: i64,
    after: i64,
    action: &str,
    reservation: Option<Uuid>,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO credit_ledger (tenant_id, kind, amount, balance_after, action, reservation_id) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(tenant.as_uuid())
        .bind(kind)
        .bind(amount)
        .bind(after)
        .bind(action)
        .bind(reservation)
        .execute(conn)
        .await
        .db()?;
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
