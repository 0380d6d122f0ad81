//! Stripe client against the fake Stripe (real HTTP on 127.0.0.1, port 0), and webhook
//! verification against the fake's independent signer.

use std::time::{Duration, Instant};

use nexus_kernel::ErrorKind;
use nexus_providers::stripe::{
    CheckoutParams, StripeClient, StripeConfig, StripeError, WEBHOOK_TOLERANCE, WebhookError, verify_webhook,
};
use nexus_testkit::stripe::{
    FakeStripe, TEST_API_KEY, TEST_WEBHOOK_SECRET, event_json, sign_webhook, unix_now, webhook_v1,
};
use serde_json::json;

const SUCCESS_URL: &str = "https://app.example.com/billing/ok?session_id={CHECKOUT_SESSION_ID}";
const CANCEL_URL: &str = "https://app.example.com/billing/cancel";

fn config(fake: &FakeStripe) -> StripeConfig {
    StripeConfig {
        api_key: TEST_API_KEY.into(),
        base_url: fake.base_url.clone(),
        api_version: "2026-06-24.dahlia".into(),
        webhook_secrets: vec![TEST_WEBHOOK_SECRET.into()],
    }
}

async fn setup() -> (FakeStripe, StripeClient) {
    nexus_testkit::init_tracing();
    let fake = FakeStripe::start().await;
    let client = StripeClient::new(config(&fake), reqwest::Client::new());
    (fake, client)
}

fn key() -> String {
    format!("test-{:032x}", rand::random::<u128>())
}

fn checkout(customer: &str) -> CheckoutParams {
    CheckoutParams {
        customer: Some(customer.into()),
        client_reference_id: Some("42".into()),
        metadata: vec![("user_id".into(), "42".into()), ("plan".into(), "PRO".into())],
        ..CheckoutParams::subscription("price_pro_monthly", SUCCESS_URL, CANCEL_URL)
    }
}

#[tokio::test]
async fn customer_form_and_headers_reach_stripe() {
    let (fake, client) = setup().await;
    let k = key();
    let cus = client
        .create_customer("ada@example.com", Some("Ada Lovelace"), &[("user_id", "42"), ("locale", "he")], &k)
        .await
        .unwrap();
    assert!(cus.id.starts_with("cus_"));
    assert_eq!(cus.email.as_deref(), Some("ada@example.com"));
    assert!(!cus.replayed);

    let reqs = fake.requests_to("POST", "/v1/customers");
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(r.authorized);
    assert_eq!(r.idempotency_key.as_deref(), Some(k.as_str()));
    assert_eq!(r.stripe_version.as_deref(), Some("2026-06-24.dahlia"));
    assert!(r.content_type.as_deref().unwrap().starts_with("application/x-www-form-urlencoded"));
    assert_eq!(r.param("metadata[user_id]"), Some("42"));
    assert_eq!(
        r.params,
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "metadata": {"user_id": "42", "locale": "he"}})
    );
    assert_eq!(fake.customer(&cus.id).unwrap()["metadata"]["locale"], "he");
}

