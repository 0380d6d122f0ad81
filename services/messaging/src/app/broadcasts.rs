//! WhatsApp broadcasts: creating one (its recipients queued and its credits held at once),
//! pausing, resuming, canceling, progress; and the sender that works through the recipients.
//!
//! Exactly once: a recipient row is claimed under a lease, marked `sending` (committed) just
//! before Meta is called — and only while its claim is still valid — then recorded `sent` with
//! Meta's id. A claim whose lease ran out before `sending` goes back to the queue (Meta was
//! never called); a `sending` row whose lease ran out is `unknown` and never sent again. A
//! stopping sender finishes the sends it started and starts no new one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use nexus_proto::events as ev;
use nexus_providers::whatsapp::Sender;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::parse_id;
use super::whatsapp::WhatsApp;
use crate::domain::broadcast::{self as domain, Pace};
use crate::domain::templates::{Review, check_send};
use crate::domain::whatsapp::Content;
use crate::events::whatsapp as events;
use crate::repo::broadcasts::{self as repo, BroadcastRow, Claimed, Totals};
use crate::repo::whatsapp as wa_repo;

// The longest hold subscriptions grants; a broadcast scheduled or running longer outlives it (see
// the report of issue 13: holding at start instead is the follow-up).
const HOLD_TTL: Duration = Duration::from_secs(3600);

/// A broadcast as shown, with its progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub row: BroadcastRow,
    pub totals: Totals,
}

/// What creating a broadcast asks.
#[derive(Debug, Clone, Default)]
pub struct BroadcastInput<'a> {
    pub number_id: &'a str,
    pub segment_id: &'a str,
    pub template_name: &'a str,
    pub language: &'a str,
    pub params: Vec<String>,
    pub scheduled_at: Option<chrono::DateTime<Utc>>,
    pub rate: i32,
}

impl PartialEq for BroadcastRow {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.status == other.status
    }
}

/// How the sender runs.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub default_rate: i32,
    pub batch: i64,
    pub in_flight: usize,
    pub lease: Duration,
    pub idle: Duration,
}

