//! The tracking path. [`Tracker`] verifies the write key, validates each event, strips personal
//! data and publishes every valid event to the ingest stream with `Nats-Msg-Id` =
//! `<tenant>:<client event id>` (JetStream drops a replay inside its window), answering only once
//! JetStream has acknowledged them all. [`IngestWriter`] is the durable consumer that writes what
//! was accepted into `analytics_events`: a fetched batch goes in with ONE multi-row INSERT … ON
//! CONFLICT DO NOTHING in one transaction, and is acknowledged only after the commit. A crash
//! anywhere leaves the messages to be redelivered; the unique key drops what was already written.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{AckKind, stream};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::bus::Bus;
use nexus_platform::db::begin_system;
use nexus_proto::nexus::analytics::v1 as pb;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::config::{AnalyticsConfig, IngestConfig};
use crate::domain::{self, Limits, RawEvent, Rejection};
use crate::store::{Store, db, origin_allowed};

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
    bus.js.get_or_create_stream(config).await.map_err(|e| {
        Error::unavailable("service.unavailable").with_source(std::io::Error::other(format!("ingest stream: {e}")))
    })
}

fn ingest_subject(bus: &Bus, tenant: TenantId) -> String {
    bus.subject(&format!("nexus.ingest.analytics.{}", tenant.as_uuid().simple()))
}

/// What happened to one event of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Accepted before (same client event id): not stored twice.
    Duplicate,
    Rejected(Rejection),
}

#[derive(Debug, Clone)]
pub struct EventResult {
    pub index: usize,
    pub client_event_id: String,
    pub outcome: Outcome,
}

pub struct Tracker {
    pub store: Arc<Store>,
    pub bus: Bus,
    pub cfg: AnalyticsConfig,
    stream_ready: AtomicBool,
}

impl Tracker {
    pub fn new(store: Arc<Store>, bus: Bus, cfg: AnalyticsConfig) -> Self {
        Self { store, bus, cfg, stream_ready: AtomicBool::new(false) }
    }

    /// Tracks `events` with `write_key`. Refuses the whole request only for a bad key, a
    /// disallowed origin, an oversized batch or an unavailable stream; otherwise every event gets
    /// its own outcome.
    pub async fn track(
        &self,
        write_key: &str,
        origin: &str,
        events: Vec<RawEvent>,
        client_ip: Option<IpAddr>,
    ) -> Result<Vec<EventResult>, Error> {
        if write_key.trim().is_empty() {
            return Err(Error::unauthenticated("analytics.write_key_required"));
        }
        let grant = self.store.verify_key(write_key.trim()).await?;
        if !origin.is_empty() && !origin_allowed(&grant.allowed_origins, origin) {
            return Err(Error::forbidden("analytics.origin_not_allowed").with_param("origin", origin));
        }
        if events.is_empty() {
            return Err(Error::new(ErrorKind::Unprocessable, "analytics.batch_empty"));
        }
        if events.len() > self.cfg.max_batch {
            return Err(Error::new(ErrorKind::PayloadTooLarge, "analytics.batch_too_large")
                .with_param("max", self.cfg.max_batch.to_string()));
        }
        let settings = self.store.settings(grant.tenant).await?;
        let limits = Limits {
            max_properties_bytes: self.cfg.max_properties_bytes,
            max_clock_skew: self.cfg.max_clock_skew,
            retention_days: settings.retention_days,
        };
        self.ensure_stream().await?;
        let now = Utc::now();
        let ip = client_ip.map(|ip| domain::truncate_ip(ip).to_string()).unwrap_or_default();
        let subject = ingest_subject(&self.bus, grant.tenant);

        let mut results = Vec::with_capacity(events.len());
        let mut pending: Vec<(usize, PublishAckFuture)> = Vec::with_capacity(events.len());
        // Publish everything first, then wait for the acknowledgements together: one round trip
        // of latency for the batch instead of one per event.
        for (index, raw) in events.iter().enumerate() {
            let valid = match domain::validate(raw, now, &limits) {
                Ok(v) => v,
                Err(r) => {
                    results.push(EventResult {
                        index,
                        client_event_id: raw.client_event_id.clone(),
                        outcome: Outcome::Rejected(r),
                    });
                    continue;
                }
            };
            let e = domain::scrub_event(valid, &settings.salt);
            let msg_id = format!("{}:{}", grant.tenant.as_uuid().simple(), e.client_event_id);
            let payload = ingested(grant.tenant, &e, now, &ip).encode_to_vec();
            results.push(EventResult { index, client_event_id: e.client_event_id, outcome: Outcome::Accepted });
            let msg = PublishMessage::build().payload(payload.into()).message_id(msg_id);
            let ack = self.bus.js.send_publish(subject.clone(), msg).await.map_err(|e| {
                self.stream_ready.store(false, Ordering::Relaxed);
                unavailable(format!("publish: {e}"))
            })?;
            pending.push((results.len() - 1, ack));
        }
        let acks = futures::future::join_all(pending.into_iter().map(|(i, f)| async move { (i, f.await) })).await;
        for (i, ack) in acks {
            match ack {
                Ok(a) if a.duplicate => results[i].outcome = Outcome::Duplicate,
                Ok(_) => {}
                // Not persisted: the client must retry (replays of what was persisted are dropped).
                Err(e) => {
                    self.stream_ready.store(false, Ordering::Relaxed);
                    return Err(unavailable(format!("publish ack: {e}")));
                }
            }
        }
        for (outcome, n) in [
            ("accepted", results.iter().filter(|r| r.outcome == Outcome::Accepted).count()),
            ("duplicate", results.iter().filter(|r| r.outcome == Outcome::Duplicate).count()),
            ("rejected", results.iter().filter(|r| matches!(r.outcome, Outcome::Rejected(_))).count()),
        ] {
            metrics::counter!("nexus_analytics_tracked_total", "outcome" => outcome).increment(n as u64);
        }
        Ok(results)
    }

