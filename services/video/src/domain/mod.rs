//! Types and rules of the video service, free of I/O: what a video request may say, the job's
//! states and which changes between them are allowed, and the cost estimate.

pub mod avatars;
pub mod captions;
pub mod links;
pub mod music;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Locale};
use uuid::Uuid;

nexus_kernel::typed_id!(
    /// An avatar video (and its render job).
    VideoId,
    "vid"
);

/// Parses an id from a request; a malformed id reads as "not found" so ids cannot be probed.
pub fn parse_video_id(s: &str) -> Result<VideoId, Error> {
    VideoId::parse(s.trim()).map_err(|_| Error::not_found("video.not_found"))
}

/// The job's states. `Done`, `Failed` and `Canceled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    SynthesizingVoice,
    Rendering,
    Storing,
    Done,
    Failed,
    Canceled,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::SynthesizingVoice => "synthesizing_voice",
            Self::Rendering => "rendering",
            Self::Storing => "storing",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "synthesizing_voice" => Self::SynthesizingVoice,
            "rendering" => Self::Rendering,
            "storing" => Self::Storing,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    pub const fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Canceled)
    }

    /// The one step forward from a working state.
    pub const fn next(self) -> Option<Self> {
        match self {
            Self::Queued => Some(Self::SynthesizingVoice),
            Self::SynthesizingVoice => Some(Self::Rendering),
            Self::Rendering => Some(Self::Storing),
            Self::Storing => Some(Self::Done),
            _ => None,
        }
    }

    /// Whether the job may go from `self` to `to`: one step forward, or from any working state
    /// to failed or canceled.
    pub fn can_become(self, to: Status) -> bool {
        !self.is_final() && (self.next() == Some(to) || matches!(to, Self::Failed | Self::Canceled))
    }
}

/// Aspect ratios a video can have, with the output size of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    Landscape,
    Portrait,
    Square,
}

impl Aspect {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "" | "16:9" => Ok(Self::Landscape),
            "9:16" => Ok(Self::Portrait),
            "1:1" => Ok(Self::Square),
            other => Err(Error::invalid("video.invalid_aspect_ratio")
                .with_param("aspect_ratio", other.chars().take(20).collect::<String>())
                .with_violation("aspect_ratio", "unsupported")),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Landscape => "16:9",
            Self::Portrait => "9:16",
            Self::Square => "1:1",
        }
    }

    /// Width and height in pixels.
    pub const fn size(self) -> (u32, u32) {
        match self {
            Self::Landscape => (1280, 720),
            Self::Portrait => (720, 1280),
            Self::Square => (720, 720),
        }
    }
}

/// A create request as it arrived.
#[derive(Debug, Clone, Default)]
pub struct VideoInput {
    pub script: String,
    pub avatar_url: String,
    pub voice_id: String,
    pub language: String,
    pub aspect_ratio: String,
    pub captions: bool,
    pub title: String,
    /// Instead of a script: what the content service should write one about.
    pub topic: String,
    /// More for the writer (audience, points to make); only with a topic.
    pub brief: String,
    /// A track of the music library (`calm`, `upbeat`, `bright`); empty: none.
    pub music: String,
}

/// The longest topic and brief of a script the content service writes.
pub const MAX_TOPIC_CHARS: usize = 200;
pub const MAX_BRIEF_CHARS: usize = 1000;

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSpec {
    /// Empty while a `topic` waits for its script.
    pub script: String,
    /// (topic, brief) when the content service writes the script.
    pub topic: Option<(String, String)>,
    pub music: music::Music,
    pub avatar_url: String,
    pub voice_id: String,
    pub language: Locale,
    pub aspect: Aspect,
    pub captions: bool,
    pub title: String,
}

/// Limits the checks use (from configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_script_chars: usize,
    pub max_title_chars: usize,
}

fn text_field(field: &'static str, value: &str, max: usize, required: bool) -> Result<String, Error> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(Error::invalid("video.field_required")
            .with_param("field", field)
            .with_violation(field, "required"));
    }
    if v.chars().count() > max {
        return Err(Error::invalid("video.field_too_long")
            .with_param("field", field)
            .with_param("max", max.to_string())
            .with_violation(field, "too_long"));
    }
    if v.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(Error::invalid("video.field_invalid").with_param("field", field).with_violation(field, "invalid"));
    }
    Ok(v.to_owned())
}

/// Built-in avatars, chosen as `catalogue:<name>`: the portrait's public address (what D-ID
/// is given) and the backdrop colour the local renderer draws instead.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("alice", "https://d-id-public-bucket.s3.amazonaws.com/alice.jpg", "0x2d4059"),
    ("studio", "https://d-id-public-bucket.s3.amazonaws.com/or-roman.jpg", "0x1b3a2f"),
];

