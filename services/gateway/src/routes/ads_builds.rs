//! `/v1/ads/builds`: the ad campaign builder. One request builds a Meta campaign, ad set,
//! creative and ad (paused unless `activate`); the same `request_key` resumes an interrupted
//! build and never creates anything twice.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::ads::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ads_client as client, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_build))
        .routes(routes!(get_build))
        .routes(routes!(update_budget))
        .routes(routes!(set_delivery))
        .routes(routes!(sync_insights))
        .routes(routes!(search_interests))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"request_key": "winter-2026-01", "connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "ad_account": "act_1234567890",
    "name": "Winter coats", "objective": "OUTCOME_TRAFFIC", "optimization_goal": "LINK_CLICKS", "daily_budget": 2500, "countries": ["US", "CA"],
    "age_min": 25, "age_max": 54, "page_id": "1029384756", "link": "https://shop.example.com/winter", "primary_text": "Warm coats, free returns", "headline": "Winter sale",
    "image_id": "img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"}))]
pub struct BuildRequest {
    /// Your key for this request; send the same one to retry.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub request_key: String,
    pub connection_id: String,
    /// A chosen ad account of the connection.
    pub ad_account: String,
    /// The campaign umbrella (`cmp_…`) this belongs to.
    pub campaign_id: Option<String>,
    #[schema(max_length = 200)]
    pub name: String,
    /// OUTCOME_AWARENESS, OUTCOME_TRAFFIC, OUTCOME_ENGAGEMENT, OUTCOME_LEADS, OUTCOME_SALES, OUTCOME_APP_PROMOTION.
    pub objective: String,
    /// Must suit the objective (e.g. LINK_CLICKS for traffic).
    pub optimization_goal: String,
    /// IMPRESSIONS (default), LINK_CLICKS or THRUPLAY.
    pub billing_event: Option<String>,
    /// CREDIT, EMPLOYMENT, HOUSING, ISSUES_ELECTIONS_POLITICS, FINANCIAL_PRODUCTS_SERVICES.
    pub special_ad_categories: Option<Vec<String>>,
    /// general (default), housing, employment, credit or politics: the last four need their
    /// special ad category.
    pub subject: Option<String>,
    /// Minor units of the ad account's currency (2500 = 25.00 USD); at least the currency's minimum.
    pub daily_budget: i64,
    /// ISO-3166 alpha-2 country codes.
    pub countries: Vec<String>,
    pub age_min: Option<u32>,
    pub age_max: Option<u32>,
    /// Interest ids found with `GET /v1/ads/interests` (at most 25): people matching any of them.
    #[schema(max_items = 25, example = json!(["6003107902433"]))]
    pub interests: Option<Vec<String>>,
    /// RFC 3339.
    pub start: Option<String>,
    pub end: Option<String>,
    pub page_id: String,
    /// https landing page.
    pub link: String,
    #[schema(max_length = 2200)]
    pub primary_text: String,
    #[schema(max_length = 255)]
    pub headline: Option<String>,
    #[schema(max_length = 255)]
    pub description: Option<String>,
    /// The creative's picture by https address (Meta fetches it; TikTok uploads it by URL).
    pub image_url: Option<String>,
    /// Instead of `image_url` (one of the four at most): a finished image of the content
    /// service (`img_…`), uploaded to the ad account by the build.
    #[schema(example = "img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub image_id: Option<String>,
    /// A media-library item (`media_…`), picture or video (videos on TikTok only: Meta needs a
    /// thumbnail the library does not have).
    #[schema(example = "media_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub media_id: Option<String>,
    /// A finished video of the video service (`vid_…`), uploaded with its thumbnail as cover.
    #[schema(example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub video_id: Option<String>,
    /// Start delivering at once instead of leaving everything paused.
    pub activate: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildStepBody {
    /// media (the creative's file uploaded to the ad account), campaign, adset (TikTok: adgroup),
    /// creative or ad.
    pub step: String,
    pub platform_id: String,
    /// started, created or deleted.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildBody {
    #[schema(example = "build_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub provider: String,
    pub ad_account: String,
    pub currency: String,
    /// building, built or failed.
    pub status: String,
    pub error: String,
    pub steps: Vec<BuildStepBody>,
    pub campaign_id: Option<String>,
    pub created_at: Option<String>,
    /// Minor units of `currency`.
    pub daily_budget: i64,
    /// paused, active or archived.
    pub delivery: String,
    /// The campaign's delivery status as the platform words it, as of `status_synced_at`
    /// (empty before the first sync).
    #[schema(example = "ACTIVE")]
    pub platform_status: String,
    /// The ad's review: pending, approved or rejected.
    #[schema(example = "rejected")]
    pub review_status: String,
    /// A rejection's reasons in the platform's own words.
    #[schema(example = "Misleading claims: The ad promises results it cannot show.")]
    pub review_reason: String,
    /// The review said in the caller's language, naming a rejection's reasons.
    #[schema(
        example = "Meta rejected this ad: Misleading claims: The ad promises results it cannot show. Change what the reason names and save the ad to have it reviewed again."
    )]
    pub review_message: String,
    /// When the platform was last asked.
    pub status_synced_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"daily_budget": 3000}))]