impl WhatsApp {
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn create_broadcast(
        &self,
        p: &Principal,
        input: &BroadcastInput<'_>,
        default_rate: i32,
    ) -> Result<Broadcast, Error> {
        p.require(Action::Write)?;
        let number_id = parse_id(input.number_id, "messaging.whatsapp_number_not_found")?;
        let segment_id = parse_id(input.segment_id, "messaging.segment_not_found")?;
        domain::check_specs(&input.params)?;
        if !(0..=1_000).contains(&input.rate) {
            return Err(Error::invalid("messaging.whatsapp_broadcast_rate_invalid").with_param("max", "1000"));
        }
        let rate = if input.rate == 0 { default_rate } else { input.rate };
        let tenant = p.workspace_id;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let number = wa_repo::number(&mut tx, number_id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        let t = wa_repo::template_by_name(&mut tx, number.id, input.template_name.trim(), input.language.trim())
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_template_not_found"))?;
        let review: Review = t.status.parse().map_err(|_| Error::internal("stored template status"))?;
        check_send(review, usize::try_from(t.body_params).unwrap_or(0), input.params.len())?;
        let filter = super::segments::filter_of(&mut tx, segment_id).await?;
        let id = Uuid::now_v7();
        let at = input.scheduled_at.unwrap_or_else(Utc::now);
        let new = repo::NewBroadcast {
            id,
            number_id: number.id,
            template_name: &t.name,
            language: &t.language,
            params: &input.params,
            scheduled_at: at,
            rate,
        };
        repo::insert(&mut tx, tenant, &new).await?;
        let queued = crate::repo::segments::queue_broadcast(&mut tx, tenant, id, &filter, at).await?;
        if queued == 0 {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_broadcast_empty"));
        }
        let total = i32::try_from(queued).map_err(|_| Error::invalid("messaging.whatsapp_broadcast_empty"))?;
        // Held for everyone now (the caller's workspace, with the caller's token); charged per
        // sent message when the broadcast ends.
        let hold = self
            .credits
            .reserve(events::SEND_ACTION, i64::from(total), 0, &format!("whatsapp.broadcast:{id}"), HOLD_TTL)
            .await?;
        repo::set_total_and_hold(&mut tx, id, total, &hold.id, hold.amount).await?;
        let row = repo::get(&mut tx, id).await?.ok_or_else(|| Error::internal("broadcast vanished"))?;
        let totals = repo::totals(&mut tx, id).await?;
        db::commit(tx).await?;
        Ok(Broadcast { row, totals })
    }

    pub async fn broadcast(&self, p: &Principal, id: &str) -> Result<Broadcast, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, "messaging.whatsapp_broadcast_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row =
            repo::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("messaging.whatsapp_broadcast_not_found"))?;
        let totals = repo::totals(&mut tx, id).await?;
        db::commit(tx).await?;
        Ok(Broadcast { row, totals })
    }

    /// The workspace's broadcasts, newest first, each with its progress.
    pub async fn broadcasts(
        &self,
        p: &Principal,
        page: &nexus_kernel::PageRequest,
    ) -> Result<nexus_kernel::Page<Broadcast>, Error> {
        p.require(Action::Read)?;
        let keyset = db::Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::list(&mut tx, &keyset).await?;
        let mut items = Vec::with_capacity(rows.items.len());
        for row in rows.items {
            let totals = repo::totals(&mut tx, row.id).await?;
            items.push(Broadcast { row, totals });
        }
        db::commit(tx).await?;
        Ok(nexus_kernel::Page { items, next_cursor: rows.next_cursor })
    }

    /// pause, resume or cancel.
    pub async fn control_broadcast(&self, p: &Principal, id: &str, action: &str) -> Result<Broadcast, Error> {
        p.require(Action::Write)?;
        let bid = parse_id(id, "messaging.whatsapp_broadcast_not_found")?;
        let tenant = p.workspace_id;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let row = repo::get_for_update(&mut tx, bid)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_broadcast_not_found"))?;
        let (from, to): (&[&str], &str) = match action {
            "pause" => (&["scheduled", "running"], "paused"),
            "resume" => (&["paused"], "running"),
            _ => (&["scheduled", "running", "paused"], "canceled"),
        };
        if !repo::transition(&mut tx, bid, from, to).await? {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_broadcast_state")
                .with_param("status", row.status));
        }
        if to == "canceled" {
            cancel_queued_in(&mut tx, tenant, &row).await?;
        }
        db::commit(tx).await?;
        self.broadcast(p, id).await
    }

    pub async fn broadcast_recipients(
        &self,
        p: &Principal,
        id: &str,
        after: &str,
        limit: i32,
    ) -> Result<Vec<repo::RecipientRow>, Error> {
        p.require(Action::Read)?;
        let bid = parse_id(id, "messaging.whatsapp_broadcast_not_found")?;
        let after = if after.trim().is_empty() { None } else { Some(parse_id(after, "messaging.contact_not_found")?) };
        let limit = i64::from(limit.clamp(1, 1_000));
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::get(&mut tx, bid).await?.ok_or_else(|| Error::not_found("messaging.whatsapp_broadcast_not_found"))?;
        let rows = repo::recipients(&mut tx, bid, after, limit).await?;
        db::commit(tx).await?;
        Ok(rows)
    }
}

/// The rest of a cancel once the broadcast is `canceled`: its queued recipients canceled, its
/// hold settled (what was sent charged, the rest given back) and the end announced.
async fn cancel_queued_in(tx: &mut sqlx::PgConnection, tenant: TenantId, b: &BroadcastRow) -> Result<(), Error> {
    repo::cancel_queued(tx, b.id).await?;
    finish_in(tx, tenant, b, "canceled").await
}

/// Cancels every broadcast of the number that has not ended, in the caller's transaction (a
/// number being disconnected).
pub(crate) async fn cancel_of_number(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    number: Uuid,
) -> Result<usize, Error> {
    let live = repo::live_of_number_for_update(tx, number).await?;
    for b in &live {
        if repo::transition(tx, b.id, &["scheduled", "running", "paused"], "canceled").await? {
            cancel_queued_in(tx, tenant, b).await?;
        }
    }
    Ok(live.len())
}

