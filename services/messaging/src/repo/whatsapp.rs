//! WhatsApp numbers, conversations (the 24-hour window), messages and templates.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::whatsapp::Status;

/// A connected number as stored (the token still sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NumberRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub provider: String,
    pub token_sealed: String,
    pub quality_rating: String,
    pub messaging_tier: String,
    pub created_at: DateTime<Utc>,
    pub quality_checked_at: Option<DateTime<Utc>>,
}

const NUMBER_COLUMNS: &str = "id, tenant_id, waba_id, phone_number_id, display_phone_number, provider, token_sealed, \
                              quality_rating, messaging_tier, created_at, quality_checked_at";

pub struct NewNumber<'a> {
    pub id: Uuid,
    pub waba_id: &'a str,
    pub phone_number_id: &'a str,
    pub display_phone_number: &'a str,
    pub provider: &'a str,
    pub token_sealed: &'a str,
    /// As read from Meta at connect (the sandbox's own for local numbers).
    pub quality_rating: &'a str,
    pub messaging_tier: &'a str,
}

/// Serializes connects of one workspace, so two at once cannot both pass the plan's limit.
pub async fn lock_numbers(conn: &mut PgConnection, tenant: TenantId) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('wa_numbers:' || $1::text, 0))")
        .bind(tenant.as_uuid())
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Connected numbers (a disconnected one no longer counts toward the plan's limit).
pub async fn count_numbers(conn: &mut PgConnection) -> Result<i64, Error> {
    sqlx::query_scalar("SELECT count(*) FROM wa_numbers WHERE disconnected_at IS NULL").fetch_one(conn).await.db()
}

/// Inserts a number; `Ok(false)` when Meta's phone number id is connected already (here or in
/// another workspace).
pub async fn insert_number(conn: &mut PgConnection, tenant: TenantId, n: &NewNumber<'_>) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO wa_numbers (id, tenant_id, waba_id, phone_number_id, display_phone_number, provider, token_sealed, \
         quality_rating, messaging_tier, quality_checked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) \
         ON CONFLICT (phone_number_id) WHERE disconnected_at IS NULL DO NOTHING",
    )
    .bind(n.id)
    .bind(tenant.as_uuid())
    .bind(n.waba_id)
    .bind(n.phone_number_id)
    .bind(n.display_phone_number)
    .bind(n.provider)
    .bind(n.token_sealed)
    .bind(n.quality_rating)
    .bind(n.messaging_tier)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

pub async fn numbers(conn: &mut PgConnection) -> Result<Vec<NumberRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NUMBER_COLUMNS} FROM wa_numbers WHERE disconnected_at IS NULL ORDER BY created_at, id"
    )))
    .fetch_all(conn)
    .await
    .db()
}

/// A connected number (a disconnected one is not found: nothing is sent, simulated or templated
/// on it; its history is read through its messages and conversations).
pub async fn number(conn: &mut PgConnection, id: Uuid) -> Result<Option<NumberRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NUMBER_COLUMNS} FROM wa_numbers WHERE id = $1 AND disconnected_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()
}

/// The number Meta names in a webhook (a system transaction: the workspace is not known yet).
pub async fn number_by_phone_id(conn: &mut PgConnection, phone_number_id: &str) -> Result<Option<NumberRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NUMBER_COLUMNS} FROM wa_numbers WHERE phone_number_id = $1 AND disconnected_at IS NULL"
    )))
    .bind(phone_number_id)
    .fetch_optional(conn)
    .await
    .db()
}

/// The connected number (locked) for a disconnect; `None` when there is none.
pub async fn number_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<NumberRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NUMBER_COLUMNS} FROM wa_numbers WHERE id = $1 AND disconnected_at IS NULL FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()
}

/// Marks the number disconnected and wipes its sealed token.
pub async fn disconnect_number(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_numbers SET disconnected_at = now(), token_sealed = '' WHERE id = $1 AND disconnected_at IS NULL",
    )
    .bind(id)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Claims up to `limit` connected numbers whose standing was last read more than `every_secs`
