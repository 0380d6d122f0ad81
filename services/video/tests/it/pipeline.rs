//! The render job against the fakes: happy path by polling, provider failures giving credits
//! and the month's count back, the plan's monthly limit, and restarts.

use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::video::v1 as pb;
use nexus_testkit::did::{Completion, Outcome};
use nexus_testkit::identity::authed;

use crate::support::{self, code_of, request};

#[tokio::test]
async fn a_video_is_rendered_by_polling_stored_and_charged() {
    let s = support::start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await;
    let created = s.create(&token, request("Welcome to our spring sale!")).await.unwrap();
    assert_eq!(created.status, "queued");
    assert_eq!((created.provider.as_str(), created.voice_provider.as_str()), ("d-id", "elevenlabs"));
    assert_eq!(created.estimated_credits, 10, "one render minute");
    let done = s.wait_for(&token, &created.id, "done").await;
    assert_eq!(done.characters_billed, 27);
    assert_eq!(done.size_bytes, 64 * 1024, "the fake's file, copied whole");
    // What ffprobe found in the stored file (the fake's sample: 4.2 s at 320×180).
    assert!((done.duration_seconds - 4.2).abs() < 0.05, "{}", done.duration_seconds);
    assert_eq!((done.width, done.height), (320, 180));
    assert!(done.thumbnail_url.starts_with("http://127.0.0.1:8080/v1/media/thumbnails/vtn_"), "{}", done.thumbnail_url);
    assert_eq!(created.thumbnail_url, "", "no thumbnail before it is done");
    assert_eq!(done.credits_charged, 10);
    assert!(done.finished_at.is_some() && done.error_code.is_empty());
    assert_eq!(
        s.transitions(&token, &created.id).await,
        ["queued", "synthesizing_voice", "rendering", "rendering", "storing", "done"]
    );
    // One talk, carrying the video's id, made from the uploaded speech.
    assert_eq!(s.did.talks_for(&created.id), 1);
    assert_eq!(s.did.audio_uploads(), 1);
    assert_eq!(s.eleven.speech_requests(), 1);
    let talk = &s.did.talks()[0];
    assert!(talk["audio_url"].as_str().unwrap().starts_with("s3://"));
    // The file is in storage under the workspace, its thumbnail (a JPEG) beside it.
    let files = walk(s.store.path());
    let size_of = |ext: &str| -> Vec<u64> {
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect()
    };
    assert_eq!((size_of("mp4"), files.len()), (vec![64 * 1024], 2), "{files:?}");
    let thumb = files.iter().find(|p| p.extension().is_some_and(|e| e == "jpg")).unwrap();
    assert!(std::fs::read(thumb).unwrap().starts_with(&[0xFF, 0xD8, 0xFF]));
    // Charged 10 credits through the outbox; the month's count stays.
    let after = s.settled(&token).await;
    assert_eq!(after.available, before.available - 10);
    assert_eq!(s.videos_used(&token).await, 1);
    let subjects = s.subjects(ws).await;
    assert_eq!(
        subjects,
        ["nexus.video.video.requested", "nexus.video.job.finished", "nexus.video.video.completed"],
        "{subjects:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_rejected_talk_fails_and_gives_everything_back() {
    let s = support::start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await;
    s.did.set_outcome(Outcome::Rejected);
    let created = s.create(&token, request("Hello")).await.unwrap();
    let failed = s.wait_for(&token, &created.id, "failed").await;
    assert_eq!(failed.error_code, "video.render_rejected");
    assert!(failed.error_message.contains("refused"), "{}", failed.error_message);
    assert_eq!(failed.credits_charged, 0);
    let after = s.settled(&token).await;
    assert_eq!(after.available, before.available, "credits given back");
    assert!(
        nexus_testkit::eventually(Duration::from_secs(10), || async { s.videos_used(&token).await == 0 }).await,
        "the month's count given back"
    );
    assert_eq!(*s.transitions(&token, &created.id).await.last().unwrap(), "failed");
    assert!(s.subjects(ws).await.contains(&"nexus.video.video.failed".to_owned()));
}

#[tokio::test]
async fn an_elevenlabs_quota_exceeded_fails_in_the_users_language_and_gives_back() {
    let s = support::start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let before = s.balance(&token).await;
    s.eleven.set_remaining(3);
    let mut req = request("Hola a todos, bienvenidos");
    req.language = "es".into();
    let created = s.create(&token, req).await.unwrap();
    let failed = s.wait_for(&token, &created.id, "failed").await;
    assert_eq!(failed.error_code, "provider.quota_exceeded");
    assert_eq!(s.eleven.speech_requests(), 1, "a quota answer is not retried");
    assert_eq!(s.did.talks().len(), 0, "no talk without speech");
    assert_eq!(s.settled(&token).await.available, before.available);
    assert!(nexus_testkit::eventually(Duration::from_secs(10), || async { s.videos_used(&token).await == 0 }).await);
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    // Speech is throttled twice (each answer is retried by the client too), then works.
    s.eleven.fail_next(4, 429, nexus_testkit::elevenlabs::FakeElevenLabs::busy_body(), None);
    s.did.fail_next(3, 503, serde_json::json!({"kind": "InternalServerError", "description": "down"}), None);
    let created = s.create(&token, request("Retry me")).await.unwrap();
    let done = s.wait_for(&token, &created.id, "done").await;
    assert_eq!(s.did.talks_for(&created.id), 1);
    assert!(done.error_code.is_empty());
}

#[tokio::test]
async fn a_free_workspace_gets_two_videos_a_month_and_the_third_reaches_no_provider() {
    let s = support::start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    for i in 0..2 {
        let v = s.create(&token, request(&format!("Video {i}"))).await.unwrap();
        s.wait_for(&token, &v.id, "done").await;
    }
    let (speech, talks, did_requests) = (s.eleven.requests().len(), s.did.talks().len(), s.did.requests().len());
    let err = s.create(&token, request("A third one")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert_eq!(code_of(&err), "subscriptions.limit_reached");
    assert_eq!(s.eleven.requests().len(), speech, "ElevenLabs saw no request");
    assert_eq!((s.did.talks().len(), s.did.requests().len()), (talks, did_requests), "D-ID saw no request");
    // The credits held for the refused video come back; nothing was stored.
    assert_eq!(s.settled(&token).await.reserved, 0);
    let list = s.client().list_videos(authed(pb::ListRequest::default(), &token)).await.unwrap().into_inner();
    assert_eq!(list.items.len(), 2);
}

#[tokio::test]
async fn a_restart_while_rendering_resumes_with_exactly_one_talk() {
    let mut s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    // Talks finish only when told, so the job is caught while rendering.
    s.did.set_completion(Completion::Webhook);
    let created = s.create(&token, request("Survive a restart")).await.unwrap();
    assert!(
        nexus_testkit::eventually(Duration::from_secs(10), || async { s.did.talks_for(&created.id) == 1 }).await,
        "the talk is made"
    );
    s.wait_for(&token, &created.id, "rendering").await;
    s.stop_video().await;
    let talk = s.did.talks()[0]["id"].as_str().unwrap().to_owned();
    s.did.finish(&talk).await;
    s.start_video().await;
    s.wait_for(&token, &created.id, "done").await;
    assert_eq!(s.did.talks_for(&created.id), 1, "no second talk after the restart");
    assert_eq!(s.eleven.speech_requests(), 1, "no second speech either");
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_looked_up_not_made_again() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    // D-ID makes the talk but the answer never arrives: the job only knows it was "creating".
    s.did.lose_next_create_answer();
    let created = s.create(&token, request("Exactly once")).await.unwrap();
    s.wait_for(&token, &created.id, "done").await;
    assert_eq!(s.did.talks_for(&created.id), 1, "the talk was found by its marker, not made twice");
    let posts = s.did.requests().iter().filter(|r| r.method == "POST" && r.path == "/talks").count();
    assert_eq!(posts, 1);
    assert!(s.did.requests().iter().any(|r| r.method == "GET" && r.path == "/talks"), "looked up");
}

#[tokio::test]
async fn canceling_a_rendering_video_gives_everything_back() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let before = s.balance(&token).await;
    s.did.set_completion(Completion::Webhook);
    let created = s.create(&token, request("Cancel me")).await.unwrap();
    assert!(nexus_testkit::eventually(Duration::from_secs(10), || async { s.did.talks_for(&created.id) == 1 }).await);
    let canceled = s
        .client()
        .cancel_video(authed(pb::GetByIdRequest { id: created.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((canceled.status.as_str(), canceled.error_code.as_str()), ("canceled", "video.canceled"));
    // The talk finishing afterwards changes nothing.
    let talk = s.did.talks()[0]["id"].as_str().unwrap().to_owned();
    s.did.finish(&talk).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.get(&token, &created.id).await.status, "canceled");
    assert_eq!(s.settled(&token).await.available, before.available);
    assert!(nexus_testkit::eventually(Duration::from_secs(10), || async { s.videos_used(&token).await == 0 }).await);
    // A finished video cannot be canceled.
    let again =
        s.client().cancel_video(authed(pb::GetByIdRequest { id: created.id.clone() }, &token)).await.unwrap_err();
    assert_eq!(code_of(&again), "video.not_cancelable");
}

#[tokio::test]
async fn replicas_share_the_jobs_and_each_video_gets_one_talk() {
    let s = support::start_with(&[("NEXUS_PIPELINE__WORKERS", "3".into())]).await;
    let _second = s.replica().await;
    let mut made = Vec::new();
    for w in 0..4 {
        let token = s.owner(WorkspaceId::new());
        for i in 0..2 {
            let v = s.create(&token, request(&format!("Workspace {w}, video {i}"))).await.unwrap();
            made.push((token.clone(), v.id));
        }
    }
    for (token, id) in &made {
        s.wait_for(token, id, "done").await;
        assert_eq!(s.did.talks_for(id), 1, "{id}");
    }
    assert_eq!(s.did.talks().len(), made.len());
    assert_eq!(s.eleven.speech_requests(), made.len(), "no speech made twice");
}

#[tokio::test]
async fn music_is_mixed_into_a_provider_render_after_download() {
    let s = support::start().await;
    let token = s.owner(WorkspaceId::new());
    let req = pb::CreateVideoRequest { music: "upbeat".into(), ..request("Music under D-ID") };
    let v = s.create(&token, req).await.unwrap();
    let done = s.wait_for(&token, &v.id, "done").await;
    assert_eq!((done.music.as_str(), done.width, done.height), ("upbeat", 320, 180));
    // The stored file is the remix (not the provider's bytes), with one picture and one sound.
    let files = walk(s.store.path());
    let mp4 = files.iter().find(|p| p.extension().is_some_and(|e| e == "mp4")).unwrap();
    assert_eq!(std::fs::metadata(mp4).unwrap().len() as i64, done.size_bytes);
    assert_ne!(done.size_bytes, 64 * 1024);
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0"])
        .arg(mp4)
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(streams.lines().collect::<Vec<_>>(), ["h264,video", "aac,audio"], "{streams}");
    assert!((done.duration_seconds - 4.2).abs() < 0.1);
}
