//! Outbound webhooks: endpoints, messages, the delivery schedule and the attempts log.
//!
//! Use-case functions run in a tenant transaction (RLS confines them); the worker's functions
//! (`claim`, `finish`, …) run in a system transaction over every workspace and name the tenant
//! in every write.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::webhooks::{Attempt, Endpoint, Message};

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, rate_limit, status, disabled_reason, \
                                failing_since, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    description: String,
    event_types: Vec<String>,
    rate_limit: i32,
    status: String,
    disabled_reason: String,
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<Endpoint, Error> {
        Ok(Endpoint {
            id: self.id,
            url: self.url,
            description: self.description,
            event_types: self.event_types,
            rate_limit: u32::try_from(self.rate_limit).map_err(Error::internal)?,
            status: self.status.parse().map_err(|_| Error::internal(format!("stored status {}", self.status)))?,
            disabled_reason: self.disabled_reason,
            failing_since: self.failing_since,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A new endpoint's checked attributes.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
    pub rate_limit: u32,
    pub secret_sealed: &'a str,
}

pub async fn insert_endpoint(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    e: &NewEndpoint<'_>,
) -> Result<Endpoint, Error> {
    let row: EndpointRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, rate_limit, secret_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(tenant.as_uuid())
    .bind(e.url)
    .bind(e.description)
    .bind(e.event_types)
    .bind(i32::try_from(e.rate_limit).map_err(Error::internal)?)
    .bind(e.secret_sealed)
    .fetch_one(conn)
    .await
    .db()?;
    row.into_endpoint()
}

pub async fn get_endpoint(conn: &mut PgConnection, id: Uuid) -> Result<Option<Endpoint>, Error> {
    let row: Option<EndpointRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .db()?;
    row.map(EndpointRow::into_endpoint).transpose()
}

/// Newest first.
pub async fn list_endpoints(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Endpoint>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<EndpointRow> = keyset.bind(q).fetch_all(conn).await.db()?;
    let endpoints = rows.into_iter().map(EndpointRow::into_endpoint).collect::<Result<Vec<_>, _>>()?;
    Ok(keyset.page(endpoints, |e| (e.created_at, e.id)))
}

/// The fields an update changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub rate_limit: Option<u32>,
    /// Re-enable a disabled endpoint (its failure streak starts over).
    pub enable: bool,
}

pub async fn update_endpoint(conn: &mut PgConnection, id: Uuid, c: &EndpointChange) -> Result<Option<Endpoint>, Error> {
    let rate: Option<i32> = c.rate_limit.map(i32::try_from).transpose().map_err(Error::internal)?;
    let row: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET \
           url = coalesce($2, url), description = coalesce($3, description), \
           event_types = coalesce($4, event_types), rate_limit = coalesce($5, rate_limit), \
           status = CASE WHEN $6 THEN 'enabled' ELSE status END, \
           disabled_reason = CASE WHEN $6 THEN '' ELSE disabled_reason END, \
           failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END, \
           updated_at = now() \
         WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(c.url.as_deref())
    .bind(c.description.as_deref())
    .bind(c.event_types.as_deref())
    .bind(rate)
    .bind(c.enable)
    .fetch_optional(conn)
    .await
    .db()?;
    row.map(EndpointRow::into_endpoint).transpose()
}

/// Deletes an endpoint with its schedule and attempts; false when there was none.
pub async fn delete_endpoint(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let gone = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id).execute(conn).await.db()?;
    Ok(gone.rows_affected() > 0)
}

/// The sealed current secret, locked for a rotation.
pub async fn secret_for_rotation(conn: &mut PgConnection, id: Uuid) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT secret_sealed FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

/// Installs a new secret; the old one (re-sealed for its new column) signs until `expires`.
pub async fn rotate_secret(
    conn: &mut PgConnection,
    id: Uuid,
    secret_sealed: &str,
    previous_sealed: &str,
    expires: DateTime<Utc>,
) -> Result<Option<Endpoint>, Error> {
    let row: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET secret_sealed = $2, previous_secret_sealed = $3, previous_expires_at = $4, \
           updated_at = now() WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(secret_sealed)
    .bind(previous_sealed)
    .bind(expires)
    .fetch_optional(conn)
    .await
    .db()?;
    row.map(EndpointRow::into_endpoint).transpose()
}

