//! The transactional outbox.
//!
//! [`enqueue`] writes an event row in the caller's transaction, so the event exists exactly when
//! the state change does. [`OutboxRelay`] publishes pending rows to JetStream with
//! `Nats-Msg-Id` = event id and marks them sent only after JetStream acknowledged them. If the
//! relay dies in between, the row is published again and JetStream's duplicate window drops the
//! copy; consumers' inboxes catch anything older than the window.

use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use nexus_kernel::TenantId;
use nexus_kernel::ids::EventId;
use nexus_proto::events::{AuditRecorded, Envelope};

use crate::bus::Bus;
use crate::context::RequestContext;

/// Writes an event into the outbox inside the caller's transaction. `subject` is
/// `nexus.<service>.<entity>.<verb>` without any deployment prefix.
pub async fn enqueue<M>(
    conn: &mut PgConnection,
    subject: &str,
    tenant: Option<TenantId>,
    message: &M,
) -> Result<EventId, sqlx::Error>
where
    M: Message + prost::Name,
{
    // One row through the bulk writer: one INSERT statement to keep in step with the table.
    let ids = enqueue_many(conn, subject, tenant, std::slice::from_ref(message)).await?;
    Ok(ids[0])
}

/// [`enqueue`] for many events of one subject and tenant in one statement (a bulk write such as
/// an import announces each row without a round trip per row). Rows keep the order of
/// `messages`; answers their ids in that order.
pub async fn enqueue_many<M>(
    conn: &mut PgConnection,
    subject: &str,
    tenant: Option<TenantId>,
    messages: &[M],
) -> Result<Vec<EventId>, sqlx::Error>
where
    M: Message + prost::Name,
{
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<EventId> = messages.iter().map(|_| EventId::new()).collect();
    let uuids: Vec<Uuid> = ids.iter().map(|i| i.as_uuid()).collect();
    let payloads: Vec<Vec<u8>> = messages.iter().map(Message::encode_to_vec).collect();
    let ctx = RequestContext::current();
    let (traceparent, tracestate) = crate::telemetry::current_traceparent();
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, subject, event_type, payload, actor_id, request_id, traceparent, tracestate) \
         SELECT e.id, $3, $4, $5, e.payload, $6, $7, $8, $9 \
         FROM unnest($1::uuid[], $2::bytea[]) WITH ORDINALITY AS e(id, payload, n) ORDER BY e.n",
    )
    .bind(&uuids)
    .bind(&payloads)
    .bind(tenant.map(|t| t.as_uuid()))
    .bind(subject)
    .bind(M::full_name())
    .bind(ctx.actor_id.clone().unwrap_or_default())
    .bind(ctx.request_id_str())
    .bind(traceparent)
    .bind(tracestate)
    .execute(conn)
    .await?;
    Ok(ids)
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox publish: {0}")]
    Publish(String),
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    id: Uuid,
    tenant_id: Option<Uuid>,
    subject: String,
    event_type: String,
    schema_version: i32,
    payload: Option<Vec<u8>>,
    audit: Option<serde_json::Value>,
    actor_id: String,
    request_id: String,
    traceparent: String,
    tracestate: String,
    occurred_at: DateTime<Utc>,
}

