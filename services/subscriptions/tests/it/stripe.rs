//! Stripe billing against the fake Stripe API: checkout, webhooks (signatures, duplicates, order),
//! plan changes with idempotency keys, failed payments, the portal.
//!
//! Webhook signatures here come from `nexus_testkit::stripe::sign_webhook`, which computes
//! Stripe's documented HMAC-SHA256 over `"{t}.{payload}"` on its own (ring), not with the code
//! under test.

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use nexus_testkit::identity::authed;
use nexus_testkit::stripe::{FakeStripe, TEST_API_KEY, event_json, sign_webhook, unix_now, webhook_v1};
use serde_json::Value;

use crate::billing::plan_checkout;
use crate::support::*;

const OLD_SECRET: &str = "whsec_nexus_old_secret";
const SECRET: &str = "whsec_nexus_current_secret";

async fn start_stripe() -> (Svc, FakeStripe) {
    let fake = FakeStripe::start().await;
    fake.set_price("price_pro", 9700, "usd");
    fake.set_price("price_premium", 29700, "usd");
    fake.set_price("price_c100", 1900, "usd");
    let svc = start_with(vec![
        ("NEXUS_STRIPE__API_KEY", TEST_API_KEY.to_owned()),
        ("NEXUS_STRIPE__BASE_URL", fake.base_url.clone()),
        ("NEXUS_STRIPE__WEBHOOK_SECRETS", format!("[\"{OLD_SECRET}\", \"{SECRET}\"]")),
        ("NEXUS_STRIPE__PRICES__PRO", "price_pro".to_owned()),
        ("NEXUS_STRIPE__PRICES__PREMIUM", "price_premium".to_owned()),
        ("NEXUS_STRIPE__PRICES__CREDITS_100", "price_c100".to_owned()),
    ])
    .await;
    (svc, fake)
}

async fn deliver(svc: &Svc, body: &[u8], signature: Option<String>) -> DeliverWebhookResponse {
    let mut headers = std::collections::HashMap::new();
    if let Some(sig) = signature {
        headers.insert("stripe-signature".to_owned(), sig);
    }
    let req = DeliverWebhookRequest {
        provider: "stripe".into(),
        method: "POST".into(),
        query: String::new(),
        headers,
        body: body.to_vec(),
    };
    svc.webhooks().deliver(req).await.unwrap().into_inner()
}

/// Signs and delivers an event; returns the HTTP status we answered Stripe with.
async fn send(svc: &Svc, event: &Value) -> u32 {
    let body = serde_json::to_vec(event).unwrap();
    let r = deliver(svc, &body, Some(sign_webhook(&body, SECRET, unix_now()))).await;
    assert!(r.status == 200 || r.status == 400, "{r:?}");
    r.status
}

async fn subscription(svc: &Svc, token: &str) -> pb::Subscription {
    svc.client().get_subscription(authed(pb::Empty {}, token)).await.unwrap().into_inner()
}

async fn events_recorded(svc: &Svc) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM subscriptions.stripe_events").fetch_one(&svc.admin().await).await.unwrap()
}

/// Checkout for PRO, paid at the fake. Returns (session id, subscription id).
async fn checkout_paid(svc: &Svc, fake: &FakeStripe, token: &str) -> (String, String) {
    let s = svc.client().create_checkout(authed(plan_checkout("pro", "go-pro"), token)).await.unwrap().into_inner();
    assert_eq!(s.provider, "stripe");
    assert!(s.url.starts_with(&fake.base_url), "{}", s.url);
    let sub = fake.complete_checkout(&s.id).expect("subscription created");
    (s.id, sub)
}

