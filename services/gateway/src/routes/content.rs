//! AI copy (plain or streamed as server-sent events) and magic pages.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use nexus_kernel::{ErrorKind, Locale};
use nexus_proto::nexus::content::v1 as pb;
use nexus_proto::nexus::content::v1::content_client::ContentClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ts;
use super::billing::PageQuery;
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub(crate) fn client(state: &AppState) -> ContentClient<nexus_platform::grpc::ContextChannel> {
    nexus_platform::sized!(ContentClient::new(state.upstreams.content.clone()))
}

/// The client's `Idempotency-Key`, if any (validated by the service).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> String {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

pub(crate) fn page_request(q: PageQuery) -> Option<nexus_proto::common::PageRequest> {
    Some(nexus_proto::common::PageRequest { page_size: q.limit.unwrap_or(0), cursor: q.cursor.unwrap_or_default() })
}

pub(crate) fn dir_name(d: i32) -> String {
    if d == nexus_proto::common::TextDirection::Rtl as i32 { "rtl" } else { "ltr" }.to_owned()
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "social_post", "platform": "instagram", "language": "es", "tone": "playful",
    "product": "Trail Runner X", "audience": "weekend hikers", "facts": ["breathable mesh upper", "weighs only 220 g"],
    "call_to_action": "Shop the drop"}))]
pub struct GenerationRequest {
    /// ad_copy, social_post, email, product_description, whatsapp_template or landing_page_copy.
    pub kind: String,
    /// instagram, tiktok, facebook, x, linkedin or youtube: required for social_post, optional for ad_copy.
    pub platform: Option<String>,
    /// en, es, pt, he or ar; default: your language.
    pub language: Option<String>,
    /// friendly (default), professional, playful, urgent or luxury.
    pub tone: Option<String>,
    /// Product or business name (up to 120 characters).
    pub product: String,
    pub description: Option<String>,
    pub audience: Option<String>,
    /// Up to 10 facts the copy may use (200 characters each).
    pub facts: Option<Vec<String>>,
    pub call_to_action: Option<String>,
    /// 1 to 5; default 3 for ad_copy, else 1.
    pub variants: Option<u32>,
    /// Cap on generated tokens (AI providers only).
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantBody {
    /// Headline, subject or title; absent for kinds without one.
    pub title: Option<String>,
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBody {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsBody {
    /// Characters allowed in titles (0: the kind has none).
    pub title: u32,
    /// Characters allowed in bodies (the platform's limit).
    pub body: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "gen_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "kind": "social_post", "platform": "x", "language": "ar", "dir": "rtl",
    "tone": "friendly", "status": "succeeded", "provider": "local", "model": "local-templates-v1", "prompt_version": "social_post/v1",
    "variants": [{"body": "تعرّف على Trail Runner X. خفيف ومريح. اطلبه اليوم."}], "usage": {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80},
    "credits": 1, "limits": {"title": 0, "body": 280}, "input": {"kind": "social_post"}, "created_at": "2026-11-25T10:00:00Z"}))]
pub struct GenerationBody {
    pub id: String,
    pub kind: String,
    pub platform: Option<String>,
    pub language: String,
    /// Direction of the text: rtl for he and ar.
    pub dir: String,
    pub tone: String,
    /// succeeded, or incomplete when a stream was cut.
    pub status: String,
    /// "local" (offline template generator) or the AI provider.
    pub provider: String,
    pub model: String,
    /// Prompt template used, e.g. ad_copy/v1.
    pub prompt_version: String,
    pub variants: Vec<VariantBody>,
    pub usage: UsageBody,
    /// Credits charged.
    pub credits: i64,
    pub limits: LimitsBody,
    /// The request as given.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenerationList {
    pub items: Vec<GenerationBody>,
    pub next_cursor: Option<String>,
}

fn generation(g: pb::Generation) -> GenerationBody {
    let usage = g.usage.unwrap_or_default();
    GenerationBody {
        id: g.id,
        kind: g.kind,
        platform: opt(g.platform),
        language: g.language,
        dir: dir_name(g.dir),
        tone: g.tone,
        status: g.status,
        provider: g.provider,
        model: g.model,
        prompt_version: g.prompt_version,
        variants: g.variants.into_iter().map(|v| VariantBody { title: opt(v.title), body: v.body }).collect(),
        usage: UsageBody {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        },
        credits: g.credits,
        limits: LimitsBody { title: g.title_limit, body: g.body_limit },
        input: serde_json::from_str(&g.input_json).unwrap_or(serde_json::Value::Null),
        created_at: ts(g.created_at),
    }
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"))
}

/// The error envelope as an SSE `error` event (the stream is already open, so no status).
fn error_event(status: &tonic::Status, edge: Option<&Edge>) -> Event {
    let e = nexus_platform::grpc::upstream_error(status);
    let locale = edge.map_or(Locale::En, |e| e.locale);
    let (code, message) = if e.kind().http_status() >= 500 && e.kind() != ErrorKind::Unavailable {
        ("internal".to_owned(), nexus_i18n::error_message(locale, "internal", &[], 500))
    } else {
        (e.code().to_owned(), nexus_i18n::error_message(locale, e.code(), e.params(), e.http_status()))
    };
    let body = serde_json::json!({"error": {"code": code, "message": message,
        "request_id": edge.map(|e| e.request_id.to_string()).unwrap_or_default(), "dir": locale.direction().as_str()}});
    Event::default().event("error").data(body.to_string())
}

