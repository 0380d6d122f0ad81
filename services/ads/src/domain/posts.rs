//! Social posts: one post published on one or more accounts, each in its platform's variant
//! (caption, hashtags, first comment, media, privacy), and the platforms' limits — checked when a
//! post is scheduled, never first discovered at publish time.

use std::fmt;
use std::str::FromStr;

use nexus_kernel::Error;
use serde::{Deserialize, Serialize};

use crate::domain::connections::AccountKind;

/// Where a post appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Instagram,
    Facebook,
    TikTok,
    YouTube,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Instagram => "instagram",
            Platform::Facebook => "facebook",
            Platform::TikTok => "tiktok",
            Platform::YouTube => "youtube",
        }
    }

    /// The platform an account of a connection posts to. Ad accounts and TikTok advertisers post
    /// nowhere: TikTok's Content Posting API takes only a creator's own Login Kit token
    /// (`tiktok_creator`), never a Business advertiser's.
    pub fn of_account(kind: AccountKind) -> Option<Platform> {
        match kind {
            AccountKind::Instagram => Some(Platform::Instagram),
            AccountKind::Page => Some(Platform::Facebook),
            AccountKind::Creator => Some(Platform::TikTok),
            AccountKind::Channel => Some(Platform::YouTube),
            AccountKind::AdAccount | AccountKind::Advertiser => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "instagram" => Ok(Platform::Instagram),
            "facebook" => Ok(Platform::Facebook),
            "tiktok" => Ok(Platform::TikTok),
            "youtube" => Ok(Platform::YouTube),
            _ => Err(invalid("platform", "unknown")),
        }
    }
}

/// The shape of a post on its platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An Instagram feed image, or a Facebook page post (text, link or photo).
    #[default]
    Feed,
    Reel,
    Story,
    /// 2–10 Instagram images or videos.
    Carousel,
    /// A TikTok or YouTube video.
    Video,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Feed => "feed",
            Format::Reel => "reel",
            Format::Story => "story",
            Format::Carousel => "carousel",
            Format::Video => "video",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    #[default]
    Image,
    Video,
}

/// A picture or video to post, with what the limits are checked against. Exactly one source: a
/// URL (with its facts declared by the caller), a video of the video service (`video_id`), an
/// item of the workspace's media library (`media_id`) or a finished image of the content service
/// (`image_id`). A referenced item's facts are read from the service that holds it when the post
/// is written (what the caller declares is replaced), and its URL is a fresh signed link made at
/// publish time. A content image is imported into the library when the post is written, and is
/// from then on the `media_id` of that item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Media {
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default)]
    pub kind: MediaKind,
    /// `image/jpeg`, `video/mp4`, …
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// Videos only.
    #[serde(default)]
    pub duration_secs: f64,
}

/// Where a referenced media item lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaSource {
    /// A finished video of the video service (`vid_…`).
    Video,
    /// An upload in the workspace's media library.
    Library,
    /// A finished image of the content service (`img_…`), imported into the library.
    Image,
}

impl Media {
    /// The item this media names instead of a URL (more than one named: none is taken, the
    /// check refuses it).
    pub fn reference(&self) -> Option<(MediaSource, &str)> {
        match (&self.video_id, &self.media_id, &self.image_id) {
            (Some(v), None, None) => Some((MediaSource::Video, v.as_str())),
            (None, Some(m), None) => Some((MediaSource::Library, m.as_str())),
            (None, None, Some(i)) => Some((MediaSource::Image, i.as_str())),
            _ => None,
        }
    }

    /// Takes a referenced item's measured facts, keeping the reference; a content image whose
    /// facts are a library item's (it was imported) becomes that item's reference.
    pub fn with_facts(&self, facts: &Media) -> Media {
        let imported = self.image_id.is_some() && facts.media_id.is_some();
        Media {
            url: String::new(),
            video_id: self.video_id.clone(),
            media_id: if imported { facts.media_id.clone() } else { self.media_id.clone() },
            image_id: if imported { None } else { self.image_id.clone() },
            kind: facts.kind,
            content_type: facts.content_type.clone(),
            bytes: facts.bytes,
            width: facts.width,
            height: facts.height,
            duration_secs: facts.duration_secs,
        }
    }
}

