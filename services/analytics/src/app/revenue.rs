//! Revenue: the platform's MRR report (operators; every workspace is a customer) and forecasts
//! of MRR or of a workspace's credit consumption from its closed months.

use chrono::{Months, NaiveDate};
use nexus_kernel::{Currency, Error, TenantId};
use nexus_platform::db;

use super::Analytics;
use crate::domain::forecast::{self, Forecast, Metric};
use crate::domain::mrr::{self, MrrMonth, month_of, next_month, start_of};
use crate::repo;

/// A forecast with the history it was fitted on.
#[derive(Debug, Clone)]
pub struct ForecastView {
    pub metric: Metric,
    /// The MRR's currency; empty for credits.
    pub currency: String,
    pub history: Vec<(NaiveDate, f64)>,
    pub forecast: Forecast,
}

/// The months after `last`, for the forecast's points.
pub fn months_after(last: NaiveDate, n: usize) -> Vec<NaiveDate> {
    std::iter::successors(Some(next_month(last)), |m| Some(next_month(*m))).take(n).collect()
}

/// Monthly values from the first given month to `last`, months without a value as 0.
fn dense(values: &[(NaiveDate, i64)], last: NaiveDate) -> Vec<(NaiveDate, f64)> {
    let Some(&(mut m, _)) = values.first() else { return Vec::new() };
    let mut out = Vec::new();
    while m <= last {
        let v = values.iter().find(|(k, _)| *k == m).map_or(0, |(_, v)| *v);
        out.push((m, v as f64));
        m = next_month(m);
    }
    out
}

impl Analytics {
    /// The platform's MRR per month and currency from `from` to `to` (first days). Reads every
    /// workspace's subscription changes: callers check the operator first.
    #[tracing::instrument(skip_all, fields(%from, %to))]
    pub async fn mrr_report(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<MrrMonth>, Error> {
        let mut tx = db::system(&self.db).await?;
        let changes = repo::revenue::subscription_changes(&mut tx, start_of(next_month(to))).await?;
        db::commit(tx).await?;
        Ok(mrr::report(&changes, from, to))
    }

    /// Forecast of `metric` for `horizon` months after the last closed month before `today`'s.
    /// MRR is the platform's (callers check the operator); credits are `tenant`'s own.
    #[tracing::instrument(skip_all, fields(metric = metric.as_str(), horizon))]
    pub async fn forecast(
        &self,
        tenant: TenantId,
        metric: Metric,
        horizon: usize,
        currency: &str,
        today: NaiveDate,
    ) -> Result<ForecastView, Error> {
        let last_closed = month_of(start_of(today)) - Months::new(1);
        let (currency, history) = match metric {
            Metric::Mrr => {
                let currency =
                    if currency.trim().is_empty() { Currency::USD } else { currency.trim().parse::<Currency>()? };
                let mut tx = db::system(&self.db).await?;
                let changes = repo::revenue::subscription_changes(&mut tx, start_of(next_month(last_closed))).await?;
                db::commit(tx).await?;
                let series = mrr::series(&changes, currency.code(), last_closed);
                (currency.code().to_owned(), series.into_iter().map(|(m, v)| (m, v as f64)).collect())
            }
            Metric::Credits => {
                let mut tx = db::tenant(&self.db, tenant).await?;
                let rows = repo::revenue::credits_per_month(&mut tx, tenant, start_of(next_month(last_closed))).await?;
                db::commit(tx).await?;
                (String::new(), dense(&rows, last_closed))
            }
        };
        let values: Vec<f64> = history.iter().map(|(_, v)| *v).collect();
        Ok(ForecastView { metric, currency, history, forecast: forecast::forecast(&values, horizon) })
    }
}
