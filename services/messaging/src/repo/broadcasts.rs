//! WhatsApp broadcasts and their recipients. Claims run in system transactions (the sender
//! serves every workspace); everything a workspace asks runs in its own.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BroadcastRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub number_id: Uuid,
    pub template_name: String,
    pub language: String,
    pub params: Json<Vec<String>>,
    pub status: String,
    pub scheduled_at: DateTime<Utc>,
    pub rate: i32,
    pub total: i32,
    pub reservation: String,
    pub held: i64,
    pub settled: bool,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, tenant_id, number_id, template_name, language, params, status, scheduled_at, rate, total, \
                       reservation, held, settled, created_at, finished_at";

pub struct NewBroadcast<'a> {
    pub id: Uuid,
    pub number_id: Uuid,
    pub template_name: &'a str,
    pub language: &'a str,
    pub params: &'a [String],
    pub scheduled_at: DateTime<Utc>,
    pub rate: i32,
}

pub async fn insert(conn: &mut PgConnection, tenant: TenantId, b: &NewBroadcast<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO wa_broadcasts (id, tenant_id, number_id, template_name, language, params, status, scheduled_at, rate) \
         VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $8)",
    )
    .bind(b.id)
    .bind(tenant.as_uuid())
    .bind(b.number_id)
    .bind(b.template_name)
    .bind(b.language)
    .bind(Json(b.params))
    .bind(b.scheduled_at)
    .bind(b.rate)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn set_total_and_hold(
    conn: &mut PgConnection,
    id: Uuid,
    total: i32,
    reservation: &str,
    held: i64,
) -> Result<(), Error> {
    sqlx::query("UPDATE wa_broadcasts SET total = $2, reservation = $3, held = $4 WHERE id = $1")
        .bind(id)
        .bind(total)
        .bind(reservation)
        .bind(held)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<BroadcastRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM wa_broadcasts WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<BroadcastRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM wa_broadcasts WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

/// Moves a broadcast from one of `from` to `to`; `false` when it was elsewhere.
pub async fn transition(conn: &mut PgConnection, id: Uuid, from: &[&str], to: &str) -> Result<bool, Error> {
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let done = sqlx::query(
        "UPDATE wa_broadcasts SET status = $3, \
         finished_at = CASE WHEN $3 IN ('finished', 'canceled') THEN now() ELSE finished_at END \
         WHERE id = $1 AND status = ANY($2)",
    )
    .bind(id)
    .bind(&from)
    .bind(to)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// The number's broadcasts that have not ended (scheduled, running or paused), locked.
pub async fn live_of_number_for_update(conn: &mut PgConnection, number: Uuid) -> Result<Vec<BroadcastRow>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM wa_broadcasts WHERE number_id = $1 AND status IN ('scheduled', 'running', 'paused') \
         ORDER BY id FOR UPDATE"
    )))
    .bind(number)
    .fetch_all(conn)
    .await
    .db()
}

/// Recipients not yet started are canceled with their broadcast.
pub async fn cancel_queued(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_broadcast_recipients SET state = 'canceled', updated_at = now() \
         WHERE broadcast_id = $1 AND state IN ('queued', 'claimed')",
    )
    .bind(id)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn mark_settled(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let done = sqlx::query("UPDATE wa_broadcasts SET settled = true WHERE id = $1 AND NOT settled")
        .bind(id)
        .execute(conn)
        .await
        .db()?;
    Ok(done.rows_affected() == 1)
}

/// Counts of a broadcast's recipients by state, and of its messages delivered, read and
/// replied to.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Totals {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub unknown: i64,
    pub canceled: i64,
    pub delivered: i64,
    pub read: i64,
    pub replied: i64,
}

