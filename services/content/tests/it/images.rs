//! Images through Replicate (the fake): polling, signed webhooks, failures and size caps; the
//! local pictures (an ad is a real JPEG) and reading a finished image's file (`ReadImage`).

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as pb;
use nexus_proto::nexus::webhooks::v1::DeliverWebhookRequest;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use nexus_testkit::FakeServer;
use nexus_testkit::identity::authed;
use nexus_testkit::replicate::{FakeReplicate, Outcome, TEST_API_TOKEN, TEST_WEBHOOK_SECRET, sign_webhook};
use serde_json::json;

use crate::support::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n fake image bytes for the test";

/// Where the fake provider's outputs live.
async fn files() -> FakeServer {
    FakeServer::start(
        Router::new()
            .route("/out.png", get(|| async { ([(header::CONTENT_TYPE, "image/png")], PNG) }))
            .route("/big.png", get(|| async { ([(header::CONTENT_TYPE, "image/png")], vec![7u8; 4096]) }))
            .route("/page.html", get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html></html>") })),
    )
    .await
}

async fn with_replicate(extra: &[(&str, String)]) -> (Stack, FakeReplicate, FakeServer) {
    let fake = FakeReplicate::start().await;
    let files = files().await;
    fake.set_outcome(Outcome::Succeed(Some(json!([format!("{}/out.png", files.base_url)]))));
    let mut env = vec![
        ("NEXUS_IMAGES__PROVIDER", "replicate".to_owned()),
        ("NEXUS_IMAGES__MAX_BYTES", "1024".to_owned()),
        ("NEXUS_REPLICATE__API_TOKEN", TEST_API_TOKEN.to_owned()),
        ("NEXUS_REPLICATE__BASE_URL", fake.base_url.clone()),
    ];
    env.extend(extra.iter().cloned());
    (start_with(&env).await, fake, files)
}

fn image(prompt: &str) -> pb::CreateImageRequest {
    pb::CreateImageRequest { purpose: "hero".into(), prompt: prompt.into(), ..Default::default() }
}

async fn external_id(s: &Stack, image_id: &str) -> String {
    let id = image_id.strip_prefix("img_").unwrap();
    sqlx::query_scalar("SELECT external_id FROM content.image_assets WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&s.admin().await)
        .await
        .unwrap()
}

async fn status_of(s: &Stack, token: &str, id: &str) -> pb::Image {
    s.client().get_image(authed(pb::GetByIdRequest { id: id.into() }, token)).await.unwrap().into_inner()
}

#[tokio::test]
async fn without_webhooks_predictions_are_polled_and_the_output_copied() {
    let (s, fake, _files) =
        with_replicate(&[("NEXUS_IMAGES__POLL_AFTER", "0s".into()), ("NEXUS_IMAGES__SWEEP_INTERVAL", "200ms".into())])
            .await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await.available;
    let img = s.client().create_image(authed(image("shoes on a trail"), &token)).await.unwrap().into_inner();
    assert_eq!((img.provider.as_str(), img.status.as_str()), ("replicate", "pending"));
    let held = s.balance(&token).await;
    assert_eq!((held.available, held.reserved), (before - 2, 2), "held while the provider works");
    let created = &fake.requests_to("POST", "/v1/models/black-forest-labs/flux-schnell/predictions")[0];
    assert_eq!(created.body["input"]["prompt"], "shoes on a trail");
    assert!(created.body.get("webhook").is_none(), "no webhook without a public address");
    let done = nexus_testkit::eventually(Duration::from_secs(10), || async {
        status_of(&s, &token, &img.id).await.status == "succeeded"
    })
    .await;
    assert!(done, "the sweeper polled the prediction");
    let got = status_of(&s, &token, &img.id).await;
    assert_eq!((got.content_type.as_str(), got.size_bytes), ("image/png", PNG.len() as i64));
    // The finished job is charged through subscriptions (job.finished event), once.
    let charged = nexus_testkit::eventually(Duration::from_secs(10), || async {
        let b = s.balance(&token).await;
        (b.available, b.reserved) == (before - 2, 0)
    })
    .await;
    assert!(charged, "the hold became a charge: {:?}", s.balance(&token).await);
}

fn read(id: &str, token: &str) -> tonic::Request<pb::GetByIdRequest> {
    authed(pb::GetByIdRequest { id: id.into() }, token)
}

#[tokio::test]
async fn read_image_gives_a_local_ad_as_jpeg_bytes_to_its_workspace_only() {
    let s = start().await;
    let token = s.owner(WorkspaceId::new());
    let ask = pb::CreateImageRequest {
        purpose: "ad".into(),
        prompt: "winter coats on a snowy street".into(),
        width: 1088,
        height: 1344,
        ..Default::default()
    };
    let img = s.client().create_image(authed(ask, &token)).await.unwrap().into_inner();
    assert_eq!(
        (img.provider.as_str(), img.status.as_str(), img.content_type.as_str()),
        ("local", "succeeded", "image/jpeg")
    );
    let file = s.client().read_image(read(&img.id, &token)).await.unwrap().into_inner();
    assert_eq!(file.content_type, "image/jpeg");
    assert!(file.data.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    assert_eq!(file.data.len() as i64, img.size_bytes);
    let size = imagesize::blob_size(&file.data).expect("a readable picture");
    assert_eq!((size.width, size.height), (1088, 1344), "the requested size");
    assert_eq!((file.width, file.height, file.prompt.as_str()), (1088, 1344, "winter coats on a snowy street"));

    // A hero stays an SVG placeholder.
    let hero = s.client().create_image(authed(image("a shop front"), &token)).await.unwrap().into_inner();
    let file = s.client().read_image(read(&hero.id, &token)).await.unwrap().into_inner();
    assert_eq!(file.content_type, "image/svg+xml");
    assert!(file.data.starts_with(b"<svg"));

    // Another workspace, an unknown id, a malformed one: not found.
    let other = s.owner(WorkspaceId::new());
    for (id, who) in [(img.id.as_str(), &other), ("img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", &token), ("nope", &token)] {
        let e = s.client().read_image(read(id, who)).await.unwrap_err();
        assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::NotFound, "content.image_not_found"), "{id}");
    }
}

#[tokio::test]
async fn a_pending_image_is_not_ready_and_ads_ask_replicate_for_jpeg() {
    let (s, fake, _files) = with_replicate(&[("NEXUS_IMAGES__POLL_AFTER", "1h".into())]).await;
    let token = s.owner(WorkspaceId::new());
    let ad = pb::CreateImageRequest { purpose: "ad".into(), prompt: "a red bag".into(), ..Default::default() };
    let img = s.client().create_image(authed(ad, &token)).await.unwrap().into_inner();
    assert_eq!(img.status, "pending");
    let e = s.client().read_image(read(&img.id, &token)).await.unwrap_err();
    assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::FailedPrecondition, "content.image_not_ready"));
    s.client().create_image(authed(image("a hero"), &token)).await.unwrap();
    let asked = fake.requests_to("POST", "/v1/models/black-forest-labs/flux-schnell/predictions");
    let formats: Vec<_> = asked.iter().map(|r| r.body["input"]["output_format"].clone()).collect();
    assert_eq!(formats, vec![json!("jpg"), json!("png")], "ads as JPEG, heroes as PNG");
}

