//! `/v1/ads/campaigns`: the marketing campaign umbrella (goal, budget in minor units, currency,
//! dates) that groups content, pages, ads, posts and videos.

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
        .routes(routes!(create_campaign, list_campaigns))
        .routes(routes!(get_campaign, update_campaign))
        .routes(routes!(archive_campaign))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Winter sale", "goal": "sales", "budget_minor": 250000, "currency": "EUR", "start_date": "2026-12-01", "end_date": "2026-12-31", "description": "Gifts for the holidays"}))]
pub struct CampaignRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// awareness, traffic, engagement, leads, sales or app_promotion.
    #[schema(pattern = "^(awareness|traffic|engagement|leads|sales|app_promotion)$")]
    pub goal: String,
    /// Total budget in minor units of `currency` (25000 = 250.00 EUR); absent: none set.
    #[schema(minimum = 0, maximum = 1000000000000.0)]
    pub budget_minor: Option<i64>,
    /// ISO-4217.
    #[schema(example = "EUR", schema_with = crate::openapi::vocab::currency_code)]
    pub currency: String,
    /// YYYY-MM-DD; empty or absent: none.
    #[schema(pattern = r"^([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))?$")]
    pub start_date: Option<String>,
    /// YYYY-MM-DD, not before the start; empty or absent: open-ended.
    #[schema(pattern = r"^([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))?$")]
    pub end_date: Option<String>,
    /// Up to 2,000 characters; line breaks and tabs but no other control characters.
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignBody {
    #[schema(example = "cmp_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub name: String,
    pub goal: String,
    pub budget_minor: i64,
    pub currency: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub description: String,
    /// draft, active or archived.
    pub status: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    pub items: Vec<CampaignBody>,
    pub next_cursor: Option<String>,
}

fn input(b: CampaignRequest) -> pb::CampaignInput {
    pb::CampaignInput {
        name: b.name,
        goal: b.goal,
        budget_minor: b.budget_minor.unwrap_or(0),
        currency: b.currency,
        start_date: b.start_date.unwrap_or_default(),
        end_date: b.end_date.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
    }
}

fn campaign(c: pb::Campaign) -> CampaignBody {
    let opt = |s: String| Some(s).filter(|s| !s.is_empty());
    CampaignBody {
        id: c.id,
        name: c.name,
        goal: c.goal,
        budget_minor: c.budget_minor,
        currency: c.currency,
        start_date: opt(c.start_date),
        end_date: opt(c.end_date),
        description: c.description,
        status: c.status,
        created_at: ts(c.created_at),
        updated_at: ts(c.updated_at),
    }
}

/// Create a campaign.
#[utoipa::path(post, path = "/v1/ads/campaigns", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = CampaignRequest,
    responses((status = 201, description = "Created", body = CampaignBody), (status = 400, description = "A field is not valid (named in the error)", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot create campaigns", body = ErrorEnvelope)))]
pub async fn create_campaign(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<CampaignRequest>,
) -> Result<(StatusCode, Json<CampaignBody>), ApiError> {
    Ok((StatusCode::CREATED, Json(campaign(client(&state).create_campaign(input(b)).await?.into_inner()))))
}

/// The workspace's campaigns, newest first.
#[utoipa::path(get, path = "/v1/ads/campaigns", tag = "ads", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of campaigns", body = CampaignList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_campaigns(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<CampaignList>, ApiError> {
    let r = client(&state).list_campaigns(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(CampaignList { items: r.campaigns.into_iter().map(campaign).collect(), next_cursor: next_cursor(r.page) }))
}

/// A campaign.
#[utoipa::path(get, path = "/v1/ads/campaigns/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "cmp_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The campaign", body = CampaignBody), (status = 404, description = "No such campaign in this workspace", body = ErrorEnvelope)))]
pub async fn get_campaign(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CampaignBody>, ApiError> {
    Ok(Json(campaign(client(&state).get_campaign(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Replace a campaign's fields (not once archived).
#[utoipa::path(put, path = "/v1/ads/campaigns/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "cmp_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = CampaignRequest,
    responses((status = 200, description = "The campaign", body = CampaignBody), (status = 400, description = "A field is not valid", body = ErrorEnvelope),
        (status = 404, description = "No such campaign in this workspace", body = ErrorEnvelope), (status = 409, description = "The campaign is archived", body = ErrorEnvelope)))]
pub async fn update_campaign(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<CampaignRequest>,
) -> Result<Json<CampaignBody>, ApiError> {
    let req = pb::UpdateCampaignRequest { id, campaign: Some(input(b)) };
    Ok(Json(campaign(client(&state).update_campaign(req).await?.into_inner())))
}

/// Archive a campaign (kept for its reports).
#[utoipa::path(post, path = "/v1/ads/campaigns/{id}/archive", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "cmp_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Archived", body = CampaignBody), (status = 404, description = "No such campaign in this workspace", body = ErrorEnvelope)))]
pub async fn archive_campaign(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CampaignBody>, ApiError> {
    Ok(Json(campaign(client(&state).archive_campaign(pb::GetByIdRequest { id }).await?.into_inner())))
}
