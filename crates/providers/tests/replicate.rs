//! Replicate client against the fake Replicate (real HTTP on 127.0.0.1, port 0), and webhook
//! verification against signatures computed here with `hmac` + `sha2` directly.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use nexus_kernel::ErrorKind;
use nexus_providers::replicate::{
    CreatePrediction, PollOptions, Prediction, PredictionStatus, PredictionTarget, ReplicateClient, ReplicateConfig,
    ReplicateError, WEBHOOK_TOLERANCE, WebhookError, WebhookEventType, parse_webhook, verify_webhook,
};
use nexus_testkit::replicate::{
    FakeReplicate, Outcome, TEST_API_TOKEN, TEST_VERSION, TEST_WEBHOOK_SECRET, WebhookSink,
};
use serde_json::json;
use sha2::Sha256;

fn config(fake: &FakeReplicate) -> ReplicateConfig {
    ReplicateConfig {
        api_token: TEST_API_TOKEN.into(),
        base_url: fake.base_url.clone(),
        webhook_secret: Some(TEST_WEBHOOK_SECRET.into()),
    }
}

async fn setup() -> (FakeReplicate, ReplicateClient) {
    nexus_testkit::init_tracing();
    let fake = FakeReplicate::start().await;
    let client = ReplicateClient::new(config(&fake), reqwest::Client::new());
    (fake, client)
}

fn by_version() -> CreatePrediction {
    CreatePrediction::new(PredictionTarget::Version(TEST_VERSION.into()), json!({"prompt": "a red mug on a desk"}))
}

fn fast_poll() -> PollOptions {
    PollOptions {
        initial_interval: Duration::from_millis(20),
        max_interval: Duration::from_millis(50),
        deadline: Duration::from_secs(5),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn create_then_poll_to_success() {
    let (fake, client) = setup().await;
    let created = client.create_prediction(&by_version()).await.unwrap();
    assert_eq!(created.status, PredictionStatus::Starting);
    assert_eq!(created.output, serde_json::Value::Null);
    assert_eq!(created.version.as_deref(), Some(TEST_VERSION));
    assert!(created.urls.get.as_deref().unwrap().ends_with(&format!("/predictions/{}", created.id)));

    let sent = &fake.requests_to("POST", "/v1/predictions")[0];
    assert_eq!(sent.authorization.as_deref(), Some(format!("Bearer {TEST_API_TOKEN}").as_str()));
    assert_eq!(sent.body, json!({"version": TEST_VERSION, "input": {"prompt": "a red mug on a desk"}}));
    assert_eq!(sent.prefer, None);

    let done = client.wait_for_prediction(&created.id, &fast_poll()).await.unwrap();
    assert_eq!(done.status, PredictionStatus::Succeeded);
    assert_eq!(done.output_urls(), vec![format!("{}/files/{}/out-0.png", fake.base_url, created.id)]);
    assert!(done.metrics.predict_time.unwrap() > 0.0);
    assert!(done.completed_at.is_some());
    assert_eq!(fake.requests_to("GET", &format!("/v1/predictions/{}", created.id)).len(), 2);
    let ok = done.into_result().unwrap();
    assert_eq!(ok.id, created.id);
}

#[tokio::test]
async fn statuses_move_starting_processing_succeeded() {
    let (fake, client) = setup().await;
    fake.set_reads_per_status(2);
    let created = client.create_prediction(&by_version()).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(client.get_prediction(&created.id).await.unwrap().status);
    }
    use PredictionStatus::*;
    assert_eq!(seen, vec![Starting, Processing, Processing, Succeeded]);
    // Terminal stays terminal.
    assert_eq!(client.get_prediction(&created.id).await.unwrap().status, Succeeded);
}

#[tokio::test]
async fn official_model_endpoint_and_sync_wait() {
    let (fake, client) = setup().await;
    let target = PredictionTarget::parse("black-forest-labs/flux-schnell").unwrap();
    let req = CreatePrediction { wait: Some(5), ..CreatePrediction::new(target, json!({"prompt": "a lighthouse"})) };
    let p = client.create_prediction(&req).await.unwrap();
    assert_eq!(p.status, PredictionStatus::Succeeded, "Prefer: wait and a quick model");
    assert_eq!(p.model, "black-forest-labs/flux-schnell");
    let sent = &fake.requests_to("POST", "/v1/models/black-forest-labs/flux-schnell/predictions")[0];
    assert_eq!(sent.body, json!({"input": {"prompt": "a lighthouse"}}), "no version for official models");
    assert_eq!(sent.prefer.as_deref(), Some("wait=5"));

    // Refused before sending.
    let bad = CreatePrediction { wait: Some(61), ..by_version() };
    assert!(matches!(client.create_prediction(&bad).await, Err(ReplicateError::InvalidArgument(_))));
    assert!(matches!(client.get_prediction("../../account").await, Err(ReplicateError::InvalidArgument(_))));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn failed_and_canceled_predictions() {
    let (fake, client) = setup().await;
    fake.set_outcome(Outcome::Fail("NSFW content detected".into()));
    let p = client.create_prediction(&by_version()).await.unwrap();
    let done = client.wait_for_prediction(&p.id, &fast_poll()).await.unwrap();
    assert_eq!(done.status, PredictionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("NSFW content detected"));
    let err = done.into_result().unwrap_err();
    assert!(matches!(&err, ReplicateError::PredictionFailed { error, .. } if error == "NSFW content detected"));
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::Unprocessable, "provider.generation_failed"));

    let p = client.create_prediction(&by_version()).await.unwrap();
    let canceled = client.cancel_prediction(&p.id).await.unwrap();
    assert_eq!(canceled.status, PredictionStatus::Canceled);
    assert_eq!(client.get_prediction(&p.id).await.unwrap().status, PredictionStatus::Canceled);
    assert_eq!(client.cancel_prediction(&p.id).await.unwrap().status, PredictionStatus::Canceled, "idempotent");
    assert_eq!(fake.requests_to("POST", &format!("/v1/predictions/{}/cancel", p.id)).len(), 2);
    assert!(matches!(canceled.into_result(), Err(ReplicateError::PredictionCanceled { .. })));
}

