//! Ads service configuration (see `config.default.toml`).

use std::time::Duration;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// The sealing key in `config.default.toml`: public, so only for development.
pub const DEV_SEALING_KEY: &str = "1:bmV4dXMtYWRzLWRldmVsb3BtZW50LWtleS0zMmJ5dGU=";

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub ads: AdsConfig,
    pub oauth: OAuthConfig,
    pub sandbox: SandboxConfig,
    pub meta: MetaSettings,
    pub tiktok: TikTokSettings,
    pub google: GoogleSettings,
    pub expiry: ExpiryConfig,
    pub budget: BudgetConfig,
    pub insights: InsightsConfig,
    pub audiences: AudiencesConfig,
    pub posts: PostsConfig,
    pub providers: ProvidersConfig,
    pub services: ServicesConfig,
    pub storage: StorageConfig,
    pub media: MediaConfig,
}

/// `[storage]`: the platform's object storage, where uploaded post media are kept.
pub use nexus_platform::storage::{S3Config, StorageConfig};

/// The development key of media links, refused in production.
pub const DEV_MEDIA_LINK_KEY: &str = "dev:bmV4dXMtYWRzLWRldmVsb3BtZW50LW1lZGlhLWxpbmtz";

/// The media library of social posts.
#[derive(Debug, Clone, Deserialize)]
pub struct MediaConfig {
    pub max_image_bytes: u64,
    pub max_video_bytes: u64,
    /// How long a signed link to an item works (the platforms fetch at publish time).
    #[serde(with = "humantime_secs")]
    pub link_ttl: Duration,
    /// `kid:base64(≥ 32 bytes)`, comma-separated; the first signs.
    pub signing_keys: Secret,
    /// Where the gateway serves `GET …/{token}`.
    pub base_url: String,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

impl nexus_platform::crypto::SealingConfig for Config {
    fn sealing_keys(&self) -> Option<&nexus_platform::Secret> {
        Some(&self.ads.sealing_keys)
    }
}

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        if nexus_platform::crypto::uses_key(self.ads.sealing_keys.expose(), DEV_SEALING_KEY) {
            found.push(DevelopmentOnly::new(
                "ads.sealing_keys",
                "the built-in development key is public; set NEXUS_ADS__SEALING_KEYS_FILE",
            ));
        }
        if self.sandbox.enabled == Some(true) {
            found.push(DevelopmentOnly::new(
                "sandbox.enabled",
                "the local ads sandbox creates nothing on the platforms; unset it in production",
            ));
        }
        if self.oauth.redirect_allowlist.iter().any(|u| u.starts_with("http://")) {
            found.push(DevelopmentOnly::new(
                "oauth.redirect_allowlist",
                "a plain-HTTP redirect address would expose authorization codes; list https addresses",
            ));
        }
        if nexus_platform::crypto::uses_key(self.media.signing_keys.expose(), DEV_MEDIA_LINK_KEY) {
            found.push(DevelopmentOnly::new(
                "media.signing_keys",
                "the built-in development key signs media links; set NEXUS_MEDIA__SIGNING_KEYS_FILE",
            ));
        }
        found
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdsConfig {
    /// Keys sealing platform tokens at rest.
    pub sealing_keys: Secret,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthConfig {
    pub redirect_allowlist: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SandboxConfig {
    /// Unset: on in development only.
    pub enabled: Option<bool>,
}

/// An id that may arrive as a number: platform app ids are digits, and the `NEXUS_…`
/// environment layer reads digits as a number.
fn id_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Id::deserialize(d)? {
        Id::Text(s) => s,
        Id::Number(n) => n.to_string(),
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetaSettings {
    #[serde(deserialize_with = "id_text")]
    pub app_id: String,
    pub app_secret: Secret,
    pub api_version: String,
    pub graph_url: String,
    pub dialog_url: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TikTokSettings {
    #[serde(deserialize_with = "id_text")]
    pub app_id: String,
    pub secret: Secret,
    pub base_url: String,
    pub auth_url: String,
    /// The Content Posting API (organic posts), a different host from the Business API.
    pub content_url: String,
    /// Login Kit (creators' own tokens, which organic posts need). Empty key: creators cannot
    /// be connected.
    pub client_key: String,
    pub client_secret: Secret,
    pub login_url: String,
    pub creator_scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GoogleSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub api_url: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExpiryConfig {
    #[serde(with = "humantime_secs")]
    pub interval: Duration,
    #[serde(with = "humantime_secs")]
    pub notice: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InsightsConfig {
    pub backfill_days: u32,
    #[serde(with = "humantime_secs")]
    pub slowdown: Duration,
    #[serde(with = "humantime_secs")]
    pub sweep_interval: Duration,
    #[serde(with = "humantime_secs")]
    pub refresh_every: Duration,
    pub recent_days: u32,
    #[serde(with = "humantime_secs")]
    pub lease: Duration,
    pub async_over_days: u32,
    #[serde(with = "humantime_secs")]
    pub poll_interval: Duration,
}

/// Custom audiences made from a contact-book segment.
#[derive(Debug, Clone, Deserialize)]
pub struct AudiencesConfig {
    /// How often such an audience is read again from its segment and replaced at the platform.
    #[serde(with = "humantime_secs")]
    pub refresh_every: Duration,
    /// How often due refreshes are looked for (and a failed one tried again).
    #[serde(with = "humantime_secs")]
    pub sweep_interval: Duration,
    /// Longer than any refresh takes: a replica's claim outliving its work lets another take it.
    #[serde(with = "humantime_secs")]
    pub lease: Duration,
}

/// The social media scheduler.
#[derive(Debug, Clone, Deserialize)]
pub struct PostsConfig {
    #[serde(with = "humantime_secs")]
    pub poll_interval: Duration,
    pub batch: u32,
    pub concurrency: u32,
    /// Publications of one account in flight at once, in a round.
    pub per_account: u32,
    /// Rounds a replica runs side by side.
    pub rounds: u32,
    /// Longer than any publish takes: a replica's claim outliving its work is what lets another
    /// reconcile it.
    #[serde(with = "humantime_secs")]
    pub lease: Duration,
    /// A renewable token running out within this is renewed before a round uses it.
    #[serde(with = "humantime_secs")]
    pub token_margin: Duration,
    pub max_attempts: u32,
    #[serde(with = "humantime_secs")]
    pub retry_base: Duration,
    #[serde(with = "humantime_secs")]
    pub processing_poll: Duration,
    #[serde(with = "humantime_secs")]
    pub engagement_every: Duration,
    #[serde(with = "humantime_secs")]
    pub engagement_poll: Duration,
    #[serde(with = "humantime_secs")]
    pub sandbox_processing: Duration,
    pub youtube_chunk_bytes: usize,
    /// TikTok post inits of one creator per `tiktok_window`.
    pub tiktok_inits_per_minute: u32,
    #[serde(with = "humantime_secs")]
    pub tiktok_window: Duration,
    /// Instagram API publishes of one account per `instagram_window`.
    pub instagram_daily_posts: u32,
    #[serde(with = "humantime_secs")]
    pub instagram_window: Duration,
    /// How long an account Instagram reports at its quota waits before the next look.
    #[serde(with = "humantime_secs")]
    pub instagram_quota_recheck: Duration,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct BudgetConfig {
    pub max_increase_per_change_percent: u32,
    pub max_increase_per_day_percent: u32,
    pub workspace_daily_cap_minor: i64,
}

/// Other NexusOne services this one calls (empty: not called).
#[derive(Debug, Clone, Deserialize)]
pub struct ServicesConfig {
    /// Posts that name a video (`video_id`) read it here.
    pub video: String,
    /// Posts that name an image of the content service (`image_id`) read its file here.
    pub content: String,
    /// Audiences made from a contact-book segment read its contacts here.
    pub messaging: String,
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProvidersConfig {
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
    pub attempts: u32,
}

impl Config {
    /// Checks what serde cannot, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        nexus_platform::crypto::Sealer::from_config(self.ads.sealing_keys.expose())
            .map_err(|e| anyhow::anyhow!("ads.sealing_keys: {e}"))?;
        for u in &self.oauth.redirect_allowlist {
            let parsed = reqwest::Url::parse(u).map_err(|e| anyhow::anyhow!("oauth.redirect_allowlist: {u:?}: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                anyhow::bail!("oauth.redirect_allowlist: {u:?} is not an http(s) address");
            }
        }
        if !self.meta.app_id.is_empty() && self.meta.app_secret.is_empty() {
            anyhow::bail!("meta.app_secret: needed with meta.app_id");
        }
        if !self.tiktok.client_key.is_empty() && self.tiktok.client_secret.is_empty() {
            anyhow::bail!("tiktok.client_secret: needed with tiktok.client_key");
        }
        if !self.tiktok.app_id.is_empty() && self.tiktok.secret.is_empty() {
            anyhow::bail!("tiktok.secret: needed with tiktok.app_id");
        }
        if !self.google.client_id.is_empty() && self.google.client_secret.is_empty() {
            anyhow::bail!("google.client_secret: needed with google.client_id");
        }
        if !(1..=10).contains(&self.providers.attempts) {
            anyhow::bail!("providers.attempts: {} is not between 1 and 10", self.providers.attempts);
        }
        if self.budget.workspace_daily_cap_minor < 0 {
            anyhow::bail!("budget.workspace_daily_cap_minor: must not be negative");
        }
        let i = &self.insights;
        if !(1..=90).contains(&i.backfill_days) || !(1..=90).contains(&i.recent_days) {
            anyhow::bail!("insights.backfill_days and insights.recent_days: between 1 and 90");
        }
        if i.sweep_interval < Duration::from_secs(1) || i.lease < Duration::from_secs(10) {
            anyhow::bail!("insights.sweep_interval (at least 1s) and insights.lease (at least 10s)");
        }
        let a = &self.audiences;
        if a.refresh_every < Duration::from_secs(60) || a.sweep_interval < Duration::from_secs(1) {
            anyhow::bail!("audiences.refresh_every (at least 1m) and audiences.sweep_interval (at least 1s)");
        }
        if a.lease < Duration::from_secs(60) {
            anyhow::bail!("audiences.lease: must be at least 1m");
        }
        if self.expiry.interval < Duration::from_secs(1) {
            anyhow::bail!("expiry.interval: must be at least 1s");
        }
        let p = &self.posts;
        if !(1..=16).contains(&p.rounds) {
            anyhow::bail!("posts.rounds: 1 to 16 rounds side by side");
        }
        if p.tiktok_inits_per_minute == 0 || p.instagram_daily_posts == 0 {
            anyhow::bail!("posts.tiktok_inits_per_minute and posts.instagram_daily_posts: at least 1");
        }
        if p.tiktok_window < Duration::from_secs(1)
            || p.instagram_window < Duration::from_secs(1)
            || p.instagram_quota_recheck < Duration::from_secs(1)
        {
            anyhow::bail!("posts.tiktok_window, instagram_window and instagram_quota_recheck: at least 1s");
        }
        let m = &self.media;
        nexus_platform::links::LinkKeys::parse(m.signing_keys.expose())
            .map_err(|e| anyhow::anyhow!("media.signing_keys: {e}"))?;
        if m.max_image_bytes == 0 || m.max_video_bytes == 0 {
            anyhow::bail!("media.max_image_bytes and media.max_video_bytes: must be more than 0");
        }
        if m.link_ttl < Duration::from_secs(60) {
            anyhow::bail!("media.link_ttl: must be at least 1m");
        }
        let base =
            reqwest::Url::parse(&m.base_url).map_err(|e| anyhow::anyhow!("media.base_url: {:?}: {e}", m.base_url))?;
        if !matches!(base.scheme(), "http" | "https") {
            anyhow::bail!("media.base_url: {:?} is not an http(s) address", m.base_url);
        }
        Ok(())
    }

    /// Whether the offline `local` provider may be connected.
    pub fn sandbox_enabled(&self) -> bool {
        self.sandbox.enabled.unwrap_or(self.common.environment == Environment::Development)
    }
}
