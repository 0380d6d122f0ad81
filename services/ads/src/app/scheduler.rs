//! The social media scheduler: due publications of every workspace claimed (SKIP LOCKED, a
//! lease, a claim number fencing every write) and published exactly once. Before any call that
//! may publish, the target is checkpointed `publishing` with what is known (`sent`); a target
//! found in that state — after a crash, a lost answer, a lease that ran out — is looked up on
//! the platform (Instagram's container status, the page's or creator's recent posts, YouTube's
//! upload session, TikTok's publish status) before anything is repeated. Token refusals pause the
//! connection's queue; transient failures wait with backoff; a permanent refusal fails the post
//! with the platform's reason and is never retried.
//!
//! While a round runs, a heartbeat extends the leases of its unfinished publications every
//! lease / 3 (fenced by the claim number), so a slow upload or platform does not hand a target
//! to another replica; only a replica frozen past its lease does. A post found by caption on a
//! listing is told from its twins: not one another target of the account already holds, nor
//! one made before the publish was first sent. Per-account limits (TikTok's inits a minute,
//! Instagram's posts a day) are counted in the database before the call, under a per-account
//! lock, so every replica together stays below them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use nexus_providers::instagram::{ContainerStatus, IgContainer, IgKind, PagePost};
use nexus_providers::marketing::{PlatformError, PublishedItem};
use nexus_providers::tiktok_posts::{PublishState, TikTokPost};
use nexus_providers::youtube::{UploadState, VideoMeta};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::App;
use crate::domain::connections::Provider;
use crate::domain::posts::{Format, MediaKind, Platform, Variant, backoff, target_status};
use crate::repo;
use crate::repo::posts::{Admission, Claimed, Later};

/// How many of an account's latest posts are searched for a publish whose answer was lost (only
/// then: the search pages through the platform's listing).
const RECONCILE_DEPTH: u32 = 300;

/// How long a throttled account waits when the platform does not say.
const THROTTLE_WAIT: Duration = Duration::from_secs(60);

/// How much earlier than our first send a platform's clock may date the post it made.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(2);

/// Runs `posts.rounds` loops of rounds side by side until `stop` (claims skip what another
/// holds, so they never share a publication): while one claims or records, another publishes.
pub async fn scheduler(app: Arc<App>, stop: CancellationToken) {
    let loops: Vec<_> =
        (0..app.cfg.posts.rounds.max(1)).map(|_| tokio::spawn(rounds(app.clone(), stop.clone()))).collect();
    for l in loops {
        if let Err(e) = l.await {
            tracing::error!(error = %e, "a scheduler loop ended abnormally");
        }
    }
}

