//! AI agents: custom assistants with instructions, a language and knowledge snippets, holding
//! one conversation per contact. A reply sees the last turns and the snippets that share most
//! words with the message, costs `content.agent_reply`, and is announced as `agent.replied`.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, PageRequest, TenantId};
use nexus_platform::db::begin_tenant;
use nexus_platform::identity::{Action, Principal};
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::pages::within_limit;
use super::{App, Hold, Outcome, check_key, db, fresh, joined, settle_in, spawn_in_context};
use crate::domain::agents::{AgentSpec, MAX_MESSAGE_CHARS, Turn, relevant_snippets};
use crate::domain::generation::Usage;
use crate::domain::{AgentId, ConversationId, parse_id, text_field};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub id: Uuid,
    pub name: String,
    pub instructions: String,
    pub language: String,
    pub knowledge: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AgentRow {
    fn spec(&self) -> AgentSpec {
        AgentSpec {
            name: self.name.clone(),
            instructions: self.instructions.clone(),
            language: self.language.parse().unwrap_or_default(),
            knowledge: self.knowledge.0.clone(),
        }
    }
}

const AGENT_COLUMNS: &str = "id, name, instructions, language, knowledge, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub role: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub conversation_id: Uuid,
    pub message: MessageRow,
    pub credits: i64,
    pub usage: Usage,
    pub language: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

fn contact(id: &str) -> Result<String, Error> {
    let id = id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(Error::invalid("content.invalid_contact").with_violation("contact_id", "invalid"));
    }
    Ok(id.to_owned())
}