// --- messages ---

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    event_type: String,
    event_key: String,
    payload: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Message {
            id: r.id,
            event_type: r.event_type,
            event_key: r.event_key,
            payload: r.payload.0,
            created_at: r.created_at,
        }
    }
}

const MESSAGE_COLUMNS: &str = "id, event_type, event_key, payload, created_at";

/// Stores a message once per `event_key`: `None` when the key was already used (the event was
/// handled before).
pub async fn insert_message(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    event_type: &str,
    event_key: &str,
    payload: &serde_json::Value,
) -> Result<Option<Message>, Error> {
    let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_messages (id, tenant_id, event_type, event_key, payload) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, event_key) DO NOTHING RETURNING {MESSAGE_COLUMNS}"
    )))
    .bind(id)
    .bind(tenant.as_uuid())
    .bind(event_type)
    .bind(event_key)
    .bind(Json(payload))
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(Message::from))
}

/// [`insert_message`] of many messages of one type in one statement: `(id, event key, payload)`.
/// Answers the ids inserted (a key seen before inserts nothing).
pub async fn insert_messages(
    conn: &mut PgConnection,
    tenant: TenantId,
    event_type: &str,
    messages: &[(Uuid, String, serde_json::Value)],
) -> Result<Vec<Uuid>, Error> {
    let ids: Vec<Uuid> = messages.iter().map(|m| m.0).collect();
    let keys: Vec<&str> = messages.iter().map(|m| m.1.as_str()).collect();
    let payloads: Vec<Json<&serde_json::Value>> = messages.iter().map(|m| Json(&m.2)).collect();
    sqlx::query_scalar(
        "INSERT INTO webhook_messages (id, tenant_id, event_type, event_key, payload) \
         SELECT m.id, $1, $2, m.key, m.payload FROM unnest($3::uuid[], $4::text[], $5::jsonb[]) AS m(id, key, payload) \
         ON CONFLICT (tenant_id, event_key) DO NOTHING RETURNING id",
    )
    .bind(tenant.as_uuid())
    .bind(event_type)
    .bind(&ids)
    .bind(&keys)
    .bind(&payloads)
    .fetch_all(conn)
    .await
    .db()
}

/// [`fan_out`] of many messages of one type in one statement; answers how many deliveries.
pub async fn fan_out_many(
    conn: &mut PgConnection,
    tenant: TenantId,
    messages: &[Uuid],
    event_type: &str,
) -> Result<u64, Error> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id) \
         SELECT uuid_v7(), e.tenant_id, e.id, m.id FROM webhook_endpoints e CROSS JOIN unnest($2::uuid[]) AS m(id) \
         WHERE e.tenant_id = $1 AND e.status = 'enabled' AND {} \
         ON CONFLICT (endpoint_id, message_id) DO NOTHING",
        filter_admits("e.event_types", "$3")
    )))
    .bind(tenant.as_uuid())
    .bind(messages)
    .bind(event_type)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected())
}

/// The SQL test of the domain's `matches`: an endpoint's filter `f` (alias of its
/// `event_types`) admits event type `$t`.
fn filter_admits(types: &str, param: &str) -> String {
    format!(
        "(cardinality({types}) = 0 OR EXISTS (SELECT 1 FROM unnest({types}) f \
           WHERE f = {param} OR (right(f, 2) = '.*' AND starts_with({param}, left(f, -1)))))"
    )
}

/// A pending delivery of the message to every enabled endpoint of the workspace whose filter
/// admits its type; answers how many.
pub async fn fan_out(conn: &mut PgConnection, tenant: TenantId, message: Uuid, event_type: &str) -> Result<u64, Error> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id) \
         SELECT uuid_v7(), tenant_id, id, $2 FROM webhook_endpoints \
         WHERE tenant_id = $1 AND status = 'enabled' AND {} \
         ON CONFLICT (endpoint_id, message_id) DO NOTHING",
        filter_admits("event_types", "$3")
    )))
    .bind(tenant.as_uuid())
    .bind(message)
    .bind(event_type)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected())
}

