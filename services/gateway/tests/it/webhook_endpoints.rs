//! Outbound webhooks through the gateway: an endpoint receives a signed `contact.created` when a
//! contact is added over the API; private targets are refused; another workspace sees nothing.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::auth::{Stack, email, stack_messaging};
use crate::support::client;

async fn call(s: &Stack, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = client().request(method, format!("{}{path}", s.base)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A receiver on 127.0.0.1 that keeps what it is sent and answers 204.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test]
async fn an_endpoint_receives_signed_contact_events_and_private_targets_are_refused() {
    use reqwest::Method as M;
    let s = stack_messaging().await;
    let token = s.sign_up(&email("hooks")).await["access_token"].as_str().unwrap().to_owned();
    let other = s.sign_up(&email("nosy")).await["access_token"].as_str().unwrap().to_owned();
    let (url, seen) = receiver().await;

    let (status, types) = call(&s, M::GET, "/v1/webhook-endpoints/event-types", &token, None).await;
    assert_eq!(status, 200);
    let created_type = types["items"].as_array().unwrap().iter().find(|t| t["name"] == "contact.created").cloned();
    assert!(created_type.is_some_and(|t| t["schema"]["type"] == "object"), "{types}");

    for (bad, want) in [
        (json!({"url": "http://10.0.0.1/hook"}), 422),
        (json!({"url": "not a url"}), 400),
        (json!({"url": url, "event_types": ["no.such_type"]}), 400),
        (json!({"url": url, "rate_limit": 0}), 400),
        (json!({"url": url, "rate_limit": "ten"}), 422),
    ] {
        let (status, e) = call(&s, M::POST, "/v1/webhook-endpoints", &token, Some(bad.clone())).await;
        assert_eq!(status, want, "{bad} → {e}");
    }
    let (_, list) = call(&s, M::GET, "/v1/webhook-endpoints", &token, None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "refused endpoints are not created");

    let (status, created) =
        call(&s, M::POST, "/v1/webhook-endpoints", &token, Some(json!({"url": url, "event_types": ["contact.*"]})))
            .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let (status, got) = call(&s, M::GET, &format!("/v1/webhook-endpoints/{id}"), &token, None).await;
    assert_eq!((status, got["status"].as_str()), (200, Some("enabled")));
    assert!(got.get("secret").is_none(), "the secret is shown once");

    let (status, _) =
        call(&s, M::POST, "/v1/contacts", &token, Some(json!({"name": "Ana", "email": "ana@example.com"}))).await;
    assert_eq!(status, 201);
    let mut delivered = None;
    for _ in 0..200 {
        if let Some(d) = seen.lock().unwrap().first().cloned() {
            delivered = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (headers, body) = delivered.expect("no delivery within 10 s");
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["type"], "contact.created", "{payload}");
    // Standard Webhooks: HMAC-SHA256 over "id.timestamp.body" with the secret's bytes.
    let (msg_id, stamp) = (headers["webhook-id"].to_str().unwrap(), headers["webhook-timestamp"].to_str().unwrap());
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{stamp}.{body}").as_bytes());
    let want = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    let sent = headers["webhook-signature"].to_str().unwrap();
    assert!(sent.split(' ').any(|s| s == want), "{sent} lacks {want}");

    let mut attempts = Value::Null;
    for _ in 0..100 {
        let (_, a) = call(&s, M::GET, &format!("/v1/webhook-endpoints/{id}/attempts"), &token, None).await;
        if !a["items"].as_array().unwrap().is_empty() {
            attempts = a;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        (attempts["items"][0]["outcome"].as_str(), attempts["items"][0]["status_code"].as_i64()),
        (Some("delivered"), Some(204))
    );
    let (status, msgs) = call(&s, M::GET, "/v1/webhook-messages?event_type=contact.created", &token, None).await;
    assert_eq!((status, msgs["items"].as_array().unwrap().len()), (200, 1));

    // Test send, replay, rotation.
    let (status, _) = call(
        &s,
        M::POST,
        &format!("/v1/webhook-endpoints/{id}/test"),
        &token,
        Some(json!({"event_type": "contact.updated"})),
    )
    .await;
    assert_eq!(status, 202);
    let (status, r) = call(
        &s,
        M::POST,
        &format!("/v1/webhook-endpoints/{id}/replay"),
        &token,
        Some(json!({"since": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()})),
    )
    .await;
    assert_eq!(status, 202, "{r}");
    assert!(r["scheduled"].as_i64().unwrap() >= 1);
    let (status, rotated) = call(&s, M::POST, &format!("/v1/webhook-endpoints/{id}/rotate-secret"), &token, None).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["secret"].as_str().unwrap(), secret);

    // Another workspace: nothing of it.
    for path in [format!("/v1/webhook-endpoints/{id}"), format!("/v1/webhook-endpoints/{id}/attempts")] {
        let (status, _) = call(&s, M::GET, &path, &other, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = call(&s, M::DELETE, &format!("/v1/webhook-endpoints/{id}"), &other, None).await;
    assert_eq!(status, 404);
    let (_, msgs) = call(&s, M::GET, "/v1/webhook-messages", &other, None).await;
    assert!(msgs["items"].as_array().unwrap().is_empty());

    let (status, _) =
        call(&s, M::PATCH, &format!("/v1/webhook-endpoints/{id}"), &token, Some(json!({"description": "CRM sync"})))
            .await;
    assert_eq!(status, 200);
    let (status, _) = call(&s, M::DELETE, &format!("/v1/webhook-endpoints/{id}"), &token, None).await;
    assert_eq!(status, 204);
}
