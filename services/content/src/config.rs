//! Content service configuration (see `config.default.toml`).

use std::time::Duration;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub services: ServicesConfig,
    pub llm: LlmConfig,
    pub generation: GenerationConfig,
    pub pages: PagesConfig,
    pub agents: AgentsConfig,
    pub images: ImagesConfig,
    pub replicate: ReplicateSettings,
    pub runware: RunwareSettings,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

/// Keeps no sealed secrets: `reseal` has nothing to do.
impl nexus_platform::crypto::SealingConfig for Config {}

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        // Local providers are fine in production when chosen by name, never by a missing key.
        if self.llm.provider == "auto" && self.llm.api_key.is_empty() {
            found.push(DevelopmentOnly::new(
                "llm.provider",
                "auto with no llm.api_key falls back to the local generator; set the key or llm.provider = \"local\"",
            ));
        }
        match self.images.resolved_provider(&self.replicate, &self.runware) {
            "local" if self.images.provider == "auto" => found.push(DevelopmentOnly::new(
                "images.provider",
                "auto with no provider key falls back to local placeholders; set a key or images.provider = \"local\"",
            )),
            "replicate" if self.replicate.webhook_secret.is_empty() => found.push(DevelopmentOnly::new(
                "replicate.webhook_secret",
                "Replicate is configured but its webhook secret is not, so no completion could be verified",
            )),
            "runware" if !self.images.webhook_base.is_empty() && self.runware.webhook_token.is_empty() => {
                found.push(DevelopmentOnly::new(
                    "runware.webhook_token",
                    "Runware webhooks are configured but their token is not, so none could be verified",
                ));
            }
            _ => {}
        }
        found
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServicesConfig {
    pub subscriptions: String,
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LlmConfig {
    pub provider: String,
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
    pub max_retries: u32,
}

impl LlmConfig {
    /// Whether generations go to the model (else the local generator).
    pub fn use_model(&self) -> anyhow::Result<bool> {
        match self.provider.as_str() {
            "auto" => Ok(!self.api_key.is_empty()),
            "openai" => Ok(true),
            "local" => Ok(false),
            other => anyhow::bail!("llm.provider: {other:?} is not one of auto, openai, local"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct GenerationConfig {
    pub default_max_tokens: u32,
    pub max_max_tokens: u32,
    pub min_credits: i64,
    #[serde(with = "humantime_secs")]
    pub reservation_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PagesConfig {
    pub lead_rate_limit: i64,
    #[serde(with = "humantime_secs")]
    pub lead_rate_window: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgentsConfig {
    pub history_turns: u32,
    pub snippets: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImagesConfig {
    pub max_bytes: usize,
    pub provider: String,
    pub webhook_base: String,
    #[serde(with = "humantime_secs")]
    pub download_timeout: Duration,
    #[serde(with = "humantime_secs")]
    pub poll_after: Duration,
    #[serde(with = "humantime_secs")]
    pub give_up_after: Duration,
    #[serde(with = "humantime_secs")]
    pub sweep_interval: Duration,
}

impl ImagesConfig {
    /// `images.provider` with `auto` resolved: Replicate when its token is set, else Runware when
    /// its key is, else the local placeholder renderer.
    pub fn resolved_provider<'a>(&'a self, replicate: &ReplicateSettings, runware: &RunwareSettings) -> &'a str {
        match self.provider.as_str() {
            "auto" if !replicate.api_token.is_empty() => "replicate",
            "auto" if !runware.api_key.is_empty() => "runware",
            "auto" => "local",
            other => other,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReplicateSettings {
    pub api_token: Secret,
    pub base_url: String,
    pub model: String,
    pub webhook_secret: Secret,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunwareSettings {
    pub api_key: Secret,
    pub base_url: String,
    /// An AIR model id, e.g. `runware:101@1`.
    pub model: String,
    /// Secret put in the webhook URL's query (at least 32 characters).
    pub webhook_token: Secret,
}
