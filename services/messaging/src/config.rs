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
    pub whatsapp: WhatsAppConfig,
    pub services: ServicesConfig,
    pub broadcasts: BroadcastsConfig,
    /// Where inbound WhatsApp media is kept (the platform's object storage).
    pub storage: nexus_platform::storage::StorageConfig,
    pub media: MediaConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MediaConfig {
    /// Run the media job (copying inbound media into storage) in this process.
    pub download: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BroadcastsConfig {
    /// Run the broadcast sender in this process (every replica may: claims do not overlap).
    pub send: bool,
    /// Messages per second per number unless a broadcast says otherwise (Meta's default is 80).
    pub default_rate: i32,
    /// Recipients claimed at once, and sends on the wire at once.
    pub batch: i64,
    pub in_flight: usize,
    /// How long a claim lasts; a send still unfinished then is `unknown` and never resent.
    #[serde(with = "humantime_secs")]
    pub lease: Duration,
    /// The pause when there is nothing to send.
    #[serde(with = "humantime_secs")]
    pub idle: Duration,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

/// The sealing key in `config.default.toml`: public, so only for development.
pub const DEV_SEALING_KEY: &str = "1:bmV4dXMtbWVzc2FnaW5nLWRldmVsb3BtZW50LWtleSE=";

impl nexus_platform::crypto::SealingConfig for Config {
    fn sealing_keys(&self) -> Option<&nexus_platform::Secret> {
        Some(&self.messaging.sealing_keys)
    }
}

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
        if self.whatsapp.app_secret.expose() == DEV_WHATSAPP_APP_SECRET {
            found.push(DevelopmentOnly::new(
                "whatsapp.app_secret",
                "the built-in app secret is public; set NEXUS_WHATSAPP__APP_SECRET_FILE to the Meta app's secret",
            ));
        }
        if self.whatsapp.verify_token.expose() == DEV_WHATSAPP_VERIFY_TOKEN {
            found.push(DevelopmentOnly::new(
                "whatsapp.verify_token",
                "the built-in verify token is public; set NEXUS_WHATSAPP__VERIFY_TOKEN_FILE",
            ));
        }
        if self.whatsapp.local == Some(true) {
            found.push(DevelopmentOnly::new("whatsapp.local", "the local WhatsApp sandbox is for development"));
        }
        found
    }
}

/// Defaults in `config.default.toml`: public, so only for development.
pub const DEV_WHATSAPP_APP_SECRET: &str = "nexus-development-whatsapp-app-secret";
pub const DEV_WHATSAPP_VERIFY_TOKEN: &str = "nexus-development-verify-token";

#[derive(Debug, Clone, Deserialize)]
pub struct WhatsAppConfig {
    /// Graph API base with the pinned version.
    pub base_url: String,
    /// The Meta app's secret: the key of `X-Hub-Signature-256` on webhooks.
    pub app_secret: Secret,
    /// What Meta's webhook handshake must present.
    pub verify_token: Secret,
    /// Sandbox numbers (provider `local`) and the simulator; unset: in development only.
    pub local: Option<bool>,
    /// How often each connected number's quality rating and messaging tier are read from Meta.
    #[serde(with = "humantime_secs")]
    pub quality_refresh_every: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServicesConfig {
    /// Credits and plan limits are held here before any provider call.
    pub subscriptions: String,
    /// Content's agents answer what bots' rules do not; empty: no AI replies.
    #[serde(default)]
    pub content: String,
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
}

impl Config {
    /// Whether local sandbox numbers are allowed.
    pub fn whatsapp_local(&self) -> bool {
        self.whatsapp.local.unwrap_or(self.common.environment == Environment::Development)
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
        if !(1..=1_000).contains(&self.broadcasts.default_rate) {
            anyhow::bail!("broadcasts.default_rate: {} is not between 1 and 1000", self.broadcasts.default_rate);
        }
        if !(1..=1_000).contains(&self.broadcasts.batch) || !(1..=256).contains(&self.broadcasts.in_flight) {
            anyhow::bail!("broadcasts.batch / broadcasts.in_flight: between 1 and 1000 / 256");
        }
        if self.broadcasts.lease < Duration::from_secs(1) || self.broadcasts.idle.is_zero() {
            anyhow::bail!("broadcasts.lease: at least 1s; broadcasts.idle: more than 0");
        }
        if !self.whatsapp.base_url.starts_with("https://") && !self.whatsapp.base_url.starts_with("http://") {
            anyhow::bail!("whatsapp.base_url: must be an http(s) URL");
        }
        if self.whatsapp.app_secret.expose().len() < 16 {
            anyhow::bail!("whatsapp.app_secret: at least 16 characters");
        }
        if self.whatsapp.quality_refresh_every < Duration::from_millis(100) {
            anyhow::bail!("whatsapp.quality_refresh_every: at least 100ms");
        }
        if self.whatsapp.verify_token.expose().len() < 16 {
            anyhow::bail!("whatsapp.verify_token: at least 16 characters");
        }
        Ok(())
    }
}
