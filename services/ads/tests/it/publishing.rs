//! The scheduler against fake Instagram, Facebook, TikTok and YouTube: one publish per post
//! whatever happens — answers lost (500 or a timeout), two schedulers competing and one killed
//! mid-way, interrupted uploads, throttling — and token refusals pausing an account's queue
//! until it is connected again.

use std::collections::HashSet;
use std::time::Duration;

use nexus_testkit::fake::wiremock::matchers::{method, path};
use nexus_testkit::fake::wiremock::{Mock, MockServer, ResponseTemplate};
use nexus_testkit::meta::{LoseMode, TEST_IG_USER_ID, TEST_PAGE_ID};
use serde_json::{Value, json};

use crate::posts::{create, get, jpeg, mp4};
use crate::support::{Caller, Service, code};

pub(crate) async fn start(extra: &[(&str, String)]) -> Service {
    let mut env: Vec<(&str, String)> = vec![
        ("NEXUS_POSTS__POLL_INTERVAL", "1h".into()),
        ("NEXUS_POSTS__PROCESSING_POLL", "0s".into()),
        ("NEXUS_POSTS__RETRY_BASE", "0s".into()),
    ];
    env.extend(extra.iter().cloned());
    Service::start_with(&env).await
}

pub(crate) async fn connect(s: &Service, admin: &Caller, provider: &str, code: &str) -> String {
    let started = s.begin(admin, provider).await;
    s.complete(admin, provider, code, &started.state).await.unwrap().id
}

pub(crate) async fn meta(s: &Service, admin: &Caller) -> String {
    connect(s, admin, "meta", nexus_testkit::meta::TEST_CODE).await
}

pub(crate) fn target(connection: &str, account: &str, variant: Value) -> Value {
    json!({"connection_id": connection, "account": account, "variant": variant})
}

pub(crate) fn ig_post(connection: &str, caption: &str) -> Value {
    json!({"text": caption, "media": [jpeg("https://cdn.example.com/a.jpg")],
        "targets": [target(connection, TEST_IG_USER_ID, json!({}))]})
}

pub(crate) fn fb_post(connection: &str, message: &str) -> Value {
    json!({"text": message, "link": "https://shop.example.com/spring", "targets": [target(connection, TEST_PAGE_ID, json!({}))]})
}

/// Runs rounds until nothing is claimed (at most `max`).
pub(crate) async fn drain(s: &Service, max: usize) {
    for _ in 0..max {
        if s.app.publish_due().await.unwrap().claimed == 0 {
            return;
        }
    }
}

pub(crate) async fn status_of(s: &Service, c: &Caller, post: &str) -> String {
    get(s, c, post).await.unwrap().targets[0].status.clone()
}

#[tokio::test]
async fn an_instagram_publish_whose_answer_was_lost_is_reconciled_not_repeated() {
    let s = start(&[("NEXUS_PROVIDERS__TIMEOUT", "1s".into())]).await;
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    for (caption, mode) in
        [("Lost to a 500", LoseMode::Error500), ("Lost to a timeout", LoseMode::Timeout(Duration::from_secs(3)))]
    {
        s.meta.lose_publish(1, mode);
        let before = s.meta.publish_count();
        let post = create(&s, &admin, ig_post(&conn, caption)).await.unwrap();
        s.app.publish_due().await.unwrap();
        // Instagram published it; the answer never came: the post is publishing, not failed.
        assert_eq!(s.meta.publish_count(), before + 1);
        assert_eq!(status_of(&s, &admin, &post.id).await, "publishing");

        drain(&s, 5).await;
        let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
        assert_eq!(t.status, "published", "{caption}");
        assert_eq!(s.meta.publish_count(), before + 1, "{caption}: published once");
        let published = s.meta.published();
        let (_, account, media, text) = published.last().unwrap();
        assert_eq!((account.as_str(), text.as_str()), (TEST_IG_USER_ID, caption));
        assert_eq!(&t.platform_post_id, media);
        assert!(t.permalink.starts_with("https://instagram.local/p/"), "{}", t.permalink);
    }
    assert_eq!(s.events("nexus.ads.post.published").await, 2);
}

