//! `/v1/whatsapp/messages`, `/v1/whatsapp/conversations`, `/v1/whatsapp/inbox/events`: sending
//! (text, media, template, interactive), a contact's messages, and the shared inbox —
//! conversations with unread counts, assigned, resolved, read, and followed live.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    PageQuery, next_cursor, page_request, paging, ts, whatsapp_client as client, whatsapp_stream_client,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_message))
        .routes(routes!(list_messages))
        .routes(routes!(get_message_media))
        .routes(routes!(list_conversations))
        .routes(routes!(assign_conversation))
        .routes(routes!(resolve_conversation))
        .routes(routes!(reopen_conversation))
        .routes(routes!(read_conversation))
        .routes(routes!(inbox_events))
}

// ---------- messages ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSendBody {
    /// An approved template of the number.
    #[schema(max_length = 512)]
    pub name: String,
    #[schema(max_length = 16)]
    pub language: String,
    /// One value per body parameter, in order.
    #[serde(default)]
    pub body_params: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaSendBody {
    /// image, video, audio or document.
    #[schema(pattern = "^(image|video|audio|document)$")]
    pub kind: String,
    /// An https address of the file.
    #[schema(max_length = 2000, pattern = r"^https://[^\s\x00-\x1F\x7F-\x9F]+$")]
    pub link: String,
    /// Up to 1,024 characters (none for audio).
    #[schema(max_length = 1024)]
    pub caption: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceBody {
    #[schema(max_length = 200)]
    pub id: String,
    #[schema(max_length = 24)]
    pub title: String,
    /// List rows only.
    #[schema(max_length = 72)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractiveSendBody {
    #[schema(max_length = 1024)]
    pub body: String,
    /// At most 3 reply buttons …
    #[serde(default)]
    #[schema(max_items = 3)]
    pub buttons: Vec<ChoiceBody>,
    /// … or a list of at most 10 rows, opened by this button.
    #[schema(max_length = 20)]
    pub list_button: Option<String>,
    #[serde(default)]
    #[schema(max_items = 10)]
    pub rows: Vec<ChoiceBody>,
}

/// Exactly one of `text`, `template`, `media` and `interactive`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa",
    "text": "Yes, the blue one is in stock. Shall I reserve it?"}))]
pub struct SendMessageRequest {
    pub number_id: String,
    pub contact_id: String,
    /// Free-form text (only within 24 hours of the contact's last message).
    #[schema(max_length = 4096)]
    pub text: Option<String>,
    pub template: Option<TemplateSendBody>,
    pub media: Option<MediaSendBody>,
    pub interactive: Option<InteractiveSendBody>,
    /// transactional (default) or marketing (needs the contact's marketing consent).
    #[schema(pattern = "^(|transactional|marketing)$")]
    pub purpose: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0ca01", "number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7",
    "contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa", "direction": "out", "type": "text",
    "text": "Yes, the blue one is in stock. Shall I reserve it?", "status": "sent", "wamid": "wamid.HBgLMTU1NTAxMjM0NTY3FQIAERgS",
    "error_code": null, "error_message": null, "provider": "meta", "created_at": "2026-12-06T09:00:00+00:00",
    "updated_at": "2026-12-06T09:00:01+00:00"}))]
pub struct WhatsAppMessageBody {
    pub id: String,
    pub number_id: String,
    pub contact_id: String,
    /// in or out.
    pub direction: String,
    /// text, template, image, interactive, location, …
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    /// received, pending, sending, sent, delivered, read or failed.
    pub status: String,
    pub wamid: String,
    /// Meta's error code of a failure.
    pub error_code: Option<i64>,
    /// The failure explained in the caller's language.
    pub error_message: Option<String>,
    /// meta or local (the sandbox).
    pub provider: String,
    /// What was sent, as Meta's API took it (outbound messages).
    #[schema(value_type = Option<Object>)]
    pub content: Option<serde_json::Value>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// The file an inbound image, video, audio, document or sticker carries, copied into our
    /// storage when it arrived (`GET /v1/whatsapp/messages/{id}/media` serves it once stored).
    pub media: Option<MessageMediaBody>,
}

/// Where an inbound message's file stands.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "stored", "mime_type": "image/jpeg", "size": 48213, "error": null}))]
pub struct MessageMediaBody {
    /// pending (being copied), stored, or failed.
    #[schema(pattern = "^(pending|stored|failed)$")]
    pub status: String,
    pub mime_type: String,
    /// Bytes, once stored.
    pub size: Option<i64>,
    /// Why the copy failed: sha256_mismatch, too_large, media_gone or download_failed.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhatsAppMessageList {
    pub items: Vec<WhatsAppMessageBody>,
    pub next_cursor: Option<String>,
}

