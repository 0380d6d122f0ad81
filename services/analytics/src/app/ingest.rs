//! Storing what tracking accepted. [`IngestWriter`] is the durable consumer that writes the ingest
//! stream into `analytics_events`: a fetch of messages goes in with multi-row INSERT … ON CONFLICT
//! DO NOTHING in ONE transaction, acknowledged only after the commit. A crash anywhere leaves the
//! messages to be redelivered; what was already written is dropped by `analytics_event_ids` (one
//! row per tenant and client event id, whatever time the event carried) and the events' own unique
//! key (tenant, client event id, time).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{AckKind, stream};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::bus::Bus;
use nexus_platform::db;
use nexus_platform::grpc::from_ts;
use nexus_proto::nexus::analytics::v1 as pb;
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::Analytics;
use crate::config::IngestConfig;
use crate::domain::rollup;
use crate::repo;
use crate::repo::events::{Columns, Tracked};

/// The ingest stream: its own, outside `nexus.analytics.>` (the service's event stream, which
/// JetStream will not let another stream overlap). Work-queue retention: a message is gone once
/// the writer acknowledged it.
pub async fn ingest_stream(bus: &Bus) -> Result<stream::Stream, Error> {
    let cfg = bus.config();
    let config = stream::Config {
        name: bus.stream_name("analytics_ingest"),
        subjects: vec![bus.subject("nexus.ingest.analytics.*")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::WorkQueue,
        max_age: cfg.stream_max_age,
        duplicate_window: cfg.duplicate_window,
        ..Default::default()
    };
    bus.js.get_or_create_stream(config).await.map_err(|e| unavailable(format!("ingest stream: {e}")))
}

pub(super) fn ingest_subject(bus: &Bus, tenant: TenantId) -> String {
    bus.subject(&format!("nexus.ingest.analytics.{}", tenant.as_uuid().simple()))
}

/// The stream or the database is out of reach: the client (or the writer) tries again.
pub(super) fn unavailable(detail: String) -> Error {
    Error::unavailable("service.unavailable").with_source(std::io::Error::other(detail))
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The checked keys of an event: its tenant and times, or why it cannot be stored.
fn check(e: &pb::IngestedEvent) -> Result<(uuid::Uuid, DateTime<Utc>, DateTime<Utc>), String> {
    let tenant = uuid::Uuid::parse_str(&e.tenant_id).map_err(|_| "bad tenant id".to_owned())?;
    let occurred = e.occurred_at.as_ref().and_then(from_ts).ok_or("no occurred_at")?;
    let received = e.received_at.as_ref().and_then(from_ts).ok_or("no received_at")?;
    if e.client_event_id.is_empty() || e.name.is_empty() {
        return Err("no id or name".into());
    }
    // Syntax only (nothing is built): the INSERT casts the text to jsonb.
    serde_json::from_str::<serde::de::IgnoredAny>(&e.properties_json).map_err(|_| "properties not JSON".to_owned())?;
    Ok((tenant, occurred, received))
}

/// The row of an event that passed [`check`] (with what the check returned), borrowed from it.
fn tracked(e: &pb::IngestedEvent, keys: (uuid::Uuid, DateTime<Utc>, DateTime<Utc>)) -> Tracked<'_> {
    let (tenant, occurred_at, received_at) = keys;
    let utm = e.utm.as_ref();
    let utm_field = |f: fn(&pb::Utm) -> &str| utm.and_then(|u| non_empty(f(u)));
    Tracked {
        tenant,
        client_event_id: &e.client_event_id,
        name: &e.name,
        occurred_at,
        received_at,
        anonymous_id: non_empty(&e.anonymous_id),
        user_id: non_empty(&e.user_id),
        properties: &e.properties_json,
        revenue: e.has_revenue.then_some((e.revenue_minor, e.currency.as_str())),
        utm: [
            utm_field(|u| u.source.as_str()),
            utm_field(|u| u.medium.as_str()),
            utm_field(|u| u.campaign.as_str()),
            utm_field(|u| u.term.as_str()),
            utm_field(|u| u.content.as_str()),
        ],
        page_url: non_empty(&e.page_url),
        referrer: non_empty(&e.referrer),
        ip: non_empty(&e.ip),
    }
}

/// The durable consumer `analytics-ingest`.
pub struct IngestWriter {
    pub app: Arc<Analytics>,
    pub bus: Bus,
    pub cfg: IngestConfig,
}

pub const INGEST_DURABLE: &str = "analytics-ingest";

impl IngestWriter {
    async fn consumer(&self) -> Result<PullConsumer, Error> {
        let stream = ingest_stream(&self.bus).await?;
        self.bus.ensure_dlq_stream().await.map_err(|e| unavailable(e.to_string()))?;
        stream
            .get_or_create_consumer(
                INGEST_DURABLE,
                pull::Config {
                    durable_name: Some(INGEST_DURABLE.to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.bus.config().ack_wait,
                    deliver_policy: DeliverPolicy::All,
                    max_ack_pending: self.cfg.max_ack_pending,
                    max_batch: i64::try_from(self.cfg.fetch_messages).unwrap_or(1000),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| unavailable(format!("consumer {INGEST_DURABLE}: {e}")))
    }

    /// Writes batches until `cancel`; survives NATS and Postgres outages by retrying.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !cancel.is_cancelled() {
            let consumer = match self.consumer().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = ?e, "ingest consumer set-up failed; retrying");
                    tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(backoff) => {} }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            loop {
                let batch = tokio::select! {
                    () = cancel.cancelled() => return,
                    b = self.fetch(&consumer) => b,
                };
                match batch {
                    Ok(msgs) if msgs.is_empty() => {}
                    Ok(msgs) => self.write(msgs).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "ingest fetch failed; re-subscribing");
                        tokio::select! { () = cancel.cancelled() => return, () = tokio::time::sleep(backoff) => {} }
                        break;
                    }
                }
            }
        }
    }

    async fn fetch(&self, consumer: &PullConsumer) -> Result<Vec<async_nats::jetstream::Message>, String> {
        let mut batch = consumer
            .batch()
            .max_messages(self.cfg.fetch_messages)
            .max_bytes(self.cfg.fetch_bytes)
            .expires(self.cfg.fetch_wait)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => out.push(m),
                Err(e) => {
                    if out.is_empty() {
                        return Err(e.to_string());
                    }
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Writes the events of one fetch in one transaction and acknowledges the messages after the
    /// commit. On a transient database failure nothing is acknowledged: the messages come back
    /// after a short delay. Events the database refuses for good are isolated by splitting and
    /// dead-lettered one by one, so one bad event cannot hold up the stream.
    pub async fn write(&self, msgs: Vec<async_nats::jetstream::Message>) {
        let mut rows = Vec::new();
        let mut live = Vec::with_capacity(msgs.len());
        for (i, m) in msgs.iter().enumerate() {
            match pb::IngestBatch::decode(m.payload.as_ref()) {
                Ok(b) => {
                    rows.extend(b.events.into_iter().map(|e| (i, e)));
                    live.push(m);
                }
                Err(e) => {
                    let parked = self.park(m.subject.as_str(), m.payload.clone(), &format!("undecodable: {e}")).await;
                    let kind = if parked { AckKind::Term } else { AckKind::Nak(Some(Duration::from_secs(5))) };
                    let _ = m.ack_with(kind).await;
                }
            }
        }
        let subjects: Vec<&str> = msgs.iter().map(|m| m.subject.as_str()).collect();
        match self.store_rows(rows, &subjects).await {
            Ok(()) => {
                futures::future::join_all(live.iter().map(|m| m.ack())).await;
            }
            Err(e) => {
                tracing::warn!(error = ?e, messages = live.len(), "ingest batch failed; will be redelivered");
                let nak = AckKind::Nak(Some(Duration::from_secs(1)));
                futures::future::join_all(live.iter().map(|m| m.ack_with(nak))).await;
            }
        }
    }

    /// Stores rows (tagged with their message's index); Err only for a transient failure.
    fn store_rows<'a>(
        &'a self,
        rows: Vec<(usize, pb::IngestedEvent)>,
        subjects: &'a [&'a str],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(async move {
            let mut kept = Vec::with_capacity(rows.len());
            let mut keys = Vec::with_capacity(rows.len());
            for (i, e) in rows {
                match check(&e) {
                    Ok(k) => {
                        keys.push(k);
                        kept.push((i, e));
                    }
                    Err(reason) => self.park_event(subjects[i], e, &reason).await?,
                }
            }
            if kept.is_empty() {
                return Ok(());
            }
            let stored = {
                let mut cols = Columns::with_capacity(kept.len());
                for ((_, e), k) in kept.iter().zip(keys) {
                    cols.push(tracked(e, k));
                }
                self.insert(&cols).await
            };
            match stored {
                Ok(inserted) => {
                    metrics::counter!("nexus_analytics_ingested_total", "result" => "inserted").increment(inserted);
                    metrics::counter!("nexus_analytics_ingested_total", "result" => "duplicate")
                        .increment(kept.len() as u64 - inserted);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Unavailable => Err(e),
                Err(e) if kept.len() > 1 => {
                    tracing::warn!(error = ?e, events = kept.len(), "ingest batch refused; isolating the cause");
                    let second = kept.split_off(kept.len() / 2);
                    self.store_rows(kept, subjects).await?;
                    self.store_rows(second, subjects).await
                }
                Err(e) => {
                    let Some((i, ev)) = kept.pop() else { return Ok(()) };
                    self.park_event(subjects[i], ev, &format!("refused by the database: {e}")).await
                }
            }
        })
    }

    async fn insert(&self, c: &Columns<'_>) -> Result<u64, Error> {
        self.app.ensure_partitions(c.occurred_at().iter().copied()).await?;
        // Many workspaces in one transaction: a system transaction (the rows carry their tenant).
        let mut tx = db::system(&self.app.db).await?;
        let stored = repo::events::insert_tracked(&mut tx, c, self.cfg.batch_size).await?;
        // The rollups of exactly the new events, in the same transaction.
        repo::rollups::append(&mut tx, &rollup::aggregate(c.facts(&stored))).await?;
        db::commit(tx).await?;
        Ok(stored.iter().filter(|&&s| s).count() as u64)
    }

    /// Dead-letters one event (as a batch of one); Err when it could not be parked, so its
    /// message is redelivered rather than lost.
    async fn park_event(&self, subject: &str, event: pb::IngestedEvent, reason: &str) -> Result<(), Error> {
        tracing::error!(%reason, client_event_id = %event.client_event_id, "ingest event cannot be stored; dead-lettering");
        let payload = pb::IngestBatch { events: vec![event] }.encode_to_vec();
        if self.park(subject, payload.into(), reason).await {
            Ok(())
        } else {
            Err(unavailable("dead-letter publish failed".into()))
        }
    }

    async fn park(&self, subject: &str, payload: bytes::Bytes, reason: &str) -> bool {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(nexus_platform::consumer::DLQ_ORIGINAL_SUBJECT, self.bus.strip_prefix(subject));
        headers.insert(nexus_platform::consumer::DLQ_CONSUMER, INGEST_DURABLE);
        let reason: String = reason.chars().take(1000).collect::<String>().replace(['\r', '\n'], " ");
        headers.insert(nexus_platform::consumer::DLQ_ERROR, reason.as_str());
        match self.bus.js.publish_with_headers(self.bus.dlq_subject(INGEST_DURABLE), headers, payload).await {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        }
    }
}
