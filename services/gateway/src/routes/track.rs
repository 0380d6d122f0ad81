//! `/v1/track` and `/v1/track/batch`: event tracking, authenticated by the workspace's browser
//! write key, not a user token. Each event's shape is checked here so one malformed event never
//! sinks a batch; the analytics service checks the rest and answers per event.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use nexus_kernel::ErrorKind;
use nexus_platform::RequestContext;
use nexus_proto::nexus::analytics::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::analytics_client as client;
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::RawBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(track)).routes(routes!(track_batch))
}

/// Most events one batch may carry (the analytics service enforces its own limit too).
pub const MAX_BATCH: usize = 500;

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
    #[schema(value_type = Option<Object>)]
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
    /// 1 to 500 events (more is 413). Each event has the shape of `POST /v1/track`'s body and is checked on its own: a bad
    /// one (of any JSON type) is answered in `results`, the rest are still accepted.
    #[schema(value_type = Vec<Value>, min_items = 1)]
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
        key = write_key(&headers, body_write_key(&value)?);
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

/// The body's `write_key`: absent or null is none; any other non-string is refused even when the
/// header carries the key, as the field's type says.
fn body_write_key(body: &Value) -> Result<Option<&str>, ApiError> {
    match body.get("write_key") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(key)) => Ok(Some(key)),
        Some(_) => Err(ApiError::new(ErrorKind::Unprocessable, "request.invalid_body")
            .with_param("detail", "write_key")
            .with_field("write_key", "invalid")),
    }
}

fn too_many_events() -> ApiError {
    ApiError::new(ErrorKind::PayloadTooLarge, "analytics.batch_too_large").with_param("max", MAX_BATCH.to_string())
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
