//! Reports over one workspace's events, inside tenant transactions (RLS confines every query to
//! the caller's workspace even where a filter were forgotten). Buckets are computed by Postgres
//! in the requested IANA zone (`date_trunc(…, occurred_at AT TIME ZONE tz)`), so a local day is a
//! local day across DST changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use nexus_kernel::{Currency, Cursor, Error, ErrorKind, Money, Page, PageRequest, TenantId};
use nexus_platform::db::begin_tenant;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Interval, MAX_NAME};
use crate::store::{Store, db};

fn unprocessable(code: &'static str) -> Error {
    Error::new(ErrorKind::Unprocessable, code)
}

#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// RFC 3339 bounds; `to` defaults to now and `from` to `default_days` before `to`.
pub fn parse_range(from: &str, to: &str, now: DateTime<Utc>, default_days: i64) -> Result<Range, Error> {
    let parse = |s: &str, field: &'static str| -> Result<Option<DateTime<Utc>>, Error> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        DateTime::parse_from_rfc3339(s.trim()).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| {
            unprocessable("analytics.invalid_range").with_param("field", field).with_violation(field, "invalid")
        })
    };
    let to = parse(to, "to")?.unwrap_or(now);
    let from = parse(from, "from")?.unwrap_or(to - chrono::Duration::days(default_days));
    if from >= to {
        return Err(unprocessable("analytics.invalid_range")
            .with_param("field", "from")
            .with_violation("from", "after_to"));
    }
    if to - from > chrono::Duration::days(3660) {
        return Err(unprocessable("analytics.range_too_large"));
    }
    Ok(Range { from, to })
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub local_start: NaiveDateTime,
    pub events: i64,
    pub unique_users: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BreakdownRow {
    pub key: String,
    pub events: i64,
    pub unique_users: i64,
}

#[derive(Debug, Clone)]
pub struct FunnelStep {
    pub name: String,
    pub users: i64,
    pub conversion_from_start: f64,
    pub conversion_from_previous: f64,
    pub drop_off: i64,
}