    async fn ensure_stream(&self) -> Result<(), Error> {
        if !self.stream_ready.load(Ordering::Relaxed) {
            ingest_stream(&self.bus).await?;
            self.stream_ready.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn unavailable(detail: String) -> Error {
    Error::unavailable("service.unavailable").with_source(std::io::Error::other(detail))
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

fn from_ts(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

fn ingested(tenant: TenantId, e: &domain::ValidEvent, now: DateTime<Utc>, ip: &str) -> pb::IngestedEvent {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    pb::IngestedEvent {
        tenant_id: tenant.as_uuid().to_string(),
        client_event_id: e.client_event_id.clone(),
        name: e.name.clone(),
        occurred_at: Some(ts(e.occurred_at)),
        received_at: Some(ts(now)),
        anonymous_id: opt(&e.anonymous_id),
        user_id: opt(&e.user_id),
        properties_json: serde_json::Value::Object(e.properties.clone()).to_string(),
        has_revenue: e.revenue.is_some(),
        revenue_minor: e.revenue.map_or(0, |m| m.amount_minor),
        currency: e.revenue.map(|m| m.currency.code().to_owned()).unwrap_or_default(),
        utm: Some(pb::Utm {
            source: opt(&e.utm.source),
            medium: opt(&e.utm.medium),
            campaign: opt(&e.utm.campaign),
            term: opt(&e.utm.term),
            content: opt(&e.utm.content),
        }),
        page_url: opt(&e.page_url),
        referrer: opt(&e.referrer),
        ip: ip.to_owned(),
    }
}

/// Columns of one batch, bound as arrays to one INSERT … SELECT FROM UNNEST.
#[derive(Default)]
struct Columns {
    tenant: Vec<uuid::Uuid>,
    client_event_id: Vec<String>,
    name: Vec<String>,
    occurred_at: Vec<DateTime<Utc>>,
    received_at: Vec<DateTime<Utc>>,
    anonymous_id: Vec<Option<String>>,
    user_id: Vec<Option<String>>,
    properties: Vec<String>,
    revenue_minor: Vec<Option<i64>>,
    currency: Vec<Option<String>>,
    utm: [Vec<Option<String>>; 5],
    page_url: Vec<Option<String>>,
    referrer: Vec<Option<String>>,
    ip: Vec<Option<String>>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Columns {
    fn push(&mut self, e: pb::IngestedEvent) -> Result<(), String> {
        let tenant = uuid::Uuid::parse_str(&e.tenant_id).map_err(|_| "bad tenant id".to_owned())?;
        let occurred = from_ts(e.occurred_at.as_ref()).ok_or("no occurred_at")?;
        let received = from_ts(e.received_at.as_ref()).ok_or("no received_at")?;
        if e.client_event_id.is_empty() || e.name.is_empty() {
            return Err("no id or name".into());
        }
        serde_json::from_str::<serde_json::Value>(&e.properties_json).map_err(|_| "properties not JSON".to_owned())?;
        self.tenant.push(tenant);
        self.client_event_id.push(e.client_event_id);
        self.name.push(e.name);
        self.occurred_at.push(occurred);
        self.received_at.push(received);
        self.anonymous_id.push(non_empty(e.anonymous_id));
        self.user_id.push(non_empty(e.user_id));
        self.properties.push(e.properties_json);
        self.revenue_minor.push(e.has_revenue.then_some(e.revenue_minor));
        self.currency.push(e.has_revenue.then_some(e.currency));
        let utm = e.utm.unwrap_or_default();
        for (col, v) in self.utm.iter_mut().zip([utm.source, utm.medium, utm.campaign, utm.term, utm.content]) {
            col.push(non_empty(v));
        }
        self.page_url.push(non_empty(e.page_url));
        self.referrer.push(non_empty(e.referrer));
        self.ip.push(non_empty(e.ip));
        Ok(())
    }

    fn len(&self) -> usize {
        self.tenant.len()
    }
}

const INSERT: &str = "INSERT INTO analytics_events (tenant_id, client_event_id, name, source, occurred_at, received_at, \
       anonymous_id, user_id, properties, revenue_minor, currency, utm_source, utm_medium, utm_campaign, utm_term, \
       utm_content, page_url, referrer, ip) \
     SELECT t, c, n, 'track', o, r, a, u, p::jsonb, rm, cur, us, um, uc, ut, uco, pu, rf, ip::inet \
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[], \
                 $8::text[], $9::int8[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
                 $16::text[], $17::text[], $18::text[]) \
          AS x(t, c, n, o, r, a, u, p, rm, cur, us, um, uc, ut, uco, pu, rf, ip) \
     ON CONFLICT DO NOTHING";

/// The durable consumer `analytics-ingest`.
pub struct IngestWriter {
    pub store: Arc<Store>,
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
                    max_batch: i64::try_from(self.cfg.batch_size).unwrap_or(1000),
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
            .max_messages(self.cfg.batch_size)
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

    /// Writes one fetched batch and acknowledges it after the commit. On a transient database
    /// failure nothing is acknowledged: the messages come back after a short delay. A batch the
    /// database refuses for good is split until the message at fault is found and dead-lettered,
    /// so one bad message cannot hold up the stream.
    pub async fn write(&self, msgs: Vec<async_nats::jetstream::Message>) {
        let mut decoded = Vec::with_capacity(msgs.len());
        for m in msgs {
            match pb::IngestedEvent::decode(m.payload.as_ref()) {
                Ok(e) => decoded.push((m, e)),
                Err(e) => self.dead_letter(&m, &format!("undecodable: {e}")).await,
            }
        }
        self.write_decoded(decoded).await;
    }

    fn write_decoded(
        &self,
        items: Vec<(async_nats::jetstream::Message, pb::IngestedEvent)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let mut cols = Columns::default();
            let mut good = Vec::with_capacity(items.len());
            for (m, e) in items {
                match cols.push(e.clone()) {
                    Ok(()) => good.push((m, e)),
                    Err(reason) => self.dead_letter(&m, &reason).await,
                }
            }
            if good.is_empty() {
                return;
            }
            match self.insert(&cols).await {
                Ok(inserted) => {
                    futures::future::join_all(good.iter().map(|(m, _)| m.ack())).await;
                    metrics::counter!("nexus_analytics_ingested_total", "result" => "inserted").increment(inserted);
                    metrics::counter!("nexus_analytics_ingested_total", "result" => "duplicate")
                        .increment(cols.len() as u64 - inserted);
                }
                Err(e) if e.kind() != ErrorKind::Unavailable && good.len() > 1 => {
                    tracing::warn!(error = ?e, events = good.len(), "ingest batch refused; isolating the cause");
                    let second = good.split_off(good.len() / 2);
                    self.write_decoded(good).await;
                    self.write_decoded(second).await;
                }
                Err(e) if e.kind() != ErrorKind::Unavailable => {
                    let (m, _) = &good[0];
                    self.dead_letter(m, &format!("refused by the database: {e}")).await;
                }
                Err(e) => {
                    tracing::warn!(error = ?e, events = good.len(), "ingest batch failed; will be redelivered");
                    let nak = AckKind::Nak(Some(Duration::from_secs(1)));
                    futures::future::join_all(good.iter().map(|(m, _)| m.ack_with(nak))).await;
                }
            }
        })
    }

    async fn insert(&self, c: &Columns) -> Result<u64, Error> {
        self.store.ensure_partitions(c.occurred_at.iter().copied()).await?;
        // Many workspaces in one statement: a system transaction (the rows carry their tenant).
        let mut tx = begin_system(&self.store.pool).await.map_err(db)?;
        let done = sqlx::query(INSERT)
            .bind(&c.tenant)
            .bind(&c.client_event_id)
            .bind(&c.name)
            .bind(&c.occurred_at)
            .bind(&c.received_at)
            .bind(&c.anonymous_id)
            .bind(&c.user_id)
            .bind(&c.properties)
            .bind(&c.revenue_minor)
            .bind(&c.currency)
            .bind(&c.utm[0])
            .bind(&c.utm[1])
            .bind(&c.utm[2])
            .bind(&c.utm[3])
            .bind(&c.utm[4])
            .bind(&c.page_url)
            .bind(&c.referrer)
            .bind(&c.ip)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn dead_letter(&self, msg: &async_nats::jetstream::Message, reason: &str) {
        tracing::error!(%reason, "ingest message cannot be stored; dead-lettering");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(nexus_platform::consumer::DLQ_ORIGINAL_SUBJECT, self.bus.strip_prefix(msg.subject.as_str()));
        headers.insert(nexus_platform::consumer::DLQ_CONSUMER, INGEST_DURABLE);
        headers.insert(nexus_platform::consumer::DLQ_ERROR, reason);
        let parked = match self
            .bus
            .js
            .publish_with_headers(self.bus.dlq_subject(INGEST_DURABLE), headers, msg.payload.clone())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        let kind = if parked { AckKind::Term } else { AckKind::Nak(Some(Duration::from_secs(5))) };
        let _ = msg.ack_with(kind).await;
    }
}