#[tokio::test]
async fn a_page_post_whose_answer_was_lost_is_found_on_the_page_not_posted_again() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    // Other posts on the page: the lost one is told apart by its message.
    for i in 0..3 {
        create(&s, &admin, fb_post(&conn, &format!("Earlier {i}"))).await.unwrap();
    }
    drain(&s, 3).await;
    s.meta.lose_publish(1, LoseMode::Error500);
    let post = create(&s, &admin, fb_post(&conn, "Spring is here")).await.unwrap();
    s.app.publish_due().await.unwrap();
    assert_eq!(status_of(&s, &admin, &post.id).await, "publishing");
    drain(&s, 3).await;
    let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
    assert_eq!(t.status, "published");
    let on_page: Vec<_> = s.meta.published().into_iter().filter(|p| p.3.starts_with("Spring is here")).collect();
    assert_eq!(on_page.len(), 1, "posted once");
    assert_eq!(t.platform_post_id, on_page[0].2);
}

#[tokio::test]
async fn a_refused_token_pauses_the_queue_until_the_account_is_connected_again() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    s.meta.revoke_token();
    let a = create(&s, &admin, ig_post(&conn, "Paused one")).await.unwrap();
    let b = create(&s, &admin, fb_post(&conn, "Paused two")).await.unwrap();
    let r = s.app.publish_due().await.unwrap();
    assert_eq!(r.paused, 2);
    assert_eq!(s.events("nexus.ads.account.paused").await, 1, "one notice for the account");
    assert_eq!(s.scalar("SELECT count(*) FROM ads.connections WHERE posting_paused_at IS NOT NULL").await, 1);
    for id in [&a.id, &b.id] {
        let p = get(&s, &admin, id).await.unwrap();
        assert_eq!(
            (p.status.as_str(), p.targets[0].status.as_str(), p.targets[0].attempts),
            ("scheduled", "scheduled", 0)
        );
    }
    // Paused: not even tried.
    assert_eq!(s.app.publish_due().await.unwrap().claimed, 0);
    assert_eq!(s.meta.publish_count(), 0);

    s.meta.restore_token();
    assert_eq!(meta(&s, &admin).await, conn, "the same connection, reconnected");
    assert_eq!(s.scalar("SELECT count(*) FROM ads.connections WHERE posting_paused_at IS NOT NULL").await, 0);
    drain(&s, 4).await;
    for id in [&a.id, &b.id] {
        assert_eq!(status_of(&s, &admin, id).await, "published");
    }
    assert_eq!(s.meta.publish_count(), 2);
}

#[tokio::test]
async fn a_permanent_refusal_fails_the_post_with_the_platforms_reason_and_is_not_retried() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    let reel = json!({"targets": [target(&conn, TEST_IG_USER_ID,
        json!({"format": "reel", "caption": "Broken", "media": [mp4("https://cdn.example.com/bad.mp4", 20.0)]}))]});
    let post = create(&s, &admin, reel).await.unwrap();
    drain(&s, 3).await;
    let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
    assert_eq!((t.status.as_str(), t.error_code.as_str()), ("failed", "ads.post_media_rejected"));
    assert!(!t.error.is_empty(), "the platform's reason is kept");
    assert_eq!(s.events("nexus.ads.post.failed").await, 1);
    assert_eq!(s.meta.publish_count(), 0);
    assert_eq!(s.app.publish_due().await.unwrap().claimed, 0, "never retried blindly");

    // Throttled: refused before acting, so tried again and published once.
    s.meta.publish_rate_limited(1);
    let post = create(&s, &admin, ig_post(&conn, "Throttled")).await.unwrap();
    s.app.publish_due().await.unwrap();
    assert_eq!(status_of(&s, &admin, &post.id).await, "scheduled");
    // Meta gives no wait; a second is assumed.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    drain(&s, 3).await;
    assert_eq!(status_of(&s, &admin, &post.id).await, "published");
    assert_eq!(s.meta.publish_count(), 1);
}

