//! Instagram content publishing and Facebook Page posts of the Meta client against the fake Meta
//! (real HTTP on 127.0.0.1, port 0), connected through its OAuth flow; wiremock where the
//! number of attempts on the wire is the point.

use std::time::Duration;

use nexus_providers::instagram::{ContainerStatus, IgContainer, IgKind, PagePost};
use nexus_providers::marketing::{Engagement, PlatformError};
use nexus_providers::meta::{MetaClient, MetaConfig};
use nexus_testkit::fake::wiremock::matchers::method;
use nexus_testkit::fake::wiremock::{Mock, MockServer, ResponseTemplate};
use nexus_testkit::meta::{
    FakeEngagement, FakeMeta, LoseMode, TEST_APP_ID, TEST_APP_SECRET, TEST_CODE, TEST_IG_USER_ID, TEST_PAGE_ID,
};

const IG: &str = TEST_IG_USER_ID;
const PAGE: &str = TEST_PAGE_ID;

fn client(graph_url: &str, timeout: Duration) -> MetaClient {
    let cfg = MetaConfig {
        app_id: TEST_APP_ID.into(),
        app_secret: TEST_APP_SECRET.into(),
        graph_url: graph_url.into(),
        api_version: "v25.0".into(),
        timeout,
        attempts: 3,
    };
    MetaClient::new(cfg, reqwest::Client::new())
}

/// The fake, a client with `timeout`, and a long-lived user token from the OAuth flow.
async fn connect(timeout: Duration) -> (FakeMeta, MetaClient, String) {
    nexus_testkit::init_tracing();
    let fake = FakeMeta::start().await;
    let meta = client(&fake.base_url, timeout);
    let short = meta.exchange_code(TEST_CODE, "https://app.local/cb", "verifier-123").await.unwrap();
    let long = meta.long_lived(&short.access_token).await.unwrap();
    (fake, meta, long.access_token)
}

async fn setup() -> (FakeMeta, MetaClient, String) {
    connect(Duration::from_secs(5)).await
}

fn image(caption: &str) -> IgContainer {
    IgContainer {
        kind: IgKind::Image,
        media_url: Some("https://cdn.local/a.jpg".into()),
        caption: Some(caption.into()),
        children: Vec::new(),
        share_to_feed: false,
    }
}

fn of(kind: IgKind, url: &str) -> IgContainer {
    IgContainer { kind, media_url: Some(url.into()), caption: None, children: Vec::new(), share_to_feed: true }
}

/// A finished image container's id.
async fn ready(meta: &MetaClient, token: &str, caption: &str) -> String {
    let c = meta.ig_create_container(token, IG, &image(caption)).await.unwrap();
    assert_eq!(meta.ig_container_status(token, &c).await.unwrap(), ContainerStatus::Finished);
    c
}

#[tokio::test]
async fn an_image_is_published_and_listed_newest_first() {
    let (fake, meta, token) = setup().await;
    let first = ready(&meta, &token, "first post").await;
    let m1 = meta.ig_publish(&token, IG, &first).await.unwrap();
    let second = ready(&meta, &token, "second post").await;
    let m2 = meta.ig_publish(&token, IG, &second).await.unwrap();
    assert_eq!(meta.ig_container_status(&token, &first).await.unwrap(), ContainerStatus::Published);

    let item = meta.ig_media(&token, &m1).await.unwrap();
    assert_eq!((item.id.as_str(), item.text.as_str()), (m1.as_str(), "first post"));
    assert_eq!(item.permalink, format!("https://instagram.local/p/{m1}"));
    let recent = meta.ig_recent_media(&token, IG, 10).await.unwrap();
    let ids: Vec<&str> = recent.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, [m2.as_str(), m1.as_str()]);
    // Dated as made (Graph's `timestamp`), to tell a post from an older twin.
    let now = chrono::Utc::now();
    assert!(recent.iter().all(|i| i.created_at.is_some_and(|t| (now - t).num_seconds().abs() < 60)), "{recent:?}");
    assert_eq!(meta.ig_recent_media(&token, IG, 1).await.unwrap().len(), 1);

    assert_eq!(fake.publish_count(), 2);
    assert_eq!(fake.published()[0], ("instagram".into(), IG.into(), m1, "first post".into()));
    assert_eq!(meta.ig_publishing_limit(&token, IG).await.unwrap(), (2, 100));
}

