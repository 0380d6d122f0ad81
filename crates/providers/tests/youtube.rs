//! YouTube resumable upload and data client against the fake YouTube (real HTTP on 127.0.0.1,
//! port 0).

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_providers::marketing::{Engagement, PlatformError};
use nexus_providers::youtube::{UploadState, VIDEO_NOT_FOUND, VideoMeta, YouTubeClient, YouTubeConfig};
use nexus_testkit::youtube::FakeYouTube;

const TOKEN: &str = "ya29.fake-youtube-token";
const KIB: usize = 1024;

fn client_for(fake: &FakeYouTube, chunk_size: usize, attempts: u32) -> YouTubeClient {
    let cfg = YouTubeConfig {
        upload_url: format!("{}/upload/youtube/v3", fake.base_url),
        api_url: format!("{}/youtube/v3", fake.base_url),
        timeout: Duration::from_secs(5),
        attempts,
        chunk_size,
    };
    YouTubeClient::new(cfg, reqwest::Client::new())
}

async fn setup() -> (FakeYouTube, YouTubeClient) {
    nexus_testkit::init_tracing();
    let fake = FakeYouTube::start(TOKEN).await;
    let client = client_for(&fake, 256 * KIB, 3);
    (fake, client)
}

fn meta(title: &str) -> VideoMeta {
    VideoMeta {
        title: title.into(),
        description: "Our spring collection".into(),
        tags: vec!["spring".into(), "launch".into()],
        category_id: "22".into(),
        privacy: "private".into(),
        publish_at: None,
        made_for_kids: false,
    }
}

/// A file whose bytes tell their position, so any reordering or repeat shows.
fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn done(state: UploadState) -> String {
    match state {
        UploadState::Done { video_id } => video_id,
        other => panic!("not done: {other:?}"),
    }
}

#[tokio::test]
async fn a_file_uploads_in_chunks_following_the_range() {
    let (fake, _) = setup().await;
    // 300,000 is rounded down to one 256 KiB unit.
    let client = client_for(&fake, 300_000, 3);
    let bytes = file(4 * 256 * KIB + 1_000);
    let session = client.start_upload(TOKEN, &meta("Spring launch"), bytes.len() as u64, "video/mp4").await.unwrap();
    assert!(session.contains("upload_id="), "{session}");
    assert_eq!(
        client.upload_state(TOKEN, &session, bytes.len() as u64).await.unwrap(),
        UploadState::Incomplete { next_offset: 0 }
    );
    let id = done(client.upload(TOKEN, &session, &bytes, 0).await.unwrap());
    let unit = 256 * KIB as u64;
    assert_eq!(fake.received_from(), [0, unit, 2 * unit, 3 * unit, 4 * unit]);
    assert_eq!(fake.video_bytes(&id).unwrap(), bytes);
    assert_eq!(fake.videos(), [(id.clone(), "Spring launch".into(), bytes.len(), "private".into(), None)]);
    // Asked again, the finished session answers the same video.
    assert_eq!(done(client.upload_state(TOKEN, &session, bytes.len() as u64).await.unwrap()), id);
    assert_eq!(fake.video_count(), 1);
}

async fn resumed_after(fake: &FakeYouTube, client: &YouTubeClient, cut_at: u64) {
    let bytes = file(3 * 256 * KIB + 17);
    let session = client.start_upload(TOKEN, &meta("Resumed"), bytes.len() as u64, "video/mp4").await.unwrap();
    let id = done(client.upload(TOKEN, &session, &bytes, 0).await.unwrap());
    let unit = 256 * KIB as u64;
    // The failed chunk started at `unit`; the session held up to `cut_at`, where the next began.
    assert_eq!(fake.received_from(), [0, unit, cut_at, cut_at + unit]);
    assert_eq!(fake.video_bytes(&id).unwrap(), bytes, "every byte once, in order");
    assert_eq!(fake.video_count(), 1);
}

#[tokio::test]
async fn an_upload_answered_500_resumes_from_the_reported_offset() {
    let (fake, client) = setup().await;
    fake.interrupt_at(300_000);
    resumed_after(&fake, &client, 300_000).await;
}

#[tokio::test]
async fn an_upload_whose_connection_dropped_resumes_from_the_reported_offset() {
    let (fake, client) = setup().await;
    fake.drop_at(400_000);
    resumed_after(&fake, &client, 400_000).await;
}

