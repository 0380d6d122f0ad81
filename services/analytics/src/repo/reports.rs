//! Report queries over one workspace's `analytics_events`. Buckets are computed by Postgres in
//! the requested IANA zone (`date_trunc(…, occurred_at AT TIME ZONE tz)`), so a local day is a
//! local day across DST changes.

use chrono::{DateTime, NaiveDateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

use crate::domain::Interval;
use crate::domain::report::{Breakdown, BreakdownBy, Bucket, FeatureUsage, Range, RevenueSum, UtmDimension};

/// Binds the parameters every bucketed report shares: `$1` tenant, `$2` from, `$3` zone, `$4`
/// interval, `$5` to, `$6` the report's filter.
fn bucketed<'q, O>(
    sql: &'static str,
    tenant: TenantId,
    range: Range,
    interval: Interval,
    tz: &'q str,
    filter: Option<&'q str>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    sqlx::query_as(sql)
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(tz)
        .bind(interval.as_str())
        .bind(range.to)
        .bind(filter)
}

/// A page of a ranked breakdown: `fetch` rows from `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    pub offset: i64,
    pub fetch: i64,
}

pub async fn time_series(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    interval: Interval,
    tz: &str,
    name: Option<&str>,
) -> Result<Vec<Bucket>, Error> {
    let rows: Vec<(NaiveDateTime, DateTime<Utc>, i64, i64)> = bucketed(
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
        tenant,
        range,
        interval,
        tz,
        name,
    )
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(local_start, start, events, unique_users)| Bucket { start, local_start, events, unique_users })
        .collect())
}

/// The ranked rows of a breakdown, filtered by event name when `name` is given.
pub async fn breakdown(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    by: BreakdownBy<'_>,
    name: Option<&str>,
    slice: Slice,
) -> Result<Vec<Breakdown>, Error> {
    // The key comes from this fixed list, never from the request text; a property name is `$4`.
    let (key_sql, property) = match by {
        BreakdownBy::EventName => ("name", None),
        BreakdownBy::Property(p) => ("coalesce(properties ->> $4, '')", Some(p)),
        BreakdownBy::Utm(UtmDimension::Source) => ("coalesce(utm_source, '')", None),
        BreakdownBy::Utm(UtmDimension::Medium) => ("coalesce(utm_medium, '')", None),
        BreakdownBy::Utm(UtmDimension::Campaign) => ("coalesce(utm_campaign, '')", None),
        BreakdownBy::Utm(UtmDimension::Term) => ("coalesce(utm_term, '')", None),
        BreakdownBy::Utm(UtmDimension::Content) => ("coalesce(utm_content, '')", None),
    };
    // Parameters after the range: the property (if the key needs one), the name, the slice.
    let p = if property.is_some() { 5 } else { 4 };
    let sql = format!(
        "SELECT {key_sql} AS key, count(*) AS events, \
                count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_users \
         FROM analytics_events \
         WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND (${p}::text IS NULL OR name = ${p}) \
         GROUP BY 1 ORDER BY events DESC, key LIMIT ${l} OFFSET ${o}",
        l = p + 1,
        o = p + 2,
    );
    let mut q = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(range.to);
    if let Some(k) = property {
        q = q.bind(k);
    }
    let rows = q.bind(name).bind(slice.fetch).bind(slice.offset).fetch_all(conn).await.db()?;
    Ok(rows.into_iter().map(|(key, events, unique_users)| Breakdown { key, events, unique_users }).collect())
}

/// The funnel by one self-join per step (the form reports had before [`funnel_paths`]; kept as
/// the reference the tests and the benchmark compare with). Users (distinct) who reached each
/// step: the steps in order (each strictly after the previous)
/// with every step no later than `window_seconds` after their step 1, step 1 in the range.
pub async fn funnel_counts(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    steps: &[String],
    window_seconds: u64,
) -> Result<Vec<i64>, Error> {
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
    let mut q = sqlx::query_scalar::<_, Vec<i64>>(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(range.to)
        .bind(steps)
        .bind(window_seconds as f64);
    for s in steps {
        q = q.bind(s);
    }
    q.fetch_one(conn).await.db()
}

/// Each user's step events in time order (names and times), for [`crate::domain::funnel`]: one
/// scan of the steps' events, grouped by user.
pub async fn funnel_paths(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    steps: &[String],
    window_seconds: u64,
) -> Result<Vec<(Vec<String>, Vec<DateTime<Utc>>)>, Error> {
    sqlx::query_as(
        "SELECT array_agg(name ORDER BY occurred_at), array_agg(occurred_at ORDER BY occurred_at) \
         FROM analytics_events \
         WHERE tenant_id = $1 AND name = ANY($4) AND occurred_at >= $2 \
           AND occurred_at <= $3 + make_interval(secs => $5) AND coalesce(user_id, anonymous_id) IS NOT NULL \
         GROUP BY coalesce(user_id, anonymous_id)",
    )
    .bind(tenant.as_uuid())
    .bind(range.from)
    .bind(range.to)
    .bind(steps)
    .bind(window_seconds as f64)
    .fetch_all(conn)
    .await
    .db()
}

/// Revenue per local bucket and currency, in bucket then currency order.
pub async fn revenue(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    interval: Interval,
    tz: &str,
    currency: Option<&str>,
) -> Result<Vec<RevenueSum>, Error> {
    let rows: Vec<(NaiveDateTime, DateTime<Utc>, String, i64, i64)> = bucketed(
        "SELECT local_start, local_start AT TIME ZONE $3, currency, total, events FROM ( \
           SELECT date_trunc($4, occurred_at AT TIME ZONE $3) AS local_start, currency, \
                  sum(revenue_minor)::bigint AS total, count(*) AS events \
           FROM analytics_events \
           WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $5 AND revenue_minor IS NOT NULL \
             AND ($6::text IS NULL OR currency = $6) \
           GROUP BY 1, 2) r ORDER BY 1, 3",
        tenant,
        range,
        interval,
        tz,
        currency,
    )
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(local_start, start, currency, total, events)| RevenueSum { local_start, start, currency, total, events })
        .collect())
}