#[derive(Debug, Clone)]
pub struct RevenuePoint {
    pub start: DateTime<Utc>,
    pub local_start: NaiveDateTime,
    pub total: Money,
    pub events: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeatureUsageRow {
    pub plan: String,
    pub feature: String,
    pub uses: i64,
    pub credits: i64,
    pub unique_users: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub service: String,
    pub resource_type: String,
    pub resource_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub ip: Option<String>,
    pub request_id: String,
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

/// Offset cursor of ranked breakdowns (their order is by count, which has no stable key).
#[derive(Serialize, Deserialize)]
struct OffsetKey {
    o: u64,
}

#[derive(Serialize, Deserialize)]
struct AuditKey {
    at: DateTime<Utc>,
    id: Uuid,
}

/// Most buckets one time series may have.
pub const MAX_BUCKETS: i64 = 2000;
pub const MAX_STEPS: usize = 10;
pub const MAX_WINDOW_DAYS: u64 = 90;

pub struct Reports {
    pub store: Arc<Store>,
}

fn filter_name(name: &str) -> Result<Option<String>, Error> {
    let n = name.trim();
    if n.is_empty() {
        return Ok(None);
    }
    if n.chars().count() > MAX_NAME {
        return Err(unprocessable("analytics.invalid_event_name").with_param("max", MAX_NAME.to_string()));
    }
    Ok(Some(n.to_owned()))
}

fn bucket_count_ok(range: &Range, interval: Interval) -> Result<(), Error> {
    let n = (range.to - range.from).num_seconds() / interval.approx().num_seconds().max(1);
    if n > MAX_BUCKETS {
        return Err(unprocessable("analytics.range_too_large"));
    }
    Ok(())
}

fn offset_of(page: &PageRequest) -> Result<u64, Error> {
    Ok(page.decode_cursor::<OffsetKey>()?.map_or(0, |k| k.o))
}

fn ranked_page(rows: Vec<BreakdownRow>, page: &PageRequest, offset: u64) -> Page<BreakdownRow> {
    let limit = page.limit;
    let mut p = Page::from_overfetch(rows, limit, |_| 0u8);
    if p.next_cursor.is_some() {
        p.next_cursor = Some(Cursor::encode(&OffsetKey { o: offset + u64::from(limit) }));
    }
    p
}

impl Reports {
    /// The zone to report in: the requested one (validated) or the workspace's.
    pub async fn zone(&self, tenant: TenantId, requested: &str) -> Result<String, Error> {
        if requested.trim().is_empty() {
            return Ok(self.store.settings(tenant).await?.time_zone);
        }
        self.store.check_zone(requested.trim()).await?;
        Ok(requested.trim().to_owned())
    }

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
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let rows: Vec<(NaiveDateTime, DateTime<Utc>, i64, i64)> = sqlx::query_as(
            "WITH b AS ( \
               SELECT generate_series(date_trunc($4, $2 AT TIME ZONE $3), \
                                      ($5::timestamptz - interval '1 microsecond') AT TIME ZONE $3, \
                                      ('1 ' || $4)::interval) AS local_start), \
             e AS ( \
               SELECT date_trunc($4, occurred_at AT TIME ZONE $3) AS local_start, count(*) AS events, \
                      count(DISTINCT coalesce(user_id, anonymous_id)) AS users \
               FROM analytics_events \
               WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $5 AND ($6::text IS NULL OR name = $6) \
               GROUP BY 1) \
             SELECT b.local_start, b.local_start AT TIME ZONE $3, coalesce(e.events, 0)::bigint, \
                    coalesce(e.users, 0)::bigint \
             FROM b LEFT JOIN e USING (local_start) ORDER BY 1",
        )
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(tz)
        .bind(interval.as_str())
        .bind(range.to)
        .bind(name)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(local_start, start, events, unique_users)| Bucket { start, local_start, events, unique_users })
            .collect())
    }

    pub async fn top_events(
        &self,
        tenant: TenantId,
        range: Range,
        page: &PageRequest,
    ) -> Result<Page<BreakdownRow>, Error> {
        let offset = offset_of(page)?;
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let rows: Vec<BreakdownRow> = sqlx::query_as(
            "SELECT name AS key, count(*) AS events, count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_users \
             FROM analytics_events WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
             GROUP BY name ORDER BY events DESC, key LIMIT $4 OFFSET $5",
        )
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(range.to)
        .bind(i64::from(page.limit) + 1)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(ranked_page(rows, page, offset))
    }

    pub async fn property_breakdown(
        &self,
        tenant: TenantId,
        range: Range,
        event: &str,
        property: &str,
        page: &PageRequest,
    ) -> Result<Page<BreakdownRow>, Error> {
        let property = property.trim();
        if property.is_empty() || property.chars().count() > 100 {
            return Err(unprocessable("analytics.invalid_property").with_param("max", "100"));
        }
        let name = filter_name(event)?;
        let offset = offset_of(page)?;
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let rows: Vec<BreakdownRow> = sqlx::query_as(
            "SELECT coalesce(properties ->> $4, '') AS key, count(*) AS events, \
                    count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_users \
             FROM analytics_events \
             WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ($5::text IS NULL OR name = $5) \
             GROUP BY 1 ORDER BY events DESC, key LIMIT $6 OFFSET $7",
        )
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(range.to)
        .bind(property)
        .bind(name)
        .bind(i64::from(page.limit) + 1)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(ranked_page(rows, page, offset))
    }

    pub async fn utm_breakdown(
        &self,
        tenant: TenantId,
        range: Range,
        dimension: &str,
        event: &str,
        page: &PageRequest,
    ) -> Result<Page<BreakdownRow>, Error> {
        // The column comes from this fixed list, never from the request text.
        let column = match dimension {
            "source" | "" => "utm_source",
            "medium" => "utm_medium",
            "campaign" => "utm_campaign",
            "term" => "utm_term",
            "content" => "utm_content",
            other => {
                return Err(unprocessable("analytics.invalid_dimension").with_param("dimension", other.to_owned()));
            }
        };
        let name = filter_name(event)?;
        let offset = offset_of(page)?;
        let sql = format!(
            "SELECT coalesce({column}, '') AS key, count(*) AS events, \
                    count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_users \
             FROM analytics_events \
             WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ($4::text IS NULL OR name = $4) \
             GROUP BY 1 ORDER BY events DESC, key LIMIT $5 OFFSET $6"
        );
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let rows: Vec<BreakdownRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_uuid())
            .bind(range.from)
            .bind(range.to)
            .bind(name)
            .bind(i64::from(page.limit) + 1)
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(ranked_page(rows, page, offset))
    }

    /// Users who did the steps in order (each strictly after the previous) with every step no
    /// later than `window` after their step 1; step 1 must fall in the range.
    pub async fn funnel(
        &self,
        tenant: TenantId,
        range: Range,
        steps: &[String],
        window_seconds: u64,
    ) -> Result<Vec<FunnelStep>, Error> {
        if steps.len() < 2 || steps.len() > MAX_STEPS {
            return Err(unprocessable("analytics.invalid_funnel_steps").with_param("max", MAX_STEPS.to_string()));
        }
        let steps: Vec<String> = steps.iter().map(|s| s.trim().to_owned()).collect();
        if steps.iter().any(|s| s.is_empty() || s.chars().count() > MAX_NAME) {
            return Err(unprocessable("analytics.invalid_funnel_steps").with_param("max", MAX_STEPS.to_string()));
        }
        if window_seconds == 0 || window_seconds > MAX_WINDOW_DAYS * 86_400 {
            return Err(unprocessable("analytics.invalid_window").with_param("days", MAX_WINDOW_DAYS.to_string()));
        }
        // One CTE per step; only the shape is built here, every value is a bind parameter.
        let mut sql = String::from(
            "WITH e AS ( \
               SELECT coalesce(user_id, anonymous_id) AS u, name, occurred_at AS t FROM analytics_events \
               WHERE tenant_id = $1 AND name = ANY($4) AND occurred_at >= $2 \
                 AND occurred_at <= $3 + make_interval(secs => $5) \
                 AND coalesce(user_id, anonymous_id) IS NOT NULL), \
             s1 AS (SELECT u, t AS t1, t AS tl FROM e WHERE name = $6 AND t < $3)",
        );
        for k in 2..=steps.len() {
            sql.push_str(&format!(
                ", s{k} AS (SELECT s.u, s.t1, min(e.t) AS tl FROM s{p} s JOIN e ON e.u = s.u AND e.name = ${param} \
                   AND e.t > s.tl AND e.t <= s.t1 + make_interval(secs => $5) GROUP BY s.u, s.t1)",
                p = k - 1,
                param = k + 5,
            ));
        }
        sql.push_str(" SELECT ARRAY[");
        sql.push_str(
            &(1..=steps.len()).map(|k| format!("(SELECT count(DISTINCT u) FROM s{k})")).collect::<Vec<_>>().join(", "),
        );
        sql.push_str("]::bigint[]");
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let mut q = sqlx::query_scalar::<_, Vec<i64>>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_uuid())
            .bind(range.from)
            .bind(range.to)
            .bind(&steps)
            .bind(window_seconds as f64);
        for s in &steps {
            q = q.bind(s);
        }
        let counts = q.fetch_one(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        let first = counts.first().copied().unwrap_or(0);
        let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Ok(steps
            .into_iter()
            .zip(&counts)
            .enumerate()
            .map(|(i, (name, &users))| {
                let prev = if i == 0 { users } else { counts[i - 1] };
                FunnelStep {
                    name,
                    users,
                    conversion_from_start: ratio(users, first),
                    conversion_from_previous: ratio(users, prev),
                    drop_off: prev - users,
                }
            })
            .collect())
    }

    /// Revenue per bucket and currency, plus totals per currency (integer minor units).
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
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let rows: Vec<(NaiveDateTime, DateTime<Utc>, String, i64, i64)> = sqlx::query_as(
            "SELECT local_start, local_start AT TIME ZONE $3, currency, total, events FROM ( \
               SELECT date_trunc($4, occurred_at AT TIME ZONE $3) AS local_start, currency, \
                      sum(revenue_minor)::bigint AS total, count(*) AS events \
               FROM analytics_events \
               WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $5 AND revenue_minor IS NOT NULL \
                 AND ($6::text IS NULL OR currency = $6) \
               GROUP BY 1, 2) r ORDER BY 1, 3",
        )
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(tz)
        .bind(interval.as_str())
        .bind(range.to)
        .bind(currency.map(|c| c.code().to_owned()))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut totals: BTreeMap<String, Money> = BTreeMap::new();
        let mut points = Vec::with_capacity(rows.len());
        for (local_start, start, code, amount, events) in rows {
            // Only codes the tracker accepted are stored; anything else is skipped, not guessed.
            let Ok(c) = code.parse::<Currency>() else { continue };
            let m = Money::new(amount, c);
            let t = totals.entry(code).or_insert(Money::new(0, c));
            *t = t.checked_add(m)?;
            points.push(RevenuePoint { start, local_start, total: m, events });
        }
        Ok((points, totals.into_values().collect()))
    }

    /// Metered actions (credits charged) per plan the workspace was on at the time.
    pub async fn feature_usage(&self, tenant: TenantId, range: Range) -> Result<Vec<FeatureUsageRow>, Error> {
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let rows: Vec<FeatureUsageRow> = sqlx::query_as(
            "SELECT coalesce(properties ->> 'plan', 'unknown') AS plan, coalesce(properties ->> 'action', '') AS feature, \
                    count(*) AS uses, \
                    coalesce(sum(CASE WHEN jsonb_typeof(properties -> 'credits') = 'number' \
                                      THEN (properties ->> 'credits')::numeric ELSE 0 END), 0)::bigint AS credits, \
                    count(DISTINCT user_id) AS unique_users \
             FROM analytics_events \
             WHERE tenant_id = $1 AND name = 'subscriptions.credits.charged' AND occurred_at >= $2 AND occurred_at < $3 \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(range.to)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows)
    }

    /// The audit trail, newest first, keyset-paged.
    pub async fn audit(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        range: Range,
        page: &PageRequest,
    ) -> Result<Page<AuditRow>, Error> {
        let after = page.decode_cursor::<AuditKey>()?;
        let mut tx = begin_tenant(&self.store.pool, tenant).await.map_err(db)?;
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor, action, service, resource_type, resource_id, before::text AS before, \
                    after::text AS after, host(ip) AS ip, request_id \
             FROM system_logs \
             WHERE tenant_id = $1 AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR resource_type = $3) \
               AND ($4::text IS NULL OR resource_id = $4) AND at >= $5 AND at < $6 \
               AND ($7::timestamptz IS NULL OR (at, id) < ($7, $8)) \
             ORDER BY at DESC, id DESC LIMIT $9",
        )
        .bind(tenant.as_uuid())
        .bind(&filter.actor)
        .bind(&filter.resource_type)
        .bind(&filter.resource_id)
        .bind(range.from)
        .bind(range.to)
        .bind(after.as_ref().map(|k| k.at))
        .bind(after.as_ref().map(|k| k.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Page::from_overfetch(rows, page.limit, |r| AuditKey { at: r.at, id: r.id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_and_are_checked() {
        let now = Utc::now();
        let r = parse_range("", "", now, 30).unwrap();
        assert_eq!(r.to, now);
        assert_eq!(r.to - r.from, chrono::Duration::days(30));
        assert_eq!(
            parse_range("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", now, 30).unwrap_err().code(),
            "analytics.invalid_range"
        );
        assert_eq!(parse_range("yesterday", "", now, 30).unwrap_err().code(), "analytics.invalid_range");
        assert_eq!(
            parse_range("2000-01-01T00:00:00Z", "2026-01-01T00:00:00Z", now, 30).unwrap_err().code(),
            "analytics.range_too_large"
        );
        let r = parse_range("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z", now, 30).unwrap();
        assert!(bucket_count_ok(&r, Interval::Day).is_ok());
        assert!(bucket_count_ok(&r, Interval::Hour).is_err());
    }
}