fn message(m: pb::WhatsAppMessage) -> WhatsAppMessageBody {
    WhatsAppMessageBody {
        id: m.id,
        number_id: m.number_id,
        contact_id: m.contact_id,
        direction: m.direction,
        kind: m.r#type,
        text: m.text,
        status: m.status,
        wamid: m.wamid,
        error_code: (m.error_code != 0).then_some(m.error_code),
        error_message: (!m.error_message.is_empty()).then_some(m.error_message),
        provider: m.provider,
        content: serde_json::from_str(&m.content_json).ok(),
        created_at: ts(m.created_at),
        updated_at: ts(m.updated_at),
        media: (!m.media_status.is_empty()).then(|| MessageMediaBody {
            size: (m.media_status == "stored").then_some(m.media_size),
            error: (!m.media_error.is_empty()).then_some(m.media_error),
            status: m.media_status,
            mime_type: m.media_mime_type,
        }),
    }
}

fn content(b: &mut SendMessageRequest) -> Result<pb::send_message_request::Content, ApiError> {
    use pb::send_message_request::Content as C;
    let choice = |c: ChoiceBody| (c.id, c.title, c.description.unwrap_or_default());
    let mut found = Vec::new();
    if let Some(t) = b.text.take() {
        found.push(C::Text(t));
    }
    if let Some(t) = b.template.take() {
        found.push(C::Template(pb::TemplateSend { name: t.name, language: t.language, body_params: t.body_params }));
    }
    if let Some(m) = b.media.take() {
        found.push(C::Media(pb::MediaSend { kind: m.kind, link: m.link, caption: m.caption.unwrap_or_default() }));
    }
    if let Some(i) = b.interactive.take() {
        found.push(C::Interactive(pb::InteractiveSend {
            body: i.body,
            buttons: i.buttons.into_iter().map(choice).map(|(id, title, _)| pb::ReplyButton { id, title }).collect(),
            list_button: i.list_button.unwrap_or_default(),
            rows: i
                .rows
                .into_iter()
                .map(choice)
                .map(|(id, title, description)| pb::ListRow { id, title, description })
                .collect(),
        }));
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        _ => Err(nexus_kernel::Error::invalid("messaging.whatsapp_content_required").into()),
    }
}

/// Send a WhatsApp message to a contact. Sends Meta would refuse (outside the 24-hour window,
/// opted out, no consent) are refused here and never reach Meta; credits are held per message.
#[utoipa::path(post, path = "/v1/whatsapp/messages", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    request_body = SendMessageRequest,
    responses((status = 201, description = "Sent (or failed at Meta, with the reason)", body = WhatsAppMessageBody),
        (status = 400, description = "Not exactly one kind of content, or content breaking Meta's limits", body = ErrorEnvelope),
        (status = 402, description = "Not enough credits", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number or contact in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The 24-hour window is closed (the approved templates are named), the contact opted out or gave no consent, the template is not approved", body = ErrorEnvelope)))]
pub async fn send_message(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(mut b): ApiJson<SendMessageRequest>,
) -> Result<(StatusCode, Json<WhatsAppMessageBody>), ApiError> {
    let content = content(&mut b)?;
    let req = pb::SendMessageRequest {
        number_id: b.number_id,
        contact_id: b.contact_id,
        content: Some(content),
        purpose: b.purpose.unwrap_or_default(),
    };
    Ok((StatusCode::CREATED, Json(message(client(&state).send_message(req).await?.into_inner()))))
}

/// A contact's WhatsApp messages, newest first.
#[utoipa::path(get, path = "/v1/whatsapp/contacts/{id}/messages", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The contact", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa"), PageQuery),
    responses((status = 200, description = "A page of messages", body = WhatsAppMessageList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope)))]
pub async fn list_messages(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<WhatsAppMessageList>, ApiError> {
    let req = pb::ListWhatsAppMessagesRequest { contact_id: id, page: page_request(q) };
    let r = client(&state).list_whats_app_messages(req).await?.into_inner();
    Ok(Json(WhatsAppMessageList {
        items: r.messages.into_iter().map(message).collect(),
        next_cursor: next_cursor(r.page),
    }))
}

// ---------- the shared inbox ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationsQuery {
    /// open (default), mine (open and assigned to me), unassigned (open), resolved or all.
    #[param(example = "open", pattern = "^(|open|mine|unassigned|resolved|all)$")]
    pub filter: Option<String>,
    /// Only this number's conversations.
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")]
    pub number_id: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyZjBjNS1jMmI4LTdjMzEtYTFmMS1lNGYyYjFhMGM5ZDcifQ"
    )]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa",
    "contact_name": "Ana Silva", "unread": 2, "assigned_to": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9aa", "resolved": false,
    "bot_paused": true, "last_inbound_at": "2026-12-06T09:00:00+00:00", "last_message_at": "2026-12-06T09:00:00+00:00",
    "last_message_text": "Is the blue one in stock?"}))]
