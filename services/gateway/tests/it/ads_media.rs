//! The media library of posts through the gateway: an upload streamed as the raw body (over the
//! gateway's usual 1 MiB body limit), measured by the ads service, refused with 415 and 413 in
//! the caller's language, private to its workspace, served anonymously at its signed link with
//! byte ranges, and kept while a scheduled post names it.

use nexus_ads::domain::media::samples;
use reqwest::Method as M;
use serde_json::{Value, json};

use crate::ads::local_connection;
use crate::auth::{Services, Stack, stack_of};

fn code(e: &Value) -> Option<&str> {
    e["error"]["code"].as_str()
}

async fn upload(s: &Stack, token: &str, name: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    s.post_raw(&format!("/v1/ads/media?name={name}"), Some(token), content_type, "es", body).await
}

/// The link's path on this gateway (the configured base URL is the public one).
fn link_path(url: &str) -> String {
    format!("/v1/media/posts/{}", url.rsplit('/').next().unwrap())
}

/// An anonymous read of a link: status, headers and bytes.
async fn read(s: &Stack, path: &str, range: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut r = crate::support::client().get(format!("{}{path}", s.base));
    if let Some(range) = range {
        r = r.header("range", range);
    }
    let resp = r.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_video_over_the_usual_body_limit_uploads_measured_and_serves_ranges_at_its_link() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("es").await;
    // 3 MiB: past the gateway's global body limit, which this route does not have.
    let movie = samples::mp4(1080, 1920, 14, 3 * 1024 * 1024, false, false);
    let (status, item) = upload(&s, &token, "Teaser", "video/mp4", movie.clone()).await;
    assert_eq!(status, 201, "{item}");
    assert_eq!(
        (item["kind"].as_str(), item["width"].as_u64(), item["height"].as_u64()),
        (Some("video"), Some(1080), Some(1920))
    );
    assert_eq!((item["duration_secs"].as_f64(), item["bytes"].as_u64()), (Some(14.0), Some(movie.len() as u64)));
    let id = item["id"].as_str().unwrap();

    let (status, list) = s.call(M::GET, "/v1/ads/media", Some(&token), None).await;
    assert_eq!((status, list["items"][0]["id"].as_str()), (200, Some(id)));
    let (status, got) = s.call(M::GET, &format!("/v1/ads/media/{id}"), Some(&token), None).await;
    assert_eq!((status, got["sha256"].as_str()), (200, item["sha256"].as_str()));

    // No token: the link is the key.
    let path = link_path(item["url"].as_str().unwrap());
    let (status, headers, bytes) = read(&s, &path, None).await;
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "video/mp4"));
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(bytes == movie, "the whole file");
    let (status, headers, part) = read(&s, &path, Some("bytes=100-199")).await;
    assert_eq!(
        (status, headers["content-range"].to_str().unwrap()),
        (206, format!("bytes 100-199/{}", movie.len()).as_str())
    );
    assert_eq!(part, movie[100..200]);
    let (status, headers, _) = read(&s, &path, Some(&format!("bytes={}-", movie.len()))).await;
    assert_eq!(
        (status, headers["content-range"].to_str().unwrap()),
        (416, format!("bytes */{}", movie.len()).as_str())
    );

    // A tampered or unknown token is 404, never a hint of what exists.
    let mut tampered = path.clone();
    let at = "/v1/media/posts/media_".len();
    tampered.replace_range(at..=at, if &tampered[at..=at] == "a" { "b" } else { "a" });
    for bad in [tampered.as_str(), "/v1/media/posts/junk"] {
        let (status, _, body) = read(&s, bad, None).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, code(&body)), (404, Some("ads.media_link_invalid")), "{bad}");
    }

    // Deleted: gone from the library and from its link.
    let (status, _) = s.call(M::DELETE, &format!("/v1/ads/media/{id}"), Some(&token), None).await;
    assert_eq!(status, 204);
    assert_eq!(read(&s, &path, None).await.0, 404);
    assert_eq!(s.call(M::GET, &format!("/v1/ads/media/{id}"), Some(&token), None).await.0, 404);
}

#[tokio::test]
async fn wrong_types_and_oversize_files_are_refused_in_the_callers_language_and_other_workspaces_see_nothing() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("es").await;
    let png = samples::png(1080, 1080);
    let (status, e) = upload(&s, &token, "Logo", "image/jpeg", png.clone()).await;
    assert_eq!((status, code(&e)), (415, Some("ads.media_unsupported_type")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().starts_with("El archivo debe ser"), "{e}");
    let (status, e) = upload(&s, &token, "Notes", "image/png", b"just some text, not a picture".to_vec()).await;
    assert_eq!((status, code(&e)), (415, Some("ads.media_unsupported_type")));
    // 9 MiB of "PNG": over the 8 MiB picture limit.
    let mut big = png.clone();
    big.resize(9 * 1024 * 1024, 0);
    let (status, e) = upload(&s, &token, "Huge", "image/png", big).await;
    assert_eq!((status, code(&e)), (413, Some("ads.media_too_large")), "{e}");
    assert_eq!(s.count("SELECT count(*) FROM ads.post_media").await, 0);

    let (status, item) = upload(&s, &token, "Logo", "image/png", png).await;
    assert_eq!(status, 201, "{item}");
    let id = item["id"].as_str().unwrap();
    let other = s.owner("en").await;
    let (status, e) = s.call(M::GET, &format!("/v1/ads/media/{id}"), Some(&other), None).await;
    assert_eq!((status, code(&e)), (404, Some("ads.media_not_found")));
    let (status, e) = s.call(M::DELETE, &format!("/v1/ads/media/{id}"), Some(&other), None).await;
    assert_eq!((status, code(&e)), (404, Some("ads.media_not_found")));
    let (status, list) = s.call(M::GET, "/v1/ads/media", Some(&other), None).await;
    assert_eq!((status, list["items"].as_array().map(Vec::len)), (200, Some(0)));
    // Uploading needs a caller.
    assert_eq!(s.post_raw("/v1/ads/media?name=x", None, "image/png", "", samples::png(2, 2)).await.0, 401);
}

#[tokio::test]
async fn an_item_a_scheduled_post_names_cannot_be_deleted() {
    let s = stack_of(Services { ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let (status, item) = upload(&s, &token, "Cover", "image/png", samples::png(1080, 1080)).await;
    assert_eq!(status, 201, "{item}");
    let id = item["id"].as_str().unwrap();
    let media = json!({"url": "https://cdn.example.com/cover.jpg", "kind": "image", "content_type": "image/jpeg",
        "bytes": 40_000, "width": 1080, "height": 1080});
    let at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let post = json!({"text": "Launch", "media": [media], "scheduled_at": at,
        "targets": [{"connection_id": conn["id"], "account": "local_ig_1"}]});
    let (status, created) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(post)).await;
    assert_eq!(status, 201, "{created}");
    // The post names the item as the scheduler stores it (the posts API takes `media_id` in a
    // change of its own).
    sqlx::query(
        "UPDATE ads.social_post_targets SET variant = jsonb_set(variant, '{media,0,media_id}', to_jsonb($1::text))",
    )
    .bind(id)
    .execute(&s.db.admin_pool().await)
    .await
    .unwrap();
    let (status, e) = s.call(M::DELETE, &format!("/v1/ads/media/{id}"), Some(&token), None).await;
    assert_eq!((status, code(&e)), (409, Some("ads.media_in_use")), "{e}");
    assert_eq!(s.call(M::GET, &format!("/v1/ads/media/{id}"), Some(&token), None).await.0, 200, "kept");
}
