//! The local renderer (no provider keys): a real MP4 made with espeak-ng and ffmpeg, checked
//! with ffprobe.

use std::process::Command;

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::video::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support;

fn probe(file: &std::path::Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_format", "-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seconds espeak-ng takes to say `text` in `voice`, measured on its own.
fn speech_length(text: &str, voice: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), text, voice);
    probe(&wav)["format"]["duration"].as_str().unwrap().parse().unwrap()
}

/// What espeak-ng says for `text`, as the renderer makes it.
fn speech(dir: &std::path::Path, text: &str, voice: &str) -> std::path::PathBuf {
    let wav = dir.join("s.wav");
    let ok = Command::new("espeak-ng").args(["-v", voice, "-s", "150", "-w"]).arg(&wav).arg(text).status().unwrap();
    assert!(ok.success());
    wav
}

/// Stretches of the sound quieter than -40 dB for at least 0.15 s.
fn silences(file: &std::path::Path) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-af", "silencedetect=noise=-40dB:d=0.15", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).matches("silence_start").count()
}

async fn download(s: &support::Stack, token: &str, id: &str) -> std::path::PathBuf {
    let link = s.client().create_download_link(authed(pb::GetByIdRequest { id: id.into() }, token)).await.unwrap();
    let mut stream = s
        .client()
        .open_download(nexus_proto::common::OpenFileRequest { token: link.into_inner().token, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        data.extend_from_slice(&chunk.data);
    }
    let path = s.store.path().join(format!("{id}-download.mp4"));
    std::fs::write(&path, data).unwrap();
    path
}

async fn render(script: &str, language: &str, aspect: &str) -> (support::Stack, String, pb::VideoRecord) {
    render_with_music(script, language, aspect, "").await
}

async fn render_with_music(
    script: &str,
    language: &str,
    aspect: &str,
    music: &str,
) -> (support::Stack, String, pb::VideoRecord) {
    let s =
        support::start_with(&[("NEXUS_VOICE__PROVIDER", "local".into()), ("NEXUS_RENDER__PROVIDER", "local".into())])
            .await;
    let token = s.owner(WorkspaceId::new());
    let req = pb::CreateVideoRequest {
        script: script.into(),
        avatar_url: "catalogue:alice".into(),
        voice_id: "local-female".into(),
        language: language.into(),
        aspect_ratio: aspect.into(),
        captions: true,
        music: music.into(),
        ..Default::default()
    };
    let v = s.create(&token, req).await.unwrap();
    assert_eq!((v.provider.as_str(), v.voice_provider.as_str()), ("local", "local"));
    let done = s.wait_for(&token, &v.id, "done").await;
    (s, token, done)
}

#[tokio::test]
async fn the_local_renderer_makes_an_h264_aac_mp4_as_long_as_the_speech() {
    let script = "Welcome to our spring sale. Every trail shoe is twenty percent off this week only.";
    let (s, token, done) = render(script, "en", "9:16").await;
    let file = download(&s, &token, &done.id).await;
    let info = probe(&file);
    let streams = info["streams"].as_array().unwrap();
    let video: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "video").collect();
    let audio: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "audio").collect();
    assert_eq!((video.len(), audio.len()), (1, 1), "{info}");
    assert_eq!(video[0]["codec_name"], "h264");
    assert_eq!(audio[0]["codec_name"], "aac");
    assert_eq!((video[0]["width"].as_u64(), video[0]["height"].as_u64()), (Some(720), Some(1280)), "9:16");
    let length: f64 = info["format"]["duration"].as_str().unwrap().parse().unwrap();
    let speech = speech_length(script, "en-us");
    assert!((length - speech).abs() <= speech * 0.1, "video {length} s, speech {speech} s");
    assert!((done.duration_seconds - speech).abs() <= speech * 0.1);
    assert_eq!(done.size_bytes as u64, std::fs::metadata(&file).unwrap().len());
    assert_eq!((done.width, done.height), (720, 1280), "recorded as ffprobe found it");
    assert!(!done.thumbnail_url.is_empty());
    assert_eq!(done.credits_charged, 10);
}

#[tokio::test]
async fn an_arabic_script_renders_square_with_right_to_left_captions() {
    let script = "مرحبا بكم في متجرنا. تخفيضات الربيع تبدأ اليوم.";
    let (s, token, done) = render(script, "ar", "1:1").await;
    assert_eq!(done.dir, nexus_proto::common::TextDirection::Rtl as i32);
    let info = probe(&download(&s, &token, &done.id).await);
    let video = info["streams"].as_array().unwrap().iter().find(|s| s["codec_type"] == "video").unwrap().clone();
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(720), Some(720)));
    // The captions the renderer burned in: Arabic font, each cue embedded right to left.
    let ass = nexus_video::domain::captions::ass(script, nexus_kernel::Locale::Ar, done.duration_seconds, 720, 720);
    assert!(ass.contains("Noto Sans Arabic"));
    assert!(ass.lines().filter(|l| l.starts_with("Dialogue:")).all(|l| l.contains('\u{202B}')));
}

#[tokio::test]
async fn background_music_plays_under_the_speech_in_one_aac_stream() {
    let script = "Welcome to our spring sale. Every trail shoe is twenty percent off. Come and see.";
    let (s, token, done) = render_with_music(script, "en", "16:9", "calm").await;
    assert_eq!(done.music, "calm");
    let file = download(&s, &token, &done.id).await;
    let info = probe(&file);
    let streams = info["streams"].as_array().unwrap();
    let audio: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "audio").collect();
    assert_eq!((streams.len(), audio.len()), (2, 1), "{info}");
    assert_eq!(audio[0]["codec_name"], "aac");
    let speech_alone = speech(s.store.path(), script, "en-us");
    let length: f64 = info["format"]["duration"].as_str().unwrap().parse().unwrap();
    let spoken = speech_length(script, "en-us");
    assert!((length - spoken).abs() <= spoken * 0.1, "video {length} s, speech {spoken} s");
    // The pauses between sentences are silent in the speech alone, and filled by the music.
    assert!(silences(&speech_alone) > 0, "the speech has pauses");
    assert_eq!(silences(&file), 0, "the music is heard in them");

    // An unknown track is refused before anything is held.
    let bad = pb::CreateVideoRequest {
        script: "Hi".into(),
        avatar_url: "catalogue:alice".into(),
        voice_id: "local-female".into(),
        music: "jazz".into(),
        ..Default::default()
    };
    let err = s.client().create_video(authed(bad, &token)).await.unwrap_err();
    assert_eq!(crate::support::code_of(&err), "video.unknown_music");
}
