//! `/v1/ads/audiences`: custom audiences from a CRM segment — its members sent by the client, or
//! a saved segment of the contact book read by the ads service. Emails and phones are
//! normalized and SHA-256 hashed by the ads service; only hashes reach the platform.

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
        .routes(routes!(create_audience, list_audiences))
        .routes(routes!(get_audience, delete_audience))
        .routes(routes!(create_lookalike))
        .routes(routes!(refresh_audience))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"countries": ["US", "MX"], "ratio_percent": 3}))]
pub struct LookalikeRequest {
    /// Empty or absent: "<source name> lookalike <ratio> %".
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// ISO 3166-1 alpha-2 codes, 1 to 25.
    #[schema(min_items = 1, max_items = 25)]
    pub countries: Vec<String>,
    /// How much of each country's population it reaches (%): smaller is closer to the source.
    #[schema(minimum = 1, maximum = 10)]
    pub ratio_percent: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "ad_account": "act_1234567890",
    "name": "VIP customers", "segment_id": "seg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"}))]
pub struct AudienceRequest {
    pub connection_id: String,
    pub ad_account: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    pub emails: Option<Vec<String>>,
    /// With the country code (+52…, 0034…); others are dropped.
    pub phones: Option<Vec<String>>,
    /// Instead of emails and phones: a saved segment of the contact book, whose contacts with
    /// marketing consent (granted on a channel, withdrawn on none) make the audience. It is read
    /// again and replaced at the platform on schedule.
    pub segment_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceBody {
    #[schema(example = "aud_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub connection_id: String,
    pub ad_account: String,
    pub name: String,
    pub platform_id: String,
    /// Hashed members sent.
    pub members: i32,
    /// Inputs that were not an email or an international phone number.
    pub dropped: i32,
    /// The contact-book segment it is made from, if any.
    pub segment_id: Option<String>,
    /// Contacts of the segment left out for want of marketing consent.
    pub excluded: i32,
    /// ready, refreshing or failed.
    #[schema(example = "ready")]
    pub refresh_status: String,
    /// custom or lookalike.
    #[schema(example = "custom")]
    pub kind: String,
    /// A lookalike's source audience, countries and ratio (%).
    pub origin_id: Option<String>,
    pub countries: Vec<String>,
    pub ratio_percent: Option<i32>,
    /// The error code of the last failed refresh.
    pub refresh_error: Option<String>,
    pub refreshed_at: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceList {
    pub items: Vec<AudienceBody>,
    pub next_cursor: Option<String>,
}

fn body(a: pb::Audience) -> AudienceBody {
    let some = |s: String| (!s.is_empty()).then_some(s);
    AudienceBody {
        id: a.id,
        connection_id: a.connection_id,
        ad_account: a.ad_account,
        name: a.name,
        platform_id: a.platform_id,
        members: a.members,
        dropped: a.dropped,
        segment_id: some(a.segment_id),
        excluded: a.excluded,
        refresh_status: a.refresh_status,
        refresh_error: some(a.refresh_error),
        kind: a.kind,
        origin_id: some(a.origin_id),
        countries: a.countries,
        ratio_percent: (a.ratio_percent > 0).then_some(a.ratio_percent),
        refreshed_at: ts(a.refreshed_at),
        created_at: ts(a.created_at),
    }
}

/// Create a custom audience on the ad account from a segment's members, or from a saved
/// segment of the contact book.
#[utoipa::path(post, path = "/v1/ads/audiences", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = AudienceRequest,
    responses((status = 201, description = "Uploaded", body = AudienceBody),
        (status = 400, description = "No usable (or consenting) member, too many, a segment with members, or an ad account that is not chosen", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot create audiences", body = ErrorEnvelope),
        (status = 404, description = "No such connection or segment in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The contact book cannot be read (`ads.segments_unavailable`) or the platform refused", body = ErrorEnvelope),
        (status = 503, description = "The platform or the contact book is unavailable", body = ErrorEnvelope)))]
pub async fn create_audience(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<AudienceRequest>,
) -> Result<(StatusCode, Json<AudienceBody>), ApiError> {
    let req = pb::CreateAudienceRequest {
        connection_id: b.connection_id,
        ad_account: b.ad_account,
        name: b.name,
        emails: b.emails.unwrap_or_default(),
        phones: b.phones.unwrap_or_default(),
        segment_id: b.segment_id.unwrap_or_default(),
    };
    let a = client(&state).create_audience(req).await?.into_inner();
    Ok((StatusCode::CREATED, Json(body(a))))
}

/// The workspace's custom audiences, newest first.
#[utoipa::path(get, path = "/v1/ads/audiences", tag = "ads", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of audiences", body = AudienceList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_audiences(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<AudienceList>, ApiError> {
    let r = client(&state).list_audiences(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(AudienceList { items: r.items.into_iter().map(body).collect(), next_cursor: next_cursor(r.page) }))
}

/// A custom audience: its counts and the state of its scheduled refresh.
#[utoipa::path(get, path = "/v1/ads/audiences/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "aud_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The audience", body = AudienceBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such audience in this workspace", body = ErrorEnvelope)))]
pub async fn get_audience(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AudienceBody>, ApiError> {
    Ok(Json(body(client(&state).get_audience(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Delete a custom audience at the platform, then here.
#[utoipa::path(delete, path = "/v1/ads/audiences/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "aud_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot delete", body = ErrorEnvelope),
        (status = 404, description = "No such audience in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Its connection was removed (`ads.connection_required`) or the platform refused", body = ErrorEnvelope),
        (status = 503, description = "The platform is unavailable", body = ErrorEnvelope)))]
pub async fn delete_audience(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_audience(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a lookalike of a custom audience, in the source's ad account: people like the
/// source's in the countries asked for.
#[utoipa::path(post, path = "/v1/ads/audiences/{id}/lookalikes", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "aud_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    request_body = LookalikeRequest,
    responses((status = 201, description = "Created at the platform", body = AudienceBody),
        (status = 400, description = "A ratio outside 1 to 10 %, no or too many countries, a code that is not an ISO country, or a lookalike as the source", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot create audiences", body = ErrorEnvelope),
        (status = 404, description = "No such audience in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Its connection was removed (`ads.connection_required`) or the platform refused", body = ErrorEnvelope),
        (status = 503, description = "The platform is unavailable", body = ErrorEnvelope)))]
pub async fn create_lookalike(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<LookalikeRequest>,
) -> Result<(StatusCode, Json<AudienceBody>), ApiError> {
    let req = pb::CreateLookalikeRequest {
        id,
        name: b.name.unwrap_or_default(),
        countries: b.countries,
        ratio_percent: b.ratio_percent,
    };
    let a = client(&state).create_lookalike(req).await?.into_inner();
    Ok((StatusCode::CREATED, Json(body(a))))
}

/// Read an audience's contact segment again now and replace its members at the platform (this
/// also happens on schedule).
#[utoipa::path(post, path = "/v1/ads/audiences/{id}/refresh", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "aud_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Refreshed", body = AudienceBody),
        (status = 400, description = "Not made from a segment (`ads.audience_not_refreshable`), or no consenting contact left", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot refresh", body = ErrorEnvelope),
        (status = 404, description = "No such audience in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Being refreshed already (`ads.audience_refreshing`), its platform cannot replace members, its connection was removed, or the platform refused", body = ErrorEnvelope),
        (status = 503, description = "The platform or the contact book is unavailable", body = ErrorEnvelope)))]
pub async fn refresh_audience(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AudienceBody>, ApiError> {
    Ok(Json(body(client(&state).refresh_audience(pb::GetByIdRequest { id }).await?.into_inner())))
}
