//! `/v1/workspaces`: the workspaces the user belongs to, and switching between them.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::auth::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{SessionBody, WorkspaceBody, auth_client as client, session_body, workspace_body};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiPath;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_workspaces)).routes(routes!(switch_workspace))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    pub items: Vec<WorkspaceBody>,
}

/// Workspaces you belong to.
#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, description = "Workspaces", body = WorkspaceList), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "API keys cannot see their creator's other workspaces (`auth.user_session_required`)", body = ErrorEnvelope)))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<WorkspaceList>, ApiError> {
    let items = client(&state)
        .list_workspaces(pb::Empty {})
        .await?
        .into_inner()
        .items
        .into_iter()
        .map(workspace_body)
        .collect();
    Ok(Json(WorkspaceList { items }))
}

/// Get tokens for another workspace you belong to.
#[utoipa::path(post, path = "/v1/workspaces/{id}/switch", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path, example = "ws_0192f0c5c2b87c31a1f1e4f2b1a0c9d8")),
    responses((status = 200, description = "Tokens for that workspace", body = SessionBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "Not a workspace of yours", body = ErrorEnvelope)))]
pub async fn switch_workspace(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionBody>, ApiError> {
    Ok(Json(session_body(client(&state).switch_workspace(pb::IdRequest { id }).await?.into_inner())))
}
