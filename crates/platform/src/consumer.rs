//! Idempotent JetStream consumers.
//!
//! Each consumer is a durable pull consumer named `<service>-<purpose>` with explicit acks. For
//! every message the handler runs inside one Postgres transaction that also records the event id
//! in `inbox`; a redelivered or re-published event finds its id there and is acknowledged without
//! being applied again. A message that keeps failing goes to `nexus.dlq.<consumer>` after the
//! configured number of deliveries, where operators can inspect and replay it.

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
    /// Worth another try (a dependency was down, a serialization conflict).
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never succeed as it is (bad payload, unknown schema version): straight to the DLQ.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        HandleError::Retry(e.to_string())
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
}

impl Consumer {
    pub fn new(pool: PgPool, bus: Bus, spec: ConsumerSpec, handler: Arc<dyn EventHandler>) -> Self {
        Self { pool, bus, spec, handler }
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
    pub async fn run(self, cancel: CancellationToken) {
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

        let result = ctx.scope(self.apply(&event).instrument(span)).await;
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
            Err(HandleError::Retry(reason)) => {
                tracing::warn!(consumer = %self.spec.durable, %reason, delivered, "handler failed; will retry");
                let delay =
                    Duration::from_millis(200u64.saturating_mul(1 << delivered.min(8))).min(Duration::from_secs(60));
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
                Outcome::Retried
            }
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

pub const DLQ_ORIGINAL_SUBJECT: &str = "Nexus-Original-Subject";
pub const DLQ_CONSUMER: &str = "Nexus-Consumer";
pub const DLQ_ERROR: &str = "Nexus-Error";
pub const DLQ_DELIVERIES: &str = "Nexus-Deliveries";
