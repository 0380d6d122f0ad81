//! `ai_agents`, `agent_conversations` and `agent_messages`.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::agents::{Agent, AgentSpec, Message, Turn};

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    instructions: String,
    language: String,
    knowledge: Json<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Agent {
    fn from(r: Row) -> Self {
        let spec = AgentSpec {
            name: r.name,
            instructions: r.instructions,
            language: r.language.parse().unwrap_or_default(),
            knowledge: r.knowledge.0,
        };
        Agent { id: r.id, spec, language: r.language, created_at: r.created_at, updated_at: r.updated_at }
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    role: String,
    content: String,
    created_at: DateTime<Utc>,
}

impl From<MessageRow> for Message {
    fn from(m: MessageRow) -> Self {
        Message { role: m.role, content: m.content, created_at: m.created_at }
    }
}

const COLUMNS: &str = "id, name, instructions, language, knowledge, created_at, updated_at";

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Agent>, Error> {
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM ai_agents WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .db()?;
    Ok(row.map(Into::into))
}

pub async fn insert(conn: &mut PgConnection, id: Uuid, tenant: TenantId, spec: &AgentSpec) -> Result<Agent, Error> {
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ai_agents (id, tenant_id, name, instructions, language, knowledge) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant.as_uuid())
    .bind(&spec.name)
    .bind(&spec.instructions)
    .bind(spec.language.code())
    .bind(Json(&spec.knowledge))
    .fetch_one(conn)
    .await
    .db()?;
    Ok(row.into())
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Agent>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM ai_agents WHERE {}", Keyset::newest_first(1));
    let rows: Vec<Row> = keyset.bind(sqlx::query_as(sqlx::AssertSqlSafe(sql))).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows.into_iter().map(Agent::from).collect(), |a| (a.created_at, a.id)))
}

pub async fn update(conn: &mut PgConnection, id: Uuid, spec: &AgentSpec) -> Result<Option<Agent>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE ai_agents SET name = $2, instructions = $3, language = $4, knowledge = $5, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&spec.name)
    .bind(&spec.instructions)
    .bind(spec.language.code())
    .bind(Json(&spec.knowledge))
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(Into::into))
}

/// `false` when there was no such agent.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let n = sqlx::query("DELETE FROM ai_agents WHERE id = $1").bind(id).execute(conn).await.db()?.rows_affected();
    Ok(n > 0)
}

/// The reply given to the message sent with idempotency key `key`: (conversation, reply, credits).
pub async fn earlier_reply(conn: &mut PgConnection, key: &str) -> Result<Option<(Uuid, Message, i64)>, Error> {
    let found: Option<(Uuid, String, String, DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT u.conversation_id, a.role, a.content, a.created_at, a.credits FROM agent_messages u \
         JOIN agent_messages a ON a.reply_to = u.id WHERE u.idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(found.map(|(conversation, role, content, created_at, credits)| {
        (conversation, Message { role, content, created_at }, credits)
    }))
}

/// The agent's conversation with a contact, opened on first use; its id.
pub async fn open_conversation(
    conn: &mut PgConnection,
    new_id: Uuid,
    tenant: TenantId,
    agent: Uuid,
    contact: &str,
) -> Result<Uuid, Error> {
    sqlx::query_scalar(
        "INSERT INTO agent_conversations (id, tenant_id, agent_id, contact_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (agent_id, contact_id) DO UPDATE SET updated_at = now() RETURNING id",
    )
    .bind(new_id)
    .bind(tenant.as_uuid())
    .bind(agent)
    .bind(contact)
    .fetch_one(conn)
    .await
    .db()
}

/// The last `limit` messages of a conversation, oldest first.
pub async fn history(conn: &mut PgConnection, conversation: Uuid, limit: i64) -> Result<Vec<Turn>, Error> {
    let mut rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT role, content FROM agent_messages WHERE conversation_id = $1 ORDER BY created_at DESC LIMIT $2",
    )
    .bind(conversation)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()?;
    rows.reverse();
    Ok(rows.into_iter().map(|(role, content)| Turn { from_user: role == "user", content }).collect())
}

/// One turn to store: the contact's message and the agent's reply.
pub struct NewTurn<'a> {
    pub tenant: TenantId,
    pub conversation: Uuid,
    pub message: &'a str,
    pub reply: &'a str,
    /// The message's idempotency key, when the client gave one.
    pub key: Option<&'a str>,
    pub credits: i64,
}

/// Stores a turn; returns the reply as stored.
pub async fn insert_turn(conn: &mut PgConnection, t: &NewTurn<'_>) -> Result<Message, Error> {
    let asked: Uuid = sqlx::query_scalar(
        "INSERT INTO agent_messages (tenant_id, conversation_id, role, content, idempotency_key) VALUES ($1, $2, 'user', $3, $4) RETURNING id",
    )
    .bind(t.tenant.as_uuid())
    .bind(t.conversation)
    .bind(t.message)
    .bind(t.key)
    .fetch_one(&mut *conn)
    .await
    .db()?;
    let row: MessageRow = sqlx::query_as(
        "INSERT INTO agent_messages (tenant_id, conversation_id, role, content, reply_to, credits) \
         VALUES ($1, $2, 'assistant', $3, $4, $5) RETURNING role, content, created_at",
    )
    .bind(t.tenant.as_uuid())
    .bind(t.conversation)
    .bind(t.reply)
    .bind(asked)
    .bind(t.credits)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(row.into())
}

/// The last `limit` messages between an agent and a contact, oldest first.
pub async fn messages(conn: &mut PgConnection, agent: Uuid, contact: &str, limit: i64) -> Result<Vec<Message>, Error> {
    let mut rows: Vec<MessageRow> = sqlx::query_as(
        "SELECT m.role, m.content, m.created_at FROM agent_messages m JOIN agent_conversations c ON c.id = m.conversation_id \
         WHERE c.agent_id = $1 AND c.contact_id = $2 ORDER BY m.created_at DESC LIMIT $3",
    )
    .bind(agent)
    .bind(contact)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()?;
    rows.reverse();
    Ok(rows.into_iter().map(Message::from).collect())
}
