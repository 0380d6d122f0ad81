//! `/v1/analytics/write-key` and `/v1/analytics/settings`: the workspace's browser write key and
//! its analytics settings (time zone, retention).

use axum::Json;
use axum::extract::State;
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::analytics::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{analytics_client as client, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiJson;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_write_key))
        .routes(routes!(rotate_write_key))
        .routes(routes!(get_settings, update_settings))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WriteKeyBody {
    /// Write-only: it can record events into this workspace and do nothing else, so it is safe
    /// to embed in web pages. Send as `Authorization: Bearer …` or the `write_key` field.
    #[schema(example = "wk_Jx3Kq0y0sS9mH1bW2c8nE5tV7uA4pR6dL3fG9hJ2kM1")]
    pub key: String,
    #[schema(example = "wkey_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub key_id: String,
    /// Browser origins allowed to send with it; empty allows any.
    pub allowed_origins: Vec<String>,
    pub created_at: Option<String>,
}

fn key_body(k: pb::WriteKey) -> WriteKeyBody {
    WriteKeyBody { key: k.key, key_id: k.key_id, allowed_origins: k.allowed_origins, created_at: ts(k.created_at) }
}

/// The workspace's browser write key (created on first request; members and above).
#[utoipa::path(get, path = "/v1/analytics/write-key", tag = "analytics", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The write key", body = WriteKeyBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Viewers cannot see the key", body = ErrorEnvelope), (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn get_write_key(State(state): State<AppState>, _a: Authenticated) -> Result<Json<WriteKeyBody>, ApiError> {
    Ok(Json(key_body(client(&state).get_write_key(pb::Empty {}).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"allowed_origins": ["https://shop.example.com"]}))]
pub struct RotateWriteKeyBody {
    /// Up to 20 browser origins allowed to send with the new key (scheme, host and port only);
    /// empty allows any.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::vocab::origins)]
    pub allowed_origins: Vec<String>,
}

/// Replace the write key (owners and admins); the old key stops working.
#[utoipa::path(post, path = "/v1/analytics/write-key/rotate", tag = "analytics", security(("bearer" = []), ("api_key" = [])), request_body = RotateWriteKeyBody,
    responses((status = 200, description = "The new write key", body = WriteKeyBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Role or key scope does not allow it", body = ErrorEnvelope)))]
pub async fn rotate_write_key(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<RotateWriteKeyBody>,
) -> Result<Json<WriteKeyBody>, ApiError> {
    let r = client(&state)
        .rotate_write_key(pb::RotateWriteKeyRequest { allowed_origins: b.allowed_origins })
        .await?
        .into_inner();
    Ok(Json(key_body(r)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsSettingsBody {
    /// IANA zone reports use by default.
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    /// Events older than this are deleted.
    #[schema(example = 395)]
    pub retention_days: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"time_zone": "Asia/Jerusalem", "retention_days": 180}))]
pub struct UpdateAnalyticsSettingsBody {
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// 1 to 3650.
    #[schema(minimum = 1, maximum = 3650)]
    pub retention_days: Option<u32>,
}

/// The workspace's analytics settings.
#[utoipa::path(get, path = "/v1/analytics/settings", tag = "analytics", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Settings", body = AnalyticsSettingsBody), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn get_settings(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<AnalyticsSettingsBody>, ApiError> {
    let s = client(&state).get_settings(pb::Empty {}).await?.into_inner();
    Ok(Json(AnalyticsSettingsBody { time_zone: s.time_zone, retention_days: s.retention_days }))
}

/// Change the default time zone and/or retention (owners and admins).
#[utoipa::path(patch, path = "/v1/analytics/settings", tag = "analytics", security(("bearer" = []), ("api_key" = [])), request_body = UpdateAnalyticsSettingsBody,
    responses((status = 200, description = "Settings", body = AnalyticsSettingsBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Role or key scope does not allow it", body = ErrorEnvelope), (status = 422, description = "Unknown time zone or retention out of range", body = ErrorEnvelope)))]
pub async fn update_settings(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<UpdateAnalyticsSettingsBody>,
) -> Result<Json<AnalyticsSettingsBody>, ApiError> {
    if b.retention_days == Some(0) {
        return Err(ApiError::new(ErrorKind::Unprocessable, "analytics.invalid_retention").with_param("max", "3650"));
    }
    let s = client(&state)
        .update_settings(pb::UpdateSettingsRequest {
            time_zone: b.time_zone.unwrap_or_default(),
            retention_days: b.retention_days.unwrap_or(0),
        })
        .await?
        .into_inner();
    Ok(Json(AnalyticsSettingsBody { time_zone: s.time_zone, retention_days: s.retention_days }))
}