#[tokio::test]
async fn a_caller_resumes_an_interrupted_upload_from_upload_state() {
    let (fake, _) = setup().await;
    // One attempt: the failed chunk ends the upload, and the caller takes over.
    let client = client_for(&fake, 256 * KIB, 1);
    fake.interrupt_at(100_000);
    let bytes = file(2 * 256 * KIB);
    let total = bytes.len() as u64;
    let session = client.start_upload(TOKEN, &meta("Two goes"), total, "video/mp4").await.unwrap();
    let e = client.upload(TOKEN, &session, &bytes, 0).await.unwrap_err();
    assert!(matches!(e, PlatformError::Upstream { status: 500, .. }), "{e:?}");
    let state = client.upload_state(TOKEN, &session, total).await.unwrap();
    assert_eq!(state, UploadState::Incomplete { next_offset: 100_000 });
    let id = done(client.upload(TOKEN, &session, &bytes, 100_000).await.unwrap());
    assert_eq!(fake.received_from(), [0, 100_000, 100_000 + 256 * KIB as u64]);
    assert_eq!(fake.video_bytes(&id).unwrap(), bytes);
}

#[tokio::test]
async fn an_expired_session_is_reported_not_restarted() {
    let (fake, client) = setup().await;
    let bytes = file(256 * KIB);
    let session = client.start_upload(TOKEN, &meta("Expired"), bytes.len() as u64, "video/mp4").await.unwrap();
    fake.expire_sessions();
    assert_eq!(client.upload_state(TOKEN, &session, bytes.len() as u64).await.unwrap(), UploadState::Expired);
    assert_eq!(client.upload(TOKEN, &session, &bytes, 0).await.unwrap(), UploadState::Expired);
    assert_eq!(fake.video_count(), 0);
}

#[tokio::test]
async fn publish_at_needs_a_private_video() {
    let (fake, client) = setup().await;
    let at: DateTime<Utc> = Utc::now() + chrono::Duration::days(3);
    let public = VideoMeta { privacy: "public".into(), publish_at: Some(at), ..meta("Scheduled") };
    match client.start_upload(TOKEN, &public, 10, "video/mp4").await.unwrap_err() {
        PlatformError::Api { code: 400, message, .. } => assert!(message.starts_with("invalidMetadata"), "{message}"),
        other => panic!("{other:?}"),
    }
    let scheduled = VideoMeta { publish_at: Some(at), ..meta("Scheduled") };
    let bytes = file(10);
    let session = client.start_upload(TOKEN, &scheduled, 10, "video/mp4").await.unwrap();
    done(client.upload(TOKEN, &session, &bytes, 0).await.unwrap());
    let videos = fake.videos();
    let sent = videos[0].4.as_deref().unwrap();
    assert_eq!(DateTime::parse_from_rfc3339(sent).unwrap().timestamp(), at.timestamp());
    assert_eq!(videos[0].3, "private");
}

#[tokio::test]
async fn status_goes_from_uploaded_to_processed_and_statistics_are_read() {
    let (fake, client) = setup().await;
    fake.processing_reads(1);
    let bytes = file(1_000);
    let session = client.start_upload(TOKEN, &meta("Stats"), 1_000, "video/mp4").await.unwrap();
    let id = done(client.upload(TOKEN, &session, &bytes, 0).await.unwrap());
    let first = client.video_status(TOKEN, &id).await.unwrap();
    assert_eq!((first.upload_status.as_str(), first.processing_status.as_str()), ("uploaded", "processing"));
    assert_eq!(first.privacy, "private");
    let second = client.video_status(TOKEN, &id).await.unwrap();
    assert_eq!((second.upload_status.as_str(), second.processing_status.as_str()), ("processed", "succeeded"));

    let e = client.engagement(TOKEN, &id).await.unwrap();
    assert_eq!(e.shares, 0);
    assert!(e.views > 0);
    fake.set_statistics(&id, (7, 2, 300));
    assert_eq!(
        client.engagement(TOKEN, &id).await.unwrap(),
        Engagement { likes: 7, comments: 2, shares: 0, views: 300 }
    );
    let missing = client.video_status(TOKEN, "nope").await.unwrap_err();
    assert!(matches!(missing, PlatformError::Api { code: VIDEO_NOT_FOUND, .. }), "{missing:?}");
}

