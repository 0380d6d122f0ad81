//! The ad campaign builder's request, checked before any platform call: objective and
//! optimization goal compatibility, minimum daily budgets per currency, special ad categories
//! where the subject needs one, text limits, targeting and schedule — each by the rules of the
//! platform it is for (Meta or TikTok).

use chrono::{DateTime, Utc};
use nexus_kernel::{Currency, Error};

use super::connections::Provider;
use super::posts::{MB, Media, MediaKind, MediaSource, Spec, check_measures};

/// Meta objectives (ODAX) and the optimization goals each accepts.
const META_GOALS: &[(&str, &[&str])] = &[
    ("OUTCOME_AWARENESS", &["REACH", "IMPRESSIONS", "AD_RECALL_LIFT", "THRUPLAY"]),
    ("OUTCOME_TRAFFIC", &["LINK_CLICKS", "LANDING_PAGE_VIEWS", "IMPRESSIONS", "REACH"]),
    ("OUTCOME_ENGAGEMENT", &["POST_ENGAGEMENT", "THRUPLAY", "CONVERSATIONS", "LINK_CLICKS"]),
    ("OUTCOME_LEADS", &["LEAD_GENERATION", "OFFSITE_CONVERSIONS", "CONVERSATIONS", "LINK_CLICKS"]),
    ("OUTCOME_SALES", &["OFFSITE_CONVERSIONS", "VALUE", "LINK_CLICKS", "CONVERSATIONS"]),
    ("OUTCOME_APP_PROMOTION", &["APP_INSTALLS", "LINK_CLICKS"]),
];
const BILLING_EVENTS: &[&str] = &["IMPRESSIONS", "LINK_CLICKS", "THRUPLAY"];
const SPECIAL_CATEGORIES: &[&str] =
    &["CREDIT", "EMPLOYMENT", "HOUSING", "ISSUES_ELECTIONS_POLITICS", "FINANCIAL_PRODUCTS_SERVICES"];
/// TikTok objectives (`objective_type`) and the ad group optimization goals each accepts.
const TIKTOK_GOALS: &[(&str, &[&str])] = &[
    ("REACH", &["REACH", "SHOW"]),
    ("TRAFFIC", &["CLICK", "LANDING_PAGE_VIEW"]),
    ("VIDEO_VIEWS", &["ENGAGED_VIEW", "VIDEO_VIEW"]),
    ("ENGAGEMENT", &["FOLLOWERS", "PROFILE_VIEWS"]),
    ("LEAD_GENERATION", &["LEAD_GENERATION", "CLICK"]),
    ("WEB_CONVERSIONS", &["CONVERT", "VALUE", "CLICK"]),
    ("APP_PROMOTION", &["INSTALL", "CLICK"]),
];
const TIKTOK_BILLING_EVENTS: &[&str] = &["CPC", "CPM", "OCPM", "CPV"];
/// TikTok's `special_industries`; political ads are not accepted there at all.
const TIKTOK_SPECIAL_CATEGORIES: &[&str] = &["CREDIT", "EMPLOYMENT", "HOUSING"];
/// TikTok's smallest ad group daily budget is about twenty times Meta's (20 US dollars).
const TIKTOK_MIN_FACTOR: i64 = 20;
/// TikTok's `ad_text` limit.
pub const TIKTOK_MAX_AD_TEXT: usize = 100;
/// What an ad is about, and the special category the platform requires for it.
const SUBJECTS: &[(&str, Option<&str>)] = &[
    ("general", None),
    ("housing", Some("HOUSING")),
    ("employment", Some("EMPLOYMENT")),
    ("credit", Some("CREDIT")),
    ("politics", Some("ISSUES_ELECTIONS_POLITICS")),
];
/// The smallest daily budget accepted, in minor units of the account's currency (about one US
/// dollar; currencies with a small unit need more of them).
const MIN_DAILY: &[(&str, i64)] = &[
    ("USD", 100),
    ("EUR", 100),
    ("GBP", 100),
    ("CAD", 100),
    ("AUD", 100),
    ("BRL", 500),
    ("MXN", 2000),
    ("ARS", 100_000),
    ("COP", 400_000),
    ("CLP", 1000),
    ("ILS", 400),
    ("AED", 400),
    ("SAR", 400),
    ("EGP", 5000),
    ("JPY", 150),
    ("KWD", 300),
    ("BHD", 400),
];
pub const MAX_PRIMARY_TEXT: usize = 2200;
pub const MAX_HEADLINE: usize = 255;
pub const MAX_DESCRIPTION: usize = 255;
const MAX_NAME: usize = 200;
pub const MAX_INTERESTS: usize = 25;