pub async fn totals(conn: &mut PgConnection, id: Uuid) -> Result<Totals, Error> {
    sqlx::query_as(
        "SELECT \
           count(*) FILTER (WHERE r.state IN ('queued', 'claimed')) AS queued, \
           count(*) FILTER (WHERE r.state = 'sending') AS sending, \
           count(*) FILTER (WHERE r.state = 'sent') AS sent, \
           count(*) FILTER (WHERE r.state = 'failed') AS failed, \
           count(*) FILTER (WHERE r.state = 'unknown') AS unknown, \
           count(*) FILTER (WHERE r.state = 'canceled') AS canceled, \
           count(*) FILTER (WHERE m.status IN ('delivered', 'read')) AS delivered, \
           count(*) FILTER (WHERE m.status = 'read') AS read, \
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM wa_messages i WHERE i.contact_id = r.contact_id \
                AND i.number_id = m.number_id AND i.direction = 'in' AND i.created_at > m.created_at)) AS replied \
         FROM wa_broadcast_recipients r LEFT JOIN wa_messages m ON m.id = r.message_id \
         WHERE r.broadcast_id = $1",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .db()
}

// ---------------------------------------------------------------------------------------------
// The sender (system transactions)

/// Scheduled broadcasts whose time came start running.
pub async fn start_due(conn: &mut PgConnection) -> Result<u64, Error> {
    let done =
        sqlx::query("UPDATE wa_broadcasts SET status = 'running' WHERE status = 'scheduled' AND scheduled_at <= now()")
            .execute(conn)
            .await
            .db()?;
    Ok(done.rows_affected())
}

/// A recipient claimed for sending, with what sending needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub broadcast_id: Uuid,
    pub contact_id: Uuid,
    pub tenant_id: Uuid,
    pub to_number: String,
    pub params: Json<serde_json::Value>,
    pub attempts: i32,
    pub number_id: Uuid,
    pub template_name: String,
    pub language: String,
    pub param_specs: Json<Vec<String>>,
    pub rate: i32,
}

/// Claims up to `limit` due recipients of running broadcasts for `lease_secs` (rows another
/// sender holds are skipped, not waited for).
pub async fn claim(conn: &mut PgConnection, claim: Uuid, limit: i64, lease_secs: f64) -> Result<Vec<Claimed>, Error> {
    sqlx::query_as(
        "WITH due AS ( \
           SELECT r.broadcast_id, r.contact_id FROM wa_broadcast_recipients r \
           JOIN wa_broadcasts b ON b.id = r.broadcast_id \
           WHERE r.state = 'queued' AND r.next_at <= now() AND b.status = 'running' \
           ORDER BY r.next_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED) \
         UPDATE wa_broadcast_recipients r SET state = 'claimed', claim_id = $3, \
           lease_until = now() + make_interval(secs => $2), updated_at = now() \
         FROM due, wa_broadcasts b \
         WHERE r.broadcast_id = due.broadcast_id AND r.contact_id = due.contact_id AND b.id = r.broadcast_id \
         RETURNING r.broadcast_id, r.contact_id, r.tenant_id, r.to_number, r.params, r.attempts, b.number_id, \
           b.template_name, b.language, b.params AS param_specs, b.rate",
    )
    .bind(limit)
    .bind(lease_secs)
    .bind(claim)
    .fetch_all(conn)
    .await
    .db()
}

/// The last step before calling Meta: `false` when the claim was lost (its lease ran out, maybe
/// taken by another sender) or the broadcast is no longer running, and then nothing may be sent.
pub async fn mark_sending(
    conn: &mut PgConnection,
    claim: Uuid,
    broadcast: Uuid,
    contact: Uuid,
    message: Uuid,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE wa_broadcast_recipients SET state = 'sending', attempts = attempts + 1, message_id = $3, updated_at = now() \
         WHERE broadcast_id = $1 AND contact_id = $2 AND state = 'claimed' AND claim_id = $4 AND lease_until > now() \
         AND EXISTS (SELECT 1 FROM wa_broadcasts b WHERE b.id = $1 AND b.status = 'running')",
    )
    .bind(broadcast)
    .bind(contact)
    .bind(message)
    .bind(claim)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// Gives an unstarted claim back to the queue (paused broadcast, stopping sender).
pub async fn release(conn: &mut PgConnection, claim: Uuid, broadcast: Uuid, contact: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_broadcast_recipients SET state = 'queued', lease_until = NULL, claim_id = NULL, updated_at = now() \
         WHERE broadcast_id = $1 AND contact_id = $2 AND state = 'claimed' AND claim_id = $3",
    )
    .bind(broadcast)
    .bind(contact)
    .bind(claim)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Records how a recipient's send ended: `sent`, `failed`, or back to `queued` at `next_at`.