/// ago (system transaction, every workspace). The claim moves their check time to now, so another
/// replica's sweep skips them from this commit on, and `SKIP LOCKED` keeps two sweeps from taking
/// one row at the same moment.
pub async fn claim_due_standing(conn: &mut PgConnection, every_secs: f64, limit: i64) -> Result<Vec<NumberRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE wa_numbers SET quality_checked_at = now() WHERE id IN ( \
           SELECT id FROM wa_numbers WHERE disconnected_at IS NULL \
             AND (quality_checked_at IS NULL OR quality_checked_at < now() - make_interval(secs => $1)) \
           ORDER BY quality_checked_at NULLS FIRST LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING {NUMBER_COLUMNS}"
    )))
    .bind(every_secs)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// Records the number's standing as just read; answers the rating and tier it had, or `None`
/// when it was disconnected meanwhile. Locks the row, so concurrent refreshes apply one by one.
/// `tier` `None` keeps the stored tier.
pub async fn set_standing(
    conn: &mut PgConnection,
    id: Uuid,
    quality: &str,
    tier: Option<&str>,
) -> Result<Option<(String, String)>, Error> {
    sqlx::query_as(
        "UPDATE wa_numbers n SET quality_rating = $2, messaging_tier = coalesce($3, old.messaging_tier), \
         quality_checked_at = now() \
         FROM (SELECT id, quality_rating, messaging_tier FROM wa_numbers WHERE id = $1 AND disconnected_at IS NULL \
               FOR UPDATE) old \
         WHERE n.id = old.id RETURNING old.quality_rating, old.messaging_tier",
    )
    .bind(id)
    .bind(quality)
    .bind(tier)
    .fetch_optional(conn)
    .await
    .db()
}

/// The connected number of a business account by its display number's digits (Meta's quality
/// webhook names no phone number id); system transaction.
pub async fn number_by_display(
    conn: &mut PgConnection,
    waba_id: &str,
    display_digits: &str,
) -> Result<Option<NumberRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NUMBER_COLUMNS} FROM wa_numbers WHERE waba_id = $1 AND disconnected_at IS NULL \
         AND regexp_replace(display_phone_number, '[^0-9]', '', 'g') = $2 ORDER BY created_at LIMIT 1"
    )))
    .bind(waba_id)
    .bind(display_digits)
    .fetch_optional(conn)
    .await
    .db()
}

/// Applies Meta's quality webhook: the tier it names (`None`: kept), and the rating due for a
/// read now (Meta says it changed but not to what). Answers the rating and tier it had, or
/// `None` when the number is disconnected.
pub async fn set_tier_and_due(
    conn: &mut PgConnection,
    id: Uuid,
    tier: Option<&str>,
) -> Result<Option<(String, String)>, Error> {
    sqlx::query_as(
        "UPDATE wa_numbers n SET messaging_tier = coalesce($2, old.messaging_tier), quality_checked_at = NULL \
         FROM (SELECT id, quality_rating, messaging_tier FROM wa_numbers WHERE id = $1 AND disconnected_at IS NULL \
               FOR UPDATE) old \
         WHERE n.id = old.id RETURNING old.quality_rating, old.messaging_tier",
    )
    .bind(id)
    .bind(tier)
    .fetch_optional(conn)
    .await
    .db()
}

/// When the contact last wrote to the number.
pub async fn last_inbound(
    conn: &mut PgConnection,
    number: Uuid,
    contact: Uuid,
) -> Result<Option<DateTime<Utc>>, Error> {
    sqlx::query_scalar("SELECT last_inbound_at FROM wa_conversations WHERE number_id = $1 AND contact_id = $2")
        .bind(number)
        .bind(contact)
        .fetch_optional(conn)
        .await
        .db()
}

