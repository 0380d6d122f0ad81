//! Tracking. [`Tracker`] verifies the write key, validates each event, strips personal data and
//! publishes the valid events of a request to the ingest stream — one message per request (split
//! when large), with a `Nats-Msg-Id` derived from the events' ids and times so JetStream drops a
//! replayed request inside its window — answering only once JetStream has acknowledged them all.
//! One message per request rather than per event keeps the broker's work per event small;
//! exactly-once storage does not depend on it (see [`super::ingest`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::bus::Bus;
use nexus_platform::grpc::ts;
use nexus_proto::nexus::analytics::v1 as pb;
use prost::Message;

use super::Analytics;
use super::ingest::{ingest_stream, ingest_subject, unavailable};
use crate::config::AnalyticsConfig;
use crate::domain::workspace::origin_allowed;
use crate::domain::{self, Limits, RawEvent, Rejection};

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
    pub app: Arc<Analytics>,
    pub bus: Bus,
    pub cfg: AnalyticsConfig,
    stream_ready: AtomicBool,
}

impl Tracker {
    pub fn new(app: Arc<Analytics>, bus: Bus, cfg: AnalyticsConfig) -> Self {
        Self { app, bus, cfg, stream_ready: AtomicBool::new(false) }
    }

    /// Tracks `events` with `write_key`. Refuses the whole request only for a bad key, a
    /// disallowed origin, an oversized batch or an unavailable stream; otherwise every event gets
    /// its own outcome.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
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
        let grant = self.app.verify_key(write_key.trim()).await?;
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
        let settings = self.app.settings(grant.tenant).await?;
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
