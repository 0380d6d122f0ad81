//! The scheduler's harder cases: a slow publish keeps its claim while its replica lives (the
//! lease's heartbeat), a publish found again by caption is told from its twins, the accounts'
//! own limits (TikTok's inits a minute, Instagram's posts a day) are kept before the platform
//! has to refuse, and YouTube releases a video at the variant's `publish_at`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use nexus_kernel::Locale;
use serde_json::{Value, json};

use crate::posts::{create, get, mp4};
use crate::publishing::{connect, drain, fb_post, ig_post, meta, start, status_of, target, video_host, youtube_post};
use crate::support::{Caller, Service, code};

/// A target as if its replica died after marking the publish sent and before the call left:
/// the next claim must look it up before anything else.
async fn crash_before_the_call(s: &Service) {
    s.exec(
        "UPDATE ads.social_post_targets SET status = 'publishing', \
           progress = jsonb_build_object('sent', true, 'sent_at', now()) WHERE status = 'scheduled'",
    )
    .await;
}

async fn platform_id(s: &Service, c: &Caller, post: &str) -> String {
    let t = get(s, c, post).await.unwrap().targets.remove(0);
    assert_eq!(t.status, "published");
    t.platform_post_id
}

/// Two posts of the same caption on one account: the first published, the second's replica
/// dying before its call; both published ids, which must differ.
async fn twins(s: &Service, admin: &Caller, spec: Value) -> (String, String) {
    let first = create(s, admin, spec.clone()).await.unwrap();
    drain(s, 4).await;
    let first_id = platform_id(s, admin, &first.id).await;
    let second = create(s, admin, spec).await.unwrap();
    crash_before_the_call(s).await;
    drain(s, 4).await;
    let second_id = platform_id(s, admin, &second.id).await;
    assert_ne!(second_id, first_id, "the first twin's id was adopted");
    (first_id, second_id)
}

#[tokio::test]
async fn a_slow_publish_keeps_its_claim_while_its_replica_lives() {
    let s = Arc::new(start(&[("NEXUS_POSTS__LEASE", "2s".into())]).await);
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    // Twice the lease: without a heartbeat the claim would run out mid-call.
    s.meta.slow_publishes(Duration::from_secs(4));
    let post = create(&s, &admin, fb_post(&conn, "Slow platform")).await.unwrap();
    let first = tokio::spawn({
        let s = s.clone();
        async move { s.app.publish_due().await.unwrap() }
    });
    while s.scalar("SELECT count(*) FROM ads.social_post_targets WHERE claims = 1").await == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second scheduler keeps looking while the first publishes.
    let mut taken = 0;
    let mut rounds = 0;
    while !first.is_finished() {
        taken += s.app.publish_due().await.unwrap().claimed;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = first.await.unwrap();
    assert!(rounds > 0);
    assert_eq!(taken, 0, "the second scheduler took a target the first was publishing");
    assert_eq!((r.claimed, r.published, r.lost), (1, 1, 0));
    assert_eq!(s.meta.publish_count(), 1, "published once");
    assert_eq!(status_of(&s, &admin, &post.id).await, "published");
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_post_targets WHERE claimed_until IS NOT NULL").await, 0);
}

#[tokio::test]
async fn a_lost_page_post_is_not_confused_with_its_twins() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    let (first_id, second_id) = twins(&s, &admin, fb_post(&conn, "Same words")).await;
    assert_eq!(s.meta.publish_count(), 2, "the second post went out");

    // A twin made on the page an hour before this one was sent (by hand): not this one either.
    let by_hand = s.meta.post_on_page("Made by hand");
    s.meta.age_posts(Duration::from_secs(3_600));
    let third = create(&s, &admin, fb_post(&conn, "Made by hand")).await.unwrap();
    crash_before_the_call(&s).await;
    drain(&s, 3).await;
    let third_id = platform_id(&s, &admin, &third.id).await;
    assert_ne!(third_id, by_hand, "a post older than the send was adopted");
    let texts: Vec<String> = s.meta.published().into_iter().map(|p| p.3).collect();
    assert_eq!(texts.iter().filter(|t| t.starts_with("Made by hand")).count(), 2);

    // A lost answer is still found when its twin is someone else's.
    s.meta.lose_publish(1, nexus_testkit::meta::LoseMode::Error500);
    let fourth = create(&s, &admin, fb_post(&conn, "Same words")).await.unwrap();
    drain(&s, 3).await;
    let fourth_id = platform_id(&s, &admin, &fourth.id).await;
    // The three above, the one made by hand, and this one once.
    assert_eq!(s.meta.publish_count(), 5, "found on the page, not posted again");
    assert!(![first_id, second_id].contains(&fourth_id));
}

fn tiktok_video(connection: &str, caption: &str) -> Value {
    json!({"targets": [target(connection, nexus_testkit::tiktok_login::TEST_OPEN_ID, json!({"format": "video", "caption": caption,
        "privacy": "SELF_ONLY", "media": [mp4("https://cdn.example.com/t.mp4", 30.0)]}))]})
}

