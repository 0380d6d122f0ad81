//! The social scheduler through the gateway on a local sandbox connection: posts imported from a
//! CSV file (a dry run, then for real, refused rows named by line in the caller's language), the
//! posting queue's slots and a post that takes one, and iCal feeds read anonymously at their
//! address until their owner revokes them.

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::ads::local_connection;
use crate::auth::{Services, Stack, stack_of};

const POSTS: &str = "SELECT count(*) FROM ads.social_posts";

fn at(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339()
}

/// `body` posted to the import as `content_type`, in Spanish, with an optional bearer.
async fn import(
    s: &Stack,
    token: Option<&str>,
    query: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    s.post_raw(&format!("/v1/ads/posts/import{query}"), token, content_type, "es", body).await
}

/// A feed's address read without any token: status, content type, cache control and the text.
async fn read_feed(s: &Stack, url: &str) -> (u16, String, String, String) {
    let resp = crate::support::client().get(format!("{}{url}", s.base)).send().await.unwrap();
    let header = |n: &str| resp.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    (resp.status().as_u16(), content_type, cache, resp.text().await.unwrap())
}

fn code(e: &Value) -> Option<&str> {
    e["error"]["code"].as_str()
}

#[tokio::test]
async fn posts_are_imported_from_csv_after_a_dry_run_with_refused_rows_named_by_line() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("es").await;
    let conn = local_connection(&s, &token).await;
    let c = conn["id"].as_str().unwrap();
    let csv = format!(
        "connection_id,account,scheduled_at,time_zone,format,caption,hashtags\n\
         {c},local_page_1,{},Europe/Madrid,feed,Coats from a file,\"winter, sale\"\n\
         {c},nobody,{},,feed,Lost,\n\
         {c},local_page_1,,,reels,Wrong format,\n\
         {c},local_page_1,{},,,Second from a file,\n",
        at(1),
        at(1),
        at(2)
    );

    let (status, dry) = import(&s, Some(&token), "?dry_run=true", "text/csv", csv.clone()).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!((dry["rows"].as_u64(), dry["created"].as_u64()), (Some(4), Some(2)), "{dry}");
    assert_eq!(dry["post_ids"], json!([]), "a dry run creates nothing: {dry}");
    let errors = dry["errors"].as_array().unwrap();
    assert_eq!(errors.iter().map(|e| e["line"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 4], "{dry}");
    assert_eq!(errors[0]["code"], "ads.account_unknown", "{dry}");
    assert!(errors[0]["message"].as_str().unwrap().contains("no es una cuenta"), "in Spanish: {dry}");
    assert_eq!((errors[1]["field"].as_str(), errors[1]["code"].as_str()), (Some("format"), Some("ads.post_invalid")));
    assert!(errors[1]["message"].as_str().unwrap().contains("El campo \"format\""), "{dry}");
    assert_eq!(s.count(POSTS).await, 0);

    let (status, done) = import(&s, Some(&token), "?dry_run=false", "text/csv; charset=utf-8", csv.clone()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!((done["created"].as_u64(), done["errors"].as_array().unwrap().len()), (Some(2), 2), "{done}");
    let ids = done["post_ids"].as_array().unwrap();
    assert!(ids.len() == 2 && ids.iter().all(|i| i.as_str().unwrap().starts_with("post_")), "{done}");
    let (status, p) = s.call(M::GET, &format!("/v1/ads/posts/{}", ids[0].as_str().unwrap()), Some(&token), None).await;
    assert_eq!((status, p["status"].as_str()), (200, Some("scheduled")), "{p}");
    assert_eq!(p["targets"][0]["variant"]["hashtags"], json!(["winter", "sale"]), "{p}");
    // The same file again creates nothing twice.
    let (status, again) = import(&s, Some(&token), "", "text/csv", csv).await;
    assert_eq!((status, &again["post_ids"]), (200, &done["post_ids"]), "{again}");
    assert_eq!(s.count(POSTS).await, 2);

    // Refused whole: an unknown column, a body that is not CSV, no token.
    let (status, e) =
        import(&s, Some(&token), "", "text/csv", format!("connection_id,account,colour\n{c},local_page_1,red\n")).await;
    assert_eq!((status, code(&e)), (400, Some("ads.import_column_unknown")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("\"colour\""), "{e}");
    let (status, e) = import(&s, Some(&token), "", "application/json", json!({"csv": "a,b"}).to_string()).await;
    assert_eq!((status, code(&e)), (415, Some("request.unsupported_media_type")), "{e}");
    let (status, e) = import(&s, Some(&token), "", "text/csv; charset=latin1", "connection_id,account\n").await;
    assert_eq!(status, 415, "{e}");
    let mut not_utf8 = b"connection_id,account\n".to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let (status, e) = import(&s, Some(&token), "", "text/csv", not_utf8).await;
    assert_eq!((status, code(&e)), (400, Some("request.invalid")), "{e}");
    // Just over the service's 2 MB: its own answer; far over: the gateway's.
    let (status, e) = import(&s, Some(&token), "", "text/csv", "x".repeat(2 * 1024 * 1024 + 10)).await;
    assert_eq!((status, code(&e)), (400, Some("ads.import_too_large")), "{e}");
    let (status, e) = import(
        &s,
        Some(&token),
        "",
        "text/csv",
        "x".repeat(nexus_gateway::routes::ads_scheduler::IMPORT_BODY_LIMIT + 10_000),
    )
    .await;
    assert_eq!((status, code(&e)), (413, Some("request.body_too_large")), "{e}");
    let (status, e) = import(&s, None, "", "text/csv", "connection_id,account\n").await;
    assert_eq!((status, code(&e)), (401, Some("auth.unauthenticated")), "{e}");
    assert_eq!(s.count(POSTS).await, 2, "nothing refused was stored");
}

#[tokio::test]
async fn queue_slots_are_set_and_listed_and_a_queued_post_takes_one() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;

    let (status, none) = s.call(M::GET, "/v1/ads/queue/slots", Some(&token), None).await;
    assert_eq!((status, &none), (200, &json!({"slots": []})), "{none}");
    // Every day at 10:15 UTC, and Mondays 09:00 in Madrid.
    let mut wanted: Vec<Value> = (1..=7).map(|d| json!({"weekday": d, "time": "10:15", "time_zone": "UTC"})).collect();
    wanted.insert(1, json!({"weekday": 1, "time": "09:00", "time_zone": "Europe/Madrid"}));
    let (status, set) = s.call(M::PUT, "/v1/ads/queue/slots", Some(&token), Some(json!({"slots": wanted}))).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["slots"].as_array().unwrap().len(), 8, "{set}");
    let (status, listed) = s.call(M::GET, "/v1/ads/queue/slots", Some(&token), None).await;
    assert_eq!((status, &listed), (200, &set), "{listed}");
    assert!(
        listed["slots"]
            .as_array()
            .unwrap()
            .contains(&json!({"weekday": 1, "time": "09:00", "time_zone": "Europe/Madrid"}))
    );

    for (slot, field) in [
        (json!({"weekday": 8, "time": "10:00", "time_zone": "UTC"}), "slots[0].weekday"),
        (json!({"weekday": 2, "time": "25:00", "time_zone": "UTC"}), "slots[0].time"),
        (json!({"weekday": 2, "time": "10:00", "time_zone": "Mars/Olympus"}), "slots[0].time_zone"),
    ] {
        let (status, e) = s.call(M::PUT, "/v1/ads/queue/slots", Some(&token), Some(json!({"slots": [slot]}))).await;
        assert_eq!((status, code(&e)), (400, Some("ads.queue_slot_invalid")), "{e}");
        assert_eq!(e["error"]["fields"][0]["field"], field, "{e}");
    }
    let (status, e) =
        s.call(M::PUT, "/v1/ads/queue/slots", Some(&token), Some(json!({"slots": [{"weekday": 2}]}))).await;
    assert_eq!((status, code(&e)), (422, Some("request.invalid_body")), "{e}");
    let (_, kept) = s.call(M::GET, "/v1/ads/queue/slots", Some(&token), None).await;
    assert_eq!(kept, set, "a refused change keeps the slots");

    let post = |queue: bool, scheduled_at: Option<String>| {
        json!({"text": "From the queue", "queue": queue, "scheduled_at": scheduled_at,
            "targets": [{"connection_id": conn["id"], "account": "local_page_1"}]})
    };
    let (status, p) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(post(true, None))).await;
    assert_eq!((status, p["status"].as_str()), (201, Some("scheduled")), "{p}");
    let slot = chrono::DateTime::parse_from_rfc3339(p["scheduled_at"].as_str().unwrap()).unwrap();
    let now = chrono::Utc::now();
    assert!(slot > now && slot < now + chrono::Duration::days(8), "{p}");
    let madrid = slot.with_timezone(&chrono_tz::Europe::Madrid).format("%u %H:%M").to_string();
    assert!(slot.format("%H:%M").to_string() == "10:15" || madrid == "1 09:00", "a slot's time: {p}");
    let (status, next) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(post(true, None))).await;
    assert_eq!(status, 201, "{next}");
    assert_ne!(next["scheduled_at"], p["scheduled_at"], "the next free slot: {next}");
    let (status, e) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(post(true, Some(at(1))))).await;
    assert_eq!((status, code(&e)), (400, Some("ads.post_invalid")), "queue or a time, not both: {e}");
    let (status, e) = s.call(M::PUT, "/v1/ads/queue/slots", None, Some(json!({"slots": []}))).await;
    assert_eq!((status, code(&e)), (401, Some("auth.unauthenticated")), "{e}");
    let (status, e) = s.call(M::GET, "/v1/ads/queue/slots", None, None).await;
    assert_eq!((status, code(&e)), (401, Some("auth.unauthenticated")), "{e}");
}