#[tokio::test]
async fn checkout_flow_with_bracket_notation() {
    let (fake, client) = setup().await;
    fake.set_price("price_pro_monthly", 9700, "usd");
    let cus = client.create_customer("ada@example.com", None, &[], &key()).await.unwrap();

    let params = CheckoutParams { trial_period_days: Some(14), ..checkout(&cus.id) };
    let session = client.create_checkout_session(&params, &key()).await.unwrap();
    assert!(session.id.starts_with("cs_"));
    assert_eq!(session.url.as_deref(), Some(format!("{}/checkout/{}", fake.base_url, session.id).as_str()));
    assert_eq!(session.status.as_deref(), Some("open"));
    assert_eq!(session.payment_status.as_deref(), Some("unpaid"));
    assert_eq!(session.mode.as_deref(), Some("subscription"));
    assert_eq!(session.customer.as_deref(), Some(cus.id.as_str()));
    assert_eq!(session.subscription, None);
    assert_eq!(session.client_reference_id.as_deref(), Some("42"));
    assert_eq!(session.metadata["plan"], "PRO");

    let sent = &fake.requests_to("POST", "/v1/checkout/sessions")[0];
    assert_eq!(sent.param("success_url"), Some(SUCCESS_URL), "braces survive form encoding");
    assert_eq!(
        sent.params,
        json!({
            "mode": "subscription",
            "line_items": [{"price": "price_pro_monthly", "quantity": "1"}],
            "success_url": SUCCESS_URL,
            "cancel_url": CANCEL_URL,
            "customer": cus.id,
            "client_reference_id": "42",
            "metadata": {"user_id": "42", "plan": "PRO"},
            "subscription_data": {"metadata": {"user_id": "42", "plan": "PRO"}, "trial_period_days": "14"},
        })
    );

    let sub_id = fake.complete_checkout(&session.id).unwrap();
    let done = client.retrieve_checkout_session(&session.id).await.unwrap();
    assert_eq!(done.status.as_deref(), Some("complete"));
    assert_eq!(done.subscription.as_deref(), Some(sub_id.as_str()));
    assert_eq!(done.url, None);

    let sub = client.retrieve_subscription(&sub_id).await.unwrap();
    assert_eq!(sub.customer, cus.id);
    assert_eq!(sub.status, "trialing");
    assert_eq!(sub.items, vec!["price_pro_monthly"]);
    assert_eq!(sub.metadata["user_id"], "42");
    assert!(!sub.cancel_at_period_end);
    // The fake, like API versions since basil, keeps the period on the items only.
    let (start, end) = (sub.current_period_start.unwrap(), sub.current_period_end.unwrap());
    assert!(end - start >= 28 * 86_400, "{start}..{end}");
}

