//! The signed-in user's account and workspace: profile, sessions, workspaces and members, MFA,
//! API keys. Every route needs a bearer token or API key; services check permissions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_kernel::Locale;
use nexus_proto::nexus::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{
    SessionBody, TokenBody, UserBody, WorkspaceBody, client, client_info, session_body, ts, user_body, workspace_body,
};
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Authenticated;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Notifications {
    pub product_updates: bool,
    pub billing: bool,
    pub security: bool,
    pub weekly_report: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsBody {
    #[schema(example = "he")]
    pub locale: String,
    /// Direction of text in `locale`.
    #[schema(example = "rtl")]
    pub dir: String,
    #[schema(example = "Asia/Jerusalem")]
    pub timezone: String,
    pub notifications: Notifications,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeBody {
    pub user: UserBody,
    pub settings: SettingsBody,
    pub workspace: WorkspaceBody,
    /// API-key scopes; empty for a signed-in user (no restriction).
    pub scopes: Vec<String>,
}

fn locale_code(l: i32) -> Locale {
    match nexus_proto::common::Locale::try_from(l).unwrap_or(nexus_proto::common::Locale::En) {
        nexus_proto::common::Locale::Es => Locale::Es,
        nexus_proto::common::Locale::Pt => Locale::Pt,
        nexus_proto::common::Locale::He => Locale::He,
        nexus_proto::common::Locale::Ar => Locale::Ar,
        _ => Locale::En,
    }
}

fn me_body(m: pb::Me) -> MeBody {
    let settings = m.settings.unwrap_or_default();
    let locale = locale_code(settings.locale);
    let n = settings.notifications.unwrap_or_default();
    MeBody {
        user: user_body(m.user.unwrap_or_default()),
        settings: SettingsBody {
            locale: locale.code().into(),
            dir: locale.direction().as_str().into(),
            timezone: settings.timezone,
            notifications: Notifications {
                product_updates: n.product_updates,
                billing: n.billing,
                security: n.security,
                weekly_report: n.weekly_report,
            },
        },
        workspace: workspace_body(m.workspace.unwrap_or_default()),
        scopes: m.scopes,
    }
}

/// The signed-in user, their settings and current workspace.
#[utoipa::path(get, path = "/v1/me", tag = "account", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "You", body = MeBody), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn me(State(state): State<AppState>, _a: Authenticated) -> Result<Json<MeBody>, ApiError> {
    Ok(Json(me_body(client(&state).get_me(pb::Empty {}).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ana Silva", "locale": "he", "timezone": "Asia/Jerusalem", "notifications": {"product_updates": false, "billing": true, "security": true, "weekly_report": true}}))]
pub struct ProfileBody {
    pub name: Option<String>,
    /// https URL, or empty to remove.
    pub avatar_url: Option<String>,
    /// en, es, pt, he or ar: the language of everything NexusOne writes to you.
    pub locale: Option<String>,
    /// IANA time zone, e.g. `America/Sao_Paulo`.
    pub timezone: Option<String>,
    pub notifications: Option<Notifications>,
}

/// Update name, avatar, language, time zone or notification preferences.
#[utoipa::path(patch, path = "/v1/me", tag = "account", security(("bearer" = [])), request_body = ProfileBody,
    responses((status = 200, description = "Updated", body = MeBody), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn update_me(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<ProfileBody>,
) -> Result<Json<MeBody>, ApiError> {
    let m = client(&state)
        .update_profile(pb::UpdateProfileRequest {
            name: b.name,
            avatar_url: b.avatar_url,
            locale: b.locale,
            timezone: b.timezone,
            notifications: b.notifications.map(|n| pb::NotificationPreferences {
                product_updates: n.product_updates,
                billing: n.billing,
                security: n.security,
                weekly_report: n.weekly_report,
            }),
        })
        .await?
        .into_inner();
    Ok(Json(me_body(m)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "correct horse battery staple", "new_password": "another good passphrase"}))]
pub struct ChangePasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// Change the password; every other session ends and a fresh one is returned.
#[utoipa::path(post, path = "/v1/me/password", tag = "account", security(("bearer" = [])), request_body = ChangePasswordBody,
    responses((status = 200, description = "Changed", body = SessionBody), (status = 400, description = "Wrong current password or weak new one", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn change_password(
    State(state): State<AppState>,
    _a: Authenticated,
    axum::Extension(edge): axum::Extension<Edge>,
    headers: axum::http::HeaderMap,
    ApiJson(b): ApiJson<ChangePasswordBody>,
) -> Result<Json<SessionBody>, ApiError> {
    let s = client(&state)
        .change_password(pb::ChangePasswordRequest {
            current_password: b.current_password,
            new_password: b.new_password,
            client: Some(client_info(&edge, &headers)),
        })
        .await?
        .into_inner();
    Ok(Json(session_body(s)))
}

/// Send the verification email again.
#[utoipa::path(post, path = "/v1/me/verification", tag = "account", security(("bearer" = [])),
    responses((status = 202, description = "Sent if not yet verified"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "API keys cannot (`auth.user_session_required`)", body = ErrorEnvelope)))]
pub async fn resend_verification(State(state): State<AppState>, _a: Authenticated) -> Result<StatusCode, ApiError> {
    client(&state).resend_verification(pb::Empty {}).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "correct horse battery staple"}))]
pub struct PasswordBody {
    pub password: String,
}

/// Ask for the account to be deleted (confirmed with the password).
#[utoipa::path(post, path = "/v1/me/deletion", tag = "account", security(("bearer" = [])), request_body = PasswordBody,
    responses((status = 202, description = "Personal data erased; other services follow"), (status = 400, description = "Wrong password", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn request_deletion(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    client(&state).request_account_deletion(pb::PasswordRequest { password: b.password }).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityItem {
    #[schema(example = "idn_0192f0c5c2b87c31a1f1e4f2b1a0c9da")]
    pub id: String,
    /// google or facebook.
    #[schema(example = "google")]
    pub provider: String,
    /// The address the provider gave, if any.
    #[schema(example = "ana.personal@gmail.com")]
    pub email: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    pub items: Vec<IdentityItem>,
    /// Without a password, the last identity cannot be removed.
    pub has_password: bool,
}

/// Sign-in methods (Google, Facebook) linked to your account.
#[utoipa::path(get, path = "/v1/me/identities", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "Linked identities", body = IdentityList), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "An API key cannot see them (`auth.user_session_required`)", body = ErrorEnvelope)))]
pub async fn list_identities(State(state): State<AppState>, _a: Authenticated) -> Result<Json<IdentityList>, ApiError> {
    let r = client(&state).list_identities(pb::Empty {}).await?.into_inner();
    Ok(Json(IdentityList {
        items: r
            .items
            .into_iter()
            .map(|i| IdentityItem {
                id: i.id,
                provider: i.provider,
                email: (!i.email.is_empty()).then_some(i.email),
                created_at: ts(i.created_at),
            })
            .collect(),
        has_password: r.has_password,
    }))
}

/// Unlink a sign-in method. Refused when it is your only way to sign in and you have no password.
#[utoipa::path(delete, path = "/v1/me/identities/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = String, Path, example = "idn_0192f0c5c2b87c31a1f1e4f2b1a0c9da")),
    responses((status = 204, description = "Unlinked"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "An API key cannot unlink (`auth.user_session_required`)", body = ErrorEnvelope), (status = 404, description = "No such identity of yours", body = ErrorEnvelope), (status = 409, description = "Your last way to sign in (`auth.last_sign_in_method`): set a password first", body = ErrorEnvelope)))]
pub async fn unlink_identity(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).unlink_identity(pb::IdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
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
    pub email: String,
    /// admin, member or viewer.
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

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrollmentBody {
    /// Base32, for typing into the app by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// SVG of the QR code for `otpauth_uri`.
    pub qr_svg: String,
}

/// Start TOTP set-up: scan the QR code, then confirm with a code.
#[utoipa::path(post, path = "/v1/mfa/totp", tag = "account", security(("bearer" = [])),
    responses((status = 200, description = "Secret and QR code", body = TotpEnrollmentBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 409, description = "Already enabled", body = ErrorEnvelope)))]
pub async fn enroll_totp(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<TotpEnrollmentBody>, ApiError> {
    let e = client(&state).enroll_totp(pb::Empty {}).await?.into_inner();
    Ok(Json(TotpEnrollmentBody { secret: e.secret, otpauth_uri: e.otpauth_uri, qr_svg: e.qr_svg }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "492039"}))]
pub struct CodeBody {
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesBody {
    /// Shown once: each signs in once without the app.
    pub codes: Vec<String>,
}

/// Turn TOTP on with a code from the app; returns ten recovery codes.
#[utoipa::path(post, path = "/v1/mfa/totp/confirm", tag = "account", security(("bearer" = [])), request_body = CodeBody,
    responses((status = 200, description = "Enabled", body = RecoveryCodesBody), (status = 400, description = "Wrong code", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<Json<RecoveryCodesBody>, ApiError> {
    Ok(Json(RecoveryCodesBody {
        codes: client(&state).confirm_totp(pb::CodeRequest { code: b.code }).await?.into_inner().codes,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "correct horse battery staple", "code": "492039"}))]
pub struct DisableMfaBody {
    pub password: String,
    /// A current TOTP code or a recovery code.
    pub code: String,
}

/// Turn two-step verification off (password and code required).
#[utoipa::path(post, path = "/v1/mfa/disable", tag = "account", security(("bearer" = [])), request_body = DisableMfaBody,
    responses((status = 204, description = "Disabled"), (status = 400, description = "Wrong password or code", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn disable_mfa(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<DisableMfaBody>,
) -> Result<StatusCode, ApiError> {
    client(&state).disable_mfa(pb::DisableMfaRequest { password: b.password, code: b.code }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyBody {
    #[schema(example = "key_0192f0c5c2b87c31a1f1e4f2b1a0c9d9")]
    pub id: String,
    pub name: String,
    /// Public start of the key, for recognising it.
    #[schema(example = "nx_3f9a1c2b")]
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: Option<String>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

fn key_body(k: pb::ApiKey) -> ApiKeyBody {
    ApiKeyBody {
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes,
        created_at: ts(k.created_at),
        expires_at: ts(k.expires_at),
        last_used_at: ts(k.last_used_at),
        revoked_at: ts(k.revoked_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyBody>,
}

/// API keys of the current workspace.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Keys (never their secrets)", body = ApiKeyList), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_api_keys(State(state): State<AppState>, _a: Authenticated) -> Result<Json<ApiKeyList>, ApiError> {
    Ok(Json(ApiKeyList {
        items: client(&state).list_api_keys(pb::Empty {}).await?.into_inner().items.into_iter().map(key_body).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Reporting dashboard", "scopes": ["read"], "expires_at": "2027-12-31T23:59:59Z"}))]
pub struct CreateApiKeyBody {
    pub name: String,
    /// Any of `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    /// RFC 3339; omit for a key that does not expire.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyBody {
    pub key: ApiKeyBody,
    /// Shown once: store it now. Send as `X-Api-Key` or `Authorization: Bearer`.
    pub secret: String,
}

/// Create an API key (owners and admins).
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = []), ("api_key" = [])), request_body = CreateApiKeyBody,
    responses((status = 201, description = "Created", body = CreatedApiKeyBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Role or key scope does not allow it", body = ErrorEnvelope)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<CreateApiKeyBody>,
) -> Result<(StatusCode, Json<CreatedApiKeyBody>), ApiError> {
    let r = client(&state)
        .create_api_key(pb::CreateApiKeyRequest {
            name: b.name,
            scopes: b.scopes,
            expires_at: b.expires_at.map(|t| prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 }),
        })
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(CreatedApiKeyBody { key: key_body(r.key.unwrap_or_default()), secret: r.secret })))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "key_0192f0c5c2b87c31a1f1e4f2b1a0c9d9")),
    responses((status = 204, description = "Revoked"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Role or key scope does not allow it", body = ErrorEnvelope), (status = 404, description = "No such key here", body = ErrorEnvelope)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).revoke_api_key(pb::IdRequest { id: id.clone() }).await?;
    state.exchanged.forget_key(&id);
    Ok(StatusCode::NO_CONTENT)
}
