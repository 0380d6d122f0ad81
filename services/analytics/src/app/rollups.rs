//! Reading and folding rollups. A report over a range reads whole closed UTC hours (and days,
//! when its zone is UTC) from `analytics_rollups` and the rest — partial hours at its edges and
//! the open hour — from the events (see [`rollup::plan`]); the two are cut into the report's
//! local buckets by Postgres and added up here. A zone whose hours do not start on whole local
//! hours (India, Nepal, …) cannot be cut from hourly rows: those reports read the events.
//!
//! [`Compactor`] folds the partial rows the writer appended into one row per key, every
//! `rollups.compact_interval`, for buckets that closed (nothing is lost if it never runs:
//! reports add partial rows up the same way, only more slowly).

use std::sync::Arc;

use chrono::Utc;
use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use super::Analytics;
use crate::config::RollupsConfig;
use crate::domain::Interval;
use crate::domain::report::Range;
use crate::domain::rollup::{self, Part, Slice, Source};
use crate::repo;

/// The parts of `slice` over `range`, cut by `interval` in `tz`; None when `tz` cannot be cut
/// from hourly rollups over this range.
pub async fn parts(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    interval: Interval,
    tz: &str,
    slice: Slice<'_>,
) -> Result<Option<Vec<Part>>, Error> {
    let (whole_hours, utc) = repo::rollups::zone_fit(conn, tz, range).await?;
    if !whole_hours {
        return Ok(None);
    }
    let days = utc && interval != Interval::Hour;
    let mut out = Vec::new();
    for seg in rollup::plan(range.from, range.to, Utc::now(), days) {
        let r = Range { from: seg.from, to: seg.to };
        match seg.source {
            Source::Rollup(g) => {
                out.extend(repo::rollups::read(conn, tenant, g, r, interval.as_str(), tz, slice).await?);
            }
            Source::Raw => {
                let facts = repo::rollups::raw_facts(conn, tenant, r, interval.as_str(), tz).await?;
                out.extend(rollup::raw_parts(&facts, slice));
            }
        }
    }
    Ok(Some(out))
}

pub struct Compactor {
    pub app: Arc<Analytics>,
    pub cfg: RollupsConfig,
}

impl Compactor {
    pub async fn run(self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.once().await {
                tracing::warn!(error = ?e, "rollup compaction failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.cfg.compact_interval) => {}
            }
        }
    }

    /// Folds every closed bucket's partial rows, a batch of keys per transaction; keys folded.
    #[tracing::instrument(skip_all)]
    pub async fn once(&self) -> Result<usize, Error> {
        let mut total = 0;
        loop {
            // Every workspace's rows: a system transaction (the rows carry their tenant).
            let mut tx = db::system(&self.app.db).await?;
            let n = repo::rollups::compact(&mut tx, Utc::now(), self.cfg.compact_batch).await?;
            db::commit(tx).await?;
            total += n;
            if n < usize::try_from(self.cfg.compact_batch).unwrap_or(usize::MAX) {
                return Ok(total);
            }
        }
    }
}
