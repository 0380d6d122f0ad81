//! Audiences made from a contact-book segment are read from it again every
//! `audiences.refresh_every` and their members replaced at the platform (Meta: one
//! `usersreplace` session; TikTok: the difference added and removed, `audience_diff`; the
//! sandbox records the counts). Due audiences are claimed across
//! workspaces and replicas (SKIP LOCKED, with a lease), so two replicas never refresh the same
//! one; a refresh can also be asked for now. A failed refresh keeps the audience's members and
//! is tried again after `audiences.sweep_interval`.

use std::sync::Arc;

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ad_platform::AdPlatform;
use super::audience_diff::{DiffSink, DiffTarget};
use super::audiences::{Sink, Target, pour};
use super::{App, require};
use crate::repo;
use crate::repo::audiences::{Audience, Refreshed};

/// Audiences claimed per round.
const BATCH: i64 = 10;

/// Runs a round every `audiences.sweep_interval` until `stop`.
pub async fn sweeper(app: Arc<App>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(app.cfg.audiences.sweep_interval) => {}
        }
        if let Err(e) = app.sweep_audiences().await {
            tracing::warn!(error = ?e, "audience refresh sweep failed");
        }
    }
}

impl App {
    fn audience_lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.cfg.audiences.lease).unwrap_or(chrono::Duration::minutes(30))
    }

    /// One round: claims the due audiences and refreshes each; how many were refreshed.
    pub async fn sweep_audiences(&self) -> Result<u32, Error> {
        let mut sys = db::system(&self.pool).await?;
        let claimed = repo::audiences::claim_due(&mut sys, self.audience_lease(), BATCH).await?;
        db::commit(sys).await?;
        let mut refreshed = 0;
        for (tenant, id) in claimed {
            let tenant = TenantId::from_uuid(tenant);
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let a = repo::audiences::get(&mut tx, id).await?;
            db::commit(tx).await?;
            let Some(a) = a else { continue };
            match self.refresh_claimed(tenant, &a).await {
                Ok(_) => refreshed += 1,
                Err(e) => tracing::warn!(code = e.code(), "an audience's refresh failed"),
            }
        }
        Ok(refreshed)
    }

    /// Refreshes an audience made from a segment now; refused while another refresh holds it.
    pub async fn refresh_audience(&self, p: &Principal, raw_id: &str) -> Result<Audience, Error> {
        require(p, Action::Write)?;
        let id = super::audiences::audience_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let claimed = repo::audiences::claim_one(&mut tx, id, self.audience_lease()).await?;
        let current = match &claimed {
            Some(_) => None,
            None => repo::audiences::get(&mut tx, id).await?,
        };
        db::commit(tx).await?;
        match (claimed, current) {
            (Some(a), _) => self.refresh_claimed(p.workspace_id, &a).await,
            (None, None) => Err(Error::not_found("ads.audience_not_found")),
            (None, Some(a)) if a.segment_id.is_empty() => {
                Err(Error::invalid("ads.audience_not_refreshable").with_violation("id", "not_from_segment"))
            }
            (None, Some(_)) => Err(Error::new(ErrorKind::Conflict, "ads.audience_refreshing")),
        }
    }

    /// Replaces a claimed audience's members with its segment's, and releases the claim with the
    /// outcome (and its event) in one transaction.
    async fn refresh_claimed(&self, tenant: TenantId, a: &Audience) -> Result<Audience, Error> {
        let result = self.replace_members(tenant, a).await;
        let cfg = &self.cfg.audiences;
        let (outcome, wait) = match &result {
            Ok(u) => {
                let n = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
                let done = Refreshed::Done { members: n(u.members), dropped: n(u.dropped), excluded: n(u.excluded) };
                (done, cfg.refresh_every)
            }
            Err(e) => (Refreshed::Failed(e.code().to_owned()), cfg.sweep_interval),
        };
        let next = Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)));
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let row = repo::audiences::finish_refresh(&mut tx, a.id, &outcome, next).await?;
        if let Some(row) = &row {
            crate::events::audience_refreshed(&mut tx, tenant, row).await?;
        }
        db::commit(tx).await?;
        result?;
        row.ok_or_else(|| Error::not_found("ads.audience_not_found"))
    }

    /// Reads the segment again into a replacement of the platform audience's members.
    async fn replace_members(&self, tenant: TenantId, a: &Audience) -> Result<super::audiences::Upload, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let stored = repo::connections::get(&mut tx, a.connection_id).await?;
        db::commit(tx).await?;
        let stored = stored
            .filter(|s| s.record.status != crate::domain::connections::status::DISCONNECTED)
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "ads.connection_required"))?;
        let provider = stored.record.provider;
        let platform = self.ad_platform(provider)?;
        let token = self.open_tokens(stored.record.id, &stored.credentials)?.access_token;
        let book = self.book()?;
        // Opted out since: the platform keeps the members it has until the audience is deleted
        // or the setting is turned off again.
        self.sharing_allowed(tenant).await?;
        if let AdPlatform::TikTok(tiktok) = platform {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let generation = repo::audience_members::next_generation(&mut tx, a.id).await?;
            db::commit(tx).await?;
            let generation = generation.ok_or_else(|| Error::not_found("ads.audience_not_found"))?;
            let target = DiffTarget {
                pool: &self.pool,
                tenant,
                key: a.id,
                generation,
                tiktok,
                token: &token,
                advertiser: &a.ad_account,
                name: &a.name,
                audience: Some(a.platform_id.clone()),
            };
            let mut sink = DiffSink::new(target);
            let counts = pour(book, tenant, &a.segment_id, &mut sink).await?;
            return match sink.finish().await? {
                Some(_) => Ok(counts),
                None => Err(Error::invalid("ads.audience_empty").with_violation("segment_id", "empty")),
            };
        }
        let estimated = book.segment_size(tenant, &a.segment_id).await?;
        let target = Target { platform, token: &token, account: &a.ad_account, name: &a.name, local_key: Uuid::nil() };
        let mut sink = Sink::new(target, Some(a.platform_id.clone()), estimated, true);
        let counts = pour(book, tenant, &a.segment_id, &mut sink).await?;
        // A segment left with no consenting contact: the platform cannot be given an empty
        // member list, so the old members stay and the refresh is recorded as failed.
        match sink.finish().await? {
            Some(_) => Ok(counts),
            None => Err(Error::invalid("ads.audience_empty").with_violation("segment_id", "empty")),
        }
    }
}