#[tokio::test]
async fn polling_stops_at_the_deadline() {
    let (fake, client) = setup().await;
    fake.set_reads_per_status(10_000);
    let p = client.create_prediction(&by_version()).await.unwrap();
    let opts = PollOptions { deadline: Duration::from_millis(300), ..fast_poll() };
    let started = Instant::now();
    let err = client.wait_for_prediction(&p.id, &opts).await.unwrap_err();
    let elapsed = started.elapsed();
    let ReplicateError::PollDeadline { last } = &err else { panic!("{err:?}") };
    assert_eq!(last.status, PredictionStatus::Starting);
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let reads = fake.requests_to("GET", &format!("/v1/predictions/{}", p.id)).len();
    assert!((3..=15).contains(&reads), "backoff between reads: {reads}");
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!(kernel.code(), "provider.timeout");
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after() {
    let (fake, client) = setup().await;
    fake.fail_next(1, 429, FakeReplicate::throttled_body(1), Some(1));
    let started = Instant::now();
    client.create_prediction(&by_version()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    let statuses: Vec<u16> = fake.requests_to("POST", "/v1/predictions").iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 201]);
    assert_eq!(fake.prediction_count(), 1);

    // A minute is not waited out.
    fake.fail_next(1, 429, FakeReplicate::throttled_body(60), Some(60));
    let err = client.create_prediction(&by_version()).await.unwrap_err();
    assert!(matches!(err, ReplicateError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(60)));
    assert_eq!(fake.requests_to("POST", "/v1/predictions").len(), 3);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.param("retry_after")), (ErrorKind::RateLimited, Some("60")));
}

#[tokio::test]
async fn validation_errors_are_mapped_and_not_retried() {
    let (fake, client) = setup().await;
    let req = CreatePrediction::new(PredictionTarget::Version(TEST_VERSION.into()), json!({"width": 512}));
    let err = client.create_prediction(&req).await.unwrap_err();
    let ReplicateError::InvalidInput { detail, fields } = &err else { panic!("{err:?}") };
    assert!(detail.contains("prompt"), "{detail}");
    assert_eq!((fields[0].kind.as_str(), fields[0].field.as_str()), ("required", "prompt"));
    assert_eq!(fake.requests().len(), 1);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::Unprocessable, "provider.invalid_request"));

    let unknown = CreatePrediction::new(PredictionTarget::Version("0".repeat(64)), json!({"prompt": "x"}));
    let err = client.create_prediction(&unknown).await.unwrap_err();
    assert!(matches!(&err, ReplicateError::InvalidInput { detail, .. } if detail.contains("version")), "{err:?}");
    assert_eq!(fake.prediction_count(), 0);
}

