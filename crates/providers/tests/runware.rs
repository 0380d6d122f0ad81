//! Runware client against the fake Runware (real HTTP on 127.0.0.1, port 0): task round trips,
//! the errors array, retries, webhook delivery to a local sink and the URL-token check.

use std::time::{Duration, Instant};

use nexus_kernel::ErrorKind;
use nexus_providers::runware::{
    ImageInference, OutputType, RunwareClient, RunwareConfig, RunwareError, WebhookTokenError, new_webhook_token,
    parse_webhook, verify_webhook_token, webhook_url,
};
use nexus_testkit::replicate::WebhookSink;
use nexus_testkit::runware::{FakeRunware, TEST_API_KEY};
use serde_json::json;

const MODEL: &str = "runware:101@1";

fn config(fake: &FakeRunware) -> RunwareConfig {
    RunwareConfig { api_key: TEST_API_KEY.into(), base_url: fake.base_url.clone(), timeout_secs: 10 }
}

async fn setup() -> (FakeRunware, RunwareClient) {
    nexus_testkit::init_tracing();
    let fake = FakeRunware::start().await;
    let client = RunwareClient::new(config(&fake), reqwest::Client::new());
    (fake, client)
}

fn mug() -> ImageInference {
    ImageInference::new("a red mug on a wooden desk, morning light", MODEL, 1024, 768)
}

#[tokio::test]
async fn image_task_round_trip() {
    let (fake, client) = setup().await;
    let task = ImageInference { number_results: 2, seed: Some(7), ..mug() };
    let images = client.image_inference(&task).await.unwrap();
    assert_eq!(images.len(), 2);
    for (i, img) in images.iter().enumerate() {
        assert_eq!(img.task_uuid, task.task_uuid.to_string());
        let url = img.image_url.as_deref().unwrap();
        assert!(url.starts_with(&format!("{}/images/", fake.base_url)) && url.ends_with(".jpg"), "{url}");
        assert_eq!(img.cost_micros, Some(3800), "0.0038 dollars, exact");
        assert_eq!(img.seed, Some(7 + i as u64));
        assert_eq!(img.nsfw_content, Some(false));
        assert!(img.image_uuid.is_some());
    }

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].authorization.as_deref(), Some(format!("Bearer {TEST_API_KEY}").as_str()));
    assert_eq!(
        reqs[0].body,
        json!([{"taskType": "imageInference", "taskUUID": task.task_uuid.to_string(),
            "positivePrompt": "a red mug on a wooden desk, morning light", "model": MODEL,
            "width": 1024, "height": 768, "numberResults": 2, "outputType": "URL", "outputFormat": "JPG",
            "seed": 7, "includeCost": true, "checkNSFW": true, "deliveryMethod": "sync"}])
    );

    let inline = ImageInference { output_type: OutputType::Base64Data, include_cost: false, ..mug() };
    let images = client.image_inference(&inline).await.unwrap();
    assert!(images[0].image_base64_data.is_some() && images[0].image_url.is_none());
    assert_eq!(images[0].cost_micros, None);
}

#[tokio::test]
async fn errors_array_is_mapped_and_not_retried() {
    let (fake, client) = setup().await;
    let task = ImageInference { width: 1000, ..mug() };
    let err = client.image_inference(&task).await.unwrap_err();
    let RunwareError::Task { status, errors } = &err else { panic!("{err:?}") };
    assert_eq!(*status, 400);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "invalidWidth");
    assert_eq!(errors[0].parameter.as_deref(), Some("width"));
    assert_eq!(errors[0].task_uuid.as_deref(), Some(task.task_uuid.to_string().as_str()));
    assert!(errors[0].message.contains("multiple of 64"));
    assert_eq!(fake.requests().len(), 1);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::Unprocessable, "provider.invalid_request"));

    fake.refuse_prompts_containing("forbidden", "invalidContent", "The prompt was flagged by moderation.");
    let err = client.image_inference(&ImageInference::new("a forbidden scene", MODEL, 512, 512)).await.unwrap_err();
    assert!(matches!(&err, RunwareError::Task { errors, .. } if errors[0].code == "invalidContent"), "{err:?}");

    // Refused locally, never sent.
    let before = fake.requests().len();
    let err = client.image_inference(&ImageInference::new("x", MODEL, 512, 512)).await.unwrap_err();
    assert!(matches!(err, RunwareError::InvalidArgument(_)));
    let with_hook = ImageInference { webhook_url: Some("https://hooks.example.com/rw".into()), ..mug() };
    assert!(matches!(client.image_inference(&with_hook).await, Err(RunwareError::InvalidArgument(_))));
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn a_mixed_answer_keeps_results_and_errors_apart() {
    let (fake, client) = setup().await;
    let good = mug();
    let bad = ImageInference { model: "not-an-air-id".into(), ..mug() };
    let resp = client.run_tasks(&[good.to_task(Some("sync")), bad.to_task(Some("sync"))]).await.unwrap();
    assert_eq!(resp.images_for(&good.task_uuid).unwrap().len(), 1);
    assert!(resp.images_for(&bad.task_uuid).unwrap().is_empty());
    assert!(resp.errors_for(&good.task_uuid).is_empty());
    assert_eq!(resp.errors_for(&bad.task_uuid)[0].code, "invalidModel");
    assert_eq!(fake.requests()[0].status, 200);
}

