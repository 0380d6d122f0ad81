//! `analytics_rollups`: partial rows appended by the writer, read back by reports (bucketed in
//! the report's zone by Postgres), folded by compaction, purged with the events they count.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::hll::Sketch;
use crate::domain::report::Range;
use crate::domain::rollup::{FEATURE_EVENT, Feature, Grain, Key, Part, RawFact, Slice, Totals};

fn users_of(bytes: &[u8]) -> Result<Sketch, Error> {
    Sketch::from_bytes(bytes).ok_or_else(|| Error::internal("analytics.rollup_corrupt"))
}

pub async fn append(conn: &mut PgConnection, rows: &BTreeMap<Key, Totals>) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let (mut tenant, mut grain, mut bucket, mut name, mut currency, mut plan, mut feature) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut events, mut revenue, mut credits, mut users) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (k, t) in rows {
        tenant.push(k.tenant);
        grain.push(k.grain.as_str());
        bucket.push(k.bucket);
        name.push(k.name.as_str());
        currency.push(k.currency.as_str());
        plan.push(k.plan.as_str());
        feature.push(k.feature.as_str());
        events.push(t.events);
        revenue.push(t.revenue_minor);
        credits.push(t.credits);
        users.push(t.users.to_bytes());
    }
    sqlx::query(
        "INSERT INTO analytics_rollups (tenant_id, grain, bucket, name, currency, plan, feature, events, \
                                        revenue_minor, credits, users) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], \
                              $7::text[], $8::int8[], $9::int8[], $10::numeric[], $11::bytea[])",
    )
    .bind(tenant)
    .bind(grain)
    .bind(bucket)
    .bind(name)
    .bind(currency)
    .bind(plan)
    .bind(feature)
    .bind(events)
    .bind(revenue)
    .bind(credits)
    .bind(users)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The condition of a slice; values are parameter `$7`.
fn slice_sql(slice: Slice<'_>) -> (&'static str, Option<&str>) {
    match slice {
        Slice::All => ("name = ''", None),
        Slice::Names(n) => ("name <> '' AND plan = '' AND ($7::text IS NULL OR name = $7)", n),
        Slice::Revenue(c) => ("name <> '' AND plan = '' AND currency <> '' AND ($7::text IS NULL OR currency = $7)", c),
        Slice::Features => ("name = $7 AND plan <> ''", Some(FEATURE_EVENT)),
    }
}

type PartRow = (NaiveDateTime, String, String, String, String, i64, i64, Decimal, Vec<u8>);

fn part(r: PartRow) -> Result<Part, Error> {
    let (local_start, name, currency, plan, feature, events, revenue_minor, credits, users) = r;
    Ok(Part {
        local_start,
        name,
        currency,
        plan,
        feature,
        totals: Totals { events, revenue_minor, credits, users: users_of(&users)? },
    })
}

/// Rollup rows of `grain` whose bucket lies in `[range)`, each with its bucket cut by `interval`
/// in zone `tz`.
pub async fn read(
    conn: &mut PgConnection,
    tenant: TenantId,
    grain: Grain,
    range: Range,
    interval: &str,
    tz: &str,
    slice: Slice<'_>,
) -> Result<Vec<Part>, Error> {
    let (cond, value) = slice_sql(slice);
    let sql = format!(
        "SELECT date_trunc($4, bucket AT TIME ZONE $5), name, currency, plan, feature, events, revenue_minor, \
                credits, users \
         FROM analytics_rollups \
         WHERE tenant_id = $1 AND grain = $6 AND bucket >= $2 AND bucket < $3 AND {cond}"
    );
    let rows: Vec<PartRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(range.from)
        .bind(range.to)
        .bind(interval)
        .bind(tz)
        .bind(grain.as_str())
        .bind(value)
        .fetch_all(conn)
        .await
        .db()?;
    rows.into_iter().map(part).collect()
}

type RawRow =
    (NaiveDateTime, String, Option<String>, Option<String>, Option<i64>, Option<String>, Option<serde_json::Value>);

/// The events of `[range)` (the raw edges of a rollup-backed report: at most a few hours).
pub async fn raw_facts(
    conn: &mut PgConnection,
    tenant: TenantId,
    range: Range,
    interval: &str,
    tz: &str,
) -> Result<Vec<RawFact>, Error> {
    let rows: Vec<RawRow> = sqlx::query_as(
        "SELECT date_trunc($4, occurred_at AT TIME ZONE $5), name, user_id, anonymous_id, revenue_minor, currency, \
                CASE WHEN name = $6 THEN properties END \
         FROM analytics_events WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(tenant.as_uuid())
    .bind(range.from)
    .bind(range.to)
    .bind(interval)
    .bind(tz)
    .bind(FEATURE_EVENT)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(local_start, name, user_id, anonymous_id, rm, cur, props)| RawFact {
            local_start,
            name,
            user_id,
            anonymous_id,
            revenue: rm.zip(cur),
            feature: props.as_ref().map(Feature::from_properties),
        })
        .collect())
}

