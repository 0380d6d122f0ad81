//! The shared inbox: conversations (one per number and contact) with their unread count,
//! assignee and resolution; and the number's bot as stored.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// A conversation as listed, with its contact's name and last inbound text.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: Uuid,
    pub number_id: Uuid,
    pub contact_id: Uuid,
    pub contact_name: Option<String>,
    pub unread: i32,
    pub assigned_to: Option<Uuid>,
    pub resolved: bool,
    pub bot_paused: bool,
    pub last_inbound_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub last_text: Option<String>,
}

const COLUMNS: &str = "c.id, c.number_id, c.contact_id, k.name AS contact_name, c.unread, c.assigned_to, c.resolved, \
     c.bot_paused, c.last_inbound_at, c.last_message_at, \
     (SELECT m.content->>'summary' FROM wa_messages m WHERE m.number_id = c.number_id AND m.contact_id = c.contact_id \
      ORDER BY m.created_at DESC, m.id DESC LIMIT 1) AS last_text";

/// Which conversations a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Open,
    AssignedTo(Uuid),
    Unassigned,
    Resolved,
    All,
}

/// Conversations, the latest message first.
pub async fn list(
    conn: &mut PgConnection,
    filter: Filter,
    number: Option<Uuid>,
    keyset: &Keyset,
) -> Result<Page<ConversationRow>, Error> {
    let cond = match filter {
        Filter::Open => "NOT c.resolved",
        Filter::AssignedTo(_) => "NOT c.resolved AND c.assigned_to = $5",
        Filter::Unassigned => "NOT c.resolved AND c.assigned_to IS NULL",
        Filter::Resolved => "c.resolved",
        Filter::All => "true",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM wa_conversations c LEFT JOIN contacts k ON k.id = c.contact_id \
         WHERE ($4::uuid IS NULL OR c.number_id = $4) AND {cond} AND {}",
        Keyset::newest_first_by("c.last_message_at", "c.id", 1)
    );
    let mut q = keyset.bind(sqlx::query_as(sqlx::AssertSqlSafe(sql))).bind(number);
    if let Filter::AssignedTo(user) = filter {
        q = q.bind(user);
    }
    let rows: Vec<ConversationRow> = q.fetch_all(conn).await.db()?;
    Ok(keyset.page(rows, |c| (c.last_message_at, c.id)))
}

pub async fn get(conn: &mut PgConnection, number: Uuid, contact: Uuid) -> Result<Option<ConversationRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM wa_conversations c LEFT JOIN contacts k ON k.id = c.contact_id \
         WHERE c.number_id = $1 AND c.contact_id = $2"
    )))
    .bind(number)
    .bind(contact)
    .fetch_optional(conn)
    .await
    .db()
}

/// Locks the conversation for a change; `None` when there is none.
pub async fn lock(conn: &mut PgConnection, number: Uuid, contact: Uuid) -> Result<Option<(Option<Uuid>, bool)>, Error> {
    sqlx::query_as(
        "SELECT assigned_to, resolved FROM wa_conversations WHERE number_id = $1 AND contact_id = $2 FOR UPDATE",
    )
    .bind(number)
    .bind(contact)
    .fetch_optional(conn)
    .await
    .db()
}

pub async fn set_assignee(
    conn: &mut PgConnection,
    number: Uuid,
    contact: Uuid,
    user: Option<Uuid>,
) -> Result<(), Error> {
    sqlx::query("UPDATE wa_conversations SET assigned_to = $3 WHERE number_id = $1 AND contact_id = $2")
        .bind(number)
        .bind(contact)
        .bind(user)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn set_resolved(conn: &mut PgConnection, number: Uuid, contact: Uuid, resolved: bool) -> Result<(), Error> {
    sqlx::query("UPDATE wa_conversations SET resolved = $3 WHERE number_id = $1 AND contact_id = $2")
        .bind(number)
        .bind(contact)
        .bind(resolved)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Resets the unread count; whether it was above zero.
pub async fn mark_read(conn: &mut PgConnection, number: Uuid, contact: Uuid) -> Result<bool, Error> {
    let done =
        sqlx::query("UPDATE wa_conversations SET unread = 0 WHERE number_id = $1 AND contact_id = $2 AND unread > 0")
            .bind(number)
            .bind(contact)
            .execute(conn)
            .await
            .db()?;
    Ok(done.rows_affected() == 1)
}

/// The number's bot as stored (enabled or not).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BotRow {
    pub config: Json<serde_json::Value>,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
}

pub async fn bot(conn: &mut PgConnection, number: Uuid) -> Result<Option<BotRow>, Error> {
    sqlx::query_as("SELECT config, enabled, updated_at FROM wa_bots WHERE number_id = $1")
        .bind(number)
        .fetch_optional(conn)
        .await
        .db()
}

/// Remembers content's conversation of the bot's agent with this contact.
pub async fn set_agent_conversation(
    conn: &mut PgConnection,
    number: Uuid,
    contact: Uuid,
    id: &str,
) -> Result<(), Error> {
    sqlx::query("UPDATE wa_conversations SET agent_conversation_id = $3 WHERE number_id = $1 AND contact_id = $2")
        .bind(number)
        .bind(contact)
        .bind(id)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// The current member with the fewest open conversations assigned; ties go to the
/// longest-standing member (the earliest join), then the lowest id so the choice is stable.
pub async fn least_loaded_member(conn: &mut PgConnection) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar(
        "SELECT m.user_id FROM members m \
         LEFT JOIN wa_conversations c ON c.assigned_to = m.user_id AND NOT c.resolved \
         WHERE m.active GROUP BY m.user_id, m.changed_at \
         ORDER BY count(c.contact_id), m.changed_at, m.user_id LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .db()
}
