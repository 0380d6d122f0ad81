//! `/webhooks/stripe`, handed over raw by the gateway.
//!
//! 1. The `Stripe-Signature` is checked against every configured endpoint secret (rotation), with
//!    Stripe's timestamp tolerance; anything else is answered 400 and changes nothing.
//! 2. An event id already applied is acknowledged without effect.
//! 3. The object the event is about is re-read from Stripe, so the state applied is Stripe's
//!    current one whatever order events arrive in; a Stripe outage answers 503 and Stripe retries.
//! 4. The event id is recorded in the same transaction as its effect: applied exactly once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nexus_kernel::{Error, TenantId, WorkspaceId};
use nexus_platform::db::begin_tenant;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiver;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use nexus_providers::stripe::{Invoice, StripeClient, StripeEvent, WEBHOOK_TOLERANCE, verify_webhook};
use serde_json::json;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use crate::app::{Billing, db};
use crate::payments::{NewInvoice, Payments, stripe_error, unix};

pub struct StripeWebhooks {
    pub payments: Arc<Payments>,
    pub tolerance: Duration,
}

impl StripeWebhooks {
    pub fn new(payments: Arc<Payments>) -> Self {
        Self { payments, tolerance: WEBHOOK_TOLERANCE }
    }
}

fn answer(status: u32, body: serde_json::Value) -> Response<DeliverWebhookResponse> {
    Response::new(DeliverWebhookResponse {
        status,
        content_type: "application/json".into(),
        body: serde_json::to_vec(&body).unwrap_or_default(),
    })
}

fn rejected(code: &str, detail: &str) -> Response<DeliverWebhookResponse> {
    let message = nexus_i18n::error_message(nexus_kernel::Locale::default(), code, &[], 400);
    answer(400, json!({"error": {"code": code, "message": message, "detail": detail}}))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// What an event leads to, worked out (with Stripe reads) before the transaction opens.
enum Effect {
    /// Nothing to change (event types we do not act on, or objects that are not ours).
    Ignore,
    Subscription {
        tenant: TenantId,
        sub: Box<nexus_providers::stripe::Subscription>,
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
        sub: Option<Box<nexus_providers::stripe::Subscription>>,
    },
    /// The customer never paid: the session can no longer be completed.
    CheckoutExpired {
        tenant: TenantId,
        checkout: String,
    },
}

#[tonic::async_trait]
impl WebhookReceiver for StripeWebhooks {
    async fn deliver(&self, req: Request<DeliverWebhookRequest>) -> Result<Response<DeliverWebhookResponse>, Status> {
        let req = req.into_inner();
        if req.provider != "stripe" {
            return Err(Error::not_found("request.not_found").into());
        }
        if req.method != "POST" {
            return Ok(rejected("webhooks.invalid_request", "POST only"));
        }
        let secrets: Vec<String> = self
            .payments
            .settings
            .webhook_secrets
            .iter()
            .map(|s| s.expose().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let header = req.headers.get("stripe-signature").map(String::as_str).unwrap_or("");
        let event = match verify_webhook(&req.body, header, &secrets, self.tolerance, now()) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "stripe webhook rejected");
                metrics::counter!("nexus_webhooks_rejected_total", "provider" => "stripe").increment(1);
                return Ok(rejected("webhooks.invalid_signature", &e.to_string()));
            }
        };
        if self.seen(&event.id).await.map_err(Status::from)? {
            return Ok(answer(200, json!({"received": true, "duplicate": true})));
        }
        let effect = self.effect_of(&event).await.map_err(|e| {
            tracing::warn!(error = ?e, event = %event.id, kind = %event.kind, "stripe webhook not applied; Stripe will retry");
            Status::from(e)
        })?;
        let applied = self.apply(&event, effect).await.map_err(|e| {
            if e.kind() == nexus_kernel::ErrorKind::Internal {
                tracing::error!(error = ?e, event = %event.id, "stripe webhook failed");
            }
            Status::from(e)
        })?;
        metrics::counter!("nexus_webhooks_applied_total", "provider" => "stripe").increment(1);
        Ok(answer(200, json!({"received": true, "duplicate": !applied})))
    }
}

impl StripeWebhooks {
    fn stripe(&self) -> Result<&StripeClient, Error> {
        self.payments.stripe.as_ref().ok_or_else(|| Error::unavailable("subscriptions.payment_provider_unavailable"))
    }

