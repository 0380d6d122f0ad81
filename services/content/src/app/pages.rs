//! Magic pages: generate from a brief, keep every change as a version, edit or regenerate one
//! section, publish under a unique slug, serve published pages to the public, capture leads.

use nexus_kernel::{Error, ErrorKind, Locale, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Outcome, caller_locale, check_key, fresh, joined, settle_in, spawn_in_context, within_limit};
use crate::domain::generation::Brief;
use crate::domain::pages::{LeadInput, MagicPage, PageVersion, SectionName, Sections, parse_slug};
use crate::domain::render::html::{PageView, render};
use crate::domain::{ImageId, LeadId, PageId, parse_id, text_field};
use crate::events::{self, CapturedLead};
use crate::repo::pages::{self as repo, NewLead, NewPage, NewVersion};
use crate::repo::{Limited, images};

/// A page as the public sees it.
#[derive(Debug, Clone)]
pub struct Published {
    pub html: String,
    pub language: Locale,
    pub etag: String,
}

/// A lead form submission as received from the gateway.
#[derive(Debug, Clone, Default)]
pub struct LeadSubmission {
    pub lead: LeadInput,
    pub honeypot: String,
    pub consent: bool,
    pub client_ip: String,
}

/// A new version of `page` on top of its current one.
fn next_version<'a>(
    tenant: TenantId,
    page: &MagicPage,
    change: &'a str,
    sections: &'a Sections,
    actor: &'a str,
) -> NewVersion<'a> {
    NewVersion { tenant, page: page.id, version: page.current_version + 1, change, sections, actor }
}

impl App {
    async fn page_row(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<MagicPage, Error> {
        repo::get(conn, id, lock).await?.ok_or_else(|| Error::not_found("content.page_not_found"))
    }

    #[tracing::instrument(skip_all)]
    pub async fn create_page(&self, p: &Principal, title: &str, brief: Brief, key: &str) -> Result<MagicPage, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let tenant = p.workspace_id;
        let id = PageId::new();
        let title = text_field("title", title, 120, false)?;
        let title = if title.is_empty() { brief.product.clone() } else { title };
        let key = if key.is_empty() { id.to_string() } else { key.to_owned() };
        {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let existing = repo::id_by_key(&mut tx, &key).await?;
            if let Some(existing) = existing {
                return Self::page_row(&mut tx, existing, false).await;
            }
            let limit = self.credits.limit("pages").await?;
            within_limit(&mut tx, tenant, Limited::Pages, "pages", limit).await?;
        }
        let hold = self
            .credits
            .reserve("content.page", 1, 0, &format!("content.page:{key}"), self.cfg.generation.reservation_ttl)
            .await?;
        fresh(&hold)?;
        let text = self.text.clone();
        let b = brief.clone();
        let job = format!("content.page:{id}");
        let generated = joined(spawn_in_context(async move { text.page(&b, 1).await }).await);
        let mut sections = match generated {
            Ok((s, _, _)) => s,
            Err(e) => {
                self.give_back(tenant, &hold, &job).await;
                return Err(e);
            }
        };
        let stored = async {
            sections.validate()?;
            let limit = self.credits.limit("pages").await?;
            let mut tx = db::tenant(&self.pool, tenant).await?;
            within_limit(&mut tx, tenant, Limited::Pages, "pages", limit).await?;
            let new = NewPage {
                id: id.as_uuid(),
                tenant,
                title: &title,
                brief: &brief,
                provider: self.text.provider(),
                key: &key,
            };
            let inserted = repo::insert(&mut tx, &new).await?;
            if !inserted {
                // A twin request with the same key (so the same hold) stored first; it settles.
                return Err(Error::new(ErrorKind::Conflict, "content.idempotency_key_reused"));
            }
            let actor = p.actor();
            let first = NewVersion {
                tenant,
                page: id.as_uuid(),
                version: 1,
                change: "created",
                sections: &sections,
                actor: &actor,
            };
            repo::add_version(&mut tx, &first).await?;
            let row = Self::page_row(&mut tx, id.as_uuid(), false).await?;
            settle_in(&mut tx, tenant, &hold, &job, Outcome::Charge(hold.amount)).await?;
            db::commit(tx).await?;
            Ok(row)
        }
        .await;
        self.give_back_on_failure(tenant, &hold, &job, &stored).await;
        stored
    }

