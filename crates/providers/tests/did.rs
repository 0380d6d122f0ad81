//! D-ID client against the fake D-ID (real HTTP on 127.0.0.1, port 0).

use std::time::{Duration, Instant};

use nexus_kernel::ErrorKind;
use nexus_providers::did::{CreateTalk, DidClient, DidConfig, DidError, Script, TalkStatus, Talks};
use nexus_testkit::did::{Completion, FakeDid, Outcome, TEST_API_KEY};
use serde_json::json;

async fn setup() -> (FakeDid, DidClient) {
    nexus_testkit::init_tracing();
    let fake = FakeDid::start().await;
    let client = DidClient::new(
        DidConfig { api_key: TEST_API_KEY.into(), base_url: fake.base_url.clone() },
        reqwest::Client::new(),
    );
    (fake, client)
}

fn talk(marker: &str, audio_url: &str) -> CreateTalk {
    CreateTalk {
        source_url: "https://example.com/face.jpg".into(),
        script: Script::Audio { audio_url: audio_url.into() },
        webhook: None,
        user_data: Some(marker.into()),
        name: None,
    }
}

#[tokio::test]
async fn upload_create_and_poll_to_done() {
    let (fake, client) = setup().await;
    let url = client.upload_audio(b"ID3 fake mp3".to_vec(), "audio/mpeg", "speech.mp3").await.unwrap();
    assert!(url.starts_with("s3://"), "{url}");
    let created = client.create_talk(&talk("vid_1", &url)).await.unwrap();
    assert_eq!(created.status, TalkStatus::Created);
    assert_eq!(client.get_talk(&created.id).await.unwrap().status, TalkStatus::Started);
    let done = client.get_talk(&created.id).await.unwrap();
    assert_eq!(done.status, TalkStatus::Done);
    assert!(done.result_url.unwrap().ends_with(".mp4"));
    assert_eq!(done.user_data.as_deref(), Some("vid_1"));
    assert_eq!(fake.talks_for("vid_1"), 1);
    assert_eq!(fake.requests_for_talk(&created.id), 2);
}

#[tokio::test]
async fn rejected_and_error_talks_say_why() {
    let (fake, client) = setup().await;
    fake.set_outcome(Outcome::Rejected);
    let t = client.create_talk(&talk("vid_2", "s3://a/b.mp3")).await.unwrap();
    client.get_talk(&t.id).await.unwrap();
    let t = client.get_talk(&t.id).await.unwrap();
    assert_eq!(t.status, TalkStatus::Rejected);
    assert!(t.failure().contains("moderation"), "{}", t.failure());
}

#[tokio::test]
async fn a_bad_key_and_validation_errors_are_not_retried() {
    let (fake, _) = setup().await;
    let bad = DidClient::new(
        DidConfig { api_key: "nobody:nothing".into(), base_url: fake.base_url.clone() },
        reqwest::Client::new(),
    );
    assert!(matches!(bad.get_talk("tlk_x").await, Err(DidError::Auth)));
    let (fake, client) = setup().await;
    let mut req = talk("vid_3", "s3://a/b.mp3");
    req.source_url = String::new();
    let e = client.create_talk(&req).await.unwrap_err();
    assert!(matches!(e, DidError::Validation { ref kind, .. } if kind == "ValidationError"), "{e:?}");
    assert_eq!(nexus_kernel::Error::from(e).kind(), ErrorKind::Unprocessable);
    fake.fail_next(1, 402, json!({"kind": "InsufficientCreditsError", "description": "not enough credits"}), None);
    let e = client.create_talk(&talk("vid_3", "s3://a/b.mp3")).await.unwrap_err();
    assert!(matches!(e, DidError::InsufficientCredits { .. }), "{e:?}");
    assert_eq!(fake.requests().iter().filter(|r| r.path == "/talks").count(), 2);
}

#[tokio::test]
async fn throttling_is_retried_after_the_wait_asked() {
    let (fake, client) = setup().await;
    fake.fail_next(1, 429, json!({"kind": "TooManyRequests", "description": "slow down"}), Some(1));
    let started = Instant::now();
    let t = client.create_talk(&talk("vid_4", "s3://a/b.mp3")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.talks_for("vid_4"), 1);
    // A wait longer than the cap comes back at once as a rate limit.
    fake.fail_next(1, 429, json!({"kind": "TooManyRequests", "description": "slow down"}), Some(600));
    let e = client.get_talk(&t.id).await.unwrap_err();
    assert!(matches!(e, DidError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(600)));
    assert!(e.is_transient());
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_not_sent_again_and_can_be_found() {
    let (fake, client) = setup().await;
    fake.lose_next_create_answer();
    let e = client.create_talk(&talk("vid_5", "s3://a/b.mp3")).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(fake.talks_for("vid_5"), 1, "a 500 on create is not retried: the talk may exist");
    let found = client.find_talk("vid_5").await.unwrap().expect("the talk is found by its marker");
    assert_eq!(found.user_data.as_deref(), Some("vid_5"));
    assert!(client.find_talk("vid_other").await.unwrap().is_none());
}

#[tokio::test]
async fn finding_pages_through_many_talks() {
    let (_fake, client) = setup().await;
    client.create_talk(&talk("vid_old", "s3://a/b.mp3")).await.unwrap();
    for i in 0..150 {
        client.create_talk(&talk(&format!("other_{i}"), "s3://a/b.mp3")).await.unwrap();
    }
    assert!(client.find_talk("vid_old").await.unwrap().is_some(), "found on the second page");
}

#[tokio::test]
async fn webhook_completion_leaves_reads_alone() {
    let (fake, client) = setup().await;
    fake.set_completion(Completion::Webhook);
    let t = client.create_talk(&talk("vid_6", "s3://a/b.mp3")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(client.get_talk(&t.id).await.unwrap().status, TalkStatus::Created);
    }
    fake.finish(&t.id).await;
    assert_eq!(client.get_talk(&t.id).await.unwrap().status, TalkStatus::Done);
    client.delete_talk(&t.id).await.unwrap();
    assert_eq!(Talks::name(&client), "d-id");
}