#[tokio::test]
async fn a_container_is_published_once_and_only_when_finished() {
    let (fake, meta, token) = setup().await;
    fake.processing_polls(2);
    let c = meta.ig_create_container(&token, IG, &image("slow")).await.unwrap();
    let early = meta.ig_publish(&token, IG, &c).await.unwrap_err();
    assert!(matches!(early, PlatformError::Api { code: 9007, .. }), "{early:?}");
    assert_eq!(meta.ig_container_status(&token, &c).await.unwrap(), ContainerStatus::InProgress);
    assert_eq!(meta.ig_container_status(&token, &c).await.unwrap(), ContainerStatus::InProgress);
    assert_eq!(meta.ig_container_status(&token, &c).await.unwrap(), ContainerStatus::Finished);
    meta.ig_publish(&token, IG, &c).await.unwrap();
    let again = meta.ig_publish(&token, IG, &c).await.unwrap_err();
    assert!(
        matches!(&again, PlatformError::Api { code: 100, message, .. } if message.contains("already published")),
        "{again:?}"
    );
    assert_eq!(fake.publish_count(), 1);

    let stale = meta.ig_create_container(&token, IG, &image("late")).await.unwrap();
    fake.expire_containers();
    assert_eq!(meta.ig_container_status(&token, &stale).await.unwrap(), ContainerStatus::Expired);
}

#[tokio::test]
async fn concurrent_publishes_of_one_container_publish_it_once() {
    let (fake, meta, token) = setup().await;
    let c = ready(&meta, &token, "race").await;
    let tries = (0..8).map(|_| meta.ig_publish(&token, IG, &c));
    let results = futures::future::join_all(tries).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(fake.publish_count(), 1);
}

#[tokio::test]
async fn reels_stories_and_failed_videos() {
    let (fake, meta, token) = setup().await;
    let reel = IgContainer { caption: Some("reel".into()), ..of(IgKind::Reel, "https://cdn.local/r.mp4") };
    let reel = meta.ig_create_container(&token, IG, &reel).await.unwrap();
    assert_eq!(meta.ig_container_status(&token, &reel).await.unwrap(), ContainerStatus::Finished);
    for story in [of(IgKind::ImageStory, "https://cdn.local/s.jpg"), of(IgKind::VideoStory, "https://cdn.local/s.mp4")]
    {
        let s = meta.ig_create_container(&token, IG, &story).await.unwrap();
        meta.ig_publish(&token, IG, &s).await.unwrap();
    }
    let broken = meta.ig_create_container(&token, IG, &of(IgKind::Reel, "https://cdn.local/bad.mp4")).await.unwrap();
    let status = meta.ig_container_status(&token, &broken).await.unwrap();
    assert!(matches!(&status, ContainerStatus::Error(s) if s.contains("2207026")), "{status:?}");
    assert!(meta.ig_publish(&token, IG, &broken).await.is_err());
    assert_eq!(fake.publish_count(), 2);
}

#[tokio::test]
async fn a_carousel_needs_two_to_ten_items_and_a_short_caption() {
    let (fake, meta, token) = setup().await;
    let a = meta.ig_create_container(&token, IG, &of(IgKind::CarouselImage, "https://cdn.local/1.jpg")).await.unwrap();
    let b = meta.ig_create_container(&token, IG, &of(IgKind::CarouselVideo, "https://cdn.local/2.mp4")).await.unwrap();
    let carousel = |children: Vec<String>, caption: String| IgContainer {
        kind: IgKind::Carousel,
        media_url: None,
        caption: Some(caption),
        children,
        share_to_feed: false,
    };
    let lone = meta.ig_create_container(&token, IG, &carousel(vec![a.clone()], "one".into())).await.unwrap_err();
    assert!(matches!(lone, PlatformError::Api { code: 100, .. }), "{lone:?}");
    let long = carousel(vec![a.clone(), b.clone()], "x".repeat(2_201));
    assert!(matches!(meta.ig_create_container(&token, IG, &long).await, Err(PlatformError::Api { code: 100, .. })));
    // An item is published through its carousel only.
    assert!(matches!(meta.ig_publish(&token, IG, &a).await, Err(PlatformError::Api { code: 100, .. })));

    let parent = meta.ig_create_container(&token, IG, &carousel(vec![a, b], "é".repeat(2_200))).await.unwrap();
    assert_eq!(meta.ig_container_status(&token, &parent).await.unwrap(), ContainerStatus::Finished);
    let media = meta.ig_publish(&token, IG, &parent).await.unwrap();
    assert_eq!(fake.published(), [("instagram".into(), IG.into(), media, "é".repeat(2_200))]);
}

