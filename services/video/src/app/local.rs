//! The local renderer: a real MP4 made on this machine when no provider key is set (`provider:
//! local`). Speech comes from espeak-ng in the video's language; ffmpeg turns the avatar (the
//! portrait, fetched through the safe outbound client, or a catalogue backdrop) into a video with
//! a gentle zoom, adds the speech (AAC) and burns in the captions (libass, which shapes Hebrew
//! and Arabic right to left with a Noto font), encoded as H.264. Needs the Debian packages
//! `espeak-ng`, `ffmpeg` and `fonts-noto-core`.
//!
//! The speech is made again at render time rather than kept from the voice step: espeak-ng is
//! free and deterministic, and the job then needs nothing that lived only in memory, so a
//! restart between steps loses nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nexus_kernel::Locale;
use nexus_platform::outbound::{Limits, OutboundClient};
use tokio::process::Command;

use crate::domain::captions;
use crate::domain::{Aspect, Avatar};

/// The longest a local render may take.
const RENDER_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest avatar image fetched.
const MAX_AVATAR_BYTES: u64 = 10 * 1024 * 1024;
const FRAME_RATE: u32 = 25;

/// A finished local render, in a directory removed when this is dropped.
#[derive(Debug)]
pub struct Rendered {
    pub file: PathBuf,
    /// Seconds of speech (and so of video).
    pub duration: f64,
    _dir: tempfile::TempDir,
}

/// Why a render failed; `permanent` when trying again cannot help (bad avatar, missing tools).
#[derive(Debug, Clone)]
pub struct RenderError {
    pub code: &'static str,
    pub detail: String,
    pub permanent: bool,
}

fn failed(detail: impl Into<String>) -> RenderError {
    RenderError { code: "video.render_failed", detail: detail.into(), permanent: true }
}

/// The espeak-ng voice of a language.
pub fn espeak_voice(language: Locale) -> &'static str {
    match language {
        Locale::En => "en-us",
        Locale::Es => "es",
        Locale::Pt => "pt-br",
        Locale::He => "he",
        Locale::Ar => "ar",
    }
}

/// What to render.
pub struct LocalJob<'a> {
    pub script: &'a str,
    pub language: Locale,
    pub aspect: Aspect,
    pub captions: bool,
    pub avatar: Avatar,
    /// The bytes of an uploaded avatar (checked when it was uploaded).
    pub image: Option<Vec<u8>>,
    pub music: crate::domain::music::Music,
}

pub(crate) async fn run(program: &str, args: &[&str], cwd: &Path) -> Result<Vec<u8>, RenderError> {
    let child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RenderError {
            code: "video.local_renderer_unavailable",
            detail: format!("{program}: {e}"),
            permanent: true,
        })?;
    let out = tokio::time::timeout(RENDER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| RenderError {
            code: "video.render_timeout",
            detail: format!("{program} timed out"),
            permanent: true,
        })?
        .map_err(|e| failed(format!("{program}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        return Err(failed(format!("{program} exited with {}: {tail}", out.status)));
    }
    Ok(out.stdout)
}

/// Seconds of a media file, by ffprobe.
pub async fn duration_of(file: &Path) -> Result<f64, RenderError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file.to_string_lossy();
    let out =
        run("ffprobe", &["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", &name], dir)
            .await?;
    String::from_utf8_lossy(&out).trim().parse::<f64>().map_err(|_| failed("ffprobe gave no duration"))
}

/// Fetches a portrait: at most 10 MiB, a PNG or JPEG by its first bytes.
async fn fetch_avatar(outbound: &OutboundClient, url: &str, dir: &Path) -> Result<PathBuf, RenderError> {
    let limits = Limits { max_bytes: MAX_AVATAR_BYTES, timeout: Duration::from_secs(30) };
    let resp = outbound.get_with(url, limits).await.map_err(|e| RenderError {
        code: "video.invalid_avatar",
        detail: format!("avatar not fetched: {e}"),
        permanent: true,
    })?;
    let bad = |why: &str| RenderError { code: "video.invalid_avatar", detail: why.to_owned(), permanent: true };
    if !resp.status.is_success() {
        return Err(bad(&format!("avatar answered {}", resp.status)));
    }
    let ext = if resp.body.starts_with(&[0x89, b'P', b'N', b'G']) {
        "png"
    } else if resp.body.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpg"
    } else {
        return Err(bad("the avatar is not a PNG or JPEG image"));
    };
    let path = dir.join(format!("avatar.{ext}"));
    tokio::fs::write(&path, &resp.body).await.map_err(|e| failed(e.to_string()))?;
    Ok(path)
}

/// Renders `job` into an MP4.
pub async fn render(outbound: &OutboundClient, job: LocalJob<'_>) -> Result<Rendered, RenderError> {
    let dir = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
    let d = dir.path();
    tokio::fs::write(d.join("script.txt"), job.script).await.map_err(|e| failed(e.to_string()))?;
    run("espeak-ng", &["-v", espeak_voice(job.language), "-s", "150", "-f", "script.txt", "-w", "speech.wav"], d)
        .await?;
    let duration = duration_of(&d.join("speech.wav")).await?;
    let sound = if job.music == crate::domain::music::Music::None {
        "speech.wav"
    } else {
        super::music::under_speech(&d.join("speech.wav"), job.music, duration, &d.join("sound.wav")).await?;
        "sound.wav"
    };
    let (w, h) = job.aspect.size();
    let image = match (&job.avatar, &job.image) {
        (Avatar::Uploaded(_), Some(bytes)) => {
            let path = d.join("avatar.img");
            tokio::fs::write(&path, bytes).await.map_err(|e| failed(e.to_string()))?;
            Some(path)
        }
        (Avatar::Url(url), _) => Some(fetch_avatar(outbound, url, d).await?),
        _ => None,
    };
    // The portrait fills the frame and zooms in slowly (at most 10 %); a catalogue avatar is a
    // plain backdrop.
    let mut filter = format!(
        "[0:v]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,\
         zoompan=z='min(zoom+0.0007,1.1)':d=1:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s={w}x{h}:fps={FRAME_RATE}"
    );
    if job.captions {
        let ass = captions::ass(job.script, job.language, duration, w, h);
        tokio::fs::write(d.join("captions.ass"), ass).await.map_err(|e| failed(e.to_string()))?;
        filter.push_str(",subtitles=captions.ass");
    }
    filter.push_str(",format=yuv420p[v]");
    let colour_source;
    let mut args: Vec<&str> = vec!["-y", "-hide_banner", "-loglevel", "error"];
    let image_name;
    match &image {
        Some(path) => {
            image_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            args.extend(["-loop", "1", "-framerate", "25", "-i", &image_name]);
        }
        None => {
            let colour = match &job.avatar {
                Avatar::Catalogue(_, _, c) => *c,
                Avatar::Url(_) | Avatar::Uploaded(_) => "0x222222",
            };
            colour_source = format!("color=c={colour}:s={w}x{h}:r={FRAME_RATE}");
            args.extend(["-f", "lavfi", "-i", &colour_source]);
        }
    }
    let length = format!("{duration:.3}");
    args.extend([
        "-i",
        sound,
        "-filter_complex",
        &filter,
        "-map",
        "[v]",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "28",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-t",
        &length,
        "-movflags",
        "+faststart",
        "out.mp4",
    ]);
    run("ffmpeg", &args, d).await?;
    Ok(Rendered { file: d.join("out.mp4"), duration, _dir: dir })
}
