//! Reports over one workspace's events, inside tenant transactions (RLS confines every query to
//! the caller's workspace even where a filter were forgotten).

use nexus_kernel::{Currency, Cursor, Error, Money, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use serde::{Deserialize, Serialize};

use super::Analytics;
use super::rollups;
use crate::domain::Interval;
use crate::domain::report::{
    AuditEntry, AuditFilter, Breakdown, BreakdownBy, Bucket, FeatureUsage, FunnelStep, Range, RevenuePoint,
    UtmDimension, bucket_count_ok, check_funnel, check_property, filter_name, funnel_steps,
};
use crate::domain::rollup::{self, Slice};
use crate::domain::{funnel, retention};
use crate::repo;
use crate::repo::reports::Slice as RowSlice;

/// Offset cursor of ranked breakdowns (their order is by count, which has no stable key).
#[derive(Serialize, Deserialize)]
struct OffsetKey {
    o: u64,
}

fn slice_of(page: &PageRequest) -> Result<(u64, RowSlice), Error> {
    let offset = page.decode_cursor::<OffsetKey>()?.map_or(0, |k| k.o);
    Ok((offset, RowSlice { offset: i64::try_from(offset).unwrap_or(i64::MAX), fetch: i64::from(page.limit) + 1 }))
}

fn ranked_page(rows: Vec<Breakdown>, page: &PageRequest, offset: u64) -> Page<Breakdown> {
    let limit = page.limit;
    let mut p = Page::from_overfetch(rows, limit, |_| 0u8);
    if p.next_cursor.is_some() {
        p.next_cursor = Some(Cursor::encode(&OffsetKey { o: offset + u64::from(limit) }));
    }
    p
}

impl Analytics {
    /// The zone to report in: the requested one (validated) or the workspace's.
    pub async fn report_zone(&self, tenant: TenantId, requested: &str) -> Result<String, Error> {
        if requested.trim().is_empty() {
            return Ok(self.settings(tenant).await?.time_zone);
        }
        self.check_zone(requested.trim()).await?;
        Ok(requested.trim().to_owned())
    }

    #[tracing::instrument(skip_all, fields(interval = interval.as_str(), zone = %tz))]
    pub async fn time_series(
        &self,
        tenant: TenantId,
        range: Range,
        interval: Interval,
        tz: &str,
        event: &str,
    ) -> Result<Vec<Bucket>, Error> {
        bucket_count_ok(&range, interval)?;
        let name = filter_name(event)?;
        let mut tx = db::tenant(&self.db, tenant).await?;
        let slice = name.as_deref().map_or(Slice::All, |n| Slice::Names(Some(n)));
        let buckets = match rollups::parts(&mut tx, tenant, range, interval, tz, slice).await? {
            Some(parts) => {
                let starts = repo::rollups::buckets(&mut tx, range, interval.as_str(), tz).await?;
                rollup::series(starts, parts)
            }
            None => repo::reports::time_series(&mut tx, tenant, range, interval, tz, name.as_deref()).await?,
        };
        db::commit(tx).await?;
        Ok(buckets)
    }

    /// Events per name, from rollups (whole hours) and the events at the range's edges.
    #[tracing::instrument(skip_all)]
    pub async fn top_events(
        &self,
        tenant: TenantId,
        range: Range,
        page: &PageRequest,
    ) -> Result<Page<Breakdown>, Error> {
        let (offset, slice) = slice_of(page)?;
        let mut tx = db::tenant(&self.db, tenant).await?;
        let parts = rollups::parts(&mut tx, tenant, range, Interval::Day, "UTC", Slice::Names(None)).await?;
        db::commit(tx).await?;
        // UTC hours always start on whole hours.
        let parts = parts.unwrap_or_default();
        let fetch = usize::try_from(slice.fetch).unwrap_or(usize::MAX);
        let rows = rollup::ranked(parts, usize::try_from(offset).unwrap_or(usize::MAX), fetch);
        Ok(ranked_page(rows, page, offset))
    }

    #[tracing::instrument(skip_all, fields(property = %property))]
    pub async fn property_breakdown(
        &self,
        tenant: TenantId,
        range: Range,
        event: &str,
        property: &str,
        page: &PageRequest,
    ) -> Result<Page<Breakdown>, Error> {
        let property = check_property(property)?;
        let name = filter_name(event)?;
        self.ranked(tenant, range, BreakdownBy::Property(property), name, page).await
    }

    #[tracing::instrument(skip_all, fields(dimension = %dimension))]
    pub async fn utm_breakdown(
        &self,
        tenant: TenantId,
        range: Range,
        dimension: &str,
        event: &str,
        page: &PageRequest,
    ) -> Result<Page<Breakdown>, Error> {
        let dimension = UtmDimension::parse(dimension)?;
        let name = filter_name(event)?;
        self.ranked(tenant, range, BreakdownBy::Utm(dimension), name, page).await
    }

    /// One offset page of a ranked breakdown.
    async fn ranked(
        &self,
        tenant: TenantId,
        range: Range,
        by: BreakdownBy<'_>,
        name: Option<String>,
        page: &PageRequest,
    ) -> Result<Page<Breakdown>, Error> {
        let (offset, slice) = slice_of(page)?;
        let mut tx = db::tenant(&self.db, tenant).await?;
        let rows = repo::reports::breakdown(&mut tx, tenant, range, by, name.as_deref(), slice).await?;
        db::commit(tx).await?;
        Ok(ranked_page(rows, page, offset))
    }

    /// Users who did the steps in order (each strictly after the previous) with every step no
    /// later than `window` after their step 1; step 1 must fall in the range.
    #[tracing::instrument(skip_all, fields(steps = steps.len(), window_seconds))]
    pub async fn funnel(
        &self,
        tenant: TenantId,
        range: Range,
        steps: &[String],
        window_seconds: u64,
    ) -> Result<Vec<FunnelStep>, Error> {
        let steps = check_funnel(steps, window_seconds)?;
        let mut tx = db::tenant(&self.db, tenant).await?;
        let paths = repo::reports::funnel_paths(&mut tx, tenant, range, &steps, window_seconds).await?;
        db::commit(tx).await?;
        let window = chrono::TimeDelta::seconds(i64::try_from(window_seconds).unwrap_or(i64::MAX));
        let furthest = paths.iter().map(|(names, times)| {
            let events: Vec<(&str, _)> = names.iter().map(String::as_str).zip(times.iter().copied()).collect();
            funnel::furthest(&steps, &events, range.from, range.to, window)
        });
        let counts = funnel::reached(steps.len(), furthest);
        Ok(funnel_steps(steps, &counts))
    }

    /// Revenue per bucket and currency, plus totals per currency (integer minor units).
    #[tracing::instrument(skip_all, fields(interval = interval.as_str(), zone = %tz))]
    pub async fn revenue(
        &self,
        tenant: TenantId,
        range: Range,
        interval: Interval,
        tz: &str,
        currency: &str,
    ) -> Result<(Vec<RevenuePoint>, Vec<Money>), Error> {
        bucket_count_ok(&range, interval)?;
        let currency = if currency.trim().is_empty() { None } else { Some(currency.trim().parse::<Currency>()?) };
        let mut tx = db::tenant(&self.db, tenant).await?;
        let code = currency.as_ref().map(Currency::code);
        let sums = match rollups::parts(&mut tx, tenant, range, interval, tz, Slice::Revenue(code)).await? {
            Some(parts) => {
                let starts = repo::rollups::buckets(&mut tx, range, interval.as_str(), tz).await?;
                rollup::revenue(&starts, parts)
            }
            None => repo::reports::revenue(&mut tx, tenant, range, interval, tz, code).await?,
        };
        db::commit(tx).await?;
        crate::domain::report::revenue(sums)
    }

    /// Metered actions (credits charged) per plan the workspace was on at the time.
    #[tracing::instrument(skip_all)]
    pub async fn feature_usage(&self, tenant: TenantId, range: Range) -> Result<Vec<FeatureUsage>, Error> {
        let mut tx = db::tenant(&self.db, tenant).await?;
        let parts = rollups::parts(&mut tx, tenant, range, Interval::Day, "UTC", Slice::Features).await?;
        db::commit(tx).await?;
        Ok(rollup::features(parts.unwrap_or_default()))
    }

    /// Weekly cohorts by first `start` event × weeks since, counting users who did `ret`.
    #[tracing::instrument(skip_all, fields(weeks))]
    pub async fn retention(
        &self,
        tenant: TenantId,
        range: Range,
        start: &str,
        ret: &str,
        weeks: u32,
    ) -> Result<(Vec<retention::Cohort>, u32), Error> {
        let (start, ret, weeks) = retention::check(start, ret, weeks)?;
        if range.to - range.from > chrono::TimeDelta::days(retention::MAX_STICKINESS_DAYS) {
            return Err(Error::new(nexus_kernel::ErrorKind::Unprocessable, "analytics.range_too_large"));
        }
        let mut tx = db::tenant(&self.db, tenant).await?;
        let counts =
            repo::reports::retention(&mut tx, tenant, range, &start, &ret, i32::try_from(weeks).unwrap_or(1)).await?;
        db::commit(tx).await?;
        Ok((retention::cohorts(counts, weeks), weeks))
    }

    /// Daily over 30-day active users per UTC day.
    #[tracing::instrument(skip_all)]
    pub async fn stickiness(
        &self,
        tenant: TenantId,
        range: Range,
        event: &str,
    ) -> Result<Vec<retention::Stickiness>, Error> {
        let name = filter_name(event)?;
        if range.to - range.from > chrono::TimeDelta::days(retention::MAX_STICKINESS_DAYS) {
            return Err(Error::new(nexus_kernel::ErrorKind::Unprocessable, "analytics.range_too_large"));
        }
        let mut tx = db::tenant(&self.db, tenant).await?;
        let rows = repo::reports::stickiness(&mut tx, tenant, range, name.as_deref()).await?;
        db::commit(tx).await?;
        Ok(retention::stickiness(rows))
    }

    /// The audit trail, newest first, keyset-paged.
    #[tracing::instrument(skip_all)]
    pub async fn audit(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        range: Range,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, Error> {
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.db, tenant).await?;
        let entries = repo::audit::search(&mut tx, tenant, filter, range, &keyset).await?;
        db::commit(tx).await?;
        Ok(entries)
    }
}