/// Schedules `message` for `endpoint` now: a new delivery, or the existing one started over
/// (a manual replay or test-send, also of a message that was delivered).
pub async fn schedule(conn: &mut PgConnection, tenant: TenantId, endpoint: Uuid, message: Uuid) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id) VALUES (uuid_v7(), $1, $2, $3) \
         ON CONFLICT (endpoint_id, message_id) DO UPDATE SET status = 'pending', attempts = 0, \
           next_attempt_at = now(), leased_until = NULL, lease_token = NULL, updated_at = now()",
    )
    .bind(tenant.as_uuid())
    .bind(endpoint)
    .bind(message)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// [`schedule`] for every message since `since` that the endpoint's filter admits; answers how many.
pub async fn schedule_since(
    conn: &mut PgConnection,
    tenant: TenantId,
    endpoint: Uuid,
    since: DateTime<Utc>,
) -> Result<u64, Error> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id) \
         SELECT uuid_v7(), m.tenant_id, e.id, m.id \
         FROM webhook_endpoints e JOIN webhook_messages m ON m.tenant_id = e.tenant_id \
         WHERE e.id = $2 AND e.tenant_id = $1 AND m.created_at >= $3 AND {} \
         ON CONFLICT (endpoint_id, message_id) DO UPDATE SET status = 'pending', attempts = 0, \
           next_attempt_at = now(), leased_until = NULL, lease_token = NULL, updated_at = now()",
        filter_admits("e.event_types", "m.event_type")
    )))
    .bind(tenant.as_uuid())
    .bind(endpoint)
    .bind(since)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected())
}

pub async fn get_message(conn: &mut PgConnection, id: Uuid) -> Result<Option<Message>, Error> {
    let row: Option<MessageRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .db()?;
    Ok(row.map(Message::from))
}

/// Newest first, of one type or all.
pub async fn list_messages(
    conn: &mut PgConnection,
    event_type: Option<&str>,
    keyset: &Keyset,
) -> Result<Page<Message>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE ($1::text IS NULL OR event_type = $1) AND {}",
        Keyset::newest_first(2)
    )))
    .bind(event_type);
    let rows: Vec<MessageRow> = keyset.bind(q).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows.into_iter().map(Message::from).collect(), |m| (m.created_at, m.id)))
}

// --- attempts ---

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: Uuid,
    delivery_id: Uuid,
    endpoint_id: Uuid,
    message_id: Uuid,
    attempt: i32,
    outcome: String,
    status_code: Option<i32>,
    duration_ms: i32,
    request_url: String,
    request_headers: Json<serde_json::Value>,
    request_sha256: String,
    response_body: String,
    started_at: DateTime<Utc>,
}

impl From<AttemptRow> for Attempt {
    fn from(r: AttemptRow) -> Self {
        Attempt {
            id: r.id,
            delivery_id: r.delivery_id,
            endpoint_id: r.endpoint_id,
            message_id: r.message_id,
            attempt: r.attempt,
            outcome: r.outcome,
            status_code: r.status_code,
            duration_ms: r.duration_ms,
            request_url: r.request_url,
            request_headers: r.request_headers.0,
            request_sha256: r.request_sha256,
            response_body: r.response_body,
            started_at: r.started_at,
        }
    }
}

/// An endpoint's attempts (of one message, or all), newest first.
pub async fn list_attempts(
    conn: &mut PgConnection,
    endpoint: Uuid,
    message: Option<Uuid>,
    keyset: &Keyset,
) -> Result<Page<Attempt>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, delivery_id, endpoint_id, message_id, attempt, outcome, status_code, duration_ms, request_url, \
                request_headers, request_sha256, response_body, started_at \
         FROM webhook_attempts WHERE endpoint_id = $1 AND ($2::uuid IS NULL OR message_id = $2) AND {}",
        Keyset::newest_first_by("started_at", "id", 3)
    )))
    .bind(endpoint)
    .bind(message);
    let rows: Vec<AttemptRow> = keyset.bind(q).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows.into_iter().map(Attempt::from).collect(), |a| (a.started_at, a.id)))
}

// --- the delivery worker (system transactions) ---

/// A delivery a worker holds: what it needs to sign and send.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub message_id: Uuid,
    /// Attempts made before this one.
    pub attempts: i32,
    pub lease_token: Uuid,
    pub url: String,
    pub endpoint_status: String,
    pub rate_limit: i32,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub event_type: String,
    /// The message's `data` as JSON text: sent as it is, never parsed.
    pub payload: String,
    pub message_created_at: DateTime<Utc>,
}

