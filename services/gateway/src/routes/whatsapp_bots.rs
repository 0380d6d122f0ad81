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
    OpenApiRouter::new().routes(routes!(get_bot, set_bot)).routes(routes!(hand_back))
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
    /// `rules` (`kind` keyword or regex, `pattern`, `reply`, or `menu` true to answer the menu),
    /// `menu_text` and `menu` (up to 3 buttons or 10 list rows: `id`, `title`, `reply`),
    /// `time_zone` and `hours` (`day` 0 = Monday … 6 = Sunday, `open`, `close` as HH:MM) with an
    /// `away_message`, `handoff_keyword` and `handoff_reply`.
    #[schema(value_type = Object)]
    pub config: serde_json::Map<String, serde_json::Value>,
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
        (status = 400, description = "A rule, the menu, the hours or the time zone is invalid", body = ErrorEnvelope),
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
        config_json: serde_json::Value::Object(b.config).to_string(),
        enabled: b.enabled.unwrap_or(true),
    };
    client(&state).set_bot(req).await.map_err(|s| ApiError::from(s).renaming_field("config_json", "config"))?;
    Ok(Json(bot(client(&state).get_bot(pb::TemplatesRequest { number_id: id }).await?.into_inner())))
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