pub struct BudgetRequest {
    /// Minor units of the ad account's currency.
    pub daily_budget: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delivery": "active"}))]
pub struct DeliveryRequest {
    /// paused, active or archived.
    #[schema(pattern = "^(paused|active|archived)$")]
    pub delivery: String,
}

fn build(b: pb::AdBuild) -> BuildBody {
    BuildBody {
        id: b.id,
        provider: b.provider,
        ad_account: b.ad_account,
        currency: b.currency,
        status: b.status,
        error: b.error,
        steps: b
            .steps
            .into_iter()
            .map(|s| BuildStepBody { step: s.step, platform_id: s.platform_id, status: s.status })
            .collect(),
        campaign_id: Some(b.campaign_id).filter(|c| !c.is_empty()),
        created_at: ts(b.created_at),
        daily_budget: b.daily_budget,
        delivery: b.delivery,
        platform_status: b.platform_status,
        review_status: b.review_status,
        review_reason: b.review_reason,
        review_message: b.review_message,
        status_synced_at: ts(b.status_synced_at),
    }
}

fn timestamp(raw: Option<String>, field: &str) -> Result<Option<prost_types::Timestamp>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else { return Ok(None) };
    let t = chrono::DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
        ApiError::from(
            nexus_kernel::Error::invalid("ads.build_invalid")
                .with_param("field", field)
                .with_violation(field, "not_a_time"),
        )
    })?;
    Ok(Some(nexus_platform::grpc::ts(t.with_timezone(&chrono::Utc))))
}

/// Build an ad campaign on the platform (members).
#[utoipa::path(post, path = "/v1/ads/builds", tag = "ads", security(("bearer" = []), ("api_key" = [])), request_body = BuildRequest,
    responses((status = 201, description = "Built (or the earlier outcome of the same request key)", body = BuildBody),
        (status = 400, description = "Refused before any platform call: budget under the minimum, missing special category, incompatible goal, text too long…", body = ErrorEnvelope),
        (status = 404, description = "No such connection, or no such image, media item or video, in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The platform refused a step; what was created was removed", body = ErrorEnvelope),
        (status = 503, description = "The platform did not answer; retry with the same request key", body = ErrorEnvelope)))]
pub async fn create_build(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<BuildRequest>,
) -> Result<(StatusCode, Json<BuildBody>), ApiError> {
    let req = pb::BuildAdCampaignRequest {
        request_key: b.request_key,
        connection_id: b.connection_id,
        ad_account: b.ad_account,
        campaign_id: b.campaign_id.unwrap_or_default(),
        name: b.name,
        objective: b.objective,
        optimization_goal: b.optimization_goal,
        billing_event: b.billing_event.unwrap_or_default(),
        special_ad_categories: b.special_ad_categories.unwrap_or_default(),
        subject: b.subject.unwrap_or_default(),
        daily_budget: b.daily_budget,
        countries: b.countries,
        age_min: b.age_min.unwrap_or(0),
        age_max: b.age_max.unwrap_or(0),
        interests: b.interests.unwrap_or_default(),
        start: timestamp(b.start, "start")?,
        end: timestamp(b.end, "end")?,
        page_id: b.page_id,
        link: b.link,
        primary_text: b.primary_text,
        headline: b.headline.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
        image_url: b.image_url.unwrap_or_default(),
        image_id: b.image_id.unwrap_or_default(),
        media_id: b.media_id.unwrap_or_default(),
        video_id: b.video_id.unwrap_or_default(),
        activate: b.activate.unwrap_or(false),
    };
    Ok((StatusCode::CREATED, Json(build(client(&state).build_ad_campaign(req).await?.into_inner()))))
}

