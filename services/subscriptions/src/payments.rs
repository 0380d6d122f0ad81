//! Paying: checkout (plans and credit packs), plan changes, cancellation, the Stripe portal,
//! invoices, and the one state machine that every subscription change goes through.
//!
//! Stripe is the source of truth when configured: webhooks and our own calls both end in
//! [`Payments::observe`] with the subscription as Stripe reports it *now* (re-read, never taken
//! from an event body, so events arriving out of order cannot move us backwards). Without a Stripe
//! key the same state machine runs on local sessions, so the product works offline.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use nexus_kernel::{Error, ErrorKind, TenantId, WorkspaceId};
use nexus_platform::db::{begin_system, begin_tenant};
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use nexus_providers::stripe::{CheckoutMode, CheckoutParams, StripeClient, StripeError, Subscription as StripeSub};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::{Billing, SUBSCRIPTION_COLUMNS, SubscriptionRow, db};
use crate::config::StripeSettings;
use crate::domain;

/// Stripe could not be reached or refused: transient failures are `unavailable` (the caller, or
/// Stripe's webhook retries, try again); anything else is a configuration or contract problem.
pub(crate) fn stripe_error(e: StripeError) -> Error {
    if e.retryable || e.status == 0 {
        Error::unavailable("subscriptions.payment_provider_unavailable").with_source(e)
    } else if e.is_card_error() {
        Error::new(ErrorKind::FailedPrecondition, "subscriptions.payment_failed").with_source(e)
    } else {
        Error::internal(e)
    }
}

/// A subscription as its billing source reports it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub plan: String,
    /// One of our stored statuses (see [`domain::normalize_status`]).
    pub status: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
    /// "stripe" or "local".
    pub billing: &'static str,
    pub stripe_customer: Option<String>,
    pub stripe_subscription: Option<String>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckoutRow {
    pub id: String,
    pub provider: String,
    pub kind: String,
    pub plan_code: Option<String>,
    pub pack_code: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    pub url: String,
    pub status: String,
}

const CHECKOUT_COLUMNS: &str = "id, provider, kind, plan_code, pack_code, currency, amount_minor, url, status";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub id: Uuid,
    pub provider: String,
    pub number: String,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub reason: String,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub hosted_url: String,
    pub pdf_url: String,
    pub created_at: DateTime<Utc>,
}

/// An invoice to store (from Stripe, or a local receipt).
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub provider: &'static str,
    pub external_id: String,
    pub number: String,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub reason: String,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub hosted_url: String,
    pub pdf_url: String,
}

#[derive(Debug, Clone)]
pub struct PackRow {
    pub code: String,
    pub credits: i64,
    pub currency: String,
    pub amount_minor: i64,
}

#[derive(Debug, Clone)]
pub struct CheckoutInput {
    pub kind: String,
    pub plan_code: String,
    pub pack_code: String,
    pub currency: String,
    pub success_url: String,
    pub cancel_url: String,
    pub idempotency_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct InvoiceCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

pub struct Payments {
    pub billing: Arc<Billing>,
    pub stripe: Option<StripeClient>,
    pub settings: StripeSettings,
}

pub(crate) fn unix(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_else(Utc::now)
}

fn local_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

impl Payments {
    fn pool(&self) -> &sqlx::PgPool {
        &self.billing.pool
    }