#[tokio::test]
async fn tiktok_posts_follow_the_creator_and_a_lost_init_is_not_repeated() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = connect(&s, &admin, "tiktok_creator", nexus_testkit::tiktok_login::TEST_CREATOR_CODE).await;
    s.tiktok.set_max_duration(60);
    let video = |caption: &str, secs: f64| {
        json!({"targets": [target(&conn, nexus_testkit::tiktok_login::TEST_OPEN_ID, json!({"format": "video", "caption": caption,
            "privacy": "SELF_ONLY", "media": [mp4("https://cdn.example.com/t.mp4", secs)]}))]})
    };
    // The creator's limit, read from TikTok when scheduling.
    let e = create(&s, &admin, video("Too long", 180.0)).await.unwrap_err();
    assert_eq!(code(&e), "ads.post_media_duration");
    assert_eq!(s.tiktok.post_count(), 0);

    s.tiktok.lose_init(1, LoseMode::Error500);
    let post = create(&s, &admin, video("Short one", 30.0)).await.unwrap();
    s.app.publish_due().await.unwrap();
    assert_eq!(status_of(&s, &admin, &post.id).await, "publishing");
    drain(&s, 4).await;
    let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
    assert_eq!(t.status, "published");
    let posts = s.tiktok.posts();
    assert_eq!(posts.len(), 1, "initialized once");
    assert_eq!(t.platform_post_id, posts[0].1);
}

/// A server of one video's bytes.
pub(crate) async fn video_host(bytes: &[u8]) -> MockServer {
    let host = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/launch.mp4"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(bytes.to_vec(), "video/mp4"))
        .mount(&host)
        .await;
    host
}

pub(crate) fn youtube_post(connection: &str, url: &str, title: &str, bytes: usize) -> Value {
    json!({"targets": [target(connection, nexus_testkit::youtube::TEST_CHANNEL_ID, json!({"format": "video",
        "title": title, "caption": "Our launch", "tags": ["launch"],
        "media": [{"url": url, "kind": "video", "content_type": "video/mp4", "bytes": bytes, "duration_secs": 42.0}]}))]})
}

#[tokio::test]
async fn an_interrupted_youtube_upload_resumes_from_the_offset_youtube_reports() {
    let s = start(&[("NEXUS_POSTS__YOUTUBE_CHUNK_BYTES", "262144".into())]).await;
    let admin = s.admin();
    let conn = connect(&s, &admin, "google", nexus_testkit::youtube::TEST_CODE).await;
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let host = video_host(&bytes).await;
    s.youtube.interrupt_at(300_000);
    let post = create(&s, &admin, youtube_post(&conn, &format!("{}/launch.mp4", host.uri()), "Launch", bytes.len()))
        .await
        .unwrap();
    drain(&s, 4).await;
    let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
    assert_eq!(t.status, "published");
    let from = s.youtube.received_from();
    assert!(from.contains(&300_000), "resumed where YouTube said, not from 0: {from:?}");
    assert_eq!(from.iter().filter(|o| **o == 0).count(), 1, "{from:?}");
    assert_eq!(s.youtube.video_count(), 1);
    assert_eq!(s.youtube.video_bytes(&t.platform_post_id).unwrap(), bytes, "every byte once, in order");
    assert_eq!(t.permalink, format!("https://youtu.be/{}", t.platform_post_id));
}

