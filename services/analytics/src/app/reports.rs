//! Reports over one workspace's events, inside tenant transactions (RLS confines every query to
//! the caller's workspace even where a filter were forgotten).

use nexus_kernel::{Currency, Cursor, Error, Money, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use serde::{Deserialize, Serialize};

use super::Analytics;
use crate::domain::Interval;
use crate::domain::report::{
    AuditEntry, AuditFilter, Breakdown, BreakdownBy, Bucket, FeatureUsage, FunnelStep, Range, RevenuePoint,
    UtmDimension, bucket_count_ok, check_funnel, check_property, filter_name, funnel_steps,
};
use crate::repo;
use crate::repo::reports::Slice;

/// Offset cursor of ranked breakdowns (their order is by count, which has no stable key).
#[derive(Serialize, Deserialize)]
struct OffsetKey {
    o: u64,
}

fn slice_of(page: &PageRequest) -> Result<(u64, Slice), Error> {
    let offset = page.decode_cursor::<OffsetKey>()?.map_or(0, |k| k.o);
    Ok((offset, Slice { offset: i64::try_from(offset).unwrap_or(i64::MAX), fetch: i64::from(page.limit) + 1 }))
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
        let buckets = repo::reports::time_series(&mut tx, tenant, range, interval, tz, name.as_deref()).await?;
        db::commit(tx).await?;
        Ok(buckets)
    }

    #[tracing::instrument(skip_all)]
    pub async fn top_events(
        &self,
        tenant: TenantId,
        range: Range,
        page: &PageRequest,
    ) -> Result<Page<Breakdown>, Error> {
        self.ranked(tenant, range, BreakdownBy::EventName, None, page).await
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
        let counts = repo::reports::funnel_counts(&mut tx, tenant, range, &steps, window_seconds).await?;
        db::commit(tx).await?;
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
        let sums = repo::reports::revenue(&mut tx, tenant, range, interval, tz, code).await?;
        db::commit(tx).await?;
        crate::domain::report::revenue(sums)
    }

    /// Metered actions (credits charged) per plan the workspace was on at the time.
    #[tracing::instrument(skip_all)]
    pub async fn feature_usage(&self, tenant: TenantId, range: Range) -> Result<Vec<FeatureUsage>, Error> {
        let mut tx = db::tenant(&self.db, tenant).await?;
        let rows = repo::reports::feature_usage(&mut tx, tenant, range).await?;
        db::commit(tx).await?;
        Ok(rows)
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
