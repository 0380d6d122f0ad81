//! WhatsApp templates: drafts checked against Meta's limits, submitted for review, their status
//! synced from Meta, deleted at Meta and here.

use nexus_kernel::{Error, ErrorKind};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use nexus_providers::whatsapp::Account;
use serde_json::json;
use uuid::Uuid;

use super::parse_id;
use super::whatsapp::WhatsApp;
use crate::domain::templates::{Category, Draft, Review, writing_language, written_body};
use crate::repo::whatsapp::{self as repo, NumberRow, TemplateRow};

/// A template as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: Uuid,
    pub number_id: Uuid,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub reason: String,
    pub body_params: i32,
    pub components: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn view(t: TemplateRow) -> Template {
    Template {
        id: t.id,
        number_id: t.number_id,
        name: t.name,
        language: t.language,
        category: t.category,
        status: t.status,
        reason: t.reason,
        body_params: t.body_params,
        components: t.components.0,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

pub(crate) fn provider_error(e: nexus_providers::whatsapp::WhatsAppError) -> Error {
    match e.code() {
        Some(code) => Error::new(ErrorKind::FailedPrecondition, crate::domain::whatsapp::meta_error_code(code))
            .with_param("code", code.to_string())
            .with_source(e),
        None => Error::unavailable("messaging.whatsapp_unavailable").with_source(e),
    }
}

/// What a template's body is for: content writes it.
#[derive(Debug, Clone, Copy)]
pub struct TextBrief<'a> {
    pub purpose: &'a str,
    pub category: Category,
    /// Meta's language code of the template.
    pub language: &'a str,
    /// The caller's key; empty: one derived from the brief, so asking the same twice answers
    /// the same text and charges once.
    pub idempotency_key: &'a str,
}

/// A body content wrote, ready for a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenText {
    pub body: String,
    pub body_examples: Vec<String>,
    pub generation_id: String,
    pub credits: i64,
    pub provider: String,
}

/// The most a purpose may say.
pub const PURPOSE_MAX: usize = 1_000;

impl WhatsApp {
    /// Content writes a template body for `brief` (charged in credits by content, as the service
    /// acting for the workspace, like the bots' AI replies); nothing is stored. A body that does
    /// not pass the template rules is asked for once more, then refused.
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn draft_template_text(
        &self,
        p: &Principal,
        number: &str,
        brief: &TextBrief<'_>,
    ) -> Result<WrittenText, Error> {
        p.require(Action::Write)?;
        let purpose = brief.purpose.trim();
        if purpose.is_empty()
            || purpose.chars().count() > PURPOSE_MAX
            || purpose.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
        {
            return Err(Error::invalid("messaging.whatsapp_template_purpose_invalid"));
        }
        if !crate::domain::templates::valid_language(brief.language) {
            return Err(Error::invalid("messaging.whatsapp_template_field_invalid").with_param("field", "language"));
        }
        let Some(writing) = writing_language(brief.language) else {
            return Err(Error::invalid("messaging.whatsapp_template_language_unwritten")
                .with_param("language", brief.language.to_owned()));
        };
        let key = brief.idempotency_key.trim();
        if key.len() > 200 {
            return Err(Error::invalid("request.invalid_idempotency_key"));
        }
        let number = self.number_row(p, number).await?;
        let writer = self.agents.as_ref().ok_or_else(|| Error::unavailable("messaging.whatsapp_unavailable"))?;
        // Content keeps keys per workspace and short: the caller's key (or the brief) hashed.
        let material = if key.is_empty() {
            format!("brief\n{}\n{}\n{}\n{purpose}", number.id, brief.category.as_str(), brief.language)
        } else {
            format!("key\n{key}")
        };
        let digest = {
            use sha2::Digest as _;
            sha2::Sha256::digest(material.as_bytes())
        };
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let key = format!("whatsapp.template_text:{hex}");
        let ask = super::bots::TextAsk { purpose, category: brief.category.as_str(), language: writing };
        for attempt in 0..2 {
            // The second ask is a new generation: the first's answer is what its key returns.
            let key = if attempt == 0 { key.clone() } else { format!("{key}:again") };
            let written = writer.write_template(p.workspace_id, &ask, &key).await?;
            if let Some((body, body_examples)) = written_body(&written.text, brief.language, brief.category) {
                return Ok(WrittenText {
                    body,
                    body_examples,
                    generation_id: written.generation_id,
                    credits: written.credits,
                    provider: written.provider,
                });
            }
            tracing::warn!(attempt, "written template body does not pass the template rules");
        }
        Err(Error::unavailable("messaging.whatsapp_template_text_unusable"))
    }