#[tokio::test]
async fn authentication_by_header_or_task() {
    let (fake, _) = setup().await;
    let wrong = RunwareClient::new(
        RunwareConfig { api_key: "rw_wrong_secret_key".into(), ..config(&fake) },
        reqwest::Client::new(),
    );
    let err = wrong.image_inference(&mug()).await.unwrap_err();
    let RunwareError::Auth { message } = &err else { panic!("{err:?}") };
    assert!(message.contains("invalidApiKey"), "{message}");
    assert!(!format!("{err} {err:?} {wrong:?}").contains("wrong_secret_key"));
    assert_eq!(fake.requests().len(), 1, "not retried");
    assert_eq!(nexus_kernel::Error::from(err).kind(), ErrorKind::Internal);

    // The authentication task form, as the WebSocket API uses, is accepted too.
    let task = mug();
    let resp = wrong
        .run_tasks(&[json!({"taskType": "authentication", "apiKey": TEST_API_KEY}), task.to_task(Some("sync"))])
        .await
        .unwrap();
    assert_eq!(resp.images_for(&task.task_uuid).unwrap().len(), 1);
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried() {
    let (fake, client) = setup().await;
    fake.fail_next(1, 429, FakeRunware::errors_body("rateLimitExceeded", "Too many requests."), Some(1));
    let started = Instant::now();
    client.image_inference(&mug()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(fake.requests().iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 200]);

    fake.fail_next(2, 503, FakeRunware::errors_body("serviceUnavailable", "Try again."), None);
    let task = mug();
    client.image_inference(&task).await.unwrap();
    let last: Vec<_> = fake.requests().into_iter().skip(2).collect();
    assert_eq!(last.iter().map(|r| r.status).collect::<Vec<_>>(), vec![503, 503, 200]);
    assert!(last.iter().all(|r| r.body[0]["taskUUID"] == task.task_uuid.to_string()), "same taskUUID each time");

    fake.fail_next(3, 500, FakeRunware::errors_body("internalError", "Boom."), None);
    let err = client.image_inference(&mug()).await.unwrap_err();
    assert!(matches!(err, RunwareError::Upstream { status: 500, .. }), "{err:?}");
    assert_eq!(nexus_kernel::Error::from(err).code(), "provider.unavailable");

    fake.fail_next(1, 429, FakeRunware::errors_body("rateLimitExceeded", "Too many requests."), Some(90));
    let err = client.image_inference(&mug()).await.unwrap_err();
    assert!(matches!(err, RunwareError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(90)));
    let kernel = nexus_kernel::Error::from(err);
    assert_eq!((kernel.kind(), kernel.param("retry_after")), (ErrorKind::RateLimited, Some("90")));
}

#[tokio::test]
async fn exhausted_balance_is_not_retried() {
    let (fake, client) = setup().await;
    fake.fail_next(1, 402, FakeRunware::errors_body("insufficientCredits", "Insufficient credits."), None);
    let err = client.image_inference(&mug()).await.unwrap_err();
    assert!(matches!(err, RunwareError::InsufficientCredits { .. }), "{err:?}");
    assert_eq!(fake.requests().len(), 1);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::Unavailable, "provider.quota_exceeded"));
}