/// A checked build request (Meta: campaign, ad set, creative, ad).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildSpec {
    pub name: String,
    pub objective: String,
    pub optimization_goal: String,
    pub billing_event: String,
    pub special_ad_categories: Vec<String>,
    /// What the ads promote (`general`, `housing`, …): some subjects need a special category.
    #[serde(default)]
    pub subject: String,
    /// Minor units of the ad account's currency.
    pub daily_budget: i64,
    pub countries: Vec<String>,
    pub age_min: u32,
    pub age_max: u32,
    /// Interest ids from the platform's targeting search (`search_interests`), at most
    /// [`MAX_INTERESTS`]; people matching any of them.
    #[serde(default)]
    pub interests: Vec<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub page_id: String,
    pub link: String,
    pub primary_text: String,
    pub headline: String,
    pub description: String,
    pub image_url: String,
    /// The creative's picture or video named instead of `image_url` (at most one of the four):
    /// a finished image of the content service, an item of the media library, or a finished
    /// video of the video service. Uploaded to the ad account by the build's `media` step.
    #[serde(default)]
    pub image_id: String,
    #[serde(default)]
    pub media_id: String,
    #[serde(default)]
    pub video_id: String,
    /// The named item as measured by the service that holds it (a content image as the library
    /// item it was imported as): set once checked, before the build starts.
    #[serde(default)]
    pub creative: Option<Media>,
    /// Leave the objects paused (the default) or start them at once.
    pub activate: bool,
}

/// What a client sent: the fields of a spec as given; [`BuildSpec::parse`] checks and normalizes
/// them into the spec a build runs.
pub type BuildInput = BuildSpec;

fn invalid(field: &str, why: &str) -> Error {
    Error::invalid("ads.build_invalid").with_param("field", field).with_violation(field, why)
}

fn text(v: &str, field: &str, max: usize, required: bool) -> Result<String, Error> {
    let v = v.trim();
    if required && v.is_empty() {
        return Err(invalid(field, "required"));
    }
    let n = v.chars().count();
    if n > max {
        return Err(Error::invalid("ads.text_too_long")
            .with_param("field", field)
            .with_param("max", max.to_string())
            .with_violation(field, "too_long"));
    }
    Ok(v.to_owned())
}

/// The smallest daily budget in `currency`'s minor units (Meta's).
pub fn min_daily_budget(currency: Currency) -> i64 {
    MIN_DAILY.iter().find(|(c, _)| *c == currency.code()).map_or(100, |(_, m)| *m)
}

/// The smallest daily budget on `provider`'s platform.
pub fn min_daily_budget_on(provider: Provider, currency: Currency) -> i64 {
    match provider {
        Provider::TikTok => min_daily_budget(currency).saturating_mul(TIKTOK_MIN_FACTOR),
        _ => min_daily_budget(currency),
    }
}

/// The platform's rule tables.
struct Rules {
    goals: &'static [(&'static str, &'static [&'static str])],
    billing: &'static [&'static str],
    categories: &'static [&'static str],
    max_primary_text: usize,
}

fn rules(provider: Provider) -> Rules {
    match provider {
        Provider::TikTok => Rules {
            goals: TIKTOK_GOALS,
            billing: TIKTOK_BILLING_EVENTS,
            categories: TIKTOK_SPECIAL_CATEGORIES,
            max_primary_text: TIKTOK_MAX_AD_TEXT,
        },
        _ => Rules {
            goals: META_GOALS,
            billing: BILLING_EVENTS,
            categories: SPECIAL_CATEGORIES,
            max_primary_text: MAX_PRIMARY_TEXT,
        },
    }
}