/// Takes up to `limit` due deliveries (oldest due first) for `lease_until`; a worker that dies
/// leaves its rows due again when the lease runs out. One autocommitted statement (migration
/// 0003): it runs across workspaces and its commit does not wait for the disk. Only unindexed
/// columns change, so a claim is a heap-only update (the due index skips the few held rows).
pub async fn claim(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Claimed>, Error> {
    sqlx::query_as("SELECT * FROM claim_webhook_deliveries($1, $2, $3)")
        .bind(now)
        .bind(lease_until)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .fetch_all(conn)
        .await
        .db()
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// The schedule is spent.
    Failed,
    /// Not sent (its endpoint is disabled).
    Cancelled,
    /// Not attempted (the endpoint's rate limit): due again at this time, no attempt counted.
    Deferred(DateTime<Utc>),
}

/// The end of one claim, for [`finish`].
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub id: Uuid,
    pub lease: Uuid,
    pub next: Next,
    /// When the attempt started (the worker's clock): the schedule counts from it.
    pub at: DateTime<Utc>,
}

/// Ends claims in one statement. Answers the ids whose lease was still theirs: a lease that
/// was taken over (it ran out and another worker claimed the delivery, or a replay started it
/// over) records nothing.
pub async fn finish(conn: &mut PgConnection, done: &[Finished]) -> Result<Vec<Uuid>, Error> {
    let mut cols = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for f in done {
        let (status, counted, at, succeeded_at) = match f.next {
            Next::Succeeded => ("succeeded", 1, f.at, Some(f.at)),
            Next::Retry(at) => ("pending", 1, at, None),
            Next::Failed => ("failed", 1, f.at, None),
            Next::Cancelled => ("cancelled", 0, f.at, None),
            Next::Deferred(at) => ("pending", 0, at, None),
        };
        cols.0.push(f.id);
        cols.1.push(f.lease);
        cols.2.push(status);
        cols.3.push(counted);
        cols.4.push(at);
        cols.5.push(succeeded_at);
    }
    sqlx::query_scalar(
        "UPDATE webhook_deliveries d SET status = u.status, attempts = d.attempts + u.counted,            next_attempt_at = u.next_at, succeeded_at = coalesce(u.succeeded_at, d.succeeded_at),            leased_until = NULL, lease_token = NULL, updated_at = now()          FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int4[], $5::timestamptz[], $6::timestamptz[])            AS u(id, lease, status, counted, next_at, succeeded_at)          WHERE d.id = u.id AND d.lease_token = u.lease RETURNING d.id",
    )
    .bind(&cols.0)
    .bind(&cols.1)
    .bind(&cols.2)
    .bind(&cols.3)
    .bind(&cols.4)
    .bind(&cols.5)
    .fetch_all(conn)
    .await
    .db()
}

/// An attempt as the worker records it.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub tenant: Uuid,
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub message_id: Uuid,
    pub attempt: i32,
    pub outcome: &'a str,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub request_url: &'a str,
    pub request_headers: &'a serde_json::Value,
    pub request_sha256: &'a str,
    pub response_body: &'a str,
    pub started_at: DateTime<Utc>,
}

