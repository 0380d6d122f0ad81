//! Analytics: tracking (`/v1/track*`, authenticated by the workspace's browser write key, not a
//! user token), the write key and settings, reports, the audit trail and the operators' fleet
//! status. Tracking checks each event's shape here so one malformed event never sinks a batch;
//! the analytics service checks the rest and answers per event.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use nexus_kernel::ErrorKind;
use nexus_platform::RequestContext;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_proto::nexus::analytics::v1::analytics_client::AnalyticsClient;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::ts;
use super::billing::MoneyBody;
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery, RawBody};
use crate::identity::Authenticated;

/// Most events one batch may carry (the analytics service enforces its own limit too).
pub const MAX_BATCH: usize = 500;

fn client(state: &AppState) -> AnalyticsClient<nexus_platform::grpc::ContextChannel> {
    nexus_platform::sized!(AnalyticsClient::new(state.upstreams.analytics.clone()))
}

// ---------- tracking ----------

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RevenueBody {
    /// Integer minor units (cents); negative for refunds.
    #[schema(example = 4990)]
    pub amount_minor: i64,
    #[schema(example = "BRL")]
    pub currency: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct UtmBody {
    #[schema(example = "facebook")]
    pub source: Option<String>,
    #[schema(example = "cpc")]
    pub medium: Option<String>,
    #[schema(example = "black-friday")]
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

/// One event. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"name": "order.completed", "client_event_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "timestamp": "2026-11-25T14:03:11.250Z", "anonymous_id": "a8f3c2", "user_id": "customer-42", "properties": {"plan": "pro", "items": 3}, "revenue": {"amount_minor": 4990, "currency": "BRL"}, "utm": {"source": "facebook", "medium": "cpc", "campaign": "black-friday"}, "page_url": "https://shop.example.com/checkout", "referrer": "https://www.facebook.com/"}))]
pub struct TrackEventBody {
    #[schema(example = "page.viewed")]
    pub name: Option<String>,
    /// Your id for the event; an event with an id already accepted is dropped (safe retries).
    pub client_event_id: Option<String>,
    /// RFC 3339; the time of receipt when absent.
    pub timestamp: Option<String>,
    /// At least one of `anonymous_id` and `user_id`.
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    /// A JSON object. Emails and phone numbers in it are hashed before storage.
    #[schema(value_type = Object)]
    pub properties: Option<Value>,
    pub revenue: Option<RevenueBody>,
    pub utm: Option<UtmBody>,
    pub page_url: Option<String>,
    pub referrer: Option<String>,
}

/// `POST /v1/track/batch`. The write key may also come as `Authorization: Bearer wk_…`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"write_key": "wk_Jx3…", "events": [{"name": "page.viewed", "anonymous_id": "a8f3c2", "page_url": "https://shop.example.com/"}, {"name": "signup.started", "anonymous_id": "a8f3c2"}]}))]
pub struct TrackBatchBody {
    pub write_key: Option<String>,
    #[schema(value_type = Vec<TrackEventBody>)]
    pub events: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventErrorBody {
    #[schema(example = "analytics.identity_required")]
    pub code: String,
    /// In the caller's language.
    pub message: String,
    /// The offending field, e.g. `timestamp`.
    #[schema(example = "anonymous_id")]
    pub field: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventResultBody {
    /// Position of the event in the batch.
    pub index: u32,
    pub client_event_id: Option<String>,
    /// accepted, duplicate (accepted before; not stored twice) or rejected.
    #[schema(example = "accepted")]
    pub status: String,
    /// Why it was rejected.
    pub error: Option<EventErrorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackBatchResult {
    pub accepted: u32,
    pub rejected: u32,
    /// One per event, in order.
    pub results: Vec<EventResultBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackResultBody {
    /// accepted or duplicate.
    #[schema(example = "accepted")]
    pub status: String,
    pub client_event_id: String,
}

fn opt(s: Option<String>) -> String {
    s.unwrap_or_default()
}

fn to_proto(e: TrackEventBody) -> pb::TrackEvent {
    let utm = e.utm.unwrap_or_default();
    pb::TrackEvent {
        name: opt(e.name),
        client_event_id: opt(e.client_event_id),
        timestamp: opt(e.timestamp),
        anonymous_id: opt(e.anonymous_id),
        user_id: opt(e.user_id),
        properties_json: e.properties.map(|p| p.to_string()).unwrap_or_default(),
        revenue: e.revenue.map(|r| nexus_proto::common::Money { amount_minor: r.amount_minor, currency: r.currency }),
        utm: Some(pb::Utm {
            source: opt(utm.source),
            medium: opt(utm.medium),
            campaign: opt(utm.campaign),
            term: opt(utm.term),
            content: opt(utm.content),
        }),
        page_url: opt(e.page_url),
        referrer: opt(e.referrer),
    }
}

/// The write key: `Authorization: Bearer …` wins over the body's `write_key` field.
fn write_key(headers: &HeaderMap, body_key: Option<&str>) -> String {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    from_header.or_else(|| body_key.map(str::to_owned)).unwrap_or_default()
}

/// A batch whose every event is well-formed, read straight from the body in one pass (no
/// intermediate JSON tree). Anything else fails here and takes the event-by-event path, which
/// gives each malformed event its own result.
#[derive(Deserialize)]
struct WellFormedBatch {
    write_key: Option<String>,
    events: Vec<EventObject>,
}

/// An event that is a JSON object (a struct would also take an array).
struct EventObject(TrackEventBody);

impl<'de> Deserialize<'de> for EventObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = EventObject;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<EventObject, A::Error> {
                TrackEventBody::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(EventObject)
            }
        }
        d.deserialize_map(Object)
    }
}

fn origin(headers: &HeaderMap) -> String {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(512).collect()
}

/// Tracking calls go upstream without the caller's bearer: it is a write key, not a user token.
async fn tracking<F: std::future::Future>(f: F) -> F::Output {
    RequestContext { bearer: None, ..RequestContext::current() }.scope(f).await
}

fn parse_event(v: Value) -> Result<TrackEventBody, String> {
    if !v.is_object() {
        return Err("event".into());
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." { "event".into() } else { path }
    })
}

fn rejected(
    edge: &Edge,
    index: u32,
    id: Option<String>,
    code: &str,
    params: &[(String, String)],
    field: &str,
) -> EventResultBody {
    EventResultBody {
        index,
        client_event_id: id.filter(|s| !s.is_empty()),
        status: "rejected".into(),
        error: Some(EventErrorBody {
            code: code.to_owned(),
            message: nexus_i18n::error_message(edge.locale, code, params, 422),
            field: (!field.is_empty()).then(|| field.to_owned()),
        }),
    }
}

/// Track one event. Answers once the event is durably queued for storage.
#[utoipa::path(post, path = "/v1/track", tag = "analytics", security(("write_key" = [])), request_body = TrackEventBody,
    responses(
        (status = 202, description = "Accepted (or a duplicate of an accepted event)", body = TrackResultBody),
        (status = 401, description = "Missing or wrong write key", body = ErrorEnvelope),
        (status = 403, description = "Origin not allowed for this key", body = ErrorEnvelope),
        (status = 422, description = "Invalid event, with the reason", body = ErrorEnvelope),
        (status = 503, description = "Tracking unavailable; retry with the same client_event_id", body = ErrorEnvelope)))]