/// Opens or refreshes the window (a redelivered or older message never moves it back); a new
/// message reopens a resolved conversation, counts as unread and puts it on top of the inbox
/// (by arrival: Meta's timestamps have whole seconds).
pub async fn touch_conversation(
    conn: &mut PgConnection,
    tenant: TenantId,
    number: Uuid,
    contact: Uuid,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO wa_conversations (tenant_id, number_id, contact_id, last_inbound_at, last_message_at, unread) \
         VALUES ($1, $2, $3, $4, clock_timestamp(), 1) \
         ON CONFLICT (number_id, contact_id) DO UPDATE SET \
         last_inbound_at = greatest(wa_conversations.last_inbound_at, EXCLUDED.last_inbound_at), \
         last_message_at = greatest(wa_conversations.last_message_at, EXCLUDED.last_message_at), \
         unread = wa_conversations.unread + 1, resolved = false",
    )
    .bind(tenant.as_uuid())
    .bind(number)
    .bind(contact)
    .bind(at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// A message as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub number_id: Uuid,
    pub contact_id: Uuid,
    pub direction: String,
    pub kind: String,
    pub content: Json<serde_json::Value>,
    pub status: String,
    pub wamid: Option<String>,
    pub error_code: Option<i64>,
    pub provider: String,
    pub reservation: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// pending, stored or failed; `None` for a message without media.
    pub media_status: Option<String>,
    pub media_mime: Option<String>,
    pub media_size: Option<i64>,
    pub media_error: Option<String>,
}

const MESSAGE_COLUMNS: &str = "id, number_id, contact_id, direction, kind, content, status, wamid, error_code, provider, \
                               reservation, created_at, updated_at, media_status, media_mime, media_size, media_error";

pub struct NewMessage<'a> {
    pub id: Uuid,
    pub number_id: Uuid,
    pub contact_id: Uuid,
    pub direction: &'a str,
    pub kind: &'a str,
    pub content: &'a serde_json::Value,
    pub status: Status,
    pub wamid: Option<&'a str>,
    pub provider: &'a str,
    pub reservation: &'a str,
    pub at: DateTime<Utc>,
}

/// Marks an inserted inbound message as carrying media to copy in (`pending`).
pub async fn set_media_pending(conn: &mut PgConnection, id: Uuid, media_id: &str, mime: &str) -> Result<(), Error> {
    sqlx::query("UPDATE wa_messages SET media_status = 'pending', media_id = $2, media_mime = $3 WHERE id = $1")
        .bind(id)
        .bind(media_id)
        .bind(mime)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// What the media job needs of a message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MediaRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub number_id: Uuid,
    pub media_status: Option<String>,
    pub media_id: Option<String>,
    pub media_mime: Option<String>,
    pub media_key: Option<String>,
    pub media_size: Option<i64>,
    pub media_error: Option<String>,
    pub media_attempts: i32,
}

const MEDIA_COLUMNS: &str =
    "id, tenant_id, number_id, media_status, media_id, media_mime, media_key, media_size, media_error, media_attempts";

pub async fn media(conn: &mut PgConnection, id: Uuid) -> Result<Option<MediaRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MEDIA_COLUMNS} FROM wa_messages WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

