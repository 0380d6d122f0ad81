//! The ad campaign builder, a saga. Everything is checked before the first platform call. Each
//! step is recorded `started` (committed) before its call and `created` with the platform's id
//! after it, so a build interrupted anywhere — the process killed, an answer lost — resumes
//! with the same request key: a step left `started` is looked up on the platform by its tag
//! (the object's name carries the build's id) before it is tried again. A step the platform
//! refuses rolls the build back: what was created is deleted, in reverse, and the build fails.

use std::collections::HashMap;

use nexus_kernel::{Currency, Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use nexus_providers::marketing::PlatformError;
use uuid::Uuid;

use super::ad_platform::{AdPlatform, ad_account_kind};
use super::platforms::platform_error;
use super::{App, id_of, require};
use crate::domain::builder::{BuildInput, BuildSpec, MEDIA_STEP, steps_of, tag};
use crate::domain::{BuildId, CampaignId};
use crate::repo::builds::{Build, Step};
use crate::{events, repo};

/// A build request as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub request_key: String,
    pub connection_id: String,
    pub ad_account: String,
    pub campaign_id: String,
    pub input: BuildInput,
}

/// A build and its steps, as shown.
#[derive(Debug, Clone)]
pub struct BuildView {
    pub build: Build,
    pub steps: Vec<Step>,
}

/// Whether a failed create may have happened anyway (no answer, or a server error): then the
/// step stays `started` for the retry to look up, and nothing is rolled back.
fn outcome_unknown(e: &PlatformError) -> bool {
    matches!(e, PlatformError::Timeout { .. } | PlatformError::Upstream { .. } | PlatformError::RateLimited { .. })
}

impl App {
    pub async fn build_ad_campaign(&self, p: &Principal, req: BuildRequest) -> Result<BuildView, Error> {
        require(p, Action::Write)?;
        let key = req.request_key.trim();
        if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
            return Err(Error::invalid("ads.request_key_invalid").with_violation("request_key", "invalid"));
        }
        let stored = self.stored_connection(p, &req.connection_id).await?;
        let c = &stored.record;
        let platform = self.ad_platform(c.provider)?;
        let kind = ad_account_kind(c.provider);
        let account = c
            .accounts
            .iter()
            .find(|a| a.kind == kind && a.external_id == req.ad_account.trim() && a.chosen)
            .ok_or_else(|| {
                Error::invalid("ads.account_unknown")
                    .with_param("account", req.ad_account.chars().take(60).collect::<String>())
                    .with_violation("ad_account", "unknown")
            })?;
        let currency: Currency = account.currency.parse().map_err(|_| {
            Error::new(ErrorKind::FailedPrecondition, "ads.account_currency_unsupported")
                .with_param("currency", account.currency.clone())
        })?;
        // Everything the platform would refuse is refused here, before any call.
        let spec = BuildSpec::parse_for(&req.input, currency, c.provider)?;
        // A creative named by id is read and checked here too (another workspace's: not found).
        let spec = self.creative_of(p, spec, c.provider).await?;
        let campaign_id = if req.campaign_id.trim().is_empty() {
            None
        } else {
            Some(self.campaign(p, req.campaign_id.trim()).await?.id)
        };
        let row = Build {
            id: Uuid::now_v7(),
            request_key: key.to_owned(),
            connection_id: c.id,
            campaign_id,
            provider: c.provider.as_str().to_owned(),
            ad_account: account.external_id.clone(),
            currency: currency.code().to_owned(),
            spec: serde_json::to_value(&spec).map_err(|e| Error::internal(format!("spec: {e}")))?,
            status: "building".into(),
            error: String::new(),
            daily_budget: 0,
            delivery: "paused".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            platform_status: String::new(),
            review_status: "pending".into(),
            review_reason: String::new(),
            status_synced_at: None,
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let build = repo::builds::insert_or_get(&mut tx, p.workspace_id, &row).await?;
        if build.status == "building" {
            // Dropping the transaction on a refusal leaves no build behind.
            let others = repo::builds::live_budgets(&mut tx, currency.code(), Some(build.id)).await?;
            self.budget_guard().check_cap(others, spec.daily_budget, currency)?;
        }
        db::commit(tx).await?;
        if build.status != "building" {
            // The same request again: its outcome, not a second campaign.
            return self.build_view(p.workspace_id, build).await;
        }
        // A resumed build replays the request it was started with.
        let spec: BuildSpec =
            serde_json::from_value(build.spec.clone()).map_err(|e| Error::internal(format!("stored spec: {e}")))?;
        let token = self.open_tokens(c.id, &stored.credentials)?.access_token;
        self.run_saga(p.workspace_id, &build, &spec, platform, &token).await?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let fresh = repo::builds::get(&mut tx, build.id).await?.ok_or_else(|| Error::internal("build vanished"))?;
        db::commit(tx).await?;
        self.build_view(p.workspace_id, fresh).await
    }

