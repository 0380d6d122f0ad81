//! Subscriptions configuration (see `config.default.toml`).

use std::time::Duration;

use std::collections::BTreeMap;

use nexus_platform::config::{CommonConfig, Secret, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub billing: BillingConfig,
    pub stripe: StripeSettings,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BillingConfig {
    #[serde(with = "humantime_secs")]
    pub default_reservation_ttl: Duration,
    #[serde(with = "humantime_secs")]
    pub max_reservation_ttl: Duration,
    #[serde(with = "humantime_secs")]
    pub sweep_interval: Duration,
}

/// Stripe. With an empty `api_key` billing is local: checkouts complete in-app and no money moves.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeSettings {
    pub api_key: Secret,
    pub base_url: String,
    /// Endpoint secrets (`whsec_…`); list both while rotating.
    pub webhook_secrets: Vec<Secret>,
    /// Where Checkout sends the user back (`{CHECKOUT_SESSION_ID}` is filled in by Stripe).
    pub success_url: String,
    pub cancel_url: String,
    pub portal_return_url: String,
    /// Stripe price id per plan or credit-pack code (`pro`, `premium`, `credits_100`, …).
    #[serde(default)]
    pub prices: BTreeMap<String, String>,
}

impl StripeSettings {
    pub fn enabled(&self) -> bool {
        !self.api_key.is_empty()
    }
}
