//! `/v1/api-keys`: API keys for server-to-server use.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{auth_client as client, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_api_keys, create_api_key)).routes(routes!(revoke_api_key))
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
    /// 1 to 100 characters, not only spaces; no control characters.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub name: String,
    /// Any of `read`, `write`, `admin`.
    #[schema(schema_with = crate::openapi::vocab::api_key_scopes)]
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
