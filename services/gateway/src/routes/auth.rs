//! `/v1/auth/*` and `/.well-known/jwks.json`: sign-up, login, tokens, email links, OAuth.
//! Everything here works without a token; the per-IP limit on `/v1/auth/*` is stricter.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use nexus_proto::nexus::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{SessionBody, TokenBody, auth_client as client, client_info, session_body};
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(verify_email))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
        .routes(routes!(oauth_start))
        .routes(routes!(oauth_callback))
        .routes(routes!(jwks))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.com", "password": "correct horse battery staple", "name": "Ana Silva", "locale": "pt"}))]
pub struct SignUpBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 128 characters; common and email-derived passwords, and ones of fewer than five
    /// different characters, are refused.
    #[schema(min_length = 10, max_length = 128)]
    pub password: String,
    /// Up to 100 characters, not blank.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// en, es, pt, he or ar; default from `Accept-Language`.
    #[serde(default)]
    pub locale: Option<String>,
}

/// Create an account and its first workspace.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignUpBody,
    responses(
        (status = 201, description = "Signed up and signed in", body = SessionBody),
        (status = 400, description = "Invalid email, weak password, missing name", body = ErrorEnvelope),
        (status = 409, description = "Email already registered", body = ErrorEnvelope),
    ))]
pub async fn sign_up(
    State(state): State<AppState>,
    axum::Extension(edge): axum::Extension<Edge>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<impl IntoResponse, ApiError> {
    let locale = body.locale.unwrap_or_else(|| edge.locale.code().to_owned());
    let s = client(&state)
        .sign_up(pb::SignUpRequest {
            email: body.email,
            password: body.password,
            name: body.name,
            locale,
            client: Some(client_info(&edge, &headers)),
        })
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(session_body(s))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.com", "password": "correct horse battery staple"}))]
pub struct LoginBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    pub password: String,
    /// Six-digit code from the authenticator app, when `auth.mfa_required` was answered.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// One of the ten recovery codes, instead of `totp_code`.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// Sign in with email and password (and a second factor when enabled).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = SessionBody),
        (status = 401, description = "`auth.invalid_credentials`, `auth.mfa_required` or `auth.invalid_mfa_code`", body = ErrorEnvelope),
    ))]
pub async fn login(
    State(state): State<AppState>,
    axum::Extension(edge): axum::Extension<Edge>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<SessionBody>, ApiError> {
    let s = client(&state)
        .login(pb::LoginRequest {
            email: body.email,
            password: body.password,
            totp_code: body.totp_code.unwrap_or_default(),
            recovery_code: body.recovery_code.unwrap_or_default(),
            client: Some(client_info(&edge, &headers)),
        })
        .await?
        .into_inner();
    Ok(Json(session_body(s)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "nxr_2pQm7w0ZkX9r1c3vYtLq8bN4sD6fH0jK5eR7uA2iO1g"}))]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Trade a refresh token for new tokens (the old refresh token is spent).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = SessionBody),
        (status = 401, description = "Invalid, expired or reused refresh token (reuse ends the session)", body = ErrorEnvelope),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    axum::Extension(edge): axum::Extension<Edge>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<SessionBody>, ApiError> {
    let s = client(&state)
        .refresh(pb::RefreshRequest { refresh_token: body.refresh_token, client: Some(client_info(&edge, &headers)) })
        .await?
        .into_inner();
    Ok(Json(session_body(s)))
}

/// End the session the refresh token belongs to.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = RefreshBody,
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    client(&state).logout(pb::LogoutRequest { refresh_token: body.refresh_token }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirm an email address with the emailed token.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses((status = 204, description = "Verified"), (status = 400, description = "`auth.invalid_token`", body = ErrorEnvelope)))]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<StatusCode, ApiError> {
    client(&state).verify_email(pb::TokenRequest { token: body.token }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.com"}))]
pub struct EmailBody {
    pub email: String,
}

/// Email a password-reset link. Answers the same whether or not the address is registered.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = EmailBody,
    responses((status = 202, description = "If the address is registered, a link is on its way")))]
pub async fn request_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<StatusCode, ApiError> {
    client(&state).request_password_reset(pb::EmailRequest { email: body.email }).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "nxp_UmVzZXQtdG9rZW4tZnJvbS10aGUtZW1haWwtbGluaw", "new_password": "a brand new passphrase"}))]
