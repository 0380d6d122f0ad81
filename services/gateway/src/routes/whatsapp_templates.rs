//! `/v1/whatsapp/.../templates`: message templates of a number's business account — drafts
//! checked against Meta's limits, submitted for Meta's review, their status synced, deleted.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{idempotency_key, ts, whatsapp_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(sync_templates))
        .routes(routes!(draft_template_text))
        .routes(routes!(get_template, delete_template))
        .routes(routes!(submit_template))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateButtonBody {
    /// quick_reply or url.
    #[serde(rename = "type")]
    #[schema(pattern = "^(quick_reply|url)$")]
    pub kind: String,
    #[schema(max_length = 25, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub text: String,
    /// For url buttons only: an https address (empty or absent for quick replies).
    #[schema(max_length = 2000, pattern = r"^(https://[^\s\x00-\x1F\x7F-\x9F]+)?$")]
    pub url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "order_shipped", "language": "en_US", "category": "utility",
    "header": "Your order is on its way", "body": "Hi {{1}}, order {{2}} has shipped.", "footer": "Acme Store",
    "buttons": [{"type": "url", "text": "Track", "url": "https://acme.example.com/track"}],
    "body_examples": ["Ana", "#1042"]}))]
pub struct TemplateRequest {
    /// Lowercase letters, digits and underscores.
    #[schema(max_length = 512, pattern = "^[a-z0-9_]+$")]
    pub name: String,
    /// Meta's language code, e.g. en_US, es, pt_BR.
    #[schema(max_length = 16, pattern = "^[a-z]{2,3}(_[A-Z]{2})?$")]
    pub language: String,
    /// marketing, utility or authentication.
    #[schema(pattern = "^(marketing|utility|authentication)$")]
    pub category: String,
    /// One line, without parameters (no braces).
    #[schema(max_length = 60, pattern = r"^[^{}\n]*$")]
    pub header: Option<String>,
    /// With `{{1}}`, `{{2}}`, … for parameters, numbered in order (up to 1,024 characters).
    #[schema(max_length = 1024)]
    pub body: String,
    /// Without parameters (no braces).
    #[schema(max_length = 60, pattern = r"^[^{}]*$")]
    pub footer: Option<String>,
    /// At most 10.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub buttons: Vec<TemplateButtonBody>,
    /// One example value per body parameter (Meta's reviewers read them), none blank.
    #[serde(default)]
    pub body_examples: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1", "number_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7",
    "name": "order_shipped", "language": "en_US", "category": "utility", "status": "approved", "reason": "",
    "body_params": 2, "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
    "created_at": "2026-12-06T09:00:00+00:00", "updated_at": "2026-12-06T09:05:00+00:00"}))]
pub struct WhatsAppTemplateBody {
    pub id: String,
    pub number_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    /// draft, pending, approved, rejected, paused or disabled.
    pub status: String,
    /// Meta's reason for a rejection or a pause.
    pub reason: String,
    /// How many `{{n}}` parameters the body takes.
    pub body_params: i32,
    /// Header, body, footer and buttons as Meta takes them: one object each, in that order.
    #[schema(value_type = Vec<Object>)]
    pub components: serde_json::Value,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhatsAppTemplateList {
    pub items: Vec<WhatsAppTemplateBody>,
}

fn template(t: pb::WhatsAppTemplate) -> WhatsAppTemplateBody {
    // The service stores components it built itself; anything else shows as null.
    let components = serde_json::from_str(&t.components_json).unwrap_or(serde_json::Value::Null);
    WhatsAppTemplateBody {
        id: t.id,
        number_id: t.number_id,
        name: t.name,
        language: t.language,
        category: t.category,
        status: t.status,
        reason: t.reason,
        body_params: t.body_params,
        components,
        created_at: ts(t.created_at),
        updated_at: ts(t.updated_at),
    }
}

fn list(r: pb::WhatsAppTemplateList) -> WhatsAppTemplateList {
    WhatsAppTemplateList { items: r.templates.into_iter().map(template).collect() }
}

/// Create a template as a draft on a number (Meta's limits checked now; nothing reaches Meta
/// until it is submitted).
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{id}/templates", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The number", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = TemplateRequest,
    responses((status = 201, description = "The draft", body = WhatsAppTemplateBody),
        (status = 400, description = "Name, language, category or a component breaks Meta's rules", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope),
        (status = 409, description = "A template with this name and language exists on the number", body = ErrorEnvelope)))]
