//! Exchange rates in use: the offline file shipped with the service, or an ECB-style daily feed
//! fetched into `exchange_rates` and reloaded.

use std::sync::Arc;

use nexus_kernel::Error;
use nexus_platform::db;
use tokio_util::sync::CancellationToken;

use super::App;
use crate::domain::rates::{RateTable, parse_ecb_xml, parse_rates_csv};
use crate::repo;

/// The offline rates (`data/generate.py`).
pub const LOCAL_RATES: &str = include_str!("../../data/rates.csv");

/// Offline rates are representative, not current: any day after the file's last one converts
/// with that day's rates.
pub fn local_table() -> Result<RateTable, String> {
    Ok(RateTable::new(parse_rates_csv(LOCAL_RATES)?, i64::from(i32::MAX)))
}

impl App {
    /// Where the rates in use come from (recorded beside every converted price).
    pub fn rate_source(&self) -> &'static str {
        if self.cfg.rates.provider == "ecb" { "ecb" } else { "local" }
    }

    /// Fetches the feed, stores its rates and reloads the table from what is stored.
    pub async fn refresh_rates(&self) -> Result<usize, Error> {
        let xml = nexus_providers::ecb::fetch_daily(&self.http, &self.cfg.rates.ecb_url, self.cfg.providers.timeout)
            .await
            .map_err(|e| Error::unavailable("commerce.rates_unavailable").with_source(e))?;
        let rates = parse_ecb_xml(&xml).map_err(|e| Error::unavailable("commerce.rates_unavailable").with_source(e))?;
        let mut tx = db::system(&self.pool).await?;
        repo::rates::store(&mut tx, &rates, "ecb").await?;
        let recent = repo::rates::recent(&mut tx, 60).await?;
        db::commit(tx).await?;
        let table = RateTable::new(recent, self.cfg.rates.max_age_days);
        if let Ok(mut w) = self.rates.write() {
            *w = Arc::new(table);
        }
        Ok(rates.len())
    }
}

/// With the ECB provider: refreshes the rates now and every six hours (the feed changes once a
/// business day).
pub async fn refresher(app: Arc<App>, stop: CancellationToken) {
    loop {
        if let Err(e) = app.refresh_rates().await {
            tracing::warn!(error = ?e, "exchange rates not refreshed; the stored ones stay in use");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(6 * 3600)) => {}
        }
    }
}