/// Metered actions (credits charged) per plan the workspace was on at the time.
pub async fn feature_usage(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
) -> Result<Vec<FeatureUsage>, Error> {
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
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
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(plan, feature, uses, credits, unique_users)| FeatureUsage { plan, feature, uses, credits, unique_users })
        .collect())
}

/// Retention counts: (cohort week, weeks since, users), weeks since −1 being the cohort's size.
/// A user's cohort is the UTC (Monday) week of their first `start` event ever, if that falls in
/// the range; they count in week k when they did `ret` in the k-th week after it.
pub async fn retention(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    start: &str,
    ret: &str,
    weeks: i32,
) -> Result<Vec<(chrono::NaiveDate, i32, i64)>, Error> {
    sqlx::query_as(
        "WITH firsts AS ( \
           SELECT coalesce(user_id, anonymous_id) AS u, min(occurred_at) AS first FROM analytics_events \
           WHERE tenant_id = $1 AND name = $4 AND occurred_at < $3 AND coalesce(user_id, anonymous_id) IS NOT NULL \
           GROUP BY 1), \
         cohort AS (SELECT u, date_trunc('week', first AT TIME ZONE 'UTC') AS wk FROM firsts WHERE first >= $2), \
         returns AS ( \
           SELECT DISTINCT coalesce(user_id, anonymous_id) AS u, date_trunc('week', occurred_at AT TIME ZONE 'UTC') AS wk \
           FROM analytics_events \
           WHERE tenant_id = $1 AND name = $5 AND coalesce(user_id, anonymous_id) IS NOT NULL \
             AND occurred_at >= date_trunc('week', $2 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
             AND occurred_at < $3 + make_interval(weeks => $6)) \
         SELECT c.wk::date, (extract(epoch FROM r.wk - c.wk) / 604800)::int, count(*) \
         FROM cohort c JOIN returns r ON r.u = c.u AND r.wk >= c.wk AND r.wk < c.wk + make_interval(weeks => $6) \
         GROUP BY 1, 2 \
         UNION ALL SELECT wk::date, -1, count(*) FROM cohort GROUP BY 1",
    )
    .bind(tenant.as_uuid())
    .bind(range.from)
    .bind(range.to)
    .bind(start)
    .bind(ret)
    .bind(weeks)
    .fetch_all(conn)
    .await
    .db()
}

/// Per UTC day of the range: distinct active users that day and in the 30 days ending with it.
pub async fn stickiness(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    name: Option<&str>,
) -> Result<Vec<(chrono::NaiveDate, i64, i64)>, Error> {
    sqlx::query_as(
        "WITH active AS ( \
           SELECT DISTINCT coalesce(user_id, anonymous_id) AS u, (occurred_at AT TIME ZONE 'UTC')::date AS d \
           FROM analytics_events \
           WHERE tenant_id = $1 AND occurred_at >= date_trunc('day', $2 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '29 days' \
             AND occurred_at < $3 AND ($4::text IS NULL OR name = $4) AND coalesce(user_id, anonymous_id) IS NOT NULL), \
         days AS ( \
           SELECT generate_series(($2 AT TIME ZONE 'UTC')::date, (($3 - interval '1 microsecond') AT TIME ZONE 'UTC')::date, \
                                  interval '1 day')::date AS d) \
         SELECT days.d, count(DISTINCT a.u) FILTER (WHERE a.d = days.d), count(DISTINCT a.u) \
         FROM days LEFT JOIN active a ON a.d BETWEEN days.d - 29 AND days.d GROUP BY 1 ORDER BY 1",
    )
    .bind(tenant.as_uuid())
    .bind(range.from)
    .bind(range.to)
    .bind(name)
    .fetch_all(conn)
    .await
    .db()
}