/// The billing event a TikTok goal is usually bought by.
fn tiktok_billing(goal: &str) -> &'static str {
    match goal {
        "CLICK" | "LANDING_PAGE_VIEW" => "CPC",
        "REACH" | "SHOW" => "CPM",
        "VIDEO_VIEW" | "ENGAGED_VIEW" => "CPV",
        _ => "OCPM",
    }
}

impl BuildSpec {
    /// Checks everything Meta would refuse, in the account's `currency`.
    pub fn parse(i: &BuildInput, currency: Currency) -> Result<BuildSpec, Error> {
        Self::parse_for(i, currency, Provider::Meta)
    }

    /// Checks everything `provider`'s platform would refuse, in the account's `currency`. On
    /// TikTok `page_id` is the identity the ad speaks as and an image is required.
    pub fn parse_for(i: &BuildInput, currency: Currency, provider: Provider) -> Result<BuildSpec, Error> {
        let r = rules(provider);
        let name = text(&i.name, "name", MAX_NAME, true)?;
        let objective = i.objective.trim().to_ascii_uppercase();
        let Some((_, goals)) = r.goals.iter().find(|(o, _)| *o == objective) else {
            return Err(invalid("objective", "unknown"));
        };
        let goal = i.optimization_goal.trim().to_ascii_uppercase();
        if !goals.contains(&goal.as_str()) {
            return Err(Error::invalid("ads.optimization_incompatible")
                .with_param("goal", goal.chars().take(40).collect::<String>())
                .with_param("objective", objective.clone())
                .with_violation("optimization_goal", "incompatible"));
        }
        let billing = match (i.billing_event.trim(), provider) {
            ("", Provider::TikTok) => tiktok_billing(&goal).to_owned(),
            ("", _) => "IMPRESSIONS".to_owned(),
            (b, _) => b.to_ascii_uppercase(),
        };
        if !r.billing.contains(&billing.as_str()) {
            return Err(invalid("billing_event", "unknown"));
        }
        let mut categories: Vec<String> =
            i.special_ad_categories.iter().map(|c| c.trim().to_ascii_uppercase()).filter(|c| c != "NONE").collect();
        categories.sort();
        categories.dedup();
        if categories.iter().any(|c| !r.categories.contains(&c.as_str())) {
            return Err(invalid("special_ad_categories", "unknown"));
        }
        let subject = if i.subject.trim().is_empty() { "general" } else { i.subject.trim() };
        let Some((_, needed)) = SUBJECTS.iter().find(|(s, _)| *s == subject) else {
            return Err(invalid("subject", "unknown"));
        };
        if let Some(cat) = needed
            && !r.categories.contains(cat)
        {
            return Err(invalid("subject", "not_allowed"));
        }
        if let Some(cat) = needed
            && !categories.iter().any(|c| c == cat)
        {
            return Err(Error::invalid("ads.special_category_required")
                .with_param("category", *cat)
                .with_violation("special_ad_categories", "required"));
        }
        let min = min_daily_budget_on(provider, currency);
        if i.daily_budget < min {
            return Err(Error::invalid("ads.budget_below_minimum")
                .with_param("minimum", crate::domain::campaigns::format_minor(min, currency))
                .with_param("currency", currency.code())
                .with_violation("daily_budget", "below_minimum"));
        }
        let mut countries: Vec<String> = i.countries.iter().map(|c| c.trim().to_ascii_uppercase()).collect();
        countries.sort();
        countries.dedup();
        if countries.is_empty() || countries.iter().any(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(invalid("countries", "invalid"));
        }
        let (age_min, age_max) =
            (if i.age_min == 0 { 18 } else { i.age_min }, if i.age_max == 0 { 65 } else { i.age_max });
        if !(18..=65).contains(&age_min) || !(18..=65).contains(&age_max) || age_min > age_max {
            return Err(invalid("ages", "range"));
        }
        if let (Some(s), Some(e)) = (i.start, i.end)
            && e <= s
        {
            return Err(invalid("end", "before_start"));
        }
        let mut interests: Vec<String> = i.interests.iter().map(|s| s.trim().to_owned()).collect();
        interests.sort();
        interests.dedup();
        // Both platforms' interest ids are numbers (sent as text).
        if interests.len() > MAX_INTERESTS
            || interests.iter().any(|s| s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid("interests", "invalid"));
        }
        let page_id = text(&i.page_id, "page_id", 64, true)?;
        let link = i.link.trim().to_owned();
        let parsed = reqwest::Url::parse(&link).map_err(|_| invalid("link", "invalid"))?;
        if parsed.scheme() != "https" || parsed.host_str().is_none() {
            return Err(invalid("link", "not_https"));
        }
        let image_url = i.image_url.trim().to_owned();
        let (image_id, media_id, video_id) =
            (i.image_id.trim().to_owned(), i.media_id.trim().to_owned(), i.video_id.trim().to_owned());
        let named = [&image_url, &image_id, &media_id, &video_id].iter().filter(|v| !v.is_empty()).count();
        if named > 1 {
            return Err(invalid("image_url", "one_source"));
        }
        if named == 0 && provider == Provider::TikTok {
            return Err(invalid("image_url", "required"));
        }
        for (field, id) in [("image_id", &image_id), ("media_id", &media_id), ("video_id", &video_id)] {
            if id.len() > 64 || id.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
                return Err(invalid(field, "invalid"));
            }
        }
        if !image_url.is_empty() {
            let u = reqwest::Url::parse(&image_url).map_err(|_| invalid("image_url", "invalid"))?;
            if u.scheme() != "https" {
                return Err(invalid("image_url", "not_https"));
            }
        }
        Ok(BuildSpec {
            name,
            objective,
            optimization_goal: goal,
            billing_event: billing,
            special_ad_categories: categories,
            subject: subject.to_owned(),
            daily_budget: i.daily_budget,
            countries,
            age_min,
            age_max,
            interests,
            start: i.start,
            end: i.end,
            page_id,
            link,
            primary_text: text(&i.primary_text, "primary_text", r.max_primary_text, true)?,
            headline: text(&i.headline, "headline", MAX_HEADLINE, false)?,
            description: text(&i.description, "description", MAX_DESCRIPTION, false)?,
            image_url,
            image_id,
            media_id,
            video_id,
            creative: None,
            activate: i.activate,
        })
    }

    /// The item the creative names instead of a URL, and the field that names it.
    pub fn media_ref(&self) -> Option<(MediaSource, &str, &'static str)> {
        [
            (MediaSource::Image, self.image_id.as_str(), "image_id"),
            (MediaSource::Library, self.media_id.as_str(), "media_id"),
            (MediaSource::Video, self.video_id.as_str(), "video_id"),
        ]
        .into_iter()
        .find(|(_, id, _)| !id.is_empty())
    }

    /// Whether the ads can only run a video (TikTok's video views, Meta's ThruPlay).
    fn needs_video(&self) -> bool {
        self.objective == "VIDEO_VIEWS" || self.optimization_goal == "THRUPLAY" || self.billing_event == "THRUPLAY"
    }
}

