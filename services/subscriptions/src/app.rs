//! Use cases: plans, the workspace's subscription, and the credit ledger (reserve, commit,
//! release, expiry, grants) with entitlements. Every balance change is one conditional UPDATE on
//! the workspace's balance row plus an append-only ledger row, in one transaction, so the
//! balance cannot go below zero under any concurrency and `sum(ledger) = available`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Locale, TenantId, WorkspaceId};
use nexus_platform::db::{begin_system, begin_tenant};
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::BillingConfig;
use crate::domain;

pub(crate) fn db(e: sqlx::Error) -> Error {
    nexus_platform::db::error(e)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    pub code: String,
    pub monthly_credits: i64,
    pub rollover: bool,
    pub entitlements: serde_json::Value,
    pub name: String,
    pub description: String,
    pub currency: String,
    pub amount_minor: i64,
    pub interval: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub tenant_id: Uuid,
    pub plan_code: String,
    pub status: String,
    pub billing: String,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
    pub pending_plan_code: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub currency: String,
}

impl SubscriptionRow {
    /// Paid features stay while Stripe retries a payment (past_due); they go when the
    /// subscription is canceled, unpaid or never completed.
    pub fn has_access(&self) -> bool {
        domain::status_has_access(&self.status)
    }

    /// The plan whose limits apply now.
    pub fn effective_plan(&self) -> &str {
        if self.has_access() { &self.plan_code } else { "free" }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BalanceRow {
    pub available: i64,
    pub reserved: i64,
    pub period_grant: i64,
    pub period_used: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationRow {
    pub id: Uuid,
    pub action: String,
    pub amount: i64,
    pub status: String,
    pub committed_amount: i64,
    pub expires_at: DateTime<Utc>,
}

/// A workspace's balance right after an update: what the ledger and the notices need.
#[derive(Debug, Clone, Copy)]
struct Balance {
    available: i64,
    used: i64,
    granted: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerRow {
    pub id: Uuid,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub action: String,
    pub reservation_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct EntitlementView {
    pub feature: String,
    pub allowed: bool,
    pub limit: i64,
    pub used: i64,
}

#[derive(Debug, Clone)]
pub struct UsageView {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub credits_used: i64,
    pub credits_granted: i64,
    pub by_action: HashMap<String, i64>,
    pub features: Vec<EntitlementView>,
}

#[derive(sqlx::FromRow)]
struct TryReserveRow {
    r_id: Uuid,
    r_action: String,
    r_amount: i64,
    r_status: String,
    r_committed: i64,
    r_expires_at: DateTime<Utc>,
    r_available: i64,
}

enum Reserved {
    Done(ReservationRow, i64),
    Refused,
}

/// Keyset cursor of the ledger listing.
#[derive(Debug, Serialize, Deserialize)]
struct LedgerCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

pub struct Billing {
    pub pool: PgPool,
    pub cfg: BillingConfig,
    /// Credits per action, read from `price_table` at most every [`PRICE_CACHE_TTL`]: every
    /// reservation needs its price, and the table changes by deployment, not by request.
    prices: std::sync::RwLock<Option<(std::time::Instant, HashMap<String, i64>)>>,
}

const PRICE_CACHE_TTL: Duration = Duration::from_secs(30);

pub(crate) const SUBSCRIPTION_COLUMNS: &str = "tenant_id, plan_code, status, billing, current_period_start, current_period_end, \
     cancel_at_period_end, pending_plan_code, stripe_customer_id, stripe_subscription_id, currency";

const RESERVATION_COLUMNS: &str = "id, action, amount, status, committed_amount, expires_at";

impl Billing {
    pub fn new(pool: PgPool, cfg: BillingConfig) -> Self {
        Self { pool, cfg, prices: std::sync::RwLock::new(None) }
    }

    async fn unit_price(&self, action: &str) -> Result<Option<i64>, Error> {
        {
            let cached = self.prices.read().unwrap_or_else(|p| p.into_inner());
            if let Some((at, table)) = cached.as_ref()
                && at.elapsed() < PRICE_CACHE_TTL
            {
                return Ok(table.get(action).copied());
            }
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT action, credits FROM price_table").fetch_all(&self.pool).await.map_err(db)?;
        let table: HashMap<String, i64> = rows.into_iter().collect();
        let price = table.get(action).copied();
        *self.prices.write().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), table));
        Ok(price)
    }

    pub async fn list_plans(&self, locale: Locale, currency: &str) -> Result<Vec<PlanRow>, Error> {
        let currency = if currency.is_empty() { "USD" } else { currency };
        currency.parse::<nexus_kernel::Currency>()?;
        let rows: Vec<PlanRow> = sqlx::query_as(
            "SELECT p.code, p.monthly_credits, p.rollover, p.entitlements, \
                    coalesce(t.name, e.name) AS name, coalesce(t.description, e.description) AS description, \
                    coalesce(pp.currency, usd.currency) AS currency, coalesce(pp.amount_minor, usd.amount_minor) AS amount_minor, \
                    coalesce(pp.interval, usd.interval) AS interval \
             FROM plans p \
             JOIN plan_texts e ON e.plan_code = p.code AND e.locale = 'en' \
             LEFT JOIN plan_texts t ON t.plan_code = p.code AND t.locale = $1 \
             JOIN plan_prices usd ON usd.plan_code = p.code AND usd.currency = 'USD' \
             LEFT JOIN plan_prices pp ON pp.plan_code = p.code AND pp.currency = $2 \
             WHERE p.active ORDER BY p.rank",
        )
        .bind(locale.code())
        .bind(currency)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows)
    }

    pub async fn prices_of(&self, plan: &str) -> Result<Vec<(String, i64)>, Error> {
        sqlx::query_as("SELECT currency, amount_minor FROM plan_prices WHERE plan_code = $1 ORDER BY currency")
            .bind(plan)
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    /// Puts a workspace on FREE with its first grant, unless it already has a subscription.
    /// Returns whether it was created. Idempotent; safe under races.
    pub async fn ensure_subscription(conn: &mut PgConnection, tenant: TenantId) -> Result<bool, Error> {
        let start = Utc::now();
        let created: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO subscriptions (tenant_id, plan_code, status, current_period_start, current_period_end) \
             VALUES ($1, 'free', 'active', $2, $3) ON CONFLICT (tenant_id) DO NOTHING RETURNING id",
        )
        .bind(tenant.as_uuid())
        .bind(start)
        .bind(domain::next_period_end(start))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        if created.is_none() {
            return Ok(false);
        }
        sqlx::query("INSERT INTO credit_balances (tenant_id, available) VALUES ($1, 0) ON CONFLICT DO NOTHING")
            .bind(tenant.as_uuid())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        let credits: i64 = sqlx::query_scalar("SELECT monthly_credits FROM plans WHERE code = 'free'")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        Self::grant(conn, tenant, credits, "grant", &format!("period:free:{}", start.timestamp_micros()), true).await?;
        enqueue(
            conn,
            "nexus.subscriptions.subscription.changed",
            Some(tenant),
            &events::SubscriptionChanged {
                workspace_id: tenant.to_string(),
                plan_code: "free".into(),
                previous_plan_code: String::new(),
                status: "active".into(),
            },
        )
        .await
        .map_err(db)?;
        Ok(true)
    }

    /// Adds credits once per idempotency key. `new_period` resets the period counters.
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
        .map_err(db)?
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
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        }
        Ok(fresh)
    }

