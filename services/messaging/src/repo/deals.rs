//! The pipeline's stages and the deals on it.

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Currency, Error, ErrorKind, Money, Page, TenantId, UserId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::deal::{Deal, Outcome, PipelineStage, StageDraft, default_pipeline};

#[derive(sqlx::FromRow)]
struct StageRow {
    id: Uuid,
    name: String,
    outcome: String,
}

impl StageRow {
    fn into_stage(self) -> Result<PipelineStage, Error> {
        let outcome: Outcome =
            self.outcome.parse().map_err(|_| Error::internal(format!("stored outcome {}", self.outcome)))?;
        Ok(PipelineStage { id: self.id, name: self.name, outcome })
    }
}

/// Serializes changes to one workspace's pipeline (the first default, a save) until commit.
async fn lock_pipeline(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('messaging.pipeline:' || current_setting('nexus.tenant_id'), 0))")
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// The saved pipeline in order (empty before the workspace has one).
pub async fn stages(conn: &mut PgConnection) -> Result<Vec<PipelineStage>, Error> {
    let rows: Vec<StageRow> =
        sqlx::query_as("SELECT id, name, outcome FROM pipeline_stages ORDER BY position, created_at")
            .fetch_all(conn)
            .await
            .db()?;
    rows.into_iter().map(StageRow::into_stage).collect()
}

/// The pipeline, stored from [`DEFAULT_PIPELINE`] (with the ids reads showed it under) the
/// first time a write needs one, so deals always point at stored stages.
pub async fn ensure_stages(conn: &mut PgConnection, tenant: TenantId) -> Result<Vec<PipelineStage>, Error> {
    let found = stages(conn).await?;
    if !found.is_empty() {
        return Ok(found);
    }
    lock_pipeline(conn).await?;
    let found = stages(conn).await?;
    if !found.is_empty() {
        return Ok(found);
    }
    for (position, stage) in default_pipeline(tenant.as_uuid()).iter().enumerate() {
        insert_stage(conn, tenant, stage, position).await?;
    }
    stages(conn).await
}

async fn insert_stage(
    conn: &mut PgConnection,
    tenant: TenantId,
    stage: &PipelineStage,
    position: usize,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO pipeline_stages (id, tenant_id, name, position, outcome) VALUES ($1, $2, $3, $4, $5)")
        .bind(stage.id)
        .bind(tenant.as_uuid())
        .bind(&stage.name)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(stage.outcome.as_str())
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Replaces the pipeline with `drafts` in their order: stages named by id are kept (renamed,
/// moved, their outcome changed — their deals' close times follow), new ones added, the rest
/// removed. A stage that still holds deals cannot be removed.
pub async fn save_stages(
    conn: &mut PgConnection,
    tenant: TenantId,
    drafts: &[StageDraft],
) -> Result<Vec<PipelineStage>, Error> {
    lock_pipeline(conn).await?;
    let existing = ensure_stages(conn, tenant).await?;
    for d in drafts {
        if let Some(id) = d.id
            && !existing.iter().any(|s| s.id == id)
        {
            return Err(Error::not_found("messaging.stage_not_found").with_param("stage", id.to_string()));
        }
    }
    let removed: Vec<Uuid> =
        existing.iter().filter(|s| !drafts.iter().any(|d| d.id == Some(s.id))).map(|s| s.id).collect();
    if !removed.is_empty() {
        let busy: Option<String> = sqlx::query_scalar(
            "SELECT s.name FROM pipeline_stages s WHERE s.id = ANY($1) \
               AND EXISTS (SELECT 1 FROM deals d WHERE d.stage_id = s.id) ORDER BY s.position LIMIT 1",
        )
        .bind(&removed)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
        if let Some(name) = busy {
            return Err(stage_has_deals(name));
        }
        sqlx::query("DELETE FROM pipeline_stages WHERE id = ANY($1)")
            .bind(&removed)
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                // A deal entered one of these stages after the check above.
                if super::violated_foreign_key(&e) {
                    let names = existing.iter().filter(|s| removed.contains(&s.id)).map(|s| s.name.as_str());
                    stage_has_deals(names.collect::<Vec<_>>().join(", "))
                } else {
                    nexus_platform::db::error(e)
                }
            })?;
    }
    for (position, d) in drafts.iter().enumerate() {
        let Some(id) = d.id else {
            let new = PipelineStage { id: Uuid::now_v7(), name: d.name.clone(), outcome: d.outcome };
            insert_stage(conn, tenant, &new, position).await?;
            continue;
        };
        let was = existing.iter().find(|s| s.id == id).map(|s| s.outcome);
        // Only real changes are written, so the audit trail shows what changed.
        sqlx::query(
            "UPDATE pipeline_stages SET name = $2, position = $3, outcome = $4 \
             WHERE id = $1 AND (name, position, outcome) IS DISTINCT FROM ($2, $3, $4)",
        )
        .bind(id)
        .bind(&d.name)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(d.outcome.as_str())
        .execute(&mut *conn)
        .await
        .db()?;
        if was.is_some_and(|w| w.closes() != d.outcome.closes()) {
            sqlx::query(
                "UPDATE deals SET closed_at = CASE WHEN $2 THEN coalesce(closed_at, now()) END, updated_at = now() \
                 WHERE stage_id = $1",
            )
            .bind(id)
            .bind(d.outcome.closes())
            .execute(&mut *conn)
            .await
            .db()?;
        }
    }
    stages(conn).await
}

