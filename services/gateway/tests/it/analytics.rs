//! Analytics through the gateway: tracking with the write key (per-event results, 401s, caps,
//! malformed input), reports and the audit trail confined to the caller's workspace.

use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::{email, stack_all};
use crate::support::client;

async fn send(base: &str, path: &str, auth: Option<&str>, lang: &str, body: &str) -> (u16, Value) {
    let mut r = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("accept-language", lang)
        .body(body.to_owned());
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

#[tokio::test]
async fn tracking_reports_and_audit_through_the_gateway() {
    let s = stack_all(1000, false, false, true).await;
    let signed = s.sign_up(&email("track")).await;
    let token = format!("Bearer {}", signed["access_token"].as_str().unwrap());
    let mut key = Value::Null;
    for _ in 0..100 {
        let (status, body) = s.get("/v1/analytics/write-key", &[("authorization", &token)]).await;
        if status == 200 {
            key = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = key["key"].as_str().expect("write key").to_owned();
    assert!(key.starts_with("wk_"));
    let wk = format!("Bearer {key}");

    // A batch with valid, invalid and malformed events: the valid ones go in, each other one is
    // named with its reason, in the caller's language.
    let batch = json!({"events": [
        {"name": "page.viewed", "client_event_id": "g-1", "anonymous_id": "a1", "timestamp": now(), "page_url": "https://shop.example.com/"},
        {"name": "page.viewed", "client_event_id": "g-2", "timestamp": now()},
        {"name": 5, "client_event_id": "g-3", "anonymous_id": "a1"},
        {"name": "order.completed", "client_event_id": "g-4", "user_id": "c-42", "timestamp": now(),
         "revenue": {"amount_minor": 4990, "currency": "BRL"}, "utm": {"source": "facebook"}, "properties": {"items": 3}},
        "not an object"
    ]});
    let (status, r) = send(&s.base, "/v1/track/batch", Some(&wk), "es", &batch.to_string()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["accepted"].as_u64(), r["rejected"].as_u64()), (Some(2), Some(3)), "{r}");
    let results = r["results"].as_array().unwrap();
    let statuses: Vec<&str> = results.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "rejected", "accepted", "rejected"]);
    assert_eq!(results[1]["error"]["code"], "analytics.identity_required");
    assert_eq!(results[1]["error"]["field"], "anonymous_id");
    assert!(results[1]["error"]["message"].as_str().unwrap().contains("id anónimo"), "{}", results[1]);
    assert_eq!(results[2]["error"]["code"], "analytics.invalid_event");
    assert_eq!(results[2]["error"]["field"], "name");
    assert_eq!(results[2]["client_event_id"], "g-3");
    assert_eq!(results[4]["error"]["code"], "analytics.invalid_event");
    // Retrying the batch is safe.
    let (_, again) = send(&s.base, "/v1/track/batch", Some(&wk), "en", &batch.to_string()).await;
    assert_eq!(again["results"][0]["status"], "duplicate");

    // Customers' sites may call tracking from any origin; the rest of the API stays restricted.
    for (path, allowed) in [("/v1/track/batch", true), ("/v1/track", true), ("/v1/analytics/timeseries", false)] {
        let pre = client()
            .request(reqwest::Method::OPTIONS, format!("{}{path}", s.base))
            .header("origin", "https://customer-shop.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,authorization")
            .send()
            .await
            .unwrap();
        let origin = pre.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(origin.as_deref(), allowed.then_some("https://customer-shop.example"), "{path}");
    }

    // One event, the key in the body (sendBeacon cannot set headers).
    let one = json!({"write_key": key, "name": "signup.started", "anonymous_id": "a1", "timestamp": now()});
    let (status, r) = send(&s.base, "/v1/track", None, "en", &one.to_string()).await;
    assert_eq!(status, 202, "{r}");
    assert_eq!(r["status"], "accepted");
    let (status, r) = send(&s.base, "/v1/track", Some(&wk), "en", &json!({"name": "x"}).to_string()).await;
    assert_eq!((status, r["error"]["code"].as_str()), (422, Some("analytics.identity_required")));
    let (status, r) =
        send(&s.base, "/v1/track", Some(&wk), "en", &json!({"name": "x", "anonymous_id": ["a"]}).to_string()).await;
    assert_eq!((status, r["error"]["code"].as_str()), (422, Some("analytics.invalid_event")));

    // Wrong, missing and user-token keys are 401; nothing is stored.
    for (auth, code) in [
        (Some("Bearer wk_wrong"), "analytics.invalid_write_key"),
        (None, "analytics.write_key_required"),
        (Some(token.as_str()), "analytics.invalid_write_key"),
    ] {
        let (status, r) = send(
            &s.base,
            "/v1/track/batch",
            auth,
            "en",
            &json!({"events": [{"name": "x", "anonymous_id": "a"}]}).to_string(),
        )
        .await;
        assert_eq!((status, r["error"]["code"].as_str()), (401, Some(code)), "{r}");
        let (status, _) =
            send(&s.base, "/v1/track", auth, "en", &json!({"name": "x", "anonymous_id": "a"}).to_string()).await;
        assert_eq!(status, 401);
    }
    // Even a batch of only malformed events checks the key first.
    let (status, _) = send(&s.base, "/v1/track/batch", Some("Bearer wk_wrong"), "en", r#"{"events": [1, 2]}"#).await;
    assert_eq!(status, 401);
    let (status, r) = send(&s.base, "/v1/track/batch", Some(&wk), "en", r#"{"events": [1, 2]}"#).await;
    assert_eq!((status, r["rejected"].as_u64()), (200, Some(2)));

    // Oversized, malformed and wrongly shaped bodies.
    let big: Vec<Value> =
        (0..501).map(|i| json!({"name": "x", "anonymous_id": "a", "client_event_id": format!("big-{i}")})).collect();
    let (status, r) = send(&s.base, "/v1/track/batch", Some(&wk), "en", &json!({"events": big}).to_string()).await;
    assert_eq!((status, r["error"]["code"].as_str()), (413, Some("analytics.batch_too_large")));
    let (status, r) = send(&s.base, "/v1/track/batch", Some(&wk), "en", r#"{"events": [{"name": "x""#).await;
    assert_eq!((status, r["error"]["code"].as_str()), (400, Some("request.malformed_json")));
    let (status, r) = send(&s.base, "/v1/track/batch", Some(&wk), "en", r#"{"events": {"name": "x"}}"#).await;
    assert_eq!((status, r["error"]["code"].as_str()), (422, Some("request.invalid_body")));
    let huge = format!(r#"{{"events": [{{"name": "x", "anonymous_id": "{}"}}]}}"#, "a".repeat(1_100_000));
    let (status, r) = send(&s.base, "/v1/track/batch", Some(&wk), "en", &huge).await;
    assert_eq!((status, r["error"]["code"].as_str()), (413, Some("request.body_too_large")));

    // The reports see the three accepted events (next to the workspace's own domain events, such
    // as auth's sign-up); another workspace sees none of them.
    let path = "/v1/analytics/timeseries?interval=hour&tz=UTC";
    let tracked = ["page.viewed", "order.completed", "signup.started"];
    let mut top = Value::Null;
    for _ in 0..100 {
        let (status, r) = s.get("/v1/analytics/top-events?limit=100", &[("authorization", &token)]).await;
        assert_eq!(status, 200, "{r}");
        top = r;
        let rows = top["rows"].as_array().unwrap();
        if tracked.iter().all(|n| rows.iter().any(|r| r["key"] == *n))
            && rows.iter().any(|r| r["key"] == "auth.user.signed_up")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = top["rows"].as_array().unwrap();
    for n in tracked {
        assert_eq!(rows.iter().find(|r| r["key"] == n).map(|r| r["events"].clone()), Some(json!(1)), "{n}: {top}");
    }
    let all: i64 = rows.iter().map(|r| r["events"].as_i64().unwrap()).sum();
    let (status, series) = s.get(path, &[("authorization", &token)]).await;
    assert_eq!(status, 200, "{series}");
    let total: i64 = series["points"].as_array().unwrap().iter().map(|p| p["events"].as_i64().unwrap()).sum();
    assert_eq!(total, all);
    let other = s.sign_up(&email("other")).await;
    let other_token = format!("Bearer {}", other["access_token"].as_str().unwrap());
    let (_, theirs) = s.get(path, &[("authorization", &other_token)]).await;
    assert!(theirs["points"].as_array().unwrap().iter().all(|p| p["events"] == 0), "{theirs}");
    let (status, rev) = s.get("/v1/analytics/revenue?tz=America/Sao_Paulo", &[("authorization", &token)]).await;
    assert_eq!(status, 200);
    assert_eq!(rev["totals"], json!([{"amount_minor": 4990, "currency": "BRL"}]));
    let (_, rev) = s.get("/v1/analytics/revenue", &[("authorization", &other_token)]).await;
    assert_eq!(rev["totals"], json!([]));
    let (status, f) =
        s.get("/v1/analytics/funnel?steps=page.viewed,signup.started&window=3600", &[("authorization", &token)]).await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["steps"][0]["users"], 1);
    assert_eq!(f["steps"][1]["users"], 1);
    let (_, utm) = s.get("/v1/analytics/utm?dimension=source", &[("authorization", &token)]).await;
    assert!(utm["rows"].as_array().unwrap().iter().any(|r| r["key"] == "facebook" && r["events"] == 1), "{utm}");

    // Retention (a feature's own: the same start and return event) and stickiness, as JSON and CSV.
    let (status, r) = s
        .get(
            "/v1/analytics/retention?start_event=page.viewed&return_event=page.viewed&weeks=2",
            &[("authorization", &token)],
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["weeks"], 2);
    assert_eq!(r["cohorts"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!((r["cohorts"][0]["users"].clone(), r["cohorts"][0]["retained"].clone()), (json!(1), json!([1, 0])));
    let resp = client()
        .get(format!(
            "{}/v1/analytics/retention?start_event=page.viewed&return_event=page.viewed&weeks=2&format=csv",
            s.base
        ))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let week = r["cohorts"][0]["week_start"].as_str().unwrap().to_owned();
    assert_eq!(resp.text().await.unwrap(), format!("week_start,users,week_0,week_1\n{week},1,1,0\n"));
    let (status, st) = s.get("/v1/analytics/stickiness?event=page.viewed", &[("authorization", &token)]).await;
    assert_eq!(status, 200, "{st}");
    let points = st["points"].as_array().unwrap();
    assert_eq!(points.len(), 31, "the 30 days before now, today included");
    assert_eq!((points[30]["daily_users"].clone(), points[30]["monthly_users"].clone()), (json!(1), json!(1)));
    let (_, theirs) = s.get("/v1/analytics/stickiness?event=page.viewed", &[("authorization", &other_token)]).await;
    assert!(theirs["points"].as_array().unwrap().iter().all(|p| p["monthly_users"] == 0), "{theirs}");
    for (query, status, code) in [
        ("start_event=a&return_event=b&weeks=27", 422, "analytics.invalid_weeks"),
        ("start_event=a&return_event=b&weeks=many", 400, "request.invalid_query"),
        ("start_event=a", 400, "request.invalid_query"),
        ("start_event=a&return_event=b&format=xml", 400, "request.invalid_query"),
        ("start_event=%20&return_event=b", 422, "analytics.invalid_event_name"),
        (
            "start_event=a&return_event=b&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            422,
            "analytics.range_too_large",
        ),
    ] {
        let (got, r) = s.get(&format!("/v1/analytics/retention?{query}"), &[("authorization", &token)]).await;
        assert_eq!((got, r["error"]["code"].as_str()), (status, Some(code)), "{query}: {r}");
    }
    // A signed-in user's own locale decides the language, whatever Accept-Language says.
    let (status, r) = s
        .get(
            "/v1/analytics/retention?start_event=a&return_event=b&weeks=27",
            &[("authorization", &token), ("accept-language", "es")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(r["error"]["message"].as_str().unwrap().contains("weeks"), "{r}");
    let (status, _) = s.get("/v1/analytics/stickiness", &[]).await;
    assert_eq!(status, 401);

    // Bad report input is a localized 4xx.
    let (status, r) = s.get("/v1/analytics/timeseries?tz=Nowhere/Land", &[("authorization", &token)]).await;
    assert_eq!((status, r["error"]["code"].as_str()), (422, Some("analytics.invalid_time_zone")));
    assert!(r["error"]["message"].as_str().unwrap().contains("Nowhere/Land"), "{r}");
    let (status, r) = s.get("/v1/analytics/funnel?steps=only-one", &[("authorization", &token)]).await;
    assert_eq!((status, r["error"]["code"].as_str()), (422, Some("analytics.invalid_funnel_steps")));
    let (status, r) = s.get("/v1/analytics/funnel", &[("authorization", &token)]).await;
    assert_eq!((status, r["error"]["code"].as_str()), (400, Some("request.invalid_query")));
    let (status, _) = s.get("/v1/analytics/timeseries", &[]).await;
    assert_eq!(status, 401);
    let (status, r) = s.get("/v1/analytics/top-events?limit=1000", &[("authorization", &token)]).await;
    assert_eq!((status, r["error"]["code"].as_str()), (400, Some("request.invalid_page_size")));

    // Signing up changed auth's tables: the change is in this workspace's audit trail (and not
    // in the other's).
    let mut entries = Vec::new();
    for _ in 0..100 {
        let (status, r) = s.get("/v1/audit?limit=100", &[("authorization", &token)]).await;
        assert_eq!(status, 200, "{r}");
        entries = r["items"].as_array().unwrap().clone();
        if entries.iter().any(|e| e["service"] == "auth") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let from_auth = entries.iter().find(|e| e["service"] == "auth").expect("auth change audited");
    assert!(from_auth["resource_type"].as_str().unwrap().starts_with("auth."), "{from_auth}");
    let (_, theirs) = s.get("/v1/audit?resource_type=analytics.write_keys", &[("authorization", &other_token)]).await;
    assert!(theirs["items"].as_array().unwrap().is_empty(), "{theirs}");

    // Settings and the fleet status (operators only).
    let (status, set) =
        send_patch(&s.base, "/v1/analytics/settings", &token, json!({"time_zone": "Asia/Jerusalem"})).await;
    assert_eq!((status, set["time_zone"].as_str()), (200, Some("Asia/Jerusalem")));
    let (status, r) = send_patch(&s.base, "/v1/analytics/settings", &token, json!({"retention_days": 0})).await;
    assert_eq!((status, r["error"]["code"].as_str()), (422, Some("analytics.invalid_retention")));
    let (status, r) = s.get("/v1/fleet/status", &[("authorization", &token)]).await;
    assert_eq!((status, r["error"]["code"].as_str()), (403, Some("analytics.operator_required")));
}

async fn send_patch(base: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = client().patch(format!("{base}{path}")).header("authorization", token).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}