#[tokio::test]
async fn a_lost_tiktok_init_is_not_confused_with_its_twin() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = connect(&s, &admin, "tiktok_creator", nexus_testkit::tiktok_login::TEST_CREATOR_CODE).await;
    let (_, second_id) = twins(&s, &admin, tiktok_video(&conn, "Twin video")).await;
    let posts = s.tiktok.posts();
    assert_eq!(posts.len(), 2, "the second video went out, once");
    assert_eq!(second_id, posts[1].1);
}

#[tokio::test]
async fn tiktok_inits_stay_under_the_creators_limit_across_rounds() {
    let s = start(&[("NEXUS_POSTS__TIKTOK_WINDOW", "2s".into())]).await;
    // The fake's minute shortened alike: 6 inits per 2 s, then `rate_limit_exceeded`.
    s.tiktok.set_init_window(Duration::from_secs(2));
    let admin = s.admin();
    let conn = connect(&s, &admin, "tiktok_creator", nexus_testkit::tiktok_login::TEST_CREATOR_CODE).await;
    for i in 0..10 {
        create(&s, &admin, tiktok_video(&conn, &format!("Burst {i}"))).await.unwrap();
    }
    let r = s.app.publish_due().await.unwrap();
    assert_eq!(r.claimed, 10);
    assert_eq!(s.tiktok.post_count(), 6, "six inits, the rest throttled before the call");
    let throttled = "SELECT count(*) FROM ads.social_post_targets \
        WHERE status = 'scheduled' AND error = 'rate_limited' AND attempts = 0";
    assert_eq!(s.scalar(throttled).await, 4, "throttling is not an attempt");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while s.scalar("SELECT count(*) FROM ads.social_post_targets WHERE status <> 'published'").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "not all published");
        s.app.publish_due().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.tiktok.rate_limited_inits(), 0, "TikTok never had to refuse an init");
    let titles: HashSet<String> = s.tiktok.posts().into_iter().map(|p| p.2).collect();
    assert_eq!((s.tiktok.post_count(), titles.len()), (10, 10), "each published once");
    assert_eq!(s.events("nexus.ads.post.published").await, 10);
}

#[tokio::test]
async fn instagram_publishes_stay_under_the_accounts_daily_quota() {
    // Instagram reports room for more; the configured count across replicas still holds.
    let s = start(&[("NEXUS_POSTS__INSTAGRAM_DAILY_POSTS", "3".into())]).await;
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    for i in 0..5 {
        create(&s, &admin, ig_post(&conn, &format!("Daily {i}"))).await.unwrap();
    }
    drain(&s, 5).await;
    assert_eq!(s.meta.quota_refusals(), 0, "Instagram never had to refuse a publish");
    assert_eq!(s.meta.publish_count(), 3);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_post_targets WHERE status = 'published'").await, 3);
    // The other two wait for the oldest publish to leave the 24 h window; nothing failed.
    let waiting = "SELECT count(*) FROM ads.social_post_targets WHERE status = 'scheduled' \
        AND error = 'rate_limited' AND attempts = 0 AND next_at > now() + interval '23 hours'";
    assert_eq!(s.scalar(waiting).await, 2);
    assert_eq!(s.events("nexus.ads.post.failed").await, 0);
}

#[tokio::test]
async fn instagram_posts_other_tools_made_count_against_the_quota() {
    let s = start(&[]).await;
    s.meta.set_quota_total(3);
    s.meta.publish_elsewhere(2);
    let admin = s.admin();
    let conn = meta(&s, &admin).await;
    for i in 0..3 {
        create(&s, &admin, ig_post(&conn, &format!("Shared quota {i}"))).await.unwrap();
    }
    drain(&s, 5).await;
    // One slot was left: one publish, and the other two wait for Instagram's count to fall
    // instead of being refused by it.
    assert_eq!((s.meta.publish_count(), s.meta.quota_refusals()), (1, 0));
    let waiting = "SELECT count(*) FROM ads.social_post_targets WHERE status = 'scheduled' \
        AND error = 'rate_limited' AND attempts = 0 AND next_at > now() + interval '10 minutes'";
    assert_eq!(s.scalar(waiting).await, 2);
    assert_eq!(s.events("nexus.ads.post.failed").await, 0);
}

