//! Content routes through the gateway: generations (JSON and SSE), pages, the public /p routes.

use serde_json::{Value, json};

use crate::auth::{Stack, email, stack_full};
use crate::support::client;

async fn signed_in(s: &Stack, tag: &str) -> String {
    let signed = s.sign_up(&email(tag)).await;
    signed["access_token"].as_str().unwrap().to_owned()
}

async fn send(
    s: &Stack,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = client().request(method, format!("{}{path}", s.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn generation_body() -> Value {
    json!({"kind": "social_post", "platform": "x", "language": "ar", "product": "Trail Runner X", "facts": ["weighs only 220 g"]})
}

#[tokio::test]
async fn generations_through_the_gateway_json_and_sse() {
    let s = stack_full(1000, true, true).await;
    let token = signed_in(&s, "gen").await;
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/v1/content/generations",
        Some(&token),
        Some(generation_body()),
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let g = parse(&body);
    assert_eq!(
        (g["provider"].as_str(), g["dir"].as_str(), g["limits"]["body"].as_u64()),
        (Some("local"), Some("rtl"), Some(280))
    );
    assert!(g["variants"][0]["body"].as_str().unwrap().chars().count() <= 280);
    let id = g["id"].as_str().unwrap();
    let (status, _, again) = send(
        &s,
        reqwest::Method::POST,
        "/v1/content/generations",
        Some(&token),
        Some(generation_body()),
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!((status, parse(&again)["id"].as_str()), (201, Some(id)), "same key, same generation");
    let (status, _, got) =
        send(&s, reqwest::Method::GET, &format!("/v1/content/generations/{id}"), Some(&token), None, &[]).await;
    assert_eq!((status, parse(&got)["credits"].as_i64()), (200, Some(1)));

    // Another workspace sees nothing.
    let other = signed_in(&s, "other").await;
    let (status, _, body) = send(
        &s,
        reqwest::Method::GET,
        &format!("/v1/content/generations/{id}"),
        Some(&other),
        None,
        &[("accept-language", "es")],
    )
    .await;
    assert_eq!(status, 404);
    let e = parse(&body);
    assert_eq!(e["error"]["code"], "content.generation_not_found");
    // The user's saved language (English at sign-up) wins over Accept-Language.
    assert_eq!(e["error"]["message"], "This generation does not exist.");

    // Server-sent events: deltas, then the stored generation.
    let (status, headers, stream) = send(
        &s,
        reqwest::Method::POST,
        "/v1/content/generations",
        Some(&token),
        Some(json!({"kind": "ad_copy", "language": "pt", "product": "Trail Runner X"})),
        &[("accept", "text/event-stream")],
    )
    .await;
    assert_eq!(status, 201, "{stream}");
    assert!(headers[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    let mut text = String::new();
    let mut done = None;
    for block in stream.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("");
        let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
        match event {
            "delta" => {
                let d = parse(&data);
                if d["variant"] == 0 && d["field"] == "body" {
                    text.push_str(d["text"].as_str().unwrap());
                }
            }
            "done" => done = Some(parse(&data)),
            "" => {}
            other => panic!("unexpected event {other}: {data}"),
        }
    }
    let done = done.expect("done event");
    assert_eq!(done["variants"][0]["body"].as_str().unwrap(), text);
    assert_eq!(done["variants"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn generation_input_errors_are_localized_4xx() {
    let s = stack_full(1000, true, true).await;
    let token = signed_in(&s, "bad").await;
    let post = |body: &'static str, ct: &'static str| {
        let base = s.base.clone();
        let token = token.clone();
        async move {
            let resp = client()
                .post(format!("{base}/v1/content/generations"))
                .bearer_auth(token)
                .header("content-type", ct)
                .header("accept-language", "he")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, parse(&resp.text().await.unwrap()))
        }
    };
    for (body, ct, status, code) in [
        ("{not json", "application/json", 400, "request.malformed_json"),
        ("{\"kind\": 5, \"product\": \"x\"}", "application/json", 422, "request.invalid_body"),
        ("{\"kind\": \"email\", \"product\": \"x\", \"evil\": true}", "application/json", 422, "request.invalid_body"),
        ("{\"kind\": \"poem\", \"product\": \"x\"}", "application/json", 400, "content.unknown_kind"),
        ("{\"kind\": \"social_post\", \"product\": \"x\"}", "application/json", 400, "content.platform_required"),
        ("{\"kind\": \"email\", \"product\": \"x\"}", "text/plain", 415, "request.unsupported_media_type"),
    ] {
        let (got, e) = post(body, ct).await;
        assert_eq!((got, e["error"]["code"].as_str()), (status, Some(code)), "{body}: {e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, _, _) =
        send(&s, reqwest::Method::POST, "/v1/content/generations", None, Some(generation_body()), &[]).await;
    assert_eq!(status, 401);
    let (status, _, _) =
        send(&s, reqwest::Method::POST, "/v1/content/generations", Some("not-a-token"), Some(generation_body()), &[])
            .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn pages_are_published_served_and_take_leads() {
    let s = stack_full(1000, true, true).await;
    let token = signed_in(&s, "pages").await;
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/v1/pages",
        Some(&token),
        Some(json!({"language": "ar", "product": "Trail Runner X", "facts": ["free returns for 30 days"]})),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let page = parse(&body);
    let id = page["id"].as_str().unwrap().to_owned();
    assert_eq!(page["sections"]["lead_form"]["fields"][1], "email");

    let (status, _, _) = send(&s, reqwest::Method::GET, "/p/trail-ar", None, None, &[]).await;
    assert_eq!(status, 404, "not published yet");
    let (status, _, body) = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v1/pages/{id}/sections/faq"),
        Some(&token),
        Some(json!({"content": [{"q": "<script>x</script>?", "a": "لا"}], "base_version": 1})),
        &[],
    )
    .await;
    assert_eq!((status, parse(&body)["current_version"].as_u64()), (200, Some(2)), "{body}");
    let (status, _, body) = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v1/pages/{id}/sections/faq"),
        Some(&token),
        Some(json!({"content": [], "base_version": 1})),
        &[],
    )
    .await;
    assert_eq!((status, parse(&body)["error"]["code"].as_str()), (409, Some("content.version_conflict")));
    let other = signed_in(&s, "intruder").await;
    let (status, _, _) = send(
        &s,
        reqwest::Method::POST,
        &format!("/v1/pages/{id}/publish"),
        Some(&other),
        Some(json!({"slug": "stolen"})),
        &[],
    )
    .await;
    assert_eq!(status, 404, "another workspace cannot touch it");
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        &format!("/v1/pages/{id}/publish"),
        Some(&token),
        Some(json!({"slug": "admin"})),
        &[],
    )
    .await;
    assert_eq!((status, parse(&body)["error"]["code"].as_str()), (400, Some("content.slug_reserved")));
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        &format!("/v1/pages/{id}/publish"),
        Some(&token),
        Some(json!({"slug": "trail-ar"})),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let resp = client().get(format!("{}/p/trail-ar", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h[reqwest::header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = h[reqwest::header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(h[reqwest::header::CONTENT_LANGUAGE], "ar");
    let html = resp.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    assert!(html.contains("<html lang=\"ar\" dir=\"rtl\">"));
    assert!(!html.contains("<script>") && !html.contains("https://") && !html.contains("http://"));
    let etag = h[reqwest::header::ETAG].to_str().unwrap().to_owned();
    let resp = client().get(format!("{}/p/trail-ar", s.base)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), 304);
    let resp = client().head(format!("{}/p/trail-ar", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (_, _, body) = send(&s, reqwest::Method::GET, &format!("/v1/pages/{id}"), Some(&token), None, &[]).await;
    assert_eq!(parse(&body)["views"], 2, "GETs count (a 304 is a view too), HEAD does not");

    // The page's own form, as a browser posts it.
    let resp = client()
        .post(format!("{}/p/trail-ar/leads", s.base))
        .form(&[("name", "Ana"), ("email", "ana@example.com"), ("consent", "yes"), ("website", "")])
        .send()
        .await
        .unwrap();
    let no_redirect_status = resp.status().as_u16();
    assert!(no_redirect_status == 200 || no_redirect_status == 303, "{no_redirect_status}");
    let bot = client()
        .post(format!("{}/p/trail-ar/leads", s.base))
        .form(&[("email", "bot@example.com"), ("website", "http://spam.example")])
        .send()
        .await
        .unwrap();
    assert_eq!(bot.status().as_u16(), no_redirect_status, "a bot gets the same answer");
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/p/trail-ar/leads",
        None,
        Some(json!({"email": "joao@example.com", "consent": true})),
        &[],
    )
    .await;
    assert_eq!((status, parse(&body)["accepted"].as_bool()), (202, Some(true)));
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/p/trail-ar/leads",
        None,
        Some(json!({"email": "nope"})),
        &[("accept-language", "pt")],
    )
    .await;
    let e = parse(&body);
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("content.invalid_email")));
    assert_eq!(e["error"]["message"], "Informe um e-mail válido.", "anonymous callers get Accept-Language");
    let (status, _, _) =
        send(&s, reqwest::Method::POST, "/p/nowhere/leads", None, Some(json!({"email": "a@b.co"})), &[]).await;
    assert_eq!(status, 404);
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM content.page_leads")
        .fetch_one(&s.db.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(leads, 2, "the honeypot stored nothing");

    let (status, _, _) =
        send(&s, reqwest::Method::POST, &format!("/v1/pages/{id}/unpublish"), Some(&token), None, &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = send(&s, reqwest::Method::GET, "/p/trail-ar", None, None, &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn agents_and_images_through_the_gateway() {
    let s = stack_full(1000, true, true).await;
    let token = signed_in(&s, "agents").await;
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/v1/agents",
        Some(&token),
        Some(json!({"name": "Nova", "language": "he", "knowledge": ["המשלוחים לכל הארץ תוך יומיים."]})),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let agent = parse(&body);
    assert_eq!(agent["dir"], "rtl");
    let id = agent["id"].as_str().unwrap();
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        &format!("/v1/agents/{id}/chat"),
        Some(&token),
        Some(json!({"contact_id": "wa:972501234567", "message": "כמה זמן לוקחים המשלוחים?"})),
        &[("idempotency-key", "m-1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let reply = parse(&body);
    assert!(reply["reply"]["content"].as_str().unwrap().contains("המשלוחים לכל הארץ"), "{reply}");
    assert_eq!((reply["provider"].as_str(), reply["credits"].as_i64()), (Some("local"), Some(1)));
    let (status, _, body) = send(
        &s,
        reqwest::Method::GET,
        &format!("/v1/agents/{id}/messages?contact_id=wa:972501234567"),
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!((status, parse(&body)["items"].as_array().map(Vec::len)), (200, Some(2)));
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        &format!("/v1/agents/{id}/chat"),
        Some(&token),
        Some(json!({"contact_id": "x"})),
        &[],
    )
    .await;
    assert_eq!((status, parse(&body)["error"]["code"].as_str()), (422, Some("request.invalid_body")));
    let other = signed_in(&s, "spy").await;
    let (status, _, _) = send(&s, reqwest::Method::GET, &format!("/v1/agents/{id}"), Some(&other), None, &[]).await;
    assert_eq!(status, 404);
    let (status, _, body) =
        send(&s, reqwest::Method::POST, "/v1/agents", Some(&token), Some(json!({"name": "Second"})), &[]).await;
    assert_eq!((status, parse(&body)["error"]["code"].as_str()), (402, Some("subscriptions.limit_reached")));

    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/v1/images",
        Some(&token),
        Some(json!({"purpose": "ad", "prompt": "shoes"})),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let img = parse(&body);
    assert_eq!((img["status"].as_str(), img["width"].as_u64()), (Some("succeeded"), Some(1024)));
    let (status, _, _) =
        send(&s, reqwest::Method::GET, &format!("/v1/images/{}", img["id"].as_str().unwrap()), Some(&other), None, &[])
            .await;
    assert_eq!(status, 404);
    let (status, _, body) = send(
        &s,
        reqwest::Method::POST,
        "/v1/images",
        Some(&token),
        Some(json!({"purpose": "ad", "prompt": "shoes", "width": 100})),
        &[],
    )
    .await;
    assert_eq!((status, parse(&body)["error"]["code"].as_str()), (400, Some("content.invalid_image_size")));
}

#[tokio::test]
async fn without_credits_generation_is_402_before_any_stream() {
    let s = stack_full(1000, true, true).await;
    let token = signed_in(&s, "broke").await;
    let body = json!({"kind": "email", "language": "es", "product": "Trail Runner X"});
    // FREE grants 50 credits; a local generation costs one.
    let mut made = 0;
    loop {
        let (status, _, text) =
            send(&s, reqwest::Method::POST, "/v1/content/generations", Some(&token), Some(body.clone()), &[]).await;
        if status != 201 {
            assert_eq!(status, 402, "{text}");
            assert_eq!(parse(&text)["error"]["code"], "subscriptions.insufficient_credits");
            break;
        }
        made += 1;
        assert!(made <= 50, "more generations than credits");
    }
    assert_eq!(made, 50);
    let (status, headers, text) = send(
        &s,
        reqwest::Method::POST,
        "/v1/content/generations",
        Some(&token),
        Some(body),
        &[("accept", "text/event-stream")],
    )
    .await;
    assert_eq!(status, 402, "{text}");
    assert!(headers[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    // Finished generations settle through the outbox, so the last hold may still be reserved for a moment;
    // it must end as spent, never released and never doubled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let settled = loop {
        let (_, _, balance) = send(&s, reqwest::Method::GET, "/v1/credits/balance", Some(&token), None, &[]).await;
        let b = parse(&balance);
        let now = (b["available"].as_i64(), b["reserved"].as_i64());
        if now == (Some(0), Some(0)) || std::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(settled, (Some(0), Some(0)), "the last hold must end spent, never released or doubled");
    let (_, _, list) =
        send(&s, reqwest::Method::GET, "/v1/content/generations?limit=100", Some(&token), None, &[]).await;
    assert_eq!(parse(&list)["items"].as_array().unwrap().len(), 50, "the refused ones left nothing");
}