/// One post as it goes out on one platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default)]
    pub format: Format,
    /// The Instagram caption, Facebook message, TikTok title or YouTube description.
    #[serde(default)]
    pub caption: String,
    /// Added to the caption as `#tag` (without the `#`).
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Posted as the first comment once published (Instagram and Facebook).
    #[serde(default)]
    pub first_comment: String,
    /// Facebook page posts.
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub media: Vec<Media>,
    /// YouTube's title.
    #[serde(default)]
    pub title: String,
    /// YouTube's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// TikTok's privacy level or YouTube's privacy status (empty: the most private allowed).
    #[serde(default)]
    pub privacy: String,
    /// TikTok: to the creator's inbox as a draft instead of posting.
    #[serde(default)]
    pub to_inbox: bool,
    /// Instagram reels: also shown in the feed.
    #[serde(default)]
    pub share_to_feed: bool,
    /// YouTube only: uploaded private, made public by YouTube at this time (after the post's
    /// own time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Variant {
    /// The text the platform receives: the caption with its hashtags appended.
    pub fn full_caption(&self) -> String {
        let mut text = self.caption.trim_end().to_owned();
        let tags: Vec<String> = self
            .hashtags
            .iter()
            .map(|t| t.trim().trim_start_matches('#'))
            .filter(|t| !t.is_empty())
            .map(|t| format!("#{t}"))
            .collect();
        if !tags.is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&tags.join(" "));
        }
        text
    }

    /// Fills what this variant leaves empty from the post's shared text, link and media.
    pub fn with_defaults(mut self, text: &str, link: Option<&str>, media: &[Media]) -> Variant {
        if self.caption.is_empty() {
            self.caption = text.to_owned();
        }
        if self.link.is_none() {
            self.link = link.map(str::to_owned);
        }
        if self.media.is_empty() {
            self.media = media.to_vec();
        }
        self
    }
}

/// What a TikTok creator may post, from the platform's creator info (checked at scheduling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorLimits {
    pub privacy_options: Vec<String>,
    pub max_duration_secs: u32,
}

impl Default for CreatorLimits {
    /// TikTok's documented defaults when the creator's own cannot be read (the sandbox).
    fn default() -> Self {
        CreatorLimits {
            privacy_options: ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"].map(String::from).to_vec(),
            max_duration_secs: 600,
        }
    }
}

pub(crate) const MB: u64 = 1024 * 1024;

/// Limits of one kind of media on one platform and format (Instagram's, Facebook's, TikTok's
/// and YouTube's published media specifications; the ad builder's creatives too).
pub(crate) struct Spec {
    pub(crate) types: &'static [&'static str],
    pub(crate) max_bytes: u64,
    /// Seconds (videos).
    pub(crate) min_secs: f64,
    pub(crate) max_secs: f64,
    /// Width ÷ height (0: any).
    pub(crate) min_ratio: f64,
    pub(crate) max_ratio: f64,
}

const JPEG: &[&str] = &["image/jpeg"];
const PHOTO: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
const IG_VIDEO: &[&str] = &["video/mp4", "video/quicktime"];
const TIKTOK_VIDEO: &[&str] = &["video/mp4", "video/webm", "video/quicktime"];
const ANY_VIDEO: &[&str] = &["video/"];

fn spec(platform: Platform, format: Format, kind: MediaKind, creator: &CreatorLimits) -> Option<Spec> {
    use MediaKind::{Image, Video};
    let image = |types, max_bytes, min_ratio, max_ratio| Spec {
        types,
        max_bytes,
        min_secs: 0.0,
        max_secs: 0.0,
        min_ratio,
        max_ratio,
    };
    let video = |types, max_bytes, min_secs, max_secs, min_ratio, max_ratio| Spec {
        types,
        max_bytes,
        min_secs,
        max_secs,
        min_ratio,
        max_ratio,
    };
    match (platform, format, kind) {
        (Platform::Instagram, Format::Feed | Format::Carousel, Image) => Some(image(JPEG, 8 * MB, 0.8, 1.91)),
        (Platform::Instagram, Format::Story, Image) => Some(image(JPEG, 8 * MB, 0.0, 0.0)),
        (Platform::Instagram, Format::Reel, Video) => Some(video(IG_VIDEO, 300 * MB, 3.0, 900.0, 0.01, 10.0)),
        (Platform::Instagram, Format::Story, Video) => Some(video(IG_VIDEO, 100 * MB, 3.0, 60.0, 0.1, 10.0)),
        (Platform::Instagram, Format::Carousel, Video) => Some(video(IG_VIDEO, 100 * MB, 3.0, 60.0, 0.8, 1.91)),
        (Platform::Facebook, Format::Feed, Image) => Some(image(PHOTO, 10 * MB, 0.0, 0.0)),
        (Platform::TikTok, Format::Video, Video) => {
            Some(video(TIKTOK_VIDEO, 4096 * MB, 3.0, f64::from(creator.max_duration_secs), 0.0, 0.0))
        }
        (Platform::YouTube, Format::Video, Video) => {
            Some(video(ANY_VIDEO, 256 * 1024 * MB, 1.0, 12.0 * 3600.0, 0.0, 0.0))
        }
        _ => None,
    }
}