/// Counts a download attempt (committed on its own, so a crash mid-download still counts it);
/// answers the attempts so far.
pub async fn count_media_attempt(conn: &mut PgConnection, id: Uuid) -> Result<i32, Error> {
    sqlx::query_scalar(
        "UPDATE wa_messages SET media_attempts = media_attempts + 1 WHERE id = $1 RETURNING media_attempts",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .db()
}

/// The media is in storage under `key`.
pub async fn set_media_stored(
    conn: &mut PgConnection,
    id: Uuid,
    key: &str,
    sha256: &str,
    size: i64,
    mime: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_messages SET media_status = 'stored', media_key = $2, media_sha256 = $3, media_size = $4, \
         media_mime = $5, media_error = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(key)
    .bind(sha256)
    .bind(size)
    .bind(mime)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The media could not be copied in, for `reason` (a stable code).
pub async fn set_media_failed(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_messages SET media_status = 'failed', media_error = $2, updated_at = now() \
         WHERE id = $1 AND media_status IS DISTINCT FROM 'stored'",
    )
    .bind(id)
    .bind(reason)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Inserts a message; `Ok(false)` when one with the same Meta id exists on the number (a
/// redelivered webhook).
pub async fn insert_message(conn: &mut PgConnection, tenant: TenantId, m: &NewMessage<'_>) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO wa_messages (id, tenant_id, number_id, contact_id, direction, kind, content, status, wamid, provider, \
         reservation, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
         ON CONFLICT (number_id, wamid) WHERE wamid IS NOT NULL DO NOTHING",
    )
    .bind(m.id)
    .bind(tenant.as_uuid())
    .bind(m.number_id)
    .bind(m.contact_id)
    .bind(m.direction)
    .bind(m.kind)
    .bind(Json(m.content))
    .bind(m.status.as_str())
    .bind(m.wamid)
    .bind(m.provider)
    .bind(m.reservation)
    .bind(m.at)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

pub async fn message(conn: &mut PgConnection, id: Uuid) -> Result<Option<MessageRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM wa_messages WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

/// The outbound message Meta knows as `wamid` on the number, locked for its status change.
pub async fn message_by_wamid_for_update(
    conn: &mut PgConnection,
    number: Uuid,
    wamid: &str,
) -> Result<Option<MessageRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM wa_messages WHERE number_id = $1 AND wamid = $2 FOR UPDATE"
    )))
    .bind(number)
    .bind(wamid)
    .fetch_optional(conn)
    .await
    .db()
}

/// Records what Meta answered a send: accepted (its id, `sent`) or refused (`failed`, code).
pub async fn record_send(
    conn: &mut PgConnection,
    id: Uuid,
    wamid: Option<&str>,
    status: Status,
    error_code: Option<i64>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_messages SET wamid = coalesce($2, wamid), status = $3, error_code = $4, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(wamid)
    .bind(status.as_str())
    .bind(error_code)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: Status,
    error_code: Option<i64>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_messages SET status = $2, error_code = coalesce($3, error_code), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(error_code)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// A contact's messages, newest first.
pub async fn messages(conn: &mut PgConnection, contact: Uuid, keyset: &Keyset) -> Result<Page<MessageRow>, Error> {
    let rows: Vec<MessageRow> = keyset
        .bind(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM wa_messages WHERE contact_id = $1 AND {}",
                Keyset::newest_first(2)
            )))
            .bind(contact),
        )
        .fetch_all(conn)
        .await
        .db()?;
    Ok(keyset.page(rows, |m| (m.created_at, m.id)))
}

/// Names of the number's approved templates (the hint offered when a free-form send is refused).
pub async fn approved_template_names(conn: &mut PgConnection, number: Uuid) -> Result<Vec<String>, Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT name FROM wa_templates WHERE number_id = $1 AND status = 'approved' ORDER BY name LIMIT 20",
    )
    .bind(number)
    .fetch_all(conn)
    .await
    .db()
}

/// A template as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: Uuid,
    pub number_id: Uuid,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub reason: String,
    pub components: Json<serde_json::Value>,
    pub body_params: i32,
    pub meta_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const TEMPLATE_COLUMNS: &str =
    "id, number_id, name, language, category, status, reason, components, body_params, meta_id, created_at, updated_at";

pub struct NewTemplate<'a> {
    pub id: Uuid,
    pub number_id: Uuid,
    pub name: &'a str,
    pub language: &'a str,
    pub category: &'a str,
    pub components: &'a serde_json::Value,
    pub body_params: i32,
}

/// Inserts a draft; `Ok(false)` when the number has the name in that language already.
pub async fn insert_template(conn: &mut PgConnection, tenant: TenantId, t: &NewTemplate<'_>) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO wa_templates (id, tenant_id, number_id, name, language, category, status, components, body_params) \
         VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8) ON CONFLICT (number_id, name, language) DO NOTHING",
    )
    .bind(t.id)
    .bind(tenant.as_uuid())
    .bind(t.number_id)
    .bind(t.name)
    .bind(t.language)
    .bind(t.category)
    .bind(Json(t.components))
    .bind(t.body_params)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

