//! Partitions and retention. Monthly partitions are created ahead of time (and on demand for an
//! event in a month that has none); each workspace's events older than its retention are deleted
//! in bounded chunks; whole partitions older than every workspace's retention are dropped. Each
//! purge leaves one entry in the workspace's audit trail.

use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDate, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::{self, DbResultExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Analytics;
use crate::config::MaintenanceConfig;
use crate::domain::workspace::FALLBACK_RETENTION_DAYS;
use crate::repo;

/// Rows deleted per statement, so a large purge never holds locks for long.
const CHUNK: i64 = 5000;

pub struct Maintenance {
    pub app: Arc<Analytics>,
    pub cfg: MaintenanceConfig,
    pub default_retention_days: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub partitions_dropped: i32,
    pub rows_purged: u64,
}

impl Maintenance {
    pub async fn run(self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.once().await {
                tracing::warn!(error = ?e, "analytics maintenance failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.cfg.interval) => {}
            }
        }
    }

    /// One pass: partitions ahead, per-workspace purges, old partitions dropped.
    #[tracing::instrument(skip_all)]
    pub async fn once(&self) -> Result<Report, Error> {
        self.create_ahead().await?;
        let rows_purged = self.purge_workspaces().await?;
        let partitions_dropped = self.drop_old_partitions().await?;
        Ok(Report { partitions_dropped, rows_purged })
    }

    async fn create_ahead(&self) -> Result<(), Error> {
        let today = Utc::now().date_naive();
        let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
        let mut conn = self.app.db.acquire().await.db()?;
        for ahead in 0..=self.cfg.months_ahead {
            let Some(month) = first.checked_add_months(Months::new(ahead)) else { continue };
            repo::partitions::ensure(&mut conn, month).await?;
        }
        Ok(())
    }

    async fn purge_workspaces(&self) -> Result<u64, Error> {
        let mut tx = db::system(&self.app.db).await?;
        let workspaces = repo::settings::retentions(&mut tx).await?;
        db::commit(tx).await?;
        let mut total = 0;
        for (tenant, days) in workspaces {
            total += self.purge(tenant, days).await?;
        }
        Ok(total)
    }

    /// Deletes one workspace's events older than `days`, chunk by chunk, and records the purge.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, days))]
    pub async fn purge(&self, tenant: TenantId, days: i32) -> Result<u64, Error> {
        let mut deleted = 0u64;
        loop {
            let mut tx = db::system(&self.app.db).await?;
            let (n, ids) = repo::events::purge_chunk(&mut tx, tenant, days, CHUNK).await?;
            let rolled = repo::rollups::purge_chunk(&mut tx, tenant, days, CHUNK).await?;
            db::commit(tx).await?;
            deleted += n;
            if n < CHUNK as u64 && ids < CHUNK as u64 && rolled < CHUNK as u64 {
                break;
            }
        }
        if deleted > 0 {
            let mut tx = db::system(&self.app.db).await?;
            repo::audit::record_purge(&mut tx, tenant, json!({"deleted": deleted, "retention_days": days})).await?;
            db::commit(tx).await?;
            tracing::info!(tenant = %tenant, deleted, days, "retention purge");
        }
        Ok(deleted)
    }

    async fn drop_old_partitions(&self) -> Result<i32, Error> {
        // The settings table is RLS-bound; the longest retention of all is a fleet-wide fact.
        let mut tx = db::system(&self.app.db).await?;
        let longest = repo::settings::longest_retention(&mut tx).await?;
        db::commit(tx).await?;
        let longest = longest.unwrap_or(0);
        let keep_days = longest.max(i32::try_from(self.default_retention_days).unwrap_or(FALLBACK_RETENTION_DAYS));
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(keep_days));
        let mut conn = self.app.db.acquire().await.db()?;
        let dropped = repo::partitions::drop_before(&mut conn, cutoff).await?;
        if dropped > 0 {
            self.app.forget_partitions();
            tracing::info!(dropped, %cutoff, "dropped expired analytics partitions");
        }
        Ok(dropped)
    }
}
