//! Buying a plan or a credit pack: Stripe Checkout, or a local session completed in the app.

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db::{commit, tenant};
use nexus_providers::stripe::{CheckoutMode, CheckoutParams};

use super::{Billing, stripe_error};
use crate::domain::{self, Checkout, CheckoutInput, NewCheckout, NewInvoice, Observed};
use crate::repo;

impl Billing {
    #[tracing::instrument(skip_all, fields(kind = %input.kind))]
    pub async fn create_checkout(&self, workspace: TenantId, input: CheckoutInput) -> Result<Checkout, Error> {
        domain::check_idempotency_key(&input.idempotency_key)?;
        domain::check_return_url(&input.success_url)?;
        domain::check_return_url(&input.cancel_url)?;
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        if let Some(row) = repo::checkout::by_key(&mut tx, &input.idempotency_key).await? {
            return Ok(row);
        }
        let sub = repo::subscriptions::load(&mut tx).await?;
        let currency =
            if input.currency.is_empty() { sub.currency.clone() } else { domain::normalize_currency(&input.currency)? };
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
        commit(tx).await?;

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
                params.client_reference_id = Some(workspace.to_string());
                params.metadata = vec![
                    ("workspace_id".into(), workspace.to_string()),
                    ("kind".into(), input.kind.clone()),
                    (if input.kind == "plan" { "plan" } else { "pack" }.into(), code.clone()),
                ];
                let key = format!("checkout:{}:{}", workspace.as_uuid().simple(), input.idempotency_key);
                let session = stripe.create_checkout_session(&params, &key).await.map_err(stripe_error)?;
                (session.id, "stripe", session.url.unwrap_or_default())
            }
            None => (domain::local_id("lcs"), "local", String::new()),
        };
        let mut tx = tenant(&self.db, workspace).await?;
        let plan = input.kind == "plan";
        let new = NewCheckout {
            id: &id,
            provider,
            kind: &input.kind,
            plan_code: plan.then_some(code.as_str()),
            pack_code: (!plan).then_some(code.as_str()),
            currency: &currency,
            amount_minor: amount,
            url: &url,
            idempotency_key: &input.idempotency_key,
        };
        repo::checkout::insert(&mut tx, workspace, &new).await?;
        // A concurrent request with the same key may have won: answer with whatever is stored.
        let row = repo::checkout::by_key(&mut tx, &input.idempotency_key)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("checkout session vanished")))?;
        commit(tx).await?;
        Ok(row)
    }

    /// Local billing: the customer "pays" and the purchase applies, through [`Self::observe`] for
    /// plans and a purchase grant for packs. Completing twice changes nothing.
    #[tracing::instrument(skip_all, fields(checkout = %id))]
    pub async fn complete_local_checkout(&self, workspace: TenantId, id: &str) -> Result<Checkout, Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        let row = repo::checkout::lock(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("subscriptions.checkout_not_found"))?;
        if row.provider != "local" {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.checkout_not_local"));
        }
        if row.status == "complete" {
            return Ok(row);
        }
        let now = Utc::now();
        match (row.plan_code.as_deref(), row.pack_code.as_deref()) {
            (Some(plan), _) => {
                let sub = repo::subscriptions::load(&mut tx).await?;
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
                Self::observe(&mut tx, workspace, &obs).await?;
                let receipt =
                    NewInvoice::local_receipt("subscription_create", &row.currency, row.amount_minor, now, Some(end));
                Self::record_invoice(&mut tx, workspace, &receipt, false).await?;
            }
            (None, Some(pack)) => {
                let pack = Self::pack(&mut tx, pack, &row.currency).await?;
                Self::grant(&mut tx, workspace, pack.credits, "purchase", &format!("checkout:{}", row.id), false)
                    .await?;
                let receipt = NewInvoice::local_receipt("credits", &row.currency, row.amount_minor, now, None);
                Self::record_invoice(&mut tx, workspace, &receipt, false).await?;
            }
            (None, None) => return Err(Error::internal(anyhow::anyhow!("checkout session without item"))),
        }
        let done = repo::checkout::complete(&mut tx, &row.id).await?;
        commit(tx).await?;
        Ok(done.unwrap_or(Checkout { status: "complete".into(), ..row }))
    }
}
