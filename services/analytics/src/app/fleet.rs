//! The fleet monitor for operators: every service's health (`/readyz`) and its rates from two
//! successive reads of its `/metrics` over the scrape interval. A service that does not answer is
//! "down", never an error of the monitor.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::config::FleetConfig;
use crate::domain::fleet::{Sample, ServiceStatus, rates, sample_of};

struct Entry {
    status: ServiceStatus,
    last: Option<(Instant, Sample)>,
}

pub struct Monitor {
    cfg: FleetConfig,
    http: reqwest::Client,
    state: RwLock<BTreeMap<String, Entry>>,
}

impl Monitor {
    pub fn new(cfg: FleetConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(cfg.scrape_timeout).build()?;
        let state = cfg
            .services
            .keys()
            .map(|name| (name.clone(), Entry { status: ServiceStatus::unchecked(name), last: None }))
            .collect();
        Ok(Self { cfg, http, state: RwLock::new(state) })
    }
    pub fn interval(&self) -> Duration {
        self.cfg.scrape_interval
    }

    /// The latest status of every configured service, by name.
    pub fn snapshot(&self) -> Vec<ServiceStatus> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|e| e.status.clone())
            .collect()
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            self.scrape_all().await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.cfg.scrape_interval) => {}
            }
        }
    }

    /// Reads every service once, concurrently.
    pub async fn scrape_all(&self) {
        let reads = self.cfg.services.iter().map(|(name, base)| async move {
            let base = base.trim_end_matches('/');
            let ready = self.http.get(format!("{base}/readyz")).send().await;
            let metrics = match &ready {
                Ok(_) => match self.http.get(format!("{base}/metrics")).send().await {
                    Ok(r) if r.status().is_success() => r.text().await.ok(),
                    _ => None,
                },
                Err(_) => None,
            };
            (name.clone(), ready.map(|r| r.status().is_success()).map_err(|e| e.to_string()), metrics)
        });
        let results = futures::future::join_all(reads).await;
        let now = Instant::now();
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, ready, metrics) in results {
            let Some(entry) = state.get_mut(&name) else { continue };
            entry.status.checked_at = Some(Utc::now());
            match ready {
                Err(e) => {
                    entry.status.status = "down";
                    entry.status.error = e.chars().take(200).collect();
                    entry.status.request_rate = None;
                    entry.status.error_rate = None;
                    entry.status.p95_latency_ms = None;
                    entry.last = None;
                    continue;
                }
                Ok(ready) => {
                    entry.status.status = if ready { "up" } else { "degraded" };
                    entry.status.error = if ready { String::new() } else { "not ready".into() };
                }
            }
            let Some(sample) = metrics.as_deref().and_then(|t| sample_of(&name, t)) else { continue };
            if let Some((at, prev)) = &entry.last {
                let (rate, err, p95) = rates(prev, &sample, now.duration_since(*at).as_secs_f64());
                entry.status.request_rate = Some(rate);
                entry.status.error_rate = Some(err);
                entry.status.p95_latency_ms = p95;
            }
            entry.last = Some((now, sample));
        }
    }
}