/// A build with its steps.
#[utoipa::path(get, path = "/v1/ads/builds/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "build_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The build", body = BuildBody), (status = 404, description = "No such build in this workspace", body = ErrorEnvelope)))]
pub async fn get_build(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BuildBody>, ApiError> {
    Ok(Json(build(client(&state).get_ad_build(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Change a built campaign's daily budget (held to the raise guards and the workspace's cap).
#[utoipa::path(put, path = "/v1/ads/builds/{id}/budget", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "build_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = BudgetRequest,
    responses((status = 200, description = "The build with its new budget", body = BuildBody),
        (status = 400, description = "Under the minimum, or a raise beyond the guard", body = ErrorEnvelope),
        (status = 404, description = "No such build in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Not built, archived, or over the workspace's daily cap", body = ErrorEnvelope)))]
pub async fn update_budget(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<BudgetRequest>,
) -> Result<Json<BuildBody>, ApiError> {
    let req = pb::UpdateAdBudgetRequest { id, daily_budget: b.daily_budget };
    Ok(Json(build(client(&state).update_ad_budget(req).await?.into_inner())))
}

/// Pause, resume or archive a built campaign on the platform.
#[utoipa::path(post, path = "/v1/ads/builds/{id}/delivery", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "build_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = DeliveryRequest,
    responses((status = 200, description = "The build in its new state", body = BuildBody),
        (status = 400, description = "Unknown state", body = ErrorEnvelope),
        (status = 404, description = "No such build in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Not built, or archived", body = ErrorEnvelope)))]
pub async fn set_delivery(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DeliveryRequest>,
) -> Result<Json<BuildBody>, ApiError> {
    let req = pb::SetAdDeliveryRequest { id, delivery: b.delivery };
    Ok(Json(build(client(&state).set_ad_delivery(req).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"days": 28}))]
pub struct SyncRequest {
    /// 1 to 90; absent: the 28-day backfill.
    #[schema(minimum = 1, maximum = 90)]
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"rows": 28, "days": 28, "spend_minor": 48188, "revenue_minor": 144564, "currency": "USD", "time_zone": "America/Los_Angeles", "slowed": 0}))]
pub struct InsightsBody {
    pub rows: u64,
    pub days: i64,
    /// Minor units of `currency` over the stored days.
    pub spend_minor: i64,
    pub revenue_minor: i64,
    pub currency: String,
    /// The ad account's time zone the days are counted in.
    pub time_zone: String,
    /// Pauses made because the platform reported high usage.
    pub slowed: u32,
}

/// Sync a built campaign's daily insights (spend, impressions, reach, clicks, conversions, revenue).
#[utoipa::path(post, path = "/v1/ads/builds/{id}/insights/sync", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "build_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = SyncRequest,
    responses((status = 200, description = "What was stored", body = InsightsBody),
        (status = 400, description = "Days out of range", body = ErrorEnvelope),
        (status = 404, description = "No such build in this workspace", body = ErrorEnvelope)))]
pub async fn sync_insights(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SyncRequest>,
) -> Result<Json<InsightsBody>, ApiError> {
    let r = client(&state).sync_insights(pb::SyncInsightsRequest { id, days: b.days.unwrap_or(0) }).await?.into_inner();
    Ok(Json(InsightsBody {
        rows: r.rows,
        days: r.days,
        spend_minor: r.spend_minor,
        revenue_minor: r.revenue_minor,
        currency: r.currency,
        time_zone: r.time_zone,
        slowed: r.slowed,
    }))
}

/// What to search interests for.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InterestQuery {
    /// The connection whose platform is searched.
    #[param(example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub connection_id: String,
    /// The ad account (Meta) or advertiser (TikTok) the build will run in.
    #[param(example = "act_1234567890")]
    pub ad_account: String,
    /// 1 to 100 characters of the interest's name (not only spaces, no control characters).
    #[param(
        example = "golf",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub q: String,
    /// 1 to 100 (25 when absent).
    #[param(example = 25, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InterestBody {
    /// What a build's `interests` names.
    #[schema(example = "6003107902433")]
    pub id: String,
    #[schema(example = "Golf")]
    pub name: String,
    /// Its categories, outermost first (Meta only).
    #[schema(example = json!(["Interests", "Sports and outdoors", "Sports"]))]
    pub path: Vec<String>,
    /// The platform's estimate of the people it reaches, when it gives one.
    pub audience_min: Option<i64>,
    pub audience_max: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InterestList {
    pub interests: Vec<InterestBody>,
}

/// Interests an ad can target, searched on the ad account's platform by name (the sandbox has
/// its own short list).
#[utoipa::path(get, path = "/v1/ads/interests", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(InterestQuery),
    responses((status = 200, description = "Matching interests, the platform's best first", body = InterestList),
        (status = 400, description = "A search text empty or too long, a limit over 100, or an ad account not of the connection", body = ErrorEnvelope),
        (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The platform refused the search", body = ErrorEnvelope),
        (status = 503, description = "The platform did not answer", body = ErrorEnvelope)))]
pub async fn search_interests(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<InterestQuery>,
) -> Result<Json<InterestList>, ApiError> {
    let req = pb::SearchInterestsRequest {
        connection_id: q.connection_id,
        ad_account: q.ad_account,
        query: q.q,
        limit: q.limit.unwrap_or(0),
    };
    let found = client(&state).search_interests(req).await?.into_inner();
    let interests = found
        .interests
        .into_iter()
        .map(|i| InterestBody {
            id: i.id,
            name: i.name,
            path: i.path,
            audience_min: (i.audience_min > 0).then_some(i.audience_min),
            audience_max: (i.audience_max > 0).then_some(i.audience_max),
        })
        .collect();
    Ok(Json(InterestList { interests }))
}