/// Where an avatar comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Avatar {
    Url(String),
    /// (name, public URL, backdrop colour).
    Catalogue(&'static str, &'static str, &'static str),
    /// One the workspace uploaded (`avatar:avt_…`).
    Uploaded(Uuid),
}

impl Avatar {
    /// Reads a stored avatar reference (checked when the video was created).
    pub fn of(stored: &str) -> Avatar {
        if let Some(id) = stored.strip_prefix("avatar:").and_then(|id| avatars::AvatarId::parse(id).ok()) {
            return Avatar::Uploaded(id.as_uuid());
        }
        match stored.strip_prefix("catalogue:").and_then(|n| CATALOGUE.iter().find(|c| c.0 == n)) {
            Some((name, url, colour)) => Avatar::Catalogue(name, url, colour),
            None => Avatar::Url(stored.to_owned()),
        }
    }
}

/// An avatar is a catalogue entry (`catalogue:<name>`) or a public https image URL (fetched
/// later by the renderer, and by us only through the safe outbound client).
fn avatar_url(s: &str) -> Result<String, Error> {
    let bad = || Error::invalid("video.invalid_avatar_url").with_violation("avatar_url", "invalid");
    let s = s.trim();
    if let Some(id) = s.strip_prefix("avatar:") {
        // Whether it is this workspace's is checked against the database.
        return avatars::AvatarId::parse(id).map(|_| s.to_owned()).map_err(|_| bad());
    }
    if let Some(name) = s.strip_prefix("catalogue:") {
        return if CATALOGUE.iter().any(|c| c.0 == name) { Ok(s.to_owned()) } else { Err(bad()) };
    }
    if s.is_empty() {
        return Err(Error::invalid("video.field_required")
            .with_param("field", "avatar_url")
            .with_violation("avatar_url", "required"));
    }
    if s.len() > 2000 {
        return Err(bad());
    }
    let url = url::Url::parse(s).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    Ok(url.to_string())
}

fn voice_id(s: &str) -> Result<String, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::invalid("video.field_required")
            .with_param("field", "voice_id")
            .with_violation("voice_id", "required"));
    }
    if s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')) {
        return Err(Error::invalid("video.unknown_voice").with_violation("voice_id", "unknown"));
    }
    Ok(s.to_owned())
}

fn language(s: &str, fallback: Locale) -> Result<Locale, Error> {
    if s.trim().is_empty() {
        return Ok(fallback);
    }
    s.trim().parse::<Locale>().map_err(|_| {
        Error::invalid("video.unsupported_language")
            .with_param("language", s.chars().take(20).collect::<String>())
            .with_violation("language", "unsupported")
    })
}

impl VideoInput {
    /// Checks every field; the first problem is the error.
    pub fn check(&self, limits: Limits, fallback: Locale) -> Result<VideoSpec, Error> {
        let topic = text_field("topic", &self.topic, MAX_TOPIC_CHARS, false)?;
        let brief = text_field("brief", &self.brief, MAX_BRIEF_CHARS, false)?;
        let (script, topic) = if topic.is_empty() {
            if !brief.is_empty() {
                return Err(Error::invalid("video.field_required")
                    .with_param("field", "topic")
                    .with_violation("topic", "required"));
            }
            (text_field("script", &self.script, limits.max_script_chars, true)?, None)
        } else if !self.script.trim().is_empty() {
            return Err(Error::invalid("video.script_or_topic").with_violation("topic", "conflicts_with_script"));
        } else {
            (String::new(), Some((topic, brief)))
        };
        Ok(VideoSpec {
            script,
            topic,
            music: music::Music::parse(&self.music)?,
            avatar_url: avatar_url(&self.avatar_url)?,
            voice_id: voice_id(&self.voice_id)?,
            language: language(&self.language, fallback)?,
            aspect: Aspect::parse(&self.aspect_ratio)?,
            captions: self.captions,
            title: text_field("title", &self.title, limits.max_title_chars, false)?,
        })
    }
}

/// Characters of speech a second, for estimates (ElevenLabs voices read about this fast).
pub const CHARS_PER_SECOND: f64 = nexus_providers::elevenlabs::CHARS_PER_SECOND;

/// What a script costs: its characters, the speech's expected length, and the render minutes
/// it is charged by (`video.render_minute`, at least one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub characters: i64,
    pub seconds: f64,
    pub minutes: i64,
}

impl Estimate {
    pub fn of(script: &str) -> Self {
        let characters = i64::try_from(script.chars().count()).unwrap_or(i64::MAX);
        let seconds = characters as f64 / CHARS_PER_SECOND;
        let minutes = ((seconds / 60.0).ceil() as i64).max(1);
        Self { characters, seconds, minutes }
    }
}

/// Credits to charge for a finished video: the minutes it lasts at the held price per minute,
/// never more than was held.
pub fn charge_for(held: i64, held_minutes: i64, duration_seconds: f64) -> i64 {
    if held <= 0 || held_minutes <= 0 {
        return 0;
    }
    let per_minute = held / held_minutes;
    let minutes = ((duration_seconds / 60.0).ceil() as i64).max(1);
    (per_minute * minutes).min(held)
}

