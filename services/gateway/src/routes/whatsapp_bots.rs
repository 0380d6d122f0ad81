//! `/v1/whatsapp/numbers/{id}/bot`: a number's chatbot — keyword and regex rules, a menu,
//! business hours with an away message, the handoff word — and giving a conversation a person
//! took over back to it.

use axum::Json;
use axum::extract::State;
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_bot, set_bot, delete_bot)).routes(routes!(hand_back))
}

/// A rule: when an inbound message matches, the bot answers `reply` (or the menu).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotRuleBody {
    /// keyword (the whole message, case and accents folded; up to 100 characters) or regex (up
    /// to 200 bytes, compiled with a size limit).
    #[schema(pattern = "^(keyword|regex)$")]
    pub kind: String,
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub pattern: String,
    /// The answer (up to 4,096 characters); absent with `menu` true: the menu answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4096, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub reply: Option<String>,
    /// Answer the menu instead of a text (the bot needs a `menu` then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu: Option<bool>,
}

/// One choice of the menu: a reply button (menus of up to 3) or a list row (up to 10).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotMenuItemBody {
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub id: String,
    /// Up to 20 characters in a menu of buttons, 24 in a list.
    #[schema(max_length = 24, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub title: String,
    /// What choosing it answers.
    #[schema(
        max_length = 4096,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub reply: String,
}

/// Opening hours of one weekday, in the bot's time zone.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotHoursBody {
    /// 0 = Monday … 6 = Sunday.
    #[schema(minimum = 0, maximum = 6)]
    pub day: u32,
    /// HH:MM, before `close`.
    #[schema(example = "09:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub open: String,
    #[schema(example = "18:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub close: String,
}

/// How the bot answers (`nexus_messaging::domain::bot::Bot`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotConfigBody {
    /// Tried in order; the first that matches answers (at most 100).
    #[schema(max_items = 100)]
    pub rules: Vec<BotRuleBody>,
    /// The text above the menu's choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1024, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub menu_text: Option<String>,
    #[serde(default)]
    #[schema(max_items = 10)]
    pub menu: Vec<BotMenuItemBody>,
    /// IANA time zone of the business hours.
    #[schema(schema_with = crate::openapi::vocab::time_zone)]
    pub time_zone: String,
    /// Empty: always open; otherwise closed outside these, answered by `away_message`.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub hours: Vec<BotHoursBody>,
    /// Required with `hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4096, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub away_message: Option<String>,
    /// The word that hands the conversation to a person, e.g. `agent`.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub handoff_keyword: String,
    /// What the customer is told when a person takes over.
    #[schema(
        max_length = 4096,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub handoff_reply: String,
    /// A content agent (`agt_…`) that answers what no rule matches; absent: such messages wait
    /// for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_-]{0,64}$")]
    pub agent_id: Option<String>,
    /// The member (`usr_…`, a current member when saved) conversations handed to a person are
    /// assigned to; absent or empty: the member with the fewest open assigned conversations. A
    /// conversation someone has already keeps its assignee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9aa",
        pattern = "^((usr_)?([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))?$"
    )]
    pub handoff_assignee: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "config": {
    "rules": [{"kind": "keyword", "pattern": "price", "reply": "Our prices are at https://acme.example.com/prices"}],
    "menu_text": "How can we help?", "menu": [{"id": "hours", "title": "Opening hours", "reply": "9:00 to 18:00, Monday to Friday."}],
    "time_zone": "Europe/Madrid", "hours": [{"day": 1, "open": "09:00", "close": "18:00"}],
    "away_message": "We are closed now; we answer tomorrow from 9:00.", "handoff_keyword": "agent",
    "handoff_reply": "A person will answer you shortly."}}))]
pub struct BotRequest {
    /// Absent: enabled.
    pub enabled: Option<bool>,
    pub config: BotConfigBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "enabled": true,
    "config": {"rules": [{"kind": "keyword", "pattern": "price", "reply": "Our prices are at https://acme.example.com/prices"}],
        "handoff_keyword": "agent"}, "updated_at": "2026-12-06T09:00:00+00:00"}))]
pub struct BotBody {
    pub number_id: String,
    pub enabled: bool,
    /// The configuration as saved (in its canonical form).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub updated_at: Option<String>,
}

fn bot(b: pb::WhatsAppBot) -> BotBody {
    BotBody {
        number_id: b.number_id,
        enabled: b.enabled,
        config: serde_json::from_str(&b.config_json).unwrap_or(serde_json::Value::Null),
        updated_at: ts(b.updated_at),
    }
}

/// The number's bot.
#[utoipa::path(get, path = "/v1/whatsapp/numbers/{id}/bot", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The number", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The bot", body = BotBody),
        (status = 404, description = "No such number in this workspace, or it has no bot", body = ErrorEnvelope)))]
pub async fn get_bot(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotBody>, ApiError> {
    Ok(Json(bot(client(&state).get_bot(pb::TemplatesRequest { number_id: id }).await?.into_inner())))
}

/// Set (or replace) the number's bot; it answers each new inbound message from then on.
#[utoipa::path(put, path = "/v1/whatsapp/numbers/{id}/bot", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The number", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = BotRequest,
    responses((status = 200, description = "The bot as saved", body = BotBody),
        (status = 400, description = "A rule, the menu, the hours or the time zone is invalid, or the handoff assignee is not a current member", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope)))]
pub async fn set_bot(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<BotRequest>,
) -> Result<Json<BotBody>, ApiError> {
    let req = pb::SetBotRequest {
        number_id: id.clone(),
        config_json: serde_json::to_string(&b.config).map_err(|e| ApiError::from(nexus_kernel::Error::internal(e)))?,
        enabled: b.enabled.unwrap_or(true),
    };
    client(&state).set_bot(req).await.map_err(|s| ApiError::from(s).renaming_field("config_json", "config"))?;
    Ok(Json(bot(client(&state).get_bot(pb::TemplatesRequest { number_id: id }).await?.into_inner())))
}

/// Remove the number's bot; conversations it handed to people stay with them.
#[utoipa::path(delete, path = "/v1/whatsapp/numbers/{id}/bot", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The number", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number in this workspace, or it has no bot", body = ErrorEnvelope)))]
pub async fn delete_bot(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_bot(pb::TemplatesRequest { number_id: id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a conversation a person took over back to the bot.
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{number_id}/conversations/{contact_id}/hand-back", tag = "whatsapp",
    security(("bearer" = []), ("api_key" = [])),
    params(("number_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"),
        ("contact_id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    responses((status = 204, description = "The bot answers this contact again"),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such conversation in this workspace", body = ErrorEnvelope)))]
pub async fn hand_back(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath((number_id, contact_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    client(&state).resume_bot(pb::ResumeBotRequest { number_id, contact_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