pub struct ConversationBody {
    pub number_id: String,
    pub contact_id: String,
    pub contact_name: String,
    /// Inbound messages since someone last marked it read.
    pub unread: i32,
    /// The member it is assigned to (`usr_…`).
    pub assigned_to: Option<String>,
    pub resolved: bool,
    /// A person took it over from the bot.
    pub bot_paused: bool,
    /// The 24-hour window runs from here.
    pub last_inbound_at: Option<String>,
    pub last_message_at: Option<String>,
    pub last_message_text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationList {
    pub items: Vec<ConversationBody>,
    pub next_cursor: Option<String>,
}

fn conversation(c: pb::Conversation) -> ConversationBody {
    ConversationBody {
        number_id: c.number_id,
        contact_id: c.contact_id,
        contact_name: c.contact_name,
        unread: c.unread,
        assigned_to: (!c.assigned_to.is_empty()).then_some(c.assigned_to),
        resolved: c.resolved,
        bot_paused: c.bot_paused,
        last_inbound_at: ts(c.last_inbound_at),
        last_message_at: ts(c.last_message_at),
        last_message_text: c.last_message_text,
    }
}

/// The shared inbox: conversations with the latest message first.
#[utoipa::path(get, path = "/v1/whatsapp/conversations", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(ConversationsQuery),
    responses((status = 200, description = "A page of conversations", body = ConversationList),
        (status = 400, description = "Unknown filter, invalid page size or cursor", body = ErrorEnvelope),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope)))]
pub async fn list_conversations(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<ConversationsQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    let req = pb::ListConversationsRequest {
        filter: q.filter.unwrap_or_default(),
        number_id: q.number_id.unwrap_or_default(),
        page: paging(q.limit, q.cursor),
    };
    let r = client(&state).list_conversations(req).await?.into_inner();
    Ok(Json(ConversationList {
        items: r.conversations.into_iter().map(conversation).collect(),
        next_cursor: next_cursor(r.page),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9aa"}))]
pub struct AssignRequest {
    /// A current member of the workspace; null unassigns.
    pub user_id: Option<String>,
}

/// Assign a conversation to a member of the workspace, or unassign it (`user_id` null).
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{number_id}/conversations/{contact_id}/assign", tag = "whatsapp",
    security(("bearer" = []), ("api_key" = [])),
    params(("number_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"),
        ("contact_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    request_body = AssignRequest,
    responses((status = 200, description = "The conversation", body = ConversationBody),
        (status = 400, description = "Not a current member of the workspace", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such conversation in this workspace", body = ErrorEnvelope)))]
pub async fn assign_conversation(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath((number_id, contact_id)): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<AssignRequest>,
) -> Result<Json<ConversationBody>, ApiError> {
    let req = pb::AssignConversationRequest { number_id, contact_id, user_id: b.user_id.unwrap_or_default() };
    Ok(Json(conversation(client(&state).assign_conversation(req).await?.into_inner())))
}

async fn set_resolved(
    state: &AppState,
    (number_id, contact_id): (String, String),
    resolved: bool,
) -> Result<Json<ConversationBody>, ApiError> {
    let req = pb::ResolveConversationRequest { number_id, contact_id, resolved };
    Ok(Json(conversation(client(state).resolve_conversation(req).await?.into_inner())))
}

/// Mark a conversation resolved (a new message from the contact reopens it).
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{number_id}/conversations/{contact_id}/resolve", tag = "whatsapp",
    security(("bearer" = []), ("api_key" = [])),
    params(("number_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"),
        ("contact_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    responses((status = 200, description = "The conversation", body = ConversationBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such conversation in this workspace", body = ErrorEnvelope)))]
pub async fn resolve_conversation(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(ids): ApiPath<(String, String)>,
) -> Result<Json<ConversationBody>, ApiError> {
    set_resolved(&state, ids, true).await
}

/// Reopen a resolved conversation.
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{number_id}/conversations/{contact_id}/reopen", tag = "whatsapp",
    security(("bearer" = []), ("api_key" = [])),
    params(("number_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"),
        ("contact_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    responses((status = 200, description = "The conversation", body = ConversationBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such conversation in this workspace", body = ErrorEnvelope)))]
pub async fn reopen_conversation(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(ids): ApiPath<(String, String)>,
) -> Result<Json<ConversationBody>, ApiError> {
    set_resolved(&state, ids, false).await
}

/// Mark a conversation read (its unread count goes to zero).
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{number_id}/conversations/{contact_id}/read", tag = "whatsapp",
    security(("bearer" = []), ("api_key" = [])),
    params(("number_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"),
        ("contact_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    responses((status = 200, description = "The conversation", body = ConversationBody),
        (status = 404, description = "No such conversation in this workspace", body = ErrorEnvelope)))]
pub async fn read_conversation(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath((number_id, contact_id)): ApiPath<(String, String)>,
) -> Result<Json<ConversationBody>, ApiError> {
    let req = pb::ConversationRequest { number_id, contact_id };
    Ok(Json(conversation(client(&state).mark_conversation_read(req).await?.into_inner())))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"kind": "message", "number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7",
    "contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa", "message_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0ca01",
    "direction": "in", "status": "received", "at": "2026-12-06T09:00:00+00:00"}))]
