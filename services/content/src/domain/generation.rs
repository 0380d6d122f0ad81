//! What can be generated, for which platform, within which limits, and the validated request.

use nexus_kernel::{Error, Locale};
use serde::{Deserialize, Serialize};

use super::text_field;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    AdCopy,
    SocialPost,
    Email,
    ProductDescription,
    WhatsappTemplate,
    LandingPageCopy,
}

impl ContentKind {
    pub const ALL: [ContentKind; 6] = [
        Self::AdCopy,
        Self::SocialPost,
        Self::Email,
        Self::ProductDescription,
        Self::WhatsappTemplate,
        Self::LandingPageCopy,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AdCopy => "ad_copy",
            Self::SocialPost => "social_post",
            Self::Email => "email",
            Self::ProductDescription => "product_description",
            Self::WhatsappTemplate => "whatsapp_template",
            Self::LandingPageCopy => "landing_page_copy",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            Error::invalid("content.unknown_kind")
                .with_param("kind", s.chars().take(40).collect::<String>())
                .with_violation("kind", "unknown")
        })
    }

    /// Variants produced when the request does not say.
    pub const fn default_variants(self) -> u32 {
        match self {
            Self::AdCopy => 3,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Instagram,
    Tiktok,
    Facebook,
    X,
    Linkedin,
    Youtube,
}

impl Platform {
    pub const ALL: [Platform; 6] =
        [Self::Instagram, Self::Tiktok, Self::Facebook, Self::X, Self::Linkedin, Self::Youtube];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Instagram => "instagram",
            Self::Tiktok => "tiktok",
            Self::Facebook => "facebook",
            Self::X => "x",
            Self::Linkedin => "linkedin",
            Self::Youtube => "youtube",
        }
    }

    /// Display name used inside generated text.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Instagram => "Instagram",
            Self::Tiktok => "TikTok",
            Self::Facebook => "Facebook",
            Self::X => "X",
            Self::Linkedin => "LinkedIn",
            Self::Youtube => "YouTube",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = if s == "twitter" { "x" } else { s };
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            Error::invalid("content.unknown_platform")
                .with_param("platform", s.chars().take(40).collect::<String>())
                .with_violation("platform", "unknown")
        })
    }

    /// Characters allowed in a post (caption, tweet, video description).
    pub const fn post_limit(self) -> usize {
        match self {
            Self::Instagram | Self::Tiktok => 2_200,
            Self::Facebook => 63_206,
            Self::X => 280,
            Self::Linkedin => 3_000,
            Self::Youtube => 5_000,
        }
    }

    /// Characters of an ad's primary text on this platform (TikTok ad text: 100; Meta's
    /// recommended primary text before "See more": 125).
    pub const fn ad_text_limit(self) -> usize {
        match self {
            Self::Tiktok => 100,
            Self::X => 280,
            _ => 125,
        }
    }
}

/// Title and body limits of one kind (0 = the kind has no title).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub title: usize,
    pub body: usize,
}

/// The limits generated text is fitted to.
pub fn limits(kind: ContentKind, platform: Option<Platform>) -> Limits {
    match kind {
        // Meta ad headline: 40 characters.
        ContentKind::AdCopy => Limits { title: 40, body: platform.map_or(125, Platform::ad_text_limit) },
        ContentKind::SocialPost => {
            let p = platform.unwrap_or(Platform::Instagram);
            // YouTube videos have a title (100) besides the description.
            Limits { title: if p == Platform::Youtube { 100 } else { 0 }, body: p.post_limit() }
        }
        // Subject lines past ~80 characters are cut by most mail clients.
        ContentKind::Email => Limits { title: 80, body: 5_000 },
        ContentKind::ProductDescription => Limits { title: 120, body: 2_000 },
        // WhatsApp template body: 1,024 characters.
        ContentKind::WhatsappTemplate => Limits { title: 0, body: 1_024 },
        ContentKind::LandingPageCopy => Limits { title: 90, body: 3_000 },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    #[default]
    Friendly,
    Professional,
    Playful,
    Urgent,
    Luxury,
}

impl Tone {
    pub const ALL: [Tone; 5] = [Self::Friendly, Self::Professional, Self::Playful, Self::Urgent, Self::Luxury];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Friendly => "friendly",
            Self::Professional => "professional",
            Self::Playful => "playful",
            Self::Urgent => "urgent",
            Self::Luxury => "luxury",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            Error::invalid("content.unknown_tone")
                .with_param("tone", s.chars().take(40).collect::<String>())
                .with_violation("tone", "unknown")
        })
    }
}

