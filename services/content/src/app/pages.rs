//! Magic pages: generate from a brief, keep every change as a version, edit or regenerate one
//! section, publish under a unique slug, serve published pages to the public, capture leads.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Locale, PageRequest, TenantId};
use nexus_platform::db::{begin_system, begin_tenant};
use nexus_platform::identity::{Action, Principal};
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::{App, Outcome, caller_locale, check_key, db, fresh, joined, settle_in, spawn_in_context};
use crate::domain::generation::Brief;
use crate::domain::pages::{LeadInput, SectionName, Sections, parse_slug};
use crate::domain::{ImageId, LeadId, PageId, parse_id, text_field};
use crate::domain::render::html::{PageView, render};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PageRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub title: String,
    pub language: String,
    pub brief: Json<Brief>,
    pub status: String,
    pub slug: Option<String>,
    pub current_version: i32,
    pub published_version: Option<i32>,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub sections: Json<Sections>,
    pub views: i64,
    pub leads: i64,
}

const PAGE_COLUMNS: &str = "p.id, p.tenant_id, p.title, p.language, p.brief, p.status, p.slug, p.current_version, \
    p.published_version, p.provider, p.created_at, p.updated_at, p.published_at, v.sections, \
    coalesce((SELECT views FROM page_views pv WHERE pv.page_id = p.id), 0) AS views, \
    (SELECT count(*) FROM page_leads l WHERE l.page_id = p.id) AS leads";

const PAGE_FROM: &str = "magic_pages p JOIN page_versions v ON v.page_id = p.id AND v.version = p.current_version";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i32,
    pub change: String,
    pub sections: Json<Sections>,
    pub created_at: DateTime<Utc>,
}

/// A page as the public sees it.
#[derive(Debug, Clone)]
pub struct Published {
    pub html: String,
    pub language: Locale,
    pub etag: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

/// A lead form submission as received from the gateway.
#[derive(Debug, Clone, Default)]
pub struct LeadSubmission {
    pub lead: LeadInput,
    pub honeypot: String,
    pub consent: bool,
    pub client_ip: String,
}

fn conflict_on_slug(e: sqlx::Error, slug: &str) -> Error {
    let unique = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505");
    if unique { Error::new(ErrorKind::Conflict, "content.slug_taken").with_param("slug", slug) } else { db(e) }
}

/// Plan limit on pages, checked against the pages that exist (not a monthly counter): a
/// workspace on FREE may keep three pages, whatever it deletes and creates.
pub(crate) async fn within_limit(
    conn: &mut PgConnection,
    tenant: TenantId,
    table: &str,
    feature: &str,
    limit: i64,
) -> Result<(), Error> {
    // One writer at a time per workspace and feature, so two creations cannot both pass.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{tenant}:{feature}"))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let used: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if used >= limit {
        return Err(Error::new(ErrorKind::PaymentRequired, "subscriptions.limit_reached")
            .with_param("feature", feature)
            .with_param("limit", limit.to_string()));
    }
    Ok(())
}

impl App {
    async fn page_row(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<PageRow, Error> {
        let lock = if lock { " FOR UPDATE OF p" } else { "" };
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PAGE_COLUMNS} FROM {PAGE_FROM} WHERE p.id = $1{lock}")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("content.page_not_found"))
    }

    pub async fn create_page(&self, p: &Principal, title: &str, brief: Brief, key: &str) -> Result<PageRow, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let tenant = p.workspace_id;
        let id = PageId::new();
        let title = text_field("title", title, 120, false)?;
        let title = if title.is_empty() { brief.product.clone() } else { title };
        let key = if key.is_empty() { id.to_string() } else { key.to_owned() };
        {
            let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
            let existing: Option<Uuid> = sqlx::query_scalar("SELECT id FROM magic_pages WHERE idempotency_key = $1")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some(existing) = existing {
                return Self::page_row(&mut tx, existing, false).await;
            }
            let limit = self.credits.limit("pages").await?;
            within_limit(&mut tx, tenant, "magic_pages", "pages", limit).await?;
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
            let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
            within_limit(&mut tx, tenant, "magic_pages", "pages", limit).await?;
            let inserted = sqlx::query(
                "INSERT INTO magic_pages (id, tenant_id, title, language, brief, provider, idempotency_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
            )
            .bind(id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(&title)
            .bind(brief.language.code())
            .bind(Json(&brief))
            .bind(self.text.provider())
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if inserted == 0 {
                // A twin request with the same key (so the same hold) stored first; it settles.
                return Err(Error::new(ErrorKind::Conflict, "content.idempotency_key_reused"));
            }
            Self::add_version(&mut tx, tenant, id.as_uuid(), 1, "created", &sections, &p.actor()).await?;
            let row = Self::page_row(&mut tx, id.as_uuid(), false).await?;
            settle_in(&mut tx, tenant, &hold, &job, Outcome::Charge(hold.amount)).await?;
            tx.commit().await.map_err(db)?;
            Ok(row)
        }
        .await;
        match &stored {
            Err(e) if e.code() == "content.idempotency_key_reused" => {}
            Err(_) => self.give_back(tenant, &hold, &job).await,
            Ok(_) => {}
        }
        stored
    }

