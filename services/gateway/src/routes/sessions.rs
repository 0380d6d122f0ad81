//! `/v1/sessions`: the signed-in user's sessions (devices), listed and revoked.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::auth::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{auth_client as client, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiPath;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_sessions, revoke_all_sessions)).routes(routes!(revoke_session))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionItem {
    pub id: String,
    pub ip: String,
    #[schema(example = "Chrome on Windows")]
    pub device: String,
    pub user_agent: String,
    pub created_at: Option<String>,
    pub last_used_at: Option<String>,
    /// The session this request uses.
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionItem>,
}

/// Your signed-in sessions (devices).
#[utoipa::path(get, path = "/v1/sessions", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "Sessions", body = SessionList), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "API keys cannot (`auth.user_session_required`)", body = ErrorEnvelope)))]
pub async fn list_sessions(State(state): State<AppState>, _a: Authenticated) -> Result<Json<SessionList>, ApiError> {
    let items = client(&state)
        .list_sessions(pb::Empty {})
        .await?
        .into_inner()
        .items
        .into_iter()
        .map(|s| SessionItem {
            id: s.id,
            ip: s.ip,
            device: s.device,
            user_agent: s.user_agent,
            created_at: ts(s.created_at),
            last_used_at: ts(s.last_used_at),
            current: s.current,
        })
        .collect();
    Ok(Json(SessionList { items }))
}

/// Sign a session out.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 204, description = "Revoked"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "API keys cannot (`auth.user_session_required`)", body = ErrorEnvelope), (status = 404, description = "No such session of yours", body = ErrorEnvelope)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).revoke_session(pb::IdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere, this session included.
#[utoipa::path(delete, path = "/v1/sessions", tag = "account", security(("bearer" = [])),
    responses((status = 204, description = "All revoked"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "API keys cannot (`auth.user_session_required`)", body = ErrorEnvelope)))]
pub async fn revoke_all_sessions(State(state): State<AppState>, _a: Authenticated) -> Result<StatusCode, ApiError> {
    client(&state).revoke_all_sessions(pb::Empty {}).await?;
    Ok(StatusCode::NO_CONTENT)
}
