//! ElevenLabs client against the fake ElevenLabs (real HTTP on 127.0.0.1, port 0).

use std::time::{Duration, Instant};

use nexus_kernel::ErrorKind;
use nexus_providers::elevenlabs::{ElevenLabsClient, ElevenLabsConfig, ElevenLabsError, LocalSpeech, SpeechSynth};
use nexus_testkit::elevenlabs::{FakeElevenLabs, TEST_API_KEY, TEST_VOICES};
use serde_json::json;

async fn setup() -> (FakeElevenLabs, ElevenLabsClient) {
    nexus_testkit::init_tracing();
    let fake = FakeElevenLabs::start().await;
    let mut cfg = ElevenLabsConfig::new(TEST_API_KEY);
    cfg.base_url = fake.base_url.clone();
    (fake, ElevenLabsClient::new(cfg, reqwest::Client::new()))
}

#[tokio::test]
async fn voices_and_speech_with_characters_billed() {
    let (fake, client) = setup().await;
    let voices = client.list_voices().await.unwrap();
    assert_eq!(voices.len(), TEST_VOICES.len());
    assert_eq!(voices[0].name, "Rachel");
    let speech = client.text_to_speech(TEST_VOICES[0].0, "Hola, bienvenidos.", "es").await.unwrap();
    assert_eq!(speech.content_type, "audio/mpeg");
    assert_eq!(speech.characters, 18);
    assert!(speech.audio.starts_with(b"ID3"));
    assert!(speech.request_id.is_some());
    assert_eq!(fake.characters_used(), 18);
    let sent = &fake.requests()[1].body;
    assert_eq!(sent["language_code"], "es");
    assert_eq!(sent["model_id"], "eleven_multilingual_v2");
}

#[tokio::test]
async fn quota_exceeded_is_permanent_and_not_retried() {
    let (fake, client) = setup().await;
    fake.set_remaining(5);
    let e = client.text_to_speech(TEST_VOICES[0].0, "far more than five characters", "en").await.unwrap_err();
    assert!(
        matches!(e, ElevenLabsError::QuotaExceeded { ref message } if message.contains("exceeds your quota")),
        "{e:?}"
    );
    assert!(!e.is_transient());
    assert_eq!(fake.speech_requests(), 1);
    assert_eq!(nexus_kernel::Error::from(e).code(), "provider.quota_exceeded");
}

#[tokio::test]
async fn busy_answers_are_retried_after_retry_after() {
    let (fake, client) = setup().await;
    fake.fail_next(1, 429, FakeElevenLabs::busy_body(), Some(1));
    let started = Instant::now();
    client.text_to_speech(TEST_VOICES[1].0, "Shalom", "he").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.speech_requests(), 2);
    fake.fail_next(3, 503, json!({"detail": {"status": "system_busy", "message": "busy"}}), None);
    let e = client.text_to_speech(TEST_VOICES[1].0, "Shalom", "he").await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn bad_input_and_bad_keys() {
    let (fake, client) = setup().await;
    assert!(matches!(client.text_to_speech("nope", "hi", "en").await, Err(ElevenLabsError::NotFound { .. })));
    assert!(matches!(client.text_to_speech("../x", "hi", "en").await, Err(ElevenLabsError::InvalidArgument(_))));
    let mut cfg = ElevenLabsConfig::new("wrong");
    cfg.base_url = fake.base_url.clone();
    let bad = ElevenLabsClient::new(cfg, reqwest::Client::new());
    let e = bad.list_voices().await.unwrap_err();
    assert!(matches!(e, ElevenLabsError::Auth));
    assert_eq!(nexus_kernel::Error::from(e).kind(), ErrorKind::Internal);
}

#[tokio::test]
async fn local_speech_is_labelled_and_free() {
    let s = LocalSpeech.synthesize("local-female", "fifteen chars!!", "en").await.unwrap();
    assert_eq!((s.characters, s.content_type.as_str()), (0, "audio/wav"));
    assert_eq!(LocalSpeech.name(), "local");
}