#[tokio::test]
async fn a_token_about_to_run_out_is_renewed_before_publishing_not_refused_into_a_pause() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = connect(&s, &admin, "google", nexus_testkit::youtube::TEST_CODE).await;
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let host = video_host(&bytes).await;
    let post = create(&s, &admin, youtube_post(&conn, &format!("{}/launch.mp4", host.uri()), "Renewed", bytes.len()))
        .await
        .unwrap();
    // Google's hour is nearly up: the stored token is one YouTube no longer takes.
    s.youtube.rotate_token("ya29.the-next-hour");
    s.exec("UPDATE ads.connections SET token_expires_at = now() + interval '1 minute'").await;
    drain(&s, 4).await;
    let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
    assert_eq!(t.status, "published", "renewed first, not paused: {t:?}");
    assert_eq!(s.youtube.video_count(), 1);
    let paused = s.scalar("SELECT count(*) FROM ads.connections WHERE posting_paused_at IS NOT NULL").await;
    assert_eq!(paused, 0);
    let renewed =
        s.scalar("SELECT count(*) FROM ads.connections WHERE token_expires_at > now() + interval '30 minutes'").await;
    assert_eq!(renewed, 1, "the renewed token and its expiry are stored");
}

/// 500 posts due at once across the four platforms; two schedulers claim side by side and one
/// is killed mid-way; its claims run out and the other reconciles them. Each fake counts
/// exactly one publish per post.
#[tokio::test]
async fn five_hundred_posts_two_schedulers_one_killed_each_published_once() {
    let s = std::sync::Arc::new(
        start(&[
            ("NEXUS_POSTS__LEASE", "4s".into()),
            ("NEXUS_POSTS__BATCH", "25".into()),
            ("NEXUS_POSTS__CONCURRENCY", "8".into()),
            // The accounts' own limits are another test's subject.
            ("NEXUS_POSTS__TIKTOK_INITS_PER_MINUTE", "1000".into()),
            ("NEXUS_POSTS__INSTAGRAM_DAILY_POSTS", "1000".into()),
        ])
        .await,
    );
    let admin = s.admin();
    let meta_conn = meta(&s, &admin).await;
    let tiktok_conn = connect(&s, &admin, "tiktok_creator", nexus_testkit::tiktok_login::TEST_CREATOR_CODE).await;
    let google_conn = connect(&s, &admin, "google", nexus_testkit::youtube::TEST_CODE).await;
    s.tiktok.unlimited_posts();
    // Instagram allows 100 API posts a day by default; this account may post them all.
    s.meta.set_quota_total(1_000);
    let clip: Vec<u8> = vec![7u8; 4_096];
    let host = video_host(&clip).await;
    let clip_url = format!("{}/launch.mp4", host.uri());
    for i in 0..125 {
        create(&s, &admin, ig_post(&meta_conn, &format!("ig-{i}"))).await.unwrap();
        create(&s, &admin, fb_post(&meta_conn, &format!("fb-{i}"))).await.unwrap();
        let tiktok = json!({"targets": [target(&tiktok_conn, nexus_testkit::tiktok_login::TEST_OPEN_ID, json!({"format": "video", "caption": format!("tt-{i}"),
            "media": [mp4("https://cdn.example.com/t.mp4", 30.0)]}))]});
        create(&s, &admin, tiktok).await.unwrap();
        create(&s, &admin, youtube_post(&google_conn, &clip_url, &format!("yt-{i}"), clip.len())).await.unwrap();
    }
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_post_targets WHERE status = 'scheduled'").await, 500);
    // One Instagram answer lost on the way.
    s.meta.lose_publish(1, LoseMode::Error500);

    let published = |s: &Service| s.meta.publish_count() + s.tiktok.post_count() + s.youtube.video_count();
    let run = |s: std::sync::Arc<Service>| async move {
        loop {
            if s.app.publish_due().await.unwrap().claimed == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let doomed = tokio::spawn(run(s.clone()));
    let survivor = tokio::spawn(run(s.clone()));
    for _ in 0..600 {
        if published(&s) >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.abort();
    let _ = doomed.await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = s.scalar("SELECT count(*) FROM ads.social_post_targets WHERE status <> 'published'").await;
        if left == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{left} posts not published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    survivor.abort();

    let texts = |v: Vec<String>| -> (usize, usize) { (v.len(), v.iter().collect::<HashSet<_>>().len()) };
    let meta_posts = s.meta.published();
    let ig = texts(meta_posts.iter().filter(|p| p.0 == "instagram").map(|p| p.3.clone()).collect());
    let fb = texts(meta_posts.iter().filter(|p| p.0 == "facebook").map(|p| p.3.clone()).collect());
    let tt = texts(s.tiktok.posts().into_iter().map(|p| p.2).collect());
    let yt = texts(s.youtube.videos().into_iter().map(|v| v.1).collect());
    assert_eq!([ig, fb, tt, yt], [(125, 125); 4], "instagram, facebook, tiktok, youtube: one publish per post");
    assert_eq!(s.events("nexus.ads.post.published").await, 500);
    assert_eq!(s.scalar("SELECT count(DISTINCT platform_post_id) FROM ads.social_post_targets").await, 500);
}

#[tokio::test]
async fn engagement_is_read_from_each_platform_and_sent_on() {
    let s = start(&[("NEXUS_POSTS__ENGAGEMENT_EVERY", "1h".into())]).await;
    let admin = s.admin();
    let meta_conn = meta(&s, &admin).await;
    let tiktok_conn = connect(&s, &admin, "tiktok_creator", nexus_testkit::tiktok_login::TEST_CREATOR_CODE).await;
    let google_conn = connect(&s, &admin, "google", nexus_testkit::youtube::TEST_CODE).await;
    let clip = vec![1u8; 2_048];
    let host = video_host(&clip).await;
    let ig = create(&s, &admin, ig_post(&meta_conn, "Counted")).await.unwrap();
    let fb = create(&s, &admin, fb_post(&meta_conn, "Counted too")).await.unwrap();
    let tiktok = json!({"targets": [target(&tiktok_conn, nexus_testkit::tiktok_login::TEST_OPEN_ID, json!({"format": "video", "caption": "Counted tt",
        "media": [mp4("https://cdn.example.com/t.mp4", 30.0)]}))]});
    let tt = create(&s, &admin, tiktok).await.unwrap();
    let yt =
        create(&s, &admin, youtube_post(&google_conn, &format!("{}/launch.mp4", host.uri()), "Counted yt", clip.len()))
            .await
            .unwrap();
    drain(&s, 4).await;
    let id_of = |post: &str| {
        let (s, admin, post) = (&s, &admin, post.to_owned());
        async move { get(s, admin, &post).await.unwrap().targets.remove(0).platform_post_id }
    };
    let (ig_id, fb_id, tt_id, yt_id) =
        (id_of(&ig.id).await, id_of(&fb.id).await, id_of(&tt.id).await, id_of(&yt.id).await);
    let counts = nexus_testkit::meta::FakeEngagement { likes: 41, comments: 5, shares: 0, views: 900 };
    s.meta.set_engagement(&ig_id, counts);
    s.meta.set_engagement(&fb_id, nexus_testkit::meta::FakeEngagement { likes: 12, comments: 3, shares: 2, views: 0 });
    s.tiktok.set_engagement(&tt_id, (70, 8, 4, 5_000));
    s.youtube.set_statistics(&yt_id, (9, 1, 321));

    let r = s.app.read_engagement().await.unwrap();
    assert_eq!((r.read, r.failed), (4, 0));
    let figures = |post: &str| {
        let (s, admin, post) = (&s, &admin, post.to_owned());
        async move {
            let t = get(s, admin, &post).await.unwrap().targets.remove(0);
            (t.likes, t.comments, t.shares, t.views)
        }
    };
    assert_eq!(figures(&ig.id).await, (41, 5, 0, 900));
    assert_eq!(figures(&fb.id).await, (12, 3, 2, 0));
    assert_eq!(figures(&tt.id).await, (70, 8, 4, 5_000));
    assert_eq!(figures(&yt.id).await, (9, 1, 0, 321));
    assert_eq!(s.events("nexus.ads.post_engagement.measured").await, 4);
    // Read again only once the period has passed.
    assert_eq!(s.app.read_engagement().await.unwrap().read, 0);
}