/// Whether every hour of `[range)` starts on a whole local hour in `tz` (then hourly rollups can
/// be cut into its local buckets), and whether `tz` is UTC throughout (then daily ones too).
pub async fn zone_fit(conn: &mut PgConnection, tz: &str, range: Range) -> Result<(bool, bool), Error> {
    sqlx::query_as(
        "SELECT coalesce(bool_and(extract(minute FROM h AT TIME ZONE $1) = 0 \
                                  AND extract(second FROM h AT TIME ZONE $1) = 0), true), \
                coalesce(bool_and((h AT TIME ZONE $1) = (h AT TIME ZONE 'UTC')), true) \
         FROM generate_series(date_trunc('hour', $2::timestamptz), $3::timestamptz, interval '1 hour') h",
    )
    .bind(tz)
    .bind(range.from)
    .bind(range.to)
    .fetch_one(conn)
    .await
    .db()
}

/// Every bucket of `[range)` cut by `interval` in `tz`: local start and its instant.
pub async fn buckets(
    conn: &mut PgConnection,
    range: Range,
    interval: &str,
    tz: &str,
) -> Result<Vec<(NaiveDateTime, DateTime<Utc>)>, Error> {
    sqlx::query_as(
        "SELECT b, b AT TIME ZONE $3 FROM generate_series(date_trunc($4, $1 AT TIME ZONE $3), \
                ($2::timestamptz - interval '1 microsecond') AT TIME ZONE $3, ('1 ' || $4)::interval) b ORDER BY 1",
    )
    .bind(range.from)
    .bind(range.to)
    .bind(tz)
    .bind(interval)
    .fetch_all(conn)
    .await
    .db()
}

/// Folds the partial rows of up to `limit` keys whose bucket ended before `before` (any
/// workspace) into one row each; how many keys were folded. Rows appended meanwhile are not
/// seen by the DELETE and stay as they are.
pub async fn compact(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> Result<usize, Error> {
    type Row = (Uuid, String, DateTime<Utc>, String, String, String, String, i64, i64, Decimal, Vec<u8>);
    let rows: Vec<Row> = sqlx::query_as(
        "WITH keys AS ( \
           SELECT tenant_id, grain, bucket, name, currency, plan, feature FROM analytics_rollups \
           WHERE bucket < $1 - CASE grain WHEN 'hour' THEN interval '1 hour' ELSE interval '1 day' END \
           GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING count(*) > 1 LIMIT $2) \
         DELETE FROM analytics_rollups r USING keys k \
         WHERE r.tenant_id = k.tenant_id AND r.grain = k.grain AND r.bucket = k.bucket AND r.name = k.name \
           AND r.currency = k.currency AND r.plan = k.plan AND r.feature = k.feature \
         RETURNING r.tenant_id, r.grain, r.bucket, r.name, r.currency, r.plan, r.feature, r.events, \
                   r.revenue_minor, r.credits, r.users",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let mut folded: BTreeMap<Key, Totals> = BTreeMap::new();
    for (tenant, grain, bucket, name, currency, plan, feature, events, revenue_minor, credits, users) in rows {
        let grain = if grain == "day" { Grain::Day } else { Grain::Hour };
        let t = Totals { events, revenue_minor, credits, users: users_of(&users)? };
        folded.entry(Key { tenant, grain, bucket, name, currency, plan, feature }).or_default().add(&t);
    }
    let n = folded.len();
    append(conn, &folded).await?;
    Ok(n)
}

/// Deletes at most `chunk` of the workspace's rollup rows whose bucket ended more than `days`
/// ago (a bucket that straddles the cutoff stays until it is wholly older).
pub async fn purge_chunk(conn: &mut PgConnection, tenant: TenantId, days: i32, chunk: i64) -> Result<u64, Error> {
    Ok(sqlx::query(
        "DELETE FROM analytics_rollups WHERE ctid IN ( \
           SELECT ctid FROM analytics_rollups \
           WHERE tenant_id = $1 AND bucket + CASE grain WHEN 'hour' THEN interval '1 hour' ELSE interval '1 day' END \
                 < now() - make_interval(days => $2) LIMIT $3)",
    )
    .bind(tenant.as_uuid())
    .bind(days)
    .bind(chunk)
    .execute(conn)
    .await
    .db()?
    .rows_affected())
}