pub struct ResetBody {
    pub token: String,
    pub new_password: String,
}

/// Set a new password with the emailed token; every session ends.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetBody,
    responses((status = 204, description = "Password changed"), (status = 400, description = "Invalid token or weak password", body = ErrorEnvelope)))]
pub async fn confirm_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<StatusCode, ApiError> {
    client(&state)
        .reset_password(pb::ResetPasswordRequest { token: body.token, new_password: body.new_password })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OAuthStartQuery {
    /// Where the provider sends the user back; must be on the allow-list.
    #[param(example = "http://127.0.0.1:3000/auth/callback")]
    pub redirect_uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthStartBody {
    /// Send the user here.
    pub authorization_url: String,
    /// Echoed back by the provider; pass it to the callback.
    pub state: String,
}

/// Begin "Sign in with Google/Facebook". With a bearer token, links the provider to that account:
/// that needs a user session (not an API key) signed in with a password or TOTP code in the last
/// ten minutes (`auth.reauthentication_required` otherwise: sign in again first). The user gets
/// an email when a provider is linked.
#[utoipa::path(get, path = "/v1/auth/oauth/{provider}/start", tag = "auth",
    params(("provider" = String, Path, description = "google or facebook", example = "google"), OAuthStartQuery),
    responses(
        (status = 200, description = "Where to send the user", body = OAuthStartBody),
        (status = 400, description = "Unknown provider or redirect URI not allowed", body = ErrorEnvelope),
        (status = 403, description = "Linking with an API key (`auth.user_session_required`) or without a recent sign-in (`auth.reauthentication_required`)", body = ErrorEnvelope),
    ))]
pub async fn oauth_start(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(q): ApiQuery<OAuthStartQuery>,
) -> Result<Json<OAuthStartBody>, ApiError> {
    let r = client(&state)
        .o_auth_start(pb::OAuthStartRequest { provider, redirect_uri: q.redirect_uri })
        .await?
        .into_inner();
    Ok(Json(OAuthStartBody { authorization_url: r.authorization_url, state: r.state }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "4/0AX4XfWh-provider-code", "state": "b3Jx7cVt2n9Qm1kE5rU8wZ0pL4sH6dF3gJ2aY7iT0oA"}))]
pub struct OAuthCallbackBody {
    pub code: String,
    pub state: String,
    /// After `auth.mfa_required`: send the same code and state again with the six-digit code.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// One of the ten recovery codes, instead of `totp_code`.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// Finish provider sign-in with the code and state the provider returned.
#[utoipa::path(post, path = "/v1/auth/oauth/{provider}/callback", tag = "auth",
    params(("provider" = String, Path, description = "google or facebook", example = "google")),
    request_body = OAuthCallbackBody,
    responses(
        (status = 200, description = "Signed in", body = SessionBody),
        (status = 400, description = "State invalid or expired", body = ErrorEnvelope),
        (status = 401, description = "The provider's answer did not verify, or `auth.mfa_required` / `auth.invalid_mfa_code` (as for password login: repeat the call with `totp_code`)", body = ErrorEnvelope),
        (status = 409, description = "An account has this email but it is unverified (`auth.oauth_local_unverified`), or the provider's email is unverified (`auth.oauth_link_required`): sign in with the password and link", body = ErrorEnvelope),
    ))]
pub async fn oauth_callback(
    State(state): State<AppState>,
    axum::Extension(edge): axum::Extension<Edge>,
    headers: axum::http::HeaderMap,
    ApiPath(provider): ApiPath<String>,
    ApiJson(body): ApiJson<OAuthCallbackBody>,
) -> Result<Json<SessionBody>, ApiError> {
    let s = client(&state)
        .o_auth_callback(pb::OAuthCallbackRequest {
            provider,
            code: body.code,
            state: body.state,
            link: false,
            client: Some(client_info(&edge, &headers)),
            totp_code: body.totp_code.unwrap_or_default(),
            recovery_code: body.recovery_code.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(Json(session_body(s)))
}

/// The public keys access tokens are signed with (JSON Web Key Set).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWKS", content_type = "application/json"), (status = 503, description = "Auth unavailable", body = ErrorEnvelope)))]
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let json = client(&state).get_jwks(pb::Empty {}).await?.into_inner().json;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
        ],
        json,
    ))
}
