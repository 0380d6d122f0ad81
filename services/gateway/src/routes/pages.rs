//! `/v1/pages`: magic landing pages (drafts, versions, sections, publishing). The public
//! addresses the pages are served at are in `public_pages`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::nexus::content::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    PageQuery, content_client as client, dir_name, idempotency_key, next_cursor, non_empty as opt, page_request, ts,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_page, list_pages))
        .routes(routes!(get_page, delete_page))
        .routes(routes!(list_versions))
        .routes(routes!(update_section))
        .routes(routes!(regenerate_section))
        .routes(routes!(publish))
        .routes(routes!(unpublish))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HeroBody {
    pub headline: String,
    pub subheadline: String,
    pub cta_label: String,
    /// An image of this workspace (`img_…`) shown beside the headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BenefitBody {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestimonialBody {
    pub quote: String,
    pub author: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FaqBody {
    pub q: String,
    pub a: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CtaBody {
    pub headline: String,
    pub button: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeadFormBody {
    /// Any of name, email, phone, message (email or phone required).
    pub fields: Vec<String>,
    pub submit_label: String,
    /// Empty: the localized default consent text.
    pub consent_text: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SectionsBody {
    pub hero: HeroBody,
    pub benefits: Vec<BenefitBody>,
    pub social_proof: Vec<TestimonialBody>,
    pub faq: Vec<FaqBody>,
    pub cta: CtaBody,
    pub lead_form: LeadFormBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "title": "Trail Runner X", "language": "he", "dir": "rtl", "status": "published",
    "slug": "trail-runner", "current_version": 3, "published_version": 3, "views": 120, "leads": 7, "provider": "local",
    "sections": {"hero": {"headline": "…", "subheadline": "…", "cta_label": "…"}, "benefits": [], "social_proof": [], "faq": [],
        "cta": {"headline": "…", "button": "…"}, "lead_form": {"fields": ["name", "email"], "submit_label": "…", "consent_text": ""}}}))]
pub struct PageBody {
    pub id: String,
    pub title: String,
    pub language: String,
    pub dir: String,
    /// draft or published.
    pub status: String,
    /// Public address: /p/{slug}.
    pub slug: Option<String>,
    pub current_version: u32,
    pub published_version: Option<u32>,
    pub sections: Option<SectionsBody>,
    pub views: i64,
    pub leads: i64,
    pub provider: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub published_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageList {
    pub items: Vec<PageBody>,
    pub next_cursor: Option<String>,
}

pub(crate) fn page(p: pb::Page) -> PageBody {
    PageBody {
        id: p.id,
        title: p.title,
        language: p.language,
        dir: dir_name(p.dir),
        status: p.status,
        slug: opt(p.slug),
        current_version: p.current_version,
        published_version: (p.published_version > 0).then_some(p.published_version),
        sections: serde_json::from_str(&p.sections_json).ok(),
        views: p.views,
        leads: p.leads,
        provider: p.provider,
        created_at: ts(p.created_at),
        updated_at: ts(p.updated_at),
        published_at: ts(p.published_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Spring sale", "language": "ar", "tone": "friendly", "product": "Trail Runner X",
    "audience": "weekend hikers", "facts": ["free returns for 30 days"], "call_to_action": "Book a fitting"}))]
pub struct CreatePageRequest {
    /// Shown in the browser tab (up to 120 characters); default: the product name.
    #[schema(max_length = 120, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub title: Option<String>,
    /// en, es, pt, he or ar; empty or absent: your language.
    #[schema(pattern = "^(|en|es|pt|he|ar)$")]
    pub language: Option<String>,
    /// friendly (default), professional, playful, urgent or luxury.
    #[schema(pattern = "^(|friendly|professional|playful|urgent|luxury)$")]
    pub tone: Option<String>,
    /// 1 to 120 characters, not only spaces. Texts take no control characters but line breaks
    /// and tabs.
    #[schema(
        max_length = 120,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub product: String,
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub audience: Option<String>,
    #[schema(schema_with = crate::openapi::vocab::brief_facts)]
    pub facts: Option<Vec<String>>,
    #[schema(max_length = 80, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub call_to_action: Option<String>,
}

/// Generate a landing page from a brief (credits: content.page; plan limit: pages).
#[utoipa::path(post, path = "/v1/pages", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same page", example = "page-spring-sale")),
    request_body = CreatePageRequest,
    responses((status = 201, description = "The new draft page", body = PageBody), (status = 400, description = "Invalid brief", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 402, description = "Not enough credits or page limit reached", body = ErrorEnvelope),
        (status = 503, description = "Content or billing unavailable", body = ErrorEnvelope)))]
pub async fn create_page(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiJson(b): ApiJson<CreatePageRequest>,
) -> Result<(StatusCode, Json<PageBody>), ApiError> {
    let req = pb::CreatePageRequest {
        title: b.title.unwrap_or_default(),
        language: b.language.unwrap_or_default(),
        tone: b.tone.unwrap_or_default(),
        product: b.product,
        description: b.description.unwrap_or_default(),
        audience: b.audience.unwrap_or_default(),
        facts: b.facts.unwrap_or_default(),
        call_to_action: b.call_to_action.unwrap_or_default(),
        idempotency_key: idempotency_key(&headers)?,
    };
    Ok((StatusCode::CREATED, Json(page(client(&state).create_page(req).await?.into_inner()))))
}

