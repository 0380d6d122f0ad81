//! The webhook delivery worker.
//!
//! The schedule lives in Postgres (`webhook_deliveries`), so deliveries survive restarts and
//! crashes. A worker claims due rows with `FOR UPDATE SKIP LOCKED` and a lease (several workers
//! and replicas share the work; a crashed worker's rows come due again when the lease runs out),
//! signs each message the Standard Webhooks way, POSTs it through the safe outbound client
//! without following redirects, and records the attempt, the delivery's next state and the
//! endpoint's failure streak in one transaction.
//!
//! Guarantees: a delivery recorded as succeeded is never claimed again; a POST whose result was
//! not committed (the process died in between) is sent again when the lease runs out — at least
//! once, receivers dedupe by `webhook-id`; nothing due is lost.
//!
//! Rate limits are enforced in process, per endpoint (a GCRA token bucket): a delivery over
//! the limit is put back without counting as an attempt. Each replica enforces the limit on
//! what it sends, so R replicas together may send up to R times the limit; a shared Redis bucket
//! would make it exact at the cost of a round trip per delivery, which one replica (the
//! deployment today) does not need.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use nexus_kernel::{Error, TenantId};
use nexus_platform::crypto::Sealer;
use nexus_platform::db::{self, DbResultExt};
use nexus_platform::outbound::{Limits, OutboundClient, OutboundConfig, OutboundError};
use nexus_providers::standard_webhooks::{SigningSecret, signature_header};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::webhooks::secret_context;
use crate::domain::webhooks::{
    self as rules, ATTEMPTS_KEPT, Clock, FailReason, Outcome, RESPONSE_TIMEOUT, gap_before, should_disable,
};
use crate::repo::webhooks::{self as repo, Claimed, Finished, NewAttempt, Next};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Deliveries on the wire at once: the worker claims more whenever half of them are done.
    pub in_flight: usize,
    /// Most deliveries claimed by one statement.
    pub batch: i64,
    /// How long a claim holds a delivery: longer than an attempt can take (timeout, rate wait,
    /// recording).
    pub lease: Duration,
    /// Pause before looking again when nothing was due; it doubles while nothing is, up to
    /// `IDLE_POLL_MAX`.
    pub idle_poll: Duration,
    /// An answer must come within this (the 15 s of the rules; tests shorten it).
    pub timeout: Duration,
    /// Longest wait for an endpoint's rate limit before the delivery is put back instead.
    pub max_rate_wait: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            in_flight: 64,
            batch: 64,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(10),
            timeout: RESPONSE_TIMEOUT,
            max_rate_wait: Duration::from_secs(1),
        }
    }
}

/// Largest response read (only [`rules::BODY_EXCERPT`] of it is kept).
const RESPONSE_MAX_BYTES: u64 = 64 * 1024;

/// A per-endpoint GCRA limiter: `rate` per second with a burst of one second's worth.
#[derive(Debug, Default)]
struct Limiter {
    next_free: Mutex<HashMap<Uuid, Instant>>,
}

impl Limiter {
    /// Takes a slot for `endpoint` and answers how long to wait before using it, or `Err(wait)`
    /// without taking one when the wait would exceed `max_wait`.
    fn reserve(&self, endpoint: Uuid, rate: u32, max_wait: Duration) -> Result<Duration, Duration> {
        let interval = Duration::from_secs(1) / rate.max(1);
        let burst = Duration::from_secs(1).saturating_sub(interval);
        let now = Instant::now();
        let mut map = self.next_free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, t| *t > now);
        }
        let tat = map.get(&endpoint).copied().unwrap_or(now).max(now);
        let wait = tat.saturating_duration_since(now + burst);
        if wait > max_wait {
            return Err(wait);
        }
        map.insert(endpoint, tat + interval);
        Ok(wait)
    }
}

