//! `/v1/ads/connections`: Meta (Facebook and Instagram), TikTok Business, Google (YouTube) or
//! the local sandbox, connected through the platform's OAuth page (start, then the callback
//! with the code and state it returned). Tokens are sealed in the ads service and never
//! returned.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::ads::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, ads_client as client, next_cursor, page_request, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_connection))
        .routes(routes!(complete_connection))
        .routes(routes!(list_connections))
        .routes(routes!(get_connection, disconnect))
        .routes(routes!(choose_accounts))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "meta", "redirect_uri": "https://app.example.com/connections/callback"}))]
pub struct StartRequest {
    /// meta, tiktok (TikTok for Business: advertisers), tiktok_creator (a creator through
    /// TikTok Login Kit: organic posts), google or local.
    #[schema(pattern = "^(meta|tiktok|tiktok_creator|google|local)$")]
    pub provider: String,
    /// Where the platform sends the user back; one of the server's allowed addresses.
    #[schema(max_length = 500)]
    pub redirect_uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"authorize_url": "https://www.facebook.com/v25.0/dialog/oauth?client_id=…&state=…", "state": "q8sN0n2…"}))]
pub struct StartBody {
    /// Send the user here.
    pub authorize_url: String,
    /// Comes back with the code; valid ten minutes, once.
    pub state: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "meta", "code": "AQBx…", "state": "q8sN0n2…"}))]
pub struct CallbackRequest {
    pub provider: String,
    #[schema(max_length = 2000)]
    pub code: String,
    #[schema(max_length = 200)]
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountBody {
    #[schema(example = "act_1234567890")]
    pub external_id: String,
    /// ad_account, page, instagram, advertiser, channel or creator.
    pub kind: String,
    pub name: String,
    /// ISO-4217, for ad accounts and advertisers.
    pub currency: String,
    /// IANA time zone, for ad accounts and advertisers.
    pub time_zone: String,
    pub chosen: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdConnectionBody {
    #[schema(example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    /// meta, tiktok, tiktok_creator, google or local.
    pub provider: String,
    pub external_user: String,
    pub display_name: String,
    /// active, expiring (connect again before the date), expired or disconnected.
    pub status: String,
    pub token_expires_at: Option<String>,
    pub scopes: Vec<String>,
    pub accounts: Vec<AccountBody>,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdConnectionList {
    pub items: Vec<AdConnectionBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"external_ids": ["act_1234567890", "1029384756"]}))]
pub struct ChooseRequest {
    /// The accounts to use; the connection's others are unchosen.
    pub external_ids: Vec<String>,
}

fn connection(c: pb::Connection) -> AdConnectionBody {
    AdConnectionBody {
        id: c.id,
        provider: c.provider,
        external_user: c.external_user,
        display_name: c.display_name,
        status: c.status,
        token_expires_at: ts(c.token_expires_at),
        scopes: c.scopes,
        accounts: c
            .accounts
            .into_iter()
            .map(|a| AccountBody {
                external_id: a.external_id,
                kind: a.kind,
                name: a.name,
                currency: a.currency,
                time_zone: a.time_zone,
                chosen: a.chosen,
            })
            .collect(),
        created_at: ts(c.created_at),
    }
}

/// Start connecting a platform (admins): the address to send the user to.
#[utoipa::path(post, path = "/v1/ads/connections/start", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    request_body = StartRequest,
    responses((status = 200, description = "Where to send the user", body = StartBody),
        (status = 400, description = "Unknown platform or return address not allowed", body = ErrorEnvelope),
        (status = 403, description = "Only admins connect platforms", body = ErrorEnvelope),
        (status = 409, description = "The platform is not set up on this server", body = ErrorEnvelope)))]
pub async fn start_connection(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<StartRequest>,
) -> Result<Json<StartBody>, ApiError> {
    let r = client(&state)
        .start_connection(pb::StartConnectionRequest { provider: b.provider, redirect_uri: b.redirect_uri })
        .await?
        .into_inner();
    Ok(Json(StartBody { authorize_url: r.authorize_url, state: r.state }))
}

/// Finish connecting with the code and state the platform returned.
#[utoipa::path(post, path = "/v1/ads/connections/callback", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    request_body = CallbackRequest,
    responses((status = 201, description = "Connected, with the platform's accounts", body = AdConnectionBody),
        (status = 400, description = "Expired, used or foreign state; missing code", body = ErrorEnvelope),
        (status = 401, description = "The platform refused the code", body = ErrorEnvelope)))]
pub async fn complete_connection(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<CallbackRequest>,
) -> Result<(StatusCode, Json<AdConnectionBody>), ApiError> {
    let req = pb::CompleteConnectionRequest { provider: b.provider, code: b.code, state: b.state };
    Ok((StatusCode::CREATED, Json(connection(client(&state).complete_connection(req).await?.into_inner()))))
}

/// The workspace's connections, newest first.
#[utoipa::path(get, path = "/v1/ads/connections", tag = "ads", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of connections", body = AdConnectionList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_connections(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<AdConnectionList>, ApiError> {
    let r = client(&state).list_connections(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(AdConnectionList {
        items: r.connections.into_iter().map(connection).collect(),
        next_cursor: next_cursor(r.page),
    }))
}

/// A connection with its accounts.
#[utoipa::path(get, path = "/v1/ads/connections/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The connection", body = AdConnectionBody), (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope)))]
pub async fn get_connection(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AdConnectionBody>, ApiError> {
    Ok(Json(connection(client(&state).get_connection(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Disconnect (admins): the grant is revoked where the platform supports it, tokens forgotten.
#[utoipa::path(delete, path = "/v1/ads/connections/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Disconnected", body = AdConnectionBody), (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope)))]
pub async fn disconnect(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AdConnectionBody>, ApiError> {
    Ok(Json(connection(client(&state).disconnect(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Choose the ad accounts, pages and channels campaigns and posts use (admins).
#[utoipa::path(put, path = "/v1/ads/connections/{id}/accounts", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = ChooseRequest,
    responses((status = 200, description = "The connection with its choice", body = AdConnectionBody),
        (status = 400, description = "An id that is not one of the connection's accounts", body = ErrorEnvelope),
        (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope)))]
pub async fn choose_accounts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ChooseRequest>,
) -> Result<Json<AdConnectionBody>, ApiError> {
    let req = pb::ChooseAccountsRequest { id, external_ids: b.external_ids };
    Ok(Json(connection(client(&state).choose_accounts(req).await?.into_inner())))
}
