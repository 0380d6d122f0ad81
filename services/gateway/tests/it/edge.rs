//! The edge stack (envelopes, languages, limits) around test routes that use the gateway's own
//! extractors: exactly what every real route gets.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use nexus_gateway::edge::RateLimits;
use nexus_gateway::error::ApiError;
use nexus_gateway::extract::ApiJson;
use nexus_kernel::{ErrorKind, Locale};
use serde::Deserialize;

use crate::support::{client, config, envelope, json, serve};

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Signup {
    email: String,
    seats: u32,
}

fn test_routes() -> Router {
    Router::new()
        .route(
            "/v1/things",
            post(|ApiJson(s): ApiJson<Signup>| async move { axum::Json(serde_json::json!({"email": s.email})) }),
        )
        .route(
            "/v1/panic",
            get(|| async {
                if true {
                    panic!("secret internal detail")
                }
                "unreachable"
            }),
        )
        .route(
            "/v1/broken",
            get(|| async {
                Err::<(), _>(ApiError::from(nexus_kernel::Error::internal(std::io::Error::other(
                    "db password is hunter2",
                ))))
            }),
        )
        .route(
            "/v1/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/v1/auth/login", post(|| async { "ok" }))
        .route("/v1/ok", get(|| async { "ok" }))
        .route(
            "/v1/whoami",
            get(|axum::Extension(edge): axum::Extension<nexus_gateway::edge::Edge>| async move {
                edge.client_ip.to_string()
            }),
        )
}

async fn base_with(mutate: impl FnOnce(&mut nexus_gateway::config::GatewayConfig)) -> String {
    let mut cfg = config();
    cfg.http.body_limit = 2048;
    cfg.http.request_timeout = Duration::from_millis(300);
    mutate(&mut cfg);
    let limits = RateLimits::new(&cfg.rate_limit);
    serve(nexus_gateway::with_edge(test_routes(), &cfg, limits, None)).await
}

async fn base() -> String {
    base_with(|_| {}).await
}

#[tokio::test]
async fn bad_bodies_get_the_envelope_with_the_right_status() {
    let base = base().await;
    let c = client();
    let url = format!("{base}/v1/things");
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (c.post(&url).header("content-type", "application/json").body("{\"email\": "), 400, "request.malformed_json"),
        (c.post(&url).header("content-type", "text/plain").body("{}"), 415, "request.unsupported_media_type"),
        (c.post(&url).body("{\"email\":\"a@b.co\",\"seats\":1}"), 415, "request.unsupported_media_type"),
        (
            c.post(&url)
                .header("content-type", "application/json")
                .body(format!("{{\"email\":\"{}\",\"seats\":1}}", "x".repeat(4096))),
            413,
            "request.body_too_large",
        ),
        (
            c.post(&url).header("content-type", "application/json").body("{\"email\":\"a@b.co\",\"seats\":\"many\"}"),
            422,
            "request.invalid_body",
        ),
        (c.post(&url).header("content-type", "application/json").body("{\"seats\":1}"), 422, "request.invalid_body"),
        (c.post(&url).header("content-type", "application/json").body("[1,2]"), 422, "request.invalid_body"),
        (c.get(format!("{base}/v1/no/such/route")), 404, "request.not_found"),
        (c.delete(&url), 405, "request.method_not_allowed"),
    ];
    for (req, status, code) in cases {
        let (got, headers, body) = json(req.send().await.unwrap()).await;
        assert_eq!(got, status, "{code}: {body}");
        assert_eq!(envelope(&body).0, code);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-request-id"].to_str().unwrap(), body["error"]["request_id"].as_str().unwrap());
    }
}

