//! Churn risk: `/v1/analytics/churn/{model,scores,retrain}` for a workspace's own customers and
//! `/v1/fleet/churn/{model,scores,retrain}` for the platform's workspaces (operators only).

use axum::Json;
use axum::extract::State;
use nexus_kernel::Locale;
use nexus_proto::nexus::analytics::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{analytics_client as client, next_cursor, paging, ts};
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(churn_model))
        .routes(routes!(churn_scores))
        .routes(routes!(churn_retrain))
        .routes(routes!(platform_churn_model))
        .routes(routes!(platform_churn_scores))
        .routes(routes!(platform_churn_retrain))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalibrationBinBody {
    #[schema(example = 0.7)]
    pub lower: f64,
    #[schema(example = 0.8)]
    pub upper: f64,
    /// Held-out subjects whose predicted risk fell in [lower, upper).
    #[schema(example = 14)]
    pub count: u64,
    #[schema(example = 0.74)]
    pub mean_predicted: f64,
    /// Share of them that did churn.
    #[schema(example = 0.71)]
    pub observed_rate: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CoefficientBody {
    #[schema(example = "days_since_last_event")]
    pub feature: String,
    /// Log-odds per standard deviation of the feature (positive raises the risk).
    #[schema(example = 1.9)]
    pub coefficient: f64,
    #[schema(example = 6.2)]
    pub mean: f64,
    #[schema(example = 5.1)]
    pub std: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotEnoughDataBody {
    #[schema(example = "analytics.churn_not_enough_data")]
    pub code: String,
    /// In the caller's language.
    #[schema(
        example = "There is not enough history to predict churn yet: at least 100 active users are needed, with 10 or more who left and who stayed."
    )]
    pub message: String,
    #[schema(example = 100)]
    pub min_subjects: u64,
    #[schema(example = 10)]
    pub min_per_class: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"population": "customers", "status": "trained", "trained_at": "2026-12-07T03:00:00Z",
    "observation_days": 30, "outcome_days": 30, "subjects": 1240, "churned": 310, "train_subjects": 868,
    "test_subjects": 372, "auc": 0.86, "brier": 0.11, "high_threshold": 0.7,
    "calibration": [{"lower": 0.7, "upper": 0.8, "count": 14, "mean_predicted": 0.74, "observed_rate": 0.71}],
    "intercept": -1.2, "coefficients": [{"feature": "days_since_last_event", "coefficient": 1.9, "mean": 6.2, "std": 5.1}],
    "not_enough_data": null}))]
pub struct ChurnModelBody {
    /// customers (the workspace's end users) or platform (the platform's workspaces).
    pub population: String,
    /// trained, or not_enough_data (then `not_enough_data` says what was missing, and there are
    /// no scores).
    pub status: String,
    pub trained_at: Option<String>,
    pub observation_days: u32,
    pub outcome_days: u32,
    /// Subjects active in the observation window, and how many of them churned.
    pub subjects: u64,
    pub churned: u64,
    pub train_subjects: u64,
    /// Held-out subjects (chosen by a hash of their id) that AUC and calibration are measured on.
    pub test_subjects: u64,
    /// Held-out rank AUC (0.5: a coin; 1: perfect).
    pub auc: Option<f64>,
    /// Held-out Brier score (mean squared error of the predicted probability; lower is better).
    pub brier: Option<f64>,
    pub high_threshold: f64,
    /// Ten equal-width reliability bins.
    pub calibration: Vec<CalibrationBinBody>,
    pub intercept: Option<f64>,
    pub coefficients: Vec<CoefficientBody>,
    pub not_enough_data: Option<NotEnoughDataBody>,
}

