//! `/v1/webhook-endpoints` and `/v1/webhook-messages`: outbound webhooks to the workspace's own
//! systems (messaging) — endpoints, their signing secrets, the event catalogue, messages,
//! delivery attempts, replays and test sends.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, next_cursor, non_empty as opt, page_request, paging, ts, webhooks_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_event_types))
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(replay))
        .routes(routes!(list_attempts))
        .routes(routes!(list_messages))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeBody {
    #[schema(example = "contact.created")]
    pub name: String,
    pub description: String,
    /// JSON Schema of the message's `data`.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// An example message payload.
    #[schema(value_type = Object)]
    pub example: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub items: Vec<EventTypeBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "url": "https://hooks.example.com/nexus",
    "description": "CRM sync", "event_types": ["contact.*"], "rate_limit": 10, "status": "enabled",
    "created_at": "2026-11-25T10:00:00+00:00", "updated_at": "2026-11-25T10:00:00+00:00"}))]
pub struct EndpointBody {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Event types or `prefix.*`; empty: every type.
    pub event_types: Vec<String>,
    /// Deliveries per second at most.
    pub rate_limit: u32,
    /// enabled or disabled.
    pub status: String,
    /// Why it was disabled (it failed for five days).
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    pub failing_since: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub items: Vec<EndpointBody>,
    pub next_cursor: Option<String>,
}

/// An endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpointBody {
    pub endpoint: EndpointBody,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

fn endpoint(e: pb::Endpoint) -> EndpointBody {
    EndpointBody {
        id: e.id,
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        rate_limit: e.rate_limit,
        status: e.status,
        disabled_reason: opt(e.disabled_reason),
        failing_since: ts(e.failing_since),
        created_at: ts(e.created_at),
        updated_at: ts(e.updated_at),
    }
}

fn created(c: pb::CreatedEndpoint) -> CreatedEndpointBody {
    CreatedEndpointBody { endpoint: endpoint(c.endpoint.unwrap_or_default()), secret: c.secret }
}

