//! Churn risk on schedule: each population (a workspace's customers; the platform's workspaces
//! when operators are configured) is claimed by one replica (SKIP LOCKED with a lease), trained
//! again when its model is older than `churn.retrain_interval`, and scored every
//! `churn.score_interval`. A subject whose score crosses `churn.high_threshold` gets one
//! `nexus.analytics.churn_risk.high` in the transaction that stores the score; while it stays
//! high, no other.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId, WorkspaceId};
use nexus_platform::db::{self, DbResultExt, Tx};
use nexus_proto::events as ev;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Analytics;
use crate::config::ChurnConfig;
use crate::domain::churn::{self, Example, Factor, Model, Population, Quality, Shortfall, Trained};
use crate::domain::workspace::SYSTEM_TENANT;
use crate::repo;
use crate::repo::churn::{Scope, ScoreRow, Signals, StoredModel};

/// Populations claimed per scheduler round.
const BATCH: i64 = 20;

pub const SUBJECT_HIGH: &str = "nexus.analytics.churn_risk.high";

pub struct Churn {
    pub app: Arc<Analytics>,
    pub cfg: ChurnConfig,
    /// The workspace that receives the platform population's events (the first operator
    /// workspace); without one there is no platform model: nobody could read it.
    pub operator: Option<TenantId>,
}

/// A stored training as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelView {
    pub population: Population,
    pub trained_at: DateTime<Utc>,
    pub observation_days: u32,
    pub outcome_days: u32,
    pub subjects: u64,
    pub churned: u64,
    pub high_threshold: f64,
    pub state: ModelState,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Trained { model: Model, quality: Quality },
    NotEnoughData(Shortfall),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreView {
    pub subject: String,
    pub score: f64,
    pub high: bool,
    pub factors: Vec<Factor>,
    pub scored_at: DateTime<Utc>,
}

/// The keyset of the scores listing: highest score first, then subject.
#[derive(Serialize, Deserialize)]
struct ScoreKey {
    s: f64,
    k: String,
}

fn duration(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::days(1))
}

fn corrupt(what: &str, e: serde_json::Error) -> Error {
    Error::internal(format!("stored churn {what} unreadable: {e}"))
}

impl Churn {
    /// Where a population's rows live: the workspace's own for its customers, the system
    /// tenant's for the platform.
    fn owner(population: Population, caller: TenantId) -> TenantId {
        match population {
            Population::Customers => caller,
            Population::Platform => SYSTEM_TENANT,
        }
    }

    /// A transaction fit for `population`: the platform's reads every workspace's events.
    async fn begin(&self, owner: TenantId, population: Population) -> Result<Tx, Error> {
        match population {
            Population::Customers => db::tenant(&self.app.db, owner).await,
            Population::Platform => db::system(&self.app.db).await,
        }
    }

