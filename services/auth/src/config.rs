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

impl Config {
    /// Each `auth.service_credentials` entry must be a SHA-256 in hex; the error names the key.
    pub fn check_service_credentials(&self) -> Result<(), String> {
        for (name, hash) in &self.auth.service_credentials {
            let hash = hash.trim();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "auth.service_credentials.{name}: must be the SHA-256 (64 hex characters) of the service's identity.service_secret"
                ));
            }
        }
        Ok(())
    }

    /// The keys of `auth.service_credentials` that accept a built-in development credential
    /// (`DEV_SERVICE_SECRET_PREFIX` + name), e.g. `["auth.service_credentials.content"]`. A
    /// production deployment must have none.
    pub fn dev_service_credentials(&self) -> Vec<String> {
        use sha2::Digest;
        self.auth
            .service_credentials
            .iter()
            .filter(|(name, hash)| {
                let dev = sha2::Sha256::digest(nexus_platform::identity::dev_service_secret(name).as_bytes());
                hash.trim().eq_ignore_ascii_case(&hex::encode(dev))
            })
            .map(|(name, _)| format!("auth.service_credentials.{name}"))
            .collect()
    }
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

/// The sealing key in `config.default.toml`: public, so only for development.
pub const DEV_SEALING_KEY: &str = "1:bmV4dXMtbG9jYWwtZGV2ZWxvcG1lbnQta2V5LTMyYis=";

impl nexus_platform::crypto::SealingConfig for Config {
    fn sealing_keys(&self) -> Option<&nexus_platform::Secret> {
        Some(&self.auth.sealing_keys)
    }
}

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        for key in self.dev_service_credentials() {
            found.push(DevelopmentOnly::new(
                key,
                "accepts that service's built-in development credential; list the SHA-256 of its real one",
            ));
        }
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
    /// Absolute lifetime of a session family (a sign-in): refreshing stops working after it.
    #[serde(with = "humantime_secs")]
    pub refresh_family_lifetime: Duration,
    /// A spent refresh token presented again within this time of its rotation gets the same
    /// successor back (a lost response); later, it revokes the family.
    #[serde(with = "humantime_secs")]
    pub refresh_reuse_grace: Duration,
    /// How recent a password or TOTP sign-in must be for sensitive changes (linking a provider).
    #[serde(with = "humantime_secs")]
    pub reauthentication_window: Duration,
    /// Invitations one workspace may send per day, and one inviter per hour.
    pub invitations_per_workspace_per_day: i32,
    pub invitations_per_inviter_per_hour: i32,
    /// Lifetime of service tokens (`ExchangeServiceCredential`).
    #[serde(with = "humantime_secs")]
    pub service_token_ttl: Duration,
    /// Accepted service credentials: service name -> SHA-256 (hex) of its `identity.service_secret`.
    #[serde(default)]
    pub service_credentials: BTreeMap<String, String>,
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
    /// Bodies of mail older than this (sent, or kept in local mode) are blanked: they hold
    /// single-use links. Subject, recipient and times stay.
    #[serde(with = "humantime_secs")]
    pub body_retention: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthConfig {
    pub redirect_allowlist: Vec<String>,
    /// `google`, `facebook`: issuer, client id and secret of each enabled provider.
    #[serde(default)]
    pub providers: BTreeMap<String, OidcConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Config {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        nexus_platform::config::load_from_env("auth", DEFAULTS, None, env).expect("config loads")
    }

    #[test]
    fn defaults_accept_the_development_credentials_and_say_so() {
        let cfg = load(&[]);
        cfg.check_service_credentials().unwrap();
        assert_eq!(cfg.dev_service_credentials().len(), 9);
        assert!(cfg.dev_service_credentials().contains(&"auth.service_credentials.messaging".to_owned()));
        assert_eq!(cfg.auth.refresh_family_lifetime, Duration::from_secs(90 * 86_400));
        assert_eq!(cfg.auth.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(cfg.mail.body_retention, Duration::from_secs(7 * 86_400));
        assert_eq!((cfg.auth.invitations_per_workspace_per_day, cfg.auth.invitations_per_inviter_per_hour), (50, 20));
    }

    #[test]
    fn a_malformed_credential_is_named() {
        let cfg = load(&[("NEXUS_AUTH__SERVICE_CREDENTIALS__CONTENT", "the-secret-itself")]);
        let err = cfg.check_service_credentials().unwrap_err();
        assert!(err.starts_with("auth.service_credentials.content:"), "{err}");
        let real = "a".repeat(64);
        let cfg = load(&[("NEXUS_AUTH__SERVICE_CREDENTIALS__CONTENT", real.as_str())]);
        cfg.check_service_credentials().unwrap();
        assert!(!cfg.dev_service_credentials().contains(&"auth.service_credentials.content".to_owned()));
    }
}