#[tokio::test]
async fn a_youtube_upload_carries_the_variants_publish_at() {
    let s = start(&[]).await;
    let admin = s.admin();
    let conn = connect(&s, &admin, "google", nexus_testkit::youtube::TEST_CODE).await;
    let clip = vec![3u8; 2_048];
    let host = video_host(&clip).await;
    let at = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut spec = youtube_post(&conn, &format!("{}/launch.mp4", host.uri()), "Premiere", clip.len());
    spec["targets"][0]["variant"]["publish_at"] = json!(at);
    let post = create(&s, &admin, spec).await.unwrap();
    let shown = post.targets[0].publish_at.as_ref().map(|t| t.seconds);
    assert_eq!(shown, Some(at.parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp()));
    let variant: Value = serde_json::from_str(&post.targets[0].variant_json).unwrap();
    assert_eq!(variant["publish_at"], json!(at));
    drain(&s, 3).await;
    assert_eq!(status_of(&s, &admin, &post.id).await, "published");
    let videos = s.youtube.videos();
    assert_eq!(videos.len(), 1);
    let (_, title, _, privacy, publish_at) = &videos[0];
    assert_eq!((title.as_str(), privacy.as_str()), ("Premiere", "private"));
    assert_eq!(publish_at.as_deref(), Some(at.as_str()), "released by YouTube at the variant's time");

    // Without one, the upload is public at once, as before.
    let plain = create(&s, &admin, youtube_post(&conn, &format!("{}/launch.mp4", host.uri()), "Now", clip.len()))
        .await
        .unwrap();
    assert!(plain.targets[0].publish_at.is_none());
    drain(&s, 3).await;
    let videos = s.youtube.videos();
    assert_eq!((videos[1].3.as_str(), videos[1].4.as_deref()), ("public", None));
}

#[tokio::test]
async fn publish_at_is_refused_where_youtube_would_not_take_it() {
    let s = crate::posts::start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let soon = chrono::Utc::now() + chrono::Duration::days(1);
    let rfc = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let video = |variant: Value| {
        let mut v =
            json!({"format": "video", "title": "Launch", "media": [mp4("https://cdn.example.com/v.mp4", 30.0)]});
        v.as_object_mut().unwrap().extend(variant.as_object().unwrap().clone());
        json!({"targets": [{"connection_id": conn.id, "account": "local_channel_1", "variant": v}]})
    };
    let refused = |spec: Value| {
        let (s, admin) = (&s, &admin);
        async move {
            let e = create(s, admin, spec).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            let field = nexus_kernel::Error::from_status(&e).violations().first().map(|v| v.field.clone());
            assert_eq!(field.as_deref(), Some("publish_at"));
            code(&e)
        }
    };
    // Only YouTube releases at a set time.
    let ig = json!({"text": "Hi", "media": [crate::posts::jpeg("https://cdn.example.com/a.jpg")],
        "targets": [{"connection_id": conn.id, "account": "local_ig_1", "variant": {"publish_at": rfc(soon)}}]});
    assert_eq!(refused(ig).await, "ads.post_publish_at_unsupported");
    // Released only from private.
    let public = video(json!({"privacy": "public", "publish_at": rfc(soon)}));
    assert_eq!(refused(public).await, "ads.post_publish_at_private");
    // After the post's own time, and not past the calendar's reach.
    let mut early = video(json!({"publish_at": rfc(soon)}));
    early["scheduled_at"] = json!(rfc(soon + chrono::Duration::hours(1)));
    assert_eq!(refused(early).await, "ads.post_publish_at_time");
    let past = video(json!({"publish_at": rfc(chrono::Utc::now() - chrono::Duration::minutes(1))}));
    assert_eq!(refused(past).await, "ads.post_publish_at_time");
    let far = video(json!({"publish_at": rfc(chrono::Utc::now() + chrono::Duration::days(401))}));
    assert_eq!(refused(far).await, "ads.post_publish_at_time");
    let garbled = video(json!({"publish_at": "next tuesday"}));
    assert_eq!(code(&create(&s, &admin, garbled).await.unwrap_err()), "ads.post_invalid");
    // Another workspace's connection stays unknown, publish_at or not.
    let stranger = s.admin();
    let e = create(&s, &stranger, video(json!({"publish_at": rfc(soon)}))).await.unwrap_err();
    assert_eq!(code(&e), "ads.connection_not_found");
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_post_targets").await, 0, "nothing stored");

    // Private (or left empty) and after the post's time: taken.
    let ok = create(&s, &admin, video(json!({"privacy": "private", "publish_at": rfc(soon)}))).await.unwrap();
    assert_eq!(ok.targets[0].publish_at.as_ref().map(|t| t.seconds), Some(soon.timestamp()));
    // Moved past its release time, the upload would come too late: refused, the post unchanged.
    let moved = |at: chrono::DateTime<chrono::Utc>| nexus_proto::nexus::ads::v1::ReschedulePostRequest {
        id: ok.id.clone(),
        scheduled_at: Some(nexus_platform::grpc::ts(at)),
    };
    let e = s.client().await.reschedule_post(admin.req(moved(soon + chrono::Duration::hours(2)))).await.unwrap_err();
    assert_eq!(code(&e), "ads.post_publish_at_time");
    s.client().await.reschedule_post(admin.req(moved(soon - chrono::Duration::hours(2)))).await.unwrap();
}

#[test]
fn publish_at_refusals_name_the_field_in_every_language() {
    let params = vec![("platform".to_owned(), "instagram".to_owned()), ("max_days".to_owned(), "400".to_owned())];
    for locale in [Locale::En, Locale::Es, Locale::Pt, Locale::He, Locale::Ar] {
        for code in ["ads.post_publish_at_unsupported", "ads.post_publish_at_private", "ads.post_publish_at_time"] {
            let m = nexus_i18n::error_message(locale, code, &params, 400);
            assert!(m.contains("publish_at"), "{locale:?} {code}: {m}");
        }
    }
}
