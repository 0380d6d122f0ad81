//! The CRM: each contact's timeline and tasks, the pipeline and its deals.

use chrono::Utc;
use nexus_kernel::{Error, Page, PageRequest};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use sqlx::PgConnection;
use uuid::Uuid;

use super::members::require_member;
use super::{App, parse_id};
use crate::domain::activity::{Activity, ActivityInput, ActivityKind, NewActivity, TaskKey, member_id};
use crate::domain::deal::{self, Deal, DealInput, PipelineStage};
use crate::{events, repo};

const CONTACT_NOT_FOUND: &str = "messaging.contact_not_found";
const TASK_NOT_FOUND: &str = "messaging.task_not_found";
const DEAL_NOT_FOUND: &str = "messaging.deal_not_found";
const STAGE_NOT_FOUND: &str = "messaging.stage_not_found";

/// A live contact of the transaction's workspace, else "not found" (other workspaces' included).
async fn require_contact(tx: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    if repo::contacts::exists_live(tx, id).await? { Ok(()) } else { Err(Error::not_found(CONTACT_NOT_FOUND)) }
}

impl App {
    /// Adds a note, task or call to a contact's timeline.
    #[tracing::instrument(skip_all, fields(contact = %contact_id))]
    pub async fn add_activity(
        &self,
        p: &Principal,
        contact_id: &str,
        input: &ActivityInput<'_>,
    ) -> Result<Activity, Error> {
        p.require(Action::Write)?;
        let contact = parse_id(contact_id, CONTACT_NOT_FOUND)?;
        let new = input.check(contact, p.actor(), p.user_id, Utc::now())?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        require_contact(&mut tx, contact).await?;
        if let Some(assignee) = new.assignee_id {
            require_member(&mut tx, p, assignee.as_uuid(), "assignee_id").await?;
        }
        let added = repo::activities::record(&mut tx, p.workspace_id, &new)
            .await?
            .ok_or_else(|| Error::internal("activity without a source key was not inserted"))?;
        db::commit(tx).await?;
        Ok(added)
    }

    /// A contact's timeline, newest first.
    #[tracing::instrument(skip_all, fields(contact = %contact_id))]
    pub async fn activities(
        &self,
        p: &Principal,
        contact_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Activity>, Error> {
        p.require(Action::Read)?;
        let contact = parse_id(contact_id, CONTACT_NOT_FOUND)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        require_contact(&mut tx, contact).await?;
        let found = repo::activities::timeline(&mut tx, contact, &keyset).await?;
        db::commit(tx).await?;
        Ok(found)
    }

    /// Marks a task done; completing a done task changes nothing.
    #[tracing::instrument(skip_all, fields(task = %id))]
    pub async fn complete_task(&self, p: &Principal, id: &str) -> Result<Activity, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, TASK_NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let task =
            repo::activities::complete_task(&mut tx, id).await?.ok_or_else(|| Error::not_found(TASK_NOT_FOUND))?;
        db::commit(tx).await?;
        Ok(task)
    }

    /// A member's tasks (empty `assignee_id`: the caller's): open ones first, by due date.
    #[tracing::instrument(skip_all)]
    pub async fn tasks(&self, p: &Principal, assignee_id: &str, page: &PageRequest) -> Result<Page<Activity>, Error> {
        p.require(Action::Read)?;
        let assignee = if assignee_id.trim().is_empty() { p.user_id } else { member_id(assignee_id, "assignee_id")? };
        let after: Option<TaskKey> = page.decode_cursor()?;
        let limit = if page.limit == 0 { PageRequest::DEFAULT_LIMIT } else { page.limit };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found = repo::activities::tasks(&mut tx, assignee, after, limit).await?;
        db::commit(tx).await?;
        Ok(found)
    }

    /// The pipeline in order (the default one until the workspace saves its own). A read writes
    /// nothing: a workspace that never wrote to its pipeline is shown the default one under the
    /// ids its first write will store it with.
    #[tracing::instrument(skip_all)]
    pub async fn stages(&self, p: &Principal) -> Result<Vec<PipelineStage>, Error> {
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::deals::stages(&mut tx).await?;
        db::commit(tx).await?;
        Ok(if stored.is_empty() { deal::default_pipeline(p.workspace_id.as_uuid()) } else { stored })
    }

    /// Replaces the pipeline: `(id, name, outcome)` in order; an id keeps that stage and its deals.
    #[tracing::instrument(skip_all)]
    pub async fn save_stages(
        &self,
        p: &Principal,
        items: &[(Option<&str>, &str, &str)],
    ) -> Result<Vec<PipelineStage>, Error> {
        p.require(Action::Write)?;
        let drafts = deal::check_pipeline(items)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stages = repo::deals::save_stages(&mut tx, p.workspace_id, &drafts).await?;
        db::commit(tx).await?;
        Ok(stages)
    }