pub async fn template(conn: &mut PgConnection, id: Uuid) -> Result<Option<TemplateRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TEMPLATE_COLUMNS} FROM wa_templates WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

pub async fn template_by_name(
    conn: &mut PgConnection,
    number: Uuid,
    name: &str,
    language: &str,
) -> Result<Option<TemplateRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM wa_templates WHERE number_id = $1 AND name = $2 AND language = $3"
    )))
    .bind(number)
    .bind(name)
    .bind(language)
    .fetch_optional(conn)
    .await
    .db()
}

pub async fn templates(conn: &mut PgConnection, number: Uuid) -> Result<Vec<TemplateRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM wa_templates WHERE number_id = $1 ORDER BY name, language"
    )))
    .bind(number)
    .fetch_all(conn)
    .await
    .db()
}

/// Records Meta's review of a template.
pub async fn set_review(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    reason: &str,
    meta_id: Option<&str>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_templates SET status = $2, reason = $3, meta_id = coalesce($4, meta_id), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(meta_id)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn delete_template(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM wa_templates WHERE id = $1").bind(id).execute(conn).await.db()?;
    Ok(())
}

/// Marks a message as part of a broadcast.
pub async fn tag_broadcast(conn: &mut PgConnection, message: Uuid, broadcast: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE wa_messages SET broadcast_id = $2 WHERE id = $1")
        .bind(message)
        .bind(broadcast)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// A number by id in any workspace (the broadcast sender's system transaction).
pub async fn number_any(conn: &mut PgConnection, id: Uuid) -> Result<Option<NumberRow>, Error> {
    number(conn, id).await
}

/// Stores the number's bot.
pub async fn upsert_bot(
    conn: &mut PgConnection,
    tenant: TenantId,
    number: Uuid,
    config: &serde_json::Value,
    enabled: bool,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO wa_bots (number_id, tenant_id, config, enabled) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (number_id) DO UPDATE SET config = EXCLUDED.config, enabled = EXCLUDED.enabled, updated_at = now()",
    )
    .bind(number)
    .bind(tenant.as_uuid())
    .bind(Json(config))
    .bind(enabled)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Removes the number's bot; whether it had one.
pub async fn delete_bot(conn: &mut PgConnection, number: Uuid) -> Result<bool, Error> {
    let done = sqlx::query("DELETE FROM wa_bots WHERE number_id = $1").bind(number).execute(conn).await.db()?;
    Ok(done.rows_affected() == 1)
}

/// The number's enabled bot, and whether a person took the contact's conversation over.
pub async fn bot_for(
    conn: &mut PgConnection,
    number: Uuid,
    contact: Uuid,
) -> Result<Option<(serde_json::Value, bool)>, Error> {
    let row: Option<(Json<serde_json::Value>, Option<bool>)> = sqlx::query_as(
        "SELECT b.config, c.bot_paused FROM wa_bots b \
         LEFT JOIN wa_conversations c ON c.number_id = b.number_id AND c.contact_id = $2 \
         WHERE b.number_id = $1 AND b.enabled",
    )
    .bind(number)
    .bind(contact)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|(c, p)| (c.0, p.unwrap_or(false))))
}

/// Hands the conversation to a person (`true`) or back to the bot; `false` when there is none.
pub async fn set_bot_paused(conn: &mut PgConnection, number: Uuid, contact: Uuid, paused: bool) -> Result<bool, Error> {
    let done = sqlx::query("UPDATE wa_conversations SET bot_paused = $3 WHERE number_id = $1 AND contact_id = $2")
        .bind(number)
        .bind(contact)
        .bind(paused)
        .execute(conn)
        .await
        .db()?;
    Ok(done.rows_affected() == 1)
}
