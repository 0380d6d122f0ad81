//! Auth configuration (see `config.default.toml`).

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_platform::config::{CommonConfig, Secret, humantime_secs};
use nexus_providers::oidc::OidcConfig;
use serde::{Deserialize, Serialize};

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub auth: AuthSettings,
    pub mail: MailConfig,
    pub oauth: OAuthConfig,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuthSettings {
    #[serde(with = "humantime_secs")]
    pub access_ttl: Duration,
    #[serde(with = "humantime_secs")]
    pub refresh_ttl: Duration,
    #[serde(with = "humantime_secs")]
    pub api_key_token_ttl: Duration,
    pub sealing_keys: Secret,
    pub public_url: String,
    pub lockout_threshold: i32,
    #[serde(with = "humantime_secs")]
    pub lockout_period: Duration,
    pub ip_failure_limit: i32,
    #[serde(with = "humantime_secs")]
    pub ip_failure_window: Duration,
    pub mfa_max_failures: i32,
    #[serde(with = "humantime_secs")]
    pub mfa_lock_period: Duration,
    pub reset_per_hour: i32,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailMode {
    Local,
    Smtp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MailConfig {
    pub mode: MailMode,
    /// e.g. `smtps://user:pass@smtp.example.com:465`.
    pub smtp_url: Secret,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthConfig {
    pub redirect_allowlist: Vec<String>,
    /// `google`, `facebook`: issuer, client id and secret of each enabled provider.
    #[serde(default)]
    pub providers: BTreeMap<String, OidcConfig>,
}