/// Runs rounds until `stop`: at once again while rounds come back full, else every
/// `posts.poll_interval`.
async fn rounds(app: Arc<App>, stop: CancellationToken) {
    loop {
        let full = match app.publish_due().await {
            Ok(r) => r.claimed >= app.cfg.posts.batch,
            Err(e) => {
                tracing::warn!(error = ?e, "publishing round failed");
                false
            }
        };
        if !full {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(app.cfg.posts.poll_interval) => {}
            }
        } else if stop.is_cancelled() {
            return;
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PublishRound {
    pub claimed: u32,
    pub published: u32,
    pub failed: u32,
    /// Waiting: still processing at the platform, or to be retried.
    pub later: u32,
    pub paused: u32,
    /// Claims that ran out before the work was recorded (another replica has it now).
    pub lost: u32,
}

impl PublishRound {
    fn add(&mut self, o: PublishRound) {
        self.claimed += o.claimed;
        self.published += o.published;
        self.failed += o.failed;
        self.later += o.later;
        self.paused += o.paused;
        self.lost += o.lost;
    }
}

/// Where a step leaves a publication.
enum Step {
    Published {
        id: String,
        permalink: String,
    },
    /// Not done yet (processing at the platform): look again after the pause, not an attempt.
    Wait(Duration),
    /// A transient failure: an attempt counted, tried again after a backoff (or `after`).
    Retry {
        after: Option<Duration>,
        error: String,
    },
    /// The platform asked us to slow down (rate or publishing quota): tried again after its
    /// wait, not counted as an attempt — throttling delays a post, it never fails one.
    Throttled(Duration),
    Failed {
        code: String,
        reason: String,
    },
    /// The platform refused the token: the connection's queue waits for a reconnect.
    Pause(String),
    /// The claim ran out; another replica has the target.
    Lost,
}

/// A claimed publication and what is known of its publish.
struct Job {
    c: Claimed,
    progress: Value,
    /// Marked `sent` by this round, before any call: nothing to look up, nothing to mark again.
    fresh: bool,
}

impl Job {
    fn sent(&self) -> bool {
        self.progress.get("sent").and_then(Value::as_bool).unwrap_or(false)
    }

    /// A publish call of an earlier claim may have happened: look the post up first.
    fn unclear(&self) -> bool {
        self.sent() && !self.fresh
    }

    fn text(&self, key: &str) -> Option<String> {
        self.progress.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    /// When the publish call was first sent (kept across claims; absent before any).
    fn first_sent(&self) -> Option<DateTime<Utc>> {
        self.text("sent_at").and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc))
    }

    fn set(&mut self, key: &str, v: Value) {
        if let Value::Object(m) = &mut self.progress {
            m.insert(key.to_owned(), v);
        } else {
            self.progress = json!({ key: v });
        }
    }

    fn variant(&self) -> &Variant {
        &self.c.variant.0
    }
}

/// How a failed call leaves the publication. `publishing`: the call may have published, so an
/// unclear outcome is reconciled rather than failed.
fn judged(e: &PlatformError, publishing: bool) -> Step {
    match e {
        PlatformError::Auth { message, .. } => Step::Pause(message.clone()),
        PlatformError::RateLimited { retry_after, .. } => {
            Step::Throttled(retry_after.unwrap_or(THROTTLE_WAIT).max(Duration::from_secs(1)))
        }
        PlatformError::Api { code, message, .. } => Step::Failed { code: code.to_string(), reason: message.clone() },
        PlatformError::Timeout { .. } | PlatformError::Upstream { .. } | PlatformError::Decode { .. } => {
            let error = if publishing { "outcome_unknown" } else { "platform_unavailable" };
            Step::Retry { after: None, error: error.into() }
        }
    }
}

/// What a round shares between its publications: each connection's token, opened once, and
/// page tokens as Meta hands them out.
struct RoundCtx {
    tokens: HashMap<Uuid, String>,
    page_tokens: std::sync::Mutex<HashMap<(Uuid, String), String>>,
    /// Publications of one account in flight.
    accounts: HashMap<(Uuid, String), Arc<tokio::sync::Semaphore>>,
}

fn tally(round: &mut PublishRound, recorded: Result<Step, Error>) {
    match recorded {
        Ok(Step::Published { .. }) => round.published += 1,
        Ok(Step::Failed { .. }) => round.failed += 1,
        Ok(Step::Wait(_) | Step::Retry { .. } | Step::Throttled(_)) => round.later += 1,
        Ok(Step::Pause(_)) => round.paused += 1,
        Ok(Step::Lost) => round.lost += 1,
        Err(e) => {
            tracing::warn!(error = ?e, "a publication could not be recorded");
            round.later += 1;
        }
    }
}

/// A publication the platform confirmed, waiting to be recorded with others.
struct Published {
    job: Job,
    id: String,
    permalink: String,
    /// When the platform confirmed it (the post's published time, not the record's).
    at: chrono::DateTime<Utc>,
}

/// How long confirmed publications wait to be recorded together, and how many at most.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const FLUSH_AT: usize = 500;
/// Records written at once while the round goes on publishing.
const FLUSHES: usize = 2;

/// The round's jobs, as claimed.
fn jobs_of(claimed: Vec<Claimed>) -> Vec<Job> {
    claimed
        .into_iter()
        .map(|c| {
            let progress = if c.progress.is_object() { c.progress.clone() } else { json!({}) };
            let fresh = c.marked;
            Job { c, progress, fresh }
        })
        .collect()
}

impl App {
    /// One round: claims due publications (marking the single-call ones `sent` in the same
    /// statement), opens each connection's token once, publishes side by side, and records
    /// the published ones per workspace in one transaction (the rest one by one).
    pub async fn publish_due(&self) -> Result<PublishRound, Error> {
        let cfg = &self.cfg.posts;
        let lease = chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::minutes(10));
        let mut sys = db::system(&self.pool).await?;
        let claimed = repo::posts::claim(&mut sys, lease, i64::from(cfg.batch)).await?;
        let (mut tokens, stale) = self.tokens_of(&mut sys, &claimed).await?;
        db::commit(sys).await?;
        self.renew_stale(&mut tokens, stale).await;
        let jobs = jobs_of(claimed);
        // The round's unfinished publications and their claims, whose leases the heartbeat
        // extends (queued ones too: a claim that ran out while waiting would let another
        // replica repeat a call this one is about to make).
        let mut held: HashMap<Uuid, i32> = jobs.iter().map(|j| (j.c.id, j.c.claims)).collect();
        let beat_every = cfg.lease / 3;
        let mut last_beat = tokio::time::Instant::now();
        let mut round = PublishRound { claimed: u32::try_from(jobs.len()).unwrap_or(u32::MAX), ..Default::default() };
        // At most `per_account` publications of one account at a time, whatever the round's
        // concurrency: one busy account does not take every slot, nor hammer its platform.
        let per_account = usize::try_from(cfg.per_account.max(1)).unwrap_or(1);
        let mut accounts: HashMap<(Uuid, String), Arc<tokio::sync::Semaphore>> = HashMap::new();
        for j in &jobs {
            accounts
                .entry((j.c.connection_id, j.c.account.clone()))
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(per_account)));
        }
        let ctx = RoundCtx { tokens, page_tokens: std::sync::Mutex::new(HashMap::new()), accounts };
        let concurrency = usize::try_from(cfg.concurrency.max(1)).unwrap_or(1);
        let ctx = &ctx;
        let mut done = futures::stream::iter(jobs)
            .map(|mut job| async move {
                let tenant = TenantId::from_uuid(job.c.tenant_id);
                let gate = ctx.accounts.get(&(job.c.connection_id, job.c.account.clone())).cloned();
                let _permit = match &gate {
                    Some(g) => g.acquire().await.ok(),
                    None => None,
                };
                let step = match self.step(ctx, tenant, &mut job).await {
                    Ok(step) => step,
                    Err(e) => {
                        tracing::warn!(error = ?e, "publishing step failed");
                        Step::Retry { after: None, error: e.code().to_owned() }
                    }
                };
                (job, step)
            })
            .buffer_unordered(concurrency);
        // Published posts are recorded together, but never held long: a slow upload in the
        // round must not delay the record (and the events) of posts already live. Records are
        // written while publishing goes on (at most `FLUSHES` at a time), not in between.
        let mut published: Vec<Published> = Vec::new();
        let mut flushing = futures::stream::FuturesUnordered::new();
        let mut since_flush = tokio::time::Instant::now();
        let mut finished = false;
        loop {
            tokio::select! {
                next = tokio::time::timeout(FLUSH_EVERY, done.next()), if !finished => {
                    finished = matches!(next, Ok(None));
                    if let Ok(Some((mut job, step))) = next {
                        if let Step::Published { id, permalink } = step {
                            published.push(Published { job, id, permalink, at: Utc::now() });
                        } else {
                            held.remove(&job.c.id);
                            let tenant = TenantId::from_uuid(job.c.tenant_id);
                            tally(&mut round, self.record(tenant, &mut job, step).await);
                        }
                    }
                }
                Some(flushed) = flushing.next(), if !flushing.is_empty() => round.add(flushed),
            }
            let due = since_flush.elapsed() >= FLUSH_EVERY || published.len() >= FLUSH_AT;
            if (finished || due) && !published.is_empty() {
                for p in &published {
                    held.remove(&p.job.c.id);
                }
                while flushing.len() >= FLUSHES {
                    if let Some(flushed) = flushing.next().await {
                        round.add(flushed);
                    }
                }
                flushing.push(self.flush_published(std::mem::take(&mut published)));
            }
            if !finished && last_beat.elapsed() >= beat_every {
                self.heartbeat(&mut held, lease).await;
                last_beat = tokio::time::Instant::now();
            }
            if due {
                since_flush = tokio::time::Instant::now();
            }
            if finished && published.is_empty() {
                while let Some(flushed) = flushing.next().await {
                    round.add(flushed);
                }
                return Ok(round);
            }
        }
    }

    /// Extends the leases of the round's unfinished publications, each fenced by its claim; a
    /// claim found gone is dropped from the beat (another replica has it, and this one's
    /// fenced writes will be refused).
    async fn heartbeat(&self, held: &mut HashMap<Uuid, i32>, lease: chrono::Duration) {
        if held.is_empty() {
            return;
        }
        let claims: Vec<(Uuid, i32)> = held.iter().map(|(id, claims)| (*id, *claims)).collect();
        let until = Utc::now() + lease;
        let extended = async {
            let mut sys = db::system(&self.pool).await?;
            let kept = repo::posts::extend_claims(&mut sys, &claims, until).await?;
            db::commit(sys).await?;
            Ok::<_, Error>(kept)
        }
        .await;
        match extended {
            Ok(kept) => {
                let kept: std::collections::HashSet<Uuid> = kept.into_iter().collect();
                held.retain(|id, _| kept.contains(id));
            }
            Err(e) => tracing::warn!(error = ?e, "the round's claims could not be extended"),
        }
    }

    /// Records published posts, per workspace in one transaction each; answers the tally.
    async fn flush_published(&self, published: Vec<Published>) -> PublishRound {
        let mut round = PublishRound::default();
        let mut by_tenant: HashMap<Uuid, Vec<Published>> = HashMap::new();
        for p in published {
            by_tenant.entry(p.job.c.tenant_id).or_default().push(p);
        }
        for (tenant, done) in by_tenant {
            let n = u32::try_from(done.len()).unwrap_or(0);
            match self.record_published(TenantId::from_uuid(tenant), &done).await {
                Ok(kept) => {
                    round.published += kept;
                    round.lost += n.saturating_sub(kept);
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "published posts could not be recorded");
                    round.later += n;
                }
            }
        }
        round
    }

    /// The claimed publications' access tokens, and the connections whose token runs out within
    /// `posts.token_margin` and can be renewed (Google's last an hour: a stale one would be
    /// refused and pause the account).
    async fn tokens_of(
        &self,
        sys: &mut sqlx::PgConnection,
        claimed: &[Claimed],
    ) -> Result<(HashMap<Uuid, String>, Vec<(TenantId, Uuid, Provider)>), Error> {
        let mut ids: Vec<Uuid> = claimed.iter().filter(|c| c.provider != "local").map(|c| c.connection_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let sealed = repo::posts::credentials(sys, &ids).await?;
        let soon = Utc::now() + chrono::Duration::from_std(self.cfg.posts.token_margin).unwrap_or_default();
        let mut out = HashMap::with_capacity(sealed.len());
        let mut stale = Vec::new();
        for c in sealed {
            out.insert(c.id, self.open_tokens(c.id, &c.credentials)?.access_token);
            if let Ok(provider) = c.provider.parse::<Provider>()
                && provider.refreshes()
                && c.token_expires_at.is_some_and(|at| at <= soon)
            {
                stale.push((TenantId::from_uuid(c.tenant_id), c.id, provider));
            }
        }
        Ok((out, stale))
    }

    /// Renews tokens about to run out before they are used. One that cannot be renewed is used as
    /// it is: the platform's answer decides (a refusal pauses the account, as before), and the
    /// expiry watch reports the connection.
    async fn renew_stale(&self, tokens: &mut HashMap<Uuid, String>, stale: Vec<(TenantId, Uuid, Provider)>) {
        for (tenant, id, provider) in stale {
            match self.refresh_connection(tenant, id, provider, self.cfg.posts.token_margin).await {
                Ok(fresh) => {
                    tokens.insert(id, fresh.access_token);
                }
                Err(e) => {
                    tracing::warn!(provider = %provider, code = e.code(), "renewing a token before publishing failed")
                }
            }
        }
    }

    /// Records a workspace's published targets and their events in one transaction; how many
    /// were still this replica's to record. First comments follow.
    async fn record_published(&self, tenant: TenantId, done: &[Published]) -> Result<u32, Error> {
        let rows: Vec<repo::posts::Done<'_>> = done
            .iter()
            .map(|p| repo::posts::Done {
                id: p.job.c.id,
                claims: p.job.c.claims,
                platform_id: &p.id,
                permalink: &p.permalink,
                progress: &p.job.progress,
                at: p.at,
            })
            .collect();
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let recorded = repo::posts::published_many(&mut tx, &rows).await?;
        let events: Vec<_> = done
            .iter()
            .filter_map(|p| {
                recorded
                    .get(&p.job.c.id)
                    .map(|at| crate::events::post_published_event(tenant, &p.job.c, &p.id, &p.permalink, *at))
            })
            .collect();
        crate::events::posts_published(&mut tx, tenant, &events).await?;
        db::commit(tx).await?;
        for p in done.iter().filter(|p| recorded.contains_key(&p.job.c.id)) {
            self.first_comment(&p.job, &p.id).await;
        }
        Ok(u32::try_from(recorded.len()).unwrap_or(u32::MAX))
    }

    async fn record(&self, tenant: TenantId, job: &mut Job, step: Step) -> Result<Step, Error> {
        let cfg = &self.cfg.posts;
        let c = &job.c;
        let status = if job.sent() { target_status::PUBLISHING } else { target_status::SCHEDULED };
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let kept = match &step {
            Step::Published { id, permalink } => {
                match repo::posts::published(&mut tx, c.id, c.claims, id, permalink, &job.progress).await? {
                    Some(at) => {
                        let e = crate::events::post_published_event(tenant, c, id, permalink, at);
                        crate::events::posts_published(&mut tx, tenant, &[e]).await?;
                        true
                    }
                    None => false,
                }
            }
            Step::Failed { code, reason } => {
                let kept = repo::posts::failed(&mut tx, c.id, c.claims, code, reason).await?;
                if kept {
                    crate::events::post_failed(&mut tx, tenant, c, code, reason).await?;
                }
                kept
            }
            Step::Wait(after) => {
                let next = Utc::now() + chrono::Duration::from_std(*after).unwrap_or_default();
                let l = Later { next, status, progress: &job.progress, counted: false, error: "" };
                repo::posts::later(&mut tx, c.id, c.claims, &l).await?
            }
            Step::Throttled(after) => {
                let next = Utc::now() + chrono::Duration::from_std(*after).unwrap_or_default();
                let l = Later { next, status, progress: &job.progress, counted: false, error: "rate_limited" };
                repo::posts::later(&mut tx, c.id, c.claims, &l).await?
            }
            Step::Retry { after, error } => {
                let attempts = u32::try_from(c.attempts).unwrap_or(0) + 1;
                // An unclear outcome is looked up, however often: failing it could hide a post
                // that went out.
                if attempts >= cfg.max_attempts && !job.sent() {
                    let code = "ads.post_retries_exhausted";
                    let kept = repo::posts::failed(&mut tx, c.id, c.claims, code, error).await?;
                    if kept {
                        crate::events::post_failed(&mut tx, tenant, c, code, error).await?;
                    }
                    db::commit(tx).await?;
                    return Ok(if kept {
                        Step::Failed { code: code.into(), reason: error.clone() }
                    } else {
                        Step::Lost
                    });
                }
                let wait = after.unwrap_or_else(|| backoff(cfg.retry_base, attempts.saturating_sub(1)));
                let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                let l = Later { next, status, progress: &job.progress, counted: true, error };
                repo::posts::later(&mut tx, c.id, c.claims, &l).await?
            }
            Step::Pause(reason) => {
                if repo::posts::pause_connection(&mut tx, c.connection_id).await? {
                    crate::events::account_paused(&mut tx, tenant, c, reason).await?;
                }
                // Due again as soon as the connection is back; the claim skips it until then.
                let l = Later {
                    next: Utc::now(),
                    status,
                    progress: &job.progress,
                    counted: false,
                    error: "account_paused",
                };
                repo::posts::later(&mut tx, c.id, c.claims, &l).await?
            }
            Step::Lost => false,
        };
        db::commit(tx).await?;
        if !kept {
            return Ok(Step::Lost);
        }
        if let Step::Published { id, .. } = &step {
            self.first_comment(job, id).await;
        }
        Ok(step)
    }

    /// Checkpoints what is known before a call that may publish (or after one that did part of
    /// the work); `false`: the claim was lost, stop.
    async fn checkpoint(&self, tenant: TenantId, job: &Job) -> Result<bool, Error> {
        let status = if job.sent() { target_status::PUBLISHING } else { target_status::SCHEDULED };
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let kept = repo::posts::checkpoint(&mut tx, job.c.id, job.c.claims, status, &job.progress).await?;
        db::commit(tx).await?;
        Ok(kept)
    }

    /// Marks the publish call about to be made, durably; `false`: the claim was lost.
    async fn sending(&self, tenant: TenantId, job: &mut Job) -> Result<bool, Error> {
        if job.fresh {
            return Ok(true);
        }
        job.set("sent", Value::Bool(true));
        if job.first_sent().is_none() {
            job.set("sent_at", json!(Utc::now().to_rfc3339()));
        }
        self.checkpoint(tenant, job).await
    }

    /// Asks for one publish call under the account's limit (TikTok inits, Instagram publishes),
    /// counted across replicas; `None`: go ahead (marked sent now), else the step to take.
    /// `reported`: the platform's own (used, allowed) reading of the account.
    async fn admit(&self, job: &Job, platform: Platform, reported: Option<(u32, u32)>) -> Result<Option<Step>, Error> {
        let cfg = &self.cfg.posts;
        let (limit, window) = match platform {
            Platform::TikTok => (cfg.tiktok_inits_per_minute, cfg.tiktok_window),
            Platform::Instagram => (cfg.instagram_daily_posts, cfg.instagram_window),
            Platform::Facebook | Platform::YouTube => return Ok(None),
        };
        let mut sys = db::system(&self.pool).await?;
        let key = (platform.as_str(), job.c.account.as_str());
        let admission = repo::posts::admit(&mut sys, job.c.id, job.c.claims, key, (limit, window), reported).await?;
        db::commit(sys).await?;
        Ok(match admission {
            Admission::Sent => None,
            // At least a moment, so the wait is never a busy loop.
            Admission::Wait(wait) => Some(Step::Throttled(wait.max(Duration::from_millis(100)))),
            Admission::Full => Some(Step::Throttled(self.cfg.posts.instagram_quota_recheck)),
            Admission::Lost => Some(Step::Lost),
        })
    }

    /// The listing's post that is this publication's: its text, not a post another target of
    /// the account already holds (a twin with the same caption), and not made before the
    /// publish was first sent (a clock's skew allowed). Newest first, as listed.
    async fn find_own(
        &self,
        tenant: TenantId,
        job: &Job,
        items: Vec<PublishedItem>,
        text: &str,
    ) -> Result<Option<PublishedItem>, Error> {
        let since = job.first_sent().map(|t| t - CLOCK_SKEW);
        let mut same: Vec<PublishedItem> = items
            .into_iter()
            .filter(|p| p.text == text)
            .filter(|p| match (since, p.created_at) {
                (Some(since), Some(made)) => made >= since,
                _ => true,
            })
            .collect();
        if same.is_empty() {
            return Ok(None);
        }
        let ids: Vec<&str> = same.iter().map(|p| p.id.as_str()).collect();
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let key = (job.c.platform.as_str(), job.c.account.as_str());
        let taken = repo::posts::held_by_others(&mut tx, job.c.id, key, &ids).await?;
        db::commit(tx).await?;
        same.retain(|p| !taken.contains(&p.id));
        Ok(same.into_iter().next())
    }

    async fn step(&self, ctx: &RoundCtx, tenant: TenantId, job: &mut Job) -> Result<Step, Error> {
        let provider: Provider = job.c.provider.parse()?;
        let platform: Platform = job.c.platform.parse()?;
        // Referenced media get a fresh link now, before anything is sent in this step (the
        // sandbox too: an item deleted since scheduling fails there as it would on a platform).
        if let Err(e) = self.media_links_of(tenant, &mut job.c.variant.0.media).await {
            return Ok(media_unavailable(e));
        }
        if provider == Provider::Local {
            return self.step_local(tenant, job, platform).await;
        }
        let Some(token) = ctx.tokens.get(&job.c.connection_id).cloned() else {
            return Ok(Step::Failed { code: "ads.connection_required".into(), reason: "connection removed".into() });
        };
        match platform {
            Platform::Instagram => self.step_instagram(tenant, job, &token).await,
            Platform::Facebook => self.step_facebook(ctx, tenant, job, &token).await,
            Platform::TikTok => self.step_tiktok(tenant, job, &token).await,
            Platform::YouTube => self.step_youtube(tenant, job, &token).await,
        }
    }

    /// The sandbox: a publication "processes" for a moment (as an Instagram container or a
    /// YouTube upload would), then appears on the local timeline, labelled `provider: local`.
    async fn step_local(&self, tenant: TenantId, job: &mut Job, platform: Platform) -> Result<Step, Error> {
        if job.text("stage").is_none() {
            job.set("stage", json!("processing"));
            if !self.sending(tenant, job).await? {
                return Ok(Step::Lost);
            }
            return Ok(Step::Wait(self.cfg.posts.sandbox_processing));
        }
        let id = format!("local_{}", job.c.id.simple());
        let permalink = format!("https://sandbox.nexus.local/{platform}/{id}");
        Ok(Step::Published { id, permalink })
    }

    async fn step_instagram(&self, tenant: TenantId, job: &mut Job, token: &str) -> Result<Step, Error> {
        let Some(meta) = &self.meta else { return Ok(not_configured(Provider::Meta)) };
        let ig_user = job.c.account.clone();
        let caption = job.variant().full_caption();
        if let Some(container) = job.text("container") {
            let status = match meta.ig_container_status(token, &container).await {
                Ok(s) => s,
                Err(e) => return Ok(judged(&e, false)),
            };
            match status {
                ContainerStatus::InProgress => return Ok(Step::Wait(self.cfg.posts.processing_poll)),
                ContainerStatus::Error(reason) => {
                    return Ok(Step::Failed { code: "ads.post_media_rejected".into(), reason });
                }
                ContainerStatus::Published => {
                    return self.found_instagram(tenant, job, token, &caption, &container).await;
                }
                ContainerStatus::Expired => {
                    // Unpublished and gone (24 h): make it again.
                    job.set("container", Value::Null);
                    job.set("sent", Value::Bool(false));
                    return Ok(Step::Retry { after: Some(Duration::ZERO), error: "container_expired".into() });
                }
                // Made and not published (a publish call that failed before acting, or never
                // sent): publishing it now is the first and only time.
                ContainerStatus::Finished => {}
            }
        } else {
            let v = job.variant().clone();
            let container = if v.format == Format::Carousel {
                let mut children: Vec<String> = job
                    .progress
                    .get("children")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                for m in v.media.iter().skip(children.len()) {
                    let kind = if m.kind == MediaKind::Video { IgKind::CarouselVideo } else { IgKind::CarouselImage };
                    let item = IgContainer {
                        kind,
                        media_url: Some(m.url.clone()),
                        caption: None,
                        children: vec![],
                        share_to_feed: false,
                    };
                    match meta.ig_create_container(token, &ig_user, &item).await {
                        Ok(id) => children.push(id),
                        Err(e) => return Ok(judged(&e, false)),
                    }
                    job.set("children", json!(children));
                    if !self.checkpoint(tenant, job).await? {
                        return Ok(Step::Lost);
                    }
                }
                IgContainer {
                    kind: IgKind::Carousel,
                    media_url: None,
                    caption: Some(caption.clone()),
                    children,
                    share_to_feed: false,
                }
            } else {
                let m = v.media.first();
                let kind = match (v.format, m.map(|m| m.kind)) {
                    (Format::Reel, _) => IgKind::Reel,
                    (Format::Story, Some(MediaKind::Video)) => IgKind::VideoStory,
                    (Format::Story, _) => IgKind::ImageStory,
                    _ => IgKind::Image,
                };
                let caption = (v.format != Format::Story).then(|| caption.clone());
                IgContainer {
                    kind,
                    media_url: m.map(|m| m.url.clone()),
                    caption,
                    children: vec![],
                    share_to_feed: v.share_to_feed,
                }
            };
            let id = match meta.ig_create_container(token, &ig_user, &container).await {
                Ok(id) => id,
                Err(e) => return Ok(judged(&e, false)),
            };
            job.set("container", json!(id));
            if !self.checkpoint(tenant, job).await? {
                return Ok(Step::Lost);
            }
            // Containers of videos process for a while; images are usually ready at once.
            match meta.ig_container_status(token, &id).await {
                Ok(ContainerStatus::Finished) => {}
                Ok(ContainerStatus::Error(reason)) => {
                    return Ok(Step::Failed { code: "ads.post_media_rejected".into(), reason });
                }
                Ok(_) => return Ok(Step::Wait(self.cfg.posts.processing_poll)),
                Err(e) => return Ok(judged(&e, false)),
            }
        }
        let Some(container) = job.text("container") else {
            return Ok(Step::Retry { after: None, error: "container".into() });
        };
        // The account's daily quota, counted here rather than learnt from a refusal (an
        // unpublished container keeps; one that expires meanwhile is made again). Instagram's own
        // count comes first: posts other tools made count against the same quota.
        let reported = match meta.ig_publishing_limit(token, &ig_user).await {
            Ok((used, total)) if total > 0 && used >= total => {
                return Ok(Step::Throttled(self.cfg.posts.instagram_quota_recheck));
            }
            Ok((used, total)) => (total > 0).then_some((used, total)),
            Err(e) => {
                // Unread, the own count still keeps the configured limit.
                tracing::info!(error = %e, "instagram publishing limit not read");
                None
            }
        };
        if let Some(step) = self.admit(job, Platform::Instagram, reported).await? {
            return Ok(step);
        }
        if !self.sending(tenant, job).await? {
            return Ok(Step::Lost);
        }
        match meta.ig_publish(token, &ig_user, &container).await {
            Ok(media) => {
                let permalink = meta.ig_media(token, &media).await.map(|m| m.permalink).unwrap_or_default();
                Ok(Step::Published { id: media, permalink })
            }
            Err(e) => Ok(self.unsent_unless_unclear(job, &e)),
        }
    }

    /// A container Instagram reports published: its media, found among the account's recent
    /// posts by caption (the container's id stands in when the listing does not show it yet).
    async fn found_instagram(
        &self,
        tenant: TenantId,
        job: &Job,
        token: &str,
        caption: &str,
        container: &str,
    ) -> Result<Step, Error> {
        let Some(meta) = &self.meta else { return Ok(not_configured(Provider::Meta)) };
        match meta.ig_recent_media(token, &job.c.account, RECONCILE_DEPTH).await {
            Ok(items) => Ok(match self.find_own(tenant, job, items, caption).await? {
                Some(m) => Step::Published { id: m.id, permalink: m.permalink },
                None => Step::Published { id: container.to_owned(), permalink: String::new() },
            }),
            Err(e) => Ok(judged(&e, false)),
        }
    }

    /// A publish call that failed: when the platform refused it outright nothing went out (the
    /// `sent` mark is cleared); when the outcome is unclear it stays, and the next attempt looks
    /// the post up first.
    fn unsent_unless_unclear(&self, job: &mut Job, e: &PlatformError) -> Step {
        let step = judged(e, true);
        let unclear =
            matches!(e, PlatformError::Timeout { .. } | PlatformError::Upstream { .. } | PlatformError::Decode { .. });
        if !unclear {
            job.set("sent", Value::Bool(false));
        }
        if unclear {
            // Looked up soon, not after a long backoff: the post may be live already.
            return Step::Retry {
                after: Some(self.cfg.posts.processing_poll.min(Duration::from_secs(60))),
                error: "outcome_unknown".into(),
            };
        }
        step
    }

    async fn step_facebook(&self, ctx: &RoundCtx, tenant: TenantId, job: &mut Job, token: &str) -> Result<Step, Error> {
        let Some(meta) = &self.meta else { return Ok(not_configured(Provider::Meta)) };
        let page = job.c.account.clone();
        let key = (job.c.connection_id, page.clone());
        let cached = ctx.page_tokens.lock().ok().and_then(|m| m.get(&key).cloned());
        let page_token = match cached {
            Some(t) => t,
            None => match meta.page_token(token, &page).await {
                Ok(t) => {
                    if let Ok(mut m) = ctx.page_tokens.lock() {
                        m.insert(key, t.clone());
                    }
                    t
                }
                Err(e) => {
                    // No publish call was made: nothing to look up later.
                    job.set("sent", Value::Bool(false));
                    return Ok(judged(&e, false));
                }
            },
        };
        let v = job.variant().clone();
        let message = v.full_caption();
        if job.unclear() {
            match meta.page_recent_posts(&page_token, &page, RECONCILE_DEPTH).await {
                Ok(items) => {
                    if let Some(p) = self.find_own(tenant, job, items, &message).await? {
                        return Ok(Step::Published { id: p.id, permalink: p.permalink });
                    }
                }
                Err(e) => return Ok(judged(&e, false)),
            }
        }
        if !self.sending(tenant, job).await? {
            return Ok(Step::Lost);
        }
        let post = PagePost { message, link: v.link.clone(), photo_url: v.media.first().map(|m| m.url.clone()) };
        match meta.page_publish(&page_token, &page, &post).await {
            Ok(id) => {
                let permalink = format!("https://www.facebook.com/{id}");
                Ok(Step::Published { id, permalink })
            }
            Err(e) => Ok(self.unsent_unless_unclear(job, &e)),
        }
    }

    async fn step_tiktok(&self, tenant: TenantId, job: &mut Job, token: &str) -> Result<Step, Error> {
        let Some(tiktok) = &self.tiktok_posts else { return Ok(not_configured(Provider::TikTok)) };
        let v = job.variant().clone();
        let title = v.full_caption();
        if job.text("publish_id").is_none() && job.unclear() {
            // The init's answer was lost: the creator's recent videos say whether it went out.
            match tiktok.recent_videos(token, RECONCILE_DEPTH).await {
                Ok(items) => {
                    if let Some(p) = self.find_own(tenant, job, items, &title).await? {
                        return Ok(Step::Published { id: p.id, permalink: p.permalink });
                    }
                    job.set("sent", Value::Bool(false));
                }
                Err(e) => return Ok(judged(&e, false)),
            }
        }
        if job.text("publish_id").is_none() {
            // The creator's inits a minute, counted here rather than learnt from a refusal.
            if let Some(step) = self.admit(job, Platform::TikTok, None).await? {
                // No init was made: the claim's mark is undone.
                job.set("sent", Value::Bool(false));
                return Ok(step);
            }
            if !self.sending(tenant, job).await? {
                return Ok(Step::Lost);
            }
            let post = TikTokPost {
                title: title.clone(),
                privacy_level: if v.privacy.is_empty() { "SELF_ONLY".into() } else { v.privacy.clone() },
                disable_comment: false,
                disable_duet: false,
                disable_stitch: false,
                video_url: v.media.first().map(|m| m.url.clone()).unwrap_or_default(),
                to_inbox: v.to_inbox,
            };
            match tiktok.init(token, &post).await {
                // Kept with the outcome below; a crash before that is reconciled through the
                // creator's recent videos.
                Ok(id) => job.set("publish_id", json!(id)),
                Err(e) => return Ok(self.unsent_unless_unclear(job, &e)),
            }
        }
        let Some(publish_id) = job.text("publish_id") else {
            return Ok(Step::Retry { after: None, error: "publish_id".into() });
        };
        match tiktok.status(token, &publish_id).await {
            Ok(PublishState::Processing) => Ok(Step::Wait(self.cfg.posts.processing_poll)),
            Ok(PublishState::InInbox) => Ok(Step::Published { id: publish_id, permalink: String::new() }),
            Ok(PublishState::Complete { post_ids }) => {
                let id = post_ids.into_iter().next().unwrap_or(publish_id);
                let permalink = format!("https://www.tiktok.com/video/{id}");
                Ok(Step::Published { id, permalink })
            }
            Ok(PublishState::Failed(reason)) => Ok(Step::Failed { code: "ads.post_rejected".into(), reason }),
            Err(e) => Ok(judged(&e, false)),
        }
    }

    async fn step_youtube(&self, tenant: TenantId, job: &mut Job, token: &str) -> Result<Step, Error> {
        let Some(youtube) = &self.youtube else { return Ok(not_configured(Provider::Google)) };
        let v = job.variant().clone();
        let Some(media) = v.media.first().cloned() else {
            return Ok(Step::Failed { code: "ads.post_media_count".into(), reason: "no video".into() });
        };
        let total = media.bytes;
        let mut from = 0;
        if let Some(session) = job.text("session") {
            match youtube.upload_state(token, &session, total).await {
                Ok(UploadState::Done { video_id }) => return Ok(youtube_published(video_id)),
                Ok(UploadState::Incomplete { next_offset }) => from = next_offset,
                Ok(UploadState::Expired) => {
                    job.set("session", Value::Null);
                    if !self.checkpoint(tenant, job).await? {
                        return Ok(Step::Lost);
                    }
                }
                Err(e) => return Ok(judged(&e, false)),
            }
        }
        let bytes = match self.fetch_media(&media.url, total).await {
            Ok(b) => b,
            Err(step) => return Ok(step),
        };
        let session = match job.text("session") {
            Some(s) => s,
            None => {
                let (privacy, publish_at) = youtube_release(&v, Utc::now());
                let meta = VideoMeta {
                    title: v.title.clone(),
                    description: v.full_caption(),
                    tags: v.tags.clone(),
                    category_id: "22".into(),
                    privacy,
                    publish_at,
                    made_for_kids: false,
                };
                // A session holds no video until its bytes arrive, so a lost answer here only
                // leaves an unused session behind.
                let session = match youtube.start_upload(token, &meta, total, &media.content_type).await {
                    Ok(s) => s,
                    Err(e) => return Ok(judged(&e, false)),
                };
                job.set("session", json!(session));
                job.set("sent", Value::Bool(true));
                if !self.checkpoint(tenant, job).await? {
                    return Ok(Step::Lost);
                }
                session
            }
        };
        match youtube.upload(token, &session, &bytes, from).await {
            Ok(UploadState::Done { video_id }) => Ok(youtube_published(video_id)),
            Ok(UploadState::Incomplete { .. }) => {
                Ok(Step::Retry { after: Some(Duration::ZERO), error: "upload_incomplete".into() })
            }
            Ok(UploadState::Expired) => {
                job.set("session", Value::Null);
                Ok(Step::Retry { after: Some(Duration::ZERO), error: "upload_session_expired".into() })
            }
            Err(e) => Ok(judged(&e, false)),
        }
    }

    /// A video's bytes, through the safe outbound client (the URL is the user's).
    async fn fetch_media(&self, url: &str, expected: u64) -> Result<bytes::Bytes, Step> {
        let mut limits = self.outbound.limits();
        limits.max_bytes = expected.max(1);
        match self.outbound.get_with(url, limits).await {
            Ok(f) if f.status.is_success() && f.body.len() as u64 == expected => Ok(f.body),
            Ok(f) if f.status.is_success() => Err(Step::Failed {
                code: "ads.post_media_changed".into(),
                reason: format!("the video has {} bytes, {} were declared", f.body.len(), expected),
            }),
            Ok(f) => Err(Step::Retry { after: None, error: format!("media_http_{}", f.status.as_u16()) }),
            Err(e) => Err(Step::Failed { code: "ads.post_media_unreachable".into(), reason: e.to_string() }),
        }
    }

    /// The first comment under a just-published Instagram or Facebook post (best effort: the
    /// post is out either way; a failure is logged).
    async fn first_comment(&self, job: &Job, id: &str) {
        let text = job.variant().first_comment.clone();
        if text.is_empty() {
            return;
        }
        let Some(meta) = &self.meta else { return };
        let tenant = TenantId::from_uuid(job.c.tenant_id);
        let token = match self.connection_token(tenant, job.c.connection_id).await {
            Ok(t) => t,
            Err(_) => return,
        };
        let result = match job.c.platform.as_str() {
            "instagram" => meta.ig_comment(&token, id, &text).await.map(drop),
            "facebook" => match meta.page_token(&token, &job.c.account).await {
                Ok(page_token) => meta.page_comment(&page_token, id, &text).await.map(drop),
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "the first comment could not be posted");
        }
    }

    pub(crate) async fn connection_token(&self, tenant: TenantId, connection: uuid::Uuid) -> Result<String, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let stored = repo::connections::get(&mut tx, connection).await?;
        db::commit(tx).await?;
        let stored = stored.ok_or_else(|| Error::not_found("ads.connection_not_found"))?;
        let soon = Utc::now() + chrono::Duration::from_std(self.cfg.posts.token_margin).unwrap_or_default();
        let provider = stored.record.provider;
        if provider.refreshes()
            && stored.record.token_expires_at.is_some_and(|at| at <= soon)
            && let Ok(fresh) = self.refresh_connection(tenant, connection, provider, self.cfg.posts.token_margin).await
        {
            return Ok(fresh.access_token);
        }
        Ok(self.open_tokens(connection, &stored.credentials)?.access_token)
    }
}