/// Caption, hashtag and title limits per platform.
struct TextLimits {
    caption: usize,
    hashtags: Option<usize>,
    /// Counted in bytes (YouTube's description) instead of characters.
    caption_in_bytes: bool,
}

fn text_limits(platform: Platform) -> TextLimits {
    match platform {
        Platform::Instagram => TextLimits { caption: 2_200, hashtags: Some(30), caption_in_bytes: false },
        Platform::Facebook => TextLimits { caption: 63_206, hashtags: None, caption_in_bytes: false },
        Platform::TikTok => TextLimits { caption: 2_200, hashtags: None, caption_in_bytes: false },
        // More than 60 hashtags and YouTube ignores them all.
        Platform::YouTube => TextLimits { caption: 5_000, hashtags: Some(60), caption_in_bytes: true },
    }
}

pub const YOUTUBE_TITLE_MAX: usize = 100;
pub const YOUTUBE_TAGS_MAX: usize = 500;
pub const COMMENT_MAX: usize = 2_200;
pub const CAROUSEL_MIN: usize = 2;
pub const CAROUSEL_MAX: usize = 10;
pub const YOUTUBE_PRIVACY: &[&str] = &["private", "unlisted", "public"];

fn invalid(field: &str, why: &str) -> Error {
    Error::invalid("ads.post_invalid").with_param("field", field).with_violation(field, why)
}

fn too_long(field: &str, max: usize) -> Error {
    Error::invalid("ads.text_too_long")
        .with_param("field", field)
        .with_param("max", max.to_string())
        .with_violation(field, "too_long")
}

fn hashtag_count(v: &Variant) -> usize {
    let in_caption = v.caption.split_whitespace().filter(|w| w.starts_with('#') && w.len() > 1).count();
    in_caption + v.hashtags.iter().filter(|t| !t.trim().trim_start_matches('#').is_empty()).count()
}

/// Checks one variant against its platform's limits: the first problem, as a localized error
/// naming the field (`targets[i].…` is added by the caller).
pub fn check(platform: Platform, v: &Variant, creator: &CreatorLimits, scheduled: bool) -> Result<(), Error> {
    let allowed: &[Format] = match platform {
        Platform::Instagram => &[Format::Feed, Format::Reel, Format::Story, Format::Carousel],
        Platform::Facebook => &[Format::Feed],
        Platform::TikTok | Platform::YouTube => &[Format::Video],
    };
    check_publish_at_platform(platform, v)?;
    if !allowed.contains(&v.format) {
        return Err(Error::invalid("ads.post_format_unsupported")
            .with_param("platform", platform.as_str())
            .with_param("format", v.format.as_str())
            .with_violation("format", "unsupported"));
    }
    let limits = text_limits(platform);
    let caption = v.full_caption();
    let length = if limits.caption_in_bytes { caption.len() } else { caption.chars().count() };
    if length > limits.caption {
        return Err(too_long("caption", limits.caption));
    }
    if let Some(max) = limits.hashtags
        && hashtag_count(v) > max
    {
        return Err(Error::invalid("ads.post_too_many_hashtags")
            .with_param("max", max.to_string())
            .with_violation("hashtags", "too_many"));
    }
    if v.first_comment.chars().count() > COMMENT_MAX {
        return Err(too_long("first_comment", COMMENT_MAX));
    }
    if !v.first_comment.is_empty() && !matches!(platform, Platform::Instagram | Platform::Facebook) {
        return Err(invalid("first_comment", "unsupported"));
    }
    if let Some(link) = &v.link
        && (platform != Platform::Facebook || !(link.starts_with("https://") || link.starts_with("http://")))
    {
        return Err(invalid("link", "invalid"));
    }
    for (i, m) in v.media.iter().enumerate() {
        check_source(m, &format!("media[{i}]"))?;
    }
    check_media_count(platform, v)?;
    for (i, m) in v.media.iter().enumerate() {
        check_media(platform, v.format, m, creator, &format!("media[{i}]"))?;
    }
    match platform {
        Platform::YouTube => {
            let title = v.title.trim();
            if title.is_empty() || title.contains(['<', '>']) {
                return Err(invalid("title", "required"));
            }
            if title.chars().count() > YOUTUBE_TITLE_MAX {
                return Err(too_long("title", YOUTUBE_TITLE_MAX));
            }
            // YouTube counts a tag with a space as quoted (two more characters) and a comma
            // between tags.
            let tags: usize =
                v.tags.iter().map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 }).sum::<usize>()
                    + v.tags.len().saturating_sub(1);
            if tags > YOUTUBE_TAGS_MAX {
                return Err(too_long("tags", YOUTUBE_TAGS_MAX));
            }
            if !v.privacy.is_empty() && !YOUTUBE_PRIVACY.contains(&v.privacy.as_str()) {
                return Err(privacy_invalid(YOUTUBE_PRIVACY.join(", ")));
            }
            // A scheduled YouTube video is uploaded private and made public by YouTube at the time.
            if scheduled && !v.privacy.is_empty() && v.privacy != "private" && v.privacy != "public" {
                return Err(privacy_invalid("private, public".into()));
            }
            // YouTube releases only a private video at `publishAt`.
            if v.publish_at.is_some() && !v.privacy.is_empty() && v.privacy != "private" {
                return Err(Error::invalid("ads.post_publish_at_private").with_violation("publish_at", "not_private"));
            }
        }
        Platform::TikTok => {
            if !v.privacy.is_empty() && !creator.privacy_options.contains(&v.privacy) {
                return Err(privacy_invalid(creator.privacy_options.join(", ")));
            }
        }
        _ => {
            if !v.title.is_empty() || !v.tags.is_empty() || !v.privacy.is_empty() {
                return Err(invalid("title", "unsupported"));
            }
        }
    }
    Ok(())
}

