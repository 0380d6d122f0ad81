//! Idempotent JetStream consumers.
//!
//! Each consumer is a durable pull consumer named `<service>-<purpose>` with explicit acks. For
//! every message the handler runs inside one Postgres transaction that also records the event id
//! in `inbox`; a redelivered or re-published event finds its id there and is acknowledged without
//! being applied again. A message that keeps failing goes to `nexus.dlq.<consumer>` after the
//! configured number of deliveries, where operators can inspect and replay it.
//!
//! Only failures of the message itself spend that budget: a payload the handler refuses, or a
//! handler's own [`HandleError::Retry`]. While Postgres (or another dependency) is unreachable
//! ([`HandleError::Unavailable`], which connection-type `sqlx` errors become) the consumer holds
//! the message, tells JetStream it is still working on it, and tries again with backoff: an
//! outage of any length dead-letters nothing.
//!
//! Before the handler runs, an event whose payload names a workspace (`workspace_id` or
//! `tenant_id`) other than its envelope's tenant is refused and dead-lettered: a producer bug or a
//! forged message must not act on another tenant's data.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures::StreamExt;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use nexus_kernel::TenantId;
use nexus_kernel::ids::RequestId;
use nexus_proto::events::Envelope;

use crate::bus::Bus;
use crate::context::RequestContext;

/// An event as a handler sees it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Subject without the deployment prefix.
    pub subject: String,
    pub envelope: Envelope,
    pub event_id: Uuid,
    pub tenant: Option<TenantId>,
}

impl Event {
    /// Decodes the payload as `M`, refusing a payload of another type.
    pub fn decode<M: Message + Default + prost::Name>(&self) -> Result<M, HandleError> {
        if self.envelope.event_type != M::full_name() {
            return Err(HandleError::Permanent(format!(
                "expected {}, got {}",
                M::full_name(),
                self.envelope.event_type
            )));
        }
        M::decode(self.envelope.payload.as_slice()).map_err(|e| HandleError::Permanent(format!("payload: {e}")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth another try (a serialization conflict, a refusal that may pass later); counts
    /// toward the redelivery bound.
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never succeed as it is (bad payload, unknown schema version): straight to the DLQ.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Infrastructure is unreachable (Postgres, NATS, a service called over gRPC): nothing is
    /// wrong with the message. It is held and retried with backoff and never dead-lettered.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        if is_infrastructure(&e) { HandleError::Unavailable(e.to_string()) } else { HandleError::Retry(e.to_string()) }
    }
}

/// A use case's error: a database that could not be reached, or a service answering UNAVAILABLE,
/// is [`HandleError::Unavailable`] (held, not counted); anything else is [`HandleError::Retry`].
impl From<nexus_kernel::Error> for HandleError {
    fn from(e: nexus_kernel::Error) -> Self {
        let sqlx_cause = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<sqlx::Error>());
        let unavailable = match sqlx_cause {
            Some(db) => is_infrastructure(db),
            None => e.kind() == nexus_kernel::ErrorKind::Unavailable,
        };
        if unavailable { HandleError::Unavailable(format!("{e:?}")) } else { HandleError::Retry(format!("{e:?}")) }
    }
}

/// Whether a database error says the database could not be reached rather than that the
/// statement failed: pool timeouts, broken connections, and the server's own connection-class
/// SQLSTATEs (08xxx, shutting down, too many connections, recovery).
pub fn is_infrastructure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "53000")
        }),
        _ => false,
    }
}

#[async_trait::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies the event's effect using `tx`, the transaction that will also record the event as
    /// handled. Do not commit it.
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError>;
}

#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The producing service whose stream is read (`auth` -> `NEXUS_AUTH`).
    pub producer: String,
    /// Durable name, `<service>-<purpose>`.
    pub durable: String,
    /// Unprefixed subject filter, e.g. `nexus.auth.>`.
    pub filter_subject: String,
    pub max_deliveries: u32,
    pub ack_wait: Duration,
}

impl ConsumerSpec {
    /// A spec with the service's configured redelivery bound and ack wait.
    pub fn new(
        producer: impl Into<String>,
        durable: impl Into<String>,
        filter_subject: impl Into<String>,
        nats: &crate::config::NatsConfig,
    ) -> Self {
        Self {
            producer: producer.into(),
            durable: durable.into(),
            filter_subject: filter_subject.into(),
            max_deliveries: nats.max_deliveries,
            ack_wait: nats.ack_wait,
        }
    }
}

