//! Generating copy: validate, reserve credits, generate (optionally streaming), store the result
//! with its inputs, model, usage and cost together with the settlement of its credits (one
//! transaction, through the outbox). Nothing is stored and nothing charged when the credits are
//! not there or the provider fails.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, PageRequest, TenantId};
use nexus_platform::db::begin_tenant;
use nexus_platform::identity::{Action, Principal};
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{App, Hold, Outcome, check_key, db, joined, settle_in, spawn_in_context};
use crate::domain::GenerationId;
use crate::domain::generation::{GenerationInput, Usage, Variant, credits_for_tokens, estimate_tokens};
use crate::domain::text::fit;
use crate::app::generator::{Delta, GenError, Metering};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GenerationRow {
    pub id: Uuid,
    pub kind: String,
    pub platform: Option<String>,
    pub language: String,
    pub tone: String,
    pub status: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub input: Json<serde_json::Value>,
    pub variants: Json<Vec<Variant>>,
    pub title_limit: i32,
    pub body_limit: i32,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub credits: i64,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, kind, platform, language, tone, status, provider, model, prompt_version, input, variants, \
    title_limit, body_limit, prompt_tokens, completion_tokens, total_tokens, credits, created_at";

/// A generation ready to run: credits held, or an earlier result for the same key.
pub enum Prepared {
    Done(GenerationRow),
    Run(Job),
}

pub struct Job {
    id: GenerationId,
    tenant: TenantId,
    actor: String,
    key: String,
    input: GenerationInput,
    hold: Hold,
}

impl Job {
    /// The settlement's job name.
    fn name(&self) -> String {
        format!("content.generation:{}", self.id)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

impl App {
    /// Validates, finds an earlier result for the idempotency key, or reserves credits.
    pub async fn prepare_generation(
        &self,
        p: &Principal,
        input: GenerationInput,
        key: &str,
    ) -> Result<Prepared, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let id = GenerationId::new();
        let key = if key.is_empty() { id.to_string() } else { key.to_owned() };
        if let Some(row) = self.generation_by_key(p.workspace_id, &key).await? {
            return Ok(Prepared::Done(row));
        }
        let ttl = self.cfg.generation.reservation_ttl;
        let reservation_key = format!("content.generation:{key}");
        let hold = match self.text.metering() {
            Metering::Flat => self.credits.reserve("content.generation", 1, 0, &reservation_key, ttl).await?,
            Metering::Tokens => {
                let max = input.max_tokens.unwrap_or(self.cfg.generation.default_max_tokens);
                let prompt = estimate_tokens(&serde_json::to_string(&input).unwrap_or_default()) + 400;
                let estimate = credits_for_tokens(
                    prompt + i64::from(max) * i64::from(input.variants),
                    self.cfg.generation.min_credits,
                );
                self.credits.reserve("content.generation", 0, estimate, &reservation_key, ttl).await?
            }
        };
        if hold.status != "held" {
            // The key was used for a generation that failed (its hold was released): a new
            // attempt needs a new key, or a concurrent twin already settled it.
            if let Some(row) = self.generation_by_key(p.workspace_id, &key).await? {
                return Ok(Prepared::Done(row));
            }
            return Err(Error::new(ErrorKind::Conflict, "content.idempotency_key_reused"));
        }
        Ok(Prepared::Run(Job { id, tenant: p.workspace_id, actor: p.actor(), key, input, hold }))
    }

    /// Generates and settles. With `deltas`, text is streamed as it comes.
    pub async fn run_generation(
        self: &std::sync::Arc<Self>,
        job: Job,
        deltas: Option<mpsc::Sender<Delta>>,
    ) -> Result<GenerationRow, Error> {
        let app = self.clone();
        // On its own task: a caller that hangs up does not leave the hold dangling.
        joined(spawn_in_context(async move { app.generate_and_settle(job, deltas).await }).await)
    }

    async fn generate_and_settle(&self, job: Job, deltas: Option<mpsc::Sender<Delta>>) -> Result<GenerationRow, Error> {
        let result = self.text.copy(&job.input, deltas.as_ref()).await;
        let (variants, usage, model, prompt_version, status, cut) = match result {
            Ok(out) => (out.variants, out.usage, out.model, out.prompt_version, "succeeded", None),
            Err(GenError::Cut { partial, usage, cause })
                if partial.iter().any(|v| !v.body.is_empty() || !v.title.is_empty()) =>
            {
                let version = crate::domain::prompts::for_kind(job.input.kind).version.to_owned();
                (partial, usage, String::new(), version, "incomplete", Some(cause))
            }
            Err(GenError::Cut { cause, .. } | GenError::Failed(cause)) => {
                self.give_back(job.tenant, &job.hold, &job.name()).await;
                return Err(cause);
            }
        };
        let limits = job.input.limits();
        let variants: Vec<Variant> = variants
            .into_iter()
            .map(|v| Variant { title: fit(&v.title, limits.title), body: fit(&v.body, limits.body) })
            .collect();
        let credits = match self.text.metering() {
            Metering::Flat => job.hold.amount,
            Metering::Tokens => {
                credits_for_tokens(usage.total_tokens, self.cfg.generation.min_credits).min(job.hold.amount)
            }
        };
        let model = if model.is_empty() { self.text.provider().to_owned() } else { model };
        let stored = self.store_generation(&job, &variants, usage, &model, &prompt_version, status, credits).await;
        let row = match stored {
            Ok(row) => row,
            Err(e) => {
                self.give_back(job.tenant, &job.hold, &job.name()).await;
                return Err(e);
            }
        };
        metrics::counter!("nexus_content_generations_total", "provider" => self.text.provider(), "status" => status)
            .increment(1);
        match cut {
            Some(cause) if deltas.is_none() => Err(cause),
            _ => Ok(row),
        }
    }

    #[allow(clippy::too_many_arguments)] // one row's worth of facts, all required
    async fn store_generation(
        &self,
        job: &Job,
        variants: &[Variant],
        usage: Usage,
        model: &str,
        prompt_version: &str,
        status: &str,
        credits: i64,
    ) -> Result<GenerationRow, Error> {
        let limits = job.input.limits();
        let mut tx = begin_tenant(&self.pool, job.tenant).await.map_err(db)?;
        let row: Option<GenerationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO generations (id, tenant_id, kind, platform, language, tone, status, provider, model, prompt_version, \
               input, variants, title_limit, body_limit, prompt_tokens, completion_tokens, total_tokens, credits, reservation_id, \
               idempotency_key, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
             ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
        )))
        .bind(job.id.as_uuid())
        .bind(job.tenant.as_uuid())
        .bind(job.input.kind.as_str())
        .bind(job.input.platform.map(|p| p.as_str()))
        .bind(job.input.brief.language.code())
        .bind(job.input.brief.tone.as_str())
        .bind(status)
        .bind(self.text.provider())
        .bind(model)
        .bind(prompt_version)
        .bind(Json(&job.input))
        .bind(Json(variants))
        .bind(i32::try_from(limits.title).unwrap_or(i32::MAX))
        .bind(i32::try_from(limits.body).unwrap_or(i32::MAX))
        .bind(usage.prompt_tokens)
        .bind(usage.completion_tokens)
        .bind(usage.total_tokens)
        .bind(credits)
        .bind(&job.hold.id)
        .bind(&job.key)
        .bind(&job.actor)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            // A concurrent request with the same key (so the same hold) stored first and settles
            // it: answer with its result.
            drop(tx);
            return self
                .generation_by_key(job.tenant, &job.key)
                .await?
                .ok_or_else(|| Error::internal("generation vanished"));
        };
        enqueue(
            &mut tx,
            "nexus.content.content.generated",
            Some(job.tenant),
            &events::ContentGenerated {
                workspace_id: job.tenant.to_string(),
                generation_id: job.id.to_string(),
                kind: row.kind.clone(),
                language: row.language.clone(),
                provider: row.provider.clone(),
                model: row.model.clone(),
                total_tokens: row.total_tokens,
                credits: row.credits,
                status: row.status.clone(),
            },
        )
        .await
        .map_err(db)?;
        settle_in(&mut tx, job.tenant, &job.hold, &job.name(), Outcome::Charge(credits)).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    async fn generation_by_key(&self, tenant: TenantId, key: &str) -> Result<Option<GenerationRow>, Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM generations WHERE idempotency_key = $1"
        )))
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    pub async fn get_generation(&self, p: &Principal, id: &str) -> Result<GenerationRow, Error> {
        p.require(Action::Read)?;
        let id = crate::domain::parse_id(id, GenerationId::parse, "content.generation_not_found")?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM generations WHERE id = $1")))
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| Error::not_found("content.generation_not_found"))
    }

    pub async fn list_generations(
        &self,
        p: &Principal,
        page: &PageRequest,
    ) -> Result<nexus_kernel::Page<GenerationRow>, Error> {
        p.require(Action::Read)?;
        let cursor: Option<ListCursor> = page.decode_cursor()?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let rows: Vec<GenerationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM generations WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(nexus_kernel::Page::from_overfetch(rows, page.limit, |r| ListCursor { at: r.created_at, id: r.id }))
    }
}