/// A video as the service shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub id: Uuid,
    pub title: String,
    pub status: String,
    pub language: String,
    pub aspect_ratio: String,
    pub captions: bool,
    pub avatar_url: String,
    pub voice_id: String,
    pub voice_provider: String,
    pub provider: String,
    pub characters: i64,
    pub characters_billed: i64,
    pub estimated_credits: i64,
    pub credits_charged: i64,
    pub duration_seconds: f64,
    pub size_bytes: i64,
    /// The background music's track (empty: none).
    pub music: String,
    /// The picture size ffprobe found (0 until done).
    pub width: i32,
    pub height: i32,
    /// Where the thumbnail is stored (done videos).
    pub thumbnail_key: Option<String>,
    pub error_code: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A finished file as stored: where, how big, how long, its picture and its thumbnail.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub key: String,
    pub size: i64,
    pub duration: f64,
    pub width: i32,
    pub height: i32,
    pub thumbnail_key: String,
}

/// One change of a job's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_script_chars: 100, max_title_chars: 10 }
    }

    fn ok() -> VideoInput {
        VideoInput {
            script: "Hello there".into(),
            avatar_url: "https://cdn.example.com/face.jpg".into(),
            voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_request_gets_defaults() {
        let s = ok().check(limits(), Locale::Es).unwrap();
        assert_eq!((s.language, s.aspect), (Locale::Es, Aspect::Landscape));
    }

    #[test]
    fn every_field_is_checked() {
        let code = |i: VideoInput| i.check(limits(), Locale::En).unwrap_err().code().to_owned();
        assert_eq!(code(VideoInput { script: " ".into(), ..ok() }), "video.field_required");
        assert_eq!(code(VideoInput { script: "x".repeat(101), ..ok() }), "video.field_too_long");
        assert_eq!(code(VideoInput { script: "a\u{0}b".into(), ..ok() }), "video.field_invalid");
        assert_eq!(code(VideoInput { avatar_url: "http://x.com/a.jpg".into(), ..ok() }), "video.invalid_avatar_url");
        assert_eq!(
            code(VideoInput { avatar_url: "https://u:p@x.com/a.jpg".into(), ..ok() }),
            "video.invalid_avatar_url"
        );
        assert_eq!(code(VideoInput { avatar_url: "file:///etc/passwd".into(), ..ok() }), "video.invalid_avatar_url");
        assert_eq!(code(VideoInput { voice_id: "../../x".into(), ..ok() }), "video.unknown_voice");
        assert_eq!(code(VideoInput { language: "fr".into(), ..ok() }), "video.unsupported_language");
        assert_eq!(code(VideoInput { aspect_ratio: "4:3".into(), ..ok() }), "video.invalid_aspect_ratio");
        assert_eq!(code(VideoInput { title: "x".repeat(11), ..ok() }), "video.field_too_long");
    }

    #[test]
    fn a_topic_replaces_the_script() {
        let code = |i: VideoInput| i.check(limits(), Locale::En).unwrap_err().code().to_owned();
        let topic = VideoInput { script: String::new(), topic: " Spring sale ".into(), brief: "Shoes".into(), ..ok() };
        let s = topic.check(limits(), Locale::En).unwrap();
        assert_eq!((s.script.as_str(), s.topic), ("", Some(("Spring sale".to_owned(), "Shoes".to_owned()))));
        assert_eq!(code(VideoInput { topic: "Sale".into(), ..ok() }), "video.script_or_topic");
        assert_eq!(code(VideoInput { script: String::new(), brief: "Shoes".into(), ..ok() }), "video.field_required");
        let long = VideoInput { script: String::new(), topic: "x".repeat(MAX_TOPIC_CHARS + 1), ..ok() };
        assert_eq!(code(long), "video.field_too_long");
    }

    #[test]
    fn the_state_machine_only_moves_forward() {
        use Status::*;
        assert!(Queued.can_become(SynthesizingVoice));
        assert!(!Queued.can_become(Rendering));
        assert!(Rendering.can_become(Failed) && Storing.can_become(Canceled));
        assert!(!Done.can_become(Failed) && !Canceled.can_become(Queued));
        for s in [Queued, SynthesizingVoice, Rendering, Storing, Done, Failed, Canceled] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn estimates_and_charges() {
        let e = Estimate::of(&"a".repeat(900));
        assert_eq!((e.characters, e.minutes), (900, 1));
        assert_eq!(Estimate::of(&"a".repeat(901)).minutes, 2);
        assert_eq!(charge_for(20, 2, 30.0), 10);
        assert_eq!(charge_for(20, 2, 600.0), 20, "never more than held");
        assert_eq!(charge_for(0, 1, 10.0), 0);
    }
}
