//! The credit ledger: grants, reserve, commit, release and expiry. Every balance change is one
//! conditional UPDATE on the workspace's balance row plus an append-only ledger row, in one
//! transaction, so the balance cannot go below zero under any concurrency and
//! `sum(ledger) = available`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId, WorkspaceId};
use nexus_platform::db::{DbResultExt, Keyset, commit, system, tenant};
use sqlx::PgConnection;

use super::Billing;
use crate::domain::{self, Balance, LedgerEntry, Reservation};
use crate::repo::credits::Charged;
use crate::{events, repo};

impl Billing {
    /// Adds credits once per idempotency key. `new_period` resets the period counters.
    pub async fn grant(
        conn: &mut PgConnection,
        tenant: TenantId,
        amount: i64,
        kind: &str,
        key: &str,
        new_period: bool,
    ) -> Result<bool, Error> {
        repo::credits::grant(conn, tenant, amount, kind, key, new_period).await
    }

    /// What is left at the end of a period that does not roll over expires.
    pub(super) async fn expire_left(conn: &mut PgConnection, tenant: TenantId) -> Result<(), Error> {
        let left = repo::credits::expire_left(&mut *conn, tenant).await?;
        if left > 0 {
            repo::credits::ledger_row(conn, tenant, "expire", -left, 0, "period_end", None).await?;
        }
        Ok(())
    }