/// Parses a target language; empty means `fallback` (the caller's language).
pub fn parse_language(s: &str, fallback: Locale) -> Result<Locale, Error> {
    if s.is_empty() {
        return Ok(fallback);
    }
    s.parse::<Locale>().map_err(|_| {
        Error::invalid("content.unsupported_language")
            .with_param("language", s.chars().take(20).collect::<String>())
            .with_violation("language", "unsupported")
    })
}

pub const MAX_FACTS: usize = 10;
pub const MAX_VARIANTS: u32 = 5;

/// The facts a generator may use about a product or business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brief {
    pub product: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub audience: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub call_to_action: String,
    pub tone: Tone,
    pub language: Locale,
}

/// A brief as it arrives, before validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBrief<'a> {
    pub product: &'a str,
    pub description: &'a str,
    pub audience: &'a str,
    pub facts: &'a [String],
    pub call_to_action: &'a str,
    pub tone: &'a str,
    pub language: &'a str,
}

impl Brief {
    /// Validates the free-text parts of a brief; an empty language means `fallback_language`.
    pub fn parse(raw: RawBrief<'_>, fallback_language: Locale) -> Result<Self, Error> {
        let RawBrief { product, description, audience, facts, call_to_action, tone, language } = raw;
        if facts.len() > MAX_FACTS {
            return Err(Error::invalid("content.too_many_facts")
                .with_param("max", MAX_FACTS.to_string())
                .with_violation("facts", "too_many"));
        }
        let facts = facts
            .iter()
            .map(|f| text_field("facts", f, 200, false))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect();
        Ok(Self {
            product: text_field("product", product, 120, true)?,
            description: text_field("description", description, 2_000, false)?,
            audience: text_field("audience", audience, 200, false)?,
            facts,
            call_to_action: text_field("call_to_action", call_to_action, 80, false)?,
            tone: Tone::parse(tone)?,
            language: parse_language(language, fallback_language)?,
        })
    }
}

/// A validated generation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationInput {
    pub kind: ContentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    pub variants: u32,
    #[serde(flatten)]
    pub brief: Brief,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

impl GenerationInput {
    pub fn new(
        kind: &str,
        platform: &str,
        variants: u32,
        max_tokens: u32,
        brief: Brief,
        max_max_tokens: u32,
    ) -> Result<Self, Error> {
        let kind = ContentKind::parse(kind)?;
        let platform = if platform.is_empty() { None } else { Some(Platform::parse(platform)?) };
        match (kind, platform) {
            (ContentKind::SocialPost, None) => {
                return Err(Error::invalid("content.platform_required").with_violation("platform", "required"));
            }
            (ContentKind::SocialPost | ContentKind::AdCopy, _) | (_, None) => {}
            (_, Some(_)) => {
                return Err(Error::invalid("content.platform_not_applicable")
                    .with_param("kind", kind.as_str())
                    .with_violation("platform", "not_applicable"));
            }
        }
        if variants > MAX_VARIANTS {
            return Err(Error::invalid("content.too_many_variants")
                .with_param("max", MAX_VARIANTS.to_string())
                .with_violation("variants", "too_many"));
        }
        if max_tokens > max_max_tokens {
            return Err(Error::invalid("content.max_tokens_too_large")
                .with_param("max", max_max_tokens.to_string())
                .with_violation("max_tokens", "too_large"));
        }
        let variants = if variants == 0 { kind.default_variants() } else { variants };
        Ok(Self { kind, platform, variants, brief, max_tokens: (max_tokens > 0).then_some(max_tokens) })
    }

    pub fn limits(&self) -> Limits {
        limits(self.kind, self.platform)
    }
}

/// One piece of generated copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Variant {
    #[serde(default)]
    pub title: String,
    pub body: String,
}

