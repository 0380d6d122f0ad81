//! Generating copy: validate, reserve credits, generate (optionally streaming), store the result
//! with its inputs, model, usage and cost together with the settlement of its credits (one
//! transaction, through the outbox). Nothing is stored and nothing charged when the credits are
//! not there or the provider fails.

use nexus_kernel::{Error, ErrorKind, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use tokio::sync::mpsc;

use super::generator::{Delta, GenError, Metering};
use super::{App, Hold, Outcome, check_key, joined, settle_in, spawn_in_context};
use crate::domain::GenerationId;
use crate::domain::generation::{Generation, GenerationInput, Usage, Variant, credits_for_tokens, estimate_tokens};
use crate::domain::text::fit;
use crate::repo::generations::{self as repo, NewGeneration};

/// A generation ready to run: credits held, or an earlier result for the same key.
pub enum Prepared {
    Done(Generation),
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

impl App {
    /// Validates, finds an earlier result for the idempotency key, or reserves credits.
    #[tracing::instrument(skip_all, fields(kind = input.kind.as_str()))]
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
    #[tracing::instrument(skip_all, fields(generation = %job.id))]
    pub async fn run_generation(
        self: &std::sync::Arc<Self>,
        job: Job,
        deltas: Option<mpsc::Sender<Delta>>,
    ) -> Result<Generation, Error> {
        let app = self.clone();
        // On its own task: a caller that hangs up does not leave the hold dangling.
        joined(spawn_in_context(async move { app.generate_and_settle(job, deltas).await }).await)
    }

    async fn generate_and_settle(&self, job: Job, deltas: Option<mpsc::Sender<Delta>>) -> Result<Generation, Error> {
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
    ) -> Result<Generation, Error> {
        let mut tx = db::tenant(&self.pool, job.tenant).await?;
        let new = NewGeneration {
            id: job.id.as_uuid(),
            tenant: job.tenant,
            input: &job.input,
            status,
            provider: self.text.provider(),
            model,
            prompt_version,
            variants,
            usage,
            credits,
            reservation_id: &job.hold.id,
            key: &job.key,
            actor: &job.actor,
        };
        let row = repo::insert(&mut tx, &new).await?;
        let Some(row) = row else {
            // A concurrent request with the same key (so the same hold) stored first and settles
            // it: answer with its result.
            drop(tx);
            return self
                .generation_by_key(job.tenant, &job.key)
                .await?
                .ok_or_else(|| Error::internal("generation vanished"));
        };
        crate::events::content_generated(&mut tx, job.tenant, &row).await?;
        settle_in(&mut tx, job.tenant, &job.hold, &job.name(), Outcome::Charge(credits)).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    async fn generation_by_key(&self, tenant: TenantId, key: &str) -> Result<Option<Generation>, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let row = repo::by_key(&mut tx, key).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(generation = %id))]
    pub async fn get_generation(&self, p: &Principal, id: &str) -> Result<Generation, Error> {
        p.require(Action::Read)?;
        let id = crate::domain::parse_id(id, GenerationId::parse, "content.generation_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = repo::get(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        row.ok_or_else(|| Error::not_found("content.generation_not_found"))
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_generations(
        &self,
        p: &Principal,
        page: &PageRequest,
    ) -> Result<nexus_kernel::Page<Generation>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(rows)
    }
}