pub async fn track(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<TrackResultBody>), ApiError> {
    let value: Value = crate::extract::parse_json(&body)?;
    let key = write_key(&headers, value.get("write_key").and_then(Value::as_str));
    let event = parse_event(value).map_err(|field| {
        ApiError::new(ErrorKind::Unprocessable, "analytics.invalid_event")
            .with_param("detail", field.clone())
            .with_field(field, "invalid")
    })?;
    let req = pb::TrackRequest { write_key: key, origin: origin(&headers), event: Some(to_proto(event)) };
    let r = tracking(client(&state).track(req)).await?.into_inner();
    if r.status == "rejected" {
        let mut e = nexus_kernel::Error::new(ErrorKind::Unprocessable, r.code);
        for (k, v) in r.params {
            e = e.with_param(k, v);
        }
        if !r.field.is_empty() {
            e = e.with_violation(r.field, "invalid");
        }
        return Err(e.into());
    }
    Ok((StatusCode::ACCEPTED, Json(TrackResultBody { status: r.status, client_event_id: r.client_event_id })))
}

/// Track up to 500 events. Valid events are accepted even when others are not; every event
/// gets its own result. Retrying a batch is safe: accepted ids come back as `duplicate`.
#[utoipa::path(post, path = "/v1/track/batch", tag = "analytics", security(("write_key" = [])), request_body = TrackBatchBody,
    responses(
        (status = 200, description = "Per-event results", body = TrackBatchResult),
        (status = 401, description = "Missing or wrong write key", body = ErrorEnvelope),
        (status = 403, description = "Origin not allowed for this key", body = ErrorEnvelope),
        (status = 413, description = "More than 500 events, or body over the size limit", body = ErrorEnvelope),
        (status = 503, description = "Tracking unavailable; retry the batch", body = ErrorEnvelope)))]
