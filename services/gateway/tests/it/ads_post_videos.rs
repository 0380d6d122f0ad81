//! Posts that name a video of the video service (`"video_id": "vid_…"`), across the real auth,
//! subscriptions, video and ads services: the video's own facts are what the platforms' limits
//! are checked against; another workspace's video, an unknown one or one still rendering is
//! refused naming the field; and a video deleted before the post is due fails the post at publish
//! time with that reason instead of sending a dead link.

use std::time::Duration;

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::ads::local_connection;
use crate::auth::{Services, Stack, stack_of};

/// About ten seconds of speech: longer than TikTok's and Instagram's 3-second minimum.
const SCRIPT: &str = "Winter coats are here. Warm, light and made to last, with free returns all season long. \
    Visit our shop today and find the one that fits you best.";

async fn start_video(s: &Stack, token: &str) -> String {
    let body = json!({"script": SCRIPT, "avatar_url": "catalogue:alice", "voice_id": "local-female",
        "language": "en", "aspect_ratio": "9:16", "title": "Coats"});
    let (status, v) = s.call(M::POST, "/v1/videos", Some(token), Some(body)).await;
    assert!(status == 201 || status == 202, "{status} {v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn wait_video(s: &Stack, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let (status, v) = s.call(M::GET, &format!("/v1/videos/{id}"), Some(token), None).await;
        assert_eq!(status, 200, "{v}");
        match v["status"].as_str() {
            Some("done") => return v,
            Some("failed" | "canceled") => panic!("the local render did not finish: {v}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the local render took over a minute");
}

fn tiktok_post(conn: &Value, video: &str, scheduled_at: Option<String>) -> Value {
    let mut p = json!({"text": "Coats are in",
        "targets": [{"connection_id": conn["id"], "account": "local_creator_1",
            "variant": {"format": "video", "media": [{"video_id": video}]}}]});
    if let Some(at) = scheduled_at {
        p["scheduled_at"] = json!(at);
    }
    p
}

async fn wait_target(s: &Stack, token: &str, post: &str, wanted: &str) -> Value {
    for _ in 0..300 {
        let (status, p) = s.call(M::GET, &format!("/v1/ads/posts/{post}"), Some(token), None).await;
        assert_eq!(status, 200, "{p}");
        let t = &p["targets"][0];
        if t["status"] == wanted {
            return t.clone();
        }
        assert!(t["status"] != "failed" && t["status"] != "published", "ended {}: {p}", t["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the post did not become {wanted}");
}

#[tokio::test]
async fn posts_take_the_video_services_videos_by_reference() {
    let s = stack_of(Services { billing: true, ads: true, video: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let video_id = start_video(&s, &token).await;
    let video = wait_video(&s, &token, &video_id).await;

    // The limits are checked against the video's measured facts; nothing declared is needed.
    let (status, p) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(tiktok_post(&conn, &video_id, None))).await;
    assert_eq!(status, 201, "{p}");
    let media = &p["targets"][0]["variant"]["media"][0];
    assert_eq!(media["video_id"], video_id.as_str(), "{p}");
    assert_eq!((media["kind"].as_str(), media["content_type"].as_str()), (Some("video"), Some("video/mp4")), "{p}");
    assert_eq!(media["bytes"].as_u64(), video["size_bytes"].as_u64(), "{p} {video}");
    assert_eq!((media["width"].as_u64(), media["height"].as_u64()), (Some(720), Some(1280)), "{p}");
    assert!((media["duration_secs"].as_f64().unwrap() - video["duration_seconds"].as_f64().unwrap()).abs() < 0.01);
    assert_eq!(media["url"], "", "the link is made at publish time, never stored: {p}");
    // What a caller declares about a referenced video is replaced by what the video is.
    let mut lying = tiktok_post(&conn, &video_id, None);
    lying["targets"][0]["variant"]["media"][0]["duration_secs"] = json!(1.0);
    let (status, p2) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(lying)).await;
    assert_eq!(status, 201, "{p2}");
    assert_eq!(p2["targets"][0]["variant"]["media"][0]["duration_secs"], media["duration_secs"], "{p2}");
    let published = wait_target(&s, &token, p["id"].as_str().unwrap(), "published").await;
    assert_eq!(published["provider"], "local", "{published}");

    // Refused at scheduling, localized and naming the field, storing nothing: an unknown video,
    // another workspace's video, a URL and a reference at once, a video still rendering.
    const POSTS: &str = "SELECT count(*) FROM ads.social_posts";
    let before = s.count(POSTS).await;
    // Another workspace (its owner reads Spanish): neither an unknown video nor the first
    // workspace's video.
    let other = s.owner("es").await;
    let other_conn = local_connection(&s, &other).await;
    for unknown in ["vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "not-an-id", video_id.as_str()] {
        let (status, e) =
            s.call(M::POST, "/v1/ads/posts", Some(&other), Some(tiktok_post(&other_conn, unknown, None))).await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_media_not_found")), "{unknown}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains("media[0]") && message.contains("espacio de trabajo"), "{e}");
    }

    let mut both = tiktok_post(&conn, &video_id, None);
    both["targets"][0]["variant"]["media"][0]["url"] = json!("https://cdn.example.com/v.mp4");
    let (status, e) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(both)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_invalid")), "{e}");

    let rendering = start_video(&s, &token).await;
    let (status, e) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(tiktok_post(&conn, &rendering, None))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_media_not_ready")), "{e}");
    assert_eq!(s.count(POSTS).await, before, "nothing stored");

    // Deleted after scheduling: the post fails at its time with that reason, nothing is sent.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let (status, later) =
        s.call(M::POST, "/v1/ads/posts", Some(&token), Some(tiktok_post(&conn, &video_id, Some(tomorrow)))).await;
    assert_eq!(status, 201, "{later}");
    let (status, gone) = s.call(M::DELETE, &format!("/v1/videos/{video_id}"), Some(&token), None).await;
    assert!(status == 204 || status == 200, "{status} {gone}");
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let id = later["id"].as_str().unwrap();
    let (status, moved) = s
        .call(M::POST, &format!("/v1/ads/posts/{id}/reschedule"), Some(&token), Some(json!({"scheduled_at": soon})))
        .await;
    assert_eq!(status, 200, "{moved}");
    let failed = wait_target(&s, &token, id, "failed").await;
    assert_eq!(failed["error_code"], "ads.post_media_not_found", "{failed}");
}
