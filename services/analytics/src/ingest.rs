//! The tracking path. [`Tracker`] verifies the write key, validates each event, strips personal
//! data and publishes the valid events of a request to the ingest stream — one message per request
//! (split when large), with a `Nats-Msg-Id` derived from the events' ids and times so JetStream
//! drops a replayed request inside its window — answering only once JetStream has acknowledged
//! them all. One message per request rather than per event keeps the broker's work per event
//! small; exactly-once storage does not depend on it. [`IngestWriter`] is the durable consumer
//! that writes what was accepted into `analytics_events`: a fetch of messages goes in with
//! multi-row INSERT … ON CONFLICT DO NOTHING in ONE transaction, acknowledged only after the
//! commit. A crash anywhere leaves the messages to be redelivered; what was already written is
//! dropped by `analytics_event_ids` (one row per tenant and client event id, whatever time the
//! event carried) and the events' own unique key (tenant, client event id, time).

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
        let tenant_id = grant.tenant.as_uuid().to_string();

        let mut results = Vec::with_capacity(events.len());
        let mut valid = Vec::with_capacity(events.len());
        for (index, raw) in events.iter().enumerate() {
            match domain::validate(raw, now, &limits) {
                Ok(v) => {
                    let e = domain::scrub_event(v, &settings.salt);
                    results.push(EventResult {
                        index,
                        client_event_id: e.client_event_id.clone(),
                        outcome: Outcome::Accepted,
                    });
                    valid.push((results.len() - 1, ingested(&tenant_id, e, now, &ip)));
                }
                Err(r) => results.push(EventResult {
                    index,
                    client_event_id: raw.client_event_id.clone(),
                    outcome: Outcome::Rejected(r),
                }),
            }
        }
        // Publish every chunk first, then wait for the acknowledgements together.
        let mut pending: Vec<(Vec<usize>, PublishAckFuture)> = Vec::new();
        for chunk in chunks(valid) {
            let positions: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
            let events: Vec<pb::IngestedEvent> = chunk.into_iter().map(|(_, e)| e).collect();
            let msg_id = message_id(grant.tenant, &events);
            let payload = pb::IngestBatch { events }.encode_to_vec();
            let msg = PublishMessage::build().payload(payload.into()).message_id(msg_id);
            let ack = self.bus.js.send_publish(subject.clone(), msg).await.map_err(|e| {
                self.stream_ready.store(false, Ordering::Relaxed);
                unavailable(format!("publish: {e}"))
            })?;
            pending.push((positions, ack));
        }
        let acks = futures::future::join_all(pending.into_iter().map(|(p, f)| async move { (p, f.await) })).await;
        for (positions, ack) in acks {
            match ack {
                Ok(a) if a.duplicate => {
                    for i in positions {
                        results[i].outcome = Outcome::Duplicate;
                    }
                }
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

fn ingested(tenant_id: &str, e: domain::ValidEvent, now: DateTime<Utc>, ip: &str) -> pb::IngestedEvent {
    let opt = |o: Option<String>| o.unwrap_or_default();
    pb::IngestedEvent {
        tenant_id: tenant_id.to_owned(),
        client_event_id: e.client_event_id,
        name: e.name,
        occurred_at: Some(ts(e.occurred_at)),
        received_at: Some(ts(now)),
        anonymous_id: opt(e.anonymous_id),
        user_id: opt(e.user_id),
        properties_json: serde_json::Value::Object(e.properties).to_string(),
        has_revenue: e.revenue.is_some(),
        revenue_minor: e.revenue.map_or(0, |m| m.amount_minor),
        currency: e.revenue.map(|m| m.currency.code().to_owned()).unwrap_or_default(),
        utm: Some(pb::Utm {
            source: opt(e.utm.source),
            medium: opt(e.utm.medium),
            campaign: opt(e.utm.campaign),
            term: opt(e.utm.term),
            content: opt(e.utm.content),
        }),
        page_url: opt(e.page_url),
        referrer: opt(e.referrer),
        ip: ip.to_owned(),
    }
}

/// Largest encoded chunk published as one message (NATS refuses payloads over its max_payload,
/// 1 MiB by default).
const MAX_CHUNK_BYTES: usize = 512 * 1024;

/// Splits a request's events into messages of at most [`MAX_CHUNK_BYTES`].
fn chunks<T>(events: Vec<(T, pb::IngestedEvent)>) -> Vec<Vec<(T, pb::IngestedEvent)>> {
    let mut out: Vec<Vec<(T, pb::IngestedEvent)>> = Vec::new();
    let mut size = 0;
    for (tag, e) in events {
        let len = e.encoded_len() + 8;
        if out.is_empty() || size + len > MAX_CHUNK_BYTES {
            out.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(last) = out.last_mut() {
            last.push((tag, e));
        }
    }
    out
}

/// `Nats-Msg-Id` of a chunk: the same events (ids and times) give the same id, so JetStream
/// recognises a retried request. One event keeps its readable `<tenant>:<client event id>`.
fn message_id(tenant: TenantId, events: &[pb::IngestedEvent]) -> String {
    use sha2::Digest;
    let tenant = tenant.as_uuid().simple();
    if let [one] = events {
        return format!("{tenant}:{}", one.client_event_id);
    }
    let mut h = sha2::Sha256::new();
    for e in events {
        h.update(e.client_event_id.as_bytes());
        h.update([0]);
        let t = e.occurred_at.unwrap_or_default();
        h.update(t.seconds.to_be_bytes());
        h.update(t.nanos.to_be_bytes());
    }
    format!("{tenant}:batch:{}", hex::encode(h.finalize()))
}

/// Columns of one batch, bound as arrays to one INSERT … SELECT FROM UNNEST. They borrow the
/// decoded events: the events stay whole for isolating a refused one, and nothing is copied.
struct Columns<'a> {
    tenant: Vec<uuid::Uuid>,
    client_event_id: Vec<&'a str>,
    name: Vec<&'a str>,
    occurred_at: Vec<DateTime<Utc>>,
    received_at: Vec<DateTime<Utc>>,
    anonymous_id: Vec<Option<&'a str>>,
    user_id: Vec<Option<&'a str>>,
    properties: Vec<&'a str>,
    revenue_minor: Vec<Option<i64>>,
    currency: Vec<Option<&'a str>>,
    utm: [Vec<Option<&'a str>>; 5],
    page_url: Vec<Option<&'a str>>,
    referrer: Vec<Option<&'a str>>,
    ip: Vec<Option<&'a str>>,
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The checked keys of an event: its tenant and times, or why it cannot be stored.
fn check(e: &pb::IngestedEvent) -> Result<(uuid::Uuid, DateTime<Utc>, DateTime<Utc>), String> {
    let tenant = uuid::Uuid::parse_str(&e.tenant_id).map_err(|_| "bad tenant id".to_owned())?;
    let occurred = from_ts(e.occurred_at.as_ref()).ok_or("no occurred_at")?;
    let received = from_ts(e.received_at.as_ref()).ok_or("no received_at")?;
    if e.client_event_id.is_empty() || e.name.is_empty() {
        return Err("no id or name".into());
    }
    // Syntax only (nothing is built): the INSERT casts the text to jsonb.
    serde_json::from_str::<serde::de::IgnoredAny>(&e.properties_json).map_err(|_| "properties not JSON".to_owned())?;
    Ok((tenant, occurred, received))
}

impl<'a> Columns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            tenant: Vec::with_capacity(n),
            client_event_id: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            received_at: Vec::with_capacity(n),
            anonymous_id: Vec::with_capacity(n),
            user_id: Vec::with_capacity(n),
            properties: Vec::with_capacity(n),
            revenue_minor: Vec::with_capacity(n),
            currency: Vec::with_capacity(n),
            utm: std::array::from_fn(|_| Vec::with_capacity(n)),
            page_url: Vec::with_capacity(n),
            referrer: Vec::with_capacity(n),
            ip: Vec::with_capacity(n),
        }
    }

    /// Adds an event that passed [`check`] (with what the check returned).
    fn push(&mut self, e: &'a pb::IngestedEvent, keys: (uuid::Uuid, DateTime<Utc>, DateTime<Utc>)) {
        let (tenant, occurred, received) = keys;
        self.tenant.push(tenant);
        self.client_event_id.push(&e.client_event_id);
        self.name.push(&e.name);
        self.occurred_at.push(occurred);
        self.received_at.push(received);
        self.anonymous_id.push(non_empty(&e.anonymous_id));
        self.user_id.push(non_empty(&e.user_id));
        self.properties.push(&e.properties_json);
        self.revenue_minor.push(e.has_revenue.then_some(e.revenue_minor));
        self.currency.push(e.has_revenue.then_some(e.currency.as_str()));
        let [source, medium, campaign, term, content] = &mut self.utm;
        let utm = e.utm.as_ref();
        source.push(utm.and_then(|u| non_empty(&u.source)));
        medium.push(utm.and_then(|u| non_empty(&u.medium)));
        campaign.push(utm.and_then(|u| non_empty(&u.campaign)));
        term.push(utm.and_then(|u| non_empty(&u.term)));
        content.push(utm.and_then(|u| non_empty(&u.content)));
        self.page_url.push(non_empty(&e.page_url));
        self.referrer.push(non_empty(&e.referrer));
        self.ip.push(non_empty(&e.ip));
    }

    fn len(&self) -> usize {
        self.tenant.len()
    }
}

/// One statement per chunk: ids seen for the first time are claimed in `analytics_event_ids`
/// (whatever the event's time), and only their events are stored; a repeated id within the chunk
/// keeps its earliest time.
const INSERT: &str = "WITH input AS ( \
       SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], \
                            $7::text[], $8::text[], $9::int8[], $10::text[], $11::text[], $12::text[], $13::text[], \
                            $14::text[], $15::text[], $16::text[], $17::text[], $18::text[]) \
            AS x(t, c, n, o, r, a, u, p, rm, cur, us, um, uc, ut, uco, pu, rf, ip)), \
     fresh AS ( \
       INSERT INTO analytics_event_ids (tenant_id, client_event_id, occurred_at) \
       SELECT DISTINCT ON (t, c) t, c, o FROM input ORDER BY t, c, o \
       ON CONFLICT DO NOTHING RETURNING tenant_id, client_event_id, occurred_at) \
     INSERT INTO analytics_events (tenant_id, client_event_id, name, source, occurred_at, received_at, \
       anonymous_id, user_id, properties, revenue_minor, currency, utm_source, utm_medium, utm_campaign, utm_term, \
       utm_content, page_url, referrer, ip) \
     SELECT i.t, i.c, i.n, 'track', i.o, i.r, i.a, i.u, i.p::jsonb, i.rm, i.cur, i.us, i.um, i.uc, i.ut, i.uco, i.pu, \
            i.rf, i.ip::inet \
     FROM input i JOIN fresh f ON f.tenant_id = i.t AND f.client_event_id = i.c AND f.occurred_at = i.o \
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
                    cols.push(e, k);
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
        self.store.ensure_partitions(c.occurred_at.iter().copied()).await?;
        // Many workspaces in one transaction: a system transaction (the rows carry their tenant).
        let mut tx = begin_system(&self.store.pool).await.map_err(db)?;
        let mut inserted = 0;
        let step = self.cfg.batch_size.max(1);
        let mut from = 0;
        while from < c.len() {
            let to = (from + step).min(c.len());
            let r = from..to;
            let utm = |k: usize| &c.utm[k][r.clone()];
            inserted += sqlx::query(INSERT)
                .bind(&c.tenant[r.clone()])
                .bind(&c.client_event_id[r.clone()])
                .bind(&c.name[r.clone()])
                .bind(&c.occurred_at[r.clone()])
                .bind(&c.received_at[r.clone()])
                .bind(&c.anonymous_id[r.clone()])
                .bind(&c.user_id[r.clone()])
                .bind(&c.properties[r.clone()])
                .bind(&c.revenue_minor[r.clone()])
                .bind(&c.currency[r.clone()])
                .bind(utm(0))
                .bind(utm(1))
                .bind(utm(2))
                .bind(utm(3))
                .bind(utm(4))
                .bind(&c.page_url[r.clone()])
                .bind(&c.referrer[r.clone()])
                .bind(&c.ip[r.clone()])
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            from = to;
        }
        tx.commit().await.map_err(db)?;
        Ok(inserted)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, secs: i64, props: usize) -> pb::IngestedEvent {
        pb::IngestedEvent {
            client_event_id: id.into(),
            occurred_at: Some(prost_types::Timestamp { seconds: secs, nanos: 0 }),
            properties_json: "x".repeat(props),
            ..Default::default()
        }
    }

    #[test]
    fn a_replayed_request_gets_the_same_message_id_and_another_request_does_not() {
        let t = TenantId::new();
        let a = [ev("1", 10, 0), ev("2", 11, 0)];
        assert_eq!(message_id(t, &a), message_id(t, &[ev("1", 10, 0), ev("2", 11, 0)]));
        assert_ne!(message_id(t, &a), message_id(t, &[ev("1", 10, 0), ev("2", 12, 0)]));
        assert_ne!(message_id(t, &a), message_id(TenantId::new(), &a));
        assert_eq!(message_id(t, &[ev("only", 1, 0)]), format!("{}:only", t.as_uuid().simple()));
    }

    #[test]
    fn large_requests_are_split_below_the_payload_limit() {
        let events: Vec<((), pb::IngestedEvent)> = (0..100).map(|i| ((), ev(&i.to_string(), i, 16_000))).collect();
        let parts = chunks(events);
        assert!(parts.len() >= 4, "{}", parts.len());
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 100);
        for p in &parts {
            let batch = pb::IngestBatch { events: p.iter().map(|(_, e)| e.clone()).collect() };
            assert!(batch.encoded_len() <= MAX_CHUNK_BYTES + 16);
        }
        assert!(chunks(Vec::<((), pb::IngestedEvent)>::new()).is_empty());
    }
}