pub async fn record(
    conn: &mut PgConnection,
    broadcast: Uuid,
    contact: Uuid,
    state: &str,
    error_code: Option<i64>,
    next_at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE wa_broadcast_recipients SET state = $3, error_code = $4, next_at = coalesce($5, next_at), \
         lease_until = NULL, updated_at = now() WHERE broadcast_id = $1 AND contact_id = $2 AND state = 'sending'",
    )
    .bind(broadcast)
    .bind(contact)
    .bind(state)
    .bind(error_code)
    .bind(next_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// [`mark_sending`] of many recipients in one statement, each `(claim, broadcast, contact,
/// message)`: answers the `(broadcast, contact)` marked; the others may not be sent. The lease
/// runs `lease_secs` from the mark (a claim may have waited its turn): a send gets all of it.
pub async fn mark_sending_many(
    conn: &mut PgConnection,
    rows: &[(Uuid, Uuid, Uuid, Uuid)],
    lease_secs: f64,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    let claims: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let broadcasts: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
    let contacts: Vec<Uuid> = rows.iter().map(|r| r.2).collect();
    let messages: Vec<Uuid> = rows.iter().map(|r| r.3).collect();
    sqlx::query_as(
        "UPDATE wa_broadcast_recipients r SET state = 'sending', attempts = r.attempts + 1, message_id = u.message, \
           lease_until = greatest(r.lease_until, now() + make_interval(secs => $5)), updated_at = now() \
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) AS u(claim, broadcast, contact, message) \
         WHERE r.broadcast_id = u.broadcast AND r.contact_id = u.contact AND r.state = 'claimed' \
           AND r.claim_id = u.claim AND r.lease_until > now() \
           AND EXISTS (SELECT 1 FROM wa_broadcasts b WHERE b.id = u.broadcast AND b.status = 'running') \
         RETURNING r.broadcast_id, r.contact_id",
    )
    .bind(&claims)
    .bind(&broadcasts)
    .bind(&contacts)
    .bind(&messages)
    .bind(lease_secs)
    .fetch_all(conn)
    .await
    .db()
}

/// Gives every unstarted recipient of these claims back to the queue (a stopping sender).
pub async fn release_claims(conn: &mut PgConnection, claims: &[Uuid]) -> Result<u64, Error> {
    let done = sqlx::query(
        "UPDATE wa_broadcast_recipients SET state = 'queued', lease_until = NULL, claim_id = NULL, updated_at = now() \
         WHERE state = 'claimed' AND claim_id = ANY($1)",
    )
    .bind(claims)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected())
}

/// How one recipient's send ended, for [`record_many`].
#[derive(Debug, Clone)]
pub struct Outcome {
    pub broadcast: Uuid,
    pub contact: Uuid,
    /// `sent`, `failed`, `unknown`, or `queued` again at `next_at`.
    pub state: &'static str,
    pub error_code: Option<i64>,
    pub next_at: Option<DateTime<Utc>>,
}

/// [`record`] of many recipients in one statement; answers the `(broadcast, contact)` recorded
/// (still `sending` until now), so what follows a send is written once even when retried.
pub async fn record_many(conn: &mut PgConnection, outcomes: &[&Outcome]) -> Result<Vec<(Uuid, Uuid)>, Error> {
    let broadcasts: Vec<Uuid> = outcomes.iter().map(|o| o.broadcast).collect();
    let contacts: Vec<Uuid> = outcomes.iter().map(|o| o.contact).collect();
    let states: Vec<&str> = outcomes.iter().map(|o| o.state).collect();
    let codes: Vec<Option<i64>> = outcomes.iter().map(|o| o.error_code).collect();
    let next: Vec<Option<DateTime<Utc>>> = outcomes.iter().map(|o| o.next_at).collect();
    sqlx::query_as(
        "UPDATE wa_broadcast_recipients r SET state = u.state, error_code = u.code, next_at = coalesce(u.next_at, r.next_at), \
           lease_until = NULL, updated_at = now() \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::timestamptz[]) AS u(broadcast, contact, state, code, next_at) \
         WHERE r.broadcast_id = u.broadcast AND r.contact_id = u.contact AND r.state = 'sending' \
         RETURNING r.broadcast_id, r.contact_id",
    )
    .bind(&broadcasts)
    .bind(&contacts)
    .bind(&states)
    .bind(&codes)
    .bind(&next)
    .fetch_all(conn)
    .await
    .db()
}

/// A broadcast message Meta accepted, for [`insert_sent`].
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub id: Uuid,
    pub broadcast: Uuid,
    pub number: Uuid,
    pub contact: Uuid,
    pub content: serde_json::Value,
    pub wamid: String,
    pub provider: &'static str,
    pub at: DateTime<Utc>,
}

