//! TikTok creators connected through Login Kit (provider `tiktok_creator`): their own token posts
//! organically, is renewed before it runs out (refresh tokens rotate, so renewals of one
//! connection take turns), and is revoked on disconnect.

use nexus_proto::nexus::ads::v1 as pb;
use nexus_testkit::tiktok_login::{TEST_CREATOR_CODE, TEST_OPEN_ID};
use serde_json::json;

use crate::posts::{create, get, mp4};
use crate::support::{Caller, Service, code};

async fn creator(s: &Service, admin: &Caller) -> pb::Connection {
    let started = s.begin(admin, "tiktok_creator").await;
    let url = reqwest::Url::parse(&started.authorize_url).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_key"], nexus_testkit::tiktok_login::TEST_CLIENT_KEY);
    assert_eq!(q["scope"], "user.info.basic,video.publish,video.upload");
    assert_eq!((q["response_type"].as_str(), q["state"].as_str()), ("code", started.state.as_str()));
    s.complete(admin, "tiktok_creator", TEST_CREATOR_CODE, &started.state).await.unwrap()
}

fn tiktok_post(conn: &str, title: &str) -> serde_json::Value {
    json!({"text": title, "targets": [{"connection_id": conn, "account": TEST_OPEN_ID,
        "variant": {"format": "video", "privacy": "SELF_ONLY", "media": [mp4("https://cdn.example.com/v.mp4", 30.0)]}}]})
}

#[tokio::test]
async fn a_creator_connected_through_login_kit_posts_with_their_own_token() {
    let s = Service::start_with(&[("NEXUS_POSTS__PROCESSING_POLL", "0s".into())]).await;
    let admin = s.admin();
    let conn = creator(&s, &admin).await;
    assert_eq!((conn.provider.as_str(), conn.status.as_str()), ("tiktok_creator", "active"));
    let account = &conn.accounts[0];
    assert_eq!((account.kind.as_str(), account.external_id.as_str()), ("creator", TEST_OPEN_ID));
    let expires = conn.token_expires_at.as_ref().unwrap().seconds - chrono::Utc::now().timestamp();
    assert!((7_000..=7_200).contains(&expires), "the token's own lifetime: {expires}");

    let post = create(&s, &admin, tiktok_post(&conn.id, "Made by the creator")).await.unwrap();
    for _ in 0..4 {
        s.app.publish_due().await.unwrap();
    }
    let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
    assert_eq!(t.status, "published", "{t:?}");
    assert_eq!(s.tiktok.post_count(), 1);

    // A wrong or replayed code connects nothing.
    let started = s.begin(&admin, "tiktok_creator").await;
    let e = s.complete(&admin, "tiktok_creator", "replayed-code", &started.state).await.unwrap_err();
    assert_eq!(code(&e), "ads.oauth_failed", "{e:?}");

    // Disconnecting revokes the grant at TikTok.
    s.client().await.disconnect(admin.req(pb::GetByIdRequest { id: conn.id.clone() })).await.unwrap();
    assert_eq!(s.tiktok.creator_token(), None, "revoked");
}

#[tokio::test]
async fn renewals_of_a_creators_rotating_token_take_turns_and_none_is_refused() {
    let s = Service::start().await;
    let admin = s.admin();
    let conn = creator(&s, &admin).await;
    // Both watchers find the token due for renewal at once; the second renews with the refresh
    // token the first stored, not the one the first already spent.
    s.exec("UPDATE ads.connections SET token_expires_at = now() + interval '1 minute'").await;
    let (a, b) = tokio::join!(s.app.watch_expiry(), s.app.watch_expiry());
    assert_eq!(a.unwrap().refreshed + b.unwrap().refreshed, 2);
    assert_eq!(s.tiktok.creator_refreshes(), 2);
    let got = s.client().await.get_connection(admin.req(pb::GetByIdRequest { id: conn.id.clone() })).await.unwrap();
    assert_eq!(got.into_inner().status, "active", "nothing refused, nothing reported expiring");
    let warned = s.scalar("SELECT count(*) FROM ads.connections WHERE status <> 'active'").await;
    assert_eq!(warned, 0);
}

#[tokio::test]
async fn a_tiktok_advertiser_cannot_be_posted_to_and_nothing_reaches_tiktok() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "tiktok").await;
    let business = s.complete(&admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, &started.state).await.unwrap();
    let post = json!({"text": "As the advertiser", "targets": [{"connection_id": business.id, "account": "7001",
        "variant": {"format": "video", "privacy": "SELF_ONLY", "media": [mp4("https://cdn.example.com/v.mp4", 30.0)]}}]});
    let e = create(&s, &admin, post).await.unwrap_err();
    assert_eq!(code(&e), "ads.account_cannot_post", "{e:?}");
    // Nothing stored, and TikTok was not asked anything about posting.
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_posts").await, 0);
    assert_eq!(s.tiktok.post_count(), 0);
    assert!(!s.tiktok.log().iter().any(|(p, _)| p.contains("post/publish")), "{:?}", s.tiktok.log());

    // The sandbox's creator posts; its advertiser does not.
    let local = s.connect_local(&admin).await;
    let to = |account: &str| {
        json!({"text": "Local", "targets": [{"connection_id": local.id, "account": account,
        "variant": {"format": "video", "privacy": "SELF_ONLY", "media": [mp4("https://cdn.example.com/v.mp4", 30.0)]}}]})
    };
    assert_eq!(code(&create(&s, &admin, to("local_adv_1")).await.unwrap_err()), "ads.account_cannot_post");
    create(&s, &admin, to("local_creator_1")).await.unwrap();
}
