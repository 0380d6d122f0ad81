//! `/v1/mfa`: two-step verification (TOTP) and recovery codes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::auth_client as client;
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiJson;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(enroll_totp)).routes(routes!(confirm_totp)).routes(routes!(disable_mfa))
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
    responses((status = 200, description = "Enabled", body = RecoveryCodesBody), (status = 400, description = "Wrong code", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 409, description = "No set-up started, or two-step verification already on", body = ErrorEnvelope)))]
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
    responses((status = 204, description = "Disabled"), (status = 400, description = "Wrong password or code", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 409, description = "Two-step verification is not on", body = ErrorEnvelope)))]
pub async fn disable_mfa(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<DisableMfaBody>,
) -> Result<StatusCode, ApiError> {
    client(&state).disable_mfa(pb::DisableMfaRequest { password: b.password, code: b.code }).await?;
    Ok(StatusCode::NO_CONTENT)
}