fn stage_has_deals(name: String) -> Error {
    Error::new(ErrorKind::FailedPrecondition, "messaging.stage_has_deals")
        .with_param("stage", name)
        .with_violation("items", "stage_has_deals")
}

const COLUMNS: &str = "id, contact_id, title, stage_id, amount_minor, currency, expected_close, owner_id, closed_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct DealRow {
    id: Uuid,
    contact_id: Uuid,
    title: String,
    stage_id: Uuid,
    amount_minor: i64,
    currency: String,
    expected_close: Option<NaiveDate>,
    owner_id: Option<Uuid>,
    closed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl DealRow {
    fn into_deal(self) -> Result<Deal, Error> {
        let currency: Currency =
            self.currency.parse().map_err(|_| Error::internal(format!("stored currency {}", self.currency)))?;
        Ok(Deal {
            id: self.id,
            contact_id: self.contact_id,
            title: self.title,
            stage_id: self.stage_id,
            amount: Money::new(self.amount_minor, currency),
            expected_close: self.expected_close,
            owner_id: self.owner_id.map(UserId::from_uuid),
            closed_at: self.closed_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Stores a new deal or every attribute of an existing one (`id` decides), answering it as stored.
pub async fn save(conn: &mut PgConnection, tenant: TenantId, d: &Deal) -> Result<Deal, Error> {
    let row: DealRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO deals (id, tenant_id, contact_id, title, stage_id, amount_minor, currency, expected_close, owner_id, closed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET contact_id = excluded.contact_id, title = excluded.title, \
           stage_id = excluded.stage_id, amount_minor = excluded.amount_minor, currency = excluded.currency, \
           expected_close = excluded.expected_close, owner_id = excluded.owner_id, closed_at = excluded.closed_at, \
           updated_at = now() \
         RETURNING {COLUMNS}"
    )))
    .bind(d.id)
    .bind(tenant.as_uuid())
    .bind(d.contact_id)
    .bind(&d.title)
    .bind(d.stage_id)
    .bind(d.amount.amount_minor)
    .bind(d.amount.currency.code())
    .bind(d.expected_close)
    .bind(d.owner_id.map(|u| u.as_uuid()))
    .bind(d.closed_at)
    .fetch_one(conn)
    .await
    .map_err(|e| {
        // The stage was removed by a concurrent save of the pipeline.
        if super::violated_foreign_key(&e) {
            Error::not_found("messaging.stage_not_found")
        } else {
            nexus_platform::db::error(e)
        }
    })?;
    row.into_deal()
}

/// A deal by id, locked for the rest of the transaction (an update reads, decides, writes).
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<Deal>, Error> {
    let row: Option<DealRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM deals WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .db()?;
    row.map(DealRow::into_deal).transpose()
}

/// One page of deals, newest first, optionally of one stage and/or one contact.
pub async fn list(
    conn: &mut PgConnection,
    stage: Option<Uuid>,
    contact: Option<Uuid>,
    keyset: &Keyset,
) -> Result<Page<Deal>, Error> {
    let rows: Vec<DealRow> = keyset
        .bind(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM deals WHERE ($1::uuid IS NULL OR stage_id = $1) \
                   AND ($2::uuid IS NULL OR contact_id = $2) AND {}",
                Keyset::newest_first(3)
            )))
            .bind(stage)
            .bind(contact),
        )
        .fetch_all(conn)
        .await
        .db()?;
    let deals = rows.into_iter().map(DealRow::into_deal).collect::<Result<Vec<_>, _>>()?;
    Ok(keyset.page(deals, |d| (d.created_at, d.id)))
}