/// Records attempts in one statement.
pub async fn insert_attempts(conn: &mut PgConnection, attempts: &[NewAttempt<'_>]) -> Result<(), Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let col = |f: &dyn Fn(&NewAttempt<'_>) -> Uuid| attempts.iter().map(f).collect::<Vec<Uuid>>();
    sqlx::query(
        "INSERT INTO webhook_attempts (id, tenant_id, delivery_id, endpoint_id, message_id, attempt, outcome,            status_code, duration_ms, request_url, request_headers, request_sha256, response_body, started_at)          SELECT uuid_v7(), t, d, e, m, n, o, s, ms, url, h::jsonb, sha, body, at          FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int4[], $6::text[], $7::int4[],                      $8::int4[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])            AS a(t, d, e, m, n, o, s, ms, url, h, sha, body, at)",
    )
    .bind(col(&|a| a.tenant))
    .bind(col(&|a| a.delivery_id))
    .bind(col(&|a| a.endpoint_id))
    .bind(col(&|a| a.message_id))
    .bind(attempts.iter().map(|a| a.attempt).collect::<Vec<i32>>())
    .bind(attempts.iter().map(|a| a.outcome).collect::<Vec<&str>>())
    .bind(attempts.iter().map(|a| a.status_code).collect::<Vec<Option<i32>>>())
    .bind(attempts.iter().map(|a| a.duration_ms).collect::<Vec<i32>>())
    .bind(attempts.iter().map(|a| a.request_url).collect::<Vec<&str>>())
    .bind(attempts.iter().map(|a| a.request_headers.to_string()).collect::<Vec<String>>())
    .bind(attempts.iter().map(|a| a.request_sha256).collect::<Vec<&str>>())
    .bind(attempts.iter().map(|a| a.response_body).collect::<Vec<&str>>())
    .bind(attempts.iter().map(|a| a.started_at).collect::<Vec<DateTime<Utc>>>())
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Each endpoint's failure streak after a group of attempts (`None`: it succeeded, which ends
/// the streak; `Some(at)`: it failed, which starts one at `at` where none runs). One statement
/// over ids in ascending order, so recorders committing side by side lock endpoints in the same
/// order; an endpoint that succeeded and was not failing is not touched at all. Answers since
/// when each endpoint that failed has been failing.
pub async fn endpoint_streaks(
    conn: &mut PgConnection,
    outcomes: &[(Uuid, Option<DateTime<Utc>>)],
) -> Result<Vec<(Uuid, DateTime<Utc>)>, Error> {
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted = outcomes.to_vec();
    sorted.sort_by_key(|(id, _)| *id);
    let rows: Vec<(Uuid, Option<DateTime<Utc>>)> = sqlx::query_as(
        "UPDATE webhook_endpoints e SET failing_since = \
           CASE WHEN u.failed_at IS NULL THEN NULL ELSE coalesce(e.failing_since, u.failed_at) END \
         FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, failed_at) \
         WHERE e.id = u.id AND (u.failed_at IS NOT NULL OR e.failing_since IS NOT NULL) \
         RETURNING e.id, e.failing_since",
    )
    .bind(sorted.iter().map(|(id, _)| *id).collect::<Vec<Uuid>>())
    .bind(sorted.iter().map(|(_, at)| *at).collect::<Vec<Option<DateTime<Utc>>>>())
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().filter_map(|(id, since)| since.map(|s| (id, s))).collect())
}

/// Disables an enabled endpoint and cancels its pending deliveries (held ones too: their
/// worker's lease is void). Answers the URL when this call disabled it.
pub async fn disable_endpoint(conn: &mut PgConnection, endpoint: Uuid, reason: &str) -> Result<Option<String>, Error> {
    let url: Option<String> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $2, updated_at = now() \
         WHERE id = $1 AND status = 'enabled' RETURNING url",
    )
    .bind(endpoint)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    if url.is_some() {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'cancelled', leased_until = NULL, lease_token = NULL, \
               updated_at = now() WHERE endpoint_id = $1 AND status = 'pending'",
        )
        .bind(endpoint)
        .execute(conn)
        .await
        .db()?;
    }
    Ok(url)
}

/// Deletes up to `limit` attempts started before `before`; answers how many.
pub async fn sweep_attempts(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> Result<u64, Error> {
    let done = sqlx::query(
        "DELETE FROM webhook_attempts WHERE id IN \
           (SELECT id FROM webhook_attempts WHERE started_at < $1 ORDER BY started_at LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected())
}

/// Deletes up to `limit` messages created before `before` with the deliveries they have left
/// (none pending: a pending delivery keeps its message); answers how many messages.
pub async fn sweep_messages(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> Result<u64, Error> {
    sqlx::query(
        "DELETE FROM webhook_deliveries WHERE id IN \
           (SELECT d.id FROM webhook_messages m JOIN webhook_deliveries d \
              ON d.tenant_id = m.tenant_id AND d.message_id = m.id \
            WHERE m.created_at < $1 AND d.status <> 'pending' AND d.updated_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(&mut *conn)
    .await
    .db()?;
    let done = sqlx::query(
        "DELETE FROM webhook_messages WHERE id IN \
           (SELECT m.id FROM webhook_messages m WHERE m.created_at < $1 AND NOT EXISTS \
              (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = m.tenant_id AND d.message_id = m.id) \
            ORDER BY m.created_at LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected())
}
