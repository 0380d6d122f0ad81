//! Stripe webhooks, handed over raw by the gateway.
//!
//! 1. The `Stripe-Signature` is checked against every configured endpoint secret (rotation), with
//!    Stripe's timestamp tolerance; anything else is refused and changes nothing.
//! 2. An event id already applied is acknowledged without effect.
//! 3. The object the event is about is re-read from Stripe, so the state applied is Stripe's
//!    current one whatever order events arrive in; a Stripe outage answers 503 and Stripe retries.
//! 4. The event id is recorded in the same transaction as its effect: applied exactly once.

use std::time::{SystemTime, UNIX_EPOCH};

use nexus_kernel::{Error, TenantId, WorkspaceId};
use nexus_platform::db::{DbResultExt, commit, system, tenant};
use nexus_providers::stripe::{Invoice, StripeEvent, Subscription as StripeSub, WEBHOOK_TOLERANCE, verify_webhook};
use sqlx::PgConnection;

use super::{Billing, stripe_error};
use crate::domain::{self, stripe};
use crate::repo;

/// What a delivery came to.
#[derive(Debug)]
pub enum WebhookOutcome {
    /// Not signed by Stripe with one of our secrets (the reason, for the answer).
    Rejected(String),
    /// Applied before (or by a concurrent delivery while this one worked it out).
    Duplicate,
    Applied,
}

/// What an event leads to, worked out (with Stripe reads) before the transaction opens.
enum Effect {
    /// Nothing to change (event types we do not act on, or objects that are not ours).
    Ignore,
    Subscription {
        tenant: TenantId,
        sub: Box<StripeSub>,
        checkout: Option<String>,
    },
    Credits {
        tenant: TenantId,
        checkout: String,
        pack: String,
        amount: i64,
        currency: String,
    },
    Invoice {
        tenant: TenantId,
        invoice: Box<Invoice>,
        failed: bool,
        sub: Option<Box<StripeSub>>,
    },
    /// The customer never paid: the session can no longer be completed.
    CheckoutExpired {
        tenant: TenantId,
        checkout: String,
    },
}