    #[tracing::instrument(skip_all, fields(page = %id))]
    pub async fn get_page(&self, p: &Principal, id: &str) -> Result<MagicPage, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = Self::page_row(&mut tx, id.as_uuid(), false).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_pages(&self, p: &Principal, page: &PageRequest) -> Result<nexus_kernel::Page<MagicPage>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(rows)
    }

    #[tracing::instrument(skip_all, fields(page = %id))]
    pub async fn list_versions(&self, p: &Principal, id: &str) -> Result<Vec<PageVersion>, Error> {
        let page = self.get_page(p, id).await?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::versions(&mut tx, page.id).await?;
        db::commit(tx).await?;
        Ok(rows)
    }

    /// Replaces one section with the caller's content, as a new version.
    #[tracing::instrument(skip_all, fields(page = %id, section))]
    pub async fn update_section(
        &self,
        p: &Principal,
        id: &str,
        section: &str,
        json: &str,
        base: u32,
    ) -> Result<MagicPage, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let name = SectionName::parse(section)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = Self::page_row(&mut tx, id.as_uuid(), true).await?;
        if base != 0 && i64::from(base) != i64::from(page.current_version) {
            return Err(Error::new(ErrorKind::Conflict, "content.version_conflict")
                .with_param("current", page.current_version.to_string()));
        }
        let mut sections = page.sections.clone();
        sections.replace(name, json)?;
        if let Some(image) = &sections.hero.image_id
            && page.sections.hero.image_id.as_ref() != Some(image)
        {
            Self::check_image(&mut tx, image).await?;
        }
        let (change, actor) = (format!("edit:{}", name.as_str()), p.actor());
        repo::add_version(&mut tx, &next_version(p.workspace_id, &page, &change, &sections, &actor)).await?;
        let row = Self::page_row(&mut tx, page.id, false).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    /// A page may only show images of its own workspace (RLS makes others invisible).
    async fn check_image(conn: &mut PgConnection, image: &str) -> Result<(), Error> {
        let id = ImageId::parse(image).map_err(|_| Error::not_found("content.image_not_found"))?;
        if images::exists(conn, id.as_uuid()).await? {
            Ok(())
        } else {
            Err(Error::not_found("content.image_not_found"))
        }
    }

    /// Writes one section anew from the page's brief, as a new version.
    #[tracing::instrument(skip_all, fields(page = %id, section))]
    pub async fn regenerate_section(
        &self,
        p: &Principal,
        id: &str,
        section: &str,
        key: &str,
    ) -> Result<MagicPage, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let name = SectionName::parse(section)?;
        let page = self.get_page(p, id).await?;
        let key = if key.is_empty() { Uuid::now_v7().to_string() } else { key.to_owned() };
        let hold = self
            .credits
            .reserve(
                "content.generation",
                1,
                0,
                &format!("content.regenerate:{key}"),
                self.cfg.generation.reservation_ttl,
            )
            .await?;
        if hold.status == "committed" {
            // This key's regeneration is done and paid: answer with the page as it is now.
            return self.get_page(p, id).await;
        }
        fresh(&hold)?;
        let text = self.text.clone();
        let brief = page.brief.clone();
        let variation = u32::try_from(page.current_version).unwrap_or(1) + 1;
        let job = format!("content.regenerate:{}:{}", PageId::from_uuid(page.id), name.as_str());
        let fresh = match joined(spawn_in_context(async move { text.page(&brief, variation).await }).await) {
            Ok((s, _, _)) => s,
            Err(e) => {
                self.give_back(p.workspace_id, &hold, &job).await;
                return Err(e);
            }
        };
        let stored = async {
            let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
            // Applied to the latest version, whatever changed while generating.
            let page = Self::page_row(&mut tx, page.id, true).await?;
            let mut sections = page.sections.clone();
            sections.take_section(name, fresh);
            sections.validate()?;
            let (change, actor) = (format!("regenerate:{}", name.as_str()), p.actor());
            repo::add_version(&mut tx, &next_version(p.workspace_id, &page, &change, &sections, &actor)).await?;
            let row = Self::page_row(&mut tx, page.id, false).await?;
            settle_in(&mut tx, p.workspace_id, &hold, &job, Outcome::Charge(hold.amount)).await?;
            db::commit(tx).await?;
            Ok(row)
        }
        .await;
        if stored.is_err() {
            self.give_back(p.workspace_id, &hold, &job).await;
        }
        stored
    }

    /// Freezes the current version as the published one, under `slug` (required the first time).
    #[tracing::instrument(skip_all, fields(page = %id))]
    pub async fn publish(&self, p: &Principal, id: &str, slug: &str) -> Result<MagicPage, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let slug = if slug.trim().is_empty() { None } else { Some(parse_slug(slug)?) };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = Self::page_row(&mut tx, id.as_uuid(), true).await?;
        let slug = slug
            .or(page.slug.clone())
            .ok_or_else(|| Error::invalid("content.slug_required").with_violation("slug", "required"))?;
        repo::publish(&mut tx, page.id, &slug).await?;
        events::page_published(&mut tx, p.workspace_id, page.id, &slug, page.current_version, &page.language).await?;
        let row = Self::page_row(&mut tx, page.id, false).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(page = %id))]
    pub async fn unpublish(&self, p: &Principal, id: &str) -> Result<MagicPage, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = Self::page_row(&mut tx, id.as_uuid(), true).await?;
        if page.status == "published" {
            repo::unpublish(&mut tx, page.id).await?;
            let slug = page.slug.as_deref().unwrap_or_default();
            events::page_unpublished(&mut tx, p.workspace_id, page.id, slug).await?;
        }
        let row = Self::page_row(&mut tx, page.id, false).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(page = %id))]
    pub async fn delete_page(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let page = self.unpublish(p, id).await?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::delete(&mut tx, page.id).await?;
        db::commit(tx).await?;
        Ok(())
    }

    /// The published page behind a slug: (page id, tenant). Looked up across workspaces (the
    /// public address names no workspace); everything after runs in that page's tenant.
    async fn published_by_slug(&self, slug: &str) -> Result<(Uuid, TenantId), Error> {
        let not_found = || Error::not_found("content.page_not_found");
        let slug = parse_slug(slug).map_err(|_| not_found())?;
        let mut tx = db::system(&self.pool).await?;
        let found = repo::published_by_slug(&mut tx, &slug).await?;
        db::commit(tx).await?;
        found.ok_or_else(not_found)
    }

    async fn published_sections(conn: &mut PgConnection, page: Uuid) -> Result<(MagicPage, Sections), Error> {
        let row = Self::page_row(conn, page, false).await?;
        let version = row.published_version.ok_or_else(|| Error::not_found("content.page_not_found"))?;
        let sections = repo::version_sections(conn, page, version).await?;
        Ok((row, sections))
    }

    /// The public page as HTML. `count_view` is false for HEAD requests and previews.
    #[tracing::instrument(skip_all, fields(slug))]
    pub async fn published_page(&self, slug: &str, count_view: bool, thanks: bool) -> Result<Published, Error> {
        let (id, tenant) = self.published_by_slug(slug).await?;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let (row, sections) = Self::published_sections(&mut tx, id).await?;
        let hero_image = match &sections.hero.image_id {
            Some(image) => Self::finished_image(&mut tx, image).await?.is_some(),
            None => false,
        };
        if count_view {
            repo::count_view(&mut tx, id).await?;
        }
        db::commit(tx).await?;
        let language: Locale = row.language.parse().unwrap_or_default();
        let slug = row.slug.clone().unwrap_or_default();
        let html =
            render(&PageView { title: &row.title, language, slug: &slug, sections: &sections, hero_image, thanks });
        let etag = hex::encode(&Sha256::digest(html.as_bytes())[..12]);
        Ok(Published { html, language, etag })
    }

    async fn finished_image(conn: &mut PgConnection, image: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
        let Ok(id) = ImageId::parse(image) else { return Ok(None) };
        images::finished(conn, id.as_uuid()).await
    }

    /// An image shown by a published page; nothing else of the workspace is reachable this way.
    #[tracing::instrument(skip_all, fields(slug, asset))]
    pub async fn published_asset(&self, slug: &str, asset: &str) -> Result<(String, Vec<u8>), Error> {
        let not_found = || Error::not_found("content.image_not_found");
        let (id, tenant) = self.published_by_slug(slug).await?;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let (_, sections) = Self::published_sections(&mut tx, id).await?;
        if sections.hero.image_id.as_deref() != Some(asset) {
            return Err(not_found());
        }
        let found = Self::finished_image(&mut tx, asset).await?;
        db::commit(tx).await?;
        found.ok_or_else(not_found)
    }

    /// A lead from a published page's form. A filled honeypot answers exactly like success and
    /// stores nothing, so bots learn nothing.
    #[tracing::instrument(skip_all, fields(slug))]
    pub async fn capture_lead(&self, slug: &str, sub: LeadSubmission) -> Result<Locale, Error> {
        let (id, tenant) = self.published_by_slug(slug).await?;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let (row, sections) = Self::published_sections(&mut tx, id).await?;
        let language: Locale = row.language.parse().unwrap_or_default();
        if !sub.honeypot.trim().is_empty() {
            metrics::counter!("nexus_content_leads_honeypot_total").increment(1);
            return Ok(language);
        }
        let ip_hash = hex::encode(Sha256::digest(format!("{id}:{}", sub.client_ip).as_bytes()));
        let window = i64::try_from(self.cfg.pages.lead_rate_window.as_secs()).unwrap_or(600);
        let recent = repo::recent_leads(&mut tx, id, &ip_hash, window as f64).await?;
        if recent.0 >= self.cfg.pages.lead_rate_limit {
            let wait = recent.1.unwrap_or(60.0).ceil().max(1.0) as u64;
            return Err(
                Error::new(ErrorKind::RateLimited, "request.rate_limited").with_param("retry_after", wait.to_string())
            );
        }
        let lead = sub.lead.validate(&sections.lead_form)?;
        let lead_id = LeadId::new();
        let new = NewLead {
            id: lead_id.as_uuid(),
            tenant,
            page: id,
            version: row.published_version.unwrap_or(row.current_version),
            contact: &lead,
            consent: sub.consent,
            language: language.code(),
            ip_hash: &ip_hash,
        };
        repo::insert_lead(&mut tx, &new).await?;
        let slug = row.slug.as_deref().unwrap_or_default();
        let captured = CapturedLead { page: id, lead: lead_id, slug, language, contact: lead, consent: sub.consent };
        events::lead_captured(&mut tx, tenant, captured).await?;
        db::commit(tx).await?;
        metrics::counter!("nexus_content_leads_total").increment(1);
        Ok(language)
    }

    /// The brief of a new page, in the caller's language when none is given.
    pub fn page_brief(&self, p: &Principal, raw: crate::domain::generation::RawBrief<'_>) -> Result<Brief, Error> {
        Brief::parse(raw, caller_locale(Some(p)))
    }
}
