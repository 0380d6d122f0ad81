//! What a finished file is: its length and picture size by ffprobe, and a JPEG thumbnail of one
//! frame by ffmpeg. Run on every finished video, rendered here or by a provider (a provider's
//! file that ffprobe cannot read as a video is not delivered).

use std::path::Path;

use super::local::{RenderError, run};

/// The widest thumbnail (smaller pictures keep their size).
const THUMBNAIL_WIDTH: u32 = 640;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaInfo {
    pub duration: f64,
    pub width: i32,
    pub height: i32,
}

fn unreadable(detail: impl Into<String>) -> RenderError {
    RenderError { code: "video.render_failed", detail: detail.into(), permanent: true }
}

fn dir_of(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

/// The file's duration and the size of its first video stream.
pub async fn probe(file: &Path) -> Result<MediaInfo, RenderError> {
    let name = file.to_string_lossy();
    let args = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height:format=duration",
        "-of",
        "json",
    ];
    let mut all: Vec<&str> = args.to_vec();
    all.push(&name);
    let out = run("ffprobe", &all, dir_of(file)).await?;
    let json: serde_json::Value =
        serde_json::from_slice(&out).map_err(|e| unreadable(format!("ffprobe answered no JSON: {e}")))?;
    let stream = json["streams"].get(0).ok_or_else(|| unreadable("the file has no video stream"))?;
    let size = |k: &str| stream[k].as_i64().and_then(|n| i32::try_from(n).ok()).filter(|n| *n > 0);
    let (Some(width), Some(height)) = (size("width"), size("height")) else {
        return Err(unreadable("the video stream has no picture size"));
    };
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| unreadable("the file has no duration"))?;
    Ok(MediaInfo { duration, width, height })
}

/// A JPEG of the frame a second in (or halfway through a shorter video), at most 640 wide.
pub async fn thumbnail(file: &Path, info: MediaInfo, out: &Path) -> Result<(), RenderError> {
    let at = format!("{:.3}", (info.duration / 2.0).min(1.0));
    let scale = format!("scale='min({THUMBNAIL_WIDTH},iw)':-2");
    let (input, output) = (file.to_string_lossy(), out.to_string_lossy());
    run(
        "ffmpeg",
        &["-v", "error", "-y", "-ss", &at, "-i", &input, "-frames:v", "1", "-vf", &scale, "-q:v", "4", &output],
        dir_of(file),
    )
    .await?;
    Ok(())
}