/// Claims, sends and records webhook deliveries.
#[derive(Clone)]
pub struct Worker {
    pool: PgPool,
    http: OutboundClient,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    cfg: WorkerConfig,
    limiter: Arc<Limiter>,
    /// Opened secrets by their sealed text (a rotation seals anew, so an entry never goes stale).
    secrets: Arc<Mutex<HashMap<String, SigningSecret>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// A message's body as every endpoint gets it: built, digested and named once per claim.
struct Body {
    bytes: bytes::Bytes,
    sha256: String,
    webhook_id: String,
}

/// A claimed delivery with its message's body.
struct Job {
    c: Claimed,
    body: Arc<Body>,
}

/// Pairs each claimed delivery with its message's body, built once per message (a message
/// goes to every endpoint that subscribed, in one claim as a rule).
fn prepare(claimed: Vec<Claimed>) -> Vec<Job> {
    let mut bodies: HashMap<Uuid, Arc<Body>> = HashMap::new();
    claimed
        .into_iter()
        .map(|c| {
            let body = bodies
                .entry(c.message_id)
                .or_insert_with(|| {
                    let bytes = rules::body_of_raw(&c.event_type, c.message_created_at, &c.payload);
                    Arc::new(Body {
                        sha256: hex(&Sha256::digest(&bytes)),
                        webhook_id: rules::webhook_id(c.message_id),
                        bytes: bytes.into(),
                    })
                })
                .clone();
            Job { c, body }
        })
        .collect()
}

/// The longest wait between claims of a worker that keeps finding nothing due.
const IDLE_POLL_MAX: Duration = Duration::from_millis(200);

/// Most finished deliveries recorded by one transaction.
const RECORD_GROUP: usize = 512;

/// Groups recorded side by side: one waits for its commit to reach the disk while the next is
/// written, and Postgres works on both with a core each.
const RECORDERS: usize = 2;

/// Tries to record a group this often: a group left unrecorded is sent again when its leases
/// run out, so a passing failure (a deadlock between recorders disabling and finishing the
/// same endpoint's deliveries, a dropped connection) is retried at once.
const RECORD_TRIES: u32 = 3;

/// What one claimed delivery came to, before it is recorded.
struct Done {
    claimed: Claimed,
    body: Arc<Body>,
    next: Next,
    attempt: Option<Sent>,
    started_at: DateTime<Utc>,
}

/// A request that went out (or was refused before it could).
struct Sent {
    outcome: &'static str,
    status: Option<i32>,
    duration_ms: i32,
    headers: serde_json::Value,
    body_excerpt: String,
}

impl Worker {
    /// A worker sending under `outbound`'s rules (its allowlist), never following redirects.
    pub fn new(
        pool: PgPool,
        outbound: &OutboundConfig,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        cfg: WorkerConfig,
    ) -> Result<Self, nexus_platform::config::ConfigError> {
        let mut outbound = outbound.clone();
        outbound.timeout = outbound.timeout.max(cfg.timeout);
        outbound.max_response_bytes = RESPONSE_MAX_BYTES;
        let http = OutboundClient::without_redirects(&outbound)?;
        Ok(Self { pool, http, sealer, clock, cfg, limiter: Arc::new(Limiter::default()), secrets: Arc::default() })
    }