#[tokio::test]
async fn calendar_feeds_are_read_anonymously_at_their_address_until_their_owner_revokes_them() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let body = json!({"text": "On the calendar", "scheduled_at": at(2),
        "targets": [{"connection_id": conn["id"], "account": "local_page_1"}]});
    let (status, post) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(body)).await;
    assert_eq!(status, 201, "{post}");

    let (status, created) =
        s.call(M::POST, "/v1/ads/calendar/feeds", Some(&token), Some(json!({"name": "Team calendar"}))).await;
    assert_eq!(status, 201, "{created}");
    let feed = &created["feed"];
    let id = feed["id"].as_str().unwrap();
    assert!(id.starts_with("feed_") && feed["revoked_at"].is_null() && feed["name"] == "Team calendar", "{created}");
    let url = created["url"].as_str().unwrap();
    assert!(url.starts_with("/ical/") && url.len() > 30, "{created}");

    let (status, content_type, cache, ics) = read_feed(&s, url).await;
    assert_eq!(status, 200, "{ics}");
    assert_eq!((content_type.as_str(), cache.as_str()), ("text/calendar; charset=utf-8", "private, max-age=300"));
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.contains("X-WR-CALNAME:Team calendar"), "{ics}");
    assert!(ics.contains(&format!("UID:{}@nexusone", post["id"].as_str().unwrap())), "{ics}");

    let (status, list) = s.call(M::GET, "/v1/ads/calendar/feeds", Some(&token), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["feeds"], json!([feed]), "the address is not listed: {list}");

    // Another workspace cannot revoke it; its owner can, and the address answers 404 at once.
    let revoke = format!("/v1/ads/calendar/feeds/{id}/revoke");
    let other = s.owner("en").await;
    let (status, e) = s.call(M::POST, &revoke, Some(&other), None).await;
    assert_eq!((status, code(&e)), (404, Some("ads.feed_not_found")), "{e}");
    assert_eq!(read_feed(&s, url).await.0, 200, "still live");
    let (status, revoked) = s.call(M::POST, &revoke, Some(&token), None).await;
    assert_eq!((status, &revoked["id"]), (200, &feed["id"]), "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let (status, e) = s.call_in(M::GET, url, None, "es", None).await;
    assert_eq!((status, code(&e)), (404, Some("ads.feed_not_found")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("revocado"), "the public 404 envelope: {e}");
    let (status, e) = s.call(M::GET, "/ical/not-a-feed-token", None, None).await;
    assert_eq!((status, code(&e)), (404, Some("ads.feed_not_found")), "{e}");
    // A caller's token does not matter on the public address.
    let (status, e) = s.call(M::GET, url, Some(&token), None).await;
    assert_eq!((status, code(&e)), (404, Some("ads.feed_not_found")), "{e}");

    for (method, path) in
        [(M::GET, "/v1/ads/calendar/feeds"), (M::POST, "/v1/ads/calendar/feeds"), (M::POST, revoke.as_str())]
    {
        let (status, e) = s.call(method.clone(), path, None, Some(json!({}))).await;
        assert_eq!((status, code(&e)), (401, Some("auth.unauthenticated")), "{method} {path}: {e}");
    }
}