pub async fn track_batch(
    State(state): State<AppState>,
    axum::Extension(edge): axum::Extension<Edge>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<TrackBatchResult>, ApiError> {
    let total;
    let key;
    let mut results: Vec<Option<EventResultBody>>;
    let (mut forwarded, mut positions) = (Vec::new(), Vec::new());
    if let Ok(batch) = serde_json::from_slice::<WellFormedBatch>(&body) {
        if batch.events.len() > MAX_BATCH {
            return Err(too_many_events());
        }
        total = batch.events.len();
        key = write_key(&headers, batch.write_key.as_deref());
        results = Vec::with_capacity(total);
        results.resize_with(total, || None);
        forwarded = batch.events.into_iter().map(|e| to_proto(e.0)).collect();
        positions = (0..total).collect();
    } else {
        let value: Value = crate::extract::parse_json(&body)?;
        key = write_key(&headers, value.get("write_key").and_then(Value::as_str));
        let events = match value {
            Value::Object(mut map) => map.remove("events"),
            _ => None,
        };
        let Some(Value::Array(items)) = events else {
            return Err(ApiError::new(ErrorKind::Unprocessable, "request.invalid_body")
                .with_param("detail", "events")
                .with_field("events", "invalid"));
        };
        if items.len() > MAX_BATCH {
            return Err(too_many_events());
        }
        total = items.len();
        results = Vec::with_capacity(total);
        results.resize_with(total, || None);
        for (i, item) in items.into_iter().enumerate() {
            let id = item.get("client_event_id").and_then(Value::as_str).map(str::to_owned);
            match parse_event(item) {
                Ok(e) => {
                    forwarded.push(to_proto(e));
                    positions.push(i);
                }
                Err(field) => {
                    let params = [("detail".to_owned(), field.clone())];
                    results[i] = Some(rejected(&edge, i as u32, id, "analytics.invalid_event", &params, &field));
                }
            }
        }
    }
    let req = pb::TrackBatchRequest { write_key: key, origin: origin(&headers), events: forwarded };
    let outcome = tracking(client(&state).track_batch(req)).await;
    match outcome {
        Ok(r) => {
            for res in r.into_inner().results {
                let Some(&i) = positions.get(res.index as usize) else { continue };
                let Some(slot) = results.get_mut(i) else { continue };
                let id = (!res.client_event_id.is_empty()).then_some(res.client_event_id);
                let body = if res.status == "rejected" {
                    let params: Vec<(String, String)> = res.params.into_iter().collect();
                    rejected(&edge, i as u32, id, &res.code, &params, &res.field)
                } else {
                    EventResultBody { index: i as u32, client_event_id: id, status: res.status, error: None }
                };
                *slot = Some(body);
            }
        }
        // Nothing well-formed to send: the key was still checked (it is, before emptiness).
        Err(status) if positions.is_empty() && total > 0 => {
            let e = nexus_platform::grpc::upstream_error(&status);
            if e.code() != "analytics.batch_empty" {
                return Err(e.into());
            }
        }
        Err(status) => return Err(status.into()),
    }
    let results: Vec<EventResultBody> = results.into_iter().flatten().collect();
    let rejected = results.iter().filter(|r| r.status == "rejected").count() as u32;
    Ok(Json(TrackBatchResult { accepted: results.len() as u32 - rejected, rejected, results }))
}

fn too_many_events() -> ApiError {
    ApiError::new(ErrorKind::PayloadTooLarge, "analytics.batch_too_large").with_param("max", MAX_BATCH.to_string())
}

// ---------- write key and settings ----------

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
    #[serde(default)]
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
    pub time_zone: Option<String>,
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

// ---------- reports ----------

fn range(from: Option<String>, to: Option<String>) -> Option<pb::TimeRange> {
    Some(pb::TimeRange { from: from.unwrap_or_default(), to: to.unwrap_or_default() })
}

fn page(limit: Option<u32>, cursor: Option<String>) -> Option<nexus_proto::common::PageRequest> {
    Some(nexus_proto::common::PageRequest { page_size: limit.unwrap_or(0), cursor: cursor.unwrap_or_default() })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeSeriesQuery {
    /// RFC 3339, inclusive; default 30 days before `to`.
    #[param(example = "2026-11-01T00:00:00Z")]
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    #[param(example = "2026-11-25T00:00:00Z")]
    pub to: Option<String>,
    /// hour, day (default) or week.
    #[param(example = "day")]
    pub interval: Option<String>,
    /// IANA zone for the buckets; default the workspace's.
    #[param(example = "America/Sao_Paulo")]
    pub tz: Option<String>,
    /// Only events with this name.
    #[param(example = "page.viewed")]
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
            range: range(q.from, q.to),
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
    #[param(example = "2026-11-01T00:00:00Z")]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z")]
    pub to: Option<String>,
    /// 2 to 10 event names, comma-separated, in order.
    #[param(example = "page.viewed,signup.started,signup.completed")]
    pub steps: String,
    /// Seconds from step 1 within which the later steps count; default 7 days, at most 90.
    #[param(example = 86400)]
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
        .funnel(pb::FunnelRequest { range: range(q.from, q.to), steps, window_seconds: q.window.unwrap_or(0) })
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
    #[param(example = "2026-11-01T00:00:00Z")]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z")]
    pub to: Option<String>,
    /// day (default), week or month.
    #[param(example = "week")]
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

fn money(m: nexus_proto::common::Money) -> MoneyBody {
    MoneyBody { amount_minor: m.amount_minor, currency: m.currency }
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
            range: range(q.from, q.to),
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
                total: p.total.map(money),
                events: p.events,
            })
            .collect(),
        totals: r.totals.into_iter().map(money).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakdownQuery {
    #[param(example = "2026-11-01T00:00:00Z")]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z")]
    pub to: Option<String>,
    /// Only events with this name (property and UTM breakdowns).
    #[param(example = "order.completed")]
    pub event: Option<String>,
    /// Property to group by (property breakdown).
    #[param(example = "plan")]
    pub property: Option<String>,
    /// source (default), medium, campaign, term or content (UTM breakdown).
    #[param(example = "campaign")]
    pub dimension: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20)]
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
        next_cursor: r.page.map(|p| p.next_cursor).filter(|c| !c.is_empty()),
    }
}

