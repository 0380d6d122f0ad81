//! The scheduled insights sync of every chosen account, across workspaces and replicas: due
//! accounts are claimed (SKIP LOCKED, with a lease), synced — the 28-day backfill the first
//! time, owed since the account was chosen, then the last few days, which platforms revise —
//! and released with their next time; the status and ad review of the account's built
//! campaigns are refreshed with it (an `ad.rejected` event once per rejection). At Meta a range longer than `async_over_days` is read
//! through an async report job, polled until complete.

use std::sync::Arc;

use chrono::Utc;
use nexus_kernel::{Currency, Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_providers::meta::ReportStatus;
use tokio_util::sync::CancellationToken;

use super::App;
use super::ad_platform::{AdPlatform, Scope};
use super::insights::{Pull, SyncReport, day_range};
use super::platforms::platform_error;
use crate::domain::connections::{Provider, status};
use crate::repo;
use crate::repo::insights::Owner;
use crate::repo::syncs::Claimed;

/// Accounts claimed per round.
const BATCH: i64 = 20;

/// Runs a round every `insights.sweep_interval` (the first after one interval) until `stop`.
pub async fn sweeper(app: Arc<App>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(app.cfg.insights.sweep_interval) => {}
        }
        if let Err(e) = app.sweep_insights().await {
            tracing::warn!(error = ?e, "insights sweep failed");
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepRound {
    pub synced: u32,
    pub backfilled: u32,
    pub failed: u32,
    pub rows: u64,
}

impl App {
    /// One round: claims the due accounts and syncs each.
    pub async fn sweep_insights(&self) -> Result<SweepRound, Error> {
        let lease = chrono::Duration::from_std(self.cfg.insights.lease).unwrap_or(chrono::Duration::minutes(15));
        let mut sys = db::system(&self.pool).await?;
        let claimed = repo::syncs::claim(&mut sys, lease, BATCH).await?;
        db::commit(sys).await?;
        let mut round = SweepRound::default();
        for c in claimed {
            let tenant = TenantId::from_uuid(c.tenant_id);
            let result = self.sync_account(tenant, &c).await;
            let (next, ok, rows, error) = match &result {
                Ok(rows) => (self.cfg.insights.refresh_every, true, *rows, String::new()),
                // Tried again at the next round, not after the whole period.
                Err(e) => (self.cfg.insights.sweep_interval, false, 0, e.code().to_owned()),
            };
            let next = Utc::now() + chrono::Duration::from_std(next).unwrap_or(chrono::Duration::hours(1));
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let rows_i = i64::try_from(rows).unwrap_or(i64::MAX);
            repo::syncs::finish(&mut tx, c.connection_id, &c.ad_account, next, ok, rows_i, &error).await?;
            db::commit(tx).await?;
            match result {
                Ok(_) => {
                    round.synced += 1;
                    round.backfilled += u32::from(!c.backfilled);
                    round.rows += rows;
                }
                Err(e) => {
                    tracing::warn!(provider = %c.provider, code = e.code(), "an account's insights sync failed");
                    round.failed += 1;
                }
            }
        }
        Ok(round)
    }

    /// Syncs one claimed account; the rows stored.
    async fn sync_account(&self, tenant: TenantId, c: &Claimed) -> Result<u64, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let stored = repo::connections::get(&mut tx, c.connection_id).await?;
        db::commit(tx).await?;
        let stored = stored
            .filter(|s| s.record.status != status::DISCONNECTED)
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "ads.connection_required"))?;
        let token = self.open_tokens(c.connection_id, &stored.credentials)?.access_token;
        let provider: Provider = c.provider.parse()?;
        let platform = self.ad_platform(provider)?;
        let currency: Currency = c.currency.parse()?;
        let i = &self.cfg.insights;
        let days = if c.backfilled { i.recent_days } else { i.backfill_days };
        let (since, until) = day_range(&c.time_zone, days);
        let scope = match platform {
            AdPlatform::Meta(meta) if days > i.async_over_days => {
                Scope::Run(self.finished_report(meta, &token, &c.ad_account, &since, &until).await?)
            }
            _ => Scope::Account,
        };
        let pull = Pull {
            tenant,
            owner: Owner::Account { connection: c.connection_id, ad_account: c.ad_account.clone() },
            platform,
            token: &token,
            account: &c.ad_account,
            scope,
            currency,
            time_zone: &c.time_zone,
        };
        let mut report = SyncReport::default();
        self.pull(&pull, &since, &until, &mut report).await?;
        self.refresh_reviews(tenant, c, platform, &token).await?;
        Ok(report.rows)
    }

    /// Refreshes the platform status and ad review of the account's built campaigns; a newly
    /// rejected ad is announced (`ad.rejected`) in the transaction recording it.
    async fn refresh_reviews(
        &self,
        tenant: TenantId,
        c: &Claimed,
        platform: AdPlatform<'_>,
        token: &str,
    ) -> Result<(), Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let builds = repo::builds::live_in_account(&mut tx, c.connection_id, &c.ad_account).await?;
        db::commit(tx).await?;
        for id in builds {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let b = repo::builds::get(&mut tx, id).await?;
            let steps = repo::builds::steps(&mut tx, id).await?;
            db::commit(tx).await?;
            let Some(b) = b else { continue };
            let created = |step: &str| {
                steps.iter().find(|s| s.step == step && s.status == "created").and_then(|s| s.platform_id.clone())
            };
            let (Some(campaign), Some(ad)) = (created("campaign"), created("ad")) else { continue };
            let (status, review, reason) = platform
                .review(token, &c.ad_account, &campaign, &ad)
                .await
                .map_err(|e| platform_error(platform.provider(), e))?;
            let mut tx = db::tenant(&self.pool, tenant).await?;
            if repo::builds::set_review(&mut tx, id, &status, review, &reason).await? {
                crate::events::ad_rejected(&mut tx, tenant, &b, &ad, &reason).await?;
            }
            db::commit(tx).await?;
        }
        Ok(())
    }

    /// Starts a Meta async report and waits for it (within the claim's lease); its run id.
    async fn finished_report(
        &self,
        meta: &nexus_providers::meta::MetaClient,
        token: &str,
        account: &str,
        since: &str,
        until: &str,
    ) -> Result<String, Error> {
        let e = |e| platform_error(Provider::Meta, e);
        let run = meta.start_report(token, account, since, until).await.map_err(e)?;
        let poll = self.cfg.insights.poll_interval.max(std::time::Duration::from_millis(10));
        let deadline = tokio::time::Instant::now() + self.cfg.insights.lease / 2;
        loop {
            match meta.report_status(token, &run).await.map_err(e)? {
                ReportStatus::Completed => return Ok(run),
                ReportStatus::Failed(why) => {
                    tracing::warn!(why, "a Meta report job failed");
                    return Err(Error::unavailable("ads.platform_unavailable").with_param("provider", "meta"));
                }
                ReportStatus::Running(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::unavailable("ads.platform_unavailable").with_param("provider", "meta"));
                }
                ReportStatus::Running(_) => tokio::time::sleep(poll).await,
            }
        }
    }
}