#[tokio::test]
async fn a_graph_error_envelope_becomes_the_platforms_code_and_message() {
    let (_fake, meta, token) = setup().await;
    let err = meta.ig_create_container(&token, "999", &image("x")).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::Api { platform: "Meta", code: 100, message } if message.contains("does not exist")),
        "{err:?}"
    );
    assert!(matches!(meta.ig_media(&token, "17909999").await, Err(PlatformError::Api { code: 100, .. })));
}

#[tokio::test]
async fn a_lost_publish_answer_is_not_retried_and_the_post_is_found_again() {
    let (fake, meta, token) = setup().await;
    let c = ready(&meta, &token, "lost answer #1").await;
    fake.lose_publish(1, LoseMode::Error500);
    let err = meta.ig_publish(&token, IG, &c).await.unwrap_err();
    assert!(matches!(err, PlatformError::Upstream { status: 500, .. }), "{err:?}");
    let publishes = fake.log().iter().filter(|(m, p, _)| m == "POST" && p.ends_with("/media_publish")).count();
    assert_eq!((publishes, fake.publish_count()), (1, 1));
    // Reconciled by caption; the container says so too.
    let recent = meta.ig_recent_media(&token, IG, 5).await.unwrap();
    assert!(recent.iter().any(|m| m.text == "lost answer #1"));
    assert_eq!(meta.ig_container_status(&token, &c).await.unwrap(), ContainerStatus::Published);
}

#[tokio::test]
async fn a_publish_answered_too_late_is_a_timeout_but_happened() {
    let (fake, meta, token) = connect(Duration::from_millis(300)).await;
    let c = ready(&meta, &token, "slow answer").await;
    fake.lose_publish(1, LoseMode::Timeout(Duration::from_millis(1_500)));
    let err = meta.ig_publish(&token, IG, &c).await.unwrap_err();
    assert!(matches!(err, PlatformError::Timeout { .. }), "{err:?}");
    assert_eq!(fake.publish_count(), 1);
    assert_eq!(meta.ig_recent_media(&token, IG, 1).await.unwrap()[0].text, "slow answer");
}

/// wiremock counts attempts: a 500 is retried for a container, never for a publish.
#[tokio::test]
async fn ig_publish_does_not_retry_a_500_while_a_container_create_does() {
    nexus_testkit::init_tracing();
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let meta = client(&server.uri(), Duration::from_secs(2));
    let err = meta.ig_publish("tok", IG, "1780").await.unwrap_err();
    assert!(matches!(err, PlatformError::Upstream { status: 500, .. }), "{err:?}");
    let page = PagePost { message: "m".into(), link: None, photo_url: None };
    assert!(meta.page_publish("ptok", PAGE, &page).await.is_err());
    assert!(meta.ig_create_container("tok", IG, &image("c")).await.is_err());
    let requests = server.received_requests().await.unwrap();
    let hits = |suffix: &str| requests.iter().filter(|r| r.url.path().ends_with(suffix)).count();
    assert_eq!((hits("/media_publish"), hits("/feed"), hits("/media")), (1, 1, 3));
}

#[tokio::test]
async fn publishing_limits_and_throttling_are_rate_limits() {
    let (fake, meta, token) = setup().await;
    let c = ready(&meta, &token, "limited").await;
    fake.publish_rate_limited(1);
    assert!(matches!(meta.ig_publish(&token, IG, &c).await, Err(PlatformError::RateLimited { .. })));
    assert_eq!(fake.publish_count(), 0);
    meta.ig_publish(&token, IG, &c).await.unwrap();

    fake.set_quota_total(1);
    assert_eq!(meta.ig_publishing_limit(&token, IG).await.unwrap(), (1, 1));
    let next = ready(&meta, &token, "over quota").await;
    let err = meta.ig_publish(&token, IG, &next).await.unwrap_err();
    assert!(matches!(err, PlatformError::RateLimited { .. }), "{err:?}");
    assert_eq!(fake.publish_count(), 1);
}

