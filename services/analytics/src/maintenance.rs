//! Partitions and retention. Monthly partitions are created ahead of time (and on demand for an
//! event in a month that has none); each workspace's events older than its retention are deleted
//! in bounded chunks; whole partitions older than every workspace's retention are dropped. Each
//! purge leaves one entry in the workspace's audit trail.

use chrono::{Datelike, Months, NaiveDate, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::begin_system;
use serde_json::json;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::MaintenanceConfig;
use crate::store::{Store, db};

/// Rows deleted per statement, so a large purge never holds locks for long.
const CHUNK: i64 = 5000;

pub struct Maintenance {
    pub store: Arc<Store>,
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
    pub async fn once(&self) -> Result<Report, Error> {
        self.create_ahead().await?;
        let rows_purged = self.purge_workspaces().await?;
        let partitions_dropped = self.drop_old_partitions().await?;
        Ok(Report { partitions_dropped, rows_purged })
    }

    async fn create_ahead(&self) -> Result<(), Error> {
        let today = Utc::now().date_naive();
        let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
        for ahead in 0..=self.cfg.months_ahead {
            let Some(month) = first.checked_add_months(Months::new(ahead)) else { continue };
            sqlx::query("SELECT analytics_ensure_partition($1)")
                .bind(month)
                .execute(&self.store.pool)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn purge_workspaces(&self) -> Result<u64, Error> {
        let mut tx = begin_system(&self.store.pool).await.map_err(db)?;
        let workspaces: Vec<(Uuid, i32)> = sqlx::query_as("SELECT tenant_id, retention_days FROM workspace_settings")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut total = 0;
        for (tenant, days) in workspaces {
            let n = self.purge(TenantId::from_uuid(tenant), days).await?;
            total += n;
        }
        Ok(total)
    }

    /// Deletes one workspace's events older than `days`, chunk by chunk, and records the purge.
    pub async fn purge(&self, tenant: TenantId, days: i32) -> Result<u64, Error> {
        let mut deleted = 0u64;
        loop {
            let mut tx = begin_system(&self.store.pool).await.map_err(db)?;
            let n = sqlx::query(
                "DELETE FROM analytics_events WHERE (tenant_id, client_event_id, occurred_at) IN ( \
                   SELECT tenant_id, client_event_id, occurred_at FROM analytics_events \
                   WHERE tenant_id = $1 AND occurred_at < now() - make_interval(days => $2) LIMIT $3)",
            )
            .bind(tenant.as_uuid())
            .bind(days)
            .bind(CHUNK)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            // Their ids go too: an id is remembered as long as its event is kept.
            let ids = sqlx::query(
                "DELETE FROM analytics_event_ids WHERE (tenant_id, client_event_id) IN ( \
                   SELECT tenant_id, client_event_id FROM analytics_event_ids \
                   WHERE tenant_id = $1 AND occurred_at < now() - make_interval(days => $2) LIMIT $3)",
            )
            .bind(tenant.as_uuid())
            .bind(days)
            .bind(CHUNK)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            tx.commit().await.map_err(db)?;
            deleted += n;
            if n < CHUNK as u64 && ids < CHUNK as u64 {
                break;
            }
        }
        if deleted > 0 {
            let mut tx = begin_system(&self.store.pool).await.map_err(db)?;
            sqlx::query(
                "INSERT INTO system_logs (id, tenant_id, at, actor, action, service, resource_type, after) \
                 VALUES ($1, $2, now(), 'system', 'retention.purge', 'analytics', 'analytics.analytics_events', $3)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.as_uuid())
            .bind(json!({"deleted": deleted, "retention_days": days}))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            tracing::info!(tenant = %tenant, deleted, days, "retention purge");
        }
        Ok(deleted)
    }

    async fn drop_old_partitions(&self) -> Result<i32, Error> {
        // The settings table is RLS-bound; the longest retention of all is a fleet-wide fact.
        let mut tx = begin_system(&self.store.pool).await.map_err(db)?;
        let longest: Option<i32> = sqlx::query_scalar("SELECT max(retention_days) FROM workspace_settings")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let longest = longest.unwrap_or(0);
        let keep_days = longest.max(i32::try_from(self.default_retention_days).unwrap_or(395));
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(keep_days));
        let dropped: i32 = sqlx::query_scalar("SELECT analytics_drop_partitions_before($1)")
            .bind(cutoff)
            .fetch_one(&self.store.pool)
            .await
            .map_err(db)?;
        if dropped > 0 {
            self.store.forget_partitions();
            tracing::info!(dropped, %cutoff, "dropped expired analytics partitions");
        }
        Ok(dropped)
    }
}