    async fn number_row(&self, p: &Principal, number: &str) -> Result<NumberRow, Error> {
        let id = parse_id(number, "messaging.whatsapp_number_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let n =
            repo::number(&mut tx, id).await?.ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        db::commit(tx).await?;
        Ok(n)
    }

    pub async fn create_template(&self, p: &Principal, number: &str, draft: &Draft) -> Result<Template, Error> {
        p.require(Action::Write)?;
        let params = draft.check()?;
        let number = self.number_row(p, number).await?;
        let id = Uuid::now_v7();
        let components = draft.components();
        let new = repo::NewTemplate {
            id,
            number_id: number.id,
            name: &draft.name,
            language: &draft.language,
            category: draft.category.as_str(),
            components: &components,
            body_params: i32::try_from(params).unwrap_or(i32::MAX),
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !repo::insert_template(&mut tx, p.workspace_id, &new).await? {
            return Err(Error::new(ErrorKind::Conflict, "messaging.whatsapp_template_exists"));
        }
        let row = repo::template(&mut tx, id).await?.ok_or_else(|| Error::internal("template vanished"))?;
        db::commit(tx).await?;
        Ok(view(row))
    }

    async fn template_row(&self, p: &Principal, id: &str) -> Result<(TemplateRow, NumberRow), Error> {
        let id = parse_id(id, "messaging.whatsapp_template_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let t = repo::template(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_template_not_found"))?;
        // A disconnected number's templates are not found with it.
        let n = repo::number(&mut tx, t.number_id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_template_not_found"))?;
        db::commit(tx).await?;
        Ok((t, n))
    }

    /// Sends a draft (or a rejected template, edited) to Meta's review.
    pub async fn submit_template(&self, p: &Principal, id: &str) -> Result<Template, Error> {
        p.require(Action::Write)?;
        let (t, number) = self.template_row(p, id).await?;
        if !matches!(t.status.as_str(), "draft" | "rejected") {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_template_submitted")
                .with_param("status", t.status));
        }
        let provider = self.provider_for(&number)?;
        let token = self.number_token(&number)?;
        let account = Account { waba_id: &number.waba_id, token: &token };
        let body = json!({"name": t.name, "language": t.language, "category": t.category.to_ascii_uppercase(),
                          "components": t.components.0});
        let state = provider.create_template(&account, &body).await.map_err(provider_error)?;
        let review = Review::from_meta(&state.status);
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let reason = state.rejected_reason.unwrap_or_default();
        let meta_id = Some(state.id.as_str()).filter(|s| !s.is_empty());
        repo::set_review(&mut tx, t.id, review.as_str(), &reason, meta_id).await?;
        let row = repo::template(&mut tx, t.id).await?.ok_or_else(|| Error::internal("template vanished"))?;
        db::commit(tx).await?;
        Ok(view(row))
    }

    /// Reads every submitted template's review from Meta (approved, rejected with its reason,
    /// paused, disabled).
    pub async fn sync_templates(&self, p: &Principal, number: &str) -> Result<Vec<Template>, Error> {
        p.require(Action::Write)?;
        let number = self.number_row(p, number).await?;
        let provider = self.provider_for(&number)?;
        let token = self.number_token(&number)?;
        let states =
            provider.templates(&Account { waba_id: &number.waba_id, token: &token }).await.map_err(provider_error)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        for t in repo::templates(&mut tx, number.id).await? {
            if t.status == "draft" {
                continue;
            }
            let Some(s) = states.iter().find(|s| s.name == t.name && s.language == t.language) else { continue };
            let review = Review::from_meta(&s.status);
            let reason = s.rejected_reason.clone().filter(|r| r != "NONE").unwrap_or_default();
            if review.as_str() != t.status || reason != t.reason {
                repo::set_review(&mut tx, t.id, review.as_str(), &reason, None).await?;
            }
        }
        let rows = repo::templates(&mut tx, number.id).await?;
        db::commit(tx).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    pub async fn templates(&self, p: &Principal, number: &str) -> Result<Vec<Template>, Error> {
        p.require(Action::Read)?;
        let number = self.number_row(p, number).await?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::templates(&mut tx, number.id).await?;
        db::commit(tx).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    pub async fn template(&self, p: &Principal, id: &str) -> Result<Template, Error> {
        p.require(Action::Read)?;
        Ok(view(self.template_row(p, id).await?.0))
    }

    /// Deletes at Meta (when submitted) and here.
    pub async fn delete_template(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let (t, number) = self.template_row(p, id).await?;
        if t.status != "draft" {
            let provider = self.provider_for(&number)?;
            let token = self.number_token(&number)?;
            let account = Account { waba_id: &number.waba_id, token: &token };
            provider.delete_template(&account, &t.name).await.map_err(provider_error)?;
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::delete_template(&mut tx, t.id).await?;
        db::commit(tx).await
    }
}