fn json_field(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl Row {
    fn envelope(&self, source: &str) -> Envelope {
        // Audit rows come from a trigger that cannot write protobuf; encode them here.
        let payload = match (&self.payload, &self.audit) {
            (Some(p), _) => p.clone(),
            (None, Some(a)) => AuditRecorded {
                schema: json_field(a, "schema"),
                table: json_field(a, "table"),
                operation: json_field(a, "operation"),
                row_id: json_field(a, "row_id"),
                actor_id: self.actor_id.clone(),
                request_id: self.request_id.clone(),
                client_ip: json_field(a, "client_ip"),
                before_json: json_field(a, "before"),
                after_json: json_field(a, "after"),
            }
            .encode_to_vec(),
            (None, None) => Vec::new(),
        };
        Envelope {
            event_id: self.id.to_string(),
            tenant_id: self.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
            event_type: self.event_type.clone(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: self.occurred_at.timestamp(),
                nanos: i32::try_from(self.occurred_at.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            schema_version: u32::try_from(self.schema_version).unwrap_or(1),
            traceparent: self.traceparent.clone(),
            tracestate: self.tracestate.clone(),
            request_id: self.request_id.clone(),
            actor_id: self.actor_id.clone(),
            source: source.to_owned(),
            payload,
        }
    }
}

/// How often the relay probes for rows to publish: the bound on delivery latency. Commits do not
/// NOTIFY (platform migration 0004: Postgres serializes notifying commits), and a probe of the
/// partial index of pending rows costs next to nothing.
pub const WAKE_INTERVAL: Duration = Duration::from_millis(25);

/// Publishes outbox rows of one service schema.
#[derive(Clone)]
pub struct OutboxRelay {
    pool: PgPool,
    bus: Bus,
    service: String,
    batch_size: i64,
    poll_interval: Duration,
}

/// How far a batch goes; the partial variants exist so tests can reproduce a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Complete,
    AfterPublish,
}

impl OutboxRelay {
    /// `_schema` is where the rows are; the pool's search_path already points there.
    pub fn new(pool: PgPool, bus: Bus, service: &str, _schema: &str) -> Self {
        Self { pool, bus, service: service.to_owned(), batch_size: 256, poll_interval: Duration::from_secs(1) }
    }

    /// Runs until `cancel`, then publishes what is left before returning. Every
    /// [`WAKE_INTERVAL`] it probes for pending rows and publishes them; every `poll_interval` it
    /// also flushes regardless and records the backlog.
    pub async fn run(self, cancel: CancellationToken) {
        let mut last_purge = Instant::now();
        let mut last_round: Option<Instant> = None;
        loop {
            let round = last_round.is_none_or(|t| t.elapsed() >= self.poll_interval);
            if (round || self.pending().await)
                && let Err(e) = self.flush().await
            {
                tracing::warn!(error = %e, service = %self.service, "outbox relay batch failed; will retry");
            }
            if round {
                self.record_backlog().await;
                last_round = Some(Instant::now());
            }
            if last_purge.elapsed() > Duration::from_secs(600) {
                self.purge().await;
                last_purge = Instant::now();
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(WAKE_INTERVAL) => {}
            }
        }
        match self.flush().await {
            Ok(n) => {
                tracing::info!(published = n, service = %self.service, "outbox flushed on shutdown")
            }
            Err(e) => {
                tracing::error!(error = %e, service = %self.service, "outbox flush on shutdown failed; rows stay for the next start")
            }
        }
    }

    /// Whether any row waits: one probe of the partial index `outbox_pending` (an error counts as
    /// yes, so the flush that follows reports it).
    async fn pending(&self) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)")
            .fetch_one(&self.pool)
            .await
            .unwrap_or(true)
    }

    /// Publishes batches until none is pending; returns how many rows were published.
    pub async fn flush(&self) -> Result<usize, RelayError> {
        let mut total = 0;
        loop {
            let n = self.batch(Stop::Complete).await?;
            total += n;
            if n < usize::try_from(self.batch_size).unwrap_or(usize::MAX) {
                return Ok(total);
            }
        }
    }

    /// Publishes one batch and then "dies": the rows are published but never marked. Only for
    /// tests that prove a re-run publishes nothing twice.
    #[doc(hidden)]
    pub async fn publish_then_crash(&self) -> Result<usize, RelayError> {
        self.batch(Stop::AfterPublish).await
    }

    async fn batch(&self, stop: Stop) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, id, tenant_id, subject, event_type, schema_version, payload, audit, actor_id, \
                    request_id, traceparent, tracestate, occurred_at \
             FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(rows.len());
        for row in &rows {
            let env = row.envelope(&self.service);
            let mut headers = async_nats::HeaderMap::new();
            if !row.traceparent.is_empty() {
                headers.insert("traceparent", row.traceparent.as_str());
            }
            if !row.tracestate.is_empty() {
                headers.insert("tracestate", row.tracestate.as_str());
            }
            headers.insert("Nexus-Event-Type", row.event_type.as_str());
            let msg = PublishMessage::build()
                .payload(env.encode_to_vec().into())
                .headers(headers)
                .message_id(row.id.to_string());
            let ack = self
                .bus
                .js
                .send_publish(self.bus.subject(&row.subject), msg)
                .await
                .map_err(|e| RelayError::Publish(e.to_string()))?;
            acks.push(ack);
        }
        // Only rows whose publication JetStream confirmed may be marked; any failure leaves the
        // whole batch pending (re-publishing is harmless, losing is not).
        for ack in acks {
            ack.await.map_err(|e| RelayError::Publish(e.to_string()))?;
        }
        if stop == Stop::AfterPublish {
            drop(tx);
            return Ok(rows.len());
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        sqlx::query("UPDATE outbox SET published_at = clock_timestamp() WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("nexus_outbox_published_total", "service" => self.service.clone())
            .increment(seqs.len() as u64);
        Ok(rows.len())
    }

    async fn record_backlog(&self) {
        let row: Result<(i64, f64), _> = sqlx::query_as(
            "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(occurred_at)), 0)::float8 \
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await;
        if let Ok((count, age)) = row {
            metrics::gauge!("nexus_outbox_backlog", "service" => self.service.clone()).set(count as f64);
            metrics::gauge!("nexus_outbox_oldest_age_seconds", "service" => self.service.clone()).set(age);
        }
    }

    /// Published rows are kept a week for inspection; handled-event ids a month, well past any
    /// redelivery.
    async fn purge(&self) {
        let _ =
            sqlx::query("DELETE FROM outbox WHERE published_at < now() - interval '7 days'").execute(&self.pool).await;
        let _ =
            sqlx::query("DELETE FROM inbox WHERE handled_at < now() - interval '30 days'").execute(&self.pool).await;
    }
}