/// Pages of the current workspace, newest first.
#[utoipa::path(get, path = "/v1/pages", tag = "pages", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of pages", body = PageList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_pages(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<PageList>, ApiError> {
    let r = client(&state).list_pages(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(PageList { items: r.items.into_iter().map(page).collect(), next_cursor: next_cursor(r.page) }))
}

/// One page with its current sections.
#[utoipa::path(get, path = "/v1/pages/{id}", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The page", body = PageBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such page in this workspace", body = ErrorEnvelope)))]
pub async fn get_page(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PageBody>, ApiError> {
    Ok(Json(page(client(&state).get_page(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Delete a page (unpublishing it first).
#[utoipa::path(delete, path = "/v1/pages/{id}", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such page in this workspace", body = ErrorEnvelope)))]
pub async fn delete_page(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_page(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageVersionBody {
    pub version: u32,
    /// created, edit:<section> or regenerate:<section>.
    pub change: String,
    pub sections: Option<SectionsBody>,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageVersionList {
    pub items: Vec<PageVersionBody>,
}

/// Every version of a page, newest first.
#[utoipa::path(get, path = "/v1/pages/{id}/versions", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Versions", body = PageVersionList), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such page in this workspace", body = ErrorEnvelope)))]
pub async fn list_versions(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PageVersionList>, ApiError> {
    let r = client(&state).list_page_versions(pb::GetByIdRequest { id }).await?.into_inner();
    Ok(Json(PageVersionList {
        items: r
            .items
            .into_iter()
            .map(|v| PageVersionBody {
                version: v.version,
                change: v.change,
                sections: serde_json::from_str(&v.sections_json).ok(),
                created_at: ts(v.created_at),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": [{"q": "Do you ship abroad?", "a": "Yes, to 30 countries."}], "base_version": 3}))]
pub struct UpdateSectionRequest {
    /// The section's new content, in that section's schema (see `SectionsBody`).
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// The version you edited; a newer one on the server answers 409.
    pub base_version: Option<u32>,
}

/// Replace one section (hero, benefits, social_proof, faq, cta, lead_form), as a new version.
#[utoipa::path(put, path = "/v1/pages/{id}/sections/{section}", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"), ("section" = String, Path, example = "faq", pattern = "^(hero|benefits|social_proof|faq|cta|lead_form)$")),
    request_body = UpdateSectionRequest,
    responses((status = 200, description = "The page at its new version", body = PageBody), (status = 400, description = "Unknown section or invalid content", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such page in this workspace", body = ErrorEnvelope),
        (status = 409, description = "The page changed since base_version", body = ErrorEnvelope)))]
pub async fn update_section(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath((id, section)): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<UpdateSectionRequest>,
) -> Result<Json<PageBody>, ApiError> {
    let req = pb::UpdateSectionRequest {
        page_id: id,
        section,
        content_json: b.content.to_string(),
        base_version: b.base_version.unwrap_or(0),
    };
    Ok(Json(page(client(&state).update_section(req).await?.into_inner())))
}

/// Write one section anew from the page's brief (credits: content.generation), as a new version.
#[utoipa::path(post, path = "/v1/pages/{id}/sections/{section}/regenerate", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"), ("section" = String, Path, example = "hero", pattern = "^(hero|benefits|social_proof|faq|cta|lead_form)$"),
        ("Idempotency-Key" = Option<String>, Header, example = "regen-hero-1")),
    responses((status = 200, description = "The page at its new version", body = PageBody), (status = 400, description = "Unknown section", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 402, description = "Not enough credits", body = ErrorEnvelope),
        (status = 404, description = "No such page in this workspace", body = ErrorEnvelope)))]
pub async fn regenerate_section(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiPath((id, section)): ApiPath<(String, String)>,
) -> Result<Json<PageBody>, ApiError> {
    let req = pb::RegenerateSectionRequest { page_id: id, section, idempotency_key: idempotency_key(&headers)? };
    Ok(Json(page(client(&state).regenerate_section(req).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slug": "spring-sale"}))]
pub struct PublishRequest {
    /// 3–60 of a-z, 0-9 and single inner hyphens (capitals are lower-cased), not a reserved
    /// word; required the first time, kept afterwards.
    #[schema(max_length = 60, pattern = "^([A-Za-z0-9]+(-[A-Za-z0-9]+)*)?$")]
    pub slug: Option<String>,
}

/// Publish the current version at /p/{slug}.
#[utoipa::path(post, path = "/v1/pages/{id}/publish", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    request_body = PublishRequest,
    responses((status = 200, description = "Published", body = PageBody), (status = 400, description = "Invalid, reserved or missing slug", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such page in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Slug used by another page", body = ErrorEnvelope)))]
pub async fn publish(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<PublishRequest>,
) -> Result<Json<PageBody>, ApiError> {
    Ok(Json(page(
        client(&state)
            .publish_page(pb::PublishPageRequest { id, slug: b.slug.unwrap_or_default() })
            .await?
            .into_inner(),
    )))
}

/// Take a page off the web (its slug stays reserved for it).
#[utoipa::path(post, path = "/v1/pages/{id}/unpublish", tag = "pages", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Unpublished", body = PageBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such page in this workspace", body = ErrorEnvelope)))]
pub async fn unpublish(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PageBody>, ApiError> {
    Ok(Json(page(client(&state).unpublish_page(pb::GetByIdRequest { id }).await?.into_inner())))
}