#[tokio::test]
async fn server_errors_retry_reads_but_never_a_create() {
    let (fake, client) = setup().await;
    fake.fail_next(1, 500, json!({"detail": "Internal server error", "status": 500}), None);
    let err = client.create_prediction(&by_version()).await.unwrap_err();
    assert!(matches!(err, ReplicateError::Upstream { status: 500, .. }), "{err:?}");
    assert_eq!(fake.requests().len(), 1, "a create may have happened: no second one");
    assert_eq!(nexus_kernel::Error::from(err).code(), "provider.unavailable");

    let p = client.create_prediction(&by_version()).await.unwrap();
    fake.fail_next(2, 503, json!({"detail": "Service unavailable", "status": 503}), None);
    assert_eq!(client.get_prediction(&p.id).await.unwrap().id, p.id);
    assert_eq!(fake.requests_to("GET", &format!("/v1/predictions/{}", p.id)).len(), 3);
}

#[tokio::test]
async fn bad_token_unknown_ids_and_unreachable() {
    let (fake, client) = setup().await;
    let bad = ReplicateClient::new(
        ReplicateConfig { api_token: "r8_wrong_token_value".into(), ..config(&fake) },
        reqwest::Client::new(),
    );
    let err = bad.get_prediction("abc").await.unwrap_err();
    assert!(matches!(err, ReplicateError::Auth), "{err:?}");
    assert!(!format!("{err} {err:?} {bad:?}").contains("wrong_token_value"));
    assert_eq!(nexus_kernel::Error::from(err).kind(), ErrorKind::Internal);

    let err = client.get_prediction("doesnotexist").await.unwrap_err();
    assert!(matches!(err, ReplicateError::NotFound { .. }), "{err:?}");

    let addr = nexus_testkit::unreachable_addr();
    let gone = ReplicateClient::new(
        ReplicateConfig { base_url: format!("http://{addr}/v1"), ..config(&fake) },
        reqwest::Client::new(),
    );
    let err = gone.get_prediction("abc").await.unwrap_err();
    assert!(matches!(err, ReplicateError::Upstream { status: 0, .. }), "{err:?}");
    assert_eq!(nexus_kernel::Error::from(err).code(), "provider.unavailable");
}

