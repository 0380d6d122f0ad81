//! `/v1/whatsapp/broadcasts`: an approved template to a segment's contacts (with WhatsApp
//! marketing consent), now or scheduled; each contact gets it at most once. Pause, resume,
//! cancel, progress and per-recipient results.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, next_cursor, page_request, proto_ts, ts, whatsapp_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_broadcast, list_broadcasts))
        .routes(routes!(get_broadcast))
        .routes(routes!(pause_broadcast))
        .routes(routes!(resume_broadcast))
        .routes(routes!(cancel_broadcast))
        .routes(routes!(list_recipients))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "segment_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa",
    "template_name": "spring_sale", "language": "en_US", "params": ["name", "field:tier", "text:20%"],
    "scheduled_at": "2026-12-07T09:00:00Z", "rate": 40}))]
pub struct BroadcastRequest {
    pub number_id: String,
    pub segment_id: String,
    /// An approved template of the number.
    #[schema(max_length = 512)]
    pub template_name: String,
    #[schema(max_length = 16)]
    pub language: String,
    /// One source per template parameter (at most 20): `name`, `phone`, `field:<key>` (a custom
    /// field's key) or `text:<literal>` (one line, not blank, up to 1,024 characters).
    #[serde(default)]
    #[schema(schema_with = crate::openapi::vocab::broadcast_params)]
    pub params: Vec<String>,
    /// When to start; absent: now.
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Messages per second from the number; absent: the configured default (80).
    #[schema(minimum = 1, maximum = 1000)]
    pub rate: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastTotalsBody {
    pub total: i64,
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub replied: i64,
    /// Meta may or may not have sent these (the process stopped during the call); never resent.
    pub unknown: i64,
    pub canceled: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0cb01", "number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7",
    "template_name": "spring_sale", "language": "en_US", "status": "running", "scheduled_at": "2026-12-07T09:00:00+00:00",
    "rate": 40, "totals": {"total": 1200, "queued": 400, "sending": 2, "sent": 790, "delivered": 700, "read": 310,
    "failed": 8, "replied": 12, "unknown": 0, "canceled": 0}, "credits_held": 1200,
    "created_at": "2026-12-06T18:00:00+00:00", "finished_at": null}))]
pub struct BroadcastBody {
    pub id: String,
    pub number_id: String,
    pub template_name: String,
    pub language: String,
    /// scheduled, running, paused, canceled or finished.
    pub status: String,
    pub scheduled_at: Option<String>,
    pub rate: i32,
    pub totals: Option<BroadcastTotalsBody>,
    /// Credits held at creation; each sent message is charged when the broadcast ends.
    pub credits_held: i64,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastList {
    pub items: Vec<BroadcastBody>,
    pub next_cursor: Option<String>,
}

fn broadcast(b: pb::Broadcast) -> BroadcastBody {
    BroadcastBody {
        id: b.id,
        number_id: b.number_id,
        template_name: b.template_name,
        language: b.language,
        status: b.status,
        scheduled_at: ts(b.scheduled_at),
        rate: b.rate,
        totals: b.totals.map(|t| BroadcastTotalsBody {
            total: t.total,
            queued: t.queued,
            sending: t.sending,
            sent: t.sent,
            delivered: t.delivered,
            read: t.read,
            failed: t.failed,
            replied: t.replied,
            unknown: t.unknown,
            canceled: t.canceled,
        }),
        credits_held: b.credits_held,
        created_at: ts(b.created_at),
        finished_at: ts(b.finished_at),
    }
}

/// Broadcast an approved template to a segment, now or at `scheduled_at`. The credits of every
/// recipient are held now; each sent message is charged when the broadcast ends.
#[utoipa::path(post, path = "/v1/whatsapp/broadcasts", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    request_body = BroadcastRequest,
    responses((status = 201, description = "Scheduled", body = BroadcastBody),
        (status = 400, description = "A parameter source or the rate is invalid", body = ErrorEnvelope),
        (status = 402, description = "Not enough credits for every recipient", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number, segment or template in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The template is not approved or takes another number of parameters, or no contact of the segment can receive it", body = ErrorEnvelope)))]
pub async fn create_broadcast(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<BroadcastRequest>,
) -> Result<(StatusCode, Json<BroadcastBody>), ApiError> {
    let req = pb::BroadcastInput {
        number_id: b.number_id,
        segment_id: b.segment_id,
        template_name: b.template_name,
        language: b.language,
        params: b.params,
        scheduled_at: b.scheduled_at.map(proto_ts),
        rate: b.rate.unwrap_or(0),
    };
    Ok((StatusCode::CREATED, Json(broadcast(client(&state).create_broadcast(req).await?.into_inner()))))
}

/// The workspace's broadcasts, newest first, with their progress.
#[utoipa::path(get, path = "/v1/whatsapp/broadcasts", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of broadcasts", body = BroadcastList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_broadcasts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<BroadcastList>, ApiError> {
    let r = client(&state).list_broadcasts(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(BroadcastList {
        items: r.broadcasts.into_iter().map(broadcast).collect(),
        next_cursor: next_cursor(r.page),
    }))
}

/// One broadcast with its progress.
#[utoipa::path(get, path = "/v1/whatsapp/broadcasts/{id}", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0cb01")),
    responses((status = 200, description = "The broadcast", body = BroadcastBody),
        (status = 404, description = "No such broadcast in this workspace", body = ErrorEnvelope)))]