    fn scope(owner: TenantId, population: Population) -> Scope {
        match population {
            Population::Customers => Scope::Customers(owner),
            Population::Platform => Scope::Platform,
        }
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = ?e, "churn scheduling failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.cfg.check_interval) => {}
            }
        }
    }

    /// One round: enrols new workspaces, claims the due populations and runs each; how many ran.
    #[tracing::instrument(skip_all)]
    pub async fn tick(&self) -> Result<usize, Error> {
        let mut sys = db::system(&self.app.db).await?;
        repo::churn::enrol(&mut sys, self.operator.is_some()).await?;
        let claimed = repo::churn::claim_due(&mut sys, duration(self.cfg.lease), BATCH).await?;
        db::commit(sys).await?;
        let mut ran = 0;
        for (owner, population) in claimed {
            if population == Population::Platform && self.operator.is_none() {
                self.release(owner, population, Utc::now() + duration(self.cfg.score_interval)).await?;
                continue;
            }
            let next = match self.run_claimed(owner, population, false).await {
                Ok(()) => {
                    ran += 1;
                    Utc::now() + duration(self.cfg.score_interval)
                }
                Err(e) => {
                    tracing::warn!(error = ?e, tenant = %owner, population = population.as_str(), "churn run failed");
                    Utc::now() + duration(self.cfg.check_interval)
                }
            };
            self.release(owner, population, next).await?;
        }
        Ok(ran)
    }

    async fn release(&self, owner: TenantId, population: Population, next: DateTime<Utc>) -> Result<(), Error> {
        let mut tx = db::system(&self.app.db).await?;
        repo::churn::release(&mut tx, owner, population, next).await?;
        db::commit(tx).await
    }

    /// Trains and scores now for the caller. Refused (429) within `retrain_min_interval` of the
    /// last training, and (409) while another run holds the population.
    #[tracing::instrument(skip_all, fields(tenant = %caller, population = population.as_str()))]
    pub async fn retrain(&self, caller: TenantId, population: Population) -> Result<ModelView, Error> {
        let owner = Self::owner(population, caller);
        if let Some(last) = self.stored(owner, population).await? {
            let ready = last.trained_at + duration(self.cfg.retrain_min_interval);
            let now = Utc::now();
            if ready > now {
                let secs = (ready - now).num_seconds().max(1);
                return Err(Error::new(ErrorKind::RateLimited, "analytics.churn_retrain_too_soon")
                    .with_param("retry_after", secs.to_string()));
            }
        }
        let mut tx = db::system(&self.app.db).await?;
        let claimed = repo::churn::claim_one(&mut tx, owner, population, duration(self.cfg.lease)).await?;
        db::commit(tx).await?;
        if !claimed {
            return Err(Error::new(ErrorKind::Conflict, "analytics.churn_training_in_progress"));
        }
        let result = self.run_claimed(owner, population, true).await;
        self.release(owner, population, Utc::now() + duration(self.cfg.score_interval)).await?;
        result?;
        self.model(caller, population).await
    }

    /// Trains when due (or `force`), then scores with the current model.
    async fn run_claimed(&self, owner: TenantId, population: Population, force: bool) -> Result<(), Error> {
        let now = Utc::now();
        let stored = self.stored(owner, population).await?;
        let due = force || stored.as_ref().is_none_or(|m| m.trained_at + duration(self.cfg.retrain_interval) <= now);
        let model = if due {
            self.train(owner, population, now).await?
        } else {
            match stored.map(view).transpose()? {
                Some((trained_at, ModelState::Trained { model, .. })) => Some((model, trained_at)),
                _ => None,
            }
        };
        self.score(owner, population, model.as_ref(), now).await
    }

    async fn stored(&self, owner: TenantId, population: Population) -> Result<Option<StoredModel>, Error> {
        let mut tx = self.begin(owner, population).await?;
        let m = repo::churn::model(&mut tx, owner, population).await?;
        db::commit(tx).await?;
        Ok(m)
    }

    fn signals(&self) -> Signals<'_> {
        Signals {
            failed_payment_events: &self.cfg.failed_payment_events,
            support_event_prefixes: &self.cfg.support_event_prefixes,
        }
    }

    fn subject_name(population: Population, raw: String) -> String {
        // The platform's subjects are workspaces: shown as their public ids.
        match population {
            Population::Customers => raw,
            Population::Platform => Uuid::parse_str(&raw).map(|u| WorkspaceId::from_uuid(u).to_string()).unwrap_or(raw),
        }
    }

    /// Labels subjects active in the observation window before `now - outcome` by whether they
    /// were silent after it, fits, measures, and stores the result; the model if there is one.
    async fn train(
        &self,
        owner: TenantId,
        population: Population,
        now: DateTime<Utc>,
    ) -> Result<Option<(Model, DateTime<Utc>)>, Error> {
        let cut = now - Duration::days(i64::from(self.cfg.outcome_days));
        let from = cut - Duration::days(i64::from(self.cfg.observation_days));
        let mut tx = self.begin(owner, population).await?;
        let rows =
            repo::churn::subjects(&mut tx, Self::scope(owner, population), from, cut, now, &self.signals()).await?;
        let examples: Vec<Example> = rows
            .into_iter()
            .map(|r| Example {
                subject: Self::subject_name(population, r.subject),
                features: r.features,
                churned: r.churned,
            })
            .collect();
        let churned = examples.iter().filter(|e| e.churned).count();
        let trained = churn::train(&examples, &self.cfg.train_config());
        let json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| corrupt("model", e));
        let mut stored = StoredModel {
            status: String::new(),
            trained_at: now,
            observation_days: i32::try_from(self.cfg.observation_days).unwrap_or(i32::MAX),
            outcome_days: i32::try_from(self.cfg.outcome_days).unwrap_or(i32::MAX),
            subjects: i64::try_from(examples.len()).unwrap_or(i64::MAX),
            churned: i64::try_from(churned).unwrap_or(i64::MAX),
            model: None,
            quality: None,
            shortfall: None,
        };
        let out = match trained {
            Trained::Model { model, quality } => {
                if !model.is_consistent() {
                    return Err(Error::internal("churn training produced a non-finite model"));
                }
                stored.status = "trained".into();
                stored.model = Some(json(serde_json::to_value(&model))?);
                stored.quality = Some(json(serde_json::to_value(&quality))?);
                tracing::info!(tenant = %owner, population = population.as_str(), auc = quality.auc,
                    brier = quality.brier, subjects = examples.len(), "churn model trained");
                Some((model, now))
            }
            Trained::NotEnoughData(s) => {
                stored.status = "not_enough_data".into();
                stored.shortfall = Some(json(serde_json::to_value(s))?);
                None
            }
        };
        repo::churn::save_model(&mut tx, owner, population, &stored).await?;
        db::commit(tx).await?;
        Ok(out)
    }

    /// Scores every subject active in the last observation window and replaces the stored
    /// scores; without a model there are no scores. Emits the high-risk event of each crossing.
    async fn score(
        &self,
        owner: TenantId,
        population: Population,
        model: Option<&(Model, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.begin(owner, population).await?;
        let Some((model, trained_at)) = model else {
            repo::churn::replace_scores(&mut tx, owner, population, &[]).await?;
            return db::commit(tx).await;
        };
        let from = now - Duration::days(i64::from(self.cfg.observation_days));
        let rows =
            repo::churn::subjects(&mut tx, Self::scope(owner, population), from, now, now, &self.signals()).await?;
        let was_high = repo::churn::high_subjects(&mut tx, owner, population).await?;
        let threshold = self.cfg.high_threshold;
        let mut scores = Vec::with_capacity(rows.len());
        let mut crossed = Vec::new();
        for r in rows {
            let subject = Self::subject_name(population, r.subject);
            let score = model.score(&r.features);
            let factors = model.factors(&r.features, self.cfg.top_factors);
            if churn::crossed_high(was_high.contains(&subject), score, threshold) {
                crossed.push(ev::ChurnRiskHigh {
                    workspace_id: self.event_tenant(owner, population).to_string(),
                    population: population.as_str().to_owned(),
                    subject: subject.clone(),
                    score,
                    threshold,
                    factors: factors
                        .iter()
                        .map(|f| ev::ChurnRiskFactor {
                            feature: f.feature.clone(),
                            value: f.value,
                            contribution: f.contribution,
                        })
                        .collect(),
                    model_trained_at: Some(nexus_platform::grpc::ts(*trained_at)),
                    scored_at: Some(nexus_platform::grpc::ts(now)),
                });
            }
            scores.push(ScoreRow {
                subject,
                score,
                high: score >= threshold,
                factors: serde_json::to_value(&factors).map_err(|e| corrupt("factors", e))?,
                scored_at: now,
            });
        }
        repo::churn::replace_scores(&mut tx, owner, population, &scores).await?;
        let tenant = self.event_tenant(owner, population);
        nexus_platform::outbox::enqueue_many(&mut tx, SUBJECT_HIGH, Some(tenant), &crossed).await.db()?;
        db::commit(tx).await?;
        if !crossed.is_empty() {
            tracing::info!(tenant = %owner, population = population.as_str(), crossed = crossed.len(), "churn risk high");
        }
        Ok(())
    }

    /// The workspace a population's events belong to: the one that can act on them.
    fn event_tenant(&self, owner: TenantId, population: Population) -> TenantId {
        match population {
            Population::Customers => owner,
            Population::Platform => self.operator.unwrap_or(owner),
        }
    }

    /// The latest training of the caller's population; 404 before the first.
    pub async fn model(&self, caller: TenantId, population: Population) -> Result<ModelView, Error> {
        let stored = self
            .stored(Self::owner(population, caller), population)
            .await?
            .ok_or_else(|| Error::not_found("analytics.churn_not_trained"))?;
        let (observation_days, outcome_days) = (stored.observation_days, stored.outcome_days);
        let (subjects, churned) = (stored.subjects, stored.churned);
        let (trained_at, state) = view(stored)?;
        Ok(ModelView {
            population,
            trained_at,
            observation_days: u32::try_from(observation_days).unwrap_or(0),
            outcome_days: u32::try_from(outcome_days).unwrap_or(0),
            subjects: u64::try_from(subjects).unwrap_or(0),
            churned: u64::try_from(churned).unwrap_or(0),
            high_threshold: self.cfg.high_threshold,
            state,
        })
    }

    /// The latest scores, highest first; `min_score` in [0, 1].
    pub async fn scores(
        &self,
        caller: TenantId,
        population: Population,
        min_score: f64,
        page: &PageRequest,
    ) -> Result<Page<ScoreView>, Error> {
        if !(0.0..=1.0).contains(&min_score) {
            return Err(Error::invalid("analytics.churn_invalid_min_score"));
        }
        let after: Option<ScoreKey> = page.decode_cursor()?;
        let limit = if page.limit == 0 { PageRequest::DEFAULT_LIMIT } else { page.limit };
        let owner = Self::owner(population, caller);
        let mut tx = self.begin(owner, population).await?;
        let rows =
            repo::churn::scores(&mut tx, owner, population, min_score, after.map(|k| (k.s, k.k)), i64::from(limit) + 1)
                .await?;
        db::commit(tx).await?;
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(ScoreView {
                    factors: serde_json::from_value(r.factors).map_err(|e| corrupt("factors", e))?,
                    subject: r.subject,
                    score: r.score,
                    high: r.high,
                    scored_at: r.scored_at,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Page::from_overfetch(items, limit, |s| ScoreKey { s: s.score, k: s.subject.clone() }))
    }
}

/// The domain reading of a stored training.
fn view(m: StoredModel) -> Result<(DateTime<Utc>, ModelState), Error> {
    let state = match (m.status.as_str(), m.model, m.quality, m.shortfall) {
        ("trained", Some(model), Some(quality), _) => ModelState::Trained {
            model: serde_json::from_value(model).map_err(|e| corrupt("model", e))?,
            quality: serde_json::from_value(quality).map_err(|e| corrupt("quality", e))?,
        },
        (_, _, _, Some(s)) => {
            ModelState::NotEnoughData(serde_json::from_value(s).map_err(|e| corrupt("shortfall", e))?)
        }
        _ => return Err(Error::internal("stored churn model has neither a model nor a shortfall")),
    };
    Ok((m.trained_at, state))
}
