//! `/v1/me`: the signed-in user's profile and settings, password, email verification, account
//! deletion and linked sign-in identities.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_kernel::Locale;
use nexus_proto::nexus::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    SessionBody, UserBody, WorkspaceBody, auth_client as client, client_info, session_body, ts, user_body,
    workspace_body,
};
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(resend_verification))
        .routes(routes!(request_deletion))
        .routes(routes!(list_identities))
        .routes(routes!(unlink_identity))
}

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
    /// 1 to 100 characters, not only spaces; no control characters.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub name: Option<String>,
    #[schema(schema_with = crate::openapi::vocab::avatar_url_or_null)]
    pub avatar_url: Option<String>,
    /// en, es, pt, he or ar: the language of everything NexusOne writes to you.
    #[schema(pattern = "^(en|es|pt|he|ar)$")]
    pub locale: Option<String>,
    #[schema(schema_with = crate::openapi::vocab::time_zone_or_null)]
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