/// The platform's public events an endpoint can subscribe to, each with its JSON Schema.
#[utoipa::path(get, path = "/v1/webhook-endpoints/event-types", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The catalogue", body = EventTypeList)))]
pub async fn list_event_types(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<EventTypeList>, ApiError> {
    let r = client(&state).list_event_types(pb::Empty {}).await?.into_inner();
    let json = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
    Ok(Json(EventTypeList {
        items: r
            .items
            .into_iter()
            .map(|t| EventTypeBody {
                schema: json(&t.schema_json),
                example: json(&t.example_json),
                name: t.name,
                description: t.description,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/nexus", "description": "CRM sync", "event_types": ["contact.*", "page.lead_captured"], "rate_limit": 10}))]
pub struct EndpointRequest {
    /// `https://` on a public address (private, loopback and link-local addresses are refused).
    #[schema(max_length = 2048, example = "https://hooks.example.com/nexus")]
    pub url: String,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Event types or `prefix.*` from the catalogue; empty or absent: every type.
    #[schema(max_items = 100)]
    pub event_types: Option<Vec<String>>,
    /// Deliveries per second at most, 1 to 1000; default 10.
    #[schema(minimum = 1, maximum = 1000)]
    pub rate_limit: Option<u32>,
}

/// Add an endpoint. Its signing secret is in the answer, and only there.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    request_body = EndpointRequest,
    responses((status = 201, description = "The endpoint and its secret", body = CreatedEndpointBody),
        (status = 400, description = "Invalid URL, description, event type or rate limit", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 422, description = "The URL's host is a private, loopback or link-local address, or does not resolve", body = ErrorEnvelope)))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<CreatedEndpointBody>), ApiError> {
    let req = pb::EndpointInput {
        url: b.url,
        description: b.description.unwrap_or_default(),
        event_types: b.event_types.unwrap_or_default(),
        rate_limit: b.rate_limit,
    };
    Ok((StatusCode::CREATED, Json(created(client(&state).create_endpoint(req).await?.into_inner()))))
}

/// The workspace's endpoints, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of endpoints", body = EndpointList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope)))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<EndpointList>, ApiError> {
    let r = client(&state).list_endpoints(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(EndpointList { items: r.items.into_iter().map(endpoint).collect(), next_cursor: next_cursor(r.page) }))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The endpoint", body = EndpointBody), (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorEnvelope)))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EndpointBody>, ApiError> {
    Ok(Json(endpoint(client(&state).get_endpoint(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_types": ["contact.created"], "enabled": true}))]
pub struct EndpointPatch {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(max_items = 100)]
    pub event_types: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 1000)]
    pub rate_limit: Option<u32>,
    /// `true` re-enables a disabled endpoint (its failure clock starts again).
    pub enabled: Option<bool>,
}

/// Change the attributes present in the body; `enabled: true` re-enables a disabled endpoint.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = EndpointPatch,
    responses((status = 200, description = "The endpoint", body = EndpointBody), (status = 400, description = "Invalid URL, description, event type or rate limit", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorEnvelope),
        (status = 422, description = "The URL's host is a private, loopback or link-local address, or does not resolve", body = ErrorEnvelope)))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointBody>, ApiError> {
    let present = [
        ("url", b.url.is_some()),
        ("description", b.description.is_some()),
        ("event_types", b.event_types.is_some()),
        ("rate_limit", b.rate_limit.is_some()),
    ];
    let update_mask: Vec<String> = present.iter().filter(|(_, p)| *p).map(|(n, _)| (*n).to_owned()).collect();
    let input = (!update_mask.is_empty()).then(|| pb::EndpointInput {
        url: b.url.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
        event_types: b.event_types.unwrap_or_default(),
        rate_limit: b.rate_limit,
    });
    let req = pb::UpdateEndpointRequest { id, endpoint: input, update_mask, enable: b.enabled == Some(true) };
    Ok(Json(endpoint(client(&state).update_endpoint(req).await?.into_inner())))
}

/// Delete an endpoint; its pending deliveries are cancelled.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorEnvelope)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_endpoint(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret; the previous one keeps signing alongside it for 24 hours.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The endpoint and its new secret", body = CreatedEndpointBody), (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorEnvelope)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CreatedEndpointBody>, ApiError> {
    Ok(Json(created(client(&state).rotate_secret(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookMessageBody {
    pub id: String,
    #[schema(example = "contact.created")]
    pub event_type: String,
    /// The payload delivered (`{"type", "timestamp", "data"}`).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookMessageList {
    pub items: Vec<WebhookMessageBody>,
    pub next_cursor: Option<String>,
}

fn message(m: pb::Message) -> WebhookMessageBody {
    WebhookMessageBody {
        id: m.id,
        event_type: m.event_type,
        payload: serde_json::from_str(&m.payload_json).unwrap_or(serde_json::Value::Null),
        created_at: ts(m.created_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_type": "contact.created"}))]
pub struct TestRequest {
    /// A type of the catalogue; its example is sent.
    #[schema(max_length = 100)]
    pub event_type: String,
}

/// Send the catalogue's example of an event type to this endpoint, signed and retried like any
/// message.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/test", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = TestRequest,
    responses((status = 202, description = "The test message, scheduled for delivery", body = WebhookMessageBody), (status = 400, description = "Unknown event type", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The endpoint is disabled", body = ErrorEnvelope)))]
pub async fn send_test(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<TestRequest>,
) -> Result<(StatusCode, Json<WebhookMessageBody>), ApiError> {
    let req = pb::SendTestRequest { endpoint_id: id, event_type: b.event_type };
    Ok((StatusCode::ACCEPTED, Json(message(client(&state).send_test(req).await?.into_inner()))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": "2026-11-24T00:00:00Z"}))]
pub struct ReplayRequest {
    /// One message to deliver again; or, absent, every message since `since`.
    pub message_id: Option<String>,
    /// RFC 3339, at most 30 days back (the messages kept).
    #[schema(format = DateTime)]
    pub since: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayBody {
    /// Deliveries scheduled.
    pub scheduled: i64,
}

/// Deliver one message again to this endpoint, or every message since a time it subscribes to.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/replay", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = ReplayRequest,
    responses((status = 202, description = "Deliveries scheduled", body = ReplayBody), (status = 400, description = "Neither a message nor a valid time within 30 days", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint or message in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The endpoint is disabled", body = ErrorEnvelope)))]
pub async fn replay(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, Json<ReplayBody>), ApiError> {
    let since = match b.since.as_deref() {
        None => None,
        Some(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
                ApiError::new(nexus_kernel::ErrorKind::InvalidArgument, "messaging.webhook_replay_since_invalid")
            })?;
            Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
        }
    };
    let req = pb::ReplayRequest { endpoint_id: id, message_id: b.message_id.unwrap_or_default(), since };
    let r = client(&state).replay(req).await?.into_inner();
    Ok((StatusCode::ACCEPTED, Json(ReplayBody { scheduled: r.scheduled })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptBody {
    pub id: String,
    pub endpoint_id: String,
    pub message_id: String,
    /// 1 for the first try.
    pub attempt: i32,
    /// delivered, status, redirect, timeout, network or refused.
    pub outcome: String,
    /// The HTTP status answered (absent when none came).
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// At most 1 KiB of the answer.
    pub response_body: String,
    /// The headers sent (webhook-id, webhook-timestamp, webhook-signature, content-type).
    #[schema(value_type = Object)]
    pub request_headers: serde_json::Value,
    /// Hex SHA-256 of the body sent.
    pub request_body_sha256: String,
    pub started_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    pub items: Vec<AttemptBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// Only the attempts of one message.
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d9")]
    pub message_id: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyZjBjNS1jMmI4LTdjMzEtYTFmMS1lNGYyYjFhMGM5ZDcifQ"
    )]
    pub cursor: Option<String>,
}

/// Delivery attempts to this endpoint (kept 30 days), newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/attempts", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"), AttemptsQuery),
    responses((status = 200, description = "A page of attempts", body = AttemptList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorEnvelope)))]
pub async fn list_attempts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<AttemptList>, ApiError> {
    let req = pb::ListAttemptsRequest {
        endpoint_id: id,
        message_id: q.message_id.unwrap_or_default(),
        page: paging(q.limit, q.cursor),
    };
    let r = client(&state).list_attempts(req).await?.into_inner();
    let items = r
        .items
        .into_iter()
        .map(|a| AttemptBody {
            id: a.id,
            endpoint_id: a.endpoint_id,
            message_id: a.message_id,
            attempt: a.attempt,
            outcome: a.outcome,
            status_code: (a.status_code > 0).then_some(a.status_code),
            duration_ms: a.duration_ms,
            response_body: a.response_body,
            request_headers: serde_json::from_str(&a.request_headers_json).unwrap_or(serde_json::Value::Null),
            request_body_sha256: a.request_body_sha256,
            started_at: ts(a.started_at),
        })
        .collect();
    Ok(Json(AttemptList { items, next_cursor: next_cursor(r.page) }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages of one event type.
    #[param(example = "contact.created", max_length = 100)]
    pub event_type: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyZjBjNS1jMmI4LTdjMzEtYTFmMS1lNGYyYjFhMGM5ZDcifQ"
    )]
    pub cursor: Option<String>,
}

/// The workspace's webhook messages (kept 30 days), newest first.
#[utoipa::path(get, path = "/v1/webhook-messages", tag = "webhook-endpoints", security(("bearer" = []), ("api_key" = [])), params(MessagesQuery),
    responses((status = 200, description = "A page of messages", body = WebhookMessageList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage webhooks", body = ErrorEnvelope)))]
pub async fn list_messages(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<WebhookMessageList>, ApiError> {
    let event_type = q.event_type.unwrap_or_default();
    if event_type.chars().count() > 100 {
        return Err(ApiError::new(nexus_kernel::ErrorKind::InvalidArgument, "request.invalid_query")
            .with_param("detail", "event_type: at most 100 characters"));
    }
    let req = pb::ListMessagesRequest { event_type, page: paging(q.limit, q.cursor) };
    let r = client(&state).list_messages(req).await?.into_inner();
    Ok(Json(WebhookMessageList { items: r.items.into_iter().map(message).collect(), next_cursor: next_cursor(r.page) }))
}