/// Ends a broadcast's hold (each sent message charged, the rest given back) and announces the
/// end — once, in the caller's transaction.
async fn finish_in(tx: &mut sqlx::PgConnection, tenant: TenantId, b: &BroadcastRow, status: &str) -> Result<(), Error> {
    if !repo::mark_settled(tx, b.id).await? {
        return Ok(());
    }
    let t = repo::totals(tx, b.id).await?;
    let unit = if b.total > 0 { b.held / i64::from(b.total) } else { 0 };
    let charged = (t.sent * unit).min(b.held);
    events::settle_job(tx, tenant, &format!("whatsapp.broadcast:{}", b.id), &b.reservation, charged).await?;
    let e = ev::WhatsAppBroadcastFinished {
        workspace_id: tenant.to_string(),
        broadcast_id: b.id.to_string(),
        status: status.to_owned(),
        sent: t.sent,
        failed: t.failed,
        unknown: t.unknown,
        credits_charged: charged,
    };
    events::broadcast_finished(tx, tenant, e).await
}

/// The broadcast sender: starts due broadcasts, recovers lost claims, finishes broadcasts with
/// nothing left, and sends claimed recipients, paced per number. Every replica may run one.
///
/// Sends stay in flight continuously: the next batch is claimed while the last one's final
/// sends are on the wire, and the database work around each send is grouped — the marks before
/// calling Meta in one statement per workspace and transaction, the outcomes after it likewise —
/// so a recipient costs a share of a commit, not two of its own. Each recipient is still
/// committed `sending` before its call, and only then called.
pub async fn run_sender(wa: Arc<WhatsApp>, cfg: SenderConfig, stop: CancellationToken) {
    let in_flight = cfg.in_flight.max(1);
    let batch = usize::try_from(cfg.batch.max(1)).unwrap_or(1);
    let (marks, marks_rx) = mpsc::channel(in_flight);
    let (outcomes, outcomes_rx) = mpsc::channel(batch);
    let marker = tokio::spawn(mark_in_groups(wa.clone(), marks_rx, in_flight, cfg.lease.as_secs_f64()));
    let recorder = tokio::spawn(record_in_groups(wa.clone(), outcomes_rx, batch));
    let ctx = Arc::new(Ctx { wa: wa.clone(), paces: Mutex::default(), stop: stop.clone(), marks, outcomes });
    let mut queue: VecDeque<(Arc<Lines>, Job)> = VecDeque::new();
    let mut claims: Vec<Uuid> = Vec::new();
    let mut sends = tokio::task::JoinSet::new();
    let mut next_claim = tokio::time::Instant::now();
    while !stop.is_cancelled() {
        // The next batch is claimed when the queue is down to what is in flight: claims wait
        // their turn no longer than one batch takes (their lease runs from the claim).
        if queue.len() < in_flight && tokio::time::Instant::now() >= next_claim {
            match claim_batch(&wa, &cfg).await {
                Ok((claim, lines, claimed)) => {
                    if claimed.len() < batch {
                        // Nothing more due now: look again after a pause.
                        next_claim = tokio::time::Instant::now() + cfg.idle;
                    }
                    if !claimed.is_empty() {
                        claims.push(claim);
                    }
                    let lines = Arc::new(lines);
                    queue.extend(claimed.into_iter().map(|c| (lines.clone(), Job { claim, c })));
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "broadcast sender");
                    next_claim = tokio::time::Instant::now() + cfg.idle;
                }
            }
        }
        while sends.len() < in_flight
            && let Some((lines, job)) = queue.pop_front()
        {
            let ctx = ctx.clone();
            sends.spawn(async move {
                if let Err(e) = send_one(&ctx, &lines, job).await {
                    tracing::warn!(error = ?e, "broadcast send");
                }
            });
        }
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = sends.join_next(), if !sends.is_empty() => {}
            () = tokio::time::sleep_until(next_claim), if queue.len() < in_flight => {}
        }
        if queue.is_empty() && sends.is_empty() {
            // Every claim so far has started: none is left to give back.
            claims.clear();
        }
    }
    // Stopping: the sends started finish (an unstarted one gives its recipient back), claims
    // never started go back to the queue, and every outcome is committed before returning.
    while sends.join_next().await.is_some() {}
    drop(queue);
    if !claims.is_empty()
        && let Err(e) = release_all(&wa, &claims).await
    {
        tracing::warn!(error = ?e, "broadcast sender: unstarted claims wait for their lease");
    }
    drop(ctx);
    let _ = marker.await;
    let _ = recorder.await;
}

