//! `/v1/members` and `/v1/invitations`: a workspace's members, invitations and ownership.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{SessionBody, TokenBody, auth_client as client, session_body, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(invite))
        .routes(routes!(accept_invite))
        .routes(routes!(remove_member))
        .routes(routes!(transfer_ownership))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberBody {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationBody {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberBody>,
    pub pending_invitations: Vec<InvitationBody>,
}

fn invitation_body(i: pb::Invitation) -> InvitationBody {
    InvitationBody { id: i.id, email: i.email, role: i.role, expires_at: ts(i.expires_at) }
}

/// Members of the current workspace and pending invitations.
#[utoipa::path(get, path = "/v1/members", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, description = "Members", body = MemberList), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_members(State(state): State<AppState>, _a: Authenticated) -> Result<Json<MemberList>, ApiError> {
    let r = client(&state).list_members(pb::Empty {}).await?.into_inner();
    Ok(Json(MemberList {
        items: r
            .items
            .into_iter()
            .map(|m| MemberBody {
                user_id: m.user_id,
                email: m.email,
                name: m.name,
                role: m.role,
                joined_at: ts(m.joined_at),
            })
            .collect(),
        pending_invitations: r.pending_invitations.into_iter().map(invitation_body).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "rafael@example.com", "role": "member"}))]
pub struct InviteBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// admin, member or viewer (a workspace has one owner: its creator).
    #[schema(pattern = "^(admin|member|viewer)$")]
    pub role: String,
}

/// Invite someone to the current workspace (owners and admins).
#[utoipa::path(post, path = "/v1/members/invitations", tag = "workspaces", security(("bearer" = [])), request_body = InviteBody,
    responses((status = 201, description = "Invited; they get an email", body = InvitationBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Your role cannot invite", body = ErrorEnvelope), (status = 409, description = "Already a member", body = ErrorEnvelope), (status = 429, description = "Invitation budget spent (per workspace a day, per inviter an hour; `Retry-After`)", body = ErrorEnvelope)))]
pub async fn invite(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<InviteBody>,
) -> Result<(StatusCode, Json<InvitationBody>), ApiError> {
    let i = client(&state).invite_member(pb::InviteMemberRequest { email: b.email, role: b.role }).await?.into_inner();
    Ok((StatusCode::CREATED, Json(invitation_body(i))))
}

/// Join the workspace an invitation is for (signed in with the invited address).
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "workspaces", security(("bearer" = [])), request_body = TokenBody,
    responses((status = 200, description = "Joined; tokens for the workspace", body = SessionBody), (status = 400, description = "Invalid or used invitation", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Invitation for another address", body = ErrorEnvelope)))]
pub async fn accept_invite(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<Json<SessionBody>, ApiError> {
    Ok(Json(session_body(client(&state).accept_invite(pb::TokenRequest { token: b.token }).await?.into_inner())))
}

/// Remove a member from the current workspace.
#[utoipa::path(delete, path = "/v1/members/{user_id}", tag = "workspaces", security(("bearer" = [])),
    params(("user_id" = String, Path, example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Removed"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Your role cannot remove them", body = ErrorEnvelope), (status = 404, description = "Not a member here", body = ErrorEnvelope), (status = 409, description = "The owner cannot be removed", body = ErrorEnvelope)))]
pub async fn remove_member(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(user_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).remove_member(pb::IdRequest { id: user_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make another member the owner. You become an admin at once: your sessions in this workspace
/// end (sign in again), so there is never more than one owner.
#[utoipa::path(post, path = "/v1/members/{user_id}/transfer-ownership", tag = "workspaces", security(("bearer" = [])),
    params(("user_id" = String, Path, example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Transferred"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Only the owner can", body = ErrorEnvelope), (status = 404, description = "Not a member here", body = ErrorEnvelope)))]
pub async fn transfer_ownership(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(user_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).transfer_ownership(pb::IdRequest { id: user_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
