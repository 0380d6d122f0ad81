//! Messaging configuration (see `config.default.toml`).

use std::time::Duration;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub messaging: MessagingConfig,
    pub leads: LeadsConfig,
    pub webhooks: WebhooksConfig,
    pub imports: ImportsConfig,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

/// The sealing key in `config.default.toml`: public, so only for development.
pub const DEV_SEALING_KEY: &str = "1:bmV4dXMtbWVzc2FnaW5nLWRldmVsb3BtZW50LWtleSE=";

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        if nexus_platform::crypto::uses_key(self.messaging.sealing_keys.expose(), DEV_SEALING_KEY) {
            found.push(DevelopmentOnly::new(
                "messaging.sealing_keys",
                "the built-in development key is public; set NEXUS_MESSAGING__SEALING_KEYS_FILE",
            ));
        }
        found
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessagingConfig {
    /// Keys sealing secrets at rest (webhook signing secrets).
    pub sealing_keys: Secret,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LeadsConfig {
    /// Whether content's captured leads flow into the contact book.
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImportsConfig {
    /// An import still `running` after this long has lost its process and is marked failed.
    /// Longer than the gateway's limit on an import request, with a margin.
    #[serde(with = "humantime_secs")]
    pub stalled_after: Duration,
    /// How often to look for such imports.
    #[serde(with = "humantime_secs")]
    pub sweep_every: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhooksConfig {
    /// Run the delivery worker in this process.
    pub deliver: bool,
    /// Turn content's page events into webhook messages.
    pub fanout: bool,
    /// Deliveries on the wire at once, and most claimed by one statement.
    pub in_flight: usize,
    pub batch: i64,
    /// Plain `http://` endpoints; off by default outside development (allowlisted targets may
    /// always use http).
    pub allow_http: Option<bool>,
}

impl Config {
    /// Checks what serde cannot, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        nexus_platform::crypto::Sealer::from_config(self.messaging.sealing_keys.expose())
            .map_err(|e| anyhow::anyhow!("messaging.sealing_keys: {e}"))?;
        if !(1..=4_096).contains(&self.webhooks.in_flight) {
            anyhow::bail!("webhooks.in_flight: {} is not between 1 and 4096", self.webhooks.in_flight);
        }
        if self.imports.stalled_after < Duration::from_secs(60) {
            anyhow::bail!("imports.stalled_after: must be at least 1m (longer than any import runs)");
        }
        if self.imports.sweep_every.is_zero() {
            anyhow::bail!("imports.sweep_every: must be more than 0");
        }
        if !(1..=1_000).contains(&self.webhooks.batch) {
            anyhow::bail!("webhooks.batch: {} is not between 1 and 1000", self.webhooks.batch);
        }
        Ok(())
    }
}