/// The privacy status and release time a YouTube upload is sent with: private until
/// `publish_at`, when YouTube makes it public; a `publish_at` that passed while the post waited
/// (a late retry, a reschedule) is public now, as it would have become.
fn youtube_release(v: &Variant, now: DateTime<Utc>) -> (String, Option<DateTime<Utc>>) {
    match v.publish_at {
        Some(at) if at > now => ("private".into(), Some(at)),
        Some(_) => ("public".into(), None),
        None if v.privacy.is_empty() => ("public".into(), None),
        None => (v.privacy.clone(), None),
    }
}

fn youtube_published(video_id: String) -> Step {
    let permalink = format!("https://youtu.be/{video_id}");
    Step::Published { id: video_id, permalink }
}

/// A referenced item that can no longer be linked: gone (deleted since scheduling) fails the
/// post with that reason; anything else (the service down) is tried again.
fn media_unavailable(e: Error) -> Step {
    match e.kind() {
        nexus_kernel::ErrorKind::NotFound | nexus_kernel::ErrorKind::InvalidArgument => {
            Step::Failed { code: "ads.post_media_not_found".into(), reason: format!("media gone: {}", e.code()) }
        }
        _ => Step::Retry { after: None, error: format!("media link: {}", e.code()) },
    }
}

fn not_configured(provider: Provider) -> Step {
    Step::Retry { after: Some(Duration::from_secs(3600)), error: format!("{provider}_not_configured") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_youtube_release_time_is_sent_private_until_it_passes() {
        let now = Utc::now();
        let at = now + chrono::Duration::hours(3);
        let v = Variant { publish_at: Some(at), ..Variant::default() };
        assert_eq!(youtube_release(&v, now), ("private".to_owned(), Some(at)));
        // Passed while the post waited: public now, as it would have become.
        assert_eq!(youtube_release(&v, at + chrono::Duration::seconds(1)), ("public".to_owned(), None));
        let unlisted = Variant { privacy: "unlisted".into(), ..Variant::default() };
        assert_eq!(youtube_release(&unlisted, now), ("unlisted".to_owned(), None));
        assert_eq!(youtube_release(&Variant::default(), now), ("public".to_owned(), None));
    }
}