/// A claimed recipient and the claim it is held under.
struct Job {
    claim: Uuid,
    c: Claimed,
}

/// What sending from a number needs, read and its token unsealed once per claimed batch.
struct Line {
    number: wa_repo::NumberRow,
    provider: Arc<dyn nexus_providers::whatsapp::WhatsApp>,
    token: String,
}

type Lines = HashMap<Uuid, Line>;

/// What every send of the sender shares.
struct Ctx {
    wa: Arc<WhatsApp>,
    paces: Mutex<HashMap<Uuid, (Pace, tokio::time::Instant)>>,
    stop: CancellationToken,
    marks: mpsc::Sender<Mark>,
    outcomes: mpsc::Sender<Recorded>,
}

/// A recipient to mark `sending`; the answer says whether it may be sent.
struct Mark {
    tenant: Uuid,
    row: (Uuid, Uuid, Uuid, Uuid),
    answer: oneshot::Sender<bool>,
}

/// A send's outcome waiting to be committed, with the message when Meta accepted it.
struct Recorded {
    tenant: Uuid,
    outcome: repo::Outcome,
    sent: Option<(repo::SentMessage, ev::WhatsAppMessageSent)>,
}

/// Housekeeping (due broadcasts started, lost claims recovered, ended ones finished), then a
/// batch claimed with what its numbers need.
async fn claim_batch(wa: &WhatsApp, cfg: &SenderConfig) -> Result<(Uuid, Lines, Vec<Claimed>), Error> {
    let mut tx = db::system(&wa.pool).await?;
    repo::start_due(&mut tx).await?;
    let (_, unknown) = repo::recover(&mut tx).await?;
    if unknown > 0 {
        tracing::warn!(unknown, "broadcast sends interrupted mid-call; not sent again");
    }
    let done = repo::done(&mut tx).await?;
    db::commit(tx).await?;
    for (id, tenant) in done {
        let tenant = TenantId::from_uuid(tenant);
        let mut tx = db::tenant(&wa.pool, tenant).await?;
        if let Some(b) = repo::get_for_update(&mut tx, id).await?
            && repo::transition(&mut tx, id, &["running"], "finished").await?
        {
            finish_in(&mut tx, tenant, &b, "finished").await?;
        }
        db::commit(tx).await?;
    }
    let mut tx = db::system(&wa.pool).await?;
    let claim = Uuid::now_v7();
    let claimed = repo::claim(&mut tx, claim, cfg.batch, cfg.lease.as_secs_f64()).await?;
    let mut lines = HashMap::new();
    for c in &claimed {
        if let std::collections::hash_map::Entry::Vacant(v) = lines.entry(c.number_id)
            && let Some(number) = wa_repo::number_any(&mut tx, c.number_id).await?
        {
            match wa.provider_for(&number).and_then(|p| Ok((p, wa.number_token(&number)?))) {
                Ok((provider, token)) => {
                    v.insert(Line { number, provider, token });
                }
                // Its recipients stay claimed and go back to the queue when the lease ends.
                Err(e) => tracing::warn!(number = %c.number_id, error = ?e, "broadcast number unusable"),
            }
        }
    }
    db::commit(tx).await?;
    Ok((claim, lines, claimed))
}

async fn release_all(wa: &WhatsApp, claims: &[Uuid]) -> Result<(), Error> {
    let mut tx = db::system(&wa.pool).await?;
    repo::release_claims(&mut tx, claims).await?;
    db::commit(tx).await
}

/// Waits for the number's next slot; `false` when the sender is stopping first.
async fn pace(
    paces: &Mutex<HashMap<Uuid, (Pace, tokio::time::Instant)>>,
    number: Uuid,
    rate: i32,
    stop: &CancellationToken,
) -> bool {
    let slot = {
        let mut all = paces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        let (p, next) = all.entry(number).or_insert_with(|| (Pace::new(rate.unsigned_abs()), now));
        let slot = (*next).max(now);
        *next = slot + p.interval();
        slot
    };
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep_until(slot) => true,
    }
}