    pub async fn subscription(&self, tenant: TenantId) -> Result<SubscriptionRow, Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        Self::ensure_subscription(&mut tx, tenant).await?;
        let row = Self::load_subscription(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    /// The tenant transaction's subscription row (RLS shows only that one).
    pub(crate) async fn load_subscription(conn: &mut PgConnection) -> Result<SubscriptionRow, Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions")))
            .fetch_one(conn)
            .await
            .map_err(db)
    }

    pub async fn balance(&self, tenant: TenantId) -> Result<(BalanceRow, DateTime<Utc>), Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        Self::ensure_subscription(&mut tx, tenant).await?;
        let b: BalanceRow =
            sqlx::query_as("SELECT available, reserved, period_grant, period_used FROM credit_balances")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let end: DateTime<Utc> =
            sqlx::query_scalar("SELECT current_period_end FROM subscriptions").fetch_one(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((b, end))
    }

    pub async fn ledger(
        &self,
        tenant: TenantId,
        page: &nexus_kernel::PageRequest,
    ) -> Result<nexus_kernel::Page<LedgerRow>, Error> {
        let cursor: Option<LedgerCursor> = page.decode_cursor()?;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let rows: Vec<LedgerRow> = sqlx::query_as(
            "SELECT id, kind, amount, balance_after, action, reservation_id, created_at FROM credit_ledger \
             WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2)) ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        Ok(nexus_kernel::Page::from_overfetch(rows, page.limit, |r| LedgerCursor { at: r.created_at, id: r.id }))
    }

    async fn price(&self, action: &str, quantity: i64, credits: i64) -> Result<(String, i64), Error> {
        if credits < 0 || quantity < 0 {
            return Err(Error::invalid("subscriptions.invalid_amount"));
        }
        if credits > 0 {
            let label = if action.is_empty() { "custom".to_owned() } else { action.to_owned() };
            return Ok((label, credits));
        }
        let unit: i64 = self.unit_price(action).await?.ok_or_else(|| {
            Error::invalid("subscriptions.unknown_action")
                .with_param("action", action.chars().take(64).collect::<String>())
        })?;
        let quantity = if quantity == 0 { 1 } else { quantity };
        if quantity > 100_000 {
            return Err(Error::invalid("subscriptions.invalid_amount"));
        }
        Ok((
            action.to_owned(),
            unit.checked_mul(quantity).ok_or_else(|| Error::invalid("subscriptions.invalid_amount"))?,
        ))
    }

    pub async fn reserve(
        &self,
        tenant: TenantId,
        action: &str,
        quantity: i64,
        credits: i64,
        key: &str,
        ttl_seconds: u32,
    ) -> Result<(ReservationRow, i64), Error> {
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
        let (action, amount) = self.price(action, quantity, credits).await?;
        match self.try_reserve(tenant, &action, amount, key, ttl).await? {
            Reserved::Done(r, available) => Ok((r, available)),
            Reserved::Refused => {
                // Either a workspace not provisioned yet (a new one whose sign-up event is still
                // in flight) or too few credits. Provisioning here serializes on the workspace:
                // its INSERT takes the subscription's unique key, so when the sign-up consumer
                // is provisioning the same workspace at this moment, this waits for its commit
                // and then reads its grant. Either way, when the credits are there now (we made
                // them, someone else just did, or a hold was given back meanwhile), try again:
                // a workspace being provisioned never answers 402.
                let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
                let created = Self::ensure_subscription(&mut tx, tenant).await?;
                let available = Self::available(&mut tx).await?;
                tx.commit().await.map_err(db)?;
                if (created || available >= amount)
                    && let Reserved::Done(r, available) = self.try_reserve(tenant, &action, amount, key, ttl).await?
                {
                    return Ok((r, available));
                }
                metrics::counter!("nexus_credits_refused_total").increment(1);
                Err(domain::insufficient(available, amount))
            }
        }
    }

    /// One autocommitted statement does the work (`reserve_credits`, migration 0003): set the
    /// tenant and audit context, insert the reservation (unless the key was seen), take the
    /// credits with a conditional UPDATE and append the ledger row. The balance row of a busy
    /// workspace stays locked from its UPDATE to the commit, so no client round trip happens in
    /// between. Too few credits raise `NX402` and nothing is kept.
    async fn try_reserve(
        &self,
        tenant: TenantId,
        action: &str,
        amount: i64,
        key: &str,
        ttl: Duration,
    ) -> Result<Reserved, Error> {
        let row: Result<TryReserveRow, sqlx::Error> = sqlx::query_as(
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
        .fetch_one(&self.pool)
        .await;
        match row {
            Ok(r) => Ok(Reserved::Done(
                ReservationRow {
                    id: r.r_id,
                    action: r.r_action,
                    amount: r.r_amount,
                    status: r.r_status,
                    committed_amount: r.r_committed,
                    expires_at: r.r_expires_at,
                },
                r.r_available,
            )),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("NX402") => Ok(Reserved::Refused),
            Err(e) => Err(db(e)),
        }
    }

    pub(crate) async fn ledger_row(
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
            .map_err(db)?;
        Ok(())
    }

    fn parse_reservation(id: &str) -> Result<Uuid, Error> {
        Uuid::parse_str(id.strip_prefix("rsv_").unwrap_or(id))
            .map_err(|_| Error::not_found("subscriptions.reservation_not_found"))
    }

    /// Settling twice answers like the first time (`Some(available)`); settling a reservation
    /// closed the other way is refused; `None` means it is still held.
    async fn already_settled(conn: &mut PgConnection, r: &ReservationRow, same: &[&str]) -> Result<Option<i64>, Error> {
        if same.contains(&r.status.as_str()) {
            return Ok(Some(Self::available(conn).await?));
        }
        if r.status == "held" {
            return Ok(None);
        }
        Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.reservation_closed")
            .with_param("status", r.status.clone()))
    }

    /// Available credits of the transaction's workspace.
    async fn available(conn: &mut PgConnection) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT available FROM credit_balances").fetch_one(conn).await.map_err(db)
    }