/// Outcome of one message, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Retried,
    DeadLettered,
}

pub struct Consumer {
    pool: PgPool,
    bus: Bus,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
    /// Stops holding a message through an outage (set by [`Consumer::run`]).
    stop: CancellationToken,
}

impl Consumer {
    pub fn new(pool: PgPool, bus: Bus, spec: ConsumerSpec, handler: Arc<dyn EventHandler>) -> Self {
        Self { pool, bus, spec, handler, stop: CancellationToken::new() }
    }

    async fn pull_consumer(&self) -> anyhow::Result<PullConsumer> {
        let stream = self.bus.ensure_service_stream(&self.spec.producer).await?;
        self.bus.ensure_dlq_stream().await?;
        let consumer = stream
            .get_or_create_consumer(
                &self.spec.durable,
                pull::Config {
                    durable_name: Some(self.spec.durable.clone()),
                    filter_subject: self.bus.subject(&self.spec.filter_subject),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.spec.ack_wait,
                    // Unbounded on the server: we count deliveries ourselves and dead-letter, so a
                    // crash on the last attempt cannot strand a message.
                    max_deliver: -1,
                    deliver_policy: DeliverPolicy::All,
                    max_ack_pending: 1_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("consumer {}: {e}", self.spec.durable))?;
        Ok(consumer)
    }

    /// Consumes until `cancel`. Survives NATS and Postgres outages by reconnecting.
    pub async fn run(mut self, cancel: CancellationToken) {
        self.stop = cancel.clone();
        let mut backoff = Duration::from_millis(200);
        while !cancel.is_cancelled() {
            let consumer = match self.pull_consumer().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, consumer = %self.spec.durable, "consumer set-up failed; retrying");
                    tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(backoff) => {} }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let mut messages = match consumer.messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, consumer = %self.spec.durable, "consumer stream failed; retrying");
                    tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(backoff) => {} }
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            // Backlog and dead letters as gauges while this subscription lives (alerts on lag and
            // a non-empty DLQ read them).
            let watching = cancel.child_token();
            let _stop_watching = watching.clone().drop_guard();
            tokio::spawn(watch_backlog(consumer.clone(), self.bus.clone(), self.spec.durable.clone(), watching));
            loop {
                let next = tokio::select! {
                    () = cancel.cancelled() => return,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(msg)) => {
                        let outcome = self.process(&msg).await;
                        metrics::counter!("nexus_consumer_messages_total", "consumer" => self.spec.durable.clone(), "outcome" => format!("{outcome:?}").to_lowercase()).increment(1);
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, consumer = %self.spec.durable, "pull error");
                        // Heartbeat misses and reconnects surface here; rebuild the subscription.
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// Handles one delivery: apply-once, retry with backoff, or dead-letter.
    pub async fn process(&self, msg: &async_nats::jetstream::Message) -> Outcome {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1).max(1) as u64;
        let subject = self.bus.strip_prefix(msg.subject.as_str()).to_owned();
        let envelope = match Envelope::decode(msg.payload.as_ref()) {
            Ok(e) => e,
            Err(e) => {
                return self.dead_letter(msg, &subject, &format!("undecodable envelope: {e}"), delivered).await;
            }
        };
        let Ok(event_id) = Uuid::parse_str(&envelope.event_id) else {
            return self.dead_letter(msg, &subject, "envelope without a valid event id", delivered).await;
        };
        let tenant = if envelope.tenant_id.is_empty() {
            None
        } else {
            match TenantId::parse(&envelope.tenant_id) {
                Ok(t) => Some(t),
                Err(_) => {
                    return self.dead_letter(msg, &subject, "envelope with an invalid tenant id", delivered).await;
                }
            }
        };
        if let Err(reason) = check_payload_tenant(&envelope, tenant) {
            return self.dead_letter(msg, &subject, &reason, delivered).await;
        }
        let ctx = RequestContext {
            request_id: RequestId::parse(&envelope.request_id),
            tenant_id: tenant,
            actor_id: (!envelope.actor_id.is_empty()).then(|| envelope.actor_id.clone()),
            ..Default::default()
        };
        let span = tracing::info_span!("consume", consumer = %self.spec.durable, %subject, event_id = %event_id);
        let mut carrier = std::collections::HashMap::new();
        carrier.insert("traceparent".to_owned(), envelope.traceparent.clone());
        carrier.insert("tracestate".to_owned(), envelope.tracestate.clone());
        crate::telemetry::set_parent_from(&span, &carrier);
        let event = Event { subject: subject.clone(), envelope, event_id, tenant };

        let result = ctx.scope(self.apply_through_outages(msg, &event).instrument(span)).await;
        match result {
            Ok(true) => {
                let _ = msg.ack().await;
                Outcome::Applied
            }
            Ok(false) => {
                let _ = msg.ack().await;
                Outcome::Duplicate
            }
            Err(HandleError::Permanent(reason)) => self.dead_letter(msg, &subject, &reason, delivered).await,
            Err(HandleError::Retry(reason)) if delivered >= u64::from(self.spec.max_deliveries) => {
                self.dead_letter(msg, &subject, &reason, delivered).await
            }
            Err(HandleError::Unavailable(reason)) => {
                // Only when stopping: hand it back for whoever consumes next.
                tracing::info!(consumer = %self.spec.durable, %reason, "stopping while a dependency is down; message handed back");
                let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                Outcome::Retried
            }
            Err(HandleError::Retry(reason)) => {
                tracing::warn!(consumer = %self.spec.durable, %reason, delivered, "handler failed; will retry");
                let delay =
                    Duration::from_millis(200u64.saturating_mul(1 << delivered.min(8))).min(Duration::from_secs(60));
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
                Outcome::Retried
            }
        }
    }

    /// [`Consumer::apply`], holding the message through infrastructure outages: JetStream is told
    /// the message is in progress (so it is not redelivered and its delivery count does not
    /// grow) and the attempt is repeated with backoff until it gets an answer that is not
    /// [`HandleError::Unavailable`], or the consumer stops.
    async fn apply_through_outages(
        &self,
        msg: &async_nats::jetstream::Message,
        event: &Event,
    ) -> Result<bool, HandleError> {
        let keepalive = (self.spec.ack_wait / 3).max(Duration::from_millis(100));
        let mut backoff = Duration::from_millis(200);
        let mut held_since: Option<std::time::Instant> = None;
        loop {
            let attempt = self.apply(event);
            tokio::pin!(attempt);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
            let result = loop {
                tokio::select! {
                    r = &mut attempt => break r,
                    _ = tick.tick() => { let _ = msg.ack_with(AckKind::Progress).await; }
                }
            };
            let reason = match result {
                Err(HandleError::Unavailable(reason)) => reason,
                other => {
                    if let Some(since) = held_since {
                        tracing::info!(consumer = %self.spec.durable, held = ?since.elapsed(), "dependency back; message processed");
                    }
                    return other;
                }
            };
            if held_since.is_none() {
                tracing::warn!(consumer = %self.spec.durable, %reason, "dependency unreachable; holding the message and retrying");
                held_since = Some(std::time::Instant::now());
            }
            metrics::counter!("nexus_consumer_outage_retries_total", "consumer" => self.spec.durable.clone())
                .increment(1);
            let _ = msg.ack_with(AckKind::Progress).await;
            let wait = tokio::time::sleep(backoff);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = self.stop.cancelled() => return Err(HandleError::Unavailable(reason)),
                    () = &mut wait => break,
                    _ = tick.tick() => { let _ = msg.ack_with(AckKind::Progress).await; }
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Ok(true) when applied now, Ok(false) when it had been applied before.
    async fn apply(&self, event: &Event) -> Result<bool, HandleError> {
        let mut tx = match event.tenant {
            Some(t) => crate::db::begin_tenant(&self.pool, t).await?,
            None => crate::db::begin_system(&self.pool).await?,
        };
        let fresh = sqlx::query("INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&self.spec.durable)
            .bind(event.event_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !fresh {
            tx.rollback().await?;
            return Ok(false);
        }
        self.handler.handle(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn dead_letter(
        &self,
        msg: &async_nats::jetstream::Message,
        subject: &str,
        reason: &str,
        delivered: u64,
    ) -> Outcome {
        tracing::error!(consumer = %self.spec.durable, %subject, %reason, delivered, "dead-lettering message");
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(DLQ_ORIGINAL_SUBJECT, subject);
        headers.insert(DLQ_CONSUMER, self.spec.durable.as_str());
        let reason: String = reason.chars().take(1000).collect::<String>().replace(['\r', '\n'], " ");
        headers.insert(DLQ_ERROR, reason.as_str());
        headers.insert(DLQ_DELIVERIES, delivered.to_string().as_str());
        headers.insert("Nats-Msg-Id", format!("{}:{seq}", self.spec.durable).as_str());
        let published = match self
            .bus
            .js
            .publish_with_headers(self.bus.dlq_subject(&self.spec.durable), headers, msg.payload.clone())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if published {
            let _ = msg.ack_with(AckKind::Term).await;
            Outcome::DeadLettered
        } else {
            // Could not park it: leave it to be redelivered rather than lose it.
            let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
            Outcome::Retried
        }
    }
}

/// How often a consumer's backlog and dead letters are read into gauges.
const BACKLOG_EVERY: Duration = Duration::from_secs(15);

/// Sets `nexus_consumer_pending` (messages not yet delivered), `nexus_consumer_ack_pending`
/// (delivered, not yet acknowledged) and `nexus_consumer_dead_letters` (messages this consumer
/// parked in the DLQ that are still there) every [`BACKLOG_EVERY`] until `stop`.
async fn watch_backlog(mut consumer: PullConsumer, bus: Bus, durable: String, stop: CancellationToken) {
    let dlq_subject = bus.dlq_subject(&durable);
    loop {
        match consumer.info().await {
            Ok(info) => {
                metrics::gauge!("nexus_consumer_pending", "consumer" => durable.clone()).set(info.num_pending as f64);
                metrics::gauge!("nexus_consumer_ack_pending", "consumer" => durable.clone())
                    .set(info.num_ack_pending as f64);
            }
            Err(e) => tracing::debug!(error = %e, consumer = %durable, "consumer info unavailable"),
        }
        if let Some(n) = dead_letters(&bus, &dlq_subject).await {
            metrics::gauge!("nexus_consumer_dead_letters", "consumer" => durable.clone()).set(n as f64);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(BACKLOG_EVERY) => {}
        }
    }
}

/// Messages on one DLQ subject (the stream's per-subject counts); `None` when NATS cannot say.
pub async fn dead_letters(bus: &Bus, dlq_subject: &str) -> Option<u64> {
    use futures::TryStreamExt;
    let stream = bus.js.get_stream(bus.stream_name("dlq")).await.ok()?;
    let mut subjects = stream.info_with_subjects(dlq_subject).await.ok()?;
    let mut total = 0;
    while let Some((_, count)) = subjects.try_next().await.ok()? {
        total += count as u64;
    }
    Some(total)
}

/// Refuses an event whose payload names a workspace other than the envelope's tenant (or names
/// one when the envelope has none). Payloads without such a field pass.
pub fn check_payload_tenant(envelope: &Envelope, tenant: Option<TenantId>) -> Result<(), String> {
    let Some(field) = tenant_field(&envelope.event_type) else { return Ok(()) };
    let named = string_field(&envelope.payload, field).map_err(|e| format!("payload: {e}"))?;
    let Some(named) = named.filter(|s| !s.is_empty()) else { return Ok(()) };
    let Ok(named) = TenantId::parse(&named) else {
        return Err(format!("payload workspace {named:?} is not a workspace id"));
    };
    match tenant {
        Some(t) if t == named => Ok(()),
        Some(t) => Err(format!("payload workspace {named} does not match the envelope's tenant {t}")),
        None => Err(format!("payload names workspace {named} but the envelope has no tenant")),
    }
}

/// Field number of the `workspace_id` (else `tenant_id`) string field of an event type, read
/// once from the generated descriptor set.
fn tenant_field(event_type: &str) -> Option<u32> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static FIELDS: OnceLock<HashMap<String, u32>> = OnceLock::new();
    FIELDS
        .get_or_init(|| {
            let set = <prost_types::FileDescriptorSet as Message>::decode(nexus_proto::FILE_DESCRIPTOR_SET)
                .expect("descriptor set is generated at build time and valid");
            let mut out = HashMap::new();
            for file in &set.file {
                for msg in &file.message_type {
                    let string_field = |name: &str| {
                        msg.field.iter().find(|f| {
                            f.name() == name && f.r#type() == prost_types::field_descriptor_proto::Type::String
                        })
                    };
                    if let Some(f) = string_field("workspace_id").or_else(|| string_field("tenant_id")) {
                        out.insert(format!("{}.{}", file.package(), msg.name()), f.number() as u32);
                    }
                }
            }
            out
        })
        .get(event_type)
        .copied()
}

/// The last value of string field `number` in an encoded message (protobuf: the last one wins).
fn string_field(mut buf: &[u8], number: u32) -> Result<Option<String>, String> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let mut found = None;
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf).map_err(|e| e.to_string())?;
        let skip = match wire {
            WireType::Varint => {
                decode_varint(&mut buf).map_err(|e| e.to_string())?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).map_err(|e| e.to_string())?)
                    .map_err(|_| "length overflow".to_owned())?;
                if len > buf.len() {
                    return Err("truncated field".into());
                }
                if tag == number {
                    found =
                        Some(String::from_utf8(buf[..len].to_vec()).map_err(|_| "workspace is not UTF-8".to_owned())?);
                }
                len
            }
            WireType::StartGroup | WireType::EndGroup => return Err("groups are not used by our events".into()),
        };
        if skip > buf.len() {
            return Err("truncated field".into());
        }
        buf = &buf[skip..];
    }
    Ok(found)
}

