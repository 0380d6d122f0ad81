//! `magic_pages`, `page_versions`, `page_views` and `page_leads`.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::generation::Brief;
use crate::domain::pages::{LeadInput, MagicPage, PageVersion, Sections};

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    title: String,
    language: String,
    brief: Json<Brief>,
    status: String,
    slug: Option<String>,
    current_version: i32,
    published_version: Option<i32>,
    provider: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    sections: Json<Sections>,
    views: i64,
    leads: i64,
}

impl From<Row> for MagicPage {
    fn from(r: Row) -> Self {
        MagicPage {
            id: r.id,
            title: r.title,
            language: r.language,
            brief: r.brief.0,
            status: r.status,
            slug: r.slug,
            current_version: r.current_version,
            published_version: r.published_version,
            provider: r.provider,
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
            sections: r.sections.0,
            views: r.views,
            leads: r.leads,
        }
    }
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    version: i32,
    change: String,
    sections: Json<Sections>,
    created_at: DateTime<Utc>,
}

const COLUMNS: &str = "p.id, p.title, p.language, p.brief, p.status, p.slug, p.current_version, \
    p.published_version, p.provider, p.created_at, p.updated_at, p.published_at, v.sections, \
    coalesce((SELECT views FROM page_views pv WHERE pv.page_id = p.id), 0) AS views, \
    (SELECT count(*) FROM page_leads l WHERE l.page_id = p.id) AS leads";

const FROM: &str = "magic_pages p JOIN page_versions v ON v.page_id = p.id AND v.version = p.current_version";

/// A page at its current version; `lock` takes the page row for update.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<MagicPage>, Error> {
    let lock = if lock { " FOR UPDATE OF p" } else { "" };
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM {FROM} WHERE p.id = $1{lock}")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .db()?;
    Ok(row.map(Into::into))
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<MagicPage>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE {}", Keyset::newest_first_by("p.created_at", "p.id", 1));
    let rows: Vec<Row> = keyset.bind(sqlx::query_as(sqlx::AssertSqlSafe(sql))).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows.into_iter().map(MagicPage::from).collect(), |p| (p.created_at, p.id)))
}

pub async fn id_by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar("SELECT id FROM magic_pages WHERE idempotency_key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await
        .db()
}

/// A page to store (its first version is added with [`add_version`]).
pub struct NewPage<'a> {
    pub id: Uuid,
    pub tenant: TenantId,
    pub title: &'a str,
    pub brief: &'a Brief,
    pub provider: &'a str,
    pub key: &'a str,
}

/// Stores a page; `false` when one with the same idempotency key is already there.
pub async fn insert(conn: &mut PgConnection, p: &NewPage<'_>) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO magic_pages (id, tenant_id, title, language, brief, provider, idempotency_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
    )
    .bind(p.id)
    .bind(p.tenant.as_uuid())
    .bind(p.title)
    .bind(p.brief.language.code())
    .bind(Json(p.brief))
    .bind(p.provider)
    .bind(p.key)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(inserted == 1)
}

/// A new version of a page, which becomes its current one.
pub struct NewVersion<'a> {
    pub tenant: TenantId,
    pub page: Uuid,
    pub version: i32,
    pub change: &'a str,
    pub sections: &'a Sections,
    pub actor: &'a str,
}

pub async fn add_version(conn: &mut PgConnection, v: &NewVersion<'_>) -> Result<(), Error> {
    sqlx::query("INSERT INTO page_versions (tenant_id, page_id, version, change, sections, created_by) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(v.tenant.as_uuid())
        .bind(v.page)
        .bind(v.version)
        .bind(v.change)
        .bind(Json(v.sections))
        .bind(v.actor)
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::query("UPDATE magic_pages SET current_version = $2, updated_at = now() WHERE id = $1")
        .bind(v.page)
        .bind(v.version)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// Every version of a page, newest first.
pub async fn versions(conn: &mut PgConnection, page: Uuid) -> Result<Vec<PageVersion>, Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT version, change, sections, created_at FROM page_versions WHERE page_id = $1 ORDER BY version DESC",
    )
    .bind(page)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|v| PageVersion { version: v.version, change: v.change, sections: v.sections.0, created_at: v.created_at })
        .collect())
}

