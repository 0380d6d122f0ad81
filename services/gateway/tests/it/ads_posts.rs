//! Social posts through the gateway on a local sandbox connection: scheduled by the owner, read,
//! on the calendar, rescheduled and cancelled; proposed by a member and approved; and bad input
//! answered with localized 4xx envelopes with nothing stored.

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::ads::local_connection;
use crate::auth::{Services, Stack, expired_copy, stack_of};

const POSTS: &str = "SELECT count(*) FROM ads.social_posts";

fn at(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339()
}

/// A text post to the sandbox's Facebook page, due tomorrow.
fn page_post(conn: &Value, text: &str) -> Value {
    json!({"text": text, "scheduled_at": at(1), "time_zone": "Europe/Madrid",
        "targets": [{"connection_id": conn["id"], "account": "local_page_1", "variant": {"format": "feed", "hashtags": ["winter"]}}]})
}

async fn create(s: &Stack, token: &str, lang: &str, body: Value) -> (u16, Value) {
    s.call_in(M::POST, "/v1/ads/posts", Some(token), lang, Some(body)).await
}

/// `body` sent as it is (not re-encoded), with an optional bearer.
async fn raw(s: &Stack, token: Option<&str>, body: String) -> (u16, Value) {
    s.post_raw("/v1/ads/posts", token, "application/json", "", body).await
}

#[tokio::test]
async fn posts_are_scheduled_read_on_the_calendar_rescheduled_cancelled_and_approved() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;

    let (status, p) = create(&s, &token, "en", page_post(&conn, "Coats are in")).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "scheduled", "{p}");
    assert_eq!(p["time_zone"], "Europe/Madrid");
    assert_eq!(p["body"]["text"], "Coats are in", "the shared body is a JSON object: {p}");
    assert!(p["approved_by"].as_str().is_some_and(|u| u.starts_with("usr_")), "{p}");
    let target = &p["targets"][0];
    assert_eq!((target["platform"].as_str(), target["status"].as_str()), (Some("facebook"), Some("scheduled")));
    assert_eq!(target["variant"]["caption"], "Coats are in", "the variant took the shared text: {p}");
    assert_eq!(target["variant"]["hashtags"], json!(["winter"]));
    let id = p["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("post_"), "{id}");
    chrono::DateTime::parse_from_rfc3339(p["scheduled_at"].as_str().unwrap()).expect("RFC 3339");

    let (status, got) = s.call(M::GET, &format!("/v1/ads/posts/{id}"), Some(&token), None).await;
    assert_eq!((status, &got["id"], &got["status"]), (200, &p["id"], &p["status"]), "{got}");

    let calendar = format!("/v1/ads/calendar?from={}&to={}", urlencode(&at(0)), urlencode(&at(30)));
    let (status, cal) = s.call(M::GET, &calendar, Some(&token), None).await;
    assert_eq!(status, 200, "{cal}");
    assert!(cal["posts"].as_array().unwrap().iter().any(|c| c["id"] == id.as_str()), "{cal}");

    let later = at(3);
    let (status, moved) = s
        .call(M::POST, &format!("/v1/ads/posts/{id}/reschedule"), Some(&token), Some(json!({"scheduled_at": later})))
        .await;
    assert_eq!(status, 200, "{moved}");
    let moved_at = chrono::DateTime::parse_from_rfc3339(moved["scheduled_at"].as_str().unwrap()).unwrap();
    let wanted = chrono::DateTime::parse_from_rfc3339(&later).unwrap();
    assert!((moved_at - wanted).num_seconds().abs() < 1, "{moved}");
    assert_eq!(moved["status"], "scheduled");

    // Replaced whole before it goes out: its text and accounts change; a typo in a field does not pass.
    let replacement = json!({"text": "Rewritten", "scheduled_at": later,
        "targets": [{"connection_id": moved["targets"][0]["connection_id"], "account": "local_page_1"}]});
    let (status, replaced) =
        s.call(M::PUT, &format!("/v1/ads/posts/{id}"), Some(&token), Some(replacement.clone())).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["targets"][0]["variant"]["caption"], "Rewritten", "{replaced}");
    let mut typo = replacement;
    typo["txet"] = json!("x");
    let (status, e) = s.call(M::PUT, &format!("/v1/ads/posts/{id}"), Some(&token), Some(typo)).await;
    assert_eq!(status, 422, "{e}");

    let (status, cancelled) = s.call(M::POST, &format!("/v1/ads/posts/{id}/cancel"), Some(&token), None).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    let (status, again) = s.call(M::POST, &format!("/v1/ads/posts/{id}/cancel"), Some(&token), None).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("ads.post_not_changeable")), "{again}");

    // A member proposes; the owner approves.
    let member = s.join_as(&token, "member").await;
    let member = member["access_token"].as_str().unwrap();
    let (status, proposed) = create(&s, member, "en", page_post(&conn, "Proposal")).await;
    assert_eq!(status, 201, "{proposed}");
    assert_eq!(proposed["status"], "pending_approval", "{proposed}");
    assert!(proposed["approved_by"].is_null(), "{proposed}");
    let approve = format!("/v1/ads/posts/{}/approve", proposed["id"].as_str().unwrap());
    let (status, e) = s.call(M::POST, &approve, Some(member), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("auth.role_insufficient")), "{e}");
    let (status, approved) = s.call(M::POST, &approve, Some(&token), None).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("scheduled")), "{approved}");
    assert!(approved["approved_by"].as_str().is_some_and(|u| u.starts_with("usr_")), "{approved}");
    assert_eq!(s.count(POSTS).await, 2);
}

