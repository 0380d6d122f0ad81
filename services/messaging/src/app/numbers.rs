//! A connected number's lifecycle: its quality rating and messaging tier read from Meta (on
//! demand, by a periodic sweep, and as Meta's `phone_number_quality_update` webhook says), and
//! disconnecting it.
//!
//! Disconnect is a soft delete (`disconnected_at`, migration 0011): messages, conversations,
//! templates and broadcasts reference the number, and a workspace keeps reading its history, so
//! the row stays while everything that acts on it (sending, simulating, templates, bots, the
//! webhook) stops finding it; its token is wiped, and Meta's phone number id is free to be
//! connected again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use nexus_proto::events as ev;
use nexus_providers::whatsapp::Sender;
use tokio_util::sync::CancellationToken;

use super::parse_id;
use super::whatsapp::{Number, WhatsApp};
use crate::domain::whatsapp::{self as domain, QualityUpdate};
use crate::events::whatsapp as events;
use crate::repo::whatsapp::{self as repo, NumberRow};

/// Numbers one sweep claims at most.
const SWEEP_BATCH: i64 = 50;

impl WhatsApp {
    /// Reads the number's rating and tier from Meta now.
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn refresh_number(&self, p: &Principal, id: &str) -> Result<Number, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, "messaging.whatsapp_number_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let number =
            repo::number(&mut tx, id).await?.ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        db::commit(tx).await?;
        self.refresh_standing(&number).await?;
        self.number(p, &id.to_string()).await
    }

    /// Asks Meta (or the sandbox) for the number's standing and records it; a changed rating or
    /// tier is announced in the same transaction.
    pub(crate) async fn refresh_standing(&self, number: &NumberRow) -> Result<(), Error> {
        let provider = self.provider_for(number)?;
        let token = self.number_token(number)?;
        let state = provider
            .number_state(&Sender { phone_number_id: &number.phone_number_id, token: &token })
            .await
            .map_err(super::templates::provider_error)?;
        let quality = domain::quality_rating(&state.quality_rating);
        let tier = domain::messaging_tier(&state.messaging_limit_tier);
        let tenant = TenantId::from_uuid(number.tenant_id);
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let Some((old_quality, old_tier)) = repo::set_standing(&mut tx, number.id, quality, tier.as_deref()).await?
        else {
            // Disconnected meanwhile: nothing to record.
            return Ok(());
        };
        let tier = tier.unwrap_or_else(|| old_tier.clone());
        announce_change(&mut tx, tenant, number, (&old_quality, &old_tier), (quality, &tier)).await?;
        db::commit(tx).await
    }

    /// Meta's quality webhook for a number: the tier it names applied, the rating read again by
    /// the next sweep. Applying it twice changes nothing more; `true` when the tier changed.
    pub(crate) async fn apply_quality_update(&self, q: &QualityUpdate) -> Result<bool, Error> {
        let mut tx = db::system(&self.pool).await?;
        let number = repo::number_by_display(&mut tx, &q.waba_id, &q.display_digits).await?;
        db::commit(tx).await?;
        let Some(number) = number else {
            tracing::info!(waba_id = %q.waba_id, "whatsapp quality update for a number not connected here");
            return Ok(false);
        };
        tracing::info!(number = %number.id, event = %q.event, limit = %q.current_limit, "whatsapp quality update");
        let tier = domain::messaging_tier(&q.current_limit);
        let tenant = TenantId::from_uuid(number.tenant_id);
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let Some((quality, old_tier)) = repo::set_tier_and_due(&mut tx, number.id, tier.as_deref()).await? else {
            return Ok(false);
        };
        let tier = tier.unwrap_or_else(|| old_tier.clone());
        let changed = announce_change(&mut tx, tenant, &number, (&quality, &old_tier), (&quality, &tier)).await?;
        db::commit(tx).await?;
        Ok(changed)
    }

    /// Disconnects a number (owners and admins, like connecting): its broadcasts that have not
    /// ended are canceled with their credits settled as a cancel settles them, its bot removed,
    /// its token wiped; it stops counting toward the plan's limit.
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn disconnect_number(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::ManageApiKeys)?;
        let id = parse_id(id, "messaging.whatsapp_number_not_found")?;
        let tenant = p.workspace_id;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        // Serialized with connects, which count the connected numbers under the same lock.
        repo::lock_numbers(&mut tx, tenant).await?;
        repo::number_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        let canceled = super::broadcasts::cancel_of_number(&mut tx, tenant, id).await?;
        repo::delete_bot(&mut tx, id).await?;
        repo::disconnect_number(&mut tx, id).await?;
        let e = ev::WhatsAppNumberDisconnected {
            workspace_id: tenant.to_string(),
            number_id: id.to_string(),
            broadcasts_canceled: i64::try_from(canceled).unwrap_or(i64::MAX),
            disconnected_at: Some(nexus_platform::grpc::ts(Utc::now())),
        };
        events::number_disconnected(&mut tx, tenant, e).await?;
        db::commit(tx).await
    }
}

/// Announces a rating or tier change (nothing when neither changed); whether it did.
async fn announce_change(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    number: &NumberRow,
    (old_quality, old_tier): (&str, &str),
    (quality, tier): (&str, &str),
) -> Result<bool, Error> {
    if old_quality == quality && old_tier == tier {
        return Ok(false);
    }
    let e = ev::WhatsAppNumberQualityChanged {
        workspace_id: tenant.to_string(),
        number_id: number.id.to_string(),
        previous_rating: old_quality.to_owned(),
        quality_rating: quality.to_owned(),
        previous_tier: old_tier.to_owned(),
        messaging_tier: tier.to_owned(),
        checked_at: Some(nexus_platform::grpc::ts(Utc::now())),
    };
    events::quality_changed(tx, tenant, e).await?;
    Ok(true)
}

/// The refresh sweep: every connected number's standing read again once `every` has passed since
/// its last read. Every replica may run one: a claim moves the number's check time first, under
/// `FOR UPDATE SKIP LOCKED`, so two replicas never read one number at once.
pub async fn run_quality_refresh(wa: Arc<WhatsApp>, every: Duration, stop: CancellationToken) {
    // Looks for due numbers often enough that none waits much past its time.
    let poll = every.min(Duration::from_secs(60));
    while !stop.is_cancelled() {
        if let Err(e) = sweep(&wa, every).await {
            tracing::warn!(error = ?e, "whatsapp quality refresh");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// One pass; answers how many numbers were read.
pub async fn sweep(wa: &WhatsApp, every: Duration) -> Result<usize, Error> {
    let mut tx = db::system(&wa.pool).await?;
    let due = repo::claim_due_standing(&mut tx, every.as_secs_f64(), SWEEP_BATCH).await?;
    db::commit(tx).await?;
    let mut read = 0;
    for number in &due {
        // A failed read waits for the next period (its claim moved the check time): Meta being
        // down must not turn the sweep into a retry loop.
        match wa.refresh_standing(number).await {
            Ok(()) => read += 1,
            Err(e) => tracing::warn!(number = %number.id, error = ?e, "whatsapp quality read"),
        }
    }
    Ok(read)
}
