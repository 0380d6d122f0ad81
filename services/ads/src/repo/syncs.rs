//! The scheduled insights sync of chosen accounts: rows owed when an account is chosen, claimed
//! across replicas with SKIP LOCKED and a lease.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

/// Owes a sync (first the backfill) to every chosen ad account or advertiser of a connection
/// that has none yet; forgets those no longer chosen.
pub async fn schedule_chosen(conn: &mut PgConnection, tenant: TenantId, connection: Uuid) -> Result<u64, Error> {
    sqlx::query(
        "DELETE FROM account_syncs s WHERE s.connection_id = $1 AND NOT EXISTS (SELECT 1 FROM connection_accounts a \
           WHERE a.connection_id = s.connection_id AND a.external_id = s.ad_account AND a.chosen)",
    )
    .bind(connection)
    .execute(&mut *conn)
    .await
    .db()?;
    let r = sqlx::query(
        "INSERT INTO account_syncs (tenant_id, connection_id, provider, ad_account, currency, time_zone) \
         SELECT $1, a.connection_id, c.provider, a.external_id, a.currency, a.time_zone \
         FROM connection_accounts a JOIN connections c ON c.id = a.connection_id \
         WHERE a.connection_id = $2 AND a.chosen AND a.kind IN ('ad_account', 'advertiser') \
           AND c.provider IN ('meta', 'tiktok', 'local') \
         ON CONFLICT (connection_id, ad_account) DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(connection)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected())
}

/// An account sync claimed by this replica.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub provider: String,
    pub ad_account: String,
    pub currency: String,
    pub time_zone: String,
    pub backfilled: bool,
}

/// Claims up to `limit` due syncs of every workspace for `lease` (system transaction); rows
/// another replica holds (locked now, or leased) are skipped.
pub async fn claim(conn: &mut PgConnection, lease: chrono::Duration, limit: i64) -> Result<Vec<Claimed>, Error> {
    let until: DateTime<Utc> = Utc::now() + lease;
    sqlx::query_as(
        "UPDATE account_syncs s SET claimed_until = $1 \
         FROM (SELECT connection_id, ad_account FROM account_syncs \
               WHERE next_at <= now() AND (claimed_until IS NULL OR claimed_until < now()) \
               ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED) d \
         WHERE s.connection_id = d.connection_id AND s.ad_account = d.ad_account \
         RETURNING s.tenant_id, s.connection_id, s.provider, s.ad_account, s.currency, s.time_zone, \
           s.backfilled_at IS NOT NULL AS backfilled",
    )
    .bind(until)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// Releases a claim: the next sync after `next`, the backfill recorded done when it was one and
/// succeeded, the error (empty: none) kept for operators.
pub async fn finish(
    conn: &mut PgConnection,
    connection: Uuid,
    ad_account: &str,
    next: DateTime<Utc>,
    succeeded: bool,
    rows: i64,
    error: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE account_syncs SET claimed_until = NULL, next_at = $3, last_error = $5, \
           synced_rows = synced_rows + $6, \
           backfilled_at = CASE WHEN $4 THEN coalesce(backfilled_at, now()) ELSE backfilled_at END \
         WHERE connection_id = $1 AND ad_account = $2",
    )
    .bind(connection)
    .bind(ad_account)
    .bind(next)
    .bind(succeeded)
    .bind(error)
    .bind(rows)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}