/// The most frequent events.
#[utoipa::path(get, path = "/v1/analytics/top-events", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(BreakdownQuery),
    responses((status = 200, description = "Events by count", body = BreakdownBody), (status = 400, description = "Bad page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn top_events(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<BreakdownQuery>,
) -> Result<Json<BreakdownBody>, ApiError> {
    let r = client(&state)
        .top_events(pb::TopEventsRequest { range: range(q.from, q.to), page: page(q.limit, q.cursor) })
        .await?
        .into_inner();
    Ok(Json(breakdown(r)))
}

/// Events grouped by the value of one property.
#[utoipa::path(get, path = "/v1/analytics/properties", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(BreakdownQuery),
    responses((status = 200, description = "Values by count", body = BreakdownBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "No or bad property name", body = ErrorEnvelope)))]
pub async fn property_breakdown(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<BreakdownQuery>,
) -> Result<Json<BreakdownBody>, ApiError> {
    let r = client(&state)
        .property_breakdown(pb::PropertyBreakdownRequest {
            range: range(q.from, q.to),
            event: q.event.unwrap_or_default(),
            property: q.property.unwrap_or_default(),
            page: page(q.limit, q.cursor),
        })
        .await?
        .into_inner();
    Ok(Json(breakdown(r)))
}

/// Events grouped by a UTM field.
#[utoipa::path(get, path = "/v1/analytics/utm", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(BreakdownQuery),
    responses((status = 200, description = "UTM values by count", body = BreakdownBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Unknown dimension", body = ErrorEnvelope)))]
pub async fn utm_breakdown(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<BreakdownQuery>,
) -> Result<Json<BreakdownBody>, ApiError> {
    let r = client(&state)
        .utm_breakdown(pb::UtmBreakdownRequest {
            range: range(q.from, q.to),
            dimension: q.dimension.unwrap_or_default(),
            event: q.event.unwrap_or_default(),
            page: page(q.limit, q.cursor),
        })
        .await?
        .into_inner();
    Ok(Json(breakdown(r)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    #[param(example = "2026-11-01T00:00:00Z")]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z")]
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
    let r = client(&state).feature_usage(pb::FeatureUsageRequest { range: range(q.from, q.to) }).await?.into_inner();
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

// ---------- audit ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Who made the change: a user id, `key:<id>` for an API key, or `system`.
    #[param(example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub actor: Option<String>,
    /// `<service>.<table>`.
    #[param(example = "auth.memberships")]
    pub resource_type: Option<String>,
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")]
    pub resource_id: Option<String>,
    #[param(example = "2026-11-01T00:00:00Z")]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z")]
    pub to: Option<String>,
    #[param(example = 20)]
    pub limit: Option<u32>,
    #[param(example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyIn0")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryBody {
    #[schema(example = "log_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub at: Option<String>,
    pub actor: String,
    /// insert, update, delete, or a system action such as retention.purge.
    #[schema(example = "update")]
    pub action: String,
    #[schema(example = "auth")]
    pub service: String,
    #[schema(example = "auth.memberships")]
    pub resource_type: String,
    pub resource_id: String,
    /// The row before and after; secret columns left out, personal data hashed.
    #[schema(value_type = Object)]
    pub before: Option<Value>,
    #[schema(value_type = Object)]
    pub after: Option<Value>,
    /// Truncated (IPv4 /24, IPv6 /48).
    #[schema(example = "203.0.113.0")]
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageBody {
    /// Newest first.
    pub items: Vec<AuditEntryBody>,
    pub next_cursor: Option<String>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The workspace's audit trail: every change made through any service, searchable by actor,
/// resource and time.
#[utoipa::path(get, path = "/v1/audit", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(AuditQuery),
    responses((status = 200, description = "Audit entries", body = AuditPageBody), (status = 400, description = "Bad page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad range", body = ErrorEnvelope)))]
pub async fn audit(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageBody>, ApiError> {
    let r = client(&state)
        .search_audit(pb::AuditSearchRequest {
            actor: q.actor.unwrap_or_default(),
            resource_type: q.resource_type.unwrap_or_default(),
            resource_id: q.resource_id.unwrap_or_default(),
            range: range(q.from, q.to),
            page: page(q.limit, q.cursor),
        })
        .await?
        .into_inner();
    let json = |s: String| non_empty(s).and_then(|s| serde_json::from_str(&s).ok());
    Ok(Json(AuditPageBody {
        items: r
            .items
            .into_iter()
            .map(|e| AuditEntryBody {
                id: e.id,
                at: ts(e.at),
                actor: e.actor,
                action: e.action,
                service: e.service,
                resource_type: e.resource_type,
                resource_id: e.resource_id,
                before: json(e.before_json),
                after: json(e.after_json),
                ip: non_empty(e.ip),
                request_id: non_empty(e.request_id),
            })
            .collect(),
        next_cursor: r.page.map(|p| p.next_cursor).filter(|c| !c.is_empty()),
    }))
}

// ---------- fleet ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStatusBody {
    #[schema(example = "subscriptions")]
    pub name: String,
    /// up, degraded (alive, not ready) or down (unreachable).
    #[schema(example = "up")]
    pub status: String,
    /// Requests per second over the last scrape interval.
    #[schema(example = 42.5)]
    pub request_rate: Option<f64>,
    /// Share of requests that failed on the server side (0..1).
    #[schema(example = 0.002)]
    pub error_rate: Option<f64>,
    #[schema(example = 18.4)]
    pub p95_latency_ms: Option<f64>,
    pub checked_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetStatusBody {
    pub services: Vec<ServiceStatusBody>,
    #[schema(example = 15)]
    pub scrape_interval_seconds: u32,
}

/// Every service's health, request rate, error rate and p95 latency (platform operators only).
#[utoipa::path(get, path = "/v1/fleet/status", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "Fleet status", body = FleetStatusBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 403, description = "Not a platform operator", body = ErrorEnvelope), (status = 503, description = "Analytics unavailable", body = ErrorEnvelope)))]
pub async fn fleet_status(State(state): State<AppState>, _a: Authenticated) -> Result<Json<FleetStatusBody>, ApiError> {
    let r = client(&state).fleet_status(pb::Empty {}).await?.into_inner();
    Ok(Json(FleetStatusBody {
        services: r
            .services
            .into_iter()
            .map(|s| ServiceStatusBody {
                name: s.name,
                status: s.status,
                request_rate: s.request_rate,
                error_rate: s.error_rate,
                p95_latency_ms: s.p95_latency_ms,
                checked_at: ts(s.checked_at),
                error: non_empty(s.error),
            })
            .collect(),
        scrape_interval_seconds: r.scrape_interval_seconds,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_batches_of_event_objects_take_the_one_pass_path() {
        let ok = br#"{"write_key": "wk_x", "events": [{"name": "a", "anonymous_id": "b", "properties": {"p": 1}}]}"#;
        let batch = serde_json::from_slice::<WellFormedBatch>(ok).unwrap();
        assert_eq!(batch.write_key.as_deref(), Some("wk_x"));
        assert_eq!(batch.events[0].0.name.as_deref(), Some("a"));
        assert_eq!(batch.events[0].0.properties, Some(serde_json::json!({"p": 1})));
        // A struct would take an array in field order; an event must be an object.
        for other in [
            r#"{"events": [["a", "id"]]}"#,
            r#"{"events": ["not an object"]}"#,
            r#"{"events": [{"name": 5}]}"#,
            r#"{"events": {}}"#,
            r#"{"write_key": 7, "events": []}"#,
        ] {
            assert!(serde_json::from_str::<WellFormedBatch>(other).is_err(), "{other}");
        }
    }
}