fn model_body(m: pb::ChurnModel, locale: Locale) -> ChurnModelBody {
    let trained = m.status == "trained";
    let not_enough_data = (!trained).then(|| {
        let params = [
            ("min_subjects".to_owned(), m.min_subjects.to_string()),
            ("min_per_class".to_owned(), m.min_per_class.to_string()),
        ];
        NotEnoughDataBody {
            message: nexus_i18n::error_message(locale, &m.code, &params, 200),
            code: m.code.clone(),
            min_subjects: m.min_subjects,
            min_per_class: m.min_per_class,
        }
    });
    ChurnModelBody {
        population: m.population,
        status: m.status,
        trained_at: ts(m.trained_at),
        observation_days: m.observation_days,
        outcome_days: m.outcome_days,
        subjects: m.subjects,
        churned: m.churned,
        train_subjects: m.train_subjects,
        test_subjects: m.test_subjects,
        auc: trained.then_some(m.auc),
        brier: trained.then_some(m.brier),
        high_threshold: m.high_threshold,
        calibration: m
            .calibration
            .into_iter()
            .map(|b| CalibrationBinBody {
                lower: b.lower,
                upper: b.upper,
                count: b.count,
                mean_predicted: b.mean_predicted,
                observed_rate: b.observed_rate,
            })
            .collect(),
        intercept: trained.then_some(m.intercept),
        coefficients: m
            .coefficients
            .into_iter()
            .map(|c| CoefficientBody { feature: c.feature, coefficient: c.coefficient, mean: c.mean, std: c.std })
            .collect(),
        not_enough_data,
    }
}

fn locale(edge: Option<axum::Extension<Edge>>) -> Locale {
    edge.map_or(Locale::En, |e| e.0.locale)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChurnScoresQuery {
    /// Only scores at or above this risk (0 to 1); default all.
    #[param(example = 0.7, minimum = 0, maximum = 1)]
    pub min_score: Option<f64>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(example = "eyJzIjowLjgyLCJrIjoiYy00MiJ9")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChurnFactorBody {
    #[schema(example = "days_since_last_event")]
    pub feature: String,
    /// The subject's value as the model reads it (days; counts as ln(1 + n)).
    #[schema(example = 21.0)]
    pub value: f64,
    /// Contribution to the log-odds: positive raises the risk.
    #[schema(example = 1.4)]
    pub contribution: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChurnScoreBody {
    /// An end user's id as tracked, or (platform) a workspace id.
    #[schema(example = "c-42")]
    pub subject: String,
    /// Probability of no activity in the next outcome window.
    #[schema(example = 0.82)]
    pub score: f64,
    /// At or above the high threshold (a `churn_risk.high` event was sent when it crossed).
    pub high: bool,
    /// The largest contributions, largest first.
    pub factors: Vec<ChurnFactorBody>,
    pub scored_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"subject": "c-42", "score": 0.82, "high": true, "scored_at": "2026-12-07T03:00:00Z",
    "factors": [{"feature": "days_since_last_event", "value": 21.0, "contribution": 1.4},
                {"feature": "active_days_30d", "value": 0.69, "contribution": 0.9}]}], "next_cursor": null}))]
pub struct ChurnScoresBody {
    /// Highest risk first.
    pub items: Vec<ChurnScoreBody>,
    pub next_cursor: Option<String>,
}

fn scores_body(r: pb::ChurnScoresResponse) -> ChurnScoresBody {
    ChurnScoresBody {
        items: r
            .items
            .into_iter()
            .map(|s| ChurnScoreBody {
                subject: s.subject,
                score: s.score,
                high: s.high,
                factors: s
                    .factors
                    .into_iter()
                    .map(|f| ChurnFactorBody { feature: f.feature, value: f.value, contribution: f.contribution })
                    .collect(),
                scored_at: ts(s.scored_at),
            })
            .collect(),
        next_cursor: next_cursor(r.page),
    }
}

async fn get_model(state: &AppState, platform: bool, locale: Locale) -> Result<Json<ChurnModelBody>, ApiError> {
    let r = client(state).get_churn_model(pb::ChurnModelRequest { platform }).await?.into_inner();
    Ok(Json(model_body(r, locale)))
}

async fn list_scores(state: &AppState, platform: bool, q: ChurnScoresQuery) -> Result<Json<ChurnScoresBody>, ApiError> {
    let r = client(state)
        .list_churn_scores(pb::ChurnScoresRequest {
            platform,
            page: paging(q.limit, q.cursor),
            min_score: q.min_score.unwrap_or(0.0),
        })
        .await?
        .into_inner();
    Ok(Json(scores_body(r)))
}

