//! Churn risk: subjects' features from the stored events, the models, scores and the claim on
//! each population (`churn_models`, `churn_scores`, `churn_jobs`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::churn::{Features, Population};
use crate::domain::rollup::FEATURE_EVENT as FEATURE_CREDITS_EVENT;
use crate::domain::workspace::SYSTEM_TENANT;

/// Whose activity is counted: one workspace's end users (by user id), or every workspace.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Customers(TenantId),
    Platform,
}

/// What the feature query counts as which signal.
pub struct Signals<'a> {
    pub failed_payment_events: &'a [String],
    pub support_event_prefixes: &'a [String],
}

/// A subject's features over `[from, cut)` and whether it had no activity in `[cut, until)`
/// (with `until == cut`, every subject counts as churned: scoring ignores it).
pub struct SubjectRow {
    pub subject: String,
    pub features: Features,
    pub churned: bool,
}

type FeatureRow = (String, f64, f64, f64, f64, f64, f64, f64, f64, bool);

fn like_prefix(p: &str) -> String {
    let escaped = p.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("{escaped}%")
}

/// Features of every subject active in `[from, cut)`, and its label from `[cut, until)`. Events
/// analytics emitted itself (its own churn events) are not activity.
pub async fn subjects(
    conn: &mut PgConnection,
    scope: Scope,
    from: DateTime<Utc>,
    cut: DateTime<Utc>,
    until: DateTime<Utc>,
    signals: &Signals<'_>,
) -> Result<Vec<SubjectRow>, Error> {
    // Two shapes rather than one with an optional tenant, so each gets a plan that uses the
    // (tenant_id, occurred_at) index.
    let (key, filter) = match scope {
        Scope::Customers(_) => ("user_id", "tenant_id = $1 AND user_id IS NOT NULL"),
        Scope::Platform => ("tenant_id::text", "tenant_id <> $1"),
    };
    let tenant = match scope {
        Scope::Customers(t) => t.as_uuid(),
        Scope::Platform => SYSTEM_TENANT.as_uuid(),
    };
    let sql = format!(
        "WITH obs AS ( \
           SELECT {key} AS subject, occurred_at, name, properties FROM analytics_events \
           WHERE {filter} AND occurred_at >= $2 AND occurred_at < $3 AND source <> 'analytics'), \
         later AS ( \
           SELECT DISTINCT {key} AS subject FROM analytics_events \
           WHERE {filter} AND occurred_at >= $3 AND occurred_at < $4 AND source <> 'analytics') \
         SELECT o.subject, \
           (EXTRACT(EPOCH FROM ($3 - max(o.occurred_at))) / 86400.0)::float8, \
           count(*)::float8, \
           count(DISTINCT (o.occurred_at AT TIME ZONE 'UTC')::date)::float8, \
           (count(*) FILTER (WHERE o.name = $5))::float8, \
           coalesce(sum(CASE WHEN o.name = $5 AND jsonb_typeof(o.properties->'credits') = 'number' \
                        THEN (o.properties->>'credits')::float8 END), 0)::float8, \
           (count(*) FILTER (WHERE o.name = ANY($6)))::float8, \
           count(DISTINCT o.name)::float8, \
           (count(*) FILTER (WHERE o.name LIKE ANY($7)))::float8, \
           bool_and(l.subject IS NULL) \
         FROM obs o LEFT JOIN later l ON l.subject = o.subject \
         GROUP BY o.subject ORDER BY o.subject"
    );
    let prefixes: Vec<String> = signals.support_event_prefixes.iter().map(|p| like_prefix(p)).collect();
    // `key` and `filter` are the constants above; every value is bound.
    let rows: Vec<FeatureRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(from)
        .bind(cut)
        .bind(until)
        .bind(FEATURE_CREDITS_EVENT)
        .bind(signals.failed_payment_events)
        .bind(&prefixes)
        .fetch_all(conn)
        .await
        .db()?;
    Ok(rows
        .into_iter()
        .map(|(subject, days, events, active, charges, credits, failed, breadth, support, churned)| SubjectRow {
            subject,
            features: Features {
                days_since_last: days,
                events,
                active_days: active,
                credit_charges: charges,
                credits,
                failed_payments: failed,
                breadth,
                support,
            },
            churned,
        })
        .collect())
}