pub const DLQ_ORIGINAL_SUBJECT: &str = "Nexus-Original-Subject";
pub const DLQ_CONSUMER: &str = "Nexus-Consumer";
pub const DLQ_ERROR: &str = "Nexus-Error";
pub const DLQ_DELIVERIES: &str = "Nexus-Deliveries";

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope<M: Message + prost::Name>(tenant: Option<TenantId>, m: &M) -> Envelope {
        Envelope {
            event_id: Uuid::now_v7().to_string(),
            tenant_id: tenant.map(|t| t.as_uuid().to_string()).unwrap_or_default(),
            event_type: M::full_name(),
            payload: m.encode_to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn payload_workspace_must_match_the_envelope() {
        use nexus_proto::events::{ContentGenerated, SessionRevoked};
        let (a, b) = (TenantId::new(), TenantId::new());
        let ok = ContentGenerated { workspace_id: a.to_string(), ..Default::default() };
        assert_eq!(check_payload_tenant(&envelope(Some(a), &ok), Some(a)), Ok(()));
        // The raw uuid form names the same workspace.
        let raw = ContentGenerated { workspace_id: a.as_uuid().to_string(), ..Default::default() };
        assert_eq!(check_payload_tenant(&envelope(Some(a), &raw), Some(a)), Ok(()));
        let err = check_payload_tenant(&envelope(Some(b), &ok), Some(b)).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        assert!(check_payload_tenant(&envelope(None, &ok), None).unwrap_err().contains("no tenant"));
        let junk = ContentGenerated { workspace_id: "not-a-workspace".into(), ..Default::default() };
        assert!(check_payload_tenant(&envelope(Some(a), &junk), Some(a)).is_err());
        // Empty workspace, or an event type without one, passes.
        let empty = ContentGenerated::default();
        assert_eq!(check_payload_tenant(&envelope(Some(a), &empty), Some(a)), Ok(()));
        let sys = SessionRevoked::default();
        assert_eq!(check_payload_tenant(&envelope(None, &sys), None), Ok(()));
        // A truncated payload of a typed event is refused rather than trusted.
        let mut cut = envelope(Some(a), &ok);
        cut.payload.truncate(cut.payload.len() - 3);
        assert!(check_payload_tenant(&cut, Some(a)).is_err());
    }

    #[test]
    fn connection_errors_are_infrastructure_and_statement_errors_are_not() {
        assert!(is_infrastructure(&sqlx::Error::PoolTimedOut));
        assert!(is_infrastructure(&sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))));
        assert!(!is_infrastructure(&sqlx::Error::RowNotFound));
        assert!(matches!(HandleError::from(sqlx::Error::PoolTimedOut), HandleError::Unavailable(_)));
        assert!(matches!(HandleError::from(sqlx::Error::RowNotFound), HandleError::Retry(_)));
        let down = crate::db::error(sqlx::Error::PoolTimedOut);
        assert!(matches!(HandleError::from(down), HandleError::Unavailable(_)));
        let bug = crate::db::error(sqlx::Error::ColumnNotFound("x".into()));
        assert!(matches!(HandleError::from(bug), HandleError::Retry(_)));
        let refused = nexus_kernel::Error::invalid("thing.bad");
        assert!(matches!(HandleError::from(refused), HandleError::Retry(_)));
        let upstream = nexus_kernel::Error::unavailable("service.unavailable");
        assert!(matches!(HandleError::from(upstream), HandleError::Unavailable(_)));
    }
}
