//! Managing built ad campaigns: the daily budget within the guards, pause, resume, archive.
//! The platform is changed first; the change is recorded (with its event) once it answered.

use nexus_kernel::{Currency, Error, ErrorKind};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::builder::BuildView;
use super::platforms::platform_error;
use super::{App, id_of, require};
use crate::domain::BuildId;
use crate::domain::builder::budget_step;
use crate::repo::builds::Build;
use crate::{events, repo};

impl App {
    /// A built, not archived campaign of the workspace, with the token of its connection.
    async fn manageable(&self, p: &Principal, raw_id: &str) -> Result<(Build, String, Vec<repo::builds::Step>), Error> {
        let id: Uuid = id_of::<BuildId>(raw_id, "ads.build_not_found", BuildId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let b = repo::builds::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.build_not_found"))?;
        let steps = repo::builds::steps(&mut tx, id).await?;
        let conn = repo::connections::get(&mut tx, b.connection_id).await?;
        db::commit(tx).await?;
        if b.status != "built" || b.delivery == "archived" {
            let state = if b.status == "built" { b.delivery.clone() } else { b.status.clone() };
            return Err(
                Error::new(ErrorKind::FailedPrecondition, "ads.build_not_manageable").with_param("status", state)
            );
        }
        let conn = conn
            .filter(|c| c.record.status != crate::domain::connections::status::DISCONNECTED)
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "ads.connection_required"))?;
        let token = self.open_tokens(b.connection_id, &conn.credentials)?.access_token;
        Ok((b, token, steps))
    }

    /// Changes the daily budget, held to the guards: the largest raise per change and per UTC
    /// day, and the workspace's daily cap; never under the currency's minimum.
    pub async fn update_budget(&self, p: &Principal, raw_id: &str, new: i64) -> Result<BuildView, Error> {
        require(p, Action::Write)?;
        let (b, token, steps) = self.manageable(p, raw_id).await?;
        let currency: Currency = b.currency.parse()?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let day_start = repo::builds::day_start_budget(&mut tx, b.id, b.daily_budget).await?;
        let others = repo::builds::live_budgets(&mut tx, &b.currency, Some(b.id)).await?;
        db::commit(tx).await?;
        let platform = self.ad_platform_of(&b.provider)?;
        let provider = platform.provider();
        self.budget_guard().check_change(b.daily_budget, new, day_start, others, currency, provider)?;
        let holder = step_id(&steps, budget_step(&b.provider))?;
        platform
            .set_budget(&token, &b.ad_account, &holder, new, currency)
            .await
            .map_err(|e| platform_error(provider, e))?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::builds::set_budget(&mut tx, p.workspace_id, b.id, b.daily_budget, new).await?;
        let fresh = repo::builds::get(&mut tx, b.id).await?.ok_or_else(|| Error::internal("build vanished"))?;
        db::commit(tx).await?;
        self.build_view(p.workspace_id, fresh).await
    }

    /// Pauses, resumes or archives the campaign on the platform.
    pub async fn set_delivery(&self, p: &Principal, raw_id: &str, delivery: &str) -> Result<BuildView, Error> {
        require(p, Action::Write)?;
        let delivery = delivery.trim();
        if !matches!(delivery, "paused" | "active" | "archived") {
            return Err(Error::invalid("ads.delivery_invalid").with_violation("delivery", "unknown"));
        }
        let (b, token, steps) = self.manageable(p, raw_id).await?;
        if b.delivery == delivery {
            return self.build_view(p.workspace_id, b).await;
        }
        let platform = self.ad_platform_of(&b.provider)?;
        let e = |e| platform_error(platform.provider(), e);
        let account = &b.ad_account;
        if delivery == "active" {
            // Built paused: the ad and its ad set (ad group) start too, not only the campaign.
            for step in ["ad", budget_step(&b.provider)] {
                platform.set_delivery(&token, account, step, &step_id(&steps, step)?, "active").await.map_err(e)?;
            }
        }
        let campaign = step_id(&steps, "campaign")?;
        platform.set_delivery(&token, account, "campaign", &campaign, delivery).await.map_err(e)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::builds::set_delivery(&mut tx, b.id, delivery).await?;
        events::campaign_status_changed(&mut tx, p.workspace_id, &b, &b.delivery, delivery).await?;
        let fresh = repo::builds::get(&mut tx, b.id).await?.ok_or_else(|| Error::internal("build vanished"))?;
        db::commit(tx).await?;
        self.build_view(p.workspace_id, fresh).await
    }
}

fn step_id(steps: &[repo::builds::Step], step: &str) -> Result<String, Error> {
    steps
        .iter()
        .find(|s| s.step == step && s.status == "created")
        .and_then(|s| s.platform_id.clone())
        .ok_or_else(|| Error::internal(format!("built campaign without its {step}")))
}