#[tokio::test]
async fn async_delivery_is_polled_with_get_response() {
    let (fake, client) = setup().await;
    let task = ImageInference { number_results: 3, ..mug() };
    client.submit_image_inference(&task).await.unwrap();
    assert_eq!(fake.requests()[0].body[0]["deliveryMethod"], "async");
    let first = client.get_response(&task.task_uuid).await.unwrap();
    assert!(first.iter().all(|r| r.is_processing()), "{first:?}");
    let done = client.get_response(&task.task_uuid).await.unwrap();
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|r| r.status.as_deref() == Some("success") && r.image_url.is_some()));

    let err = client.get_response(&uuid::Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(&err, RunwareError::Task { errors, .. } if errors[0].code == "taskNotFound"), "{err:?}");
}

#[tokio::test]
async fn webhook_delivery_carries_our_token() {
    let (fake, client) = setup().await;
    let sink = WebhookSink::start().await;
    sink.answer_with(&[503]);
    let token = new_webhook_token();
    let url = webhook_url(&sink.url("/webhooks/runware?source=content"), &token).unwrap();
    let task = ImageInference { number_results: 2, webhook_url: Some(url.clone()), ..mug() };
    client.submit_image_inference(&task).await.unwrap();
    let sent = &fake.requests()[0].body[0];
    assert_eq!(sent["webhookURL"], url);
    assert!(sent.get("deliveryMethod").is_none());

    // Two images, the first delivery answered 503 and redelivered.
    let hooks = sink.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(hooks.len(), 3);
    let mut image_uuids = std::collections::BTreeSet::new();
    for hook in &hooks {
        assert_eq!(hook.path, "/webhooks/runware");
        verify_webhook_token(&token, &hook.query).unwrap();
        assert_eq!(verify_webhook_token(&new_webhook_token(), &hook.query), Err(WebhookTokenError::Mismatch));
        let images = parse_webhook(&hook.body).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].task_uuid, task.task_uuid.to_string());
        assert!(images[0].image_url.is_some());
        image_uuids.insert(images[0].image_uuid.clone().unwrap());
    }
    assert_eq!(image_uuids.len(), 2);
    let statuses: Vec<_> = fake.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == Some(503)).count(), 1);
}

#[test]
fn webhook_token_check() {
    let token = new_webhook_token();
    assert_eq!(token.len(), 43, "256 bits, URL-safe base64");
    assert_ne!(token, new_webhook_token());

    let url = webhook_url("https://api.example.com/webhooks/runware?token=old&a=1", "t0k+/=").unwrap();
    assert_eq!(url, "https://api.example.com/webhooks/runware?a=1&token=t0k%2B%2F%3D");
    let query = url.split_once('?').unwrap().1;
    assert_eq!(verify_webhook_token("t0k+/=", query), Ok(()));
    assert_eq!(verify_webhook_token("old", query), Err(WebhookTokenError::Mismatch));
    assert_eq!(verify_webhook_token("t0k+/", query), Err(WebhookTokenError::Mismatch), "a prefix is not enough");
    assert_eq!(verify_webhook_token("t0k+/=", "a=1"), Err(WebhookTokenError::Missing));
    assert_eq!(verify_webhook_token("t0k+/=", ""), Err(WebhookTokenError::Missing));
    assert_eq!(verify_webhook_token("abc", "token=abc&token=abc"), Err(WebhookTokenError::Ambiguous));
    assert_eq!(verify_webhook_token("", "token="), Err(WebhookTokenError::Mismatch), "no expected token, no pass");
    let kernel: nexus_kernel::Error = WebhookTokenError::Mismatch.into();
    assert_eq!(kernel.kind(), ErrorKind::Unauthenticated);

    assert!(webhook_url("not a url", "t").is_err());
    assert!(webhook_url("ftp://example.com/x", "t").is_err());
    assert!(webhook_url("https://example.com/x", "").is_err());
}

#[test]
fn webhook_bodies() {
    let one = br#"{"data":[{"taskType":"imageInference","taskUUID":"0f6e","imageUUID":"i1","imageURL":"https://im/1.jpg","cost":0.0038}]}"#;
    let images = parse_webhook(one).unwrap();
    assert_eq!((images[0].task_uuid.as_str(), images[0].cost_micros), ("0f6e", Some(3800)));
    let bare = br#"{"taskType":"imageInference","taskUUID":"0f6e","imageURL":"https://im/1.jpg"}"#;
    assert_eq!(parse_webhook(bare).unwrap().len(), 1);
    let failed = br#"{"errors":[{"code":"timeoutProvider","message":"The provider timed out.","taskUUID":"0f6e"}]}"#;
    assert!(matches!(parse_webhook(failed), Err(RunwareError::Task { .. })));
    assert!(matches!(parse_webhook(b"not json"), Err(RunwareError::Decode(_))));
}