#[tokio::test]
async fn subscription_updates_portal_and_invoices() {
    let (fake, client) = setup().await;
    fake.set_price("price_pro_monthly", 9700, "usd");
    let cus = client.create_customer("ada@example.com", None, &[], &key()).await.unwrap();
    let session = client.create_checkout_session(&checkout(&cus.id), &key()).await.unwrap();
    let sub_id = fake.complete_checkout(&session.id).unwrap();

    let sub = client.cancel_subscription_at_period_end(&sub_id, true, &key()).await.unwrap();
    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.status, "active");
    assert_eq!(
        fake.requests_to("POST", &format!("/v1/subscriptions/{sub_id}"))[0].params,
        json!({"cancel_at_period_end": "true"})
    );

    let item_id = fake.subscription(&sub_id).unwrap()["items"]["data"][0]["id"].as_str().unwrap().to_string();
    let params = vec![
        ("items[0][id]".to_string(), item_id),
        ("items[0][price]".to_string(), "price_premium_monthly".to_string()),
        ("proration_behavior".to_string(), "create_prorations".to_string()),
        ("metadata[plan]".to_string(), "PREMIUM".to_string()),
    ];
    let sub = client.update_subscription(&sub_id, &params, &key()).await.unwrap();
    assert_eq!(sub.items, vec!["price_premium_monthly"]);
    assert_eq!(sub.metadata["plan"], "PREMIUM");

    fake.set_subscription_status(&sub_id, "past_due");
    assert_eq!(client.retrieve_subscription(&sub_id).await.unwrap().status, "past_due");

    let portal = client.create_portal_session(&cus.id, "https://app.example.com/billing", &key()).await.unwrap();
    assert!(portal.id.starts_with("bps_"));
    assert!(portal.url.starts_with(&fake.base_url));

    fake.add_invoice(&sub_id, 9700, "open");
    let invoices = client.list_invoices(&cus.id, 10).await.unwrap();
    assert_eq!(invoices.len(), 2);
    let paid = invoices.iter().find(|i| i.status.as_deref() == Some("paid")).unwrap();
    assert_eq!((paid.amount_paid, paid.amount_due, paid.currency.as_str()), (9700, 9700, "usd"));
    assert_eq!(paid.subscription.as_deref(), Some(sub_id.as_str()));
    assert!(paid.hosted_invoice_url.is_some() && paid.invoice_pdf.is_some() && paid.number.is_some());
    assert!(paid.period_end.unwrap() > paid.period_start.unwrap());
    let list = &fake.requests_to("GET", "/v1/invoices")[0];
    assert_eq!((list.param("customer"), list.param("limit")), (Some(cus.id.as_str()), Some("10")));
    assert_eq!(client.list_invoices(&cus.id, 1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn same_key_twice_is_replayed_not_duplicated() {
    let (fake, client) = setup().await;
    let k = key();
    let first = client.create_customer("ada@example.com", None, &[("user_id", "42")], &k).await.unwrap();
    let second = client.create_customer("ada@example.com", None, &[("user_id", "42")], &k).await.unwrap();
    assert_eq!(first.id, second.id);
    assert!(!first.replayed);
    assert!(second.replayed);
    assert_eq!(fake.customer_count(), 1);
    let reqs = fake.requests_to("POST", "/v1/customers");
    assert_eq!(reqs.iter().map(|r| r.replayed).collect::<Vec<_>>(), vec![false, true]);

    // A checkout session too.
    let k = key();
    let a = client.create_checkout_session(&checkout(&first.id), &k).await.unwrap();
    let b = client.create_checkout_session(&checkout(&first.id), &k).await.unwrap();
    assert_eq!((a.id == b.id, a.replayed, b.replayed), (true, false, true));
    assert_eq!(fake.checkout_session_count(), 1);
}

#[tokio::test]
async fn same_key_other_params_is_an_idempotency_conflict() {
    let (fake, client) = setup().await;
    let k = key();
    client.create_customer("ada@example.com", None, &[], &k).await.unwrap();
    let err = client.create_customer("grace@example.com", None, &[], &k).await.unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.kind, "idempotency_error");
    assert!(!err.retryable);
    assert_eq!(fake.requests_to("POST", "/v1/customers").len(), 2, "not retried");
    assert_eq!(fake.customer_count(), 1);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!(kernel.kind(), ErrorKind::Conflict);
    assert_eq!(kernel.code(), "request.conflict");
}

#[tokio::test]
async fn rate_limit_with_should_retry_true_is_retried_with_the_same_key() {
    let (fake, client) = setup().await;
    let body = FakeStripe::error_body("invalid_request_error", Some("rate_limit"), "Too many requests");
    fake.fail_next(2, 429, body, Some(true), None);
    let k = key();
    let cus = client.create_customer("ada@example.com", None, &[], &k).await.unwrap();
    assert!(!cus.replayed);

    let reqs = fake.requests_to("POST", "/v1/customers");
    assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 429, 200]);
    assert!(reqs.iter().all(|r| r.idempotency_key.as_deref() == Some(k.as_str())), "same key on every attempt");
    assert_eq!(reqs.iter().filter(|r| r.injected).count(), 2);
    assert_eq!(fake.customer_count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_three_times_then_unavailable() {
    let (fake, client) = setup().await;
    fake.fail_next(3, 500, FakeStripe::error_body("api_error", None, "Something went wrong"), None, None);
    let err = client.create_customer("ada@example.com", None, &[], &key()).await.unwrap_err();
    assert_eq!((err.status, err.kind.as_str(), err.retryable), (500, "api_error", true));
    assert_eq!(fake.requests_to("POST", "/v1/customers").len(), 3);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!(kernel.kind(), ErrorKind::Unavailable);
    assert_eq!(kernel.code(), "service.unavailable");

    // A 409 (concurrent request with the same key) is retried too, and GETs are.
    fake.fail_next(1, 409, FakeStripe::error_body("invalid_request_error", None, "concurrent"), None, None);
    client.create_customer("ada@example.com", None, &[], &key()).await.unwrap();
    fake.fail_next(1, 503, json!({}), None, None);
    assert!(client.list_invoices("cus_none", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn should_retry_false_is_obeyed_even_on_500() {
    let (fake, client) = setup().await;
    fake.fail_next(1, 500, FakeStripe::error_body("api_error", None, "do not retry"), Some(false), None);
    let err = client.create_customer("ada@example.com", None, &[], &key()).await.unwrap_err();
    assert_eq!(err.status, 500);
    assert!(!err.retryable);
    assert_eq!(fake.requests_to("POST", "/v1/customers").len(), 1);
}

#[tokio::test]
async fn should_retry_true_retries_other_statuses() {
    let (fake, client) = setup().await;
    fake.fail_next(
        1,
        400,
        FakeStripe::error_body("invalid_request_error", Some("lock_timeout"), "busy"),
        Some(true),
        None,
    );
    client.create_customer("ada@example.com", None, &[], &key()).await.unwrap();
    assert_eq!(fake.requests_to("POST", "/v1/customers").len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured_and_long_ones_stop_retries() {
    let (fake, client) = setup().await;
    fake.fail_next(
        1,
        429,
        FakeStripe::error_body("invalid_request_error", Some("rate_limit"), "slow down"),
        None,
        Some(1),
    );
    let started = Instant::now();
    client.create_customer("ada@example.com", None, &[], &key()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());

    fake.clear_requests();
    fake.fail_next(
        1,
        429,
        FakeStripe::error_body("invalid_request_error", Some("rate_limit"), "slow down"),
        None,
        Some(60),
    );
    let err = client.create_customer("ada@example.com", None, &[], &key()).await.unwrap_err();
    assert_eq!((err.status, err.retryable), (429, true));
    assert_eq!(fake.requests().len(), 1, "a minute-long Retry-After is not waited out");
}

#[tokio::test]
async fn error_body_is_parsed_and_card_errors_need_payment() {
    let (fake, client) = setup().await;
    let body = json!({"error": {
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.", "param": "payment_method",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined"
    }});
    fake.fail_next(1, 402, body, None, None);
    let err = client.create_customer("ada@example.com", None, &[], &key()).await.unwrap_err();
    assert_eq!(err.status, 402);
    assert_eq!(err.kind, "card_error");
    assert_eq!(err.code.as_deref(), Some("card_declined"));
    assert_eq!(err.decline_code.as_deref(), Some("insufficient_funds"));
    assert_eq!(err.param.as_deref(), Some("payment_method"));
    assert_eq!(err.message, "Your card has insufficient funds.");
    assert!(!err.retryable);
    let req_id = err.request_id.clone().unwrap();
    assert!(req_id.starts_with("req_"), "{req_id}");
    assert_eq!(fake.requests().len(), 1);

    let kernel: nexus_kernel::Error = err.into();
    assert_eq!(kernel.kind(), ErrorKind::PaymentRequired);
    assert_eq!(kernel.code(), "subscriptions.payment_failed");
}

#[tokio::test]
async fn our_bugs_map_to_internal_with_the_cause() {
    let (fake, client) = setup().await;
    let err = client.retrieve_subscription("sub_missing").await.unwrap_err();
    assert_eq!((err.status, err.code.as_deref()), (404, Some("resource_missing")));
    assert!(err.is_not_found());
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!(kernel.kind(), ErrorKind::Internal);
    let cause = std::error::Error::source(&kernel).unwrap().to_string();
    assert!(cause.contains("No such subscription"), "{cause}");

    // Unknown customer on checkout: 400 with the param.
    let err = client.create_checkout_session(&checkout("cus_nobody"), &key()).await.unwrap_err();
    assert_eq!((err.status, err.param.as_deref()), (400, Some("customer")));
    assert_eq!(nexus_kernel::Error::from(err).kind(), ErrorKind::Internal);

    // Bad ids and keys never leave the process.
    let before = fake.requests().len();
    assert!(client.retrieve_checkout_session("../customers").await.is_err());
    assert!(client.create_customer("a@b.c", None, &[], "").await.is_err());
    assert_eq!(fake.requests().len(), before);

    // A live/unknown key: 401.
    let bad =
        StripeClient::new(StripeConfig { api_key: "sk_live_nope".into(), ..config(&fake) }, reqwest::Client::new());
    let err = bad.retrieve_subscription("sub_1").await.unwrap_err();
    assert_eq!(err.status, 401);
    assert!(!format!("{err:?} {err}").contains("sk_live_nope"));
    assert!(!format!("{bad:?}").contains("sk_live_nope"));
    assert_eq!(nexus_kernel::Error::from(err).kind(), ErrorKind::Internal);
}

#[tokio::test]
async fn unreachable_stripe_is_unavailable() {
    nexus_testkit::init_tracing();
    let addr = nexus_testkit::unreachable_addr();
    let cfg = StripeConfig { base_url: format!("http://{addr}"), ..StripeConfig::new(TEST_API_KEY) };
    let client = StripeClient::new(cfg, reqwest::Client::new());
    let err: StripeError = client.retrieve_subscription("sub_1").await.unwrap_err();
    assert_eq!((err.status, err.kind.as_str(), err.retryable), (0, "api_connection_error", true));
    assert_eq!(nexus_kernel::Error::from(err).kind(), ErrorKind::Unavailable);
}

// ---------------------------------------------------------------------------------------------
// Webhooks

fn event_payload() -> Vec<u8> {
    let sub = json!({"id": "sub_1", "object": "subscription", "status": "active", "cancel_at_period_end": true});
    let ev = event_json("customer.subscription.updated", sub, Some(json!({"cancel_at_period_end": false})));
    serde_json::to_vec(&ev).unwrap()
}

fn secrets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn webhook_valid_signature_is_accepted() {
    let payload = event_payload();
    let now = unix_now();
    let header = sign_webhook(&payload, TEST_WEBHOOK_SECRET, now);
    let ev = verify_webhook(&payload, &header, &secrets(&[TEST_WEBHOOK_SECRET]), WEBHOOK_TOLERANCE, now).unwrap();
    assert!(ev.id.starts_with("evt_"));
    assert_eq!(ev.kind, "customer.subscription.updated");
    assert_eq!(ev.data_object["id"], "sub_1");
    assert_eq!(ev.previous_attributes, Some(json!({"cancel_at_period_end": false})));
    assert!(ev.created > 0);
}

#[tokio::test]
async fn webhook_via_client_config() {
    let (_fake, client) = setup().await;
    let payload = event_payload();
    let header = sign_webhook(&payload, TEST_WEBHOOK_SECRET, unix_now());
    assert_eq!(client.construct_event(&payload, &header).unwrap().data_object["status"], "active");
}

#[test]
fn webhook_several_v1_entries_one_valid() {
    let payload = event_payload();
    let t = unix_now();
    let good = webhook_v1(&payload, TEST_WEBHOOK_SECRET, t);
    let other = webhook_v1(&payload, "whsec_someone_else", t);
    let header = format!("t={t},v1={other},v1=deadbeef,v1={good},v0={good},scheme=x");
    assert!(verify_webhook(&payload, &header, &secrets(&[TEST_WEBHOOK_SECRET]), WEBHOOK_TOLERANCE, t).is_ok());
}

#[test]
fn webhook_secret_rotation_second_secret_valid() {
    let payload = event_payload();
    let t = unix_now();
    let header = sign_webhook(&payload, "whsec_new_after_rotation", t);
    let both = secrets(&[TEST_WEBHOOK_SECRET, "whsec_new_after_rotation"]);
    assert!(verify_webhook(&payload, &header, &both, WEBHOOK_TOLERANCE, t).is_ok());
    let old_only = secrets(&[TEST_WEBHOOK_SECRET]);
    assert_eq!(
        verify_webhook(&payload, &header, &old_only, WEBHOOK_TOLERANCE, t).unwrap_err(),
        WebhookError::NoMatchingSignature
    );
}

#[test]
fn webhook_tampered_body_is_rejected() {
    let payload = event_payload();
    let t = unix_now();
    let header = sign_webhook(&payload, TEST_WEBHOOK_SECRET, t);
    let tampered = String::from_utf8(payload).unwrap().replace("\"active\"", "\"canceled\"").into_bytes();
    assert_eq!(
        verify_webhook(&tampered, &header, &secrets(&[TEST_WEBHOOK_SECRET]), WEBHOOK_TOLERANCE, t).unwrap_err(),
        WebhookError::NoMatchingSignature
    );
    // Moving the timestamp breaks the signature too.
    let shifted = header.replacen(&format!("t={t}"), &format!("t={}", t + 1), 1);
    assert_eq!(
        verify_webhook(&event_payload(), &shifted, &secrets(&[TEST_WEBHOOK_SECRET]), WEBHOOK_TOLERANCE, t).unwrap_err(),
        WebhookError::NoMatchingSignature
    );
}

#[test]
fn webhook_wrong_secret_is_rejected() {
    let payload = event_payload();
    let t = unix_now();
    let header = sign_webhook(&payload, "whsec_attacker", t);
    assert_eq!(
        verify_webhook(&payload, &header, &secrets(&[TEST_WEBHOOK_SECRET]), WEBHOOK_TOLERANCE, t).unwrap_err(),
        WebhookError::NoMatchingSignature
    );
    assert_eq!(
        verify_webhook(&payload, &header, &[], WEBHOOK_TOLERANCE, t).unwrap_err(),
        WebhookError::NoMatchingSignature
    );
}

#[test]
fn webhook_old_or_future_timestamp_is_rejected() {
    let payload = event_payload();
    let now = unix_now();
    let s = secrets(&[TEST_WEBHOOK_SECRET]);
    let at =
        |t: i64| verify_webhook(&payload, &sign_webhook(&payload, TEST_WEBHOOK_SECRET, t), &s, WEBHOOK_TOLERANCE, now);
    assert_eq!(at(now - 301).unwrap_err(), WebhookError::Expired);
    assert!(at(now - 300).is_ok());
    assert!(at(now + 300).is_ok());
    assert_eq!(at(now + 301).unwrap_err(), WebhookError::Expired);
}

#[test]
fn webhook_missing_or_malformed_header_is_rejected() {
    let payload = event_payload();
    let now = unix_now();
    let s = secrets(&[TEST_WEBHOOK_SECRET]);
    let check = |h: &str| verify_webhook(&payload, h, &s, WEBHOOK_TOLERANCE, now);
    assert_eq!(check("").unwrap_err(), WebhookError::MissingHeader);
    assert!(matches!(check("garbage"), Err(WebhookError::Malformed(_))));
    assert!(matches!(check("t=yesterday,v1=abcd"), Err(WebhookError::Malformed(_))));
    let sig = webhook_v1(&payload, TEST_WEBHOOK_SECRET, now);
    assert!(matches!(check(&format!("v1={sig}")), Err(WebhookError::Malformed(_))));
    assert_eq!(check(&format!("t={now},v0={sig}")).unwrap_err(), WebhookError::NoMatchingSignature);
}

#[test]
fn webhook_signed_non_event_is_invalid_payload() {
    let payload = br#"{"hello":"world"}"#;
    let now = unix_now();
    let header = sign_webhook(payload, TEST_WEBHOOK_SECRET, now);
    assert!(matches!(
        verify_webhook(payload, &header, &secrets(&[TEST_WEBHOOK_SECRET]), WEBHOOK_TOLERANCE, now),
        Err(WebhookError::InvalidPayload(_))
    ));
}
