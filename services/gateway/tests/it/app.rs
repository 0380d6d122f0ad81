//! The real application: documented routes, docs, OpenAPI drift, webhooks to a fake owner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nexus_gateway::edge::RateLimits;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::{WebhookReceiver, WebhookReceiverServer};
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use tokio::net::TcpListener;

use crate::support::{client, config, envelope, json, serve};

async fn app_base(mutate: impl FnOnce(&mut nexus_gateway::config::GatewayConfig)) -> String {
    let mut cfg = config();
    // Nothing listens here unless a test starts a fake.
    for url in [
        &mut cfg.services.auth,
        &mut cfg.services.subscriptions,
        &mut cfg.services.content,
        &mut cfg.services.messaging,
    ] {
        *url = "http://127.0.0.1:1".into();
    }
    mutate(&mut cfg);
    let limits = RateLimits::new(&cfg.rate_limit);
    serve(nexus_gateway::app(cfg, limits).unwrap()).await
}

#[tokio::test]
async fn locales_are_listed_with_direction() {
    let base = app_base(|_| {}).await;
    let (status, _, body) = json(client().get(format!("{base}/v1/locales")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let dirs: HashMap<String, String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["code"].as_str().unwrap().into(), i["dir"].as_str().unwrap().into()))
        .collect();
    assert_eq!(dirs.len(), 5);
    assert_eq!(dirs["ar"], "rtl");
    assert_eq!(dirs["he"], "rtl");
    assert_eq!(dirs["pt"], "ltr");
}

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = nexus_gateway::openapi::to_pretty_json(&nexus_gateway::openapi());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "services/gateway/openapi.json is stale: run `make openapi` and commit it");
}

#[test]
fn every_operation_documents_examples_and_its_errors() {
    let doc: serde_json::Value = serde_json::from_str(&nexus_gateway::openapi().to_json().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let where_ = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{where_}: no responses"));
            let errors: Vec<_> = responses.iter().filter(|(s, _)| s.starts_with('4') || s.starts_with('5')).collect();
            assert!(!errors.is_empty(), "{where_}: no error responses documented");
            for (status, resp) in errors {
                let schema = &resp["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorEnvelope", "{where_} {status}: errors use the envelope");
            }
            assert!(responses.contains_key("429"), "{where_}: rate limiting applies everywhere");
            if let Some(body) = op.get("requestBody") {
                // An example on the body itself or on the schema it references.
                let has_example = body["content"].as_object().unwrap().values().any(|c| {
                    let schema = c["schema"]["$ref"]
                        .as_str()
                        .and_then(|r| r.rsplit('/').next())
                        .map(|name| &doc["components"]["schemas"][name]);
                    c.get("example").is_some()
                        || c.get("examples").is_some()
                        || schema.is_some_and(|s| s.get("example").is_some() || s.get("examples").is_some())
                });
                assert!(has_example, "{where_}: request body without an example");
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                assert!(
                    p.get("example").is_some()
                        || p["schema"].get("example").is_some()
                        || p["schema"].get("examples").is_some(),
                    "{where_}: parameter {} without example",
                    p["name"]
                );
            }
        }
    }
}

#[tokio::test]
async fn openapi_and_docs_are_served_without_any_other_host() {
    let base = app_base(|_| {}).await;
    let (status, _, doc) = json(client().get(format!("{base}/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let page = client().get(format!("{base}/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(attr), "docs page loads from another host: {attr}");
    }
    let init = client().get(format!("{base}/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/openapi.json"));
    assert!(init.contains("\"validatorUrl\": \"none\"") || init.contains("\"validatorUrl\":\"none\""), "{init}");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        assert_eq!(
            client().get(format!("{base}/docs/{asset}")).send().await.unwrap().status(),
            200,
            "{asset} served locally"
        );
    }
}

#[derive(Clone, Default)]
struct FakeOwner {
    seen: Arc<Mutex<Vec<DeliverWebhookRequest>>>,
}

#[tonic::async_trait]
impl WebhookReceiver for FakeOwner {
    async fn deliver(
        &self,
        req: tonic::Request<DeliverWebhookRequest>,
    ) -> Result<tonic::Response<DeliverWebhookResponse>, tonic::Status> {
        let r = req.into_inner();
        self.seen.lock().unwrap().push(r.clone());
        if r.headers.get("stripe-signature").map(String::as_str) != Some("t=1,v1=good") {
            return Err(nexus_kernel::Error::invalid("webhooks.invalid_signature").into());
        }
        Ok(tonic::Response::new(DeliverWebhookResponse {
            status: 200,
            content_type: "application/json".into(),
            body: b"{\"received\":true}".to_vec(),
        }))
    }
}

#[tokio::test]
async fn webhooks_reach_their_owner_byte_for_byte() {
    let fake = FakeOwner::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = WebhookReceiverServer::new(fake.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    let base = app_base(|c| c.services.subscriptions = format!("http://{addr}")).await;
    let raw = b"{\"id\":\"evt_1\",  \"type\":\"checkout.session.completed\"}\n".to_vec();

    let ok = client()
        .post(format!("{base}/webhooks/stripe?x=1"))
        .header("stripe-signature", "t=1,v1=good")
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "{\"received\":true}");

    let (status, _, body) = json(
        client()
            .post(format!("{base}/webhooks/stripe"))
            .header("stripe-signature", "t=1,v1=forged")
            .body(raw.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(envelope(&body).0, "webhooks.invalid_signature");

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, raw, "body passed unchanged, whitespace and all");
    assert_eq!(seen[0].provider, "stripe");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].query, "x=1");
}

#[tokio::test]
async fn webhooks_for_unknown_providers_or_absent_owners_are_refused() {
    let base = app_base(|_| {}).await;
    let (status, _, body) = json(client().post(format!("{base}/webhooks/nope")).body("{}").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(envelope(&body).0, "request.not_found");
    let (status, _, body) =
        json(client().post(format!("{base}/webhooks/stripe")).body("{}").send().await.unwrap()).await;
    assert_eq!(status, 503, "owner down: providers retry on 5xx");
    assert_eq!(envelope(&body).0, "service.unavailable");
    let (status, _, body) =
        json(client().post(format!("{base}/webhooks/stripe")).body(vec![b'x'; 2 * 1024 * 1024]).send().await.unwrap())
            .await;
    assert_eq!(status, 413);
    assert_eq!(envelope(&body).0, "request.body_too_large");
}