/// Token counts reported by a model (estimated for the local generator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

impl Usage {
    pub fn new(prompt: i64, completion: i64) -> Self {
        Self { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
    }

    pub fn plus(self, o: Usage) -> Usage {
        Usage::new(self.prompt_tokens + o.prompt_tokens, self.completion_tokens + o.completion_tokens)
    }
}

/// A stored generation, as the use cases hand it out.
#[derive(Debug, Clone)]
pub struct Generation {
    pub id: uuid::Uuid,
    pub kind: String,
    pub platform: Option<String>,
    pub language: String,
    pub tone: String,
    pub status: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    /// The request as given, as JSON text (stored as jsonb; shown, never interpreted again).
    pub input_json: String,
    pub variants: Vec<Variant>,
    pub title_limit: i32,
    pub body_limit: i32,
    pub usage: Usage,
    pub credits: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Rough token count of text (about four characters a token in Latin scripts), used where no
/// model reports one: local generations and streams cut before their usage arrived.
pub fn estimate_tokens(text: &str) -> i64 {
    i64::try_from(text.chars().count().div_ceil(4)).unwrap_or(i64::MAX)
}

/// Credits for tokens: one credit per started thousand tokens, never less than `min` (the price
/// of `content.generation`).
pub fn credits_for_tokens(total_tokens: i64, min: i64) -> i64 {
    let by_tokens = (total_tokens.max(0) + 999) / 1000;
    by_tokens.max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(product: &str) -> RawBrief<'_> {
        RawBrief { product, ..Default::default() }
    }

    fn brief() -> Brief {
        Brief::parse(raw("Trail shoes"), Locale::En).unwrap()
    }

    #[test]
    fn platform_limits_match_the_platforms() {
        assert_eq!(limits(ContentKind::SocialPost, Some(Platform::X)).body, 280);
        assert_eq!(limits(ContentKind::SocialPost, Some(Platform::Instagram)).body, 2_200);
        assert_eq!(limits(ContentKind::SocialPost, Some(Platform::Tiktok)).body, 2_200);
        assert_eq!(limits(ContentKind::SocialPost, Some(Platform::Linkedin)).body, 3_000);
        assert_eq!(limits(ContentKind::SocialPost, Some(Platform::Youtube)).body, 5_000);
        assert_eq!(limits(ContentKind::WhatsappTemplate, None).body, 1_024);
    }

    #[test]
    fn inputs_are_validated() {
        assert!(GenerationInput::new("social_post", "", 0, 0, brief(), 4000).is_err());
        assert!(GenerationInput::new("email", "x", 0, 0, brief(), 4000).is_err());
        assert!(GenerationInput::new("ad_copy", "", 6, 0, brief(), 4000).is_err());
        assert!(GenerationInput::new("poem", "", 0, 0, brief(), 4000).is_err());
        assert!(GenerationInput::new("email", "", 0, 9000, brief(), 4000).is_err());
        let ok = GenerationInput::new("ad_copy", "twitter", 0, 0, brief(), 4000).unwrap();
        assert_eq!((ok.variants, ok.platform), (3, Some(Platform::X)));
        assert!(Brief::parse(raw(""), Locale::En).is_err());
        assert!(Brief::parse(RawBrief { tone: "grumpy", ..raw("x") }, Locale::En).is_err());
        assert!(Brief::parse(RawBrief { language: "fr", ..raw("x") }, Locale::En).is_err());
        assert!(Brief::parse(raw("x\u{0}"), Locale::En).is_err());
        assert!(Brief::parse(raw(&"x".repeat(121)), Locale::En).is_err());
        let facts = vec!["f".to_owned(); 11];
        assert!(Brief::parse(RawBrief { facts: &facts, ..raw("x") }, Locale::En).is_err());
        assert_eq!(Brief::parse(raw("x"), Locale::Ar).unwrap().language, Locale::Ar);
    }

    #[test]
    fn tokens_become_credits() {
        assert_eq!(credits_for_tokens(0, 1), 1);
        assert_eq!(credits_for_tokens(1000, 1), 1);
        assert_eq!(credits_for_tokens(1001, 1), 2);
        assert_eq!(credits_for_tokens(4800, 1), 5);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
    }
}