pub async fn create_template(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<TemplateRequest>,
) -> Result<(StatusCode, Json<WhatsAppTemplateBody>), ApiError> {
    let req = pb::TemplateInput {
        number_id: id,
        name: b.name,
        language: b.language,
        category: b.category,
        header: b.header.unwrap_or_default(),
        body: b.body,
        footer: b.footer.unwrap_or_default(),
        buttons: b
            .buttons
            .into_iter()
            .map(|x| pb::TemplateButton { r#type: x.kind, text: x.text, url: x.url.unwrap_or_default() })
            .collect(),
        body_examples: b.body_examples,
    };
    Ok((StatusCode::CREATED, Json(template(client(&state).create_template(req).await?.into_inner()))))
}

/// A number's templates as last synced.
#[utoipa::path(get, path = "/v1/whatsapp/numbers/{id}/templates", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The number", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The templates", body = WhatsAppTemplateList),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope)))]
pub async fn list_templates(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WhatsAppTemplateList>, ApiError> {
    Ok(Json(list(client(&state).list_templates(pb::TemplatesRequest { number_id: id }).await?.into_inner())))
}

/// Read the review status of the number's templates from Meta now (approved, rejected with a
/// reason, paused).
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{id}/templates/sync", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The number", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The templates after the sync", body = WhatsAppTemplateList),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope),
        (status = 503, description = "Meta did not answer", body = ErrorEnvelope)))]
pub async fn sync_templates(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WhatsAppTemplateList>, ApiError> {
    Ok(Json(list(client(&state).sync_templates(pb::TemplatesRequest { number_id: id }).await?.into_inner())))
}

/// One template.
#[utoipa::path(get, path = "/v1/whatsapp/templates/{id}", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1")),
    responses((status = 200, description = "The template", body = WhatsAppTemplateBody),
        (status = 404, description = "No such template in this workspace", body = ErrorEnvelope)))]
pub async fn get_template(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WhatsAppTemplateBody>, ApiError> {
    Ok(Json(template(client(&state).get_template(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Submit a draft (or a rejected template) for Meta's review.
#[utoipa::path(post, path = "/v1/whatsapp/templates/{id}/submit", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1")),
    responses((status = 200, description = "Submitted: pending (or approved at once by the local sandbox)", body = WhatsAppTemplateBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such template in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Submitted already, or Meta refused it", body = ErrorEnvelope)))]
pub async fn submit_template(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WhatsAppTemplateBody>, ApiError> {
    Ok(Json(template(client(&state).submit_template(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Delete a template at Meta (once submitted) and here.
#[utoipa::path(delete, path = "/v1/whatsapp/templates/{id}", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such template in this workspace", body = ErrorEnvelope)))]
pub async fn delete_template(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_template(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a template's body should say.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"purpose": "Tell customers our winter sale starts on Friday with 20% off boots.",
    "category": "marketing", "language": "es"}))]
pub struct DraftTextRequest {
    /// What the message is for, in your words (not blank; line breaks and tabs allowed).
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub purpose: String,
    /// marketing, utility or authentication.
    #[schema(pattern = "^(marketing|utility|authentication)$")]
    pub category: String,
    /// Meta's language code of the template; the text is written in its language (English,
    /// Spanish, Portuguese, Hebrew or Arabic).
    #[schema(max_length = 16, pattern = "^(en|es|pt|he|ar)(_[A-Z]{2})?$")]
    pub language: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"body": "¡Hola {{1}}! Nuestras rebajas de invierno empiezan el viernes con un 20 % en botas. Responde SÍ y te enviamos los detalles.",
    "body_examples": ["Lucía"], "language": "es", "category": "marketing",
    "generation_id": "gen_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "credits": 1, "provider": "openai"}))]
pub struct DraftTextBody {
    /// With `{{1}}` where the customer's name goes; passes the template rules, ready for `body`.
    pub body: String,
    /// One example per parameter, in the template's language, ready for `body_examples`.
    pub body_examples: Vec<String>,
    pub language: String,
    pub category: String,
    /// Content's generation that wrote it, and the credits it cost.
    pub generation_id: String,
    pub credits: i64,
    /// openai, or local (no key configured, development).
    pub provider: String,
}

/// Have the content service write a template body (with `{{1}}` placeholders and example
/// values, in the template's language) for a purpose; charged in credits like any generation.
/// Nothing is stored: put the text in a new template's `body` and `body_examples`. The same
/// Idempotency-Key (or, without one, the same request) answers the same text and charges once.
#[utoipa::path(post, path = "/v1/whatsapp/numbers/{id}/templates/draft-text", tag = "whatsapp", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The number", example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"),
        ("Idempotency-Key" = Option<String>, Header, example = "tpl-text-8812")),
    request_body = DraftTextRequest,
    responses((status = 200, description = "The text", body = DraftTextBody),
        (status = 400, description = "Purpose blank or too long, an unknown category, a language content does not write, a bad Idempotency-Key", body = ErrorEnvelope),
        (status = 402, description = "Not enough credits", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such number in this workspace", body = ErrorEnvelope),
        (status = 503, description = "The content service did not answer, or twice wrote text that breaks the template rules", body = ErrorEnvelope)))]
pub async fn draft_template_text(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DraftTextRequest>,
) -> Result<Json<DraftTextBody>, ApiError> {
    let req = pb::DraftTemplateTextRequest {
        number_id: id,
        purpose: b.purpose,
        category: b.category,
        language: b.language,
        idempotency_key: idempotency_key(&headers)?,
    };
    let r = client(&state).draft_template_text(req).await?.into_inner();
    Ok(Json(DraftTextBody {
        body: r.body,
        body_examples: r.body_examples,
        language: r.language,
        category: r.category,
        generation_id: r.generation_id,
        credits: r.credits,
        provider: r.provider,
    }))
}