/// Up to `max` items: the first waited for, the rest those already waiting (`None`: closed).
async fn gather<T>(rx: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().await?;
    let mut all = vec![first];
    while all.len() < max
        && let Ok(next) = rx.try_recv()
    {
        all.push(next);
    }
    Some(all)
}

/// Items grouped by workspace (each group commits in its workspace's transaction).
fn by_tenant<T>(items: Vec<T>, tenant: impl Fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut groups: HashMap<Uuid, Vec<T>> = HashMap::new();
    for item in items {
        groups.entry(tenant(&item)).or_default().push(item);
    }
    groups
}

/// Marks recipients `sending` in groups: whatever asked while the last group committed
/// commits next, in one statement. A recipient is answered only once its mark is committed.
async fn mark_in_groups(wa: Arc<WhatsApp>, mut rx: mpsc::Receiver<Mark>, max: usize, lease_secs: f64) {
    while let Some(marks) = gather(&mut rx, max).await {
        for (tenant, marks) in by_tenant(marks, |m| m.tenant) {
            let rows: Vec<_> = marks.iter().map(|m| m.row).collect();
            let marked = async {
                let mut tx = db::tenant(&wa.pool, TenantId::from_uuid(tenant)).await?;
                let marked = repo::mark_sending_many(&mut tx, &rows, lease_secs).await?;
                db::commit(tx).await?;
                Ok::<_, Error>(marked)
            }
            .await
            .unwrap_or_else(|e| {
                // Not committed as far as we know: none is sent (one that was is `unknown` later).
                tracing::warn!(error = ?e, "broadcast marks");
                Vec::new()
            });
            let marked: std::collections::HashSet<(Uuid, Uuid)> = marked.into_iter().collect();
            for m in marks {
                let _ = m.answer.send(marked.contains(&(m.row.1, m.row.2)));
            }
        }
    }
}

/// Commits outcomes in groups: per workspace, the recipients' states, the sent messages, their
/// events and webhooks, in one transaction. A failed commit is tried again (what it recorded is
/// written once: only recipients still `sending` are recorded); a group that keeps failing stays
/// `sending` and becomes `unknown` when its lease ends — never sent again.
async fn record_in_groups(wa: Arc<WhatsApp>, mut rx: mpsc::Receiver<Recorded>, max: usize) {
    while let Some(all) = gather(&mut rx, max).await {
        for (tenant, group) in by_tenant(all, |r| r.tenant) {
            let tenant = TenantId::from_uuid(tenant);
            for attempt in 0..3u32 {
                match record_group(&wa, tenant, &group).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = ?e, attempt, recipients = group.len(), "broadcast outcomes");
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                }
            }
        }
    }
}

async fn record_group(wa: &WhatsApp, tenant: TenantId, group: &[Recorded]) -> Result<(), Error> {
    let outcomes: Vec<&repo::Outcome> = group.iter().map(|r| &r.outcome).collect();
    let mut tx = db::tenant(&wa.pool, tenant).await?;
    let recorded: std::collections::HashSet<(Uuid, Uuid)> =
        repo::record_many(&mut tx, &outcomes).await?.into_iter().collect();
    let (messages, events): (Vec<_>, Vec<_>) = group
        .iter()
        .filter(|r| recorded.contains(&(r.outcome.broadcast, r.outcome.contact)))
        .filter_map(|r| r.sent.as_ref().map(|(m, e)| (m, e.clone())))
        .unzip();
    if !messages.is_empty() {
        repo::insert_sent(&mut tx, tenant, &messages).await?;
        events::messages_sent(&mut tx, tenant, &events).await?;
    }
    db::commit(tx).await
}