/// What a platform takes as an ad's picture or video, and the fewest pixels of its shorter side.
fn creative_limits(provider: Provider, kind: MediaKind) -> (Spec, u32) {
    match (provider, kind) {
        // TikTok's in-feed video: 5–60 s, 9:16 to 16:9, 540 px on the short side, 500 MB.
        (Provider::TikTok, MediaKind::Video) => (
            Spec {
                types: &["video/mp4", "video/quicktime"],
                max_bytes: 500 * MB,
                min_secs: 5.0,
                max_secs: 60.0,
                min_ratio: 9.0 / 16.0,
                max_ratio: 16.0 / 9.0,
            },
            540,
        ),
        (Provider::TikTok, MediaKind::Image) => (
            Spec {
                types: &["image/jpeg", "image/png"],
                max_bytes: 10 * MB,
                min_secs: 0.0,
                max_secs: 0.0,
                min_ratio: 9.0 / 16.0,
                max_ratio: 16.0 / 9.0,
            },
            540,
        ),
        // Meta's feed video: up to 241 minutes and 4 GB, 9:16 to 16:9.
        (_, MediaKind::Video) => (
            Spec {
                types: &["video/mp4", "video/quicktime"],
                max_bytes: 4096 * MB,
                min_secs: 1.0,
                max_secs: 241.0 * 60.0,
                min_ratio: 9.0 / 16.0,
                max_ratio: 16.0 / 9.0,
            },
            120,
        ),
        // Meta's link ad picture: 4:5 to 1.91:1, 30 MB, at least 600 px.
        (_, MediaKind::Image) => (
            Spec {
                types: &["image/jpeg", "image/png"],
                max_bytes: 30 * MB,
                min_secs: 0.0,
                max_secs: 0.0,
                min_ratio: 0.8,
                max_ratio: 1.91,
            },
            600,
        ),
    }
}