/// Only YouTube releases a video at a set time.
fn check_publish_at_platform(platform: Platform, v: &Variant) -> Result<(), Error> {
    if v.publish_at.is_some() && platform != Platform::YouTube {
        return Err(Error::invalid("ads.post_publish_at_unsupported")
            .with_param("platform", platform.as_str())
            .with_violation("publish_at", "unsupported"));
    }
    Ok(())
}

/// The furthest ahead a release time may be (as a post's own time).
pub const PUBLISH_AT_MAX_DAYS: i64 = 400;

/// A YouTube release time: after the post goes out (its time, or now for a post going out as
/// soon as possible) — YouTube refuses a `publishAt` already past at upload — and within the
/// calendar's reach.
pub fn check_publish_at_time(
    at: chrono::DateTime<chrono::Utc>,
    goes_out: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    let after = goes_out.map_or(now, |t| t.max(now));
    if at <= after || at > now + chrono::Duration::days(PUBLISH_AT_MAX_DAYS) {
        return Err(Error::invalid("ads.post_publish_at_time")
            .with_param("max_days", PUBLISH_AT_MAX_DAYS.to_string())
            .with_violation("publish_at", "out_of_range"));
    }
    Ok(())
}

fn privacy_invalid(options: String) -> Error {
    Error::invalid("ads.post_privacy_invalid").with_param("options", options).with_violation("privacy", "invalid")
}

fn check_media_count(platform: Platform, v: &Variant) -> Result<(), Error> {
    let n = v.media.len();
    let (min, max) = match (platform, v.format) {
        (Platform::Instagram, Format::Carousel) => (CAROUSEL_MIN, CAROUSEL_MAX),
        (Platform::Facebook, _) => (0, 1),
        _ => (1, 1),
    };
    if n < min || n > max {
        return Err(Error::invalid("ads.post_media_count")
            .with_param("min", min.to_string())
            .with_param("max", max.to_string())
            .with_param("format", v.format.as_str())
            .with_violation("media", "count"));
    }
    if platform == Platform::Facebook && n == 0 && v.caption.trim().is_empty() && v.link.is_none() {
        return Err(invalid("caption", "required"));
    }
    let wants = match v.format {
        Format::Feed => Some(MediaKind::Image),
        Format::Reel | Format::Video => Some(MediaKind::Video),
        Format::Story | Format::Carousel => None,
    };
    if let Some(kind) = wants
        && let Some(i) = v.media.iter().position(|m| m.kind != kind)
    {
        return Err(media_type(platform, v.format, &format!("media[{i}]")));
    }
    Ok(())
}

fn media_type(platform: Platform, format: Format, field: &str) -> Error {
    Error::invalid("ads.post_media_type")
        .with_param("field", field.to_owned())
        .with_param("platform", platform.as_str())
        .with_param("format", format.as_str())
        .with_violation(field.to_owned(), "type")
}

/// Exactly one source: a web address, or one reference (its facts read from its service).
fn check_source(m: &Media, field: &str) -> Result<(), Error> {
    match (m.url.is_empty(), m.reference()) {
        (true, Some(_)) => Ok(()),
        (false, None) if m.url.starts_with("https://") || m.url.starts_with("http://") => Ok(()),
        // Neither or more than one, or not a web address.
        _ => Err(invalid(&format!("{field}.url"), "invalid")),
    }
}

fn check_media(
    platform: Platform,
    format: Format,
    m: &Media,
    creator: &CreatorLimits,
    field: &str,
) -> Result<(), Error> {
    let s = spec(platform, format, m.kind, creator).ok_or_else(|| media_type(platform, format, field))?;
    let ct = m.content_type.to_ascii_lowercase();
    if !s.types.iter().any(|t| if t.ends_with('/') { ct.starts_with(t) } else { ct == *t }) {
        return Err(media_type(platform, format, field));
    }
    check_measures(&s, m, field)
}