    async fn seen(&self, id: &str) -> Result<bool, Error> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1)")
            .bind(id)
            .fetch_one(&self.payments.billing.pool)
            .await
            .map_err(db)
    }

    /// The workspace of a Stripe subscription: its metadata (set at checkout) or what we stored.
    async fn tenant_of_sub(&self, sub: &nexus_providers::stripe::Subscription) -> Result<Option<TenantId>, Error> {
        if let Some(ws) = sub.metadata.get("workspace_id").and_then(|w| w.parse::<WorkspaceId>().ok()) {
            return Ok(Some(ws));
        }
        self.payments.tenant_of(Some(&sub.customer), Some(&sub.id)).await
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
                let tenant = match self.payments.tenant_of_checkout(&session.id).await? {
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
            "checkout.session.expired" => match self.payments.tenant_of_checkout(id).await? {
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
                    None => self.payments.tenant_of(invoice.customer.as_deref(), None).await?,
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
    async fn apply(&self, event: &StripeEvent, effect: Effect) -> Result<bool, Error> {
        let pool = &self.payments.billing.pool;
        let tenant = match &effect {
            Effect::Ignore => None,
            Effect::Subscription { tenant, .. }
            | Effect::Credits { tenant, .. }
            | Effect::Invoice { tenant, .. }
            | Effect::CheckoutExpired { tenant, .. } => Some(*tenant),
        };
        let mut tx = match tenant {
            Some(t) => begin_tenant(pool, t).await.map_err(db)?,
            None => pool.begin().await.map_err(db)?,
        };
        let fresh = sqlx::query(
            "INSERT INTO stripe_events (id, type, workspace) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&event.kind)
        .bind(tenant.map(|t| t.as_uuid()))
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(false);
        }
        match effect {
            Effect::Ignore => {}
            Effect::CheckoutExpired { checkout, .. } => {
                sqlx::query("UPDATE checkout_sessions SET status = 'expired' WHERE id = $1 AND status = 'open'")
                    .bind(&checkout)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            Effect::Subscription { tenant, sub, checkout } => {
                if let Some(id) = checkout {
                    Payments::mark_checkout_complete(&mut tx, &id).await?;
                }
                self.observe(&mut tx, tenant, &sub).await?;
            }
            Effect::Credits { tenant, checkout, pack, amount, currency } => {
                let credits: Option<i64> = sqlx::query_scalar("SELECT credits FROM credit_packs WHERE code = $1")
                    .bind(&pack)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let Some(credits) = credits else {
                    tracing::warn!(pack, "paid checkout for an unknown credit pack");
                    tx.commit().await.map_err(db)?;
                    return Ok(true);
                };
                Payments::mark_checkout_complete(&mut tx, &checkout).await?;
                Billing::grant(&mut tx, tenant, credits, "purchase", &format!("checkout:{checkout}"), false).await?;
                let receipt = NewInvoice {
                    provider: "stripe",
                    external_id: checkout.clone(),
                    number: String::new(),
                    status: "paid".into(),
                    amount_due: amount,
                    amount_paid: amount,
                    currency,
                    reason: "credits".into(),
                    period_start: Some(unix(event.created)),
                    period_end: None,
                    hosted_url: String::new(),
                    pdf_url: String::new(),
                };
                Payments::record_invoice(&mut tx, tenant, &receipt, false).await?;
            }
            Effect::Invoice { tenant, invoice, failed, sub } => {
                if let Some(sub) = sub {
                    self.observe(&mut tx, tenant, &sub).await?;
                }
                let inv = NewInvoice {
                    provider: "stripe",
                    external_id: invoice.id.clone(),
                    number: invoice.number.clone().unwrap_or_default(),
                    status: invoice.status.clone().unwrap_or_else(|| "open".into()),
                    amount_due: invoice.amount_due,
                    amount_paid: invoice.amount_paid,
                    currency: invoice.currency.clone(),
                    reason: invoice.billing_reason.clone().unwrap_or_default(),
                    period_start: invoice.period_start.map(unix),
                    period_end: invoice.period_end.map(unix),
                    hosted_url: invoice.hosted_invoice_url.clone().unwrap_or_default(),
                    pdf_url: invoice.invoice_pdf.clone().unwrap_or_default(),
                };
                Payments::record_invoice(&mut tx, tenant, &inv, failed).await?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn observe(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        sub: &nexus_providers::stripe::Subscription,
    ) -> Result<(), Error> {
        match self.payments.observed_from_stripe(sub) {
            Some(obs) => {
                Payments::observe(conn, tenant, &obs).await?;
            }
            None => {
                tracing::warn!(subscription = %sub.id, status = %sub.status, "stripe subscription with no known plan or status")
            }
        }
        Ok(())
    }
}