#[tokio::test]
async fn bad_posts_are_refused_with_localized_errors_and_nothing_stored() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let instagram = |variant: Value| json!({"targets": [{"connection_id": conn["id"], "account": "local_ig_1", "variant": variant}]});

    // Platform limits, checked by the service; the owners' saved languages answer.
    let caption = "a".repeat(2_300);
    for (lang, words) in [("es", "supera los"), ("ar", "أطول من")] {
        let owner = s.owner(lang).await;
        let own = local_connection(&s, &owner).await;
        let body = json!({"targets": [{"connection_id": own["id"], "account": "local_ig_1", "variant": {"caption": caption}}]});
        let (status, e) = create(&s, &owner, lang, body).await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.text_too_long")), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(words) && message.contains("2200"), "{lang}: {message}");
    }
    let media = json!({"url": "https://cdn.example.com/a.jpg", "kind": "image", "content_type": "image/jpeg", "bytes": 1000, "width": 1080, "height": 1080});
    let eleven = vec![media; 11];
    let (status, e) = create(&s, &token, "en", instagram(json!({"format": "carousel", "media": eleven}))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_media_count")), "{e}");
    let (status, e) = create(&s, &token, "en", instagram(json!({"format": "reel", "share_to_feed": "yes"}))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("request.invalid_body")), "{e}");
    let unknown = json!({"targets": [{"connection_id": conn["id"], "account": "nobody"}]});
    let (status, e) = create(&s, &token, "en", unknown).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.account_unknown")), "{e}");

    // Refused by the gateway before the service: shape, syntax, size, time, token.
    let (status, e) = create(&s, &token, "es", json!({"targets": 5})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("request.invalid_body")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("targets"), "names the field: {e}");
    let mut extra = page_post(&conn, "x");
    extra["colour"] = json!("red");
    let (status, e) = create(&s, &token, "en", extra).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("request.invalid_body")), "{e}");
    let (status, e) = raw(&s, Some(&token), r#"{"targets": [{"connection_id": "#.into()).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("request.malformed_json")), "{e}");
    let (status, e) = raw(&s, Some(&token), format!(r#"{{"text": "{}", "targets": []}}"#, "a".repeat(1_100_000))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (413, Some("request.body_too_large")), "{e}");
    let mut past = page_post(&conn, "x");
    past["scheduled_at"] = json!("tomorrow at nine");
    let (status, e) = create(&s, &token, "en", past).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_invalid")), "{e}");
    let (status, e) = raw(&s, None, page_post(&conn, "x").to_string()).await;
    assert_eq!((status, e["error"]["code"].as_str()), (401, Some("auth.unauthenticated")), "{e}");
    // A real header and claims under another token's signature.
    let other = s.owner("en").await;
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], parts[1], other.rsplit('.').next().unwrap());
    let (status, e) = raw(&s, Some(&forged), page_post(&conn, "x").to_string()).await;
    assert_eq!(status, 401, "{e}");
    let expired = expired_copy(&s, &token).await;
    let (status, e) = raw(&s, Some(&expired), page_post(&conn, "x").to_string()).await;
    assert_eq!((status, e["error"]["code"].as_str()), (401, Some("auth.token_expired")), "{e}");
    assert_eq!(s.count(POSTS).await, 0, "nothing refused was stored");

    // Another workspace's post is not found; the calendar's range is bounded.
    let (status, p) = create(&s, &token, "en", page_post(&conn, "Mine")).await;
    assert_eq!(status, 201, "{p}");
    let (status, e) =
        s.call_in(M::GET, &format!("/v1/ads/posts/{}", p["id"].as_str().unwrap()), Some(&other), "en", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("ads.post_not_found")), "{e}");
    let (status, e) = s
        .call_in(M::POST, &format!("/v1/ads/posts/{}/cancel", p["id"].as_str().unwrap()), Some(&other), "en", None)
        .await;
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("ads.post_not_found")), "{e}");
    let range = format!("/v1/ads/calendar?from={}&to={}", urlencode(&at(0)), urlencode(&at(93)));
    let (status, e) = s.call_in(M::GET, &range, Some(&token), "en", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.calendar_range_invalid")), "{e}");
    let (status, e) = s.call_in(M::GET, "/v1/ads/calendar?from=yesterday&to=today", Some(&token), "en", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.calendar_range_invalid")), "{e}");
    assert_eq!(s.count(POSTS).await, 1);
}

/// RFC 3339 in a query: its `+` would read as a space.
fn urlencode(t: &str) -> String {
    t.replace('+', "%2B")
}

#[tokio::test]
async fn a_youtube_release_time_goes_through_and_misplaced_ones_are_refused() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("es").await;
    let conn = local_connection(&s, &token).await;
    let video = |publish_at: &str| {
        json!({"scheduled_at": at(1), "targets": [{"connection_id": conn["id"], "account": "local_channel_1",
            "variant": {"format": "video", "title": "Premiere", "publish_at": publish_at,
                "media": [{"url": "https://cdn.example.com/v.mp4", "kind": "video", "content_type": "video/mp4",
                    "bytes": 5_000_000, "width": 1920, "height": 1080, "duration_secs": 42.0}]}}]})
    };
    let release = at(3);
    let (status, p) = create(&s, &token, "es", video(&release)).await;
    assert_eq!(status, 201, "{p}");
    let shown = p["targets"][0]["variant"]["publish_at"].as_str().expect("shown with the variant");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(shown).unwrap().timestamp(),
        chrono::DateTime::parse_from_rfc3339(&release).unwrap().timestamp()
    );

    // Not a time: the gateway names the field.
    let (status, e) = create(&s, &token, "es", video("el martes")).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_invalid")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("publish_at"), "{e}");
    // Before the post goes out, or on a platform that cannot release later: the service refuses,
    // in the caller's language, naming the field.
    let (status, e) = create(&s, &token, "es", video(&at(0))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_publish_at_time")), "{e}");
    let page = json!({"text": "x", "targets": [{"connection_id": conn["id"], "account": "local_page_1",
        "variant": {"publish_at": release}}]});
    let (status, e) = create(&s, &token, "es", page).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_publish_at_unsupported")), "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("publish_at") && message.contains("no admite"), "{message}");
    assert_eq!(s.count(POSTS).await, 1);
}
