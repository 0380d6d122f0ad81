//! Subscriptions configuration (see `config.default.toml`).

use std::time::Duration;

use nexus_platform::config::{CommonConfig, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub billing: BillingConfig,
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
