//! Video routes: bad input is refused at the edge, in the caller's language, before anything
//! reaches the video service (which does not run here: a request that got through would answer
//! 503).

use serde_json::{Value, json};

use crate::auth::{email, stack};
use crate::support::{client, envelope};

async fn post(base: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut r = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("accept-language", "es")
        .body(body.to_owned());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

fn good() -> Value {
    json!({"script": "Hola", "avatar_url": "https://cdn.example.com/a.jpg", "voice_id": "21m00Tcm4TlvDq8ikWAM"})
}

#[tokio::test]
async fn bad_video_requests_are_refused_at_the_edge() {
    let s = stack(1000).await;
    let signed = s.sign_up(&email("videos-edge")).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    for path in ["/v1/videos", "/v1/videos/estimate"] {
        let (status, body) = post(&s.base, path, None, &good().to_string()).await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = post(&s.base, path, Some(&token), r#"{"script": "Hola""#).await;
        assert_eq!((status, envelope(&body).0.as_str()), (400, "request.malformed_json"), "{path}");
        let mut extra = good();
        extra["surprise"] = json!(true);
        let (status, body) = post(&s.base, path, Some(&token), &extra.to_string()).await;
        assert_eq!((status, envelope(&body).0.as_str()), (422, "request.invalid_body"), "{path}: {body}");
        let mut wrong = good();
        wrong["captions"] = json!("yes");
        let (status, body) = post(&s.base, path, Some(&token), &wrong.to_string()).await;
        assert_eq!((status, envelope(&body).0.as_str()), (422, "request.invalid_body"), "{path}");
        let (status, body) = post(&s.base, path, Some(&token), r#"{"script": "Hola"}"#).await;
        assert_eq!((status, envelope(&body).0.as_str()), (422, "request.invalid_body"), "missing fields");
        let huge = json!({"script": "a".repeat(1_100_000), "avatar_url": "https://x/a.jpg", "voice_id": "v"});
        let (status, body) = post(&s.base, path, Some(&token), &huge.to_string()).await;
        assert_eq!((status, envelope(&body).0.as_str()), (413, "request.body_too_large"), "{path}");
    }
    // An Idempotency-Key the services could not use is refused here, never dropped (a retry
    // without it would be a second video).
    for key in [
        axum::http::HeaderValue::from_str(&"k".repeat(201)).unwrap(),
        axum::http::HeaderValue::from_bytes(b"caf\xc3\xa9-1").unwrap(),
    ] {
        let resp = client()
            .post(format!("{}/v1/videos", s.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(good().to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!((status, envelope(&body).0.as_str()), (400, "request.invalid_idempotency_key"), "{body}");
    }
    // Messages follow Accept-Language.
    let (_, body) = post(&s.base, "/v1/videos", Some(&token), r#"{"script": 1}"#).await;
    let (_, message) = envelope(&body);
    assert!(!message.is_empty());
    // Avatars: a token is needed, and bodies over the gateway's limit never reach the service.
    let upload = |body: Vec<u8>, token: Option<&str>| {
        let mut r =
            client().post(format!("{}/v1/avatars?name=Amira", s.base)).header("content-type", "image/png").body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t.to_owned());
        }
        r.send()
    };
    assert_eq!(upload(vec![0; 10], None).await.unwrap().status().as_u16(), 401);
    let resp = upload(vec![0; 2 * 1024 * 1024], Some(&token)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let resp = client().get(format!("{}/v1/videos/vid_x/events", s.base)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401, "progress needs a token");
    // Good input gets past the edge, to a video service that is not running here.
    let (status, body) = post(&s.base, "/v1/videos", Some(&token), &good().to_string()).await;
    assert_eq!(status, 503, "{body}");
}
