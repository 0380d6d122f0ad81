//! `/v1/commerce/connections`: suppliers (CJ Dropshipping, AliExpress, the local sample
//! catalogue) and stores (Shopify, the local store). Credentials are checked with the provider,
//! then sealed; they are never returned.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::commerce::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, commerce_client as client, next_cursor, page_request, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_connection, list_connections)).routes(routes!(check_connection))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "shopify", "shop_domain": "acme-store.myshopify.com", "access_token": "shpat_0123456789abcdef", "languages": ["es", "ar"]}))]
pub struct ConnectionRequest {
    /// cj, aliexpress, shopify or local.
    #[schema(pattern = "^(cj|aliexpress|shopify|local)$")]
    pub provider: String,
    /// local only: supplier or store.
    pub role: Option<String>,
    /// shopify: `name.myshopify.com`.
    #[schema(max_length = 100)]
    pub shop_domain: Option<String>,
    /// shopify: an Admin API access token.
    #[schema(max_length = 500)]
    pub access_token: Option<String>,
    /// cj: the API key (`CJUserNum@api@…`).
    #[schema(max_length = 500)]
    pub api_key: Option<String>,
    /// aliexpress: app key, app secret and the buyer account's authorization code.
    #[schema(max_length = 500)]
    pub app_key: Option<String>,
    #[schema(max_length = 500)]
    pub app_secret: Option<String>,
    #[schema(max_length = 500)]
    pub auth_code: Option<String>,
    /// A store's languages (each of en, es, pt, he, ar once): its products are localized into them.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::vocab::store_languages)]
    pub languages: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionBody {
    #[schema(example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub provider: String,
    /// supplier or store.
    pub role: String,
    /// Shop domain, supplier account, or local-supplier / local-store.
    pub account: String,
    /// active, failing or disconnected.
    pub status: String,
    pub last_error: String,
    pub checked_at: Option<String>,
    pub token_expires_at: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub items: Vec<ConnectionBody>,
    pub next_cursor: Option<String>,
}

fn connection(c: pb::Connection) -> ConnectionBody {
    ConnectionBody {
        id: c.id,
        provider: c.provider,
        role: c.role,
        account: c.account,
        status: c.status,
        last_error: c.last_error,
        checked_at: ts(c.checked_at),
        token_expires_at: ts(c.token_expires_at),
        created_at: ts(c.created_at),
    }
}

/// Connect a supplier or store (admins). The credentials are tried with the provider first.
#[utoipa::path(post, path = "/v1/commerce/connections", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    request_body = ConnectionRequest,
    responses((status = 201, description = "Connected", body = ConnectionBody), (status = 400, description = "Unknown provider, missing credentials, or a language not among en, es, pt, he, ar", body = ErrorEnvelope),
        (status = 403, description = "Only admins connect suppliers and stores", body = ErrorEnvelope), (status = 409, description = "The provider refused the credentials, or the store is connected to another workspace", body = ErrorEnvelope)))]
pub async fn create_connection(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<ConnectionRequest>,
) -> Result<(StatusCode, Json<ConnectionBody>), ApiError> {
    let req = pb::ConnectRequest {
        provider: b.provider,
        role: b.role.unwrap_or_default(),
        shop_domain: b.shop_domain.unwrap_or_default(),
        access_token: b.access_token.unwrap_or_default(),
        api_key: b.api_key.unwrap_or_default(),
        app_key: b.app_key.unwrap_or_default(),
        app_secret: b.app_secret.unwrap_or_default(),
        auth_code: b.auth_code.unwrap_or_default(),
        languages: b.languages,
    };
    Ok((StatusCode::CREATED, Json(connection(client(&state).create_connection(req).await?.into_inner()))))
}

/// The workspace's connections, newest first.
#[utoipa::path(get, path = "/v1/commerce/connections", tag = "commerce", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of connections", body = ConnectionList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_connections(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ConnectionList>, ApiError> {
    let r = client(&state).list_connections(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(ConnectionList {
        items: r.connections.into_iter().map(connection).collect(),
        next_cursor: next_cursor(r.page),
    }))
}

/// Check a connection's health with the provider now (refreshes tokens that are due).
#[utoipa::path(post, path = "/v1/commerce/connections/{id}/check", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The connection with its health", body = ConnectionBody), (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope)))]
pub async fn check_connection(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConnectionBody>, ApiError> {
    Ok(Json(connection(client(&state).check_connection(pb::GetByIdRequest { id }).await?.into_inner())))
}