/// Every workspace with analytics gets a customers job; the platform one exists when asked.
pub async fn enrol(conn: &mut PgConnection, platform: bool) -> Result<u64, Error> {
    let n = sqlx::query(
        "INSERT INTO churn_jobs (tenant_id, population) \
         SELECT tenant_id, 'customers' FROM workspace_settings WHERE tenant_id <> $1 \
         UNION ALL SELECT $1, 'platform' WHERE $2 \
         ON CONFLICT DO NOTHING",
    )
    .bind(SYSTEM_TENANT.as_uuid())
    .bind(platform)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n)
}

/// Claims due populations across workspaces (system transaction): rows another replica holds
/// (locked now, or leased) are skipped.
pub async fn claim_due(
    conn: &mut PgConnection,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<(TenantId, Population)>, Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "UPDATE churn_jobs j SET lease_until = now() + $1 \
         FROM (SELECT tenant_id, population FROM churn_jobs \
               WHERE next_run_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
               ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED) d \
         WHERE j.tenant_id = d.tenant_id AND j.population = d.population \
         RETURNING j.tenant_id, j.population",
    )
    .bind(lease)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().filter_map(|(t, p)| Some((TenantId::from_uuid(t), Population::parse(&p)?))).collect())
}

/// Claims one population now, whether due or not; false while another run holds it.
pub async fn claim_one(
    conn: &mut PgConnection,
    tenant: TenantId,
    population: Population,
    lease: chrono::Duration,
) -> Result<bool, Error> {
    sqlx::query("INSERT INTO churn_jobs (tenant_id, population) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(tenant.as_uuid())
        .bind(population.as_str())
        .execute(&mut *conn)
        .await
        .db()?;
    let claimed = sqlx::query(
        "UPDATE churn_jobs SET lease_until = now() + $3 \
         WHERE (tenant_id, population) IN (SELECT tenant_id, population FROM churn_jobs \
               WHERE tenant_id = $1 AND population = $2 AND (lease_until IS NULL OR lease_until < now()) \
               FOR UPDATE SKIP LOCKED)",
    )
    .bind(tenant.as_uuid())
    .bind(population.as_str())
    .bind(lease)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(claimed == 1)
}

/// Lets go of a claim; the population is next due at `next_run_at`.
pub async fn release(
    conn: &mut PgConnection,
    tenant: TenantId,
    population: Population,
    next_run_at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query("UPDATE churn_jobs SET lease_until = NULL, next_run_at = $3 WHERE tenant_id = $1 AND population = $2")
        .bind(tenant.as_uuid())
        .bind(population.as_str())
        .bind(next_run_at)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// A stored training, its JSON parts as stored.
#[derive(Debug, Clone)]
pub struct StoredModel {
    pub status: String,
    pub trained_at: DateTime<Utc>,
    pub observation_days: i32,
    pub outcome_days: i32,
    pub subjects: i64,
    pub churned: i64,
    pub model: Option<serde_json::Value>,
    pub quality: Option<serde_json::Value>,
    pub shortfall: Option<serde_json::Value>,
}

type ModelRow = (
    String,
    DateTime<Utc>,
    i32,
    i32,
    i64,
    i64,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

pub async fn model(
    conn: &mut PgConnection,
    tenant: TenantId,
    population: Population,
) -> Result<Option<StoredModel>, Error> {
    let row: Option<ModelRow> = sqlx::query_as(
        "SELECT status, trained_at, observation_days, outcome_days, subjects, churned, model, quality, shortfall \
         FROM churn_models WHERE tenant_id = $1 AND population = $2",
    )
    .bind(tenant.as_uuid())
    .bind(population.as_str())
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|(status, trained_at, observation_days, outcome_days, subjects, churned, model, quality, shortfall)| {
        StoredModel { status, trained_at, observation_days, outcome_days, subjects, churned, model, quality, shortfall }
    }))
}

pub async fn save_model(
    conn: &mut PgConnection,
    tenant: TenantId,
    population: Population,
    m: &StoredModel,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO churn_models (tenant_id, population, status, trained_at, observation_days, outcome_days, \
                                   subjects, churned, model, quality, shortfall) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tenant_id, population) DO UPDATE SET status = $3, trained_at = $4, observation_days = $5, \
           outcome_days = $6, subjects = $7, churned = $8, model = $9, quality = $10, shortfall = $11",
    )
    .bind(tenant.as_uuid())
    .bind(population.as_str())
    .bind(&m.status)
    .bind(m.trained_at)
    .bind(m.observation_days)
    .bind(m.outcome_days)
    .bind(m.subjects)
    .bind(m.churned)
    .bind(&m.model)
    .bind(&m.quality)
    .bind(&m.shortfall)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Subjects whose stored score is high, locked until the caller's transaction ends (the run