/// Generate copy. With `Accept: text/event-stream` the text streams as server-sent events:
/// `delta` (`{"variant","field","text"}`), then `done` (the stored generation) or `error` (the
/// error envelope). Errors found before generating (credits, validation) are plain HTTP errors.
#[utoipa::path(post, path = "/v1/content/generations", tag = "content", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same generation and charge once", example = "post-2026-11-25-1")),
    request_body = GenerationRequest,
    responses(
        (status = 201, description = "Generated and stored (JSON), or the event stream",
            content((GenerationBody = "application/json"), (String = "text/event-stream", example = "event: delta\ndata: {\"variant\":0,\"field\":\"body\",\"text\":\"Meet \"}\n\nevent: done\ndata: {\"id\":\"gen_…\"}\n\n"))),
        (status = 400, description = "Invalid kind, platform, language or field", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 402, description = "Not enough credits (nothing generated, nothing charged)", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot generate", body = ErrorEnvelope),
        (status = 409, description = "Idempotency key of an earlier failed request", body = ErrorEnvelope),
        (status = 503, description = "Content or billing unavailable", body = ErrorEnvelope)))]
pub async fn create_generation(
    State(state): State<AppState>,
    _a: Authenticated,
    edge: Option<axum::Extension<Edge>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GenerationRequest>,
) -> Result<Response, ApiError> {
    let req = pb::GenerateRequest {
        kind: body.kind,
        platform: body.platform.unwrap_or_default(),
        language: body.language.unwrap_or_default(),
        tone: body.tone.unwrap_or_default(),
        product: body.product,
        description: body.description.unwrap_or_default(),
        audience: body.audience.unwrap_or_default(),
        facts: body.facts.unwrap_or_default(),
        call_to_action: body.call_to_action.unwrap_or_default(),
        variants: body.variants.unwrap_or(0),
        max_tokens: body.max_tokens.unwrap_or(0),
        idempotency_key: idempotency_key(&headers),
    };
    if !wants_stream(&headers) {
        let g = client(&state).generate(req).await?.into_inner();
        return Ok((StatusCode::CREATED, Json(generation(g))).into_response());
    }
    let stream = client(&state).generate_stream(req).await?.into_inner();
    let edge = edge.map(|e| e.0);
    let events = stream.map(move |item| -> Result<Event, Infallible> {
        Ok(match item {
            Ok(pb::GenerateEvent { event: Some(pb::generate_event::Event::Delta(d)) }) => Event::default()
                .event("delta")
                .data(serde_json::json!({"variant": d.variant, "field": d.field, "text": d.text}).to_string()),
            Ok(pb::GenerateEvent { event: Some(pb::generate_event::Event::Done(g)) }) => {
                Event::default().event("done").data(serde_json::to_string(&generation(g)).unwrap_or_default())
            }
            Ok(pb::GenerateEvent { event: None }) => Event::default().comment("empty"),
            Err(status) => error_event(&status, edge.as_ref()),
        })
    });
    let mut resp = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    *resp.status_mut() = StatusCode::CREATED;
    // Proxies must pass events through as they come.
    resp.headers_mut().insert("x-accel-buffering", "no".parse().expect("static header"));
    resp.headers_mut().insert(header::CACHE_CONTROL, "no-cache".parse().expect("static header"));
    Ok(resp)
}

/// Generations of the current workspace, newest first.
#[utoipa::path(get, path = "/v1/content/generations", tag = "content", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of generations", body = GenerationList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_generations(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<GenerationList>, ApiError> {
    let r = client(&state).list_generations(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(GenerationList {
        items: r.items.into_iter().map(generation).collect(),
        next_cursor: r.page.map(|p| p.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// One generation with its inputs, model, usage and cost.
#[utoipa::path(get, path = "/v1/content/generations/{id}", tag = "content", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "gen_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The generation", body = GenerationBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such generation in this workspace", body = ErrorEnvelope)))]
pub async fn get_generation(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<GenerationBody>, ApiError> {
    Ok(Json(generation(client(&state).get_generation(pb::GetByIdRequest { id }).await?.into_inner())))
}

// --- pages ---

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
    /// Shown in the browser tab; default: the product name.
    pub title: Option<String>,
    pub language: Option<String>,
    pub tone: Option<String>,
    pub product: String,
    pub description: Option<String>,
    pub audience: Option<String>,
    pub facts: Option<Vec<String>>,
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
        idempotency_key: idempotency_key(&headers),
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
    Ok(Json(PageList {
        items: r.items.into_iter().map(page).collect(),
        next_cursor: r.page.map(|p| p.next_cursor).filter(|c| !c.is_empty()),
    }))
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
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"), ("section" = String, Path, example = "faq")),
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
    params(("id" = String, Path, example = "pg_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"), ("section" = String, Path, example = "hero"),
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
    let req = pb::RegenerateSectionRequest { page_id: id, section, idempotency_key: idempotency_key(&headers) };
    Ok(Json(page(client(&state).regenerate_section(req).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slug": "spring-sale"}))]
pub struct PublishRequest {
    /// 3–60 of a-z, 0-9 and hyphens; required the first time, kept afterwards.
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
