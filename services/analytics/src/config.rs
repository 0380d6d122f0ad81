//! Analytics configuration (see `config.default.toml`).

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_platform::config::{CommonConfig, DevelopmentDefaults, DevelopmentOnly, Environment, Secret, humantime_secs};
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub analytics: AnalyticsConfig,
    pub ingest: IngestConfig,
    pub maintenance: MaintenanceConfig,
    pub rollups: RollupsConfig,
    pub fleet: FleetConfig,
    pub churn: ChurnConfig,
}

impl AsRef<CommonConfig> for Config {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

/// The sealing key in `config.default.toml`: public, so only for development.
pub const DEV_SEALING_KEY: &str = "1:bmV4dXMtYW5hbHl0aWNzLWRldmVsb3BtZW50LWtleSE=";

impl nexus_platform::crypto::SealingConfig for Config {
    fn sealing_keys(&self) -> Option<&nexus_platform::Secret> {
        Some(&self.analytics.sealing_keys)
    }
}

impl DevelopmentDefaults for Config {
    fn environment(&self) -> Environment {
        self.common.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.common.development_only();
        if nexus_platform::crypto::uses_key(self.analytics.sealing_keys.expose(), DEV_SEALING_KEY) {
            found.push(DevelopmentOnly::new(
                "analytics.sealing_keys",
                "the built-in development key is public; set NEXUS_ANALYTICS__SEALING_KEYS_FILE",
            ));
        }
        found
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AnalyticsConfig {
    pub sealing_keys: Secret,
    pub default_retention_days: u32,
    pub max_batch: usize,
    pub max_properties_bytes: usize,
    #[serde(with = "humantime_secs")]
    pub max_clock_skew: Duration,
    #[serde(with = "humantime_secs")]
    pub write_key_cache_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestConfig {
    pub enabled: bool,
    /// Concurrent pullers on the durable consumer.
    pub workers: usize,
    /// Messages (each one request's events) and bytes fetched at most per transaction.
    pub fetch_messages: usize,
    pub fetch_bytes: usize,
    /// Rows per INSERT statement.
    pub batch_size: usize,
    #[serde(with = "humantime_secs")]
    pub fetch_wait: Duration,
    pub max_ack_pending: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MaintenanceConfig {
    #[serde(with = "humantime_secs")]
    pub interval: Duration,
    pub months_ahead: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RollupsConfig {
    /// How often closed buckets' partial rows are folded into one.
    #[serde(with = "humantime_secs")]
    pub compact_interval: Duration,
    /// Keys folded per transaction.
    pub compact_batch: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FleetConfig {
    #[serde(with = "humantime_secs")]
    pub scrape_interval: Duration,
    #[serde(with = "humantime_secs")]
    pub scrape_timeout: Duration,
    #[serde(default)]
    pub operator_workspaces: Vec<String>,
    /// Service name -> admin base URL.
    pub services: BTreeMap<String, String>,
}

/// Churn risk (see `domain/churn.rs` and docs/decisions.md).
#[derive(Debug, Clone, Deserialize)]
pub struct ChurnConfig {
    pub enabled: bool,
    /// How often due workspaces are looked for.
    #[serde(with = "humantime_secs")]
    pub check_interval: Duration,
    /// How often each population is scored.
    #[serde(with = "humantime_secs")]
    pub score_interval: Duration,
    /// A model older than this is trained again before scoring.
    #[serde(with = "humantime_secs")]
    pub retrain_interval: Duration,
    /// A retrain on request is refused until this long after the last training.
    #[serde(with = "humantime_secs")]
    pub retrain_min_interval: Duration,
    /// How long a claimed workspace stays claimed if its replica dies mid-run.
    #[serde(with = "humantime_secs")]
    pub lease: Duration,
    /// Features look at this many days of activity; a subject is in the population when it was
    /// active in them.
    pub observation_days: u32,
    /// A subject active in the observation window and silent for this many days after it churned.
    pub outcome_days: u32,
    pub min_subjects: usize,
    pub min_per_class: usize,
    pub holdout_percent: u8,
    pub l2: f64,
    pub learning_rate: f64,
    pub iterations: usize,
    /// A score at or above this is high risk (`churn_risk.high` once per crossing).
    pub high_threshold: f64,
    pub top_factors: usize,
    /// Event names that mean a payment failed.
    pub failed_payment_events: Vec<String>,
    /// Event-name prefixes that are support signals (a ticket, a hand-off to a person).
    pub support_event_prefixes: Vec<String>,
}

impl ChurnConfig {
    pub fn train_config(&self) -> crate::domain::churn::TrainConfig {
        crate::domain::churn::TrainConfig {
            l2: self.l2,
            learning_rate: self.learning_rate,
            iterations: self.iterations,
            min_subjects: self.min_subjects,
            min_per_class: self.min_per_class,
            holdout_percent: self.holdout_percent,
        }
    }
}

impl Config {
    /// Checks what serde cannot, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let a = &self.analytics;
        anyhow::ensure!(
            (1..=3650).contains(&a.default_retention_days),
            "analytics.default_retention_days: must be 1..=3650"
        );
        anyhow::ensure!((1..=10_000).contains(&a.max_batch), "analytics.max_batch: must be 1..=10000");
        anyhow::ensure!(a.max_properties_bytes >= 256, "analytics.max_properties_bytes: must be at least 256");
        anyhow::ensure!((1..=10_000).contains(&self.ingest.batch_size), "ingest.batch_size: must be 1..=10000");
        anyhow::ensure!((1..=10_000).contains(&self.ingest.fetch_messages), "ingest.fetch_messages: must be 1..=10000");
        anyhow::ensure!(self.ingest.fetch_bytes >= 1 << 20, "ingest.fetch_bytes: must be at least 1 MiB");
        anyhow::ensure!(
            self.ingest.max_ack_pending >= self.ingest.fetch_messages as i64,
            "ingest.max_ack_pending: must be at least ingest.fetch_messages"
        );
        anyhow::ensure!(
            (1..=100_000).contains(&self.rollups.compact_batch),
            "rollups.compact_batch: must be 1..=100000"
        );
        anyhow::ensure!(!self.rollups.compact_interval.is_zero(), "rollups.compact_interval: must be positive");
        anyhow::ensure!(self.maintenance.months_ahead <= 24, "maintenance.months_ahead: at most 24");
        anyhow::ensure!(!self.fleet.scrape_interval.is_zero(), "fleet.scrape_interval: must be positive");
        let c = &self.churn;
        anyhow::ensure!((1..=365).contains(&c.observation_days), "churn.observation_days: must be 1..=365");
        anyhow::ensure!((1..=365).contains(&c.outcome_days), "churn.outcome_days: must be 1..=365");
        anyhow::ensure!((1..=90).contains(&c.holdout_percent), "churn.holdout_percent: must be 1..=90");
        anyhow::ensure!(c.min_subjects >= 10, "churn.min_subjects: at least 10");
        anyhow::ensure!(c.min_per_class >= 2, "churn.min_per_class: at least 2");
        anyhow::ensure!(c.l2 >= 0.0 && c.l2.is_finite(), "churn.l2: must be a non-negative number");
        anyhow::ensure!(c.learning_rate > 0.0 && c.learning_rate <= 10.0, "churn.learning_rate: must be in (0, 10]");
        anyhow::ensure!((1..=100_000).contains(&c.iterations), "churn.iterations: must be 1..=100000");
        anyhow::ensure!(c.high_threshold > 0.0 && c.high_threshold < 1.0, "churn.high_threshold: must be in (0, 1)");
        anyhow::ensure!((1..=crate::domain::churn::N).contains(&c.top_factors), "churn.top_factors: must be 1..=8");
        for d in [c.check_interval, c.score_interval, c.lease] {
            anyhow::ensure!(!d.is_zero(), "churn intervals and lease: must be positive");
        }
        for ws in &self.fleet.operator_workspaces {
            nexus_kernel::WorkspaceId::parse(ws)
                .map_err(|_| anyhow::anyhow!("fleet.operator_workspaces: {ws:?} is not a workspace id"))?;
        }
        for (name, url) in &self.fleet.services {
            url::Url::parse(url).map_err(|e| anyhow::anyhow!("fleet.services.{name}: {url:?}: {e}"))?;
        }
        Ok(())
    }
}
