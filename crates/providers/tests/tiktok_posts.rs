//! TikTok Content Posting client against the fake TikTok (real HTTP on 127.0.0.1, port 0), with
//! the creator token its Login Kit flow hands out.

use std::time::Duration;

use nexus_providers::marketing::{Engagement, PlatformError};
use nexus_providers::tiktok_login::{TikTokLoginClient, TikTokLoginConfig};
use nexus_providers::tiktok_posts::{
    INVALID_PARAMS, PublishState, SPAM_RISK_WAIT, TikTokPost, TikTokPostClient, TikTokPostConfig, UNKNOWN_CODE,
    VIDEO_NOT_FOUND,
};
use nexus_testkit::tiktok::FakeTikTok;
use nexus_testkit::tiktok_login::{TEST_CLIENT_KEY, TEST_CLIENT_SECRET, TEST_CREATOR_CODE};
use nexus_testkit::tiktok_posts::LoseMode;

struct Setup {
    fake: FakeTikTok,
    client: TikTokPostClient,
    token: String,
}

async fn setup_with(timeout: Duration) -> Setup {
    nexus_testkit::init_tracing();
    let fake = FakeTikTok::start().await;
    let http = reqwest::Client::new();
    // Posting takes a creator's own Login Kit token (the Business token is refused).
    let login = TikTokLoginConfig {
        client_key: TEST_CLIENT_KEY.into(),
        client_secret: TEST_CLIENT_SECRET.into(),
        authorize_url: "https://www.tiktok.com/v2/auth/authorize/".into(),
        api_url: fake.base_url.clone(),
        timeout: Duration::from_secs(5),
        attempts: 1,
    };
    let token = TikTokLoginClient::new(login, http.clone())
        .exchange_code(TEST_CREATOR_CODE, "https://app.example.com/connections/callback")
        .await
        .unwrap()
        .access_token;
    let cfg = TikTokPostConfig { base_url: fake.base_url.clone(), timeout, attempts: 3 };
    Setup { client: TikTokPostClient::new(cfg, http), fake, token }
}

async fn setup() -> Setup {
    setup_with(Duration::from_secs(5)).await
}

fn post(title: &str) -> TikTokPost {
    TikTokPost {
        title: title.into(),
        privacy_level: "PUBLIC_TO_EVERYONE".into(),
        disable_comment: false,
        disable_duet: true,
        disable_stitch: false,
        video_url: "https://cdn.nexus.example/v/launch.mp4".into(),
        to_inbox: false,
    }
}

#[tokio::test]
async fn creator_info_answers_the_options_and_the_longest_video() {
    let s = setup().await;
    let info = s.client.creator_info(&s.token).await.unwrap();
    assert_eq!(info.privacy_level_options, ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]);
    assert_eq!(info.max_video_post_duration_sec, 600);
    assert!(!info.comment_disabled && !info.duet_disabled && !info.stitch_disabled);
    s.fake.set_max_duration(180);
    assert_eq!(s.client.creator_info(&s.token).await.unwrap().max_video_post_duration_sec, 180);
}