/// that replaces them decides who crossed).
pub async fn high_subjects(
    conn: &mut PgConnection,
    tenant: TenantId,
    population: Population,
) -> Result<HashSet<String>, Error> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT subject FROM churn_scores WHERE tenant_id = $1 AND population = $2 AND high FOR UPDATE",
    )
    .bind(tenant.as_uuid())
    .bind(population.as_str())
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().collect())
}

/// A score as stored: `factors` is the JSON of `Vec<domain::churn::Factor>`.
#[derive(Debug, Clone)]
pub struct ScoreRow {
    pub subject: String,
    pub score: f64,
    pub high: bool,
    pub factors: serde_json::Value,
    pub scored_at: DateTime<Utc>,
}

/// Replaces a population's scores with `rows` (one statement for all of them).
pub async fn replace_scores(
    conn: &mut PgConnection,
    tenant: TenantId,
    population: Population,
    rows: &[ScoreRow],
) -> Result<(), Error> {
    sqlx::query("DELETE FROM churn_scores WHERE tenant_id = $1 AND population = $2")
        .bind(tenant.as_uuid())
        .bind(population.as_str())
        .execute(&mut *conn)
        .await
        .db()?;
    let subjects: Vec<&str> = rows.iter().map(|r| r.subject.as_str()).collect();
    let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
    let highs: Vec<bool> = rows.iter().map(|r| r.high).collect();
    let factors: Vec<String> = rows.iter().map(|r| r.factors.to_string()).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.scored_at).collect();
    sqlx::query(
        "INSERT INTO churn_scores (tenant_id, population, subject, score, high, factors, scored_at) \
         SELECT $1, $2, s, sc, h, f::jsonb, a \
         FROM unnest($3::text[], $4::float8[], $5::bool[], $6::text[], $7::timestamptz[]) AS u(s, sc, h, f, a)",
    )
    .bind(tenant.as_uuid())
    .bind(population.as_str())
    .bind(&subjects)
    .bind(&scores)
    .bind(&highs)
    .bind(&factors)
    .bind(&at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Scores at or above `min_score`, highest first (ties by subject), after the `after` key.
pub async fn scores(
    conn: &mut PgConnection,
    tenant: TenantId,
    population: Population,
    min_score: f64,
    after: Option<(f64, String)>,
    fetch: i64,
) -> Result<Vec<ScoreRow>, Error> {
    let (after_score, after_subject) = after.map_or((None, None), |(s, k)| (Some(s), Some(k)));
    let rows: Vec<(String, f64, bool, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT subject, score, high, factors, scored_at FROM churn_scores \
         WHERE tenant_id = $1 AND population = $2 AND score >= $3 \
           AND ($4::float8 IS NULL OR score < $4 OR (score = $4 AND subject > $5)) \
         ORDER BY score DESC, subject LIMIT $6",
    )
    .bind(tenant.as_uuid())
    .bind(population.as_str())
    .bind(min_score)
    .bind(after_score)
    .bind(after_subject)
    .bind(fetch)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(subject, score, high, factors, scored_at)| ScoreRow { subject, score, high, factors, scored_at })
        .collect())
}