impl Effect {
    fn tenant(&self) -> Option<TenantId> {
        match self {
            Effect::Ignore => None,
            Effect::Subscription { tenant, .. }
            | Effect::Credits { tenant, .. }
            | Effect::Invoice { tenant, .. }
            | Effect::CheckoutExpired { tenant, .. } => Some(*tenant),
        }
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Billing {
    /// Verifies and applies one Stripe webhook delivery.
    #[tracing::instrument(skip_all, fields(event = tracing::field::Empty))]
    pub async fn stripe_webhook(&self, body: &[u8], signature: &str) -> Result<WebhookOutcome, Error> {
        let secrets: Vec<String> =
            self.settings.webhook_secrets.iter().map(|s| s.expose().to_owned()).filter(|s| !s.is_empty()).collect();
        let event = match verify_webhook(body, signature, &secrets, WEBHOOK_TOLERANCE, now()) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "stripe webhook rejected");
                metrics::counter!("nexus_webhooks_rejected_total", "provider" => "stripe").increment(1);
                return Ok(WebhookOutcome::Rejected(e.to_string()));
            }
        };
        tracing::Span::current().record("event", event.id.as_str());
        let mut conn = self.db.acquire().await.db()?;
        let seen = repo::stripe_events::seen(&mut conn, &event.id).await?;
        drop(conn);
        if seen {
            return Ok(WebhookOutcome::Duplicate);
        }
        let effect = self.effect_of(&event).await.inspect_err(|e| {
            tracing::warn!(error = ?e, event = %event.id, kind = %event.kind, "stripe webhook not applied; Stripe will retry");
        })?;
        let applied = self.apply_event(&event, effect).await?;
        metrics::counter!("nexus_webhooks_applied_total", "provider" => "stripe").increment(1);
        Ok(if applied { WebhookOutcome::Applied } else { WebhookOutcome::Duplicate })
    }

    /// The workspace of a Stripe customer or subscription, from what we stored.
    async fn tenant_of(&self, customer: Option<&str>, subscription: Option<&str>) -> Result<Option<TenantId>, Error> {
        let mut tx = system(&self.db).await?;
        let found = repo::subscriptions::tenant_of_stripe(&mut tx, customer, subscription).await?;
        commit(tx).await?;
        Ok(found.map(WorkspaceId::from_uuid))
    }

    /// The workspace of one of our checkout sessions.
    async fn tenant_of_checkout(&self, id: &str) -> Result<Option<TenantId>, Error> {
        let mut tx = system(&self.db).await?;
        let found = repo::checkout::tenant_of(&mut tx, id).await?;
        commit(tx).await?;
        Ok(found.map(WorkspaceId::from_uuid))
    }

    /// The workspace of a Stripe subscription: its metadata (set at checkout) or what we stored.
    async fn tenant_of_sub(&self, sub: &StripeSub) -> Result<Option<TenantId>, Error> {
        if let Some(ws) = sub.metadata.get("workspace_id").and_then(|w| w.parse::<WorkspaceId>().ok()) {
            return Ok(Some(ws));
        }
        self.tenant_of(Some(&sub.customer), Some(&sub.id)).await
    }

    async fn effect_of(&self, event: &StripeEvent) -> Result<Effect, Error> {
        let obj = &event.data_object;
        let id = obj.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        match event.kind.as_str() {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                let stripe = self.stripe()?;
                let session = stripe.retrieve_checkout_session(id).await.map_err(stripe_error)?;
                let paid = matches!(session.payment_status.as_deref(), Some("paid" | "no_payment_required"));
                if session.status.as_deref() != Some("complete") || !paid {
                    return Ok(Effect::Ignore);
                }
                let tenant = match self.tenant_of_checkout(&session.id).await? {
                    Some(t) => Some(t),
                    None => session.metadata.get("workspace_id").and_then(|w| w.parse::<WorkspaceId>().ok()),
                };
                let Some(tenant) = tenant else { return Ok(Effect::Ignore) };
                if let Some(sub_id) = session.subscription.as_deref() {
                    let sub = stripe.retrieve_subscription(sub_id).await.map_err(stripe_error)?;
                    return Ok(Effect::Subscription { tenant, sub: Box::new(sub), checkout: Some(session.id) });
                }
                let Some(pack) = session.metadata.get("pack").cloned() else { return Ok(Effect::Ignore) };
                let amount = obj.get("amount_total").and_then(|v| v.as_i64()).unwrap_or(0);
                let currency = obj.get("currency").and_then(|v| v.as_str()).unwrap_or("usd").to_owned();
                Ok(Effect::Credits { tenant, checkout: session.id, pack, amount, currency })
            }
            "checkout.session.expired" => match self.tenant_of_checkout(id).await? {
                Some(tenant) => Ok(Effect::CheckoutExpired { tenant, checkout: id.to_owned() }),
                None => Ok(Effect::Ignore),
            },
            k if k.starts_with("customer.subscription.") => {
                let sub = self.stripe()?.retrieve_subscription(id).await.map_err(stripe_error)?;
                match self.tenant_of_sub(&sub).await? {
                    Some(tenant) => Ok(Effect::Subscription { tenant, sub: Box::new(sub), checkout: None }),
                    None => Ok(Effect::Ignore),
                }
            }
            "invoice.paid"
            | "invoice.payment_succeeded"
            | "invoice.payment_failed"
            | "invoice.finalized"
            | "invoice.voided"
            | "invoice.marked_uncollectible" => {
                let invoice: Invoice = serde_json::from_value(obj.clone())
                    .map_err(|e| Error::invalid("webhooks.invalid_request").with_source(e))?;
                let sub = match invoice.subscription.as_deref() {
                    Some(s) => Some(self.stripe()?.retrieve_subscription(s).await.map_err(stripe_error)?),
                    None => None,
                };
                let tenant = match &sub {
                    Some(s) => self.tenant_of_sub(s).await?,
                    None => self.tenant_of(invoice.customer.as_deref(), None).await?,
                };
                let Some(tenant) = tenant else { return Ok(Effect::Ignore) };
                Ok(Effect::Invoice {
                    tenant,
                    invoice: Box::new(invoice),
                    failed: event.kind == "invoice.payment_failed",
                    sub: sub.map(Box::new),
                })
            }
            _ => Ok(Effect::Ignore),
        }
    }

    /// Records the event id and applies the effect in one transaction. `false`: already applied
    /// by a concurrent delivery.
    async fn apply_event(&self, event: &StripeEvent, effect: Effect) -> Result<bool, Error> {
        let workspace = effect.tenant();
        let mut tx = match workspace {
            Some(t) => tenant(&self.db, t).await?,
            None => self.db.begin().await.db()?,
        };
        if !repo::stripe_events::record(&mut tx, &event.id, &event.kind, workspace).await? {
            return Ok(false);
        }
        match effect {
            Effect::Ignore => {}
            Effect::CheckoutExpired { checkout, .. } => repo::checkout::expire(&mut tx, &checkout).await?,
            Effect::Subscription { tenant, sub, checkout } => {
                if let Some(id) = checkout {
                    repo::checkout::complete(&mut tx, &id).await?;
                }
                self.observe_stripe(&mut tx, tenant, &sub).await?;
            }
            Effect::Credits { tenant, checkout, pack, amount, currency } => {
                let Some(credits) = repo::catalogue::pack_credits(&mut tx, &pack).await? else {
                    tracing::warn!(pack, "paid checkout for an unknown credit pack");
                    commit(tx).await?;
                    return Ok(true);
                };
                repo::checkout::complete(&mut tx, &checkout).await?;
                Self::grant(&mut tx, tenant, credits, "purchase", &format!("checkout:{checkout}"), false).await?;
                let receipt = stripe::pack_receipt(&checkout, amount, currency, event.created);
                Self::record_invoice(&mut tx, tenant, &receipt, false).await?;
            }
            Effect::Invoice { tenant, invoice, failed, sub } => {
                if let Some(sub) = sub {
                    self.observe_stripe(&mut tx, tenant, &sub).await?;
                }
                Self::record_invoice(&mut tx, tenant, &stripe::invoice(&invoice), failed).await?;
            }
        }
        commit(tx).await?;
        Ok(true)
    }

    async fn observe_stripe(&self, conn: &mut PgConnection, tenant: TenantId, sub: &StripeSub) -> Result<(), Error> {
        match domain::stripe::observed(&self.settings.prices, sub) {
            Some(obs) => {
                Self::observe(conn, tenant, &obs).await?;
            }
            None => {
                tracing::warn!(subscription = %sub.id, status = %sub.status, "stripe subscription with no known plan or status")
            }
        }
        Ok(())
    }
}