#[tokio::test]
async fn wrong_types_name_the_field() {
    let base = base().await;
    let (status, _, body) = json(
        client()
            .post(format!("{base}/v1/things"))
            .header("content-type", "application/json")
            .body("{\"email\":\"a@b.co\",\"seats\":-1}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["fields"][0]["field"], "seats");
    assert!(body["error"]["message"].as_str().unwrap().contains("seats"));

    let (_, _, body) = json(
        client()
            .post(format!("{base}/v1/things"))
            .header("content-type", "application/json")
            .body("{\"seats\":1}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["error"]["fields"][0]["field"], "email");
}

#[tokio::test]
async fn messages_follow_accept_language_in_all_five_locales() {
    let base = base().await;
    let cases = [
        ("ar", Locale::Ar, "rtl"),
        ("he-IL,he;q=0.9", Locale::He, "rtl"),
        ("es-MX", Locale::Es, "ltr"),
        ("pt-BR, en;q=0.5", Locale::Pt, "ltr"),
        ("fr", Locale::En, "ltr"),
    ];
    for (path, method, status, code) in [
        ("/v1/things", "POST-BAD", 400, "request.malformed_json"),
        ("/v1/things", "POST-BIG", 413, "request.body_too_large"),
        ("/v1/things", "POST-TEXT", 415, "request.unsupported_media_type"),
        ("/v1/nowhere", "GET", 404, "request.not_found"),
    ] {
        let mut seen = std::collections::HashSet::new();
        for (header, locale, dir) in cases {
            let url = format!("{base}{path}");
            let req = match method {
                "POST-BAD" => client().post(&url).header("content-type", "application/json").body("nope"),
                "POST-BIG" => client().post(&url).header("content-type", "application/json").body(vec![b' '; 8192]),
                "POST-TEXT" => client().post(&url).header("content-type", "text/plain").body("x"),
                _ => client().get(&url),
            };
            let (got, headers, body) = json(req.header("accept-language", header).send().await.unwrap()).await;
            assert_eq!(got, status);
            let (c, message) = envelope(&body);
            assert_eq!(c, code);
            let mut params = Vec::new();
            if code == "request.body_too_large" {
                params.push(("limit".to_owned(), "2048".to_owned()));
                assert!(message.contains("2048"), "{message}");
            }
            assert_eq!(message, nexus_i18n::error_message(locale, code, &params, status));
            assert_eq!(body["error"]["dir"], dir);
            assert_eq!(headers["content-language"], locale.code());
            seen.insert(message);
        }
        assert_eq!(seen.len(), 5, "five distinct translations for {code}");
    }
}

#[tokio::test]
async fn server_errors_say_nothing_internal() {
    let base = base().await;
    for path in ["/v1/panic", "/v1/broken"] {
        let resp = client().get(format!("{base}{path}")).header("accept-language", "he").send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 500, "{path}");
        assert!(!text.contains("secret") && !text.contains("hunter2") && !text.contains("panic"), "{text}");
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            envelope(&body),
            ("internal".to_owned(), nexus_i18n::error_message(Locale::He, "internal", &[], 500))
        );
    }
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_replaced_when_not() {
    let base = base().await;
    let resp = client().get(format!("{base}/v1/ok")).header("x-request-id", "client-abc_123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "client-abc_123");
    let resp = client().get(format!("{base}/v1/ok")).header("x-request-id", "x".repeat(500)).send().await.unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.starts_with("req_"), "{id}");
}

#[tokio::test]
async fn slow_requests_time_out_with_the_envelope() {
    let base = base().await;
    let started = std::time::Instant::now();
    let (status, _, body) = json(client().get(format!("{base}/v1/slow")).send().await.unwrap()).await;
    assert_eq!(status, 504);
    assert_eq!(envelope(&body).0, "request.timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_auth_routes_are_stricter() {
    let base = base_with(|c| {
        c.rate_limit.per_ip_per_minute = 5;
        c.rate_limit.auth_per_ip_per_minute = 2;
    })
    .await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(c.get(format!("{base}/v1/ok")).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429]);
    let resp = c.get(format!("{base}/v1/ok")).header("accept-language", "pt").send().await.unwrap();
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (_, _, body) = json(resp).await;
    let (code, message) = envelope(&body);
    assert_eq!(code, "request.rate_limited");
    assert!(message.contains(&retry.to_string()), "{message}");

    let auth: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(c.post(format!("{base}/v1/auth/login")).send().await.unwrap().status().as_u16());
        }
        v
    };
    assert_eq!(auth, vec![200, 200, 429], "auth routes have their own, stricter budget");
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let base = base().await;
    let c = client();
    let ok = c
        .request(reqwest::Method::OPTIONS, format!("{base}/v1/things"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "http://localhost:3000");
    let evil = c
        .request(reqwest::Method::OPTIONS, format!("{base}/v1/things"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let base = base().await;
    let resp = client()
        .get(format!("{base}/v1/nowhere"))
        .header("accept-encoding", "gzip")
        .header("accept-language", "ar")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let bytes = resp.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(bytes.as_ref()), &mut text).unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope(&body).0, "request.not_found");
}

#[test]
fn kinds_map_to_http_in_one_place() {
    let e: ApiError =
        tonic::Status::from(nexus_kernel::Error::new(ErrorKind::PaymentRequired, "subscriptions.insufficient_credits"))
            .into();
    assert_eq!(e.kind().http_status(), 402);
    assert_eq!(e.code(), "subscriptions.insufficient_credits");
    let bare: ApiError = tonic::Status::unavailable("connection refused").into();
    assert_eq!(bare.kind().http_status(), 503);
    assert_eq!(bare.code(), "service.unavailable");
    let unknown: ApiError = tonic::Status::unknown("boom").into();
    assert_eq!(unknown.kind().http_status(), 500);
}

async fn whoami(base: &str, headers: &[(&str, &str)]) -> String {
    let mut r = client().get(format!("{base}/v1/whoami"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies_taking_the_first_untrusted_hop() {
    // The test client connects from 127.0.0.1: a trusted proxy here.
    let trusted = base_with(|cfg| {
        cfg.http.trust_forwarded_for = true;
        cfg.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let cases = [
        (vec![], "127.0.0.1"),
        (vec![("x-forwarded-for", "203.0.113.7")], "203.0.113.7"),
        // The client wrote the leftmost hop itself: it is not believed.
        (vec![("x-forwarded-for", "1.2.3.4, 203.0.113.7")], "203.0.113.7"),
        // A second proxy of ours in the chain is skipped.
        (vec![("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.1.2.3")], "203.0.113.7"),
        (vec![("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.7")], "203.0.113.7"),
        (vec![("x-forwarded-for", "not-an-address")], "127.0.0.1"),
        (vec![("x-forwarded-for", "::ffff:198.51.100.2")], "198.51.100.2"),
    ];
    for (headers, want) in cases {
        assert_eq!(whoami(&trusted, &headers).await, want, "{headers:?}");
    }

    // The peer is not a trusted proxy: whatever it forwards is ignored.
    let untrusted = base_with(|cfg| {
        cfg.http.trust_forwarded_for = true;
        cfg.http.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert_eq!(whoami(&untrusted, &[("x-forwarded-for", "203.0.113.7")]).await, "127.0.0.1");
    // Not trusting at all (the default): ignored too.
    assert_eq!(whoami(&base().await, &[("x-forwarded-for", "203.0.113.7")]).await, "127.0.0.1");

    // Per-address budgets follow the believed address.
    let limited = base_with(|cfg| {
        cfg.http.trust_forwarded_for = true;
        cfg.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        cfg.rate_limit.per_ip_per_minute = 1;
    })
    .await;
    let get = |ip: &'static str| client().get(format!("{limited}/v1/ok")).header("x-forwarded-for", ip).send();
    assert_eq!(get("203.0.113.7").await.unwrap().status(), 200);
    assert_eq!(get("203.0.113.7").await.unwrap().status(), 429);
    assert_eq!(get("203.0.113.8").await.unwrap().status(), 200, "another client has its own budget");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let base = base_with(|cfg| {
        cfg.http.trust_forwarded_for = true;
        cfg.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let c = client();
    let responses = [
        c.get(format!("{base}/v1/ok")).send().await.unwrap(),
        c.get(format!("{base}/v1/nothing/here")).send().await.unwrap(),
        c.post(format!("{base}/v1/things")).header("content-type", "application/json").body("{").send().await.unwrap(),
        c.get(format!("{base}/v1/broken")).send().await.unwrap(),
    ];
    for resp in responses {
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", resp.status());
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        assert!(h.get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    }
    let over_tls = c.get(format!("{base}/v1/ok")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert!(over_tls.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    // Only a trusted proxy can say the request came over TLS.
    let untrusted = base_with(|cfg| cfg.http.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let resp = c.get(format!("{untrusted}/v1/ok")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());
}

#[test]
fn production_refuses_trusting_forwarded_for_without_a_proxy_list() {
    use nexus_platform::config::{DevelopmentDefaults, Environment};
    let mut cfg = config();
    cfg.environment = Environment::Production;
    let err = cfg.check_environment().unwrap_err().to_string();
    assert!(err.contains("identity.service_secret"), "the development service credential is refused: {err}");
    cfg.identity.service_secret = nexus_platform::config::Secret::new("a-real-credential");
    cfg.check_environment().unwrap();
    cfg.http.trust_forwarded_for = true;
    let err = cfg.check_environment().unwrap_err().to_string();
    assert!(err.contains("http.trust_forwarded_for"), "{err}");
    cfg.http.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    cfg.check_environment().unwrap();
    cfg.environment = Environment::Development;
    cfg.http.trusted_proxies.clear();
    cfg.check_environment().unwrap();
}