/// Sends one claimed recipient: paced, marked `sending` (committed), sent, and its outcome
/// handed to the recorder.
async fn send_one(ctx: &Ctx, lines: &Lines, job: Job) -> Result<(), Error> {
    let Job { claim, c } = job;
    let Some(line) = lines.get(&c.number_id) else { return Ok(()) };
    let params = domain::resolve(&c.param_specs.0, &c.params.0);
    let message_id = Uuid::now_v7();
    let go = !ctx.stop.is_cancelled() && pace(&ctx.paces, c.number_id, c.rate, &ctx.stop).await;
    let marked = go && {
        let (answer, answered) = oneshot::channel();
        let mark = Mark { tenant: c.tenant_id, row: (claim, c.broadcast_id, c.contact_id, message_id), answer };
        ctx.marks.send(mark).await.is_ok() && answered.await.unwrap_or(false)
    };
    if !marked {
        // Not started (stopping, paused, or the claim is gone): back to the queue if still ours.
        let mut tx = db::tenant(&ctx.wa.pool, TenantId::from_uuid(c.tenant_id)).await?;
        repo::release(&mut tx, claim, c.broadcast_id, c.contact_id).await?;
        return db::commit(tx).await;
    }
    let outcome = |state, error_code, next_at| repo::Outcome {
        broadcast: c.broadcast_id,
        contact: c.contact_id,
        state,
        error_code,
        next_at,
    };
    let Some(params) = params else {
        return hand_over(ctx, c.tenant_id, outcome("failed", None, None), None).await;
    };
    let content = Content::Template { name: c.template_name.clone(), language: c.language.clone(), params };
    let mut payload = content.payload(&c.to_number);
    payload["biz_opaque_callback_data"] = json!(format!("b:{}:{}", c.broadcast_id, c.contact_id));
    let from = Sender { phone_number_id: &line.number.phone_number_id, token: &line.token };
    let result = line.provider.send(&from, &payload).await;
    let pace_of = |f: fn(&mut Pace)| {
        if let Some((p, _)) = ctx.paces.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_mut(&c.number_id)
        {
            f(p);
        }
    };
    let (done, sent) = match result {
        Ok(accepted) => {
            pace_of(Pace::succeeded);
            let tenant = c.tenant_id.to_string();
            let m = repo::SentMessage {
                id: message_id,
                broadcast: c.broadcast_id,
                number: line.number.id,
                contact: c.contact_id,
                content: json!({"summary": content.summary(), "payload": payload}),
                wamid: accepted.wamid,
                provider: line.provider.name(),
                at: Utc::now(),
            };
            let e = ev::WhatsAppMessageSent {
                workspace_id: tenant,
                message_id: message_id.to_string(),
                contact_id: c.contact_id.to_string(),
                number_id: line.number.id.to_string(),
                r#type: "template".into(),
                broadcast_id: c.broadcast_id.to_string(),
            };
            (outcome("sent", None, None), Some((m, e)))
        }
        Err(e) if e.is_throttling() && c.attempts + 1 < domain::MAX_ATTEMPTS => {
            // Meta asked us to slow down: this recipient waits, and the whole number slows.
            pace_of(Pace::throttled);
            (outcome("queued", None, Some(Utc::now() + domain::retry_after(c.attempts))), None)
        }
        Err(e) if e.not_sent() => {
            let transient = matches!(e, nexus_providers::whatsapp::WhatsAppError::Unreachable(_))
                || matches!(e, nexus_providers::whatsapp::WhatsAppError::Api { status, .. } if status >= 500);
            if transient && c.attempts + 1 < domain::MAX_ATTEMPTS {
                (outcome("queued", None, Some(Utc::now() + domain::retry_after(c.attempts))), None)
            } else {
                (outcome("failed", e.code(), None), None)
            }
        }
        Err(e) => {
            tracing::warn!(broadcast = %c.broadcast_id, error = %e, "broadcast send outcome unknown; not resent");
            (outcome("unknown", None, None), None)
        }
    };
    hand_over(ctx, c.tenant_id, done, sent).await
}

/// Queues an outcome for the recorder (waiting while it is a batch behind).
async fn hand_over(
    ctx: &Ctx,
    tenant: Uuid,
    outcome: repo::Outcome,
    sent: Option<(repo::SentMessage, ev::WhatsAppMessageSent)>,
) -> Result<(), Error> {
    ctx.outcomes
        .send(Recorded { tenant, outcome, sent })
        .await
        .map_err(|_| Error::internal("broadcast recorder stopped"))
}