#[tokio::test]
async fn quota_and_credentials_errors() {
    let (fake, client) = setup().await;
    fake.quota_exceeded(true);
    let e = client.start_upload(TOKEN, &meta("x"), 10, "video/mp4").await.unwrap_err();
    assert!(
        matches!(e, PlatformError::RateLimited { retry_after: Some(w), .. } if w >= Duration::from_secs(60)),
        "{e:?}"
    );
    assert!(matches!(client.engagement(TOKEN, "any").await, Err(PlatformError::RateLimited { .. })));
    fake.quota_exceeded(false);
    let session = client.start_upload(TOKEN, &meta("x"), 10, "video/mp4").await.unwrap();
    fake.revoke();
    assert!(matches!(client.upload(TOKEN, &session, &file(10), 0).await, Err(PlatformError::Auth { .. })));
    assert!(matches!(client.start_upload(TOKEN, &meta("x"), 10, "video/mp4").await, Err(PlatformError::Auth { .. })));
    fake.restore();
    let e = client.start_upload("ya29.other", &meta("x"), 10, "video/mp4").await.unwrap_err();
    assert!(matches!(e, PlatformError::Auth { .. }), "{e:?}");
    done(client.upload(TOKEN, &session, &file(10), 0).await.unwrap());
}

mod wire {
    use nexus_testkit::fake::wiremock::matchers::{header, method, path, query_param};
    use nexus_testkit::fake::wiremock::{Mock, MockServer, ResponseTemplate};
    use serde_json::json;

    use super::*;

    fn refusal(status: u16, reason: &str) -> ResponseTemplate {
        let body = json!({"error": {"code": status, "message": "refused", "errors": [{"reason": reason}]}});
        ResponseTemplate::new(status).set_body_json(body)
    }

    fn client(server: &MockServer, attempts: u32) -> YouTubeClient {
        let cfg = YouTubeConfig {
            upload_url: format!("{}/upload/youtube/v3", server.uri()),
            api_url: format!("{}/youtube/v3", server.uri()),
            timeout: Duration::from_secs(5),
            attempts,
            chunk_size: 256 * KIB,
        };
        YouTubeClient::new(cfg, reqwest::Client::new())
    }

    #[tokio::test]
    async fn google_reasons_map_to_platform_errors() {
        nexus_testkit::init_tracing();
        let server = MockServer::start().await;
        let videos = || Mock::given(method("GET")).and(path("/youtube/v3/videos"));
        videos().and(query_param("id", "forbidden")).respond_with(refusal(403, "forbidden")).mount(&server).await;
        videos()
            .and(query_param("id", "upload"))
            .respond_with(refusal(403, "uploadLimitExceeded"))
            .mount(&server)
            .await;
        // A rate limit once, then the answer: retried.
        let item =
            json!({"items": [{"id": "busy", "statistics": {"likeCount": "1", "commentCount": "2", "viewCount": "3"}}]});
        videos()
            .and(query_param("id", "busy"))
            .respond_with(refusal(403, "rateLimitExceeded"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        videos()
            .and(query_param("id", "busy"))
            .respond_with(ResponseTemplate::new(200).set_body_json(item))
            .mount(&server)
            .await;
        let c = client(&server, 3);
        let e = c.engagement(TOKEN, "forbidden").await.unwrap_err();
        assert!(
            matches!(&e, PlatformError::Api { code: 403, message, .. } if message.starts_with("forbidden")),
            "{e:?}"
        );
        let e = c.video_status(TOKEN, "upload").await.unwrap_err();
        assert!(matches!(e, PlatformError::RateLimited { retry_after: Some(_), .. }), "{e:?}");
        let e = c.engagement(TOKEN, "busy").await.unwrap();
        assert_eq!((e.likes, e.comments, e.views), (1, 2, 3));
    }

    #[tokio::test]
    async fn a_chunk_failing_every_time_ends_after_the_attempts() {
        nexus_testkit::init_tracing();
        let server = MockServer::start().await;
        let total = 2 * 256 * KIB;
        let put = |range: String| Mock::given(method("PUT")).and(path("/session")).and(header("content-range", range));
        let held = || ResponseTemplate::new(308).insert_header("range", "bytes=0-262143");
        put(format!("bytes 0-262143/{total}")).respond_with(held()).expect(1).mount(&server).await;
        put(format!("bytes 262144-524287/{total}"))
            .respond_with(ResponseTemplate::new(503))
            .expect(3)
            .mount(&server)
            .await;
        put(format!("bytes */{total}")).respond_with(held()).expect(2).mount(&server).await;
        let session = format!("{}/session", server.uri());
        let e = client(&server, 3).upload(TOKEN, &session, &file(total), 0).await.unwrap_err();
        assert!(matches!(e, PlatformError::Upstream { status: 503, .. }), "{e:?}");
        server.verify().await;
    }
}
