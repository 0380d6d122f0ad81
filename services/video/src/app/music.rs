//! Background music mixed under the speech with ffmpeg: into the speech before a local render,
//! and into a provider's finished file after it is copied (its picture kept as it is, its sound
//! encoded again as AAC).

use std::path::Path;

use super::local::{RenderError, run};
use crate::domain::music::{DUCKING, Music};

fn dir_of(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

/// Mixes `music` (`seconds` of it) under the sound of `input` into `out`; with `video`, the
/// first video stream of `input` is copied alongside.
async fn mix(input: &Path, music: Music, seconds: f64, out: &Path, video: bool) -> Result<(), RenderError> {
    let Some(source) = music.source(seconds) else {
        return Err(RenderError { code: "video.render_failed", detail: "no music to mix".into(), permanent: true });
    };
    let graph = format!("[0:a]anull[speech];[1:a]anull[music];{DUCKING}");
    let (input, output) = (input.to_string_lossy(), out.to_string_lossy());
    let mut args = vec!["-y", "-hide_banner", "-loglevel", "error", "-i", &input, "-f", "lavfi", "-i", &source];
    args.extend(["-filter_complex", &graph]);
    if video {
        // Picture first, as players and the local renderer order them.
        args.extend(["-map", "0:v:0", "-map", "[mixed]", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k"]);
        args.extend(["-movflags", "+faststart"]);
    } else {
        args.extend(["-map", "[mixed]"]);
    }
    args.push(&output);
    run("ffmpeg", &args, dir_of(out)).await?;
    Ok(())
}

/// The speech of a local render with the music under it (a WAV as long as the speech).
pub async fn under_speech(speech: &Path, music: Music, seconds: f64, out: &Path) -> Result<(), RenderError> {
    mix(speech, music, seconds, out, false).await
}

/// A finished video with the music under its sound (an MP4, the picture copied).
pub async fn under_video(file: &Path, music: Music, seconds: f64, out: &Path) -> Result<(), RenderError> {
    mix(file, music, seconds, out, true).await
}