/// A measured item's size, duration (videos) and shape against `s`, refusals naming `field`.
pub(crate) fn check_measures(s: &Spec, m: &Media, field: &str) -> Result<(), Error> {
    if m.bytes == 0 || m.bytes > s.max_bytes {
        return Err(Error::invalid("ads.post_media_too_large")
            .with_param("field", field.to_owned())
            .with_param("max_mb", (s.max_bytes / MB).to_string())
            .with_violation(field.to_owned(), "size"));
    }
    if m.kind == MediaKind::Video && (m.duration_secs < s.min_secs || m.duration_secs > s.max_secs) {
        return Err(Error::invalid("ads.post_media_duration")
            .with_param("field", field.to_owned())
            .with_param("min", format!("{}", s.min_secs))
            .with_param("max", format!("{}", s.max_secs))
            .with_violation(field.to_owned(), "duration"));
    }
    if s.min_ratio > 0.0 {
        if m.width == 0 || m.height == 0 {
            return Err(invalid(&format!("{field}.width"), "required"));
        }
        let ratio = f64::from(m.width) / f64::from(m.height);
        // A hair of tolerance: 1080×1350 is 4:5 exactly, 1080×566 rounds to 1.91.
        if ratio < s.min_ratio - 0.005 || ratio > s.max_ratio + 0.005 {
            return Err(Error::invalid("ads.post_aspect_ratio")
                .with_param("field", field.to_owned())
                .with_param("min", format!("{}", s.min_ratio))
                .with_param("max", format!("{}", s.max_ratio))
                .with_violation(field.to_owned(), "aspect_ratio"));
        }
    }
    Ok(())
}

/// Where a post stands as a whole.
pub mod post_status {
    pub const DRAFT: &str = "draft";
    /// Proposed by a member, waiting for an admin.
    pub const PENDING_APPROVAL: &str = "pending_approval";
    pub const SCHEDULED: &str = "scheduled";
    pub const CANCELLED: &str = "cancelled";
}

/// Where one publication (a post on one account) stands.
pub mod target_status {
    /// Waiting for its time (or its approval).
    pub const SCHEDULED: &str = "scheduled";
    /// A publish call may have been made: a retry first looks the post up on the platform.
    pub const PUBLISHING: &str = "publishing";
    pub const PUBLISHED: &str = "published";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Media {
        Media {
            url: "https://cdn.example.com/a.jpg".into(),
            kind: MediaKind::Image,
            content_type: "image/jpeg".into(),
            bytes: 500_000,
            width: w,
            height: h,
            duration_secs: 0.0,
            ..Media::default()
        }
    }

    fn mp4(secs: f64) -> Media {
        Media {
            url: "https://cdn.example.com/v.mp4".into(),
            kind: MediaKind::Video,
            content_type: "video/mp4".into(),
            bytes: 20 * MB,
            width: 1080,
            height: 1920,
            duration_secs: secs,
            ..Media::default()
        }
    }

    fn ig(format: Format, media: Vec<Media>, caption: &str) -> Result<(), Error> {
        let v = Variant { format, media, caption: caption.into(), ..Variant::default() };
        check(Platform::Instagram, &v, &CreatorLimits::default(), true)
    }

    #[test]
    fn media_come_from_exactly_one_source() {
        let reel = |m: Media| ig(Format::Reel, vec![m], "x");
        let referenced = Media { url: String::new(), video_id: Some("vid_1".into()), ..mp4(20.0) };
        assert!(reel(referenced.clone()).is_ok());
        let both = Media { url: "https://cdn.example.com/v.mp4".into(), ..referenced.clone() };
        assert_eq!(reel(both).unwrap_err().param("field"), Some("media[0].url"));
        let two_refs = Media { media_id: Some("med_1".into()), ..referenced.clone() };
        assert_eq!(reel(two_refs).unwrap_err().param("field"), Some("media[0].url"));
        let video_and_image = Media { image_id: Some("img_1".into()), ..referenced.clone() };
        assert_eq!(reel(video_and_image).unwrap_err().param("field"), Some("media[0].url"));
        let image = Media { url: String::new(), image_id: Some("img_1".into()), ..jpeg(1080, 1080) };
        assert_eq!(image.reference(), Some((MediaSource::Image, "img_1")));
        assert!(ig(Format::Feed, vec![image.clone()], "x").is_ok());
        // Imported: the library item's reference and facts from then on.
        let item = Media { url: String::new(), media_id: Some("med_9".into()), ..jpeg(1080, 1350) };
        let took = image.with_facts(&item);
        assert_eq!((took.reference(), took.height), (Some((MediaSource::Library, "med_9")), 1350));
        assert_eq!(took.image_id, None);
        let library_and_image = Media { media_id: Some("med_1".into()), ..image };
        assert_eq!(ig(Format::Feed, vec![library_and_image], "x").unwrap_err().param("field"), Some("media[0].url"));
        assert_eq!(
            reel(Media { video_id: None, ..referenced.clone() }).unwrap_err().param("field"),
            Some("media[0].url")
        );
        // A reference's facts are still checked (the service measured them).
        assert_eq!(reel(Media { duration_secs: 1.0, ..referenced }).unwrap_err().code(), "ads.post_media_duration");
    }

