//! `/v1/analytics/{timeseries,funnel,revenue,top-events,properties,utm,feature-usage,retention,
//! stickiness}`: reports over the workspace's tracked events and metered feature use.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::analytics::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    MoneyBody, analytics_client as client, csv_response, next_cursor, paging, time_range, ts, wants_csv,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(timeseries))
        .routes(routes!(funnel))
        .routes(routes!(revenue))
        .routes(routes!(top_events))
        .routes(routes!(property_breakdown))
        .routes(routes!(utm_breakdown))
        .routes(routes!(feature_usage))
        .routes(routes!(retention))
        .routes(routes!(stickiness))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeSeriesQuery {
    /// RFC 3339, inclusive; default 30 days before `to`.
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// hour, day (default) or week.
    #[param(example = "day", pattern = "^(|hour|day|week)$")]
    pub interval: Option<String>,
    /// IANA zone for the buckets; default the workspace's.
    #[param(example = "America/Sao_Paulo")]
    pub tz: Option<String>,
    /// Only events with this name (up to 200 characters, no control characters).
    #[param(example = "page.viewed", max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub event: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeSeriesPointBody {
    /// Start of the bucket as an instant (RFC 3339, UTC).
    pub start: Option<String>,
    /// Start of the bucket as wall-clock time in `time_zone`.
    #[schema(example = "2026-11-24T00:00:00")]
    pub local_start: String,
    pub events: i64,
    /// Distinct users (user id, else anonymous id).
    pub unique_users: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeSeriesBody {
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    #[schema(example = "day")]
    pub interval: String,
    pub points: Vec<TimeSeriesPointBody>,
}

/// Events and unique users per hour, day or week, in the workspace's (or a given) time zone.
#[utoipa::path(get, path = "/v1/analytics/timeseries", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(TimeSeriesQuery),
    responses((status = 200, description = "One point per bucket, empty buckets included", body = TimeSeriesBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad range, interval or time zone", body = ErrorEnvelope), (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn timeseries(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<TimeSeriesQuery>,
) -> Result<Json<TimeSeriesBody>, ApiError> {
    let r = client(&state)
        .time_series(pb::TimeSeriesRequest {
            range: time_range(q.from, q.to),
            interval: q.interval.unwrap_or_default(),
            time_zone: q.tz.unwrap_or_default(),
            event: q.event.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(Json(TimeSeriesBody {
        time_zone: r.time_zone,
        interval: r.interval,
        points: r
            .points
            .into_iter()
            .map(|p| TimeSeriesPointBody {
                start: ts(p.start),
                local_start: p.local_start,
                events: p.events,
                unique_users: p.unique_users,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FunnelQuery {
    /// Step 1 must happen in [from, to).
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// 2 to 10 event names (up to 200 characters each, not only spaces, no control characters),
    /// comma-separated, in order.
    #[param(
        example = "page.viewed,signup.started,signup.completed",
        pattern = r"^[^,\x00-\x1F\x7F-\x9F]*[^\s,\x00-\x1F\x7F-\x9F][^,\x00-\x1F\x7F-\x9F]*(,[^,\x00-\x1F\x7F-\x9F]*[^\s,\x00-\x1F\x7F-\x9F][^,\x00-\x1F\x7F-\x9F]*){1,9}$"
    )]
    pub steps: String,
    /// Seconds from step 1 within which the later steps count; default 7 days, at most 90.
    #[param(example = 86400, minimum = 1, maximum = 7776000)]
    pub window: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelStepBody {
    #[schema(example = "signup.started")]
    pub name: String,
    pub users: i64,
    /// Share of step 1's users (0..1).
    #[schema(example = 0.42)]
    pub conversion_from_start: f64,
    /// Share of the previous step's users (0..1).
    pub conversion_from_previous: f64,
    /// Users of the previous step who did not reach this one.
    pub drop_off: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelBody {
    pub steps: Vec<FunnelStepBody>,
    #[schema(example = 86400)]
    pub window_seconds: u64,
}

/// Conversion through ordered steps: each step after the previous one and within the window
/// from step 1.
#[utoipa::path(get, path = "/v1/analytics/funnel", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(FunnelQuery),
    responses((status = 200, description = "Users, conversion and drop-off per step", body = FunnelBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad steps, window or range", body = ErrorEnvelope)))]
pub async fn funnel(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<FunnelQuery>,
) -> Result<Json<FunnelBody>, ApiError> {
    let steps = q.steps.split(',').map(|s| s.trim().to_owned()).collect();
    let r = client(&state)
        .funnel(pb::FunnelRequest { range: time_range(q.from, q.to), steps, window_seconds: q.window.unwrap_or(0) })
        .await?
        .into_inner();
    Ok(Json(FunnelBody {
        steps: r
            .steps
            .into_iter()
            .map(|s| FunnelStepBody {
                name: s.name,
                users: s.users,
                conversion_from_start: s.conversion_from_start,
                conversion_from_previous: s.conversion_from_previous,
                drop_off: s.drop_off,
            })
            .collect(),
        window_seconds: r.window_seconds,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevenueQuery {
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// day (default), week or month.
    #[param(example = "week", pattern = "^(|day|week|month)$")]
    pub interval: Option<String>,
    #[param(example = "Asia/Jerusalem")]
    pub tz: Option<String>,
    /// Only this currency.
    #[param(example = "BRL")]
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevenuePointBody {
    pub start: Option<String>,
    #[schema(example = "2026-11-24T00:00:00")]
    pub local_start: String,
    pub total: Option<MoneyBody>,
    pub events: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevenueBodyOut {
    pub time_zone: String,
    pub interval: String,
    /// One per bucket and currency that had revenue.
    pub points: Vec<RevenuePointBody>,
    /// Whole range, one per currency.
    pub totals: Vec<MoneyBody>,
}

/// Revenue per period and currency, in integer minor units.
#[utoipa::path(get, path = "/v1/analytics/revenue", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(RevenueQuery),
    responses((status = 200, description = "Revenue", body = RevenueBodyOut), (status = 400, description = "Unsupported currency", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad range, interval or time zone", body = ErrorEnvelope)))]
pub async fn revenue(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<RevenueQuery>,
) -> Result<Json<RevenueBodyOut>, ApiError> {
    let r = client(&state)
        .revenue(pb::RevenueRequest {
            range: time_range(q.from, q.to),
            interval: q.interval.unwrap_or_default(),
            time_zone: q.tz.unwrap_or_default(),
            currency: q.currency.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(Json(RevenueBodyOut {
        time_zone: r.time_zone,
        interval: r.interval,
        points: r
            .points
            .into_iter()
            .map(|p| RevenuePointBody {
                start: ts(p.start),
                local_start: p.local_start,
                total: p.total.map(MoneyBody::from),
                events: p.events,
            })
            .collect(),
        totals: r.totals.into_iter().map(MoneyBody::from).collect(),
    }))
}

// One query type per breakdown, so each operation documents only the parameters it reads.

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopEventsQuery {
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(example = "eyJvIjoyMH0")]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PropertyQuery {
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// Only events with this name (up to 200 characters, no control characters).
    #[param(example = "order.completed", max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub event: Option<String>,
    /// Property to group by: 1 to 100 characters, not only spaces, no control characters.
    #[param(
        example = "plan",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub property: String,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(example = "eyJvIjoyMH0")]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UtmQuery {
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// Only events with this name (up to 200 characters, no control characters).
    #[param(example = "order.completed", max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub event: Option<String>,
    /// source (default), medium, campaign, term or content.
    #[param(example = "campaign", pattern = "^(|source|medium|campaign|term|content)$")]
    pub dimension: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(example = "eyJvIjoyMH0")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownRowBody {
    /// Event name, property value or UTM value; empty for "none".
    #[schema(example = "pro")]
    pub key: String,
    pub events: i64,
    pub unique_users: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownBody {
    /// Most events first.
    pub rows: Vec<BreakdownRowBody>,
    pub next_cursor: Option<String>,
}

fn breakdown(r: pb::BreakdownResponse) -> BreakdownBody {
    BreakdownBody {
        rows: r
            .rows
            .into_iter()
            .map(|r| BreakdownRowBody { key: r.key, events: r.events, unique_users: r.unique_users })
            .collect(),
        next_cursor: next_cursor(r.page),
    }
}

/// The most frequent events.
#[utoipa::path(get, path = "/v1/analytics/top-events", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(TopEventsQuery),
    responses((status = 200, description = "Events by count", body = BreakdownBody), (status = 400, description = "Bad page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad range", body = ErrorEnvelope)))]
pub async fn top_events(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<TopEventsQuery>,
) -> Result<Json<BreakdownBody>, ApiError> {
    let r = client(&state)
        .top_events(pb::TopEventsRequest { range: time_range(q.from, q.to), page: paging(q.limit, q.cursor) })
        .await?
        .into_inner();
    Ok(Json(breakdown(r)))
}

/// Events grouped by the value of one property.
#[utoipa::path(get, path = "/v1/analytics/properties", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(PropertyQuery),
    responses((status = 200, description = "Values by count", body = BreakdownBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad property name or range", body = ErrorEnvelope)))]
pub async fn property_breakdown(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PropertyQuery>,
) -> Result<Json<BreakdownBody>, ApiError> {
    let r = client(&state)
        .property_breakdown(pb::PropertyBreakdownRequest {
            range: time_range(q.from, q.to),
            event: q.event.unwrap_or_default(),
            property: q.property,
            page: paging(q.limit, q.cursor),
        })
        .await?
        .into_inner();
    Ok(Json(breakdown(r)))
}

/// Events grouped by a UTM field.
#[utoipa::path(get, path = "/v1/analytics/utm", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(UtmQuery),
    responses((status = 200, description = "UTM values by count", body = BreakdownBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Unknown dimension", body = ErrorEnvelope)))]
pub async fn utm_breakdown(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<UtmQuery>,
) -> Result<Json<BreakdownBody>, ApiError> {
    let r = client(&state)
        .utm_breakdown(pb::UtmBreakdownRequest {
            range: time_range(q.from, q.to),
            dimension: q.dimension.unwrap_or_default(),
            event: q.event.unwrap_or_default(),
            page: paging(q.limit, q.cursor),
        })
        .await?
        .into_inner();
    Ok(Json(breakdown(r)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureUsageRowBody {
    /// The plan the workspace was on when the credits were charged.
    #[schema(example = "pro")]
    pub plan: String,
    #[schema(example = "content.generation")]
    pub feature: String,
    pub uses: i64,
    pub credits: i64,
    pub unique_users: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureUsageBodyOut {
    pub rows: Vec<FeatureUsageRowBody>,
}

/// Metered feature use (credits charged) per plan.
#[utoipa::path(get, path = "/v1/analytics/feature-usage", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(RangeQuery),
    responses((status = 200, description = "Use per plan and feature", body = FeatureUsageBodyOut), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad range", body = ErrorEnvelope)))]
pub async fn feature_usage(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Json<FeatureUsageBodyOut>, ApiError> {
    let r =
        client(&state).feature_usage(pb::FeatureUsageRequest { range: time_range(q.from, q.to) }).await?.into_inner();
    Ok(Json(FeatureUsageBodyOut {
        rows: r
            .rows
            .into_iter()
            .map(|r| FeatureUsageRowBody {
                plan: r.plan,
                feature: r.feature,
                uses: r.uses,
                credits: r.credits,
                unique_users: r.unique_users,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetentionQuery {
    /// Cohorts whose first start event falls in [from, to) (at most 400 days; default the 12
    /// weeks before `to`).
    #[param(example = "2026-09-07T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-30T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// The event that puts a user in the cohort of its (UTC, Monday) week: their first one.
    #[param(
        example = "auth.user.signed_up",
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub start_event: String,
    /// The event that counts as coming back; the same as `start_event` for a feature's own
    /// retention.
    #[param(
        example = "content.generation.completed",
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub return_event: String,
    /// Weeks since the cohort's week (1..26, default 12).
    #[param(example = 12, minimum = 1, maximum = 26)]
    pub weeks: Option<u32>,
    /// `json` (default) or `csv`.
    #[param(example = "csv", pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CohortBody {
    /// Monday of the cohort's week.
    #[schema(example = "2026-09-07", format = Date)]
    pub week_start: String,
    #[schema(example = 120)]
    pub users: i64,
    /// Users of the cohort who came back in week k after their first (k = 0: the same week).
    #[schema(example = json!([120, 54, 41, 38]))]
    pub retained: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionBody {
    #[schema(example = 12)]
    pub weeks: u32,
    pub cohorts: Vec<CohortBody>,
}

/// Weekly cohorts: users by the week of their first start event × the weeks since in which they
/// did the return event. As JSON or CSV (`format=csv`).
#[utoipa::path(get, path = "/v1/analytics/retention", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(RetentionQuery),
    responses((status = 200, description = "One row per cohort week (JSON, or text/csv with format=csv)",
            content((RetentionBody = "application/json"), (String = "text/csv", example = "week_start,users,week_0,week_1\n2026-09-07,120,120,54\n"))),
        (status = 400, description = "Missing event or bad format", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 422, description = "Bad event name, weeks or range", body = ErrorEnvelope)))]
pub async fn retention(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<RetentionQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let csv = wants_csv(q.format.as_deref())?;
    let r = client(&state)
        .retention(pb::RetentionRequest {
            range: time_range(q.from, q.to),
            start_event: q.start_event,
            return_event: q.return_event,
            weeks: q.weeks.unwrap_or(0),
        })
        .await?
        .into_inner();
    if csv {
        // Dates and numbers only: nothing a spreadsheet could take for a formula.
        let mut out = String::from("week_start,users");
        for k in 0..r.weeks {
            out.push_str(&format!(",week_{k}"));
        }
        out.push('\n');
        for c in &r.cohorts {
            out.push_str(&format!("{},{}", c.week_start, c.users));
            for n in &c.retained {
                out.push_str(&format!(",{n}"));
            }
            out.push('\n');
        }
        return Ok(csv_response("retention.csv", out));
    }
    Ok(Json(RetentionBody {
        weeks: r.weeks,
        cohorts: r
            .cohorts
            .into_iter()
            .map(|c| CohortBody { week_start: c.week_start, users: c.users, retained: c.retained })
            .collect(),
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StickinessQuery {
    /// UTC days of [from, to) (at most 400; default the 30 days before `to`).
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// Only this event counts as activity (up to 200 characters, no control characters).
    #[param(example = "page.viewed", max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub event: Option<String>,
    /// `json` (default) or `csv`.
    #[param(example = "json", pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StickinessPointBody {
    #[schema(example = "2026-11-24", format = Date)]
    pub day: String,
    #[schema(example = 42)]
    pub daily_users: i64,
    /// Distinct users of the 30 days ending with this one.
    #[schema(example = 300)]
    pub monthly_users: i64,
    /// daily_users / monthly_users.
    #[schema(example = 0.14)]
    pub ratio: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StickinessBody {
    pub points: Vec<StickinessPointBody>,
}

/// Stickiness: daily over 30-day active users, per UTC day. As JSON or CSV (`format=csv`).
#[utoipa::path(get, path = "/v1/analytics/stickiness", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(StickinessQuery),
    responses((status = 200, description = "One point per UTC day (JSON, or text/csv with format=csv)",
            content((StickinessBody = "application/json"), (String = "text/csv", example = "day,daily_users,monthly_users,ratio\n2026-11-24,42,300,0.14\n"))),
        (status = 400, description = "Bad format", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 422, description = "Bad event name or range", body = ErrorEnvelope)))]
pub async fn stickiness(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<StickinessQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let csv = wants_csv(q.format.as_deref())?;
    let r = client(&state)
        .stickiness(pb::StickinessRequest { range: time_range(q.from, q.to), event: q.event.unwrap_or_default() })
        .await?
        .into_inner();
    if csv {
        let mut out = String::from("day,daily_users,monthly_users,ratio\n");
        for p in &r.points {
            out.push_str(&format!("{},{},{},{:.4}\n", p.day, p.daily_users, p.monthly_users, p.ratio));
        }
        return Ok(csv_response("stickiness.csv", out));
    }
    Ok(Json(StickinessBody {
        points: r
            .points
            .into_iter()
            .map(|p| StickinessPointBody {
                day: p.day,
                daily_users: p.daily_users,
                monthly_users: p.monthly_users,
                ratio: p.ratio,
            })
            .collect(),
    })
    .into_response())
}