    async fn add_version(
        conn: &mut PgConnection,
        tenant: TenantId,
        page: Uuid,
        version: i32,
        change: &str,
        sections: &Sections,
        actor: &str,
    ) -> Result<(), Error> {
        sqlx::query("INSERT INTO page_versions (tenant_id, page_id, version, change, sections, created_by) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(tenant.as_uuid())
            .bind(page)
            .bind(version)
            .bind(change)
            .bind(Json(sections))
            .bind(actor)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE magic_pages SET current_version = $2, updated_at = now() WHERE id = $1")
            .bind(page)
            .bind(version)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub async fn get_page(&self, p: &Principal, id: &str) -> Result<PageRow, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let row = Self::page_row(&mut tx, id.as_uuid(), false).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    pub async fn list_pages(&self, p: &Principal, page: &PageRequest) -> Result<nexus_kernel::Page<PageRow>, Error> {
        p.require(Action::Read)?;
        let cursor: Option<ListCursor> = page.decode_cursor()?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let rows: Vec<PageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PAGE_COLUMNS} FROM {PAGE_FROM} WHERE ($1::timestamptz IS NULL OR (p.created_at, p.id) < ($1, $2)) \
             ORDER BY p.created_at DESC, p.id DESC LIMIT $3"
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

    pub async fn list_versions(&self, p: &Principal, id: &str) -> Result<Vec<VersionRow>, Error> {
        let page = self.get_page(p, id).await?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let rows = sqlx::query_as(
            "SELECT version, change, sections, created_at FROM page_versions WHERE page_id = $1 ORDER BY version DESC",
        )
        .bind(page.id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows)
    }

    /// Replaces one section with the caller's content, as a new version.
    pub async fn update_section(
        &self,
        p: &Principal,
        id: &str,
        section: &str,
        json: &str,
        base: u32,
    ) -> Result<PageRow, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let name = SectionName::parse(section)?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let page = Self::page_row(&mut tx, id.as_uuid(), true).await?;
        if base != 0 && i64::from(base) != i64::from(page.current_version) {
            return Err(Error::new(ErrorKind::Conflict, "content.version_conflict")
                .with_param("current", page.current_version.to_string()));
        }
        let mut sections = page.sections.0.clone();
        sections.replace(name, json)?;
        if let Some(image) = &sections.hero.image_id
            && page.sections.hero.image_id.as_ref() != Some(image)
        {
            Self::check_image(&mut tx, image).await?;
        }
        Self::add_version(
            &mut tx,
            p.workspace_id,
            page.id,
            page.current_version + 1,
            &format!("edit:{}", name.as_str()),
            &sections,
            &p.actor(),
        )
        .await?;
        let row = Self::page_row(&mut tx, page.id, false).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    /// A page may only show images of its own workspace (RLS makes others invisible).
    async fn check_image(conn: &mut PgConnection, image: &str) -> Result<(), Error> {
        let id = ImageId::parse(image).map_err(|_| Error::not_found("content.image_not_found"))?;
        let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM image_assets WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(conn)
            .await
            .map_err(db)?;
        found.map(|_| ()).ok_or_else(|| Error::not_found("content.image_not_found"))
    }

    /// Writes one section anew from the page's brief, as a new version.
    pub async fn regenerate_section(
        &self,
        p: &Principal,
        id: &str,
        section: &str,
        key: &str,
    ) -> Result<PageRow, Error> {
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
        let brief = page.brief.0.clone();
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
            let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
            // Applied to the latest version, whatever changed while generating.
            let page = Self::page_row(&mut tx, page.id, true).await?;
            let mut sections = page.sections.0.clone();
            sections.take_section(name, fresh);
            sections.validate()?;
            let change = format!("regenerate:{}", name.as_str());
            Self::add_version(
                &mut tx,
                p.workspace_id,
                page.id,
                page.current_version + 1,
                &change,
                &sections,
                &p.actor(),
            )
            .await?;
            let row = Self::page_row(&mut tx, page.id, false).await?;
            settle_in(&mut tx, p.workspace_id, &hold, &job, Outcome::Charge(hold.amount)).await?;
            tx.commit().await.map_err(db)?;
            Ok(row)
        }
        .await;
        if stored.is_err() {
            self.give_back(p.workspace_id, &hold, &job).await;
        }
        stored
    }

    /// Freezes the current version as the published one, under `slug` (required the first time).
    pub async fn publish(&self, p: &Principal, id: &str, slug: &str) -> Result<PageRow, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let slug = if slug.trim().is_empty() { None } else { Some(parse_slug(slug)?) };
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let page = Self::page_row(&mut tx, id.as_uuid(), true).await?;
        let slug = slug
            .or(page.slug.clone())
            .ok_or_else(|| Error::invalid("content.slug_required").with_violation("slug", "required"))?;
        sqlx::query(
            "UPDATE magic_pages SET slug = $2, status = 'published', published_version = current_version, \
             published_at = now(), updated_at = now() WHERE id = $1",
        )
        .bind(page.id)
        .bind(&slug)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_slug(e, &slug))?;
        enqueue(
            &mut tx,
            "nexus.content.page.published",
            Some(p.workspace_id),
            &events::PagePublished {
                workspace_id: p.workspace_id.to_string(),
                page_id: PageId::from_uuid(page.id).to_string(),
                slug: slug.clone(),
                version: u32::try_from(page.current_version).unwrap_or(0),
                language: page.language.clone(),
            },
        )
        .await
        .map_err(db)?;
        let row = Self::page_row(&mut tx, page.id, false).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    pub async fn unpublish(&self, p: &Principal, id: &str) -> Result<PageRow, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, PageId::parse, "content.page_not_found")?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let page = Self::page_row(&mut tx, id.as_uuid(), true).await?;
        if page.status == "published" {
            sqlx::query(
                "UPDATE magic_pages SET status = 'draft', published_version = NULL, updated_at = now() WHERE id = $1",
            )
            .bind(page.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            enqueue(
                &mut tx,
                "nexus.content.page.unpublished",
                Some(p.workspace_id),
                &events::PageUnpublished {
                    workspace_id: p.workspace_id.to_string(),
                    page_id: PageId::from_uuid(page.id).to_string(),
                    slug: page.slug.clone().unwrap_or_default(),
                },
            )
            .await
            .map_err(db)?;
        }
        let row = Self::page_row(&mut tx, page.id, false).await?;
        tx.commit().await.map_err(db)?;
        Ok(row)
    }

    pub async fn delete_page(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let page = self.unpublish(p, id).await?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        sqlx::query("DELETE FROM magic_pages WHERE id = $1").bind(page.id).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    /// The published page behind a slug: (page id, tenant). Looked up across workspaces (the
    /// public address names no workspace); everything after runs in that page's tenant.
    async fn published_by_slug(&self, slug: &str) -> Result<(Uuid, TenantId), Error> {
        let not_found = || Error::not_found("content.page_not_found");
        let slug = parse_slug(slug).map_err(|_| not_found())?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let found: Option<(Uuid, Uuid)> =
            sqlx::query_as("SELECT id, tenant_id FROM magic_pages WHERE slug = $1 AND status = 'published'")
                .bind(&slug)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        found.map(|(id, t)| (id, TenantId::from_uuid(t))).ok_or_else(not_found)
    }

    async fn published_sections(conn: &mut PgConnection, page: Uuid) -> Result<(PageRow, Sections), Error> {
        let row = Self::page_row(conn, page, false).await?;
        let version = row.published_version.ok_or_else(|| Error::not_found("content.page_not_found"))?;
        let Json(sections): Json<Sections> =
            sqlx::query_scalar("SELECT sections FROM page_versions WHERE page_id = $1 AND version = $2")
                .bind(page)
                .bind(version)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        Ok((row, sections))
    }

    /// The public page as HTML. `count_view` is false for HEAD requests and previews.
    pub async fn published_page(&self, slug: &str, count_view: bool, thanks: bool) -> Result<Published, Error> {
        let (id, tenant) = self.published_by_slug(slug).await?;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let (row, sections) = Self::published_sections(&mut tx, id).await?;
        let hero_image = match &sections.hero.image_id {
            Some(image) => Self::finished_image(&mut tx, image).await?.is_some(),
            None => false,
        };
        if count_view {
            sqlx::query("INSERT INTO page_views (page_id, views) VALUES ($1, 1) ON CONFLICT (page_id) DO UPDATE SET views = page_views.views + 1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        let language: Locale = row.language.parse().unwrap_or_default();
        let slug = row.slug.clone().unwrap_or_default();
        let html =
            render(&PageView { title: &row.title, language, slug: &slug, sections: &sections, hero_image, thanks });
        let etag = hex::encode(&Sha256::digest(html.as_bytes())[..12]);
        Ok(Published { html, language, etag })
    }

    async fn finished_image(conn: &mut PgConnection, image: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
        let Ok(id) = ImageId::parse(image) else { return Ok(None) };
        sqlx::query_as(
            "SELECT content_type, data FROM image_assets WHERE id = $1 AND status = 'succeeded' AND data IS NOT NULL",
        )
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db)
    }

    /// An image shown by a published page; nothing else of the workspace is reachable this way.
    pub async fn published_asset(&self, slug: &str, asset: &str) -> Result<(String, Vec<u8>), Error> {
        let not_found = || Error::not_found("content.image_not_found");
        let (id, tenant) = self.published_by_slug(slug).await?;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let (_, sections) = Self::published_sections(&mut tx, id).await?;
        if sections.hero.image_id.as_deref() != Some(asset) {
            return Err(not_found());
        }
        let found = Self::finished_image(&mut tx, asset).await?;
        tx.commit().await.map_err(db)?;
        found.ok_or_else(not_found)
    }

    /// A lead from a published page's form. A filled honeypot answers exactly like success and
    /// stores nothing, so bots learn nothing.
    pub async fn capture_lead(&self, slug: &str, sub: LeadSubmission) -> Result<Locale, Error> {
        let (id, tenant) = self.published_by_slug(slug).await?;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let (row, sections) = Self::published_sections(&mut tx, id).await?;
        let language: Locale = row.language.parse().unwrap_or_default();
        if !sub.honeypot.trim().is_empty() {
            metrics::counter!("nexus_content_leads_honeypot_total").increment(1);
            return Ok(language);
        }
        let ip_hash = hex::encode(Sha256::digest(format!("{id}:{}", sub.client_ip).as_bytes()));
        let window = i64::try_from(self.cfg.pages.lead_rate_window.as_secs()).unwrap_or(600);
        let recent: (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM (min(created_at) + make_interval(secs => $3) - now()))::float8 \
             FROM page_leads WHERE page_id = $1 AND ip_hash = $2 AND created_at > now() - make_interval(secs => $3)",
        )
        .bind(id)
        .bind(&ip_hash)
        .bind(window as f64)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if recent.0 >= self.cfg.pages.lead_rate_limit {
            let wait = recent.1.unwrap_or(60.0).ceil().max(1.0) as u64;
            return Err(
                Error::new(ErrorKind::RateLimited, "request.rate_limited").with_param("retry_after", wait.to_string())
            );
        }
        let lead = sub.lead.validate(&sections.lead_form)?;
        let lead_id = LeadId::new();
        sqlx::query(
            "INSERT INTO page_leads (id, tenant_id, page_id, version, name, email, phone, message, consent, language, ip_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(lead_id.as_uuid())
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(row.published_version.unwrap_or(row.current_version))
        .bind(&lead.name)
        .bind(&lead.email)
        .bind(&lead.phone)
        .bind(&lead.message)
        .bind(sub.consent)
        .bind(language.code())
        .bind(&ip_hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        enqueue(
            &mut tx,
            "nexus.content.page.lead_captured",
            Some(tenant),
            &events::PageLeadCaptured {
                workspace_id: tenant.to_string(),
                page_id: PageId::from_uuid(id).to_string(),
                lead_id: lead_id.to_string(),
                slug: row.slug.clone().unwrap_or_default(),
                language: language.code().to_owned(),
                name: lead.name,
                email: lead.email,
                phone: lead.phone,
                message: lead.message,
                consent: sub.consent,
            },
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        metrics::counter!("nexus_content_leads_total").increment(1);
        Ok(language)
    }

    /// The brief of a new page, in the caller's language when none is given.
    pub fn page_brief(&self, p: &Principal, raw: crate::domain::generation::RawBrief<'_>) -> Result<Brief, Error> {
        Brief::parse(raw, caller_locale(Some(p)))
    }
}