/// Whether the measured item `m` (named by `field`) can be the creative of `spec`'s ads on
/// `provider`'s platform: kind, type, size, duration, shape.
pub fn check_creative(provider: Provider, spec: &BuildSpec, m: &Media, field: &str) -> Result<(), Error> {
    if m.kind == MediaKind::Image && spec.needs_video() {
        return Err(invalid(field, "video_required"));
    }
    let (l, min_side) = creative_limits(provider, m.kind);
    if !l.types.contains(&m.content_type.to_ascii_lowercase().as_str()) {
        return Err(invalid(field, "type"));
    }
    check_measures(&l, m, field)?;
    if m.width.min(m.height) < min_side {
        return Err(invalid(field, "too_small"));
    }
    Ok(())
}

/// What the build's `media` step put in the ad account's library: a picture (Meta's image hash
/// or TikTok's image id), or a video with the picture shown before it plays. Kept as the step's
/// platform id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Uploaded {
    /// The picture, or the video's cover.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
}

impl Uploaded {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(raw: &str) -> Option<Uploaded> {
        serde_json::from_str(raw).ok()
    }
}

/// The steps of a Meta build, in order (rollback runs them backwards). `media` (the creative's
/// file uploaded to the ad account) is only taken when the request names an item.
pub const META_STEPS: &[&str] = &["media", "campaign", "adset", "creative", "ad"];
/// The steps of a TikTok build (the creative is part of the ad there).
pub const TIKTOK_STEPS: &[&str] = &["media", "campaign", "adgroup", "ad"];
/// The step uploading the creative's picture or video.
pub const MEDIA_STEP: &str = "media";

/// The steps of a build on `provider`'s platform.
pub fn steps_of(provider: &str) -> &'static [&'static str] {
    if provider == Provider::TikTok.as_str() { TIKTOK_STEPS } else { META_STEPS }
}

/// The step holding the daily budget.
pub fn budget_step(provider: &str) -> &'static str {
    if provider == Provider::TikTok.as_str() { "adgroup" } else { "adset" }
}

/// Minor units as the decimal text of the currency's main unit (TikTok's budgets):
/// 2550 USD -> "25.50", 1500 JPY -> "1500".
pub fn main_units(minor: i64, currency: Currency) -> String {
    crate::domain::campaigns::format_minor(minor, currency)
}

/// The name a step's object carries on the platform: the build's id in it makes an object whose
/// creation went unanswered findable before the step is tried again.
pub fn tag(build: uuid::Uuid, step: &str, name: &str) -> String {
    let short: String = name.chars().take(120).collect();
    format!("{short} [nx:{}:{step}]", build.simple())
}