#[tokio::test]
async fn checkout_then_webhook_upgrades_once_even_when_delivered_twice() {
    let (svc, fake) = start_stripe().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let (session, _sub) = checkout_paid(&svc, &fake, &token).await;

    // The session was created with an idempotency key, our workspace in metadata, the PRO price.
    let created = fake.requests_to("POST", "/v1/checkout/sessions");
    assert_eq!(created.len(), 1);
    let req = &created[0];
    assert!(req.idempotency_key.as_deref().is_some_and(|k| k.starts_with("checkout:")), "{req:?}");
    assert_eq!(req.param("line_items[0][price]"), Some("price_pro"));
    assert_eq!(req.param("subscription_data[metadata][workspace_id]"), Some(ws.to_string().as_str()));

    let event = event_json("checkout.session.completed", fake.checkout_session(&session).unwrap(), None);
    assert_eq!(send(&svc, &event).await, 200);
    let sub = subscription(&svc, &token).await;
    assert_eq!((sub.plan_code.as_str(), sub.status.as_str(), sub.billing.as_str()), ("pro", "active", "stripe"));
    assert_eq!(svc.balance(&token).await.available, 550);

    // Stripe delivers again (and concurrently): applied once.
    let body = serde_json::to_vec(&event).unwrap();
    let sig = sign_webhook(&body, SECRET, unix_now());
    let (a, b) = tokio::join!(deliver(&svc, &body, Some(sig.clone())), deliver(&svc, &body, Some(sig)));
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(svc.balance(&token).await.available, 550);
    assert_eq!(ledger_sum(&svc, ws).await, 550);
    assert_eq!(events_recorded(&svc).await, 1);
    let status: String = sqlx::query_scalar("SELECT status FROM subscriptions.checkout_sessions WHERE id = $1")
        .bind(&session)
        .fetch_one(&svc.admin().await)
        .await
        .unwrap();
    assert_eq!(status, "complete");
}

#[tokio::test]
async fn subscription_updated_before_checkout_completed_ends_in_the_right_state() {
    let (svc, fake) = start_stripe().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let (session, sub_id) = checkout_paid(&svc, &fake, &token).await;

    // The subscription event overtakes the checkout event; its body is even stale (incomplete):
    // the state applied is the one re-read from Stripe.
    let mut stale = fake.subscription(&sub_id).unwrap();
    stale["status"] = "incomplete".into();
    assert_eq!(send(&svc, &event_json("customer.subscription.updated", stale, None)).await, 200);
    let sub = subscription(&svc, &token).await;
    assert_eq!((sub.plan_code.as_str(), sub.status.as_str()), ("pro", "active"));
    assert_eq!(svc.balance(&token).await.available, 550);

    assert_eq!(
        send(&svc, &event_json("checkout.session.completed", fake.checkout_session(&session).unwrap(), None)).await,
        200
    );
    let sub = subscription(&svc, &token).await;
    assert_eq!((sub.plan_code.as_str(), sub.status.as_str()), ("pro", "active"));
    assert_eq!(svc.balance(&token).await.available, 550, "the period is granted once");
    assert_eq!(events_recorded(&svc).await, 2);
}

#[tokio::test]
async fn bad_signatures_are_refused_and_change_nothing() {
    let (svc, fake) = start_stripe().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let (session, _) = checkout_paid(&svc, &fake, &token).await;
    let body =
        serde_json::to_vec(&event_json("checkout.session.completed", fake.checkout_session(&session).unwrap(), None))
            .unwrap();
    let now = unix_now();

    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'p').unwrap();
    tampered[at] = b'q';
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("tampered body", tampered, Some(sign_webhook(&body, SECRET, now))),
        ("wrong secret", body.clone(), Some(sign_webhook(&body, "whsec_someone_else", now))),
        ("stale timestamp", body.clone(), Some(sign_webhook(&body, SECRET, now - 360))),
        ("future timestamp", body.clone(), Some(sign_webhook(&body, SECRET, now + 360))),
        ("no header", body.clone(), None),
        ("garbage header", body.clone(), Some("hello".into())),
        ("v0 only", body.clone(), Some(format!("t={now},v0={}", webhook_v1(&body, SECRET, now)))),
    ];
    for (name, payload, sig) in cases {
        let r = deliver(&svc, &payload, sig).await;
        assert_eq!(r.status, 400, "{name}");
        let err: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(err["error"]["code"], "webhooks.invalid_signature", "{name}");
    }
    assert_eq!(subscription(&svc, &token).await.plan_code, "free");
    assert_eq!(svc.balance(&token).await.available, 50);
    assert_eq!(events_recorded(&svc).await, 0);

    // Rotation: the old secret still signs; a header with several v1 values needs one match.
    let several = format!("t={now},v1={},v1={}", "ab".repeat(32), webhook_v1(&body, OLD_SECRET, now));
    assert_eq!(deliver(&svc, &body, Some(several)).await.status, 200);
    assert_eq!(subscription(&svc, &token).await.plan_code, "pro");
}

