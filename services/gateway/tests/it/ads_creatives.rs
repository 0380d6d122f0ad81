//! Campaign builds over REST whose creative is a content image (`"image_id": "img_…"`), across
//! the real auth, subscriptions, content and ads services in the sandbox: the build records its
//! `media` step (labelled local) before the campaign, and another workspace's image is not found,
//! in the caller's language, with no build made.

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::ads::local_connection;
use crate::auth::{Services, stack_of};

fn build(conn: &Value, key: &str, image: &str) -> Value {
    json!({"request_key": key, "connection_id": conn["id"], "ad_account": "act_local_1", "name": "Winter coats",
        "objective": "OUTCOME_TRAFFIC", "optimization_goal": "LINK_CLICKS", "daily_budget": 2500, "countries": ["US"],
        "page_id": "local_page_1", "link": "https://shop.example.com/winter", "primary_text": "Warm coats",
        "image_id": image})
}

#[tokio::test]
async fn a_sandbox_build_takes_a_content_image_and_another_workspaces_is_not_found() {
    let s = stack_of(Services { billing: true, content: true, ads: true, ..Services::default() }).await;
    let token = s.owner("en").await;
    let conn = local_connection(&s, &token).await;
    let (status, img) =
        s.call(M::POST, "/v1/images", Some(&token), Some(json!({"purpose": "ad", "prompt": "Winter coats"}))).await;
    assert_eq!(status, 201, "{img}");
    let image = img["id"].as_str().unwrap().to_owned();

    let (status, b) = s.call(M::POST, "/v1/ads/builds", Some(&token), Some(build(&conn, "c-1", &image))).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["status"], "built", "{b}");
    assert_eq!(b["steps"][0]["step"], "media", "{b}");
    assert!(b["steps"][0]["platform_id"].as_str().unwrap().contains("local_image_"), "{b}");
    assert_eq!(b["steps"][1]["step"], "campaign", "{b}");

    for lang in ["es", "ar"] {
        let other = s.owner(lang).await;
        let theirs = local_connection(&s, &other).await;
        let (status, e) =
            s.call_in(M::POST, "/v1/ads/builds", Some(&other), lang, Some(build(&theirs, "c-2", &image))).await;
        assert_eq!((status, e["error"]["code"].as_str()), (404, Some("ads.media_not_found")), "{e}");
        let want = if lang == "es" { "no existe" } else { "غير موجود" };
        assert!(e["error"]["message"].as_str().unwrap().contains(want), "{e}");
    }
    assert_eq!(s.count("SELECT count(*) FROM ads.ad_builds").await, 1);
}
