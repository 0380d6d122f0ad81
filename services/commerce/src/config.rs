//! Commerce service configuration (see `config.default.toml`).

use std::time::Duration;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// The sealing key in `config.default.toml`: public, so only for development.
pub const DEV_SEALING_KEY: &str = "1:bmV4dXMtY29tbWVyY2UtZGV2ZWxvcG1lbnQta2V5ISE=";
/// The Shopify webhook secret in `config.default.toml`: public, so only for development.
pub const DEV_SHOPIFY_SECRET: &str = "nexus-dev-shopify-client-secret";

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub commerce: CommerceConfig,
    pub rates: RatesConfig,
    /// `[sample]`, not `[local]`: the scripts export `NEXUS_LOCAL` (their state folder), which the
    /// `NEXUS_` environment layer would read as a `local` section.
    pub sample: LocalConfig,
    pub shopify: ShopifyConfig,
    pub shopify_webhooks: ShopifyWebhooksConfig,
    pub cj: CjSettings,
    pub aliexpress: AliExpressSettings,
    pub providers: ProvidersConfig,
    pub monitoring: MonitoringConfig,
    pub sales: SalesConfig,
    pub services: ServicesConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServicesConfig {
    /// The content service, which translates product texts (called with the caller's token);
    /// empty: products cannot be localized.
    pub content: String,
    /// A model translates: longer than a plain call.
    #[serde(with = "humantime_secs")]
    pub content_timeout: Duration,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

impl nexus_platform::crypto::SealingConfig for Config {
    fn sealing_keys(&self) -> Option<&nexus_platform::Secret> {
        Some(&self.commerce.sealing_keys)
    }
}

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        if nexus_platform::crypto::uses_key(self.commerce.sealing_keys.expose(), DEV_SEALING_KEY) {
            found.push(DevelopmentOnly::new(
                "commerce.sealing_keys",
                "the built-in development key is public; set NEXUS_COMMERCE__SEALING_KEYS_FILE",
            ));
        }
        if self.shopify.secrets().any(|s| s == DEV_SHOPIFY_SECRET) {
            found.push(DevelopmentOnly::new(
                "shopify.webhook_secrets",
                "the built-in development secret is public; set NEXUS_SHOPIFY__WEBHOOK_SECRETS_FILE",
            ));
        }
        found
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommerceConfig {
    /// Keys sealing store and supplier credentials at rest.
    pub sealing_keys: Secret,
    pub reporting_currency: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RatesConfig {
    pub provider: String,
    pub ecb_url: String,
    pub max_age_days: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LocalConfig {
    /// Unset: on in development only.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShopifyConfig {
    pub api_version: String,
    pub webhook_secrets: Secret,
    pub base_url: String,
}

impl ShopifyConfig {
    /// The configured client secrets, current first.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.webhook_secrets.expose().split(',').map(str::trim).filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShopifyWebhooksConfig {
    pub callback_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CjSettings {
    pub base_url: String,
    #[serde(with = "humantime_secs")]
    pub refresh_before: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AliExpressSettings {
    pub base_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProvidersConfig {
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
    pub attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MonitoringConfig {
    pub enabled: bool,
    #[serde(with = "humantime_secs")]
    pub interval: Duration,
    /// Products read, checked and written per batch.
    pub page_size: u32,
    /// Supplier calls in flight at once during a sweep.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SalesConfig {
    /// Percent of revenue the platform keeps.
    pub platform_fee_percent: String,
    /// Card processing: percent of what the buyer paid, plus a fixed amount in the order's
    /// currency.
    pub payment_fee_percent: String,
    pub payment_fee_fixed: String,
}

impl SalesConfig {
    pub fn fees(&self) -> anyhow::Result<crate::domain::sales::Fees> {
        let d = |v: &str, key: &str| -> anyhow::Result<rust_decimal::Decimal> {
            let d: rust_decimal::Decimal =
                v.trim().parse().map_err(|_| anyhow::anyhow!("sales.{key}: {v:?} is not a decimal"))?;
            if d.is_sign_negative() || d > rust_decimal::Decimal::ONE_HUNDRED {
                anyhow::bail!("sales.{key}: must be between 0 and 100");
            }
            Ok(d)
        };
        Ok(crate::domain::sales::Fees {
            platform_percent: d(&self.platform_fee_percent, "platform_fee_percent")?,
            payment_percent: d(&self.payment_fee_percent, "payment_fee_percent")?,
            payment_fixed: d(&self.payment_fee_fixed, "payment_fee_fixed")?,
        })
    }
}

impl Config {
    /// Checks what serde cannot, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        nexus_platform::crypto::Sealer::from_config(self.commerce.sealing_keys.expose())
            .map_err(|e| anyhow::anyhow!("commerce.sealing_keys: {e}"))?;
        self.commerce.reporting_currency.parse::<nexus_kernel::Currency>().map_err(|_| {
            anyhow::anyhow!(
                "commerce.reporting_currency: {:?} is not a supported currency",
                self.commerce.reporting_currency
            )
        })?;
        if !matches!(self.rates.provider.as_str(), "local" | "ecb") {
            anyhow::bail!("rates.provider: {:?} is not one of local, ecb", self.rates.provider);
        }
        if self.rates.max_age_days < 1 {
            anyhow::bail!("rates.max_age_days: must be at least 1");
        }
        if self.shopify.secrets().next().is_none() {
            anyhow::bail!("shopify.webhook_secrets: at least one secret is needed to verify store webhooks");
        }
        if !(1..=10).contains(&self.providers.attempts) {
            anyhow::bail!("providers.attempts: {} is not between 1 and 10", self.providers.attempts);
        }
        self.sales.fees()?;
        if self.monitoring.interval < Duration::from_secs(1) {
            anyhow::bail!("monitoring.interval: must be at least 1s");
        }
        if !(1..=1000).contains(&self.monitoring.page_size) {
            anyhow::bail!("monitoring.page_size: {} is not between 1 and 1000", self.monitoring.page_size);
        }
        if !(1..=64).contains(&self.monitoring.concurrency) {
            anyhow::bail!("monitoring.concurrency: {} is not between 1 and 64", self.monitoring.concurrency);
        }
        Ok(())
    }

    /// Whether the sample supplier catalogue and local store may be connected.
    pub fn local_enabled(&self) -> bool {
        self.sample.enabled.unwrap_or(self.common.environment == Environment::Development)
    }
}
