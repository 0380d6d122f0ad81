//! Video service configuration (see `config.default.toml`).

use std::time::Duration;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub services: ServicesConfig,
    pub videos: VideosConfig,
    pub pipeline: PipelineConfig,
    pub storage: StorageConfig,
    pub voice: ProviderChoice,
    pub render: ProviderChoice,
    pub elevenlabs: ElevenLabsSettings,
    pub did: DidSettings,
    pub downloads: DownloadsConfig,
}

/// The development key of download links, refused in production.
pub const DEV_LINK_KEY: &str = "dev:bmV4dXMtZGV2ZWxvcG1lbnQtdmlkZW8tbGlua3MtMzI=";

#[derive(Debug, Clone, Deserialize)]
pub struct DownloadsConfig {
    pub base_url: String,
    #[serde(with = "humantime_secs")]
    pub ttl: Duration,
    pub avatar_base_url: String,
    pub thumbnail_base_url: String,
    #[serde(with = "humantime_secs")]
    pub avatar_link_ttl: Duration,
    pub signing_keys: Secret,
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
        if self.voice.provider == "auto" && self.elevenlabs.api_key.is_empty() {
            found.push(DevelopmentOnly::new(
                "voice.provider",
                "auto with no elevenlabs.api_key falls back to local speech; set the key or voice.provider = \"local\"",
            ));
        }
        if self.render.provider == "auto" && self.did.api_key.is_empty() {
            found.push(DevelopmentOnly::new(
                "render.provider",
                "auto with no did.api_key falls back to the local renderer; set the key or render.provider = \"local\"",
            ));
        }
        if nexus_platform::crypto::uses_key(self.downloads.signing_keys.expose(), DEV_LINK_KEY) {
            found.push(DevelopmentOnly::new(
                "downloads.signing_keys",
                "the built-in development key signs download links; set your own keys",
            ));
        }
        found
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServicesConfig {
    pub subscriptions: String,
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
    /// Writes scripts for requests with a topic.
    pub content: String,
    /// Longer than `timeout`: a model writes the script.
    #[serde(with = "humantime_secs")]
    pub content_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VideosConfig {
    pub max_script_chars: usize,
    pub max_title_chars: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PipelineConfig {
    pub workers: usize,
    #[serde(with = "humantime_secs")]
    pub idle_poll: Duration,
    #[serde(with = "humantime_secs")]
    pub lease: Duration,
    #[serde(with = "humantime_secs")]
    pub talk_poll: Duration,
    pub max_attempts: i32,
    #[serde(with = "humantime_secs")]
    pub backoff: Duration,
    #[serde(with = "humantime_secs")]
    pub give_up_after: Duration,
    pub webhook_base: String,
}

/// `[storage]`: the platform's object storage (`max_video_bytes` is its `max_bytes`).
pub use nexus_platform::storage::{S3Config, StorageConfig};

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderChoice {
    pub provider: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ElevenLabsSettings {
    pub api_key: Secret,
    pub base_url: String,
    pub model_id: String,
    pub output_format: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DidSettings {
    pub api_key: Secret,
    pub base_url: String,
}

impl Config {
    /// `voice.provider` resolved: `elevenlabs` or `local`.
    pub fn voice_provider(&self) -> anyhow::Result<&'static str> {
        match self.voice.provider.as_str() {
            "auto" if !self.elevenlabs.api_key.is_empty() => Ok("elevenlabs"),
            "auto" | "local" => Ok("local"),
            "elevenlabs" => {
                anyhow::ensure!(
                    !self.elevenlabs.api_key.is_empty(),
                    "elevenlabs.api_key: required when voice.provider = elevenlabs"
                );
                Ok("elevenlabs")
            }
            other => anyhow::bail!("voice.provider: {other:?} is not one of auto, local, elevenlabs"),
        }
    }

    /// `render.provider` resolved: `d-id` or `local`.
    pub fn render_provider(&self) -> anyhow::Result<&'static str> {
        match self.render.provider.as_str() {
            "auto" if !self.did.api_key.is_empty() => Ok("d-id"),
            "auto" | "local" => Ok("local"),
            "d-id" => {
                anyhow::ensure!(!self.did.api_key.is_empty(), "did.api_key: required when render.provider = d-id");
                Ok("d-id")
            }
            other => anyhow::bail!("render.provider: {other:?} is not one of auto, local, d-id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Config {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        nexus_platform::config::load_from_env("video", DEFAULTS, None, env).expect("config loads")
    }

    #[test]
    fn production_refuses_local_fallbacks_and_the_development_link_key() {
        let cfg = load(&[("NEXUS_ENVIRONMENT", "production")]);
        let keys: Vec<String> = cfg.development_only().iter().map(|d| d.key.to_string()).collect();
        for key in ["voice.provider", "render.provider", "downloads.signing_keys"] {
            assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
        }
        // Chosen by name, local providers are allowed; real keys and own link keys pass.
        let cfg = load(&[
            ("NEXUS_ENVIRONMENT", "production"),
            ("NEXUS_VOICE__PROVIDER", "local"),
            ("NEXUS_RENDER__PROVIDER", "local"),
            ("NEXUS_DOWNLOADS__SIGNING_KEYS", "k1:c29tZWJvZHktZWxzZXMta2V5LWZvci12aWRlby1saW5rcw=="),
        ]);
        let keys: Vec<String> = cfg.development_only().iter().map(|d| d.key.to_string()).collect();
        assert!(
            !keys.iter().any(|k| k.starts_with("voice.") || k.starts_with("render.") || k.starts_with("downloads.")),
            "{keys:?}"
        );
    }

    #[test]
    fn providers_resolve_and_bad_names_are_refused() {
        let cfg = load(&[("NEXUS_ELEVENLABS__API_KEY", "sk"), ("NEXUS_DID__API_KEY", "u:p")]);
        assert_eq!((cfg.voice_provider().unwrap(), cfg.render_provider().unwrap()), ("elevenlabs", "d-id"));
        assert!(load(&[("NEXUS_RENDER__PROVIDER", "heygen")]).render_provider().is_err());
        assert!(load(&[("NEXUS_VOICE__PROVIDER", "elevenlabs")]).voice_provider().is_err(), "no key");
        assert!(crate::service(load(&[("NEXUS_DOWNLOADS__SIGNING_KEYS", "short:c2hvcnQ=")])).is_err());
    }
}