pub async fn get_broadcast(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BroadcastBody>, ApiError> {
    Ok(Json(broadcast(client(&state).get_broadcast(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Pause a scheduled or running broadcast (messages under way finish).
#[utoipa::path(post, path = "/v1/whatsapp/broadcasts/{id}/pause", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0cb01")),
    responses((status = 200, description = "Paused", body = BroadcastBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such broadcast in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Not scheduled or running", body = ErrorEnvelope)))]
pub async fn pause_broadcast(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BroadcastBody>, ApiError> {
    Ok(Json(broadcast(client(&state).pause_broadcast(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Resume a paused broadcast.
#[utoipa::path(post, path = "/v1/whatsapp/broadcasts/{id}/resume", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0cb01")),
    responses((status = 200, description = "Running again", body = BroadcastBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such broadcast in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Not paused", body = ErrorEnvelope)))]
pub async fn resume_broadcast(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BroadcastBody>, ApiError> {
    Ok(Json(broadcast(client(&state).resume_broadcast(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Cancel a broadcast: recipients not yet sent to never are; their credits are given back.
#[utoipa::path(post, path = "/v1/whatsapp/broadcasts/{id}/cancel", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0cb01")),
    responses((status = 200, description = "Canceled", body = BroadcastBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such broadcast in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Finished or canceled already", body = ErrorEnvelope)))]
pub async fn cancel_broadcast(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BroadcastBody>, ApiError> {
    Ok(Json(broadcast(client(&state).cancel_broadcast(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipientsQuery {
    /// The last `contact_id` of the previous page.
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")]
    pub after: Option<String>,
    /// 1 to 1,000; default 1,000.
    #[param(example = 100, minimum = 1, maximum = 1000)]
    pub limit: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa", "state": "sent", "attempts": 1,
    "error_code": null, "message_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0ca01"}))]
pub struct BroadcastRecipientBody {
    pub contact_id: String,
    /// queued, sending, sent, failed, unknown or canceled.
    pub state: String,
    pub attempts: i32,
    /// Meta's error code of a failure.
    pub error_code: Option<i64>,
    pub message_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastRecipientList {
    pub items: Vec<BroadcastRecipientBody>,
}

/// Per-recipient results, by contact id.
#[utoipa::path(get, path = "/v1/whatsapp/broadcasts/{id}/recipients", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0cb01"), RecipientsQuery),
    responses((status = 200, description = "Recipients and how their message went", body = BroadcastRecipientList),
        (status = 404, description = "No such broadcast in this workspace", body = ErrorEnvelope)))]
pub async fn list_recipients(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecipientsQuery>,
) -> Result<Json<BroadcastRecipientList>, ApiError> {
    let req = pb::BroadcastRecipientsRequest {
        broadcast_id: id,
        after: q.after.unwrap_or_default(),
        limit: q.limit.unwrap_or(1_000),
    };
    let r = client(&state).list_broadcast_recipients(req).await?.into_inner();
    Ok(Json(BroadcastRecipientList {
        items: r
            .recipients
            .into_iter()
            .map(|x| BroadcastRecipientBody {
                contact_id: x.contact_id,
                state: x.state,
                attempts: x.attempts,
                error_code: (x.error_code != 0).then_some(x.error_code),
                message_id: (!x.message_id.is_empty()).then_some(x.message_id),
            })
            .collect(),
    }))
}
