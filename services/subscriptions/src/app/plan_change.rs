//! Plan changes, cancellation and resumption, and the Stripe customer portal.

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db::{commit, tenant};
use nexus_providers::stripe::{StripeClient, Subscription as StripeSub};
use uuid::Uuid;

use super::{Billing, stripe_error};
use crate::domain::{self, NewInvoice, Observed, Subscription};
use crate::repo;

impl Billing {
    /// Upgrades apply now (Stripe invoices the prorated difference; local billing writes a
    /// receipt for it); downgrades wait for the period's end; `free` cancels at period end.
    #[tracing::instrument(skip_all, fields(plan = %plan))]
    pub async fn change_plan(&self, workspace: TenantId, plan: &str, key: &str) -> Result<Subscription, Error> {
        domain::check_idempotency_key(key)?;
        if plan == "free" {
            return self.set_cancel(workspace, true).await;
        }
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let sub = repo::subscriptions::load(&mut tx).await?;
        let new_price = Self::plan_price(&mut tx, plan, &sub.currency).await?;
        if sub.plan_code == "free" || !sub.has_access() {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.checkout_required"));
        }
        if sub.plan_code == plan && sub.pending_plan_code.is_none() {
            return Ok(sub);
        }
        if sub.billing == "stripe" {
            commit(tx).await?;
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
            let idem = format!("change:{}:{plan}:{key}", workspace.as_uuid().simple());
            let updated = stripe.update_subscription(sub_id, &params, &idem).await.map_err(stripe_error)?;
            return self.apply_stripe(workspace, &updated).await;
        }
        // Local billing: same period, new plan; the state machine decides upgrade or downgrade.
        let old_price = Self::plan_price(&mut tx, &sub.plan_code, &sub.currency).await?;
        let after = Self::observe(&mut tx, workspace, &Observed::local(&sub, plan, false)).await?;
        if after.plan_code == plan && plan != sub.plan_code {
            let now = Utc::now();
            let due = domain::prorated(new_price - old_price, now, sub.current_period_start, sub.current_period_end);
            if due > 0 {
                let receipt = NewInvoice::local_receipt(
                    "subscription_update",
                    &sub.currency,
                    due,
                    now,
                    Some(sub.current_period_end),
                );
                Self::record_invoice(&mut tx, workspace, &receipt, false).await?;
            }
        }
        commit(tx).await?;
        Ok(after)
    }

    /// Cancel (`true`) or resume (`false`) at period end. Resuming also drops a pending downgrade.
    #[tracing::instrument(skip_all, fields(cancel = cancel))]
    pub async fn set_cancel(&self, workspace: TenantId, cancel: bool) -> Result<Subscription, Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let sub = repo::subscriptions::load(&mut tx).await?;
        if sub.plan_code == "free" || !sub.has_access() {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.nothing_to_cancel"));
        }
        if sub.billing == "stripe" {
            commit(tx).await?;
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
            let idem = format!("cancel:{}:{cancel}:{}", workspace.as_uuid().simple(), Uuid::now_v7().simple());
            let updated = stripe.update_subscription(sub_id, &params, &idem).await.map_err(stripe_error)?;
            return self.apply_stripe(workspace, &updated).await;
        }
        let after = Self::observe(&mut tx, workspace, &Observed::local(&sub, &sub.plan_code, cancel)).await?;
        commit(tx).await?;
        Ok(after)
    }

    fn stripe_subscription<'a>(&'a self, sub: &'a Subscription) -> Result<(&'a StripeClient, &'a str), Error> {
        match (&self.stripe, sub.stripe_subscription_id.as_deref()) {
            (Some(stripe), Some(id)) => Ok((stripe, id)),
            _ => Err(Error::unavailable("subscriptions.payment_provider_unavailable")),
        }
    }

    /// Applies a subscription Stripe just returned to us.
    async fn apply_stripe(&self, workspace: TenantId, sub: &StripeSub) -> Result<Subscription, Error> {
        let obs = domain::stripe::observed(&self.settings.prices, sub)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("stripe subscription {} has no known plan", sub.id)))?;
        let mut tx = tenant(&self.db, workspace).await?;
        let row = Self::observe(&mut tx, workspace, &obs).await?;
        commit(tx).await?;
        Ok(row)
    }

    /// A one-time Stripe customer portal URL.
    #[tracing::instrument(skip_all)]
    pub async fn portal(&self, workspace: TenantId, return_url: &str) -> Result<String, Error> {
        domain::check_return_url(return_url)?;
        let sub = self.subscription(workspace).await?;
        let (Some(stripe), Some(customer)) = (&self.stripe, sub.stripe_customer_id.as_deref()) else {
            return Err(Error::new(ErrorKind::FailedPrecondition, "subscriptions.portal_unavailable"));
        };
        let return_url = if return_url.is_empty() { &self.settings.portal_return_url } else { return_url };
        // A portal URL is short-lived and single-use: a new session per visit.
        let key = format!("portal:{}:{}", workspace.as_uuid().simple(), Uuid::now_v7().simple());
        let session = stripe.create_portal_session(customer, return_url, &key).await.map_err(stripe_error)?;
        Ok(session.url)
    }
}
