//! Auth configuration (see `config.default.toml`).

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
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

/// The sealing key in `config.default.toml`: public, so only for development.
pub const DEV_SEALING_KEY: &str = "1:bmV4dXMtbG9jYWwtZGV2ZWxvcG1lbnQta2V5LTMyYis=";

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        if nexus_platform::crypto::uses_key(self.auth.sealing_keys.expose(), DEV_SEALING_KEY) {
            found.push(DevelopmentOnly::new(
                "auth.sealing_keys",
                "the built-in development key is public; set NEXUS_AUTH__SEALING_KEYS_FILE",
            ));
        }
        if self.mail.mode == MailMode::Local {
            found.push(DevelopmentOnly::new(
                "mail.mode",
                "local mail is never delivered; set mail.mode = smtp and mail.smtp_url",
            ));
        }
        found
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
