//! `/v1/analytics/revenue/{mrr,forecast}`: the platform's MRR report (operators) and forecasts of
//! MRR (operators) or of the workspace's own credit consumption.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::analytics::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::analytics_client as client;
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(mrr_report)).routes(routes!(forecast))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MrrQuery {
    /// First month (UTC), YYYY-MM; default 11 months before `to`.
    #[param(example = "2026-01", pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub from: Option<String>,
    /// Last month, included; default the current month. At most 36 months in all.
    #[param(example = "2026-06", pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub to: Option<String>,
}

/// One currency's subscription revenue in one month, integer minor units.
#[derive(Debug, Serialize, ToSchema)]
pub struct MrrMonthBody {
    #[schema(example = "2026-03")]
    pub month: String,
    #[schema(example = "USD")]
    pub currency: String,
    /// At the month's end.
    #[schema(example = 39400)]
    pub mrr_minor: i64,
    #[schema(example = 472800)]
    pub arr_minor: i64,
    #[schema(example = 0)]
    pub new_minor: i64,
    #[schema(example = 0)]
    pub expansion_minor: i64,
    /// Positive amounts that reduced MRR.
    #[schema(example = 20000)]
    pub contraction_minor: i64,
    #[schema(example = 9700)]
    pub churned_minor: i64,
    #[schema(example = 0)]
    pub reactivation_minor: i64,
    /// new + expansion + reactivation - contraction - churned.
    #[schema(example = -29700)]
    pub net_new_minor: i64,
    #[schema(example = 2)]
    pub paying_customers: u32,
    #[schema(example = 1)]
    pub churned_customers: u32,
    #[schema(example = 19700)]
    pub arpu_minor: i64,
    /// Churned customers / paying customers at the month's start (decimal).
    #[schema(example = "0.3333")]
    pub churn_rate: String,
    /// ARPU / churn rate; null when nobody churned (LTV undefined).
    #[schema(example = 59100)]
    pub ltv_minor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MrrReportBody {
    /// One per month and currency with subscriptions.
    pub months: Vec<MrrMonthBody>,
}

/// The platform's MRR, ARR, MRR movements, ARPU and LTV per month and currency (platform
/// operators only; every workspace is one customer).
#[utoipa::path(get, path = "/v1/analytics/revenue/mrr", tag = "analytics", security(("bearer" = [])), params(MrrQuery),
    responses((status = 200, description = "MRR report", body = MrrReportBody), (status = 400, description = "Bad month", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Not a platform operator", body = ErrorEnvelope), (status = 422, description = "More than 36 months", body = ErrorEnvelope), (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn mrr_report(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<MrrQuery>,
) -> Result<Json<MrrReportBody>, ApiError> {
    let r = client(&state)
        .mrr_report(pb::MrrReportRequest { from_month: q.from.unwrap_or_default(), to_month: q.to.unwrap_or_default() })
        .await?
        .into_inner();
    Ok(Json(MrrReportBody {
        months: r
            .months
            .into_iter()
            .map(|m| MrrMonthBody {
                month: m.month,
                currency: m.currency,
                mrr_minor: m.mrr_minor,
                arr_minor: m.arr_minor,
                new_minor: m.new_minor,
                expansion_minor: m.expansion_minor,
                contraction_minor: m.contraction_minor,
                churned_minor: m.churned_minor,
                reactivation_minor: m.reactivation_minor,
                net_new_minor: m.net_new_minor,
                paying_customers: m.paying_customers,
                churned_customers: m.churned_customers,
                arpu_minor: m.arpu_minor,
                churn_rate: m.churn_rate,
                ltv_minor: m.ltv_minor,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// mrr (platform operators) or credits (the workspace's consumption).
    #[param(example = "credits", pattern = "^(mrr|credits)$")]
    pub metric: String,
    /// Months ahead, 1 to 3; default 3.
    #[param(example = 3, minimum = 1, maximum = 3)]
    pub horizon: Option<u32>,
    /// For mrr: the currency (default USD).
    #[param(example = "USD")]
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPointBody {
    #[schema(example = "2026-10")]
    pub month: String,
    #[schema(example = 1240.0)]
    pub value: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastPointBody {
    #[schema(example = "2026-12")]
    pub month: String,
    #[schema(example = 1310.5)]
    pub value: f64,
    #[schema(example = 1180.2)]
    pub lower: f64,
    #[schema(example = 1440.8)]
    pub upper: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastBody {
    #[schema(example = "credits")]
    pub metric: String,
    /// For mrr; empty for credits.
    #[schema(example = "")]
    pub currency: String,
    /// holt_winters, holt (shorter than two years) or none.
    #[schema(example = "holt")]
    pub method: String,
    /// False below min_points closed months: then there are no points.
    #[schema(example = true)]
    pub enough_data: bool,
    #[schema(example = 6)]
    pub min_points: u32,
    /// The closed months the forecast is fitted on (MRR in minor units, or credits).
    pub history: Vec<SeriesPointBody>,
    pub points: Vec<ForecastPointBody>,
    /// Rolling-origin one-step backtest, mean absolute percentage error in percent.
    #[schema(example = 4.2)]
    pub backtest_mape: Option<f64>,
    /// Nominal coverage of [lower, upper].
    #[schema(example = 0.8)]
    pub interval_level: f64,
}

/// Forecast of MRR (platform operators) or of the workspace's credit consumption, 1-3 months
/// after the last closed month, with 80 % prediction intervals and the backtest MAPE.
#[utoipa::path(get, path = "/v1/analytics/revenue/forecast", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(ForecastQuery),
    responses((status = 200, description = "Forecast, or enough_data = false", body = ForecastBody), (status = 400, description = "Unknown metric, horizon out of 1-3 or unsupported currency", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "MRR for a non-operator", body = ErrorEnvelope), (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn forecast(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<ForecastQuery>,
) -> Result<Json<ForecastBody>, ApiError> {
    let r = client(&state)
        .forecast(pb::ForecastRequest {
            metric: q.metric,
            horizon: q.horizon.unwrap_or(3),
            currency: q.currency.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(Json(ForecastBody {
        metric: r.metric,
        currency: r.currency,
        method: r.method,
        enough_data: r.enough_data,
        min_points: r.min_points,
        history: r.history.into_iter().map(|p| SeriesPointBody { month: p.month, value: p.value }).collect(),
        points: r
            .points
            .into_iter()
            .map(|p| ForecastPointBody { month: p.month, value: p.value, lower: p.lower, upper: p.upper })
            .collect(),
        backtest_mape: r.backtest_mape,
        interval_level: r.interval_level,
    }))
}