    async fn lock_reservation(conn: &mut PgConnection, id: Uuid) -> Result<ReservationRow, Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found("subscriptions.reservation_not_found"))
    }

    pub async fn commit(
        &self,
        tenant: TenantId,
        reservation: &str,
        credits: Option<i64>,
    ) -> Result<(ReservationRow, i64), Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let out = self.commit_in(&mut tx, tenant, reservation, credits).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    /// [`Self::commit`] inside a transaction already confined to `tenant`.
    pub async fn commit_in(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        reservation: &str,
        credits: Option<i64>,
    ) -> Result<(ReservationRow, i64), Error> {
        let id = Self::parse_reservation(reservation)?;
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
        let (available, used, granted): (i64, i64, i64) = sqlx::query_as(
            "UPDATE credit_balances SET reserved = reserved - $1, available = available + $2, period_used = period_used + $3, updated_at = now() \
             RETURNING available, period_used, period_grant",
        )
        .bind(r.amount)
        .bind(r.amount - actual)
        .bind(actual)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let balance = Balance { available, used, granted };
        let committed = self.record_charge(&mut *tx, tenant, &r, actual, r.amount - actual, balance).await?;
        Ok((committed, available))
    }

    /// What every charge of a reservation writes once the balance is updated: the reservation
    /// committed with `charged`, the ledger row (`ledger_delta` to `available`), the
    /// `credits.charged` event and the 80 %/100 % notices.
    async fn record_charge(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        r: &ReservationRow,
        charged: i64,
        ledger_delta: i64,
        balance: Balance,
    ) -> Result<ReservationRow, Error> {
        let committed: ReservationRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE reservations SET status = 'committed', committed_amount = $2, settled_at = now() WHERE id = $1 RETURNING {RESERVATION_COLUMNS}"
        )))
        .bind(r.id)
        .bind(charged)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        Self::ledger_row(&mut *tx, tenant, "commit", ledger_delta, balance.available, &r.action, Some(r.id)).await?;
        enqueue(
            &mut *tx,
            "nexus.subscriptions.credits.charged",
            Some(tenant),
            &events::CreditsCharged {
                workspace_id: tenant.to_string(),
                reservation_id: r.id.to_string(),
                action: r.action.clone(),
                credits: charged,
            },
        )
        .await
        .map_err(db)?;
        self.notify_thresholds(
            &mut *tx,
            tenant,
            balance.used - charged,
            balance.used,
            balance.granted,
            balance.available,
        )
        .await?;
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
    ) -> Result<Option<(ReservationRow, i64)>, Error> {
        let id = Self::parse_reservation(reservation)?;
        let r = Self::lock_reservation(&mut *tx, id).await?;
        if r.status != "expired" {
            return Ok(None);
        }
        let wanted = credits.unwrap_or(r.amount).clamp(0, r.amount);
        let before: i64 = sqlx::query_scalar("SELECT available FROM credit_balances FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let charged = wanted.min(before);
        let (available, used, granted): (i64, i64, i64) = sqlx::query_as(
            "UPDATE credit_balances SET available = available - $1, period_used = period_used + $1, updated_at = now() \
             RETURNING available, period_used, period_grant",
        )
        .bind(charged)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if charged < wanted {
            tracing::warn!(reservation = %id, wanted, charged, "late charge capped at the available credits");
        }
        let balance = Balance { available, used, granted };
        let committed = self.record_charge(&mut *tx, tenant, &r, charged, -charged, balance).await?;
        Ok(Some((committed, available)))
    }

    /// Events and notices at 80% and 100% of the period's credits, once per period each.
    async fn notify_thresholds(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        before: i64,
        after: i64,
        granted: i64,
        available: i64,
    ) -> Result<(), Error> {
        let mut crossed = domain::thresholds_crossed(before, after, granted);
        if available == 0 && !crossed.contains(&100) {
            crossed.push(100);
        }
        let period: DateTime<Utc> = sqlx::query_scalar("SELECT current_period_start FROM subscriptions")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        for percent in crossed {
            let fresh = sqlx::query("INSERT INTO credit_notices (tenant_id, percent, period_start) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(tenant.as_uuid())
                .bind(i32::try_from(percent).unwrap_or(100))
                .bind(period)
                .execute(&mut *conn)
                .await
                .map_err(db)?
                .rows_affected()
                == 1;
            if !fresh {
                continue;
            }
            if percent >= 100 {
                enqueue(
                    conn,
                    "nexus.subscriptions.credits.exhausted",
                    Some(tenant),
                    &events::CreditsExhausted { workspace_id: tenant.to_string() },
                )
                .await
                .map_err(db)?;
            } else {
                enqueue(
                    conn,
                    "nexus.subscriptions.credits.low",
                    Some(tenant),
                    &events::CreditsLow {
                        workspace_id: tenant.to_string(),
                        available,
                        period_grant: granted,
                        percent_used: percent,
                    },
                )
                .await
                .map_err(db)?;
            }
        }
        Ok(())
    }

    pub async fn release(&self, tenant: TenantId, reservation: &str) -> Result<(ReservationRow, i64), Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let out = Self::release_in(&mut tx, tenant, reservation).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    /// [`Self::release`] inside a transaction already confined to `tenant`.
    pub async fn release_in(
        tx: &mut PgConnection,
        tenant: TenantId,
        reservation: &str,
    ) -> Result<(ReservationRow, i64), Error> {
        let id = Self::parse_reservation(reservation)?;
        let r = Self::lock_reservation(&mut *tx, id).await?;
        if let Some(available) = Self::already_settled(&mut *tx, &r, &["released", "expired"]).await? {
            return Ok((r, available));
        }
        Self::give_back(tx, tenant, &r, "released").await
    }

    async fn give_back(
        conn: &mut PgConnection,
        tenant: TenantId,
        r: &ReservationRow,
        status: &str,
    ) -> Result<(ReservationRow, i64), Error> {
        let available: i64 = sqlx::query_scalar(
            "UPDATE credit_balances SET reserved = reserved - $1, available = available + $1, updated_at = now() WHERE tenant_id = $2 RETURNING available",
        )
        .bind(r.amount)
        .bind(tenant.as_uuid())
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        let updated: ReservationRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE reservations SET status = $2, settled_at = now() WHERE id = $1 RETURNING {RESERVATION_COLUMNS}"
        )))
        .bind(r.id)
        .bind(status)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        Self::ledger_row(conn, tenant, "release", r.amount, available, &r.action, Some(r.id)).await?;
        Ok((updated, available))
    }

    /// Releases reservations whose holder never committed (crashed, timed out). Returns how many.
    pub async fn expire_reservations(&self) -> Result<usize, Error> {
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT id, tenant_id FROM reservations WHERE status = 'held' AND expires_at <= now() ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for (id, tenant) in &due {
            let r = Self::lock_reservation(&mut tx, *id).await?;
            Self::give_back(&mut tx, WorkspaceId::from_uuid(*tenant), &r, "expired").await?;
        }
        tx.commit().await.map_err(db)?;
        if !due.is_empty() {
            metrics::counter!("nexus_credits_reservations_expired_total").increment(due.len() as u64);
        }
        Ok(due.len())
    }

    /// Starts the next period of locally billed subscriptions whose period ended: applies a
    /// pending downgrade or cancellation, then grants (reset or roll over, as the plan says).
    pub async fn renew_due(&self) -> Result<usize, Error> {
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let due: Vec<SubscriptionRow> = sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {SUBSCRIPTION_COLUMNS} \
             FROM subscriptions WHERE billing = 'local' AND current_period_end <= now() ORDER BY current_period_end LIMIT 200 FOR UPDATE SKIP LOCKED")),
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for s in &due {
            let tenant = WorkspaceId::from_uuid(s.tenant_id);
            let next_plan = if s.cancel_at_period_end {
                "free".to_owned()
            } else {
                s.pending_plan_code.clone().unwrap_or_else(|| s.plan_code.clone())
            };
            let start = s.current_period_end;
            sqlx::query(
                "UPDATE subscriptions SET plan_code = $2, current_period_start = $3, current_period_end = $4, cancel_at_period_end = false, \
                 pending_plan_code = NULL, status = 'active', updated_at = now() WHERE tenant_id = $1",
            )
            .bind(s.tenant_id)
            .bind(&next_plan)
            .bind(start)
            .bind(domain::next_period_end(start))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            Self::start_period(&mut tx, tenant, &next_plan, start).await?;
            if next_plan != "free" {
                // Local billing writes its own receipt for the new period.
                let amount: Option<i64> =
                    sqlx::query_scalar("SELECT amount_minor FROM plan_prices WHERE plan_code = $1 AND currency = $2")
                        .bind(&next_plan)
                        .bind(&s.currency)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                let receipt = crate::payments::Payments::local_receipt(
                    "subscription_cycle",
                    &s.currency,
                    amount.unwrap_or(0),
                    start,
                    Some(domain::next_period_end(start)),
                );
                crate::payments::Payments::record_invoice(&mut tx, tenant, &receipt, false).await?;
            }
            if next_plan != s.plan_code {
                enqueue(
                    &mut tx,
                    "nexus.subscriptions.subscription.changed",
                    Some(tenant),
                    &events::SubscriptionChanged {
                        workspace_id: tenant.to_string(),
                        plan_code: next_plan.clone(),
                        previous_plan_code: s.plan_code.clone(),
                        status: "active".into(),
                    },
                )
                .await
                .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(due.len())
    }

    /// The monthly grant of a new period. Plans that do not roll over expire what is left first.
    pub async fn start_period(
        conn: &mut PgConnection,
        tenant: TenantId,
        plan: &str,
        start: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (credits, rollover): (i64, bool) =
            sqlx::query_as("SELECT monthly_credits, rollover FROM plans WHERE code = $1")
                .bind(plan)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        let key = format!("period:{plan}:{}", start.timestamp_micros());
        let already: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM credit_ledger WHERE tenant_id = $1 AND idempotency_key = $2)",
        )
        .bind(tenant.as_uuid())
        .bind(&key)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        if already {
            return Ok(());
        }
        if !rollover {
            let left: i64 = sqlx::query_scalar("SELECT available FROM credit_balances WHERE tenant_id = $1 FOR UPDATE")
                .bind(tenant.as_uuid())
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
            if left > 0 {
                sqlx::query("UPDATE credit_balances SET available = 0 WHERE tenant_id = $1")
                    .bind(tenant.as_uuid())
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                Self::ledger_row(conn, tenant, "expire", -left, 0, "period_end", None).await?;
            }
        }
        Self::grant(conn, tenant, credits, "grant", &key, true).await?;
        Ok(())
    }

    async fn limit_of(conn: &mut PgConnection, feature: &str) -> Result<(i64, DateTime<Utc>), Error> {
        domain::check_feature(feature)?;
        let sub = Self::load_subscription(conn).await?;
        let limit: Option<i64> = sqlx::query_scalar("SELECT (entitlements ->> $2)::bigint FROM plans WHERE code = $1")
            .bind(sub.effective_plan())
            .bind(feature)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        let limit =
            limit.ok_or_else(|| Error::invalid("subscriptions.unknown_feature").with_param("feature", feature))?;
        Ok((limit, sub.current_period_start))
    }

    pub async fn check_entitlement(&self, tenant: TenantId, feature: &str) -> Result<EntitlementView, Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        Self::ensure_subscription(&mut tx, tenant).await?;
        let (limit, period) = Self::limit_of(&mut tx, feature).await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(used), 0) FROM feature_usage WHERE feature = $1 AND period_start = $2",
        )
        .bind(feature)
        .bind(period)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(EntitlementView { feature: feature.into(), allowed: used < limit, limit, used })
    }

    pub async fn use_entitlement(&self, tenant: TenantId, feature: &str, key: &str) -> Result<EntitlementView, Error> {
        domain::check_idempotency_key(key)?;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        Self::ensure_subscription(&mut tx, tenant).await?;
        let (limit, period) = Self::limit_of(&mut tx, feature).await?;
        let fresh = sqlx::query(
            "INSERT INTO feature_uses (tenant_id, idempotency_key, feature) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(key)
        .bind(feature)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            == 1;
        if !fresh {
            tx.commit().await.map_err(db)?;
            return self.check_entitlement(tenant, feature).await;
        }
        let limit_reached = || {
            Error::new(ErrorKind::PaymentRequired, "subscriptions.limit_reached")
                .with_param("feature", feature)
                .with_param("limit", limit.to_string())
        };
        if limit <= 0 {
            return Err(limit_reached());
        }
        let used: Option<i64> = sqlx::query_scalar(
            "INSERT INTO feature_usage AS u (tenant_id, feature, period_start, used) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (tenant_id, feature, period_start) DO UPDATE SET used = u.used + 1 WHERE u.used < $4 RETURNING used",
        )
        .bind(tenant.as_uuid())
        .bind(feature)
        .bind(period)
        .bind(limit)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let used = used.ok_or_else(limit_reached)?;
        tx.commit().await.map_err(db)?;
        Ok(EntitlementView { feature: feature.into(), allowed: used < limit, limit, used })
    }

    pub async fn usage(&self, tenant: TenantId) -> Result<UsageView, Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        Self::ensure_subscription(&mut tx, tenant).await?;
        let sub = Self::load_subscription(&mut tx).await?;
        let b: BalanceRow =
            sqlx::query_as("SELECT available, reserved, period_grant, period_used FROM credit_balances")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let by_action: Vec<(String, i64)> = sqlx::query_as(
            "SELECT action, sum(committed_amount)::bigint FROM reservations WHERE status = 'committed' AND settled_at >= $1 GROUP BY action ORDER BY action",
        )
        .bind(sub.current_period_start)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let entitlements: serde_json::Value = sqlx::query_scalar("SELECT entitlements FROM plans WHERE code = $1")
            .bind(sub.effective_plan())
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let used: Vec<(String, i64)> =
            sqlx::query_as("SELECT feature, used FROM feature_usage WHERE period_start = $1")
                .bind(sub.current_period_start)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        let used: HashMap<String, i64> = used.into_iter().collect();
        let mut features: Vec<EntitlementView> = entitlements
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let limit = v.as_i64().unwrap_or(0);
                        let u = used.get(k).copied().unwrap_or(0);
                        EntitlementView { feature: k.clone(), allowed: u < limit, limit, used: u }
                    })
                    .collect()
            })
            .unwrap_or_default();
        features.sort_by(|a, b| a.feature.cmp(&b.feature));
        tx.commit().await.map_err(db)?;
        Ok(UsageView {
            period_start: sub.current_period_start,
            period_end: sub.current_period_end,
            credits_used: b.period_used,
            credits_granted: b.period_grant,
            by_action: by_action.into_iter().collect(),
            features,
        })
    }
}
