//! `/v1/whatsapp/numbers`: WhatsApp Business numbers of the workspace (Meta's Cloud API, or a
//! `local` sandbox number in development), and the simulator that plays Meta delivering an
//! inbound message or a status to a sandbox number through the signed webhook path.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ts, whatsapp_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Authenticated;

/// The simulator's body may carry a 1 MiB file in base64 (4/3 of it) besides the message.
const SIMULATE_BODY_LIMIT: usize = 2 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connect_number, list_numbers))
        .routes(routes!(get_number, disconnect_number))
        .routes(routes!(refresh_number))
        .merge(OpenApiRouter::new().routes(routes!(simulate)).layer(DefaultBodyLimit::max(SIMULATE_BODY_LIMIT)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"waba_id": "102290129340398", "phone_number_id": "106540352242922",
    "display_phone_number": "+1 555 078 3881", "access_token": "EAAG…"}))]
pub struct ConnectNumberRequest {
    /// The WhatsApp Business Account id (digits).
    #[schema(max_length = 64, pattern = "^[0-9]{1,64}$")]
    pub waba_id: String,
    /// Meta's id of the phone number (digits); a number belongs to one workspace only.
    #[schema(max_length = 64, pattern = "^[0-9]{1,64}$")]
    pub phone_number_id: String,
    /// As customers see it (not blank, no control characters).
    #[schema(max_length = 32, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub display_phone_number: String,
    /// A Meta system-user token, sealed at rest and never returned. Absent or empty connects a
    /// `local` sandbox number (development only).
    #[schema(max_length = 1024, pattern = r"^\S*$")]
    pub access_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "waba_id": "102290129340398",
    "phone_number_id": "106540352242922", "display_phone_number": "+1 555 078 3881", "provider": "meta",
    "quality_rating": "GREEN", "messaging_tier": "TIER_1K", "created_at": "2026-12-06T09:00:00+00:00",
    "quality_checked_at": "2026-12-06T15:00:00+00:00"}))]
pub struct WhatsAppNumberBody {
    pub id: String,
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// meta or local.
    pub provider: String,
    /// GREEN, YELLOW, RED or UNKNOWN, as Meta reports it.
    pub quality_rating: String,
    /// Meta's messaging limit tier, e.g. TIER_250, TIER_1K, TIER_10K.
    pub messaging_tier: String,
    pub created_at: Option<String>,
    /// When the rating and tier were last read from Meta (on connect, every few hours, on
    /// demand with `/refresh`, and soon after Meta reports a change).
    pub quality_checked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhatsAppNumberList {
    pub items: Vec<WhatsAppNumberBody>,
}

fn number(n: pb::WhatsAppNumber) -> WhatsAppNumberBody {
    WhatsAppNumberBody {
        id: n.id,
        waba_id: n.waba_id,
        phone_number_id: n.phone_number_id,
        display_phone_number: n.display_phone_number,
        provider: n.provider,
        quality_rating: n.quality_rating,
        messaging_tier: n.messaging_tier,
        created_at: ts(n.created_at),
        quality_checked_at: ts(n.quality_checked_at),
    }
}

/// Connect a WhatsApp Business number (owners and admins). The plan limits how many (FREE 1,
/// PRO 5, PREMIUM 20). A Meta number's quality rating and tier are read from Meta first: a token
/// or id Meta refuses connects nothing.
#[utoipa::path(post, path = "/v1/whatsapp/numbers", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    request_body = ConnectNumberRequest,
    responses((status = 201, description = "Connected", body = WhatsAppNumberBody),
        (status = 400, description = "Ids not digits, display number empty or too long, token missing outside development, a token Meta refuses, or a phone number id Meta does not know", body = ErrorEnvelope),
        (status = 403, description = "Only owners and admins connect numbers", body = ErrorEnvelope),
        (status = 409, description = "The plan's limit on numbers is reached, the number is connected already, or Meta refused the number for another reason", body = ErrorEnvelope),
        (status = 503, description = "Meta did not answer; nothing was connected", body = ErrorEnvelope)))]
pub async fn connect_number(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<ConnectNumberRequest>,
) -> Result<(StatusCode, Json<WhatsAppNumberBody>), ApiError> {
    let req = pb::ConnectNumberRequest {
        waba_id: b.waba_id,
        phone_number_id: b.phone_number_id,
        display_phone_number: b.display_phone_number,
        access_token: b.access_token.unwrap_or_default(),
    };
    Ok((StatusCode::CREATED, Json(number(client(&state).connect_number(req).await?.into_inner()))))
}