/// A build's ad review said in `locale`: the platform by name, and a rejection with the
/// platform's reasons (its own words, which it gives in English) and what to do next.
pub fn review_message(locale: nexus_kernel::Locale, provider: &str, review: &str, reason: &str) -> String {
    let platform = match provider {
        "meta" => "Meta",
        "tiktok" => "TikTok",
        _ => "Sandbox",
    };
    let id = match review {
        "approved" => "ads-review-approved",
        "rejected" => "ads-review-rejected",
        _ => "ads-review-pending",
    };
    let reason: String = reason.chars().take(500).collect();
    nexus_i18n::try_message(locale, id, &[("platform", platform), ("reason", reason.as_str())]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> BuildInput {
        BuildInput {
            name: "Winter".into(),
            objective: "OUTCOME_TRAFFIC".into(),
            optimization_goal: "LINK_CLICKS".into(),
            daily_budget: 1500,
            countries: vec!["us".into()],
            page_id: "555".into(),
            link: "https://shop.example.com/winter".into(),
            primary_text: "Warm coats".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_request_passes_with_defaults() {
        let s = BuildSpec::parse(&ok(), Currency::USD).unwrap();
        assert_eq!((s.billing_event.as_str(), s.age_min, s.age_max), ("IMPRESSIONS", 18, 65));
        assert_eq!(s.countries, ["US"]);
        assert!(!s.activate);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let code = |i: BuildInput, c: Currency| BuildSpec::parse(&i, c).unwrap_err().code().to_owned();
        assert_eq!(code(BuildInput { daily_budget: 99, ..ok() }, Currency::USD), "ads.budget_below_minimum");
        // 15.00 MXN is under the minimum, 15.00 USD is not.
        assert_eq!(code(ok(), "MXN".parse().unwrap()), "ads.budget_below_minimum");
        assert_eq!(
            code(BuildInput { subject: "housing".into(), ..ok() }, Currency::USD),
            "ads.special_category_required"
        );
        let housing = BuildInput { subject: "housing".into(), special_ad_categories: vec!["housing".into()], ..ok() };
        assert!(BuildSpec::parse(&housing, Currency::USD).is_ok());
        assert_eq!(
            code(BuildInput { optimization_goal: "APP_INSTALLS".into(), ..ok() }, Currency::USD),
            "ads.optimization_incompatible"
        );
        assert_eq!(code(BuildInput { headline: "h".repeat(256), ..ok() }, Currency::USD), "ads.text_too_long");
        assert_eq!(
            code(BuildInput { link: "http://shop.example.com".into(), ..ok() }, Currency::USD),
            "ads.build_invalid"
        );
        assert_eq!(code(BuildInput { age_min: 40, age_max: 30, ..ok() }, Currency::USD), "ads.build_invalid");
    }

    #[test]
    fn tiktok_rules_are_its_own() {
        let tt = |i: BuildInput| BuildSpec::parse_for(&i, Currency::USD, Provider::TikTok);
        let ok_tt = BuildInput {
            objective: "TRAFFIC".into(),
            optimization_goal: "CLICK".into(),
            daily_budget: 2000,
            image_url: "https://cdn.example.com/a.jpg".into(),
            ..ok()
        };
        let s = tt(ok_tt.clone()).unwrap();
        assert_eq!(s.billing_event, "CPC");
        let code = |i: BuildInput| tt(i).unwrap_err().code().to_owned();
        // 15.00 USD passes at Meta, not at TikTok (20.00).
        assert_eq!(code(BuildInput { daily_budget: 1999, ..ok_tt.clone() }), "ads.budget_below_minimum");
        assert_eq!(code(BuildInput { objective: "OUTCOME_TRAFFIC".into(), ..ok_tt.clone() }), "ads.build_invalid");
        assert_eq!(
            code(BuildInput { optimization_goal: "INSTALL".into(), ..ok_tt.clone() }),
            "ads.optimization_incompatible"
        );
        assert_eq!(code(BuildInput { image_url: String::new(), ..ok_tt.clone() }), "ads.build_invalid");
        assert_eq!(code(BuildInput { primary_text: "x".repeat(101), ..ok_tt.clone() }), "ads.text_too_long");
        assert_eq!(code(BuildInput { subject: "housing".into(), ..ok_tt.clone() }), "ads.special_category_required");
        let politics = BuildInput {
            subject: "politics".into(),
            special_ad_categories: vec!["ISSUES_ELECTIONS_POLITICS".into()],
            ..ok_tt.clone()
        };
        assert_eq!(code(politics), "ads.build_invalid");
        assert_eq!(main_units(2550, Currency::USD), "25.50");
    }

    #[test]
    fn one_creative_source_at_most_and_items_checked_against_the_platform() {
        let two = BuildInput { image_url: "https://cdn.example.com/a.jpg".into(), image_id: "img_1".into(), ..ok() };
        assert_eq!(BuildSpec::parse(&two, Currency::USD).unwrap_err().code(), "ads.build_invalid");
        let by_id = BuildSpec::parse(&BuildInput { video_id: " vid_1 ".into(), ..ok() }, Currency::USD).unwrap();
        assert_eq!(by_id.media_ref(), Some((MediaSource::Video, "vid_1", "video_id")));
        // TikTok takes an item instead of a URL.
        let tt = BuildInput {
            objective: "VIDEO_VIEWS".into(),
            optimization_goal: "VIDEO_VIEW".into(),
            daily_budget: 2000,
            media_id: "media_1".into(),
            ..ok()
        };
        let spec = BuildSpec::parse_for(&tt, Currency::USD, Provider::TikTok).unwrap();
        let video = Media {
            kind: MediaKind::Video,
            content_type: "video/mp4".into(),
            bytes: 5 * MB,
            width: 1080,
            height: 1920,
            duration_secs: 15.0,
            ..Media::default()
        };
        assert!(check_creative(Provider::TikTok, &spec, &video, "media_id").is_ok());
        let code = |m: &Media, p: Provider| check_creative(p, &spec, m, "media_id").unwrap_err().code().to_owned();
        assert_eq!(code(&Media { duration_secs: 61.0, ..video.clone() }, Provider::TikTok), "ads.post_media_duration");
        assert_eq!(code(&Media { bytes: 501 * MB, ..video.clone() }, Provider::TikTok), "ads.post_media_too_large");
        assert_eq!(
            code(&Media { width: 1920, height: 600, ..video.clone() }, Provider::TikTok),
            "ads.post_aspect_ratio"
        );
        assert_eq!(
            code(&Media { content_type: "video/webm".into(), ..video.clone() }, Provider::TikTok),
            "ads.build_invalid"
        );
        // Video views run videos only.
        let picture = Media {
            kind: MediaKind::Image,
            content_type: "image/png".into(),
            duration_secs: 0.0,
            width: 1080,
            height: 1080,
            ..video.clone()
        };
        let e = check_creative(Provider::TikTok, &spec, &picture, "media_id").unwrap_err();
        assert_eq!(
            (e.code(), e.params().iter().find(|(k, _)| k == "field").map(|(_, v)| v.as_str())),
            ("ads.build_invalid", Some("media_id"))
        );
        // Meta: 4:5 to 1.91:1 pictures of 600 px or more.
        let traffic = BuildSpec::parse(&ok(), Currency::USD).unwrap();
        assert!(check_creative(Provider::Meta, &traffic, &picture, "image_id").is_ok());
        let small = Media { width: 500, height: 500, ..picture.clone() };
        assert_eq!(
            check_creative(Provider::Meta, &traffic, &small, "image_id").unwrap_err().code(),
            "ads.build_invalid"
        );
        let up = Uploaded { image: "h".into(), video: Some("v".into()) };
        assert_eq!(Uploaded::decode(&up.encode()), Some(up));
    }

    #[test]
    fn tags_carry_the_build() {
        let id = uuid::Uuid::now_v7();
        assert!(tag(id, "adset", "Winter").ends_with(&format!("[nx:{}:adset]", id.simple())));
    }
}

/// The budget guards, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetGuard {
    pub per_change_percent: u32,
    pub per_day_percent: u32,
    /// Minor units; 0: no cap.
    pub workspace_cap: i64,
}

fn plus_percent(base: i64, percent: u32) -> i64 {
    base.saturating_add(base.saturating_mul(i64::from(percent)) / 100)
}

impl BudgetGuard {
    /// Whether the workspace's live daily budgets (`others`, this campaign left out) leave room
    /// for `budget`.
    pub fn check_cap(&self, others: i64, budget: i64, currency: Currency) -> Result<(), Error> {
        if self.workspace_cap > 0 && others.saturating_add(budget) > self.workspace_cap {
            return Err(Error::new(nexus_kernel::ErrorKind::FailedPrecondition, "ads.workspace_cap_exceeded")
                .with_param("cap", crate::domain::campaigns::format_minor(self.workspace_cap, currency))
                .with_param("currency", currency.code()));
        }
        Ok(())
    }

    /// A change of a daily budget from `old` to `new`, the day having started at `day_start`.
    /// Lowering is always allowed (down to the currency's minimum).
    pub fn check_change(
        &self,
        old: i64,
        new: i64,
        day_start: i64,
        others: i64,
        currency: Currency,
        provider: Provider,
    ) -> Result<(), Error> {
        let min = min_daily_budget_on(provider, currency);
        if new < min {
            return Err(Error::invalid("ads.budget_below_minimum")
                .with_param("minimum", crate::domain::campaigns::format_minor(min, currency))
                .with_param("currency", currency.code())
                .with_violation("daily_budget", "below_minimum"));
        }
        if new <= old {
            return Ok(());
        }
        let per_change = plus_percent(old, self.per_change_percent);
        if new > per_change {
            return Err(Error::invalid("ads.budget_increase_too_large")
                .with_param("max", crate::domain::campaigns::format_minor(per_change, currency))
                .with_param("currency", currency.code())
                .with_violation("daily_budget", "increase_too_large"));
        }
        let per_day = plus_percent(day_start, self.per_day_percent);
        if new > per_day {
            return Err(Error::invalid("ads.budget_daily_increase_exceeded")
                .with_param("max", crate::domain::campaigns::format_minor(per_day, currency))
                .with_param("currency", currency.code())
                .with_violation("daily_budget", "daily_increase_exceeded"));
        }
        self.check_cap(others, new, currency)
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    const G: BudgetGuard = BudgetGuard { per_change_percent: 50, per_day_percent: 100, workspace_cap: 10_000 };

    #[test]
    fn tiktok_budgets_keep_tiktoks_minimum() {
        let usd = Currency::USD;
        assert_eq!(
            G.check_change(3000, 1500, 3000, 0, usd, Provider::TikTok).unwrap_err().code(),
            "ads.budget_below_minimum"
        );
        assert!(G.check_change(3000, 2000, 3000, 0, usd, Provider::TikTok).is_ok());
    }

    #[test]
    fn raises_are_held_to_the_change_the_day_and_the_workspace_cap() {
        let usd = Currency::USD;
        assert!(G.check_change(2000, 3000, 2000, 0, usd, Provider::Meta).is_ok());
        assert_eq!(
            G.check_change(2000, 3001, 2000, 0, usd, Provider::Meta).unwrap_err().code(),
            "ads.budget_increase_too_large"
        );
        // Two raises of 50 % in a day pass 100 %: the second is refused.
        assert_eq!(
            G.check_change(3000, 4500, 2000, 0, usd, Provider::Meta).unwrap_err().code(),
            "ads.budget_daily_increase_exceeded"
        );
        assert!(G.check_change(3000, 4000, 2000, 0, usd, Provider::Meta).is_ok());
        assert_eq!(
            G.check_change(3000, 4000, 2000, 7000, usd, Provider::Meta).unwrap_err().code(),
            "ads.workspace_cap_exceeded"
        );
        // Lowering is fine, not under the minimum.
        assert!(G.check_change(3000, 150, 3000, 0, usd, Provider::Meta).is_ok());
        assert_eq!(
            G.check_change(3000, 50, 3000, 0, usd, Provider::Meta).unwrap_err().code(),
            "ads.budget_below_minimum"
        );
    }
}