async fn retrain(state: &AppState, platform: bool, locale: Locale) -> Result<Json<ChurnModelBody>, ApiError> {
    let r = client(state).retrain_churn(pb::ChurnModelRequest { platform }).await?.into_inner();
    Ok(Json(model_body(r, locale)))
}

/// The churn model of the workspace's customers: held-out AUC, calibration and Brier score, or
/// plainly why there is not enough data for one.
#[utoipa::path(get, path = "/v1/analytics/churn/model", tag = "analytics", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The latest training", body = ChurnModelBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "Not trained yet (`analytics.churn_not_trained`)", body = ErrorEnvelope),
        (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn churn_model(
    State(state): State<AppState>,
    _a: Authenticated,
    edge: Option<axum::Extension<Edge>>,
) -> Result<Json<ChurnModelBody>, ApiError> {
    get_model(&state, false, locale(edge)).await
}

/// Churn risk of the workspace's customers, highest first, each with its top factors.
#[utoipa::path(get, path = "/v1/analytics/churn/scores", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(ChurnScoresQuery),
    responses((status = 200, description = "Latest scores (none without a model)", body = ChurnScoresBody),
        (status = 400, description = "Bad min_score, page size or cursor", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn churn_scores(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<ChurnScoresQuery>,
) -> Result<Json<ChurnScoresBody>, ApiError> {
    list_scores(&state, false, q).await
}

/// Trains the workspace's churn model and scores its customers now.
#[utoipa::path(post, path = "/v1/analytics/churn/retrain", tag = "analytics", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The new training", body = ChurnModelBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot retrain", body = ErrorEnvelope),
        (status = 409, description = "A training is running (`analytics.churn_training_in_progress`)", body = ErrorEnvelope),
        (status = 429, description = "Trained moments ago (`analytics.churn_retrain_too_soon`, with Retry-After)", body = ErrorEnvelope),
        (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn churn_retrain(
    State(state): State<AppState>,
    _a: Authenticated,
    edge: Option<axum::Extension<Edge>>,
) -> Result<Json<ChurnModelBody>, ApiError> {
    retrain(&state, false, locale(edge)).await
}

/// The platform's churn model over its workspaces (platform operators only).
#[utoipa::path(get, path = "/v1/fleet/churn/model", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "The latest training", body = ChurnModelBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not a platform operator", body = ErrorEnvelope),
        (status = 404, description = "Not trained yet (`analytics.churn_not_trained`)", body = ErrorEnvelope),
        (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn platform_churn_model(
    State(state): State<AppState>,
    _a: Authenticated,
    edge: Option<axum::Extension<Edge>>,
) -> Result<Json<ChurnModelBody>, ApiError> {
    get_model(&state, true, locale(edge)).await
}

/// Churn risk of the platform's workspaces, highest first (platform operators only).
#[utoipa::path(get, path = "/v1/fleet/churn/scores", tag = "operations", security(("bearer" = [])), params(ChurnScoresQuery),
    responses((status = 200, description = "Latest scores (none without a model)", body = ChurnScoresBody),
        (status = 400, description = "Bad min_score, page size or cursor", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not a platform operator", body = ErrorEnvelope),
        (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn platform_churn_scores(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<ChurnScoresQuery>,
) -> Result<Json<ChurnScoresBody>, ApiError> {
    list_scores(&state, true, q).await
}

/// Trains the platform's churn model and scores its workspaces now (platform operators only).
#[utoipa::path(post, path = "/v1/fleet/churn/retrain", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "The new training", body = ChurnModelBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not a platform operator", body = ErrorEnvelope),
        (status = 409, description = "A training is running (`analytics.churn_training_in_progress`)", body = ErrorEnvelope),
        (status = 429, description = "Trained moments ago (`analytics.churn_retrain_too_soon`, with Retry-After)", body = ErrorEnvelope),
        (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn platform_churn_retrain(
    State(state): State<AppState>,
    _a: Authenticated,
    edge: Option<axum::Extension<Edge>>,
) -> Result<Json<ChurnModelBody>, ApiError> {
    retrain(&state, true, locale(edge)).await
}