    #[test]
    fn instagram_caption_counts_characters_and_hashtags() {
        assert!(ig(Format::Feed, vec![jpeg(1080, 1080)], &"é".repeat(2_200)).is_ok());
        let e = ig(Format::Feed, vec![jpeg(1080, 1080)], &"a".repeat(2_201)).unwrap_err();
        assert_eq!((e.code(), e.param("max")), ("ads.text_too_long", Some("2200")));
        // Hashtags appended count towards the caption.
        let v = Variant {
            caption: "a".repeat(2_195),
            hashtags: vec!["sale".into()],
            media: vec![jpeg(1080, 1080)],
            ..Variant::default()
        };
        assert!(check(Platform::Instagram, &v, &CreatorLimits::default(), true).is_err());
        let many = (0..31).map(|i| format!("#t{i}")).collect::<Vec<_>>().join(" ");
        let e = ig(Format::Feed, vec![jpeg(1080, 1080)], &many).unwrap_err();
        assert_eq!(e.code(), "ads.post_too_many_hashtags");
    }

    #[test]
    fn carousels_take_two_to_ten_items() {
        assert!(ig(Format::Carousel, vec![jpeg(1080, 1080); 2], "").is_ok());
        assert!(ig(Format::Carousel, vec![jpeg(1080, 1080); 10], "").is_ok());
        for n in [1, 11] {
            let e = ig(Format::Carousel, vec![jpeg(1080, 1080); n], "").unwrap_err();
            assert_eq!((e.code(), e.param("max")), ("ads.post_media_count", Some("10")));
        }
    }

    #[test]
    fn media_types_sizes_durations_and_ratios() {
        let mut png = jpeg(1080, 1080);
        png.content_type = "image/png".into();
        assert_eq!(ig(Format::Feed, vec![png], "").unwrap_err().code(), "ads.post_media_type");
        assert_eq!(ig(Format::Feed, vec![jpeg(1080, 300)], "").unwrap_err().code(), "ads.post_aspect_ratio");
        assert!(ig(Format::Feed, vec![jpeg(1080, 1350)], "").is_ok());
        assert!(ig(Format::Story, vec![mp4(60.0)], "").is_ok());
        let e = ig(Format::Story, vec![mp4(180.0)], "").unwrap_err();
        assert_eq!((e.code(), e.param("max")), ("ads.post_media_duration", Some("60")));
        assert!(ig(Format::Reel, vec![mp4(180.0)], "").is_ok());
        assert_eq!(ig(Format::Reel, vec![jpeg(1080, 1080)], "").unwrap_err().code(), "ads.post_media_type");
        let mut big = jpeg(1080, 1080);
        big.bytes = 9 * MB;
        assert_eq!(ig(Format::Feed, vec![big], "").unwrap_err().code(), "ads.post_media_too_large");
    }

    #[test]
    fn tiktok_follows_the_creator() {
        let creator = CreatorLimits { privacy_options: vec!["SELF_ONLY".into()], max_duration_secs: 60 };
        let v = Variant { format: Format::Video, media: vec![mp4(180.0)], ..Variant::default() };
        assert_eq!(check(Platform::TikTok, &v, &creator, true).unwrap_err().code(), "ads.post_media_duration");
        let v = Variant { format: Format::Video, media: vec![mp4(30.0)], privacy: "PUBLIC_TO_EVERYONE".into(), ..v };
        assert_eq!(check(Platform::TikTok, &v, &creator, true).unwrap_err().code(), "ads.post_privacy_invalid");
        let v = Variant { privacy: "SELF_ONLY".into(), ..v };
        assert!(check(Platform::TikTok, &v, &creator, true).is_ok());
    }