/// The workspace's numbers, oldest first, with their quality rating and messaging tier.
#[utoipa::path(get, path = "/v1/whatsapp/numbers", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The numbers", body = WhatsAppNumberList),
        (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_numbers(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<WhatsAppNumberList>, ApiError> {
    let r = client(&state).list_numbers(pb::Empty {}).await?.into_inner();
    Ok(Json(WhatsAppNumberList { items: r.numbers.into_iter().map(number).collect() }))
}

/// One number.
#[utoipa::path(get, path = "/v1/whatsapp/numbers/{id}", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The number", body = WhatsAppNumberBody),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope)))]
pub async fn get_number(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WhatsAppNumberBody>, ApiError> {
    Ok(Json(number(client(&state).get_number(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Disconnect a number (owners and admins): its scheduled, running and paused broadcasts are
/// canceled (credits not spent given back), its bot removed and its token wiped. Its messages
/// and conversations stay readable; it no longer counts toward the plan and may be connected
/// again, here or in another workspace.
#[utoipa::path(delete, path = "/v1/whatsapp/numbers/{id}", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 204, description = "Disconnected"),
        (status = 403, description = "Only owners and admins disconnect numbers", body = ErrorEnvelope),
        (status = 404, description = "No such connected number in this workspace", body = ErrorEnvelope)))]
pub async fn disconnect_number(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).disconnect_number(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read the number's quality rating and messaging tier from Meta now.
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{id}/refresh", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The number with its standing as just read", body = WhatsAppNumberBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such connected number in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Meta refused the number's token or id; connect it again", body = ErrorEnvelope),
        (status = 503, description = "Meta did not answer", body = ErrorEnvelope)))]
pub async fn refresh_number(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WhatsAppNumberBody>, ApiError> {
    Ok(Json(number(client(&state).refresh_number(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// A customer's message as the simulator plays it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedInboundBody {
    /// The customer's WhatsApp id: the digits of their phone number.
    #[schema(max_length = 64, pattern = "^[0-9]{1,64}$")]
    pub from: String,
    /// Their profile name.
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// What they wrote (or the title of the button they chose).
    #[schema(max_length = 4096)]
    pub text: Option<String>,
    /// Meta's message id; absent: a fresh one. The same id twice is stored once.
    #[schema(max_length = 200)]
    pub message_id: Option<String>,
    /// An interactive reply: the id of the button or list row chosen.
    #[schema(max_length = 200)]
    pub reply_id: Option<String>,
    /// A file sent with the message (`text` is its caption); copied into storage like Meta's.
    pub media: Option<SimulatedMediaBody>,
}

/// A small file the simulator attaches, as WhatsApp would hold it for us.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "image", "mime_type": "image/png", "data_base64": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}))]
pub struct SimulatedMediaBody {
    #[schema(pattern = "^(image|video|audio|document|sticker)$")]
    pub kind: String,
    /// type/subtype, e.g. image/jpeg, audio/ogg, application/pdf.
    #[schema(max_length = 100, pattern = "^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$")]
    pub mime_type: String,
    /// The file, standard base64: 1 byte to 1 MiB.
    #[schema(
        min_length = 4,
        max_length = 1398104,
        pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"
    )]
    pub data_base64: String,
}

/// A status of a sent message as the simulator plays it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedStatusBody {
    /// The sent message's `wamid`.
    #[schema(max_length = 200)]
    pub wamid: String,
    /// sent, delivered, read or failed.
    #[schema(pattern = "^(sent|delivered|read|failed)$")]
    pub status: String,
    /// Meta's error code of a failure, e.g. 131026.
    pub error_code: Option<i64>,
}

/// Exactly one of `inbound` and `status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"inbound": {"from": "5511987654321", "name": "Ana", "text": "Hi! Is the blue one in stock?"}}))]
pub struct SimulateRequest {
    pub inbound: Option<SimulatedInboundBody>,
    pub status: Option<SimulatedStatusBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"http_status": 200, "message_id": "wamid.sim.4f1c2d"}))]
pub struct SimulateResponse {
    /// What the webhook path answered Meta's (simulated) delivery.
    pub http_status: u32,
    /// Meta's id of the simulated message (or the status's `wamid`).
    pub message_id: String,
}

/// Play Meta delivering an inbound message or a status to a `local` sandbox number: signed and
/// passed through the same webhook path as Meta's own deliveries (bots answer, the inbox and its
/// stream see it).
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{id}/simulate", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = SimulateRequest,
    responses((status = 200, description = "Delivered through the webhook path", body = SimulateResponse),
        (status = 400, description = "Neither or both of inbound and status, a sender that is not digits, an unknown status, media that is not a 1 byte to 1 MiB file of a media kind", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Not a local sandbox number", body = ErrorEnvelope)))]
pub async fn simulate(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SimulateRequest>,
) -> Result<Json<SimulateResponse>, ApiError> {
    use pb::simulate_request::Event;
    let event = match (b.inbound, b.status) {
        (Some(i), None) => Event::Inbound(pb::SimulatedInbound {
            media: i.media.map(simulated_media).transpose()?,
            from: i.from,
            name: i.name.unwrap_or_default(),
            text: i.text.unwrap_or_default(),
            message_id: i.message_id.unwrap_or_default(),
            reply_id: i.reply_id.unwrap_or_default(),
        }),
        (None, Some(s)) => Event::Status(pb::SimulatedStatus {
            wamid: s.wamid,
            status: s.status,
            error_code: s.error_code.unwrap_or(0),
        }),
        _ => return Err(nexus_kernel::Error::invalid("messaging.whatsapp_content_required").into()),
    };
    let r = client(&state).simulate(pb::SimulateRequest { number_id: id, event: Some(event) }).await?.into_inner();
    Ok(Json(SimulateResponse { http_status: r.http_status, message_id: r.message_id }))
}

/// The attachment's bytes; the messaging service checks kind, type and size.
fn simulated_media(m: SimulatedMediaBody) -> Result<pb::SimulatedMedia, ApiError> {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.decode(m.data_base64.as_bytes()).map_err(|_| {
        nexus_kernel::Error::invalid("messaging.whatsapp_simulated_media_invalid").with_param("max", "1048576")
    })?;
    Ok(pb::SimulatedMedia { kind: m.kind, mime_type: m.mime_type, data })
}