#[tokio::test]
async fn a_direct_post_processes_then_completes_and_is_listed() {
    let s = setup().await;
    s.fake.processing_reads(2);
    let id = s.client.init(&s.token, &post("Spring launch #nexus")).await.unwrap();
    assert_eq!(s.client.status(&s.token, &id).await.unwrap(), PublishState::Processing);
    assert_eq!(s.client.status(&s.token, &id).await.unwrap(), PublishState::Processing);
    let PublishState::Complete { post_ids } = s.client.status(&s.token, &id).await.unwrap() else {
        panic!("not complete");
    };
    let posts = s.fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!((posts[0].0.as_str(), posts[0].2.as_str(), posts[0].3), (id.as_str(), "Spring launch #nexus", false));
    assert_eq!(post_ids, [posts[0].1.clone()]);

    let recent = s.client.recent_videos(&s.token, 10).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!((recent[0].id.as_str(), recent[0].text.as_str()), (post_ids[0].as_str(), "Spring launch #nexus"));
    assert!(recent[0].permalink.ends_with(&format!("/video/{}", post_ids[0])), "{}", recent[0].permalink);
    let made = recent[0].created_at.expect("create_time read");
    assert!((chrono::Utc::now() - made).num_seconds().abs() < 60, "{made}");

    let e = s.client.engagement(&s.token, &post_ids[0]).await.unwrap();
    assert_eq!(e, s.client.engagement(&s.token, &post_ids[0]).await.unwrap(), "deterministic");
    assert!(e.views > 0);
    s.fake.set_engagement(&post_ids[0], (12, 3, 4, 500));
    let set = s.client.engagement(&s.token, &post_ids[0]).await.unwrap();
    assert_eq!(set, Engagement { likes: 12, comments: 3, shares: 4, views: 500 });
    let missing = s.client.engagement(&s.token, "7000000000000000000").await.unwrap_err();
    assert!(matches!(missing, PlatformError::Api { code: VIDEO_NOT_FOUND, .. }), "{missing:?}");
}

#[tokio::test]
async fn an_inbox_draft_and_a_failed_pull() {
    let s = setup().await;
    let draft = s.client.init(&s.token, &TikTokPost { to_inbox: true, ..post("Draft") }).await.unwrap();
    assert_eq!(s.client.status(&s.token, &draft).await.unwrap(), PublishState::InInbox);
    let bad = TikTokPost { video_url: "https://cdn.nexus.example/bad.mp4".into(), ..post("Broken") };
    let failed = s.client.init(&s.token, &bad).await.unwrap();
    assert_eq!(s.client.status(&s.token, &failed).await.unwrap(), PublishState::Failed("video_pull_failed".into()));
    assert!(s.client.recent_videos(&s.token, 20).await.unwrap().is_empty(), "neither is a public video");
    let posts = s.fake.posts();
    assert_eq!(posts.len(), 2);
    assert!(posts[0].3 && posts[0].1.is_empty(), "{posts:?}");
    let unknown = s.client.status(&s.token, "v_pub_url~nope").await.unwrap_err();
    assert!(matches!(unknown, PlatformError::Api { code: INVALID_PARAMS, .. }), "{unknown:?}");
}