    #[test]
    fn youtube_needs_a_title_within_its_limits() {
        let base = Variant { format: Format::Video, media: vec![mp4(600.0)], ..Variant::default() };
        let c = CreatorLimits::default();
        assert_eq!(check(Platform::YouTube, &base, &c, true).unwrap_err().param("field"), Some("title"));
        let ok = Variant { title: "Launch".into(), ..base.clone() };
        assert!(check(Platform::YouTube, &ok, &c, true).is_ok());
        let long = Variant { title: "t".repeat(101), ..base.clone() };
        assert_eq!(check(Platform::YouTube, &long, &c, true).unwrap_err().param("max"), Some("100"));
        // The description is counted in bytes: 2,501 two-byte letters are over 5,000.
        let desc = Variant { title: "x".into(), caption: "é".repeat(2_501), ..base.clone() };
        assert_eq!(check(Platform::YouTube, &desc, &c, true).unwrap_err().param("max"), Some("5000"));
        let tags = Variant { title: "x".into(), tags: vec!["a".repeat(300), "b".repeat(200)], ..base };
        assert_eq!(check(Platform::YouTube, &tags, &c, true).unwrap_err().param("field"), Some("tags"));
    }

    #[test]
    fn facebook_posts_text_links_and_photos_but_no_reels() {
        let c = CreatorLimits::default();
        let text = Variant { caption: "Hello".into(), link: Some("https://shop.example".into()), ..Variant::default() };
        assert!(check(Platform::Facebook, &text, &c, true).is_ok());
        assert!(check(Platform::Facebook, &Variant::default(), &c, true).is_err());
        let reel = Variant { format: Format::Reel, media: vec![mp4(30.0)], ..Variant::default() };
        assert_eq!(check(Platform::Facebook, &reel, &c, true).unwrap_err().code(), "ads.post_format_unsupported");
        assert!(
            check(Platform::Facebook, &Variant { caption: "x".repeat(63_207), ..Variant::default() }, &c, true)
                .is_err()
        );
    }

    #[test]
    fn variants_fill_from_the_post() {
        let v = Variant::default().with_defaults("Shared", Some("https://x.example"), &[jpeg(1, 1)]);
        assert_eq!((v.caption.as_str(), v.link.as_deref(), v.media.len()), ("Shared", Some("https://x.example"), 1));
        let v = Variant { caption: "Own".into(), hashtags: vec!["#a".into(), "b".into()], ..Variant::default() };
        assert_eq!(v.with_defaults("Shared", None, &[]).full_caption(), "Own\n\n#a #b");
    }
}

/// A post as a client sends it: shared text, link and media, and the accounts it goes to with
/// each one's variant (empty fields taken from the shared ones).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PostSpec {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub media: Vec<Media>,
    pub targets: Vec<TargetSpec>,
    /// Unset: as soon as possible (a draft stays unscheduled).
    #[serde(default)]
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The calendar's time zone (IANA); UTC when unset.
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// Kept as a draft: neither scheduled nor proposed.
    #[serde(default)]
    pub draft: bool,
    /// Takes the earliest free slot of the workspace's posting queue (instead of
    /// `scheduled_at`).
    #[serde(default)]
    pub queue: bool,
    /// The same key returns the same post (imports and client retries).
    #[serde(default)]
    pub request_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub connection_id: String,
    /// The page, Instagram account, advertiser or channel id on the platform.
    pub account: String,
    #[serde(default)]
    pub variant: Variant,
}

/// The most accounts one post goes to.
pub const TARGETS_MAX: usize = 20;

/// Checks what a post needs whatever its platforms: targets, time zone, time.
pub fn check_spec(spec: &PostSpec, now: chrono::DateTime<chrono::Utc>) -> Result<(), Error> {
    if spec.targets.is_empty() || spec.targets.len() > TARGETS_MAX {
        return Err(invalid("targets", "count"));
    }
    if !spec.time_zone.is_empty() && spec.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(invalid("time_zone", "unknown"));
    }
    if spec.queue && spec.scheduled_at.is_some() {
        return Err(invalid("queue", "with_scheduled_at"));
    }
    if let Some(at) = spec.scheduled_at {
        check_time(at, now)?;
    }
    for (i, t) in spec.targets.iter().enumerate() {
        if let Some(at) = t.variant.publish_at {
            check_publish_at_time(at, spec.scheduled_at, now).map_err(|e| e.with_param("target", i.to_string()))?;
        }
    }
    Ok(())
}

/// A publishing time: not past (a little slack for clocks: a post an hour late was a mistake,
/// not a wish) and within 400 days.
pub fn check_time(at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Result<(), Error> {
    if at < now - chrono::Duration::minutes(5) {
        return Err(Error::invalid("ads.post_time_past").with_violation("scheduled_at", "past"));
    }
    if at > now + chrono::Duration::days(400) {
        return Err(invalid("scheduled_at", "too_far"));
    }
    Ok(())
}

/// Where to look again after a transient failure: `base` doubled per attempt, at most a day.
pub fn backoff(base: std::time::Duration, attempts: u32) -> std::time::Duration {
    let factor = 1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(std::time::Duration::from_secs(86_400))
}

/// A recurring slot of the posting queue: every `weekday` (1 Monday … 7 Sunday) at `time` in
/// `time_zone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSlot {
    pub weekday: u8,
    pub time: chrono::NaiveTime,
    pub time_zone: String,
}