pub struct InboxEventBody {
    /// message or conversation.
    pub kind: String,
    pub number_id: String,
    pub contact_id: String,
    pub message_id: String,
    /// Messages: in or out.
    pub direction: String,
    /// A message's status (received, sent, delivered, read, failed), or what happened to the
    /// conversation (assigned, unassigned, resolved, reopened, read, handoff_to_human, handoff_to_bot).
    pub status: String,
    pub at: Option<String>,
}

/// The workspace's inbox live, as server-sent events: a `message` event for each message in or
/// out (and its status changes) and a `conversation` event for each assignment, resolution,
/// read and bot handoff. An `open` event comes first; the stream ends after an hour (reconnect).
#[utoipa::path(get, path = "/v1/whatsapp/inbox/events", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Inbox events", content_type = "text/event-stream", body = super::common::ServerSentEvent,
            example = "event: open\ndata: {}\n\nevent: message\ndata: {\"kind\":\"message\",\"direction\":\"in\",\"status\":\"received\",…}\n\n"),
        (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn inbox_events(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt as _;
    // The subscription is in place once the call answers, so nothing after `open` is missed.
    let upstream = whatsapp_stream_client(&state).watch_inbox(pb::Empty {}).await?.into_inner();
    let open =
        futures::stream::once(async { Ok::<_, std::convert::Infallible>(Event::default().event("open").data("{}")) });
    let events =
        upstream.take_while(|r| std::future::ready(r.is_ok())).filter_map(|r| async move { r.ok() }).map(|e| {
            let kind = e.kind.clone();
            let body = InboxEventBody {
                kind: e.kind,
                number_id: e.number_id,
                contact_id: e.contact_id,
                message_id: e.message_id,
                direction: e.direction,
                status: e.status,
                at: ts(e.at),
            };
            Ok(Event::default().event(kind).data(serde_json::to_string(&body).unwrap_or_default()))
        });
    let mut resp = Sse::new(open.chain(events).boxed()).keep_alive(KeepAlive::default()).into_response();
    resp.headers_mut().insert("x-accel-buffering", "no".parse().expect("static header"));
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, "no-cache".parse().expect("static header"));
    Ok(resp)
}

/// An inbound message's file (image, video, audio, document or sticker) with its own content
/// type, streamed from our storage: WhatsApp's copy expires, ours does not.
#[utoipa::path(get, path = "/v1/whatsapp/messages/{id}/media", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The message", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1")),
    responses((status = 200, description = "The file, with the media type WhatsApp reported (image/jpeg, audio/ogg, application/pdf, …)", content_type = "*/*", body = Vec<u8>),
        (status = 404, description = "No such message in this workspace, or it carries no media", body = ErrorEnvelope),
        (status = 409, description = "The file is still being copied in (try again shortly), or the copy failed", body = ErrorEnvelope)))]
pub async fn get_message_media(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::{HeaderValue, header};
    use futures::StreamExt as _;
    let mut stream = client(&state).open_message_media(pb::GetByIdRequest { id }).await?.into_inner();
    let head = stream
        .message()
        .await?
        .and_then(|m| m.head)
        .ok_or_else(|| ApiError::new(nexus_kernel::ErrorKind::Unavailable, "service.unavailable"))?;
    // A failure mid-way cuts the body short of its Content-Length.
    let body = stream.map(|m| match m {
        Ok(chunk) => Ok(bytes::Bytes::from(chunk.data)),
        Err(status) => Err(std::io::Error::other(status.message().to_owned())),
    });
    let mut resp = axum::response::Response::new(axum::body::Body::from_stream(body));
    let h = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    let ct = if head.content_type.is_empty() { "application/octet-stream".to_owned() } else { head.content_type };
    set(header::CONTENT_TYPE, ct);
    set(header::CONTENT_LENGTH, head.size.to_string());
    set(header::CACHE_CONTROL, "private, max-age=300".into());
    set(header::CONTENT_DISPOSITION, format!("inline; filename=\"{}\"", head.filename));
    // The content type is WhatsApp's word, not ours: browsers must not sniff another.
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    Ok(resp)
}