    /// Opens a deal with a contact, in the given stage or the pipeline's first open one.
    #[tracing::instrument(skip_all)]
    pub async fn create_deal(&self, p: &Principal, input: &DealInput<'_>) -> Result<Deal, Error> {
        p.require(Action::Write)?;
        let draft = input.check(None)?;
        let (Some(contact_id), Some(title), Some(amount)) = (draft.contact_id, draft.title, draft.amount) else {
            return Err(Error::internal("checked new deal lacks a required attribute"));
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        require_contact(&mut tx, contact_id).await?;
        if let Some(owner) = draft.owner_id.flatten() {
            require_member(&mut tx, p, owner.as_uuid(), "owner_id").await?;
        }
        let stages = repo::deals::ensure_stages(&mut tx, p.workspace_id).await?;
        let stage = match draft.stage_id {
            Some(id) => stages.iter().find(|s| s.id == id).ok_or_else(|| Error::not_found(STAGE_NOT_FOUND))?,
            None => stages
                .iter()
                .find(|s| !s.outcome.closes())
                .ok_or_else(|| Error::internal("pipeline without an open stage"))?,
        };
        let now = Utc::now();
        let new = Deal {
            id: Uuid::now_v7(),
            contact_id,
            title,
            stage_id: stage.id,
            amount,
            expected_close: draft.expected_close.flatten(),
            owner_id: draft.owner_id.flatten(),
            closed_at: deal::closed_at(stage.outcome, None, now),
            created_at: now,
            updated_at: now,
        };
        let saved = repo::deals::save(&mut tx, p.workspace_id, &new).await?;
        events::deals::deal_created(&mut tx, p.workspace_id, &saved, stage.outcome).await?;
        let data = serde_json::json!({ "deal_id": saved.id, "title": saved.title, "stage": stage.name, "amount": amount.to_string() });
        repo::activities::record(
            &mut tx,
            p.workspace_id,
            &NewActivity::fact(contact_id, ActivityKind::Deal, p.actor(), data),
        )
        .await?;
        db::commit(tx).await?;
        Ok(saved)
    }

    /// Changes the attributes `mask` names. Entering a won or lost stage closes the deal (an open
    /// stage reopens it), and a stage move is recorded on the contact's timeline.
    #[tracing::instrument(skip_all, fields(deal = %id))]
    pub async fn update_deal(
        &self,
        p: &Principal,
        id: &str,
        input: &DealInput<'_>,
        mask: &[String],
    ) -> Result<Deal, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, DEAL_NOT_FOUND)?;
        let draft = input.check(Some(mask))?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let mut d = repo::deals::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found(DEAL_NOT_FOUND))?;
        if let Some(contact) = draft.contact_id
            && contact != d.contact_id
        {
            require_contact(&mut tx, contact).await?;
            d.contact_id = contact;
        }
        let mut moved = None;
        let from_stage = d.stage_id;
        if let Some(stage_id) = draft.stage_id
            && stage_id != d.stage_id
        {
            let stages = repo::deals::ensure_stages(&mut tx, p.workspace_id).await?;
            let to = stages.iter().find(|s| s.id == stage_id).ok_or_else(|| Error::not_found(STAGE_NOT_FOUND))?;
            let from = stages.iter().find(|s| s.id == d.stage_id).map(|s| s.name.clone()).unwrap_or_default();
            d.closed_at = deal::closed_at(to.outcome, d.closed_at, Utc::now());
            d.stage_id = stage_id;
            moved = Some((
                to.outcome,
                serde_json::json!({ "deal_id": d.id, "from": from, "to": to.name, "outcome": to.outcome.as_str() }),
            ));
        }
        if let Some(t) = draft.title {
            d.title = t;
        }
        if let Some(a) = draft.amount {
            d.amount = a;
        }
        if let Some(c) = draft.expected_close {
            d.expected_close = c;
        }
        if let Some(o) = draft.owner_id {
            // Only a new owner is checked, as for contacts.
            if let Some(owner) = o.filter(|o| d.owner_id != Some(*o)) {
                require_member(&mut tx, p, owner.as_uuid(), "owner_id").await?;
            }
            d.owner_id = o;
        }
        let saved = repo::deals::save(&mut tx, p.workspace_id, &d).await?;
        if let Some((outcome, data)) = moved {
            let entry = NewActivity::fact(saved.contact_id, ActivityKind::Deal, p.actor(), data);
            repo::activities::record(&mut tx, p.workspace_id, &entry).await?;
            events::deals::deal_stage_changed(&mut tx, p.workspace_id, &saved, from_stage, outcome).await?;
        }
        db::commit(tx).await?;
        Ok(saved)
    }

    /// Deals newest first, of one stage and/or one contact when given.
    #[tracing::instrument(skip_all)]
    pub async fn deals(
        &self,
        p: &Principal,
        stage_id: &str,
        contact_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Deal>, Error> {
        p.require(Action::Read)?;
        let stage = optional(stage_id, STAGE_NOT_FOUND)?;
        let contact = optional(contact_id, CONTACT_NOT_FOUND)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found = repo::deals::list(&mut tx, stage, contact, &keyset).await?;
        db::commit(tx).await?;
        Ok(found)
    }
}

/// An optional id filter: empty means none; a malformed one names nothing that exists.
fn optional(raw: &str, not_found: &'static str) -> Result<Option<Uuid>, Error> {
    if raw.trim().is_empty() { Ok(None) } else { parse_id(raw, not_found).map(Some) }
}