#[tokio::test]
async fn plan_changes_send_idempotency_keys_and_follow_stripe() {
    let (svc, fake) = start_stripe().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let (session, sub_id) = checkout_paid(&svc, &fake, &token).await;
    send(&svc, &event_json("checkout.session.completed", fake.checkout_session(&session).unwrap(), None)).await;
    let mut c = svc.client();

    // Upgrade: Stripe swaps the price and invoices the prorated difference now.
    let before = svc.balance(&token).await.available;
    let up = pb::ChangePlanRequest { plan_code: "premium".into(), idempotency_key: "up-1".into() };
    let sub = c.change_plan(authed(up.clone(), &token)).await.unwrap().into_inner();
    assert_eq!(sub.plan_code, "premium");
    let gained = svc.balance(&token).await.available - before;
    assert!((1490..=1500).contains(&gained), "{gained}");
    let posts = fake.requests_to("POST", &format!("/v1/subscriptions/{sub_id}"));
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].param("items[0][price]"), Some("price_premium"));
    assert_eq!(posts[0].param("proration_behavior"), Some("always_invoice"));
    let key = posts[0].idempotency_key.clone().expect("idempotency key");
    // Retrying the same change replays at Stripe (same key) and grants nothing more.
    c.change_plan(authed(up, &token)).await.unwrap();
    let posts = fake.requests_to("POST", &format!("/v1/subscriptions/{sub_id}"));
    assert_eq!(posts.last().unwrap().idempotency_key.as_deref(), Some(key.as_str()));
    assert!((1490..=1500).contains(&(svc.balance(&token).await.available - before)));

    // The proration invoice arrives as invoice.paid: listed, announced once.
    let invoice = fake.last_invoice().unwrap();
    assert_eq!(invoice["billing_reason"], "subscription_update");
    for _ in 0..2 {
        let e = event_json("invoice.paid", invoice.clone(), None);
        send(&svc, &e).await;
    }
    let list = c.list_invoices(authed(pb::ListInvoicesRequest::default(), &token)).await.unwrap().into_inner();
    assert!(
        list.items.iter().any(|i| i.reason == "subscription_update" && i.provider == "stripe" && i.status == "paid")
    );
    assert_eq!(outbox_subjects(&svc, ws, "nexus.subscriptions.invoice.paid").await.len(), 1);

    // Downgrade: no proration; PREMIUM stays until the period ends.
    let sub = c
        .change_plan(authed(
            pb::ChangePlanRequest { plan_code: "pro".into(), idempotency_key: "down-1".into() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((sub.plan_code.as_str(), sub.pending_plan_code.as_str()), ("premium", "pro"));
    assert_eq!(
        fake.requests_to("POST", &format!("/v1/subscriptions/{sub_id}")).last().unwrap().param("proration_behavior"),
        Some("none")
    );

    // Cancel at period end, through Stripe.
    let sub = c.cancel_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert!(sub.cancel_at_period_end);
    assert_eq!(fake.subscription(&sub_id).unwrap()["cancel_at_period_end"], true);

    // Portal for the customer Stripe created at checkout.
    let portal = c.create_portal(authed(pb::PortalRequest::default(), &token)).await.unwrap().into_inner();
    assert!(portal.url.starts_with(&fake.base_url));
    assert!(fake.requests_to("POST", "/v1/billing_portal/sessions")[0].idempotency_key.is_some());
}

#[tokio::test]
async fn a_failed_renewal_keeps_access_until_stripe_gives_up() {
    let (svc, fake) = start_stripe().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let (session, sub_id) = checkout_paid(&svc, &fake, &token).await;
    send(&svc, &event_json("checkout.session.completed", fake.checkout_session(&session).unwrap(), None)).await;

    // Renewal whose payment fails: past_due, paid features kept, the new period's credits granted.
    fake.renew_subscription(&sub_id, "open");
    let before = svc.balance(&token).await.available;
    send(&svc, &event_json("invoice.payment_failed", fake.last_invoice().unwrap(), None)).await;
    let sub = subscription(&svc, &token).await;
    assert_eq!((sub.plan_code.as_str(), sub.status.as_str()), ("pro", "past_due"));
    assert!(sub.access);
    assert_eq!(svc.balance(&token).await.available, before + 500);
    assert_eq!(outbox_subjects(&svc, ws, "nexus.subscriptions.payment.failed").await.len(), 1);

    // Stripe gives up: unpaid → FREE's limits apply.
    fake.set_subscription_status(&sub_id, "unpaid");
    send(&svc, &event_json("customer.subscription.updated", fake.subscription(&sub_id).unwrap(), None)).await;
    let sub = subscription(&svc, &token).await;
    assert_eq!(sub.status, "unpaid");
    assert!(!sub.access);
    let videos = svc
        .client()
        .check_entitlement(authed(pb::EntitlementRequest { feature: "videos_per_month".into() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(videos.limit, 2, "FREE's limit while unpaid");

    // Canceled: back on FREE, locally billed.
    fake.set_subscription_status(&sub_id, "canceled");
    send(&svc, &event_json("customer.subscription.deleted", fake.subscription(&sub_id).unwrap(), None)).await;
    let sub = subscription(&svc, &token).await;
    assert_eq!((sub.plan_code.as_str(), sub.status.as_str(), sub.billing.as_str()), ("free", "active", "local"));
}

#[tokio::test]
async fn stripe_outages_change_nothing_and_webhooks_are_retried() {
    let (svc, fake) = start_stripe().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    fake.fail_next(3, 500, FakeStripe::error_body("api_error", None, "boom"), None, None);
    let e = c.create_checkout(authed(plan_checkout("pro", "x"), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.payment_provider_unavailable");
    assert_eq!(e.code(), tonic::Code::Unavailable);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions.checkout_sessions")
        .fetch_one(&svc.admin().await)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // A webhook that cannot re-read the object is not recorded: Stripe's retry applies it.
    let (session, _) = checkout_paid(&svc, &fake, &token).await;
    let event = event_json("checkout.session.completed", fake.checkout_session(&session).unwrap(), None);
    let body = serde_json::to_vec(&event).unwrap();
    fake.fail_next(3, 503, FakeStripe::error_body("api_error", None, "down"), None, None);
    let mut headers = std::collections::HashMap::new();
    headers.insert("stripe-signature".to_owned(), sign_webhook(&body, SECRET, unix_now()));
    let failed = svc
        .webhooks()
        .deliver(DeliverWebhookRequest {
            provider: "stripe".into(),
            method: "POST".into(),
            query: String::new(),
            headers,
            body: body.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), tonic::Code::Unavailable);
    assert_eq!(events_recorded(&svc).await, 0);
    assert_eq!(send(&svc, &event).await, 200);
    assert_eq!(subscription(&svc, &token).await.plan_code, "pro");

    // A session the customer abandoned expires.
    let req = pb::CheckoutRequest {
        kind: "credits".into(),
        pack_code: "credits_100".into(),
        idempotency_key: "gone".into(),
        ..Default::default()
    };
    let abandoned = c.create_checkout(authed(req, &token)).await.unwrap().into_inner();
    let mut obj = fake.checkout_session(&abandoned.id).unwrap();
    obj["status"] = "expired".into();
    send(&svc, &event_json("checkout.session.expired", obj, None)).await;
    let status: String = sqlx::query_scalar("SELECT status FROM subscriptions.checkout_sessions WHERE id = $1")
        .bind(&abandoned.id)
        .fetch_one(&svc.admin().await)
        .await
        .unwrap();
    assert_eq!(status, "expired");

    // Credit pack through Stripe Checkout (payment mode).
    let req = pb::CheckoutRequest {
        kind: "credits".into(),
        pack_code: "credits_100".into(),
        idempotency_key: "p".into(),
        ..Default::default()
    };
    let s = c.create_checkout(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!(fake.requests_to("POST", "/v1/checkout/sessions").last().unwrap().param("mode"), Some("payment"));
    fake.complete_checkout(&s.id);
    let before = svc.balance(&token).await.available;
    send(&svc, &event_json("checkout.session.completed", fake.checkout_session(&s.id).unwrap(), None)).await;
    assert_eq!(svc.balance(&token).await.available, before + 100);
}