/// The most slots a workspace keeps.
pub const SLOTS_MAX: usize = 100;

pub fn check_slots(slots: &[QueueSlot]) -> Result<(), Error> {
    if slots.len() > SLOTS_MAX {
        return Err(Error::invalid("ads.queue_slots_too_many").with_param("max", SLOTS_MAX.to_string()));
    }
    for (i, s) in slots.iter().enumerate() {
        if !(1..=7).contains(&s.weekday) {
            return Err(slot_invalid(i, "weekday"));
        }
        if s.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(slot_invalid(i, "time_zone"));
        }
    }
    Ok(())
}

/// Slot `i`'s `field` (weekday 1–7, time HH:MM, an IANA time zone) is not valid.
pub fn slot_invalid(i: usize, field: &str) -> Error {
    Error::invalid("ads.queue_slot_invalid")
        .with_param("slot", (i + 1).to_string())
        .with_param("field", field.to_owned())
        .with_violation(format!("slots[{i}].{field}"), "invalid")
}

/// The earliest slot instant after `now` that no post holds (`taken`), looking `weeks` ahead. A
/// slot time a daylight-saving change skips that day is skipped; one it repeats takes the first.
pub fn next_free_slot(
    slots: &[QueueSlot],
    taken: &std::collections::HashSet<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    weeks: u32,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{Datelike, TimeZone};
    let mut best: Option<chrono::DateTime<chrono::Utc>> = None;
    for s in slots {
        let Ok(tz) = s.time_zone.parse::<chrono_tz::Tz>() else { continue };
        let today = now.with_timezone(&tz).date_naive();
        for d in 0..i64::from(weeks) * 7 + 1 {
            let day = today + chrono::Duration::days(d);
            if day.weekday().number_from_monday() != u32::from(s.weekday) {
                continue;
            }
            let Some(local) = tz.from_local_datetime(&day.and_time(s.time)).earliest() else { continue };
            let at = local.with_timezone(&chrono::Utc);
            if at > now && !taken.contains(&at) {
                if best.is_none_or(|b| at < b) {
                    best = Some(at);
                }
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod queue_tests {
    use std::collections::HashSet;

    use chrono::{NaiveTime, Utc};

    use super::*;

    fn slot(weekday: u8, h: u32, tz: &str) -> QueueSlot {
        QueueSlot { weekday, time: NaiveTime::from_hms_opt(h, 0, 0).unwrap(), time_zone: tz.into() }
    }

    fn at(s: &str) -> chrono::DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_earliest_free_slot_in_its_own_time_zone() {
        // Monday 2026-03-02 08:00 UTC.
        let now = at("2026-03-02T08:00:00Z");
        let slots = vec![slot(1, 9, "Europe/Madrid"), slot(3, 10, "America/Mexico_City")];
        let none = HashSet::new();
        // Monday 09:00 in Madrid (UTC+1) is 08:00 UTC: already now, not after; next is Wednesday 10:00 CST.
        assert_eq!(next_free_slot(&slots, &none, now, 4), Some(at("2026-03-04T16:00:00Z")));
        let taken: HashSet<_> = [at("2026-03-04T16:00:00Z")].into();
        assert_eq!(next_free_slot(&slots, &taken, now, 4), Some(at("2026-03-09T08:00:00Z")));
        assert_eq!(next_free_slot(&[], &none, now, 4), None);
    }

    #[test]
    fn daylight_saving_moves_the_instant_not_the_local_time() {
        // Sunday 2026-03-29: Madrid goes to UTC+2 at 02:00 (02:30 does not exist that day).
        let now = at("2026-03-28T12:00:00Z");
        let gap = vec![slot(7, 2, "Europe/Madrid")];
        // 02:00 is skipped that day: the next Sunday's 02:00 (UTC+2).
        let got = next_free_slot(&gap, &HashSet::new(), now, 4).unwrap();
        assert_eq!(got, at("2026-04-05T00:00:00Z"));
        let nine = vec![slot(1, 9, "Europe/Madrid")];
        assert_eq!(next_free_slot(&nine, &HashSet::new(), now, 4), Some(at("2026-03-30T07:00:00Z")));
    }

    #[test]
    fn slots_are_checked() {
        assert!(check_slots(&[slot(8, 9, "UTC")]).is_err());
        assert!(check_slots(&[slot(1, 9, "Mars/Olympus")]).is_err());
        assert!(check_slots(&[slot(1, 9, "Asia/Jerusalem")]).is_ok());
    }
}