fn delivery(headers: HashMap<String, String>, body: Vec<u8>) -> DeliverWebhookRequest {
    DeliverWebhookRequest { provider: "replicate".into(), method: "POST".into(), query: String::new(), headers, body }
}

fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> HashMap<String, String> {
    HashMap::from([
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), ts.to_string()),
        ("webhook-signature".to_owned(), sign_webhook(secret, id, ts, body)),
        ("content-type".to_owned(), "application/json".to_owned()),
    ])
}

#[tokio::test]
async fn signed_webhooks_finish_images_and_forged_stale_or_tampered_ones_are_refused() {
    let (s, fake, files) = with_replicate(&[
        ("NEXUS_IMAGES__WEBHOOK_BASE", "http://127.0.0.1:9/webhooks".into()),
        ("NEXUS_REPLICATE__WEBHOOK_SECRET", TEST_WEBHOOK_SECRET.into()),
        ("NEXUS_IMAGES__POLL_AFTER", "1h".into()),
    ])
    .await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut receiver =
        WebhookReceiverClient::new(nexus_platform::grpc::channel(&s.url, Duration::from_secs(10)).unwrap());
    let img = s.client().create_image(authed(image("a red bag"), &token)).await.unwrap().into_inner();
    let pid = external_id(&s, &img.id).await;
    let created = &fake.requests_to("POST", "/v1/models/black-forest-labs/flux-schnell/predictions")[0];
    assert_eq!(created.body["webhook"], "http://127.0.0.1:9/webhooks/replicate");
    assert_eq!(created.body["webhook_events_filter"], json!(["completed"]));
    fake.finish(&pid);
    let body = serde_json::to_vec(&fake.prediction(&pid).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();

    let other_key = "whsec_c29tZSBvdGhlciBhY2NvdW50J3Mgc2lnbmluZyBrZXk=";
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'r').unwrap();
    tampered[at] = b'R';
    for (name, headers, body) in [
        ("tampered body", signed(TEST_WEBHOOK_SECRET, "msg_1", now, &body), tampered),
        ("wrong key", signed(other_key, "msg_1", now, &body), body.clone()),
        ("stale", signed(TEST_WEBHOOK_SECRET, "msg_1", now - 3600, &body), body.clone()),
        ("no signature", HashMap::new(), body.clone()),
    ] {
        let r = receiver.deliver(delivery(headers, body)).await.unwrap().into_inner();
        assert_eq!(r.status, 400, "{name}");
        let e: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(e["error"]["code"], "webhooks.invalid_signature", "{name}");
        assert_eq!(status_of(&s, &token, &img.id).await.status, "pending", "{name} changed nothing");
    }

    let ok = receiver
        .deliver(delivery(signed(TEST_WEBHOOK_SECRET, "msg_1", now, &body), body.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.status, 200);
    let got = status_of(&s, &token, &img.id).await;
    assert_eq!((got.status.as_str(), got.size_bytes), ("succeeded", PNG.len() as i64));
    let again = receiver
        .deliver(delivery(signed(TEST_WEBHOOK_SECRET, "msg_1", now, &body), body.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.status, 200, "a redelivery is acknowledged");
    assert_eq!(status_of(&s, &token, &img.id).await, got, "and changes nothing");
    let mut get = delivery(signed(TEST_WEBHOOK_SECRET, "msg_1", now, &body), body.clone());
    get.method = "GET".into();
    assert_eq!(receiver.deliver(get).await.unwrap().into_inner().status, 400);
    let mut runware = delivery(HashMap::new(), b"[]".to_vec());
    runware.provider = "runware".into();
    assert_eq!(receiver.deliver(runware).await.unwrap_err().code(), tonic::Code::NotFound);

    // A failed prediction, an output that is too big, and one that is not an image: each gives
    // its credits back. (First, the image that succeeded above is charged.)
    let settled =
        nexus_testkit::eventually(Duration::from_secs(20), || async { s.balance(&token).await.reserved == 0 }).await;
    assert!(settled, "the finished job was charged");
    let before = s.balance(&token).await;
    for (outcome, why) in [
        (Outcome::Fail("NSFW content detected".into()), "NSFW"),
        (Outcome::Succeed(Some(json!([format!("{}/big.png", files.base_url)]))), "larger than the limit"),
        (Outcome::Succeed(Some(json!([format!("{}/page.html", files.base_url)]))), "not an image"),
        // Outputs pointing inside our network are never fetched (only 127/8 is allowed here).
        (Outcome::Succeed(Some(json!(["http://169.254.169.254/latest/meta-data/x.png"]))), "destination refused"),
        (Outcome::Succeed(Some(json!(["http://10.0.0.1/x.png"]))), "destination refused"),
        (Outcome::Succeed(Some(json!(["http://[::ffff:10.0.0.1]/x.png"]))), "destination refused"),
    ] {
        fake.set_outcome(outcome);
        let img = s.client().create_image(authed(image(why), &token)).await.unwrap().into_inner();
        let pid = external_id(&s, &img.id).await;
        fake.finish(&pid);
        let body = serde_json::to_vec(&fake.prediction(&pid).unwrap()).unwrap();
        let r = receiver
            .deliver(delivery(signed(TEST_WEBHOOK_SECRET, &format!("msg_{pid}"), now, &body), body))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, 200);
        assert_eq!(status_of(&s, &token, &img.id).await.status, "failed", "{why}");
        let error: String = sqlx::query_scalar("SELECT error FROM content.image_assets WHERE external_id = $1")
            .bind(&pid)
            .fetch_one(&s.admin().await)
            .await
            .unwrap();
        assert!(error.contains(why), "{error}");
    }
    let refunded = nexus_testkit::eventually(Duration::from_secs(20), || async {
        let b = s.balance(&token).await;
        (b.available, b.reserved) == (before.available, before.reserved)
    })
    .await;
    assert!(refunded, "failed jobs charge nothing: {before:?} → {:?}", s.balance(&token).await);
}

mod runware {
    use super::*;
    use nexus_testkit::replicate::WebhookSink;
    use nexus_testkit::runware::{FakeRunware, TEST_API_KEY};

    const TOKEN: &str = "rw-webhook-token-0123456789abcdefghijklmnop";

    async fn with_runware(extra: &[(&str, String)]) -> (Stack, FakeRunware) {
        let fake = FakeRunware::start().await;
        let mut env = vec![
            ("NEXUS_IMAGES__PROVIDER", "runware".to_owned()),
            ("NEXUS_RUNWARE__API_KEY", TEST_API_KEY.to_owned()),
            ("NEXUS_RUNWARE__BASE_URL", fake.base_url.clone()),
        ];
        env.extend(extra.iter().cloned());
        (start_with(&env).await, fake)
    }

    #[tokio::test]
    async fn without_webhooks_the_image_comes_back_inline() {
        let (s, fake) = with_runware(&[]).await;
        let token = s.owner(WorkspaceId::new());
        let img = s.client().create_image(authed(image("a blue bag"), &token)).await.unwrap().into_inner();
        assert_eq!(
            (img.provider.as_str(), img.status.as_str(), img.content_type.as_str()),
            ("runware", "succeeded", "image/png")
        );
        assert!(img.size_bytes > 0);
        let task = &fake.requests()[0].body[0];
        assert_eq!(
            (task["taskType"].as_str(), task["outputType"].as_str()),
            (Some("imageInference"), Some("base64Data"))
        );
        assert_eq!((task["width"].as_u64(), task["height"].as_u64()), (Some(1024), Some(576)));
    }

    #[tokio::test]
    async fn ads_come_back_as_jpeg() {
        let (s, fake) = with_runware(&[]).await;
        let token = s.owner(WorkspaceId::new());
        let ad = pb::CreateImageRequest { purpose: "ad".into(), prompt: "a blue bag".into(), ..Default::default() };
        let img = s.client().create_image(authed(ad, &token)).await.unwrap().into_inner();
        assert_eq!((img.status.as_str(), img.content_type.as_str()), ("succeeded", "image/jpeg"));
        assert_eq!(fake.requests()[0].body[0]["outputFormat"], "JPG");
        let file = s.client().read_image(read(&img.id, &token)).await.unwrap().into_inner();
        assert!(file.data.starts_with(&[0xFF, 0xD8, 0xFF]));
    }

    #[tokio::test]
    async fn webhooks_need_the_token_and_finish_the_matching_task() {
        let sink = WebhookSink::start().await;
        let (s, _fake) = with_runware(&[
            ("NEXUS_IMAGES__WEBHOOK_BASE", sink.url("/webhooks")),
            ("NEXUS_RUNWARE__WEBHOOK_TOKEN", TOKEN.into()),
            ("NEXUS_IMAGES__POLL_AFTER", "1h".into()),
        ])
        .await;
        let token = s.owner(WorkspaceId::new());
        let img = s.client().create_image(authed(image("a green bag"), &token)).await.unwrap().into_inner();
        assert_eq!(img.status, "pending");
        let got = sink.wait_for(1, Duration::from_secs(10)).await;
        let hook = got.first().expect("the provider called back");
        assert_eq!(hook.path, "/webhooks/runware");
        let mut receiver =
            WebhookReceiverClient::new(nexus_platform::grpc::channel(&s.url, Duration::from_secs(10)).unwrap());
        let forward = |query: &str| DeliverWebhookRequest {
            provider: "runware".into(),
            method: "POST".into(),
            query: query.into(),
            headers: hook.headers.clone(),
            body: hook.body.clone(),
        };
        for query in ["", "token=wrong", &format!("token={TOKEN}&token=other")] {
            let r = receiver.deliver(forward(query)).await.unwrap().into_inner();
            assert_eq!(r.status, 400, "{query}");
            assert_eq!(status_of(&s, &token, &img.id).await.status, "pending");
        }
        let r = receiver.deliver(forward(&hook.query)).await.unwrap().into_inner();
        assert_eq!(r.status, 200);
        let known: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(known["known"], 1, "matched to our task by taskUUID");
        // The fake's output URL serves nothing: the image is marked failed with the reason.
        let done = status_of(&s, &token, &img.id).await;
        assert_eq!(done.status, "failed");
        assert_eq!(receiver.deliver(forward(&hook.query)).await.unwrap().into_inner().status, 200, "redelivery");
    }
}