/// The sections of one version.
pub async fn version_sections(conn: &mut PgConnection, page: Uuid, version: i32) -> Result<Sections, Error> {
    let Json(sections): Json<Sections> =
        sqlx::query_scalar("SELECT sections FROM page_versions WHERE page_id = $1 AND version = $2")
            .bind(page)
            .bind(version)
            .fetch_one(conn)
            .await
            .db()?;
    Ok(sections)
}

/// Publishes the current version under `slug`; a slug another page holds is a conflict.
pub async fn publish(conn: &mut PgConnection, page: Uuid, slug: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE magic_pages SET slug = $2, status = 'published', published_version = current_version, \
         published_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(page)
    .bind(slug)
    .execute(conn)
    .await
    .map_err(|e| {
        let unique = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505");
        if unique {
            Error::new(ErrorKind::Conflict, "content.slug_taken").with_param("slug", slug)
        } else {
            nexus_platform::db::error(e)
        }
    })?;
    Ok(())
}

pub async fn unpublish(conn: &mut PgConnection, page: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE magic_pages SET status = 'draft', published_version = NULL, updated_at = now() WHERE id = $1")
        .bind(page)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, page: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM magic_pages WHERE id = $1").bind(page).execute(conn).await.db()?;
    Ok(())
}

/// The published page behind a slug and its workspace (run in a system transaction: the public
/// address names no workspace).
pub async fn published_by_slug(conn: &mut PgConnection, slug: &str) -> Result<Option<(Uuid, TenantId)>, Error> {
    let found: Option<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, tenant_id FROM magic_pages WHERE slug = $1 AND status = 'published'")
            .bind(slug)
            .fetch_optional(conn)
            .await
            .db()?;
    Ok(found.map(|(id, t)| (id, TenantId::from_uuid(t))))
}

pub async fn count_view(conn: &mut PgConnection, page: Uuid) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO page_views (page_id, views) VALUES ($1, 1) ON CONFLICT (page_id) DO UPDATE SET views = page_views.views + 1",
    )
    .bind(page)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Leads from one address hash within the last `window_secs`: how many, and the seconds until
/// the oldest of them leaves the window.
pub async fn recent_leads(
    conn: &mut PgConnection,
    page: Uuid,
    ip_hash: &str,
    window_secs: f64,
) -> Result<(i64, Option<f64>), Error> {
    sqlx::query_as(
        "SELECT count(*), extract(epoch FROM (min(created_at) + make_interval(secs => $3) - now()))::float8 \
         FROM page_leads WHERE page_id = $1 AND ip_hash = $2 AND created_at > now() - make_interval(secs => $3)",
    )
    .bind(page)
    .bind(ip_hash)
    .bind(window_secs)
    .fetch_one(conn)
    .await
    .db()
}

/// A validated lead to store.
pub struct NewLead<'a> {
    pub id: Uuid,
    pub tenant: TenantId,
    pub page: Uuid,
    pub version: i32,
    pub contact: &'a LeadInput,
    pub consent: bool,
    pub language: &'a str,
    pub ip_hash: &'a str,
}

pub async fn insert_lead(conn: &mut PgConnection, l: &NewLead<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO page_leads (id, tenant_id, page_id, version, name, email, phone, message, consent, language, ip_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(l.id)
    .bind(l.tenant.as_uuid())
    .bind(l.page)
    .bind(l.version)
    .bind(&l.contact.name)
    .bind(&l.contact.email)
    .bind(&l.contact.phone)
    .bind(&l.contact.message)
    .bind(l.consent)
    .bind(l.language)
    .bind(l.ip_hash)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}