    pub(crate) async fn build_view(&self, tenant: TenantId, build: Build) -> Result<BuildView, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let mut steps = repo::builds::steps(&mut tx, build.id).await?;
        db::commit(tx).await?;
        let order = steps_of(&build.provider);
        steps.sort_by_key(|s| order.iter().position(|x| *x == s.step));
        Ok(BuildView { build, steps })
    }

    pub async fn ad_build(&self, p: &Principal, raw_id: &str) -> Result<BuildView, Error> {
        require(p, Action::Read)?;
        let id = id_of::<BuildId>(raw_id, "ads.build_not_found", BuildId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let b = repo::builds::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.build_not_found"))?;
        db::commit(tx).await?;
        self.build_view(p.workspace_id, b).await
    }

    async fn run_saga(
        &self,
        tenant: TenantId,
        build: &Build,
        spec: &BuildSpec,
        platform: AdPlatform<'_>,
        token: &str,
    ) -> Result<(), Error> {
        let provider = platform.provider();
        let currency: Currency = build.currency.parse()?;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let recorded = repo::builds::steps(&mut tx, build.id).await?;
        db::commit(tx).await?;
        let mut ids: HashMap<String, String> = HashMap::new();
        for s in &recorded {
            if let (Some(id), "created") = (&s.platform_id, s.status.as_str()) {
                ids.insert(s.step.clone(), id.clone());
            }
        }
        for step in platform.steps() {
            let upload = *step == MEDIA_STEP;
            if ids.contains_key(*step) || (upload && spec.creative.is_none()) {
                continue;
            }
            let name = tag(build.id, step, &spec.name);
            let started_before = recorded.iter().any(|s| s.step == *step);
            // An earlier attempt may have created it without learning so.
            let found = if upload {
                // Looked up (by the file's signature) while uploading.
                if !started_before {
                    let mut tx = db::tenant(&self.pool, tenant).await?;
                    repo::builds::step_started(&mut tx, tenant, build.id, step, &name).await?;
                    db::commit(tx).await?;
                }
                None
            } else if started_before {
                platform
                    .find_step(token, &build.ad_account, step, &name)
                    .await
                    .map_err(|e| platform_error(provider, e))?
            } else {
                let mut tx = db::tenant(&self.pool, tenant).await?;
                repo::builds::step_started(&mut tx, tenant, build.id, step, &name).await?;
                db::commit(tx).await?;
                None
            };
            let id = match found {
                Some(id) => id,
                None => match self
                    .make_step(tenant, platform, token, build, step, &name, spec, currency, &ids, started_before)
                    .await?
                {
                    Ok(id) => id,
                    Err(e) if outcome_unknown(&e) => return Err(platform_error(provider, e)),
                    Err(e) => {
                        tracing::warn!(step, error = %e, "the platform refused a build step; rolling back");
                        self.roll_back(tenant, build, platform, token, &ids, spec).await?;
                        let mut tx = db::tenant(&self.pool, tenant).await?;
                        repo::builds::finish(&mut tx, build.id, "failed", "ads.build_failed").await?;
                        events::campaign_failed(&mut tx, tenant, build, step, "ads.build_failed").await?;
                        db::commit(tx).await?;
                        return Err(Error::new(ErrorKind::FailedPrecondition, "ads.build_failed")
                            .with_param("provider", provider.as_str())
                            .with_param("step", *step)
                            .with_source(e));
                    }
                },
            };
            let mut tx = db::tenant(&self.pool, tenant).await?;
            repo::builds::step_done(&mut tx, build.id, step, Some(&id), "created").await?;
            db::commit(tx).await?;
            ids.insert((*step).to_owned(), id);
        }
        let mut tx = db::tenant(&self.pool, tenant).await?;
        repo::builds::finish(&mut tx, build.id, "built", "").await?;
        repo::builds::set_budget(&mut tx, tenant, build.id, 0, spec.daily_budget).await?;
        repo::builds::set_delivery(&mut tx, build.id, if spec.activate { "active" } else { "paused" }).await?;
        let campaign = ids.get("campaign").cloned().unwrap_or_default();
        events::campaign_created(&mut tx, tenant, build, &campaign, &spec.name, spec.daily_budget).await?;
        db::commit(tx).await?;
        Ok(())
    }

    /// Makes a step's object on the platform, or for the `media` step uploads the creative's file
    /// (`look_first`: looked up before it is sent again). The outer error is ours (the step
    /// stays started); the inner one the platform's.
    #[allow(clippy::too_many_arguments)]
    async fn make_step(
        &self,
        tenant: TenantId,
        platform: AdPlatform<'_>,
        token: &str,
        build: &Build,
        step: &str,
        name: &str,
        spec: &BuildSpec,
        currency: Currency,
        ids: &HashMap<String, String>,
        look_first: bool,
    ) -> Result<Result<String, PlatformError>, Error> {
        let account = &build.ad_account;
        if step == MEDIA_STEP {
            return self.upload_creative(tenant, platform, token, account, build.id, name, spec, look_first).await;
        }
        Ok(platform.create_step(token, account, build.id, step, name, spec, currency, ids).await)
    }

    /// Deletes what the build created, last first; each deletion is recorded as it happens.
    async fn roll_back(
        &self,
        tenant: TenantId,
        build: &Build,
        platform: AdPlatform<'_>,
        token: &str,
        ids: &HashMap<String, String>,
        spec: &BuildSpec,
    ) -> Result<(), Error> {
        let e = |e| platform_error(platform.provider(), e);
        // Uploaded media stay in the ad account's library (see `App::upload_creative`).
        for step in platform.steps().iter().rev().filter(|s| **s != MEDIA_STEP) {
            let id = match ids.get(*step) {
                Some(id) => Some(id.clone()),
                // A step whose create was refused made nothing; one left unknown is looked up.
                None => platform
                    .find_step(token, &build.ad_account, step, &tag(build.id, step, &spec.name))
                    .await
                    .map_err(e)?,
            };
            let Some(id) = id else { continue };
            platform.delete_step(token, &build.ad_account, step, &id).await.map_err(e)?;
            let mut tx = db::tenant(&self.pool, tenant).await?;
            repo::builds::step_done(&mut tx, build.id, step, Some(&id), "deleted").await?;
            db::commit(tx).await?;
        }
        Ok(())
    }
}

/// Shown ids of a build's umbrella campaign.
pub fn campaign_ref(id: Option<Uuid>) -> String {
    id.map(|c| CampaignId::from_uuid(c).to_string()).unwrap_or_default()
}