/// Stores sent broadcast messages (outbound templates, tagged with their broadcast) in one
/// statement.
pub async fn insert_sent(conn: &mut PgConnection, tenant: TenantId, sent: &[&SentMessage]) -> Result<(), Error> {
    let ids: Vec<Uuid> = sent.iter().map(|m| m.id).collect();
    let broadcasts: Vec<Uuid> = sent.iter().map(|m| m.broadcast).collect();
    let numbers: Vec<Uuid> = sent.iter().map(|m| m.number).collect();
    let contacts: Vec<Uuid> = sent.iter().map(|m| m.contact).collect();
    let contents: Vec<Json<&serde_json::Value>> = sent.iter().map(|m| Json(&m.content)).collect();
    let wamids: Vec<&str> = sent.iter().map(|m| m.wamid.as_str()).collect();
    let providers: Vec<&str> = sent.iter().map(|m| m.provider).collect();
    let at: Vec<DateTime<Utc>> = sent.iter().map(|m| m.at).collect();
    sqlx::query(
        "INSERT INTO wa_messages (id, tenant_id, number_id, contact_id, direction, kind, content, status, wamid, provider, \
           reservation, broadcast_id, created_at, updated_at) \
         SELECT u.id, $1, u.number, u.contact, 'out', 'template', u.content, 'sent', u.wamid, u.provider, '', u.broadcast, \
           u.at, u.at \
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::jsonb[], $7::text[], $8::text[], $9::timestamptz[]) \
           AS u(id, broadcast, number, contact, content, wamid, provider, at) \
         ON CONFLICT (number_id, wamid) WHERE wamid IS NOT NULL DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(&ids)
    .bind(&broadcasts)
    .bind(&numbers)
    .bind(&contacts)
    .bind(&contents)
    .bind(&wamids)
    .bind(&providers)
    .bind(&at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Gives claims whose lease ran out back to the queue (Meta was never called for them), and
/// marks sends whose lease ran out mid-call `unknown`: Meta may have sent them, and a second
/// send could reach the customer twice. Answers (requeued, unknown).
pub async fn recover(conn: &mut PgConnection) -> Result<(u64, u64), Error> {
    let requeued = sqlx::query(
        "UPDATE wa_broadcast_recipients SET state = 'queued', lease_until = NULL, updated_at = now() \
         WHERE state = 'claimed' AND lease_until < now()",
    )
    .execute(&mut *conn)
    .await
    .db()?
    .rows_affected();
    let unknown = sqlx::query(
        "UPDATE wa_broadcast_recipients SET state = 'unknown', lease_until = NULL, updated_at = now() \
         WHERE state = 'sending' AND lease_until < now()",
    )
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok((requeued, unknown))
}

/// Running broadcasts with nothing left to send.
pub async fn done(conn: &mut PgConnection) -> Result<Vec<(Uuid, Uuid)>, Error> {
    sqlx::query_as(
        "SELECT b.id, b.tenant_id FROM wa_broadcasts b WHERE b.status = 'running' AND NOT EXISTS \
         (SELECT 1 FROM wa_broadcast_recipients r WHERE r.broadcast_id = b.id AND r.state IN ('queued', 'claimed', 'sending'))",
    )
    .fetch_all(conn)
    .await
    .db()
}

/// Per-recipient results, in contact order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecipientRow {
    pub contact_id: Uuid,
    pub state: String,
    pub attempts: i32,
    pub error_code: Option<i64>,
    pub message_id: Option<Uuid>,
}

pub async fn recipients(
    conn: &mut PgConnection,
    id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RecipientRow>, Error> {
    sqlx::query_as(
        "SELECT contact_id, state, attempts, error_code, message_id FROM wa_broadcast_recipients \
         WHERE broadcast_id = $1 AND ($2::uuid IS NULL OR contact_id > $2) ORDER BY contact_id LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// The workspace's broadcasts, newest first.
pub async fn list(
    conn: &mut PgConnection,
    keyset: &nexus_platform::db::Keyset,
) -> Result<nexus_kernel::Page<BroadcastRow>, Error> {
    let rows: Vec<BroadcastRow> = keyset
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM wa_broadcasts WHERE {}",
            nexus_platform::db::Keyset::newest_first(1)
        ))))
        .fetch_all(conn)
        .await
        .db()?;
    Ok(keyset.page(rows, |b| (b.created_at, b.id)))
}