    /// Stripe price id configured for a plan or pack code.
    fn price_id(&self, code: &str) -> Result<&str, Error> {
        self.settings
            .prices
            .get(code)
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "subscriptions.price_not_configured"))
    }

    /// The plan a Stripe price stands for (configuration first, then the subscription's metadata).
    fn plan_of(&self, sub: &StripeSub) -> Option<String> {
        let by_price = sub.items.iter().find_map(|price| {
            self.settings.prices.iter().find(|(code, id)| *id == price && !code.starts_with("credits_")).map(|(c, _)| c)
        });
        by_price.cloned().or_else(|| sub.metadata.get("plan").cloned())
    }

    pub(crate) fn observed_from_stripe(&self, sub: &StripeSub) -> Option<Observed> {
        let plan = self.plan_of(sub)?;
        let status = domain::normalize_status(&sub.status)?;
        let now = Utc::now().timestamp();
        let start = sub.current_period_start.unwrap_or(now);
        Some(Observed {
            plan,
            status: status.into(),
            period_start: unix(start),
            period_end: sub.current_period_end.map(unix).unwrap_or_else(|| domain::next_period_end(unix(start))),
            cancel_at_period_end: sub.cancel_at_period_end,
            billing: "stripe",
            stripe_customer: Some(sub.customer.clone()).filter(|c| !c.is_empty()),
            stripe_subscription: Some(sub.id.clone()),
            currency: None,
        })
    }

    // -----------------------------------------------------------------------------------------
    // The state machine

    /// Brings the workspace's subscription to what its billing source reports, granting credits
    /// for a new period (once per period) or an upgrade (the prorated difference, once), and
    /// announcing changes. Downgrades reported mid-period wait for the period's end. Runs inside
    /// the caller's tenant transaction, with the subscription row locked.
    pub async fn observe(conn: &mut PgConnection, tenant: TenantId, obs: &Observed) -> Result<SubscriptionRow, Error> {
        Billing::ensure_subscription(conn, tenant).await?;
        let cur: SubscriptionRow =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions FOR UPDATE")))
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        let now = Utc::now();
        // News about a Stripe subscription this workspace no longer has changes nothing.
        if obs.billing == "stripe"
            && cur.stripe_subscription_id.is_some()
            && cur.stripe_subscription_id != obs.stripe_subscription
            && (obs.status == "canceled" || cur.has_access())
        {
            tracing::info!(stripe_subscription = ?obs.stripe_subscription, "ignoring a subscription the workspace has replaced");
            return Ok(cur);
        }
        if obs.status == "canceled" {
            // The paid subscription is over: back to FREE on a local period from now.
            if cur.plan_code == "free" && cur.billing == "local" {
                return Ok(cur);
            }
            sqlx::query(
                "UPDATE subscriptions SET plan_code = 'free', status = 'active', billing = 'local', stripe_subscription_id = NULL, \
                 current_period_start = $1, current_period_end = $2, cancel_at_period_end = false, pending_plan_code = NULL, \
                 stripe_customer_id = coalesce(stripe_customer_id, $3), updated_at = now()",
            )
            .bind(now)
            .bind(domain::next_period_end(now))
            .bind(&obs.stripe_customer)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Billing::start_period(conn, tenant, "free", now).await?;
            Self::announce(conn, tenant, "free", &cur.plan_code, "canceled").await?;
            return Billing::load_subscription(conn).await;
        }

        let ranks: Vec<(String, i32, i64)> =
            sqlx::query_as("SELECT code, rank, monthly_credits FROM plans WHERE code = ANY($1)")
                .bind(vec![cur.plan_code.clone(), obs.plan.clone()])
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
        let info = |code: &str| ranks.iter().find(|(c, _, _)| c == code).map(|(_, r, m)| (*r, *m));
        let (new_rank, new_credits) = info(&obs.plan)
            .ok_or_else(|| Error::invalid("subscriptions.unknown_plan").with_param("plan", &obs.plan))?;
        let (old_rank, old_credits) = info(&cur.plan_code).unwrap_or((0, 0));

        // The paid period already under way (and granted), as opposed to a new one starting: the
        // first paid period after FREE, a renewal, or access regained after an unpaid spell.
        let continuing = cur.current_period_start.timestamp() == obs.period_start.timestamp()
            && cur.plan_code != "free"
            && cur.has_access();
        let (plan, pending) = if continuing && new_rank < old_rank {
            // A downgrade takes effect when the period that was paid for ends.
            (cur.plan_code.clone(), Some(obs.plan.clone()))
        } else if continuing && obs.plan == cur.plan_code {
            (cur.plan_code.clone(), None)
        } else {
            (obs.plan.clone(), None)
        };
        sqlx::query(
            "UPDATE subscriptions SET plan_code = $1, status = $2, billing = $3, stripe_customer_id = coalesce($4, stripe_customer_id), \
             stripe_subscription_id = $5, current_period_start = $6, current_period_end = $7, cancel_at_period_end = $8, \
             pending_plan_code = $9, currency = coalesce($10, currency), updated_at = now()",
        )
        .bind(&plan)
        .bind(&obs.status)
        .bind(obs.billing)
        .bind(&obs.stripe_customer)
        .bind(&obs.stripe_subscription)
        .bind(obs.period_start)
        .bind(obs.period_end)
        .bind(obs.cancel_at_period_end)
        .bind(&pending)
        .bind(&obs.currency)
        .execute(&mut *conn)
        .await
        .map_err(db)?;

        if domain::status_has_access(&obs.status) {
            if !continuing {
                // The grant of a new period (keyed by plan and start: once, whichever event brings it).
                Billing::start_period(conn, tenant, &plan, obs.period_start).await?;
            } else if plan != cur.plan_code && new_rank > old_rank {
                // Upgrade inside the period: the extra monthly credits for what is left of it.
                let extra = domain::prorated(new_credits - old_credits, now, obs.period_start, obs.period_end);
                let key = format!("upgrade:{plan}:{}", obs.period_start.timestamp());
                if extra > 0 {
                    Billing::grant(conn, tenant, extra, "grant", &key, false).await?;
                }
            }
        }
        if plan != cur.plan_code || obs.status != cur.status {
            Self::announce(conn, tenant, &plan, &cur.plan_code, &obs.status).await?;
        }
        Billing::load_subscription(conn).await
    }

    async fn announce(
        conn: &mut PgConnection,
        tenant: TenantId,
        plan: &str,
        previous: &str,
        status: &str,
    ) -> Result<(), Error> {
        enqueue(
            conn,
            "nexus.subscriptions.subscription.changed",
            Some(tenant),
            &events::SubscriptionChanged {
                workspace_id: tenant.to_string(),
                plan_code: plan.into(),
                previous_plan_code: previous.into(),
                status: status.into(),
            },
        )
        .await
        .map(|_| ())
        .map_err(db)
    }

    /// Stores an invoice (or a newer state of it). Announces `invoice.paid` the first time it is
    /// seen paid, and `payment.failed` when `failed` says a payment attempt failed.
    pub async fn record_invoice(
        conn: &mut PgConnection,
        tenant: TenantId,
        inv: &NewInvoice,
        failed: bool,
    ) -> Result<(), Error> {
        let was_paid: Option<bool> =
            sqlx::query_scalar("SELECT status = 'paid' FROM invoices WHERE external_id = $1 FOR UPDATE")
                .bind(&inv.external_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
        sqlx::query(
            "INSERT INTO invoices (tenant_id, provider, external_id, number, status, amount_due, amount_paid, currency, reason, \
               period_start, period_end, hosted_url, pdf_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (external_id) DO UPDATE SET status = CASE WHEN invoices.status = 'paid' THEN 'paid' ELSE EXCLUDED.status END, \
               number = EXCLUDED.number, amount_due = EXCLUDED.amount_due, amount_paid = greatest(invoices.amount_paid, EXCLUDED.amount_paid), \
               hosted_url = EXCLUDED.hosted_url, pdf_url = EXCLUDED.pdf_url, updated_at = now()",
        )
        .bind(tenant.as_uuid())
        .bind(inv.provider)
        .bind(&inv.external_id)
        .bind(&inv.number)
        .bind(&inv.status)
        .bind(inv.amount_due)
        .bind(inv.amount_paid)
        .bind(inv.currency.to_uppercase())
        .bind(&inv.reason)
        .bind(inv.period_start)
        .bind(inv.period_end)
        .bind(&inv.hosted_url)
        .bind(&inv.pdf_url)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        if inv.status == "paid" && was_paid != Some(true) {
            enqueue(
                conn,
                "nexus.subscriptions.invoice.paid",
                Some(tenant),
                &events::InvoicePaid {
                    workspace_id: tenant.to_string(),
                    invoice_id: inv.external_id.clone(),
                    amount_minor: inv.amount_paid,
                    currency: inv.currency.to_uppercase(),
                },
            )
            .await
            .map_err(db)?;
        }
        if failed {
            enqueue(
                conn,
                "nexus.subscriptions.payment.failed",
                Some(tenant),
                &events::PaymentFailed { workspace_id: tenant.to_string(), invoice_id: inv.external_id.clone() },
            )
            .await
            .map_err(db)?;
        }
        Ok(())
    }

    pub(crate) fn local_receipt(
        reason: &str,
        currency: &str,
        amount: i64,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> NewInvoice {
        let id = local_id("lin");
        NewInvoice {
            provider: "local",
            number: format!("LOCAL-{}", &id[id.len() - 10..].to_uppercase()),
            external_id: id,
            status: "paid".into(),
            amount_due: amount,
            amount_paid: amount,
            currency: currency.into(),
            reason: reason.into(),
            period_start: Some(start),
            period_end: end,
            hosted_url: String::new(),
            pdf_url: String::new(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Catalogue

    async fn plan_price(conn: &mut PgConnection, plan: &str, currency: &str) -> Result<i64, Error> {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plans WHERE code = $1)")
            .bind(plan)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        if !exists {
            return Err(Error::invalid("subscriptions.unknown_plan").with_param("plan", plan));
        }
        sqlx::query_scalar("SELECT amount_minor FROM plan_prices WHERE plan_code = $1 AND currency = $2")
            .bind(plan)
            .bind(currency)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::invalid("subscriptions.unsupported_currency").with_param("currency", currency))
    }

    async fn pack(conn: &mut PgConnection, code: &str, currency: &str) -> Result<PackRow, Error> {
        let credits: Option<i64> = sqlx::query_scalar("SELECT credits FROM credit_packs WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        let credits = credits.ok_or_else(|| Error::invalid("subscriptions.unknown_pack").with_param("pack", code))?;
        let amount: i64 =
            sqlx::query_scalar("SELECT amount_minor FROM credit_pack_prices WHERE pack_code = $1 AND currency = $2")
                .bind(code)
                .bind(currency)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?
                .ok_or_else(|| Error::invalid("subscriptions.unsupported_currency").with_param("currency", currency))?;
        Ok(PackRow { code: code.into(), credits, currency: currency.into(), amount_minor: amount })
    }

    /// Credit packs with their price in `currency` (default USD).
    pub async fn list_packs(&self, currency: &str) -> Result<Vec<PackRow>, Error> {
        let currency = normalize_currency(currency)?;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT p.code, p.credits, pp.amount_minor FROM credit_packs p \
             JOIN credit_pack_prices pp ON pp.pack_code = p.code AND pp.currency = $1 ORDER BY p.rank",
        )
        .bind(&currency)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(code, credits, amount_minor)| PackRow { code, credits, currency: currency.clone(), amount_minor })
            .collect())
    }

    // -----------------------------------------------------------------------------------------
    // Checkout

    pub async fn create_checkout(&self, tenant: TenantId, input: CheckoutInput) -> Result<CheckoutRow, Error> {
        domain::check_idempotency_key(&input.idempotency_key)?;
        check_return_url(&input.success_url)?;
        check_return_url(&input.cancel_url)?;
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        Billing::ensure_subscription(&mut tx, tenant).await?;
        if let Some(row) = Self::checkout_by_key(&mut tx, &input.idempotency_key).await? {
            return Ok(row);
        }
        let sub = Billing::load_subscription(&mut tx).await?;
        let currency =
            if input.currency.is_empty() { sub.currency.clone() } else { normalize_currency(&input.currency)? };
        let (code, amount) = match input.kind.as_str() {
            "plan" => {
                if input.plan_code == "free" {
                    return Err(Error::invalid("subscriptions.unknown_plan").with_param("plan", "free"));
                }
                let amount = Self::plan_price(&mut tx, &input.plan_code, &currency).await?;
                if sub.plan_code != "free" && sub.has_access() {
                    return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.already_subscribed"));
                }
                (input.plan_code.clone(), amount)
            }
            "credits" => {
                let pack = Self::pack(&mut tx, &input.pack_code, &currency).await?;
                (pack.code, pack.amount_minor)
            }
            _ => return Err(Error::invalid("subscriptions.invalid_checkout_kind")),
        };
        // Hold no transaction open across the call to Stripe.
        tx.commit().await.map_err(db)?;

        let (id, provider, url) = match &self.stripe {
            Some(stripe) => {
                let price = self.price_id(&code)?.to_owned();
                let success =
                    if input.success_url.is_empty() { &self.settings.success_url } else { &input.success_url };
                let cancel = if input.cancel_url.is_empty() { &self.settings.cancel_url } else { &input.cancel_url };
                let mut params = CheckoutParams::subscription(price, success.clone(), cancel.clone());
                if input.kind == "credits" {
                    params.mode = CheckoutMode::Payment;
                }
                params.customer = sub.stripe_customer_id.clone();
                params.client_reference_id = Some(tenant.to_string());
                params.metadata = vec![
                    ("workspace_id".into(), tenant.to_string()),
                    ("kind".into(), input.kind.clone()),
                    (if input.kind == "plan" { "plan" } else { "pack" }.into(), code.clone()),
                ];
                let key = format!("checkout:{}:{}", tenant.as_uuid().simple(), input.idempotency_key);
                let session = stripe.create_checkout_session(&params, &key).await.map_err(stripe_error)?;
                (session.id, "stripe", session.url.unwrap_or_default())
            }
            None => (local_id("lcs"), "local", String::new()),
        };
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        let (plan_code, pack_code) = if input.kind == "plan" { (Some(code), None) } else { (None, Some(code)) };
        sqlx::query(
            "INSERT INTO checkout_sessions (id, tenant_id, provider, kind, plan_code, pack_code, currency, amount_minor, url, status, idempotency_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(tenant.as_uuid())
        .bind(provider)
        .bind(&input.kind)
        .bind(plan_code)
        .bind(pack_code)
        .bind(&currency)
        .bind(amount)
        .bind(&url)
        .bind(&input.idempotency_key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        // A concurrent request with the same key may have won: answer with whatever is stored.
        let row = Self::checkout_by_key(&mut tx, &input.idempotency_key)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("checkout session vanished")))?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    async fn checkout_by_key(conn: &mut PgConnection, key: &str) -> Result<Option<CheckoutRow>, Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKOUT_COLUMNS} FROM checkout_sessions WHERE idempotency_key = $1"
        )))
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(db)
    }

    async fn checkout_for_update(conn: &mut PgConnection, id: &str) -> Result<CheckoutRow, Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKOUT_COLUMNS} FROM checkout_sessions WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found("subscriptions.checkout_not_found"))
    }

    /// Local billing: the customer "pays" and the purchase applies, through [`Self::observe`] for
    /// plans and a purchase grant for packs. Completing twice changes nothing.
    pub async fn complete_local_checkout(&self, tenant: TenantId, id: &str) -> Result<CheckoutRow, Error> {
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        let row = Self::checkout_for_update(&mut tx, id).await?;
        if row.provider != "local" {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.checkout_not_local"));
        }
        if row.status == "complete" {
            return Ok(row);
        }
        let now = Utc::now();
        match (row.plan_code.as_deref(), row.pack_code.as_deref()) {
            (Some(plan), _) => {
                let sub = Billing::load_subscription(&mut tx).await?;
                if sub.plan_code != "free" && sub.has_access() {
                    return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.already_subscribed"));
                }
                let end = domain::next_period_end(now);
                let obs = Observed {
                    plan: plan.into(),
                    status: "active".into(),
                    period_start: now,
                    period_end: end,
                    cancel_at_period_end: false,
                    billing: "local",
                    stripe_customer: None,
                    stripe_subscription: None,
                    currency: Some(row.currency.clone()),
                };
                Self::observe(&mut tx, tenant, &obs).await?;
                let receipt =
                    Self::local_receipt("subscription_create", &row.currency, row.amount_minor, now, Some(end));
                Self::record_invoice(&mut tx, tenant, &receipt, false).await?;
            }
            (None, Some(pack)) => {
                let pack = Self::pack(&mut tx, pack, &row.currency).await?;
                Billing::grant(&mut tx, tenant, pack.credits, "purchase", &format!("checkout:{}", row.id), false)
                    .await?;
                let receipt = Self::local_receipt("credits", &row.currency, row.amount_minor, now, None);
                Self::record_invoice(&mut tx, tenant, &receipt, false).await?;
            }
            (None, None) => return Err(Error::internal(anyhow::anyhow!("checkout session without item"))),
        }
        sqlx::query("UPDATE checkout_sessions SET status = 'complete', completed_at = now() WHERE id = $1")
            .bind(&row.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(CheckoutRow { status: "complete".into(), ..row })
    }

    // -----------------------------------------------------------------------------------------
    // Plan changes

    /// Upgrades apply now (Stripe invoices the prorated difference; local billing writes a
    /// receipt for it); downgrades wait for the period's end; `free` cancels at period end.
    pub async fn change_plan(&self, tenant: TenantId, plan: &str, key: &str) -> Result<SubscriptionRow, Error> {
        domain::check_idempotency_key(key)?;
        if plan == "free" {
            return self.set_cancel(tenant, true).await;
        }
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        Billing::ensure_subscription(&mut tx, tenant).await?;
        let sub = Billing::load_subscription(&mut tx).await?;
        let new_price = Self::plan_price(&mut tx, plan, &sub.currency).await?;
        if sub.plan_code == "free" || !sub.has_access() {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.checkout_required"));
        }
        if sub.plan_code == plan && sub.pending_plan_code.is_none() {
            return Ok(sub);
        }
        if sub.billing == "stripe" {
            tx.commit().await.map_err(db)?;
            let (stripe, sub_id) = self.stripe_subscription(&sub)?;
            let current = stripe.retrieve_subscription(sub_id).await.map_err(stripe_error)?;
            let item = current
                .item_ids
                .first()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("stripe subscription without items")))?;
            let upgrade = self.rank(plan).await? > self.rank(&sub.plan_code).await?;
            let params = vec![
                ("items[0][id]".to_string(), item.clone()),
                ("items[0][price]".to_string(), self.price_id(plan)?.to_owned()),
                ("proration_behavior".to_string(), if upgrade { "always_invoice" } else { "none" }.to_string()),
                ("metadata[plan]".to_string(), plan.to_string()),
            ];
            let idem = format!("change:{}:{plan}:{key}", tenant.as_uuid().simple());
            let updated = stripe.update_subscription(sub_id, &params, &idem).await.map_err(stripe_error)?;
            return self.apply_stripe(tenant, &updated).await;
        }
        // Local billing: same period, new plan; the state machine decides upgrade or downgrade.
        let old_price = Self::plan_price(&mut tx, &sub.plan_code, &sub.currency).await?;
        let obs = Observed {
            plan: plan.into(),
            status: sub.status.clone(),
            period_start: sub.current_period_start,
            period_end: sub.current_period_end,
            cancel_at_period_end: false,
            billing: "local",
            stripe_customer: None,
            stripe_subscription: None,
            currency: None,
        };
        let after = Self::observe(&mut tx, tenant, &obs).await?;
        if after.plan_code == plan && plan != sub.plan_code {
            let now = Utc::now();
            let due = domain::prorated(new_price - old_price, now, sub.current_period_start, sub.current_period_end);
            if due > 0 {
                let receipt =
                    Self::local_receipt("subscription_update", &sub.currency, due, now, Some(sub.current_period_end));
                Self::record_invoice(&mut tx, tenant, &receipt, false).await?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(after)
    }

    /// Cancel (`true`) or resume (`false`) at period end. Resuming also drops a pending downgrade.
    pub async fn set_cancel(&self, tenant: TenantId, cancel: bool) -> Result<SubscriptionRow, Error> {
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        Billing::ensure_subscription(&mut tx, tenant).await?;
        let sub = Billing::load_subscription(&mut tx).await?;
        if sub.plan_code == "free" || !sub.has_access() {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.nothing_to_cancel"));
        }
        if sub.billing == "stripe" {
            tx.commit().await.map_err(db)?;
            let (stripe, sub_id) = self.stripe_subscription(&sub)?;
            let mut params = vec![("cancel_at_period_end".to_string(), cancel.to_string())];
            if !cancel && sub.pending_plan_code.is_some() {
                // Undo a scheduled downgrade: back to the price of the plan in force.
                let current = stripe.retrieve_subscription(sub_id).await.map_err(stripe_error)?;
                if let Some(item) = current.item_ids.first() {
                    params.push(("items[0][id]".into(), item.clone()));
                    params.push(("items[0][price]".into(), self.price_id(&sub.plan_code)?.to_owned()));
                    params.push(("proration_behavior".into(), "none".into()));
                }
            }
            let idem = format!("cancel:{}:{cancel}:{}", tenant.as_uuid().simple(), Uuid::now_v7().simple());
            let updated = stripe.update_subscription(sub_id, &params, &idem).await.map_err(stripe_error)?;
            return self.apply_stripe(tenant, &updated).await;
        }
        let obs = Observed {
            plan: sub.plan_code.clone(),
            status: sub.status.clone(),
            period_start: sub.current_period_start,
            period_end: sub.current_period_end,
            cancel_at_period_end: cancel,
            billing: "local",
            stripe_customer: None,
            stripe_subscription: None,
            currency: None,
        };
        let after = Self::observe(&mut tx, tenant, &obs).await?;
        tx.commit().await.map_err(db)?;
        Ok(after)
    }

    async fn rank(&self, plan: &str) -> Result<i32, Error> {
        sqlx::query_scalar("SELECT rank FROM plans WHERE code = $1")
            .bind(plan)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?
            .ok_or_else(|| Error::invalid("subscriptions.unknown_plan").with_param("plan", plan))
    }

    fn stripe_subscription<'a>(&'a self, sub: &'a SubscriptionRow) -> Result<(&'a StripeClient, &'a str), Error> {
        match (&self.stripe, sub.stripe_subscription_id.as_deref()) {
            (Some(stripe), Some(id)) => Ok((stripe, id)),
            _ => Err(Error::unavailable("subscriptions.payment_provider_unavailable")),
        }
    }

    /// Applies a subscription Stripe just returned to us.
    pub async fn apply_stripe(&self, tenant: TenantId, sub: &StripeSub) -> Result<SubscriptionRow, Error> {
        let obs = self
            .observed_from_stripe(sub)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("stripe subscription {} has no known plan", sub.id)))?;
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        let row = Self::observe(&mut tx, tenant, &obs).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    // -----------------------------------------------------------------------------------------
    // Portal and invoices

    pub async fn portal(&self, tenant: TenantId, return_url: &str) -> Result<String, Error> {
        check_return_url(return_url)?;
        let sub = self.billing.subscription(tenant).await?;
        let (Some(stripe), Some(customer)) = (&self.stripe, sub.stripe_customer_id.as_deref()) else {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.portal_unavailable"));
        };
        let return_url = if return_url.is_empty() { &self.settings.portal_return_url } else { return_url };
        // A portal URL is short-lived and single-use: a new session per visit.
        let key = format!("portal:{}:{}", tenant.as_uuid().simple(), Uuid::now_v7().simple());
        let session = stripe.create_portal_session(customer, return_url, &key).await.map_err(stripe_error)?;
        Ok(session.url)
    }

    pub async fn invoices(
        &self,
        tenant: TenantId,
        page: &nexus_kernel::PageRequest,
    ) -> Result<nexus_kernel::Page<InvoiceRow>, Error> {
        let after: Option<InvoiceCursor> = page.decode_cursor()?;
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        let rows: Vec<InvoiceRow> = sqlx::query_as(
            "SELECT id, provider, number, status, amount_due, amount_paid, currency, reason, period_start, period_end, \
               hosted_url, pdf_url, created_at FROM invoices \
             WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2)) ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(after.as_ref().map(|c| c.at))
        .bind(after.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(nexus_kernel::Page::from_overfetch(rows, page.limit, |r| InvoiceCursor { at: r.created_at, id: r.id }))
    }

    /// Credit notices of the current period, newest first.
    pub async fn notices(&self, tenant: TenantId) -> Result<Vec<(i32, DateTime<Utc>)>, Error> {
        let mut tx = begin_tenant(self.pool(), tenant).await.map_err(db)?;
        Billing::ensure_subscription(&mut tx, tenant).await?;
        let rows: Vec<(i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT n.percent, n.created_at FROM credit_notices n JOIN subscriptions s ON s.tenant_id = n.tenant_id \
             WHERE n.period_start = s.current_period_start ORDER BY n.created_at DESC, n.percent DESC",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows)
    }

    /// The workspace a Stripe customer or subscription belongs to, from what we stored.
    pub(crate) async fn tenant_of(
        &self,
        customer: Option<&str>,
        subscription: Option<&str>,
    ) -> Result<Option<TenantId>, Error> {
        let mut tx = begin_system(self.pool()).await.map_err(db)?;
        let found: Option<Uuid> = sqlx::query_scalar(
            "SELECT tenant_id FROM subscriptions WHERE ($1::text IS NOT NULL AND stripe_subscription_id = $1) \
               OR ($2::text IS NOT NULL AND stripe_customer_id = $2) LIMIT 1",
        )
        .bind(subscription)
        .bind(customer)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(found.map(WorkspaceId::from_uuid))
    }

    /// The workspace of one of our checkout sessions.
    pub(crate) async fn tenant_of_checkout(&self, id: &str) -> Result<Option<TenantId>, Error> {
        let mut tx = begin_system(self.pool()).await.map_err(db)?;
        let found: Option<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM checkout_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(found.map(WorkspaceId::from_uuid))
    }

    pub(crate) async fn mark_checkout_complete(
        conn: &mut PgConnection,
        id: &str,
    ) -> Result<Option<CheckoutRow>, Error> {
        let row: Option<CheckoutRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE checkout_sessions SET status = 'complete', completed_at = coalesce(completed_at, now()) WHERE id = $1 \
             RETURNING {CHECKOUT_COLUMNS}"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
        Ok(row)
    }
}

/// ISO 4217 code we know, upper-case; empty means USD.
pub fn normalize_currency(c: &str) -> Result<String, Error> {
    if c.is_empty() {
        return Ok("USD".into());
    }
    let currency: nexus_kernel::Currency = c.trim().to_ascii_uppercase().parse()?;
    Ok(currency.code().to_owned())
}

/// Where Stripe sends the user: an absolute http(s) URL of sane length, nothing else.
pub fn check_return_url(url: &str) -> Result<(), Error> {
    let ok = url.is_empty()
        || (url.len() <= 2048
            && (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control()));
    if ok { Ok(()) } else { Err(Error::invalid("subscriptions.invalid_url")) }
}
