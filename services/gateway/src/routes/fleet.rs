//! `/v1/fleet/status`: every service's health and traffic, for platform operators.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::analytics::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{analytics_client as client, non_empty, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(fleet_status))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStatusBody {
    #[schema(example = "subscriptions")]
    pub name: String,
    /// up, degraded (alive, not ready) or down (unreachable).
    #[schema(example = "up")]
    pub status: String,
    /// Requests per second over the last scrape interval.
    #[schema(example = 42.5)]
    pub request_rate: Option<f64>,
    /// Share of requests that failed on the server side (0..1).
    #[schema(example = 0.002)]
    pub error_rate: Option<f64>,
    #[schema(example = 18.4)]
    pub p95_latency_ms: Option<f64>,
    pub checked_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetStatusBody {
    pub services: Vec<ServiceStatusBody>,
    #[schema(example = 15)]
    pub scrape_interval_seconds: u32,
}

/// Every service's health, request rate, error rate and p95 latency (platform operators only).
#[utoipa::path(get, path = "/v1/fleet/status", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "Fleet status", body = FleetStatusBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Not a platform operator", body = ErrorEnvelope), (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn fleet_status(State(state): State<AppState>, _a: Authenticated) -> Result<Json<FleetStatusBody>, ApiError> {
    let r = client(&state).fleet_status(pb::Empty {}).await?.into_inner();
    Ok(Json(FleetStatusBody {
        services: r
            .services
            .into_iter()
            .map(|s| ServiceStatusBody {
                name: s.name,
                status: s.status,
                request_rate: s.request_rate,
                error_rate: s.error_rate,
                p95_latency_ms: s.p95_latency_ms,
                checked_at: ts(s.checked_at),
                error: non_empty(s.error),
            })
            .collect(),
        scrape_interval_seconds: r.scrape_interval_seconds,
    }))
}