#[tokio::test]
async fn webhook_secret_endpoint() {
    let (_fake, client) = setup().await;
    let secret = client.default_webhook_secret().await.unwrap();
    assert_eq!(secret.expose(), TEST_WEBHOOK_SECRET);
    assert!(!format!("{secret:?}").contains("whsec_"));
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// Signs independently of the code under test and of the fake.
fn sign(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn headers(id: &str, ts: i64, signature: &str) -> HashMap<String, String> {
    HashMap::from([
        ("webhook-id".to_string(), id.to_string()),
        ("webhook-timestamp".to_string(), ts.to_string()),
        ("webhook-signature".to_string(), signature.to_string()),
    ])
}

fn prediction_body() -> Vec<u8> {
    serde_json::to_vec(&json!({"id": "ufawqhfynnddngldkgtslldrkq", "status": "succeeded", "model": "o/n",
        "output": ["https://replicate.delivery/x/out-0.png"], "error": null}))
    .unwrap()
}

#[tokio::test]
async fn fake_delivers_a_signed_webhook_when_done() {
    let (fake, client) = setup().await;
    let sink = WebhookSink::start().await;
    let req = by_version().with_completion_webhook(sink.url("/webhooks/replicate?token=abc"));
    let p = client.create_prediction(&req).await.unwrap();
    assert_eq!(fake.requests()[0].body["webhook_events_filter"], json!(["completed"]));
    assert!(sink.received().is_empty(), "no start event with the completed-only filter");

    let done = client.wait_for_prediction(&p.id, &fast_poll()).await.unwrap();
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let hook = &got[0];
    assert_eq!(
        (hook.method.as_str(), hook.path.as_str(), hook.query.as_str()),
        ("POST", "/webhooks/replicate", "token=abc")
    );

    // The fake's signature is what the scheme says, computed here independently.
    let id = &hook.headers["webhook-id"];
    let ts: i64 = hook.headers["webhook-timestamp"].parse().unwrap();
    assert_eq!(hook.headers["webhook-signature"], format!("v1,{}", sign(TEST_WEBHOOK_SECRET, id, ts, &hook.body)));
    assert!((unix_now() - ts).abs() < 60);

    let secret = client.default_webhook_secret().await.unwrap();
    verify_webhook(secret.expose(), &hook.headers, &hook.body, unix_now(), WEBHOOK_TOLERANCE).unwrap();
    let delivery = client.verify_delivery(&hook.headers, &hook.body, unix_now()).unwrap();
    assert_eq!(&delivery.id, id);
    assert_eq!(delivery.prediction.id, p.id);
    assert_eq!(delivery.prediction.status, PredictionStatus::Succeeded);
    assert_eq!(delivery.prediction.output, done.output);
}

#[tokio::test]
async fn fake_sends_every_event_without_a_filter_and_redelivers_with_the_same_id() {
    let (fake, client) = setup().await;
    let sink = WebhookSink::start().await;
    sink.answer_with(&[204, 500]);
    let req = CreatePrediction {
        webhook: Some(sink.url("/hook")),
        webhook_events_filter: vec![WebhookEventType::Start, WebhookEventType::Completed],
        ..by_version()
    };
    let p = client.create_prediction(&req).await.unwrap();
    let started = sink.wait_for(1, Duration::from_secs(5)).await;
    let first: Prediction = serde_json::from_slice(&started[0].body).unwrap();
    assert_eq!(first.status, PredictionStatus::Starting);

    fake.finish(&p.id);
    let all = sink.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(all.len(), 3, "start, then completed twice (the first answered 500)");
    assert_eq!(all[1].headers["webhook-id"], all[2].headers["webhook-id"]);
    assert_ne!(all[0].headers["webhook-id"], all[1].headers["webhook-id"]);
    for hook in &all {
        verify_webhook(TEST_WEBHOOK_SECRET, &hook.headers, &hook.body, unix_now(), WEBHOOK_TOLERANCE).unwrap();
    }
    // The fake records a delivery's status once the answer is back, just after the sink saw it.
    let statuses = || fake.deliveries().iter().map(|d| d.status).collect::<Vec<Option<u16>>>();
    let recorded = nexus_testkit::eventually(Duration::from_secs(5), || async {
        statuses() == vec![Some(204), Some(500), Some(204)]
    })
    .await;
    assert!(recorded, "{:?}", statuses());
}

#[test]
fn webhook_valid_signature_is_accepted() {
    let body = prediction_body();
    let now = unix_now();
    let h = headers("msg_2abc", now, &format!("v1,{}", sign(TEST_WEBHOOK_SECRET, "msg_2abc", now, &body)));
    assert_eq!(verify_webhook(TEST_WEBHOOK_SECRET, &h, &body, now, WEBHOOK_TOLERANCE), Ok(()));
    let parsed = parse_webhook(&h, &body).unwrap();
    assert_eq!((parsed.id.as_str(), parsed.timestamp), ("msg_2abc", now));
    assert_eq!(parsed.prediction.output_urls(), vec!["https://replicate.delivery/x/out-0.png"]);

    // The same through an http::HeaderMap.
    let mut map = http::HeaderMap::new();
    for (k, v) in &h {
        map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    assert_eq!(verify_webhook(TEST_WEBHOOK_SECRET, &map, &body, now, WEBHOOK_TOLERANCE), Ok(()));
}

#[test]
fn webhook_tampered_body_or_id_is_rejected() {
    let body = prediction_body();
    let now = unix_now();
    let sig = format!("v1,{}", sign(TEST_WEBHOOK_SECRET, "msg_1", now, &body));
    let tampered = String::from_utf8(body.clone()).unwrap().replace("succeeded", "failed").into_bytes();
    assert_eq!(
        verify_webhook(TEST_WEBHOOK_SECRET, &headers("msg_1", now, &sig), &tampered, now, WEBHOOK_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
    assert_eq!(
        verify_webhook(TEST_WEBHOOK_SECRET, &headers("msg_2", now, &sig), &body, now, WEBHOOK_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
    assert_eq!(
        verify_webhook(TEST_WEBHOOK_SECRET, &headers("msg_1", now - 1, &sig), &body, now, WEBHOOK_TOLERANCE),
        Err(WebhookError::NoMatchingSignature),
        "the timestamp is signed too"
    );
}

#[test]
fn webhook_wrong_key_is_rejected() {
    let body = prediction_body();
    let now = unix_now();
    let other = format!("whsec_{}", STANDARD.encode(b"some other account's signing key"));
    let h = headers("msg_1", now, &format!("v1,{}", sign(&other, "msg_1", now, &body)));
    assert_eq!(
        verify_webhook(TEST_WEBHOOK_SECRET, &h, &body, now, WEBHOOK_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
    // Keyed with the secret's text instead of its decoded bytes (Stripe's way): rejected too.
    let mut mac = Hmac::<Sha256>::new_from_slice(TEST_WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("msg_1.{now}.").as_bytes());
    mac.update(&body);
    let h = headers("msg_1", now, &format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())));
    assert_eq!(
        verify_webhook(TEST_WEBHOOK_SECRET, &h, &body, now, WEBHOOK_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn webhook_stale_or_future_timestamp_is_rejected() {
    let body = prediction_body();
    let now = unix_now();
    let at = |ts: i64| {
        let h = headers("msg_1", ts, &format!("v1,{}", sign(TEST_WEBHOOK_SECRET, "msg_1", ts, &body)));
        verify_webhook(TEST_WEBHOOK_SECRET, &h, &body, now, WEBHOOK_TOLERANCE)
    };
    assert_eq!(at(now - 301), Err(WebhookError::Expired));
    assert_eq!(at(now - 300), Ok(()));
    assert_eq!(at(now + 300), Ok(()));
    assert_eq!(at(now + 301), Err(WebhookError::Expired));
    assert_eq!(at(now - 86_400), Err(WebhookError::Expired));
}

#[test]
fn webhook_missing_headers_are_rejected() {
    let body = prediction_body();
    let now = unix_now();
    let full = headers("msg_1", now, &format!("v1,{}", sign(TEST_WEBHOOK_SECRET, "msg_1", now, &body)));
    for (name, expected) in [
        ("webhook-id", WebhookError::MissingHeader("webhook-id")),
        ("webhook-timestamp", WebhookError::MissingHeader("webhook-timestamp")),
        ("webhook-signature", WebhookError::MissingHeader("webhook-signature")),
    ] {
        let mut h = full.clone();
        h.remove(name);
        assert_eq!(verify_webhook(TEST_WEBHOOK_SECRET, &h, &body, now, WEBHOOK_TOLERANCE), Err(expected.clone()));
        let kernel: nexus_kernel::Error = expected.into();
        assert_eq!(kernel.kind(), ErrorKind::Unauthenticated);
    }
    let none: HashMap<String, String> = HashMap::new();
    assert!(verify_webhook(TEST_WEBHOOK_SECRET, &none, &body, now, WEBHOOK_TOLERANCE).is_err());
}

#[test]
fn webhook_several_signatures_one_valid_is_accepted() {
    let body = prediction_body();
    let now = unix_now();
    let good = sign(TEST_WEBHOOK_SECRET, "msg_1", now, &body);
    let old_key = format!("whsec_{}", STANDARD.encode(b"the key before the rotation 1234"));
    let old = sign(&old_key, "msg_1", now, &body);
    let header = format!("v1,{old} v1a,bm90IGFuIGVkMjU1MTkgc2ln v1,not-base64!! v1,{good}");
    assert_eq!(
        verify_webhook(TEST_WEBHOOK_SECRET, &headers("msg_1", now, &header), &body, now, WEBHOOK_TOLERANCE),
        Ok(())
    );
    // None of them valid.
    let header = format!("v1,{old} v1,{}", STANDARD.encode([0u8; 32]));
    assert_eq!(
        verify_webhook(TEST_WEBHOOK_SECRET, &headers("msg_1", now, &header), &body, now, WEBHOOK_TOLERANCE),
        Err(WebhookError::NoMatchingSignature)
    );
}
