//! WhatsApp broadcasts: creating one (its recipients queued and its credits held at once),
//! pausing, resuming, canceling, progress; and the sender that works through the recipients.
//!
//! Exactly once: a recipient row is claimed under a lease, marked `sending` (committed) just
//! before Meta is called — and only while its claim is still valid — then recorded `sent` with
//! Meta's id. A claim whose lease ran out before `sending` goes back to the queue (Meta was
//! never called); a `sending` row whose lease ran out is `unknown` and never sent again. A
//! stopping sender finishes the sends it started and starts no new one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt as _;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use nexus_proto::events as ev;
use nexus_providers::whatsapp::Sender;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::parse_id;
use super::whatsapp::WhatsApp;
use crate::domain::broadcast::{self as domain, Pace};
use crate::domain::templates::{Review, check_send};
use crate::domain::whatsapp::{Content, Status};
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
pub async fn run_sender(wa: Arc<WhatsApp>, cfg: SenderConfig, stop: CancellationToken) {
    let paces: Arc<tokio::sync::Mutex<HashMap<Uuid, (Pace, tokio::time::Instant)>>> = Arc::default();
    while !stop.is_cancelled() {
        match tick(&wa, &cfg, &paces, &stop).await {
            Ok(0) => {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(cfg.idle) => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = ?e, "broadcast sender");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(cfg.idle) => {}
                }
            }
        }
    }
}

async fn tick(
    wa: &Arc<WhatsApp>,
    cfg: &SenderConfig,
    paces: &Arc<tokio::sync::Mutex<HashMap<Uuid, (Pace, tokio::time::Instant)>>>,
    stop: &CancellationToken,
) -> Result<usize, Error> {
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
    let mut numbers = HashMap::new();
    for c in &claimed {
        if let std::collections::hash_map::Entry::Vacant(v) = numbers.entry(c.number_id)
            && let Some(n) = wa_repo::number_any(&mut tx, c.number_id).await?
        {
            v.insert(n);
        }
    }
    db::commit(tx).await?;
    let n = claimed.len();
    let numbers = Arc::new(numbers);
    futures::stream::iter(claimed)
        .for_each_concurrent(cfg.in_flight, |c| {
            let (wa, numbers, paces, stop) = (wa.clone(), numbers.clone(), paces.clone(), stop.clone());
            async move {
                if let Err(e) = send_one(&wa, &numbers, &paces, &stop, claim, c).await {
                    tracing::warn!(error = ?e, "broadcast send");
                }
            }
        })
        .await;
    Ok(n)
}

/// Waits for the number's next slot; `false` when the sender is stopping first.
async fn pace(
    paces: &tokio::sync::Mutex<HashMap<Uuid, (Pace, tokio::time::Instant)>>,
    number: Uuid,
    rate: i32,
    stop: &CancellationToken,
) -> bool {
    let slot = {
        let mut all = paces.lock().await;
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

async fn send_one(
    wa: &WhatsApp,
    numbers: &HashMap<Uuid, wa_repo::NumberRow>,
    paces: &tokio::sync::Mutex<HashMap<Uuid, (Pace, tokio::time::Instant)>>,
    stop: &CancellationToken,
    claim: Uuid,
    c: Claimed,
) -> Result<(), Error> {
    let tenant = TenantId::from_uuid(c.tenant_id);
    let Some(number) = numbers.get(&c.number_id) else { return Ok(()) };
    let params = domain::resolve(&c.param_specs.0, &c.params.0);
    let message_id = Uuid::now_v7();
    // Paced before the transaction opens: no connection is held while waiting.
    let go = !stop.is_cancelled() && pace(paces, c.number_id, c.rate, stop).await;
    let mut tx = db::tenant(&wa.pool, tenant).await?;
    if !go || !repo::mark_sending(&mut tx, claim, c.broadcast_id, c.contact_id, message_id).await? {
        // Not started (stopping, paused, or the claim is gone): back to the queue if still ours.
        repo::release(&mut tx, claim, c.broadcast_id, c.contact_id).await?;
        return db::commit(tx).await;
    }
    db::commit(tx).await?;
    let Some(params) = params else {
        let mut tx = db::tenant(&wa.pool, tenant).await?;
        repo::record(&mut tx, c.broadcast_id, c.contact_id, "failed", None, None).await?;
        return db::commit(tx).await;
    };
    let content = Content::Template { name: c.template_name.clone(), language: c.language.clone(), params };
    let mut payload = content.payload(&c.to_number);
    payload["biz_opaque_callback_data"] = json!(format!("b:{}:{}", c.broadcast_id, c.contact_id));
    let provider = wa.provider_for(number)?;
    let token = wa.number_token(number)?;
    let result = provider.send(&Sender { phone_number_id: &number.phone_number_id, token: &token }, &payload).await;
    let mut tx = db::tenant(&wa.pool, tenant).await?;
    match result {
        Ok(accepted) => {
            repo::record(&mut tx, c.broadcast_id, c.contact_id, "sent", None, None).await?;
            let stored = json!({"summary": content.summary(), "payload": payload});
            let m = wa_repo::NewMessage {
                id: message_id,
                number_id: number.id,
                contact_id: c.contact_id,
                direction: "out",
                kind: "template",
                content: &stored,
                status: Status::Sent,
                wamid: Some(&accepted.wamid),
                provider: provider.name(),
                reservation: "",
                at: Utc::now(),
            };
            wa_repo::insert_message(&mut tx, tenant, &m).await?;
            wa_repo::tag_broadcast(&mut tx, message_id, c.broadcast_id).await?;
            let e = ev::WhatsAppMessageSent {
                workspace_id: tenant.to_string(),
                message_id: message_id.to_string(),
                contact_id: c.contact_id.to_string(),
                number_id: number.id.to_string(),
                r#type: "template".into(),
                broadcast_id: c.broadcast_id.to_string(),
            };
            events::message_sent(&mut tx, tenant, e).await?;
            if let Some((p, _)) = paces.lock().await.get_mut(&c.number_id) {
                p.succeeded();
            }
        }
        Err(e) if e.is_throttling() && c.attempts + 1 < domain::MAX_ATTEMPTS => {
            // Meta asked us to slow down: this recipient waits, and the whole number slows.
            let next = Utc::now() + domain::retry_after(c.attempts);
            repo::record(&mut tx, c.broadcast_id, c.contact_id, "queued", None, Some(next)).await?;
            if let Some((p, _)) = paces.lock().await.get_mut(&c.number_id) {
                p.throttled();
            }
        }
        Err(e) if e.not_sent() => {
            let transient = matches!(e, nexus_providers::whatsapp::WhatsAppError::Unreachable(_))
                || matches!(e, nexus_providers::whatsapp::WhatsAppError::Api { status, .. } if status >= 500);
            if transient && c.attempts + 1 < domain::MAX_ATTEMPTS {
                let next = Utc::now() + domain::retry_after(c.attempts);
                repo::record(&mut tx, c.broadcast_id, c.contact_id, "queued", None, Some(next)).await?;
            } else {
                repo::record(&mut tx, c.broadcast_id, c.contact_id, "failed", e.code(), None).await?;
            }
        }
        Err(e) => {
            tracing::warn!(broadcast = %c.broadcast_id, error = %e, "broadcast send outcome unknown; not resent");
            repo::record(&mut tx, c.broadcast_id, c.contact_id, "unknown", None, None).await?;
        }
    }
    db::commit(tx).await
}
