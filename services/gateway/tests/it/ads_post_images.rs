//! Posts that name an image of the content service (`"image_id": "img_…"`), across the real
//! auth, subscriptions, content and ads services: a local ad image (a JPEG) is imported into the
//! workspace's media library once, however many posts name it, and the posts name that item and
//! publish with it; another workspace's image is refused in the caller's language with nothing
//! stored, and a hero (an SVG placeholder) is refused as a type no platform takes.

use std::time::Duration;

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::ads::local_connection;
use crate::auth::{Services, Stack, stack_of};

const PROMPT: &str = "Winter coats on a snowy street";

async fn create_image(s: &Stack, token: &str, purpose: &str, prompt: &str) -> Value {
    let (status, img) =
        s.call(M::POST, "/v1/images", Some(token), Some(json!({"purpose": purpose, "prompt": prompt}))).await;
    assert_eq!(status, 201, "{img}");
    assert_eq!((img["status"].as_str(), img["provider"].as_str()), (Some("succeeded"), Some("local")), "{img}");
    img
}

/// A post on the sandbox's Instagram account (a feed image) and Facebook page, its media shared.
fn post(conn: &Value, image: &str, scheduled_at: Option<String>) -> Value {
    let mut p = json!({"text": "Coats are in", "media": [{"image_id": image}],
        "targets": [{"connection_id": conn["id"], "account": "local_ig_1", "variant": {"format": "feed"}},
                    {"connection_id": conn["id"], "account": "local_page_1"}]});
    if let Some(at) = scheduled_at {
        p["scheduled_at"] = json!(at);
    }
    p
}

async fn wait_published(s: &Stack, token: &str, post: &str) -> Value {
    for _ in 0..300 {
        let (status, p) = s.call(M::GET, &format!("/v1/ads/posts/{post}"), Some(token), None).await;
        assert_eq!(status, 200, "{p}");
        let targets = p["targets"].as_array().unwrap();
        if targets.iter().all(|t| t["status"] == "published") {
            return p;
        }
        assert!(targets.iter().all(|t| t["status"] != "failed"), "{p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the post was not published");
}

async fn library(s: &Stack, token: &str) -> Vec<Value> {
    let (status, list) = s.call(M::GET, "/v1/ads/media", Some(token), None).await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

const ITEMS: &str = "SELECT count(*) FROM ads.post_media";
const POSTS: &str = "SELECT count(*) FROM ads.social_posts";

#[tokio::test]
async fn ads_posts_take_content_images_imported_once_into_the_media_library() {
    let s = stack_of(Services { billing: true, content: true, ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let img = create_image(&s, &token, "ad", PROMPT).await;
    assert_eq!(img["content_type"], "image/jpeg", "{img}");
    let image_id = img["id"].as_str().unwrap();

    let (status, p) = s.call(M::POST, "/v1/ads/posts", Some(&token), Some(post(&conn, image_id, None))).await;
    assert_eq!(status, 201, "{p}");
    let items = library(&s, &token).await;
    assert_eq!(items.len(), 1, "imported into the library: {items:?}");
    let item = &items[0];
    assert_eq!((item["name"].as_str(), item["content_type"].as_str()), (Some(PROMPT), Some("image/jpeg")), "{item}");
    assert_eq!((item["width"].as_u64(), item["height"].as_u64()), (img["width"].as_u64(), img["height"].as_u64()));
    assert_eq!(item["bytes"].as_u64(), img["size_bytes"].as_u64(), "{item} {img}");
    // The post names the library item from now on (its shared media and each target's).
    for media in
        [&p["body"]["media"][0], &p["targets"][0]["variant"]["media"][0], &p["targets"][1]["variant"]["media"][0]]
    {
        assert_eq!(media["media_id"], item["id"], "{p}");
        assert!(media.get("image_id").is_none() && media["url"] == "", "{p}");
        assert_eq!((media["kind"].as_str(), media["content_type"].as_str()), (Some("image"), Some("image/jpeg")));
    }
    let published = wait_published(&s, &token, p["id"].as_str().unwrap()).await;
    let platforms: Vec<_> = published["targets"].as_array().unwrap().iter().map(|t| t["platform"].clone()).collect();
    assert_eq!(platforms, vec![json!("instagram"), json!("facebook")], "{published}");
    assert!(published["targets"].as_array().unwrap().iter().all(|t| t["provider"] == "local"), "{published}");
    // What the platforms fetch at the item's link is the image's JPEG.
    let link = item["url"].as_str().unwrap();
    let path = format!("/v1/media/posts/{}", link.rsplit('/').next().unwrap());
    let resp = crate::support::client().get(format!("{}{path}", s.base)).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers()["content-type"].to_str().unwrap()), (200, "image/jpeg"));
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.len() as u64 == item["bytes"].as_u64().unwrap());

    // A second post naming the image reuses the item.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let (status, p2) =
        s.call(M::POST, "/v1/ads/posts", Some(&token), Some(post(&conn, image_id, Some(tomorrow)))).await;
    assert_eq!(status, 201, "{p2}");
    assert_eq!(p2["targets"][0]["variant"]["media"][0]["media_id"], item["id"], "{p2}");
    assert_eq!(library(&s, &token).await.len(), 1, "one item however many posts name the image");

    // Posts written side by side that name a new image end with one item too.
    let other_img = create_image(&s, &token, "ad", "Scarves in the wind").await;
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let body = post(&conn, other_img["id"].as_str().unwrap(), Some(later));
    let (a, b) = tokio::join!(
        s.call(M::POST, "/v1/ads/posts", Some(&token), Some(body.clone())),
        s.call(M::POST, "/v1/ads/posts", Some(&token), Some(body)),
    );
    assert_eq!((a.0, b.0), (201, 201), "{} {}", a.1, b.1);
    assert_eq!(a.1["body"]["media"][0]["media_id"], b.1["body"]["media"][0]["media_id"], "{} {}", a.1, b.1);
    assert_eq!(library(&s, &token).await.len(), 2);
    assert_eq!(s.count(ITEMS).await, 2, "no second copy of an image, even deleted");
}

#[tokio::test]
async fn other_workspaces_images_and_hero_svgs_are_refused_and_nothing_is_stored() {
    let s = stack_of(Services { billing: true, content: true, ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let img = create_image(&s, &token, "ad", PROMPT).await;
    let image_id = img["id"].as_str().unwrap();

    // Another workspace names the first one's image, an unknown one, a malformed one.
    let other = s.owner("es").await;
    let other_conn = local_connection(&s, &other).await;
    let (items, posts) = (s.count(ITEMS).await, s.count(POSTS).await);
    for unknown in [image_id, "img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "not-an-id"] {
        let (status, e) =
            s.call_in(M::POST, "/v1/ads/posts", Some(&other), "es", Some(post(&other_conn, unknown, None))).await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_media_not_found")), "{unknown}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains("media[0]") && message.contains("espacio de trabajo"), "{e}");
    }
    assert_eq!((s.count(ITEMS).await, s.count(POSTS).await), (items, posts), "nothing stored");

    // A hero is an SVG placeholder: a type no platform takes, and nothing is imported.
    let hero = create_image(&s, &token, "hero", "A shop front").await;
    assert_eq!(hero["content_type"], "image/svg+xml", "{hero}");
    let (status, e) =
        s.call(M::POST, "/v1/ads/posts", Some(&token), Some(post(&conn, hero["id"].as_str().unwrap(), None))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.post_media_type")), "{e}");
    assert_eq!((s.count(ITEMS).await, s.count(POSTS).await), (items, posts), "nothing stored");
}
