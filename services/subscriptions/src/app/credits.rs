//! The credit ledger: grants, reserve, commit, release and expiry. The rules themselves (each a
//! conditional UPDATE of the workspace's balance row plus an append-only ledger row, so the
//! balance cannot go below zero under any concurrency and `sum(ledger) = available`) are SQL
//! functions in one migration, 0005_credit_rules.sql; here are validation, the answers to
//! settling twice, and the events.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::db::{Keyset, commit, system, tenant};
use sqlx::PgConnection;

use super::Billing;
use crate::domain::{self, Balance, LedgerEntry, Reservation};
use crate::repo::credits::{Charged, Hold, Outcome, Settled};
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
        repo::credits::expire_period(conn, tenant).await
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
    /// locked from its UPDATE to the commit, so no client round trip happens in between. Callers
    /// of a busy workspace share that statement (see [`super::batch`]).
    async fn try_reserve(
        &self,
        workspace: TenantId,
        action: &str,
        amount: i64,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<(Reservation, i64)>, Error> {
        let hold = Hold {
            id: uuid::Uuid::now_v7(),
            action: action.to_owned(),
            amount,
            key: key.to_owned(),
            ttl,
            audit: nexus_platform::db::audit_settings(),
        };
        self.batches.reserve(&self.db, workspace, hold).await
    }

    /// Settles a reservation of the transaction's workspace; `None` when it was not held.
    async fn settle(
        conn: &mut PgConnection,
        reservation: &str,
        outcome: Outcome,
        credits: Option<i64>,
    ) -> Result<Settled, Error> {
        let id = domain::parse_reservation(reservation)?;
        repo::credits::settle(conn, id, outcome, credits)
            .await?
            .ok_or_else(|| Error::not_found("subscriptions.reservation_not_found"))
    }

    /// Settling twice answers like the first time; settling a reservation closed the other way
    /// is refused.
    fn already_settled(s: Settled, same: &[&str]) -> Result<(Reservation, i64), Error> {
        if same.contains(&s.reservation.status.as_str()) {
            return Ok((s.reservation, s.balance.available));
        }
        Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.reservation_closed")
            .with_param("status", s.reservation.status))
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
        let s = Self::settle(&mut *tx, reservation, Outcome::Committed, credits).await?;
        if !s.settled {
            if s.reservation.status == "held" {
                // Still held, so what was refused is the amount.
                return Err(Error::invalid("subscriptions.commit_exceeds_reservation")
                    .with_param("reserved", s.reservation.amount.to_string()));
            }
            return Self::already_settled(s, &["committed"]);
        }
        Self::charged(&mut *tx, tenant, &s).await?;
        Ok((s.reservation, s.balance.available))
    }

    /// What every charge of a reservation announces: the `credits.charged` event and the
    /// 80 %/100 % notices.
    async fn charged(tx: &mut PgConnection, tenant: TenantId, s: &Settled) -> Result<(), Error> {
        let (r, charged) = (&s.reservation, s.reservation.committed_amount);
        events::credits_charged(&mut *tx, tenant, r.id, &r.action, charged).await?;
        Self::notify_thresholds(&mut *tx, tenant, s.balance.used - charged, s.balance).await
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
        let s = Self::settle(&mut *tx, reservation, Outcome::Late, credits).await?;
        if !s.settled {
            return Ok(None);
        }
        let wanted = credits.unwrap_or(s.reservation.amount).clamp(0, s.reservation.amount);
        let charged = s.reservation.committed_amount;
        if charged < wanted {
            tracing::warn!(reservation = %s.reservation.id, wanted, charged, "late charge capped at the available credits");
        }
        Self::charged(&mut *tx, tenant, &s).await?;
        Ok(Some((s.reservation, s.balance.available)))
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
        _tenant: TenantId,
        reservation: &str,
    ) -> Result<(Reservation, i64), Error> {
        let s = Self::settle(tx, reservation, Outcome::Released, None).await?;
        if s.settled {
            Ok((s.reservation, s.balance.available))
        } else {
            Self::already_settled(s, &["released", "expired"])
        }
    }

    /// Releases reservations whose holder never committed (crashed, timed out). Returns how many.
    #[tracing::instrument(skip_all)]
    pub async fn expire_reservations(&self) -> Result<usize, Error> {
        let mut tx = system(&self.db).await?;
        let expired = repo::credits::expire_due(&mut tx, 500).await?;
        commit(tx).await?;
        if expired > 0 {
            metrics::counter!("nexus_credits_reservations_expired_total").increment(expired as u64);
        }
        Ok(expired)
    }
}
