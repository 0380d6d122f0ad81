//! Subscriptions configuration (see `config.default.toml`).

use std::time::Duration;

use std::collections::BTreeMap;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
use serde::{Deserialize, Deserializer};

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

/// Keeps no sealed secrets: `reseal` has nothing to do.
impl nexus_platform::crypto::SealingConfig for Config {}

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        if !self.stripe.enabled() {
            found.push(DevelopmentOnly::new(
                "stripe.api_key",
                "empty means local billing (plans granted with no payment); set NEXUS_STRIPE__API_KEY_FILE",
            ));
        } else if self.stripe.webhook_secrets.is_empty() {
            found.push(DevelopmentOnly::new(
                "stripe.webhook_secrets",
                "Stripe is configured but no webhook secret is, so no webhook could be verified",
            ));
        }
        found
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
    /// Endpoint secrets (`whsec_…`); list both while rotating. A list, or one string with the
    /// secrets separated by commas or spaces (how a `_FILE` secret arrives).
    #[serde(deserialize_with = "secret_list")]
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

fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<String>),
        One(String),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => s.split([',', ' ', '\n', '\t']).map(str::to_owned).collect(),
    };
    Ok(items.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).map(Secret::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Config {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        nexus_platform::config::load_from_env("subscriptions", DEFAULTS, None, env).unwrap()
    }

    #[test]
    fn webhook_secrets_come_as_a_list_or_a_separated_string() {
        assert!(load(&[]).stripe.webhook_secrets.is_empty());
        assert!(!load(&[]).stripe.enabled());
        let list = load(&[("NEXUS_STRIPE__WEBHOOK_SECRETS", "[\"whsec_a\", \"whsec_b\"]")]);
        assert_eq!(list.stripe.webhook_secrets, vec![Secret::new("whsec_a"), Secret::new("whsec_b")]);
        let dir = std::env::temp_dir().join(format!("nexus-whsec-{}", std::process::id()));
        std::fs::write(&dir, "whsec_old, whsec_new\n").unwrap();
        let file = load(&[("NEXUS_STRIPE__WEBHOOK_SECRETS_FILE", dir.to_str().unwrap())]);
        std::fs::remove_file(&dir).ok();
        assert_eq!(file.stripe.webhook_secrets, vec![Secret::new("whsec_old"), Secret::new("whsec_new")]);
        let keyed = load(&[("NEXUS_STRIPE__API_KEY", "sk_test_x"), ("NEXUS_STRIPE__PRICES__PRO", "price_1")]);
        assert!(keyed.stripe.enabled());
        assert_eq!(keyed.stripe.prices.get("pro").map(String::as_str), Some("price_1"));
        assert!(!format!("{keyed:?}").contains("sk_test_x"), "the key never shows in debug output");
    }
}
