//! gRPC adapters: the Subscriptions API and the Stripe webhook receiver, proto to use case and back.

use std::sync::Arc;

use nexus_kernel::{Currency, Error, Locale, Money, PageRequest};
use nexus_platform::RequestContext;
use nexus_platform::grpc::{status as err, ts};
use nexus_platform::identity::{Action, Principal, principal};
use nexus_proto::common::{Money as PbMoney, PageInfo};
use nexus_proto::nexus::subscriptions::v1::{self as pb, subscriptions_server::Subscriptions};
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiver;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::app::{Billing, WebhookOutcome};
use crate::domain::{Checkout, CheckoutInput, EntitlementView, Invoice, Reservation, Subscription};

pub struct SubscriptionsService {
    pub billing: Arc<Billing>,
}

type R<T> = Result<Response<T>, Status>;

fn caller<T>(req: &Request<T>, action: Action) -> Result<Principal, Status> {
    let p = principal(req)?;
    p.require(action).map_err(err)?;
    Ok(p)
}

fn reservation(r: Reservation, available: i64) -> pb::Reservation {
    pb::Reservation {
        id: format!("rsv_{}", r.id.simple()),
        action: r.action,
        amount: r.amount,
        status: r.status,
        committed_amount: r.committed_amount,
        expires_at: Some(ts(r.expires_at)),
        available,
    }
}

fn subscription(s: Subscription) -> pb::Subscription {
    pb::Subscription {
        workspace_id: nexus_kernel::WorkspaceId::from_uuid(s.tenant_id).to_string(),
        access: s.has_access(),
        plan_code: s.plan_code,
        status: s.status,
        current_period_start: Some(ts(s.current_period_start)),
        current_period_end: Some(ts(s.current_period_end)),
        cancel_at_period_end: s.cancel_at_period_end,
        pending_plan_code: s.pending_plan_code.unwrap_or_default(),
        billing: s.billing,
    }
}

fn checkout(c: Checkout) -> pb::CheckoutSession {
    pb::CheckoutSession {
        amount: money(&c.currency, c.amount_minor),
        id: c.id,
        provider: c.provider,
        url: c.url,
        status: c.status,
        kind: c.kind,
        plan_code: c.plan_code.unwrap_or_default(),
        pack_code: c.pack_code.unwrap_or_default(),
    }
}

fn invoice(i: Invoice) -> pb::Invoice {
    let d = i.details;
    pb::Invoice {
        id: format!("inv_{}", i.id.simple()),
        amount_due: money(&d.currency, d.amount_due),
        amount_paid: money(&d.currency, d.amount_paid),
        provider: d.provider,
        number: d.number,
        status: d.status,
        reason: d.reason,
        period_start: d.period_start.map(ts),
        period_end: d.period_end.map(ts),
        hosted_url: d.hosted_url,
        pdf_url: d.pdf_url,
        created_at: Some(ts(i.created_at)),
    }
}

fn entitlement(e: EntitlementView) -> pb::Entitlement {
    pb::Entitlement { feature: e.feature, allowed: e.allowed, limit: e.limit, used: e.used }
}

fn money(currency: &str, amount: i64) -> Option<PbMoney> {
    currency.parse::<Currency>().ok().map(|c| {
        let m = Money::new(amount, c);
        PbMoney { amount_minor: m.amount_minor, currency: m.currency.code().to_owned() }
    })
}

