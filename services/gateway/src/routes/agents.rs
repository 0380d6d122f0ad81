//! `/v1/agents`: AI agents (custom assistants with knowledge and per-contact history).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::nexus::content::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, content_client as client, dir_name, idempotency_key, next_cursor, page_request, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_agent, list_agents))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(chat))
        .routes(routes!(messages))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Nova", "instructions": "Answer briefly; offer a call for big orders.", "language": "pt",
    "knowledge": ["Entregamos em todo o Brasil em até 5 dias úteis.", "Trocas grátis em 30 dias."]}))]
pub struct AgentRequest {
    /// 1 to 80 characters, not only spaces; no control characters.
    #[schema(
        max_length = 80,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// Up to 4,000 characters; no control characters but line breaks and tabs.
    #[schema(max_length = 4000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub instructions: Option<String>,
    /// en, es, pt, he or ar; empty or absent: your language.
    #[schema(pattern = "^(|en|es|pt|he|ar)$")]
    pub language: Option<String>,
    #[schema(schema_with = crate::openapi::vocab::agent_knowledge)]
    pub knowledge: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentBody {
    pub id: String,
    pub name: String,
    pub instructions: String,
    pub language: String,
    pub dir: String,
    pub knowledge: Vec<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub items: Vec<AgentBody>,
    pub next_cursor: Option<String>,
}

fn agent(a: pb::Agent) -> AgentBody {
    AgentBody {
        id: a.id,
        name: a.name,
        instructions: a.instructions,
        language: a.language,
        dir: dir_name(a.dir),
        knowledge: a.knowledge,
        created_at: ts(a.created_at),
        updated_at: ts(a.updated_at),
    }
}

fn input(b: AgentRequest) -> pb::AgentInput {
    pb::AgentInput {
        name: b.name,
        instructions: b.instructions.unwrap_or_default(),
        language: b.language.unwrap_or_default(),
        knowledge: b.knowledge.unwrap_or_default(),
    }
}

/// Create an agent (plan limit: ai_agents).
#[utoipa::path(post, path = "/v1/agents", tag = "agents", security(("bearer" = []), ("api_key" = [])), request_body = AgentRequest,
    responses((status = 201, description = "Created", body = AgentBody), (status = 400, description = "Invalid field", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 402, description = "Agent limit of the plan reached", body = ErrorEnvelope)))]
pub async fn create_agent(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<AgentRequest>,
) -> Result<(StatusCode, Json<AgentBody>), ApiError> {
    Ok((StatusCode::CREATED, Json(agent(client(&state).create_agent(input(b)).await?.into_inner()))))
}

/// Agents of the current workspace, newest first.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of agents", body = AgentList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_agents(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<AgentList>, ApiError> {
    let r = client(&state).list_agents(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(AgentList { items: r.items.into_iter().map(agent).collect(), next_cursor: next_cursor(r.page) }))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The agent", body = AgentBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such agent in this workspace", body = ErrorEnvelope)))]
pub async fn get_agent(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentBody>, ApiError> {
    Ok(Json(agent(client(&state).get_agent(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Replace an agent's name, instructions, language and knowledge.
#[utoipa::path(put, path = "/v1/agents/{id}", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = AgentRequest,
    responses((status = 200, description = "Updated", body = AgentBody), (status = 400, description = "Invalid field", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such agent in this workspace", body = ErrorEnvelope)))]
pub async fn update_agent(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<AgentRequest>,
) -> Result<Json<AgentBody>, ApiError> {
    Ok(Json(agent(
        client(&state).update_agent(pb::UpdateAgentRequest { id, agent: Some(input(b)) }).await?.into_inner(),
    )))
}

/// Delete an agent and its conversations.
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such agent in this workspace", body = ErrorEnvelope)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_agent(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"contact_id": "crm_42", "message": "Vocês entregam em Recife?"}))]
pub struct ChatRequest {
    /// Your id for the person (a CRM contact, a WhatsApp contact): history is kept per contact.
    /// 1 to 128 characters, not only spaces; no control characters.
    #[schema(max_length = 128, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub contact_id: String,
    /// 1 to 4,000 characters, not only spaces; no control characters but line breaks and tabs.
    #[schema(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody {
    /// user or assistant.
    pub role: String,
    pub content: String,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatReplyBody {
    pub conversation_id: String,
    pub reply: Option<MessageBody>,
    pub dir: String,
    pub provider: String,
    pub credits: i64,
}

fn message(m: pb::ChatMessage) -> MessageBody {
    MessageBody { role: m.role, content: m.content, created_at: ts(m.created_at) }
}

/// Send a message to an agent and get its reply (credits: content.agent_reply).
#[utoipa::path(post, path = "/v1/agents/{id}/chat", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"), ("Idempotency-Key" = Option<String>, Header, example = "msg-8812")),
    request_body = ChatRequest,
    responses((status = 200, description = "The reply", body = ChatReplyBody), (status = 400, description = "Invalid contact or message", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 402, description = "Not enough credits", body = ErrorEnvelope),
        (status = 404, description = "No such agent in this workspace", body = ErrorEnvelope)))]
pub async fn chat(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ChatRequest>,
) -> Result<Json<ChatReplyBody>, ApiError> {
    let r = client(&state)
        .chat(pb::ChatRequest {
            agent_id: id,
            contact_id: b.contact_id,
            message: b.message,
            idempotency_key: idempotency_key(&headers)?,
        })
        .await?
        .into_inner();
    Ok(Json(ChatReplyBody {
        conversation_id: r.conversation_id,
        reply: r.reply.map(message),
        dir: dir_name(r.dir),
        provider: r.provider,
        credits: r.credits,
    }))
}

/// `contact_id` and `limit` (most recent messages, oldest first; default 50, at most 200).
#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    pub contact_id: String,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub items: Vec<MessageBody>,
}

/// An agent's conversation with one contact.
#[utoipa::path(get, path = "/v1/agents/{id}/messages", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"), ("contact_id" = String, Query, example = "crm_42"),
        ("limit" = Option<u32>, Query, example = 50)),
    responses((status = 200, description = "Messages, oldest first", body = MessageList), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such agent in this workspace", body = ErrorEnvelope)))]
pub async fn messages(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let r = client(&state)
        .list_messages(pb::ListMessagesRequest { agent_id: id, contact_id: q.contact_id, limit: q.limit.unwrap_or(0) })
        .await?
        .into_inner();
    Ok(Json(MessageList { items: r.items.into_iter().map(message).collect() }))
}