#[tokio::test]
async fn init_checks_privacy_and_title_length() {
    let s = setup().await;
    s.fake.unlimited_posts();
    let private = TikTokPost { privacy_level: "FOLLOWER_OF_CREATOR".into(), ..post("x") };
    match s.client.init(&s.token, &private).await.unwrap_err() {
        PlatformError::Api { code, message, .. } => {
            assert_eq!(code, INVALID_PARAMS);
            assert!(message.starts_with("invalid_params:"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let long = "é".repeat(2_201);
    let e = s.client.init(&s.token, &post(&long)).await.unwrap_err();
    assert!(matches!(e, PlatformError::Api { code: INVALID_PARAMS, .. }), "{e:?}");
    s.client.init(&s.token, &post(&long[..long.len() - 2])).await.unwrap();
    assert_eq!(s.fake.post_count(), 1);
}

#[tokio::test]
async fn the_seventh_init_in_a_minute_is_throttled_unless_lifted() {
    let s = setup().await;
    for i in 0..6 {
        s.client.init(&s.token, &post(&format!("post {i}"))).await.unwrap();
    }
    match s.client.init(&s.token, &post("post 6")).await.unwrap_err() {
        PlatformError::RateLimited { retry_after: Some(wait), .. } => assert!(wait >= Duration::from_secs(60)),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.fake.post_count(), 6);
    s.fake.unlimited_posts();
    for i in 6..12 {
        s.client.init(&s.token, &post(&format!("post {i}"))).await.unwrap();
    }
    assert_eq!(s.fake.post_count(), 12);
}

#[tokio::test]
async fn an_init_answered_500_is_not_retried_and_is_found_in_the_list() {
    let s = setup().await;
    s.fake.lose_init(1, LoseMode::Error500);
    let e = s.client.init(&s.token, &post("Lost answer")).await.unwrap_err();
    assert!(matches!(e, PlatformError::Upstream { status: 500, .. }), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(s.fake.post_count(), 1, "sent once although attempts is 3");
    let recent = s.client.recent_videos(&s.token, 5).await.unwrap();
    assert_eq!(recent.iter().filter(|v| v.text == "Lost answer").count(), 1);
    // The next init is answered again.
    s.client.init(&s.token, &post("Answered")).await.unwrap();
    assert_eq!(s.fake.post_count(), 2);
}

#[tokio::test]
async fn an_init_timing_out_made_its_post() {
    let s = setup_with(Duration::from_millis(300)).await;
    s.fake.lose_init(1, LoseMode::Timeout(Duration::from_secs(2)));
    let e = s.client.init(&s.token, &post("Slow answer")).await.unwrap_err();
    assert!(matches!(e, PlatformError::Timeout { .. }), "{e:?}");
    assert_eq!(s.fake.post_count(), 1);
    let recent = s.client.recent_videos(&s.token, 5).await.unwrap();
    assert_eq!(recent[0].text, "Slow answer");
}

#[tokio::test]
async fn a_revoked_token_is_an_auth_error() {
    let s = setup().await;
    s.fake.revoke_post_token();
    let e = s.client.init(&s.token, &post("x")).await.unwrap_err();
    assert!(matches!(e, PlatformError::Auth { .. }), "{e:?}");
    assert!(matches!(s.client.creator_info(&s.token).await, Err(PlatformError::Auth { .. })));
    assert_eq!(s.fake.post_count(), 0);
    s.fake.restore_post_token();
    s.client.init(&s.token, &post("x")).await.unwrap();
    let e = s.client.creator_info("act.someone-else").await.unwrap_err();
    assert!(matches!(e, PlatformError::Auth { .. }), "{e:?}");
}

#[tokio::test]
async fn error_envelopes_map_to_platform_errors() {
    let s = setup().await;
    s.fake.fail_next_post("spam_risk_too_many_posts", 403);
    let e = s.client.init(&s.token, &post("x")).await.unwrap_err();
    assert!(matches!(e, PlatformError::RateLimited { retry_after: Some(w), .. } if w == SPAM_RISK_WAIT), "{e:?}");
    s.fake.fail_next_post("scope_not_authorized", 403);
    assert!(matches!(s.client.creator_info(&s.token).await, Err(PlatformError::Auth { .. })));
    s.fake.fail_next_post("brand_new_code", 400);
    match s.client.creator_info(&s.token).await.unwrap_err() {
        PlatformError::Api { code, message, .. } => {
            assert_eq!(code, UNKNOWN_CODE);
            assert!(message.contains("brand_new_code"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A throttled read is retried; a throttled init is not.
    s.fake.fail_next_post("rate_limit_exceeded", 429);
    s.client.creator_info(&s.token).await.unwrap();
    s.fake.fail_next_post("rate_limit_exceeded", 429);
    assert!(matches!(s.client.init(&s.token, &post("y")).await, Err(PlatformError::RateLimited { .. })));
    assert_eq!(s.fake.post_count(), 0);
}

#[tokio::test]
async fn recent_videos_pages_newest_first() {
    let s = setup().await;
    s.fake.unlimited_posts();
    for i in 0..25 {
        s.client.init(&s.token, &post(&format!("clip {i:02}"))).await.unwrap();
    }
    let recent = s.client.recent_videos(&s.token, 23).await.unwrap();
    let titles: Vec<String> = recent.iter().map(|v| v.text.clone()).collect();
    let expected: Vec<String> = (2..25).rev().map(|i| format!("clip {i:02}")).collect();
    assert_eq!(titles, expected);
    assert_eq!(s.client.recent_videos(&s.token, 100).await.unwrap().len(), 25);
}