    /// Delivers until `cancel`, then finishes and records what is in flight; sweeps attempts
    /// and messages past 30 days every ten minutes.
    ///
    /// A pipeline of three stages that never wait on one another: a claim runs in the
    /// background while deliveries are on the wire (up to a batch is held claimed ahead, so the
    /// wire never idles while Postgres answers), each delivery is sent by a task of its own, and
    /// a recorder commits whatever has finished in groups.
    pub async fn run(self, cancel: CancellationToken) {
        let sweeper = self.clone();
        let sweep_cancel = cancel.clone();
        let sweeping = tokio::spawn(async move {
            loop {
                if let Err(e) = sweeper.sweep().await {
                    tracing::warn!(error = ?e, "webhook sweep failed; will retry");
                }
                tokio::select! {
                    () = sweep_cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(600)) => {}
                }
            }
        });
        // Bounded: a recorder falling behind slows the senders down long before a lease (60 s)
        // could run out on a delivery that was sent but not yet recorded.
        let (finished, mut to_record) = tokio::sync::mpsc::channel::<Done>(self.cfg.in_flight.max(1) * 8);
        let recorder = self.clone();
        let recording = tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            let mut group = Vec::new();
            while to_record.recv_many(&mut group, RECORD_GROUP).await > 0 {
                while running.len() >= RECORDERS {
                    running.join_next().await;
                }
                let (me, group) = (recorder.clone(), std::mem::take(&mut group));
                running.spawn(async move { me.record_retrying(group).await });
            }
            while running.join_next().await.is_some() {}
        });
        Arc::new(self).pump(&cancel, &finished).await;
        drop(finished);
        let _ = recording.await;
        let _ = sweeping.await;
    }

    /// Keeps `in_flight` deliveries on the wire, each a task of its own that hands its result
    /// to the recorder, and claims ahead in the background. On `cancel`, deliveries claimed but
    /// not yet sent are put back (due at once, no attempt counted) and those on the wire finish.
    async fn pump(self: Arc<Self>, cancel: &CancellationToken, finished: &tokio::sync::mpsc::Sender<Done>) {
        let capacity = self.cfg.in_flight.max(1);
        let batch = usize::try_from(self.cfg.batch).unwrap_or(1).max(1);
        let mut ready: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
        let mut sending = tokio::task::JoinSet::new();
        let mut claiming: Option<tokio::task::JoinHandle<Result<Vec<Job>, Error>>> = None;
        let mut backoff = self.cfg.idle_poll;
        let mut idle = self.cfg.idle_poll;
        // When the last claim found nothing (or failed), the next waits for this.
        let mut next_claim = tokio::time::Instant::now();
        loop {
            while sending.len() < capacity
                && let Some(job) = ready.pop_front()
            {
                let (me, finished) = (self.clone(), finished.clone());
                sending.spawn(async move {
                    let done = me.attempt(job).await;
                    // The recorder only stops after every sender is gone.
                    let _ = finished.send(done).await;
                });
            }
            if cancel.is_cancelled() {
                if let Some(claim) = claiming.take()
                    && let Ok(Ok(jobs)) = claim.await
                {
                    ready.extend(jobs);
                }
                let now = self.clock.now();
                for job in ready.drain(..) {
                    let put_back = Done {
                        claimed: job.c,
                        body: job.body,
                        next: Next::Deferred(now),
                        attempt: None,
                        started_at: now,
                    };
                    let _ = finished.send(put_back).await;
                }
                while sending.join_next().await.is_some() {}
                return;
            }
            // Claimed ahead: what is on the wire plus up to a batch waiting. A claim asks for at
            // least half a batch unless the queue ran dry, so claims stay few and large.
            let room = (capacity + batch).saturating_sub(sending.len() + ready.len());
            if claiming.is_none()
                && room > 0
                && (room * 2 >= batch || ready.is_empty())
                && tokio::time::Instant::now() >= next_claim
            {
                let me = self.clone();
                let limit = i64::try_from(room.min(batch)).unwrap_or(i64::MAX);
                claiming = Some(tokio::spawn(async move { me.claim(limit).await }));
            }
            tokio::select! {
                Some(_) = sending.join_next(), if !sending.is_empty() => {}
                claimed = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                    claiming = None;
                    match claimed {
                        Ok(Ok(jobs)) => {
                            if jobs.is_empty() {
                                // An idle worker polls less and less often (up to IDLE_POLL_MAX),
                                // so idle replicas cost Postgres little; any work resets it.
                                next_claim = tokio::time::Instant::now() + idle;
                                idle = (idle * 2).min(IDLE_POLL_MAX.max(self.cfg.idle_poll));
                            } else {
                                idle = self.cfg.idle_poll;
                            }
                            backoff = self.cfg.idle_poll;
                            ready.extend(jobs);
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(error = ?e, "claiming webhook deliveries failed; will retry");
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            next_claim = tokio::time::Instant::now() + backoff;
                        }
                        Err(e) => {
                            tracing::error!(error = ?e, "a webhook claim task failed; will retry");
                            next_claim = tokio::time::Instant::now() + backoff;
                        }
                    }
                }
                () = tokio::time::sleep_until(next_claim), if claiming.is_none() && ready.is_empty() => {}
                () = cancel.cancelled() => {}
            }
        }
    }

    /// Claims up to `limit` due deliveries for one lease, each message's body prepared once for
    /// all its endpoints.
    async fn claim(&self, limit: i64) -> Result<Vec<Job>, Error> {
        let now = self.clock.now();
        let lease_until = now + chrono::Duration::from_std(self.cfg.lease).map_err(Error::internal)?;
        let mut conn = self.pool.acquire().await.db()?;
        let claimed = repo::claim(&mut conn, now, lease_until, limit).await?;
        drop(conn);
        Ok(prepare(claimed))
    }

    /// One round without the pipeline (tests step the worker with it): claims due deliveries,
    /// sends them side by side and records them as they finish (whatever is ready together in
    /// one transaction). Answers how many were claimed.
    pub async fn tick(&self) -> Result<usize, Error> {
        let claimed = self.claim(self.cfg.batch).await?;
        let n = claimed.len();
        if n == 0 {
            return Ok(0);
        }
        let mut done = futures::stream::iter(claimed).map(|c| self.attempt(c)).buffer_unordered(n).ready_chunks(n);
        let mut first_error = None;
        while let Some(chunk) = done.next().await {
            if let Err(e) = self.record(&chunk).await {
                tracing::warn!(error = ?e, "recording webhook attempts failed; their leases will run out");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Sends one claimed delivery (or decides not to).
    async fn attempt(&self, job: Job) -> Done {
        let Job { c, body } = job;
        let started_at = self.clock.now();
        if c.endpoint_status != rules::EndpointStatus::Enabled.as_str() {
            return Done { claimed: c, body, next: Next::Cancelled, attempt: None, started_at };
        }
        let rate = u32::try_from(c.rate_limit).unwrap_or(1);
        match self.limiter.reserve(c.endpoint_id, rate, self.cfg.max_rate_wait) {
            Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Ok(_) => {}
            Err(wait) => {
                let at = started_at + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::seconds(1));
                return Done { claimed: c, body, next: Next::Deferred(at), attempt: None, started_at };
            }
        }
        let sent = self.send(&c, &body, started_at).await;
        let next = if sent.outcome == "delivered" {
            Next::Succeeded
        } else {
            let made = usize::try_from(c.attempts).unwrap_or(0) + 1;
            match gap_before(made).and_then(|g| chrono::Duration::from_std(g).ok()) {
                Some(gap) => Next::Retry(started_at + gap),
                None => Next::Failed,
            }
        };
        Done { claimed: c, body, next, attempt: Some(sent), started_at }
    }

    /// The secrets that sign now: the current one, and the previous one during its overlap.
    fn secrets(&self, c: &Claimed, now: DateTime<Utc>) -> Result<Vec<SigningSecret>, Error> {
        let open = |sealed: &str, column: &str| -> Result<SigningSecret, Error> {
            let mut cache = self.secrets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(s) = cache.get(sealed) {
                return Ok(s.clone());
            }
            let raw = self.sealer.open(sealed, &secret_context(column, c.endpoint_id)).map_err(Error::internal)?;
            let text = String::from_utf8(raw).map_err(Error::internal)?;
            let secret = SigningSecret::parse(&text).map_err(Error::internal)?;
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(sealed.to_owned(), secret.clone());
            Ok(secret)
        };
        let mut out = vec![open(&c.secret_sealed, "secret")?];
        if let (Some(prev), Some(until)) = (&c.previous_secret_sealed, c.previous_expires_at)
            && until > now
        {
            out.push(open(prev, "previous_secret")?);
        }
        Ok(out)
    }

    async fn send(&self, c: &Claimed, body: &Body, now: DateTime<Utc>) -> Sent {
        let id = &body.webhook_id;
        let timestamp = now.timestamp();
        let secrets = match self.secrets(c, now) {
            Ok(s) => s,
            Err(e) => {
                // Our own keys failed us: nothing was sent; the attempt says so.
                tracing::error!(error = ?e, endpoint = %c.endpoint_id, "cannot open a webhook secret");
                return Sent {
                    outcome: FailReason::Network.as_str(),
                    status: None,
                    duration_ms: 0,
                    headers: serde_json::json!({}),
                    body_excerpt: String::new(),
                };
            }
        };
        let refs: Vec<&SigningSecret> = secrets.iter().collect();
        let signature = signature_header(&refs, id, timestamp, &body.bytes);
        let headers = serde_json::json!({
            "content-type": "application/json",
            "webhook-id": id,
            "webhook-timestamp": timestamp.to_string(),
            "webhook-signature": signature,
        });
        let req = self
            .http
            .http()
            .post(&c.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", &signature)
            // Shared, not copied: every endpoint of the message sends the same bytes.
            .body(body.bytes.clone());
        let clock = Instant::now();
        let result = self.http.send(req, Limits { max_bytes: RESPONSE_MAX_BYTES, timeout: self.cfg.timeout }).await;
        let duration_ms = i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX);
        let (outcome, status, body_excerpt) = match result {
            Ok(resp) => {
                let code = resp.status.as_u16();
                let outcome = match rules::outcome(code) {
                    Outcome::Delivered => "delivered",
                    Outcome::Failed(reason) => reason.as_str(),
                };
                (outcome, Some(i32::from(code)), rules::excerpt(&resp.body))
            }
            Err(e) => {
                let reason = match e {
                    OutboundError::Blocked(_) | OutboundError::InvalidUrl(_) => FailReason::Refused,
                    OutboundError::Timeout(_) => FailReason::Timeout,
                    OutboundError::TooLarge { .. }
                    | OutboundError::TooManyRedirects(_)
                    | OutboundError::Transport(_) => FailReason::Network,
                };
                (reason.as_str(), None, e.to_string().chars().take(rules::BODY_EXCERPT).collect())
            }
        };
        Sent { outcome, status, duration_ms, headers, body_excerpt }
    }

    /// Records finished deliveries in one transaction, a statement per kind of write whatever
    /// their number: each delivery's next state (only while its lease is still ours), its
    /// attempt, and its endpoint's failure streak — an endpoint failing for five days is
    /// disabled and announced. A streak ends with any success in the batch.
    async fn record(&self, done: &[Done]) -> Result<(), Error> {
        let finished: Vec<Finished> = done
            .iter()
            .map(|d| Finished { id: d.claimed.id, lease: d.claimed.lease_token, next: d.next, at: d.started_at })
            .collect();
        let mut tx = db::system(&self.pool).await?;
        let ours: HashSet<Uuid> = repo::finish(&mut tx, &finished).await?.into_iter().collect();
        let recorded: Vec<&Done> = done.iter().filter(|d| ours.contains(&d.claimed.id)).collect();
        if recorded.len() < done.len() {
            tracing::info!(
                lost = done.len() - recorded.len(),
                "webhook delivery leases were taken over; not recording those"
            );
        }
        let attempts: Vec<NewAttempt<'_>> = recorded
            .iter()
            .filter_map(|d| {
                let (c, sent) = (&d.claimed, d.attempt.as_ref()?);
                Some(NewAttempt {
                    tenant: c.tenant_id,
                    delivery_id: c.id,
                    endpoint_id: c.endpoint_id,
                    message_id: c.message_id,
                    attempt: c.attempts + 1,
                    outcome: sent.outcome,
                    status_code: sent.status,
                    duration_ms: sent.duration_ms,
                    request_url: &c.url,
                    request_headers: &sent.headers,
                    request_sha256: &d.body.sha256,
                    response_body: &sent.body_excerpt,
                    started_at: d.started_at,
                })
            })
            .collect();
        repo::insert_attempts(&mut tx, &attempts).await?;

        let mut succeeded: Vec<Uuid> = Vec::new();
        let mut failed: HashMap<Uuid, (DateTime<Utc>, Uuid)> = HashMap::new();
        for d in recorded.iter().filter(|d| d.attempt.is_some()) {
            let c = &d.claimed;
            if d.next == Next::Succeeded {
                succeeded.push(c.endpoint_id);
            } else {
                let e = failed.entry(c.endpoint_id).or_insert((d.started_at, c.tenant_id));
                e.0 = e.0.min(d.started_at);
            }
        }
        succeeded.sort_unstable();
        succeeded.dedup();
        failed.retain(|e, _| succeeded.binary_search(e).is_err());
        let outcomes: Vec<(Uuid, Option<DateTime<Utc>>)> =
            succeeded.iter().map(|e| (*e, None)).chain(failed.iter().map(|(e, (at, _))| (*e, Some(*at)))).collect();
        for (endpoint, since) in repo::endpoint_streaks(&mut tx, &outcomes).await? {
            let Some(&(at, tenant)) = failed.get(&endpoint) else { continue };
            if should_disable(since, at)
                && let Some(url) = repo::disable_endpoint(&mut tx, endpoint, "failing").await?
            {
                super::endpoint_disabled(&mut tx, TenantId::from_uuid(tenant), endpoint, &url, "failing", Some(since))
                    .await?;
                tracing::warn!(%endpoint, "webhook endpoint disabled after failing for five days");
            }
        }
        db::commit(tx).await?;
        for a in &attempts {
            metrics::counter!("nexus_webhook_attempts_total", "outcome" => a.outcome.to_owned()).increment(1);
        }
        Ok(())
    }

    /// [`Worker::record`], tried again on failure (its transaction rolled back whole, and a
    /// lease still ours is still ours).
    async fn record_retrying(&self, done: Vec<Done>) {
        for n in 1..=RECORD_TRIES {
            match self.record(&done).await {
                Ok(()) => return,
                Err(e) if n < RECORD_TRIES => {
                    tracing::info!(error = ?e, try_ = n, "recording webhook attempts failed; trying again");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(n))).await;
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "recording webhook attempts failed; their leases will run out");
                }
            }
        }
    }

    /// Deletes attempts older than 30 days (by the worker's clock), then messages older than
    /// that (replays reach 30 days back) with their finished deliveries, in bounded batches.
    /// Answers how many attempts went.
    pub async fn sweep(&self) -> Result<u64, Error> {
        let before = self.clock.now() - chrono::Duration::from_std(ATTEMPTS_KEPT).map_err(Error::internal)?;
        let mut total = 0;
        loop {
            let mut tx = db::system(&self.pool).await?;
            let n = repo::sweep_attempts(&mut tx, before, 5_000).await?;
            db::commit(tx).await?;
            total += n;
            if n < 5_000 {
                break;
            }
        }
        loop {
            let mut tx = db::system(&self.pool).await?;
            let n = repo::sweep_messages(&mut tx, before, 1_000).await?;
            db::commit(tx).await?;
            if n < 1_000 {
                return Ok(total);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_a_second_of_burst_then_spaces_requests() {
        let l = Limiter::default();
        let e = Uuid::now_v7();
        let max = Duration::from_millis(500);
        for _ in 0..10 {
            assert_eq!(l.reserve(e, 10, max), Ok(Duration::ZERO));
        }
        // The eleventh waits about one interval; far beyond the burst it is put back.
        let wait = l.reserve(e, 10, max).unwrap();
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100), "{wait:?}");
        for _ in 0..4 {
            l.reserve(e, 10, max).unwrap();
        }
        assert!(l.reserve(e, 10, max).is_err());
        // Another endpoint has its own bucket.
        assert_eq!(l.reserve(Uuid::now_v7(), 10, max), Ok(Duration::ZERO));
    }

    #[test]
    fn digests_are_lower_hex() {
        assert_eq!(hex(&Sha256::digest(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