    /// The balance and the end of the period it counts.
    #[tracing::instrument(skip_all)]
    pub async fn balance(&self, workspace: TenantId) -> Result<(Balance, DateTime<Utc>), Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let b = repo::credits::balance(&mut tx).await?;
        let end = repo::subscriptions::period_end(&mut tx).await?;
        commit(tx).await?;
        Ok((b, end))
    }

    #[tracing::instrument(skip_all)]
    pub async fn ledger(&self, workspace: TenantId, page: &PageRequest) -> Result<Page<LedgerEntry>, Error> {
        let keyset = Keyset::new(page)?;
        let mut tx = tenant(&self.db, workspace).await?;
        let rows = repo::credits::ledger(&mut tx, &keyset).await?;
        commit(tx).await?;
        Ok(keyset.page(rows, |r| (r.created_at, r.id)))
    }

    /// Holds credits for a metered action: `credits` explicitly, or `quantity` units of `action`
    /// at its price. The same key answers with the same reservation and charges nothing again.
    #[tracing::instrument(skip_all, fields(action = %action))]
    pub async fn reserve(
        &self,
        workspace: TenantId,
        action: &str,
        quantity: i64,
        credits: i64,
        key: &str,
        ttl_seconds: u32,
    ) -> Result<(Reservation, i64), Error> {
        domain::check_idempotency_key(key)?;
        let ttl = if ttl_seconds == 0 {
            self.cfg.default_reservation_ttl
        } else {
            Duration::from_secs(u64::from(ttl_seconds))
        };
        if ttl > self.cfg.max_reservation_ttl {
            return Err(Error::invalid("subscriptions.invalid_ttl")
                .with_param("max", self.cfg.max_reservation_ttl.as_secs().to_string()));
        }
        let unit = if credits > 0 { None } else { self.unit_price(action).await? };
        let (action, amount) = domain::price(action, quantity, credits, unit)?;
        if let Some(done) = self.try_reserve(workspace, &action, amount, key, ttl).await? {
            return Ok(done);
        }
        // Either a workspace not provisioned yet (a new one whose sign-up event is still in
        // flight) or too few credits. Provisioning here serializes on the workspace: its INSERT
        // takes the subscription's unique key, so when the sign-up consumer is provisioning the
        // same workspace at this moment, this waits for its commit and then reads its grant.
        // Either way, when the credits are there now (we made them, someone else just did, or a
        // hold was given back meanwhile), try again: a workspace being provisioned never answers 402.
        let mut tx = tenant(&self.db, workspace).await?;
        let created = Self::ensure_subscription(&mut tx, workspace).await?;
        let available = repo::credits::available(&mut tx).await?;
        commit(tx).await?;
        if (created || available >= amount)
            && let Some(done) = self.try_reserve(workspace, &action, amount, key, ttl).await?
        {
            return Ok(done);
        }
        metrics::counter!("nexus_credits_refused_total").increment(1);
        Err(domain::insufficient(available, amount))
    }

    /// One autocommitted statement does the work: the balance row of a busy workspace stays
    /// locked from its UPDATE to the commit, so no client round trip happens in between.
    async fn try_reserve(
        &self,
        workspace: TenantId,
        action: &str,
        amount: i64,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<(Reservation, i64)>, Error> {
        let mut conn = self.db.acquire().await.db()?;
        repo::credits::reserve(&mut conn, workspace, action, amount, key, ttl).await
    }

    /// Settling twice answers like the first time (`Some(available)`); settling a reservation
    /// closed the other way is refused; `None` means it is still held.
    async fn already_settled(conn: &mut PgConnection, r: &Reservation, same: &[&str]) -> Result<Option<i64>, Error> {
        if same.contains(&r.status.as_str()) {
            return Ok(Some(repo::credits::available(conn).await?));
        }
        if r.status == "held" {
            return Ok(None);
        }
        Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.reservation_closed")
            .with_param("status", r.status.clone()))
    }

    async fn lock_reservation(conn: &mut PgConnection, id: uuid::Uuid) -> Result<Reservation, Error> {
        repo::credits::lock_reservation(conn, id)
            .await?
            .ok_or_else(|| Error::not_found("subscriptions.reservation_not_found"))
    }

    /// Charges `credits` (all of the hold when `None`) and gives the rest back.
    #[tracing::instrument(skip_all, fields(reservation = %reservation))]
    pub async fn commit(
        &self,
        workspace: TenantId,
        reservation: &str,
        credits: Option<i64>,
    ) -> Result<(Reservation, i64), Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        let out = self.commit_in(&mut tx, workspace, reservation, credits).await?;
        commit(tx).await?;
        Ok(out)
    }

    /// [`Self::commit`] inside a transaction already confined to `tenant`.
    pub async fn commit_in(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        reservation: &str,
        credits: Option<i64>,
    ) -> Result<(Reservation, i64), Error> {
        let id = domain::parse_reservation(reservation)?;
        let r = Self::lock_reservation(&mut *tx, id).await?;
        if let Some(available) = Self::already_settled(&mut *tx, &r, &["committed"]).await? {
            return Ok((r, available));
        }
        let actual = credits.unwrap_or(r.amount);
        if actual < 0 || actual > r.amount {
            return Err(
                Error::invalid("subscriptions.commit_exceeds_reservation").with_param("reserved", r.amount.to_string())
            );
        }
        let balance = repo::credits::settle_hold(&mut *tx, r.amount, actual).await?;
        let committed = Self::record_charge(&mut *tx, tenant, &r, actual, r.amount - actual, balance).await?;
        Ok((committed, balance.available))
    }

    /// What every charge of a reservation writes once the balance is updated: the reservation
    /// committed with `charged`, the ledger row (`ledger_delta` to `available`), the
    /// `credits.charged` event and the 80 %/100 % notices.
    async fn record_charge(
        tx: &mut PgConnection,
        tenant: TenantId,
        r: &Reservation,
        charged: i64,
        ledger_delta: i64,
        balance: Charged,
    ) -> Result<Reservation, Error> {
        let committed = repo::credits::close_reservation(&mut *tx, r.id, "committed", charged).await?;
        repo::credits::ledger_row(&mut *tx, tenant, "commit", ledger_delta, balance.available, &r.action, Some(r.id))
            .await?;
        events::credits_charged(&mut *tx, tenant, r.id, &r.action, charged).await?;
        Self::notify_thresholds(&mut *tx, tenant, balance.used - charged, balance).await?;
        Ok(committed)
    }

    /// Charges a job whose hold expired before its settlement arrived: the job's result was stored
    /// (its `MeteredJobFinished` says so), but subscriptions was down longer than the hold's TTL
    /// and the sweeper gave the credits back first. The charge is taken from what is available
    /// now, at most all of it (the balance never goes below zero), and the reservation becomes
    /// committed, so a second settlement of it charges nothing. A reservation that is not expired
    /// is left as it is (`Ok(None)`).
    pub async fn charge_expired_in(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        reservation: &str,
        credits: Option<i64>,
    ) -> Result<Option<(Reservation, i64)>, Error> {
        let id = domain::parse_reservation(reservation)?;
        let r = Self::lock_reservation(&mut *tx, id).await?;
        if r.status != "expired" {
            return Ok(None);
        }
        let wanted = credits.unwrap_or(r.amount).clamp(0, r.amount);
        let (charged, balance) = repo::credits::charge_available(&mut *tx, wanted).await?;
        if charged < wanted {
            tracing::warn!(reservation = %id, wanted, charged, "late charge capped at the available credits");
        }
        let committed = Self::record_charge(&mut *tx, tenant, &r, charged, -charged, balance).await?;
        Ok(Some((committed, balance.available)))
    }

    /// Events and notices at 80% and 100% of the period's credits, once per period each.
    async fn notify_thresholds(
        conn: &mut PgConnection,
        tenant: TenantId,
        before: i64,
        after: Charged,
    ) -> Result<(), Error> {
        let mut crossed = domain::thresholds_crossed(before, after.used, after.granted);
        if after.available == 0 && !crossed.contains(&100) {
            crossed.push(100);
        }
        let period = repo::subscriptions::period_start(&mut *conn).await?;
        for percent in crossed {
            let pct = i32::try_from(percent).unwrap_or(100);
            if repo::credits::insert_notice(&mut *conn, tenant, pct, period).await? {
                events::credits_notice(&mut *conn, tenant, percent, after.available, after.granted).await?;
            }
        }
        Ok(())
    }

    /// Gives the whole hold back.
    #[tracing::instrument(skip_all, fields(reservation = %reservation))]
    pub async fn release(&self, workspace: TenantId, reservation: &str) -> Result<(Reservation, i64), Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        let out = Self::release_in(&mut tx, workspace, reservation).await?;
        commit(tx).await?;
        Ok(out)
    }

    /// [`Self::release`] inside a transaction already confined to `tenant`.
    pub async fn release_in(
        tx: &mut PgConnection,
        tenant: TenantId,
        reservation: &str,
    ) -> Result<(Reservation, i64), Error> {
        let id = domain::parse_reservation(reservation)?;
        let r = Self::lock_reservation(&mut *tx, id).await?;
        if let Some(available) = Self::already_settled(&mut *tx, &r, &["released", "expired"]).await? {
            return Ok((r, available));
        }
        Self::give_back(tx, tenant, &r, "released").await
    }

    async fn give_back(
        conn: &mut PgConnection,
        tenant: TenantId,
        r: &Reservation,
        status: &str,
    ) -> Result<(Reservation, i64), Error> {
        let available = repo::credits::give_back(&mut *conn, tenant, r.amount).await?;
        let updated = repo::credits::close_reservation(&mut *conn, r.id, status, 0).await?;
        repo::credits::ledger_row(conn, tenant, "release", r.amount, available, &r.action, Some(r.id)).await?;
        Ok((updated, available))
    }

    /// Releases reservations whose holder never committed (crashed, timed out). Returns how many.
    #[tracing::instrument(skip_all)]
    pub async fn expire_reservations(&self) -> Result<usize, Error> {
        let mut tx = system(&self.db).await?;
        let due = repo::credits::lock_expired(&mut tx).await?;
        for (id, tenant) in &due {
            let r = Self::lock_reservation(&mut tx, *id).await?;
            Self::give_back(&mut tx, WorkspaceId::from_uuid(*tenant), &r, "expired").await?;
        }
        commit(tx).await?;
        if !due.is_empty() {
            metrics::counter!("nexus_credits_reservations_expired_total").increment(due.len() as u64);
        }
        Ok(due.len())
    }
}