#[tonic::async_trait]
impl Subscriptions for SubscriptionsService {
    async fn list_plans(&self, req: Request<pb::ListPlansRequest>) -> R<pb::PlanList> {
        let locale: Locale = RequestContext::current().locale.and_then(|l| l.parse().ok()).unwrap_or_default();
        let r = req.into_inner();
        let plans = self.billing.list_plans(locale, &r.currency).await.map_err(err)?;
        let mut items = Vec::with_capacity(plans.len());
        for p in plans {
            let entitlements = p
                .entitlements
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect())
                .unwrap_or_default();
            let prices = self
                .billing
                .prices_of(&p.code)
                .await
                .map_err(err)?
                .into_iter()
                .filter_map(|(c, a)| money(&c, a))
                .collect();
            items.push(pb::Plan {
                price: money(&p.currency, p.amount_minor),
                code: p.code,
                name: p.name,
                description: p.description,
                interval: p.interval,
                monthly_credits: p.monthly_credits,
                credits_roll_over: p.rollover,
                entitlements,
                prices,
            });
        }
        Ok(Response::new(pb::PlanList { items }))
    }

    async fn get_subscription(&self, req: Request<pb::Empty>) -> R<pb::Subscription> {
        let p = caller(&req, Action::Read)?;
        let s = self.billing.subscription(p.workspace_id).await.map_err(err)?;
        Ok(Response::new(subscription(s)))
    }

    async fn get_balance(&self, req: Request<pb::Empty>) -> R<pb::Balance> {
        let p = caller(&req, Action::Read)?;
        let (b, end) = self.billing.balance(p.workspace_id).await.map_err(err)?;
        Ok(Response::new(pb::Balance {
            available: b.available,
            reserved: b.reserved,
            period_grant: b.period_grant,
            period_used: b.period_used,
            period_end: Some(ts(end)),
        }))
    }

    async fn list_ledger(&self, req: Request<pb::ListLedgerRequest>) -> R<pb::LedgerPage> {
        let p = caller(&req, Action::Read)?;
        let page = req.into_inner().page.unwrap_or_default();
        let page = PageRequest::new(Some(page.page_size), Some(page.cursor)).map_err(err)?;
        let result = self.billing.ledger(p.workspace_id, &page).await.map_err(err)?;
        Ok(Response::new(pb::LedgerPage {
            items: result
                .items
                .into_iter()
                .map(|r| pb::LedgerEntry {
                    id: r.id.to_string(),
                    kind: r.kind,
                    amount: r.amount,
                    balance_after: r.balance_after,
                    action: r.action,
                    reservation_id: r.reservation_id.map(|id| format!("rsv_{}", id.simple())).unwrap_or_default(),
                    created_at: Some(ts(r.created_at)),
                })
                .collect(),
            page: Some(PageInfo { next_cursor: result.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn get_usage(&self, req: Request<pb::Empty>) -> R<pb::Usage> {
        let p = caller(&req, Action::Read)?;
        let u = self.billing.usage(p.workspace_id).await.map_err(err)?;
        Ok(Response::new(pb::Usage {
            period_start: Some(ts(u.period_start)),
            period_end: Some(ts(u.period_end)),
            credits_used: u.credits_used,
            credits_granted: u.credits_granted,
            credits_by_action: u.by_action,
            features: u
                .features
                .into_iter()
                .map(|f| pb::FeatureUsage { feature: f.feature, used: f.used, limit: f.limit })
                .collect(),
        }))
    }

    async fn reserve(&self, req: Request<pb::ReserveRequest>) -> R<pb::Reservation> {
        let p = caller(&req, Action::Write)?;
        let r = req.into_inner();
        let (res, available) = self
            .billing
            .reserve(p.workspace_id, &r.action, r.quantity, r.credits, &r.idempotency_key, r.ttl_seconds)
            .await
            .map_err(err)?;
        Ok(Response::new(reservation(res, available)))
    }

    async fn commit(&self, req: Request<pb::CommitRequest>) -> R<pb::Reservation> {
        let p = caller(&req, Action::Write)?;
        let r = req.into_inner();
        let (res, available) = self.billing.commit(p.workspace_id, &r.reservation_id, r.credits).await.map_err(err)?;
        Ok(Response::new(reservation(res, available)))
    }

    async fn release(&self, req: Request<pb::ReleaseRequest>) -> R<pb::Reservation> {
        let p = caller(&req, Action::Write)?;
        let (res, available) =
            self.billing.release(p.workspace_id, &req.into_inner().reservation_id).await.map_err(err)?;
        Ok(Response::new(reservation(res, available)))
    }

    async fn check_entitlement(&self, req: Request<pb::EntitlementRequest>) -> R<pb::Entitlement> {
        let p = caller(&req, Action::Read)?;
        Ok(Response::new(entitlement(
            self.billing.check_entitlement(p.workspace_id, &req.into_inner().feature).await.map_err(err)?,
        )))
    }

    async fn use_entitlement(&self, req: Request<pb::UseEntitlementRequest>) -> R<pb::Entitlement> {
        let p = caller(&req, Action::Write)?;
        let r = req.into_inner();
        Ok(Response::new(entitlement(
            self.billing.use_entitlement(p.workspace_id, &r.feature, &r.idempotency_key).await.map_err(err)?,
        )))
    }

    async fn create_checkout(&self, req: Request<pb::CheckoutRequest>) -> R<pb::CheckoutSession> {
        let p = caller(&req, Action::ManageBilling)?;
        let r = req.into_inner();
        let input = CheckoutInput {
            kind: r.kind,
            plan_code: r.plan_code,
            pack_code: r.pack_code,
            currency: r.currency,
            success_url: r.success_url,
            cancel_url: r.cancel_url,
            idempotency_key: if r.idempotency_key.is_empty() {
                uuid::Uuid::now_v7().to_string()
            } else {
                r.idempotency_key
            },
        };
        Ok(Response::new(checkout(self.billing.create_checkout(p.workspace_id, input).await.map_err(err)?)))
    }

    async fn complete_local_checkout(&self, req: Request<pb::CompleteLocalCheckoutRequest>) -> R<pb::CheckoutSession> {
        let p = caller(&req, Action::ManageBilling)?;
        let id = req.into_inner().session_id;
        Ok(Response::new(checkout(self.billing.complete_local_checkout(p.workspace_id, &id).await.map_err(err)?)))
    }

    async fn create_portal(&self, req: Request<pb::PortalRequest>) -> R<pb::PortalSession> {
        let p = caller(&req, Action::ManageBilling)?;
        let url = self.billing.portal(p.workspace_id, &req.into_inner().return_url).await.map_err(err)?;
        Ok(Response::new(pb::PortalSession { url }))
    }

    async fn change_plan(&self, req: Request<pb::ChangePlanRequest>) -> R<pb::Subscription> {
        let p = caller(&req, Action::ManageBilling)?;
        let r = req.into_inner();
        let key = if r.idempotency_key.is_empty() { uuid::Uuid::now_v7().to_string() } else { r.idempotency_key };
        Ok(Response::new(subscription(
            self.billing.change_plan(p.workspace_id, &r.plan_code, &key).await.map_err(err)?,
        )))
    }

    async fn cancel_subscription(&self, req: Request<pb::Empty>) -> R<pb::Subscription> {
        let p = caller(&req, Action::ManageBilling)?;
        Ok(Response::new(subscription(self.billing.set_cancel(p.workspace_id, true).await.map_err(err)?)))
    }

    async fn resume_subscription(&self, req: Request<pb::Empty>) -> R<pb::Subscription> {
        let p = caller(&req, Action::ManageBilling)?;
        Ok(Response::new(subscription(self.billing.set_cancel(p.workspace_id, false).await.map_err(err)?)))
    }

    async fn list_invoices(&self, req: Request<pb::ListInvoicesRequest>) -> R<pb::InvoicePage> {
        let p = caller(&req, Action::Read)?;
        let page = req.into_inner().page.unwrap_or_default();
        let page = PageRequest::new(Some(page.page_size), Some(page.cursor)).map_err(err)?;
        let result = self.billing.invoices(p.workspace_id, &page).await.map_err(err)?;
        Ok(Response::new(pb::InvoicePage {
            items: result.items.into_iter().map(invoice).collect(),
            page: Some(PageInfo { next_cursor: result.next_cursor.unwrap_or_default() }),
        }))
    }

    async fn list_credit_packs(&self, req: Request<pb::ListPlansRequest>) -> R<pb::CreditPackList> {
        let locale: Locale = RequestContext::current().locale.and_then(|l| l.parse().ok()).unwrap_or_default();
        let packs = self.billing.list_packs(&req.into_inner().currency).await.map_err(err)?;
        Ok(Response::new(pb::CreditPackList {
            items: packs
                .into_iter()
                .map(|k| pb::CreditPack {
                    name: nexus_i18n::try_message(locale, "credit-pack-name", &[("credits", &k.credits.to_string())])
                        .unwrap_or_else(|| format!("{} credits", k.credits)),
                    price: money(&k.currency, k.amount_minor),
                    code: k.code,
                    credits: k.credits,
                })
                .collect(),
        }))
    }

    async fn list_notices(&self, req: Request<pb::Empty>) -> R<pb::NoticeList> {
        let p = caller(&req, Action::Read)?;
        let locale: Locale = RequestContext::current().locale.and_then(|l| l.parse().ok()).unwrap_or_default();
        let rows = self.billing.notices(p.workspace_id).await.map_err(err)?;
        let text = |id: &str| nexus_i18n::try_message(locale, id, &[]).unwrap_or_default();
        Ok(Response::new(pb::NoticeList {
            items: rows
                .into_iter()
                .map(|n| {
                    let key = if n.percent >= 100 { "credits-notice-exhausted" } else { "credits-notice-low" };
                    pb::Notice {
                        percent: u32::try_from(n.percent).unwrap_or(0),
                        title: text(&format!("{key}-title")),
                        body: text(&format!("{key}-body")),
                        created_at: Some(ts(n.created_at)),
                        dir: locale.direction().as_str().to_owned(),
                    }
                })
                .collect(),
        }))
    }
}

/// `/webhooks/stripe`, handed over raw by the gateway: answered like HTTP (400 for what Stripe
/// should not retry, an error status for what it should).
pub struct StripeWebhooks {
    pub billing: Arc<Billing>,
}

fn answer(status: u32, body: serde_json::Value) -> Response<DeliverWebhookResponse> {
    Response::new(DeliverWebhookResponse {
        status,
        content_type: "application/json".into(),
        body: serde_json::to_vec(&body).unwrap_or_default(),
    })
}

fn rejected(code: &str, detail: &str) -> Response<DeliverWebhookResponse> {
    let message = nexus_i18n::error_message(Locale::default(), code, &[], 400);
    answer(400, json!({"error": {"code": code, "message": message, "detail": detail}}))
}

#[tonic::async_trait]
impl WebhookReceiver for StripeWebhooks {
    async fn deliver(&self, req: Request<DeliverWebhookRequest>) -> R<DeliverWebhookResponse> {
        let req = req.into_inner();
        if req.provider != "stripe" {
            return Err(Error::not_found("request.not_found").into());
        }
        if req.method != "POST" {
            return Ok(rejected("webhooks.invalid_request", "POST only"));
        }
        let header = req.headers.get("stripe-signature").map(String::as_str).unwrap_or("");
        Ok(match self.billing.stripe_webhook(&req.body, header).await.map_err(err)? {
            WebhookOutcome::Rejected(detail) => rejected("webhooks.invalid_signature", &detail),
            WebhookOutcome::Duplicate => answer(200, json!({"received": true, "duplicate": true})),
            WebhookOutcome::Applied => answer(200, json!({"received": true, "duplicate": false})),
        })
    }
}