impl App {
    async fn agent_row(conn: &mut PgConnection, id: Uuid) -> Result<AgentRow, Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {AGENT_COLUMNS} FROM ai_agents WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("content.agent_not_found"))
    }

    /// Agents count against the plan's `ai_agents` limit (agents that exist, not a monthly use).
    pub async fn create_agent(&self, p: &Principal, spec: AgentSpec) -> Result<AgentRow, Error> {
        p.require(Action::Write)?;
        let limit = self.credits.limit("ai_agents").await?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        within_limit(&mut tx, p.workspace_id, "ai_agents", "ai_agents", limit).await?;
        let row: AgentRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ai_agents (id, tenant_id, name, instructions, language, knowledge) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {AGENT_COLUMNS}"
        )))
        .bind(AgentId::new().as_uuid())
        .bind(p.workspace_id.as_uuid())
        .bind(&spec.name)
        .bind(&spec.instructions)
        .bind(spec.language.code())
        .bind(Json(&spec.knowledge))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    pub async fn get_agent(&self, p: &Principal, id: &str) -> Result<AgentRow, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, AgentId::parse, "content.agent_not_found")?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let row = Self::agent_row(&mut tx, id.as_uuid()).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    pub async fn list_agents(&self, p: &Principal, page: &PageRequest) -> Result<nexus_kernel::Page<AgentRow>, Error> {
        p.require(Action::Read)?;
        let cursor: Option<ListCursor> = page.decode_cursor()?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let rows: Vec<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {AGENT_COLUMNS} FROM ai_agents WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(nexus_kernel::Page::from_overfetch(rows, page.limit, |r| ListCursor { at: r.created_at, id: r.id }))
    }

    pub async fn update_agent(&self, p: &Principal, id: &str, spec: AgentSpec) -> Result<AgentRow, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, AgentId::parse, "content.agent_not_found")?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let row: Option<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE ai_agents SET name = $2, instructions = $3, language = $4, knowledge = $5, updated_at = now() \
             WHERE id = $1 RETURNING {AGENT_COLUMNS}"
        )))
        .bind(id.as_uuid())
        .bind(&spec.name)
        .bind(&spec.instructions)
        .bind(spec.language.code())
        .bind(Json(&spec.knowledge))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| Error::not_found("content.agent_not_found"))
    }

    pub async fn delete_agent(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, AgentId::parse, "content.agent_not_found")?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let n = sqlx::query("DELETE FROM ai_agents WHERE id = $1")
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        tx.commit().await.map_err(db)?;
        if n == 0 { Err(Error::not_found("content.agent_not_found")) } else { Ok(()) }
    }

    /// One turn: the contact's message in, the agent's reply out, both kept in the history.
    pub async fn chat(
        &self,
        p: &Principal,
        agent_id: &str,
        contact_id: &str,
        message: &str,
        key: &str,
    ) -> Result<Reply, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let agent_id = parse_id(agent_id, AgentId::parse, "content.agent_not_found")?;
        let contact_id = contact(contact_id)?;
        let message = text_field("message", message, MAX_MESSAGE_CHARS, true)?;
        let tenant = p.workspace_id;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let agent = Self::agent_row(&mut tx, agent_id.as_uuid()).await?;
        if !key.is_empty()
            && let Some(reply) = Self::earlier_reply(&mut tx, key, &agent.language).await?
        {
            return Ok(reply);
        }
        let conversation: Uuid = sqlx::query_scalar(
            "INSERT INTO agent_conversations (id, tenant_id, agent_id, contact_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (agent_id, contact_id) DO UPDATE SET updated_at = now() RETURNING id",
        )
        .bind(ConversationId::new().as_uuid())
        .bind(tenant.as_uuid())
        .bind(agent.id)
        .bind(&contact_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let turns = i64::from(self.cfg.agents.history_turns) * 2;
        let mut history: Vec<(String, String)> = sqlx::query_as(
            "SELECT role, content FROM agent_messages WHERE conversation_id = $1 ORDER BY created_at DESC LIMIT $2",
        )
        .bind(conversation)
        .bind(turns)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        history.reverse();
        let history: Vec<Turn> =
            history.into_iter().map(|(role, content)| Turn { from_user: role == "user", content }).collect();

        let idem = if key.is_empty() { Uuid::now_v7().to_string() } else { key.to_owned() };
        let hold = self
            .credits
            .reserve(
                "content.agent_reply",
                1,
                0,
                &format!("content.agent_reply:{idem}"),
                self.cfg.generation.reservation_ttl,
            )
            .await?;
        fresh(&hold)?;
        let spec = agent.spec();
        let text = self.text.clone();
        let n = self.cfg.agents.snippets;
        let msg = message.clone();
        let generated = joined(
            spawn_in_context(async move {
                let snippets = relevant_snippets(&spec.knowledge, &msg, n);
                text.reply(&spec, &history, &snippets, &msg).await
            })
            .await,
        );
        let job = format!("content.agent_reply:{}:{idem}", AgentId::from_uuid(agent.id));
        let (reply, usage, _model) = match generated {
            Ok(r) => r,
            Err(e) => {
                self.give_back(tenant, &hold, &job).await;
                return Err(e);
            }
        };
        let stored = self
            .store_turn(
                tenant,
                &agent,
                conversation,
                &contact_id,
                &message,
                &reply,
                (!key.is_empty()).then_some(key),
                (&hold, &job),
            )
            .await;
        if stored.is_err() {
            self.give_back(tenant, &hold, &job).await;
        }
        let message = stored?;
        Ok(Reply { conversation_id: conversation, message, credits: hold.amount, usage, language: agent.language })
    }

    async fn earlier_reply(conn: &mut PgConnection, key: &str, language: &str) -> Result<Option<Reply>, Error> {
        let found: Option<(Uuid, String, String, DateTime<Utc>, i64)> = sqlx::query_as(
            "SELECT u.conversation_id, a.role, a.content, a.created_at, a.credits FROM agent_messages u \
             JOIN agent_messages a ON a.reply_to = u.id WHERE u.idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
        Ok(found.map(|(conversation_id, role, content, created_at, credits)| Reply {
            conversation_id,
            message: MessageRow { role, content, created_at },
            credits,
            usage: Usage::default(),
            language: language.to_owned(),
        }))
    }

    #[allow(clippy::too_many_arguments)] // one turn's facts
    async fn store_turn(
        &self,
        tenant: TenantId,
        agent: &AgentRow,
        conversation: Uuid,
        contact_id: &str,
        message: &str,
        reply: &str,
        key: Option<&str>,
        (hold, job): (&Hold, &str),
    ) -> Result<MessageRow, Error> {
        let credits = hold.amount;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let asked: Uuid = sqlx::query_scalar(
            "INSERT INTO agent_messages (tenant_id, conversation_id, role, content, idempotency_key) VALUES ($1, $2, 'user', $3, $4) RETURNING id",
        )
        .bind(tenant.as_uuid())
        .bind(conversation)
        .bind(message)
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let row: MessageRow = sqlx::query_as(
            "INSERT INTO agent_messages (tenant_id, conversation_id, role, content, reply_to, credits) \
             VALUES ($1, $2, 'assistant', $3, $4, $5) RETURNING role, content, created_at",
        )
        .bind(tenant.as_uuid())
        .bind(conversation)
        .bind(reply)
        .bind(asked)
        .bind(credits)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        enqueue(
            &mut tx,
            "nexus.content.agent.replied",
            Some(tenant),
            &events::AgentReplied {
                workspace_id: tenant.to_string(),
                agent_id: AgentId::from_uuid(agent.id).to_string(),
                conversation_id: ConversationId::from_uuid(conversation).to_string(),
                contact_id: contact_id.to_owned(),
                provider: self.text.provider().to_owned(),
                credits,
            },
        )
        .await
        .map_err(db)?;
        // The reply and its charge commit together.
        settle_in(&mut tx, tenant, hold, job, Outcome::Charge(credits)).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    /// The most recent messages with a contact, oldest first.
    pub async fn messages(
        &self,
        p: &Principal,
        agent_id: &str,
        contact_id: &str,
        limit: u32,
    ) -> Result<Vec<MessageRow>, Error> {
        p.require(Action::Read)?;
        let agent_id = parse_id(agent_id, AgentId::parse, "content.agent_not_found")?;
        let contact_id = contact(contact_id)?;
        let limit = if limit == 0 { 50 } else { limit.min(200) };
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        Self::agent_row(&mut tx, agent_id.as_uuid()).await?;
        let mut rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT m.role, m.content, m.created_at FROM agent_messages m JOIN agent_conversations c ON c.id = m.conversation_id \
             WHERE c.agent_id = $1 AND c.contact_id = $2 ORDER BY m.created_at DESC LIMIT $3",
        )
        .bind(agent_id.as_uuid())
        .bind(&contact_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.reverse();
        Ok(rows)
    }
}