#[tokio::test]
async fn a_revoked_token_is_an_auth_error_until_restored() {
    let (fake, meta, token) = setup().await;
    let page_token = meta.page_token(&token, PAGE).await.unwrap();
    let c = meta.ig_create_container(&token, IG, &image("paused")).await.unwrap();
    fake.revoke_token();
    assert!(matches!(meta.ig_container_status(&token, &c).await, Err(PlatformError::Auth { .. })));
    assert!(matches!(meta.ig_publish(&token, IG, &c).await, Err(PlatformError::Auth { .. })));
    assert!(matches!(meta.page_recent_posts(&page_token, PAGE, 5).await, Err(PlatformError::Auth { .. })));
    fake.restore_token();
    meta.ig_publish(&token, IG, &c).await.unwrap();
    assert_eq!(fake.publish_count(), 1);
}

#[tokio::test]
async fn instagram_engagement_and_first_comment() {
    let (fake, meta, token) = setup().await;
    let c = ready(&meta, &token, "engaging").await;
    let media = meta.ig_publish(&token, IG, &c).await.unwrap();
    let before = meta.ig_engagement(&token, &media).await.unwrap();
    let e = fake.engagement(&media);
    assert_eq!(before, Engagement { likes: e.likes, comments: e.comments, shares: 0, views: 0 });
    let comment = meta.ig_comment(&token, &media, "link in bio").await.unwrap();
    assert!(!comment.is_empty());
    assert_eq!(fake.comments(), [(media.clone(), "link in bio".into())]);
    assert_eq!(meta.ig_engagement(&token, &media).await.unwrap().comments, before.comments + 1);

    fake.set_engagement(&media, FakeEngagement { likes: 7, comments: 2, shares: 0, views: 90 });
    let set = meta.ig_engagement(&token, &media).await.unwrap();
    assert_eq!(set, Engagement { likes: 7, comments: 3, shares: 0, views: 90 });
}

#[tokio::test]
async fn page_posts_with_the_page_token() {
    let (fake, meta, token) = setup().await;
    let page_token = meta.page_token(&token, PAGE).await.unwrap();
    assert_ne!(page_token, token);

    let text = PagePost { message: "Fresh bread".into(), link: Some("https://bakery.local".into()), photo_url: None };
    let p1 = meta.page_publish(&page_token, PAGE, &text).await.unwrap();
    let photo =
        PagePost { message: "Croissants".into(), link: None, photo_url: Some("https://cdn.local/c.jpg".into()) };
    let p2 = meta.page_publish(&page_token, PAGE, &photo).await.unwrap();
    assert!(p2.starts_with(&format!("{PAGE}_")), "{p2}");

    let recent = meta.page_recent_posts(&page_token, PAGE, 10).await.unwrap();
    let listed: Vec<(&str, &str)> = recent.iter().map(|p| (p.id.as_str(), p.text.as_str())).collect();
    assert_eq!(listed, [(p2.as_str(), "Croissants"), (p1.as_str(), "Fresh bread")]);
    assert!(recent[0].permalink.starts_with("https://facebook.local/"));
    assert!(recent.iter().all(|p| p.created_at.is_some()), "created_time read: {recent:?}");
    assert_eq!(fake.published()[1], ("facebook".into(), PAGE.into(), p2.clone(), "Croissants".into()));

    fake.set_engagement(&p1, FakeEngagement { likes: 12, comments: 3, shares: 4, views: 0 });
    assert_eq!(
        meta.page_engagement(&page_token, &p1).await.unwrap(),
        Engagement { likes: 12, comments: 3, shares: 4, views: 0 }
    );
    meta.page_comment(&page_token, &p1, "Open till 6").await.unwrap();
    assert_eq!(meta.page_engagement(&page_token, &p1).await.unwrap().comments, 4);

    // Posting needs the page's token, not the user's.
    let err = meta.page_publish(&token, PAGE, &text).await.unwrap_err();
    assert!(matches!(err, PlatformError::Api { code: 200, .. }), "{err:?}");
    assert_eq!(fake.publish_count(), 2);
}

#[tokio::test]
async fn a_lost_page_post_answer_is_not_retried() {
    let (fake, meta, token) = setup().await;
    let page_token = meta.page_token(&token, PAGE).await.unwrap();
    fake.lose_publish(1, LoseMode::Error500);
    let post = PagePost { message: "once only".into(), link: None, photo_url: None };
    assert!(matches!(meta.page_publish(&page_token, PAGE, &post).await, Err(PlatformError::Upstream { .. })));
    assert_eq!(fake.publish_count(), 1);
    let recent = meta.page_recent_posts(&page_token, PAGE, 5).await.unwrap();
    assert_eq!(recent.iter().filter(|p| p.text == "once only").count(), 1);
}
