//! `/v1/content/generations`: AI copy, plain or streamed as server-sent events.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use nexus_kernel::Locale;
use nexus_proto::nexus::content::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    PageQuery, content_client as client, dir_name, idempotency_key, next_cursor, non_empty as opt, page_request, ts,
};
use crate::AppState;
use crate::edge::Edge;
use crate::error::{ApiError, ErrorEnvelope, envelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_generation, list_generations)).routes(routes!(get_generation))
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
    #[schema(maximum = 5)]
    pub variants: Option<u32>,
    /// Cap on generated tokens (AI providers only), at most 4000.
    #[schema(maximum = 4000)]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantBody {
    /// Headline, subject or title; absent for kinds without one.
    pub title: Option<String>,
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenUsageBody {
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
    pub usage: TokenUsageBody,
    /// Credits charged.
    pub credits: i64,
    pub limits: LimitsBody,
    /// The request as given.
    #[schema(value_type = Object)]
    pub input: Box<serde_json::value::RawValue>,
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
        usage: TokenUsageBody {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        },
        credits: g.credits,
        limits: LimitsBody { title: g.title_limit, body: g.body_limit },
        // Passed through as the service stored it: checked to be JSON, never rebuilt as a tree.
        input: serde_json::value::RawValue::from_string(g.input_json).unwrap_or_default(),
        created_at: ts(g.created_at),
    }
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"))
}

/// The body of an SSE `error` event: the envelope the edge renders for the same failure as a
/// JSON error, in the language it would use (the user's saved one, else `Accept-Language`).
fn stream_error(status: tonic::Status, edge: Option<&Edge>, user_locale: Option<Locale>) -> ErrorEnvelope {
    let e = ApiError::from(status);
    let locale = user_locale.or(edge.map(|e| e.locale)).unwrap_or(Locale::En);
    let request_id = edge.map(|e| e.request_id.to_string()).unwrap_or_default();
    envelope(e.status(), e.info(), locale, &request_id)
}

/// Generate copy. With `Accept: text/event-stream` the text streams as server-sent events:
/// `delta` (`{"variant","field","text"}`), then `done` (the stored generation) or `error` (the
/// error envelope). Errors found before generating (credits, validation) are plain HTTP errors.
#[utoipa::path(post, path = "/v1/content/generations", tag = "content", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same generation and charge once", example = "post-2026-11-25-1")),
    request_body = GenerationRequest,
    responses(
        (status = 201, description = "Generated and stored (JSON), or the event stream",
            content((GenerationBody = "application/json"), (super::common::ServerSentEvent = "text/event-stream", example = "event: delta\ndata: {\"variant\":0,\"field\":\"body\",\"text\":\"Meet \"}\n\nevent: done\ndata: {\"id\":\"gen_…\"}\n\n"))),
        (status = 400, description = "Invalid kind, platform, language or field", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 402, description = "Not enough credits (nothing generated, nothing charged)", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot generate", body = ErrorEnvelope),
        (status = 409, description = "Idempotency key of an earlier failed request", body = ErrorEnvelope),
        (status = 503, description = "Content or billing unavailable", body = ErrorEnvelope)))]
pub async fn create_generation(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
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
        idempotency_key: idempotency_key(&headers)?,
    };
    if !wants_stream(&headers) {
        let g = client(&state).generate(req).await?.into_inner();
        return Ok((StatusCode::CREATED, Json(generation(g))).into_response());
    }
    let stream = client(&state).generate_stream(req).await?.into_inner();
    let edge = edge.map(|e| e.0);
    let user_locale = principal.locale;
    let events = stream.map(move |item| -> Result<Event, Infallible> {
        Ok(match item {
            Ok(pb::GenerateEvent { event: Some(pb::generate_event::Event::Delta(d)) }) => Event::default()
                .event("delta")
                .data(serde_json::json!({"variant": d.variant, "field": d.field, "text": d.text}).to_string()),
            Ok(pb::GenerateEvent { event: Some(pb::generate_event::Event::Done(g)) }) => {
                Event::default().event("done").data(serde_json::to_string(&generation(g)).unwrap_or_default())
            }
            Ok(pb::GenerateEvent { event: None }) => Event::default().comment("empty"),
            // The stream is already open (status sent), so the error is an event.
            Err(status) => Event::default()
                .event("error")
                .data(serde_json::to_string(&stream_error(status, edge.as_ref(), user_locale)).unwrap_or_default()),
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
    Ok(Json(GenerationList { items: r.items.into_iter().map(generation).collect(), next_cursor: next_cursor(r.page) }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_kernel::ids::RequestId;
    use nexus_kernel::{Error, ErrorKind};

    /// The JSON body the edge gives for the same failure.
    async fn json_error(status: tonic::Status, edge: &Edge, user_locale: Option<Locale>) -> serde_json::Value {
        let mut resp = ApiError::from(status).into_response();
        if let Some(l) = user_locale {
            resp.extensions_mut().insert(crate::identity::UserLocale(l));
        }
        let resp = crate::edge::render_error(resp, edge, &axum::http::Method::POST, 1024);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn stream_errors_carry_the_json_error_body() {
        let edge = Edge { request_id: RequestId::generate(), locale: Locale::Es, client_ip: [127, 0, 0, 1].into() };
        let invalid: tonic::Status = Error::new(ErrorKind::InvalidArgument, "content.invalid_kind")
            .with_param("kind", "poem")
            .with_violation("kind", "invalid")
            .into();
        let credits: tonic::Status =
            Error::new(ErrorKind::PaymentRequired, "subscriptions.insufficient_credits").into();
        let own_unavailable: tonic::Status = Error::new(ErrorKind::Unavailable, "provider.unavailable").into();
        for status in [
            invalid,
            credits,
            own_unavailable,
            tonic::Status::unavailable("tcp connect error"),
            tonic::Status::internal("a bug"),
            tonic::Status::deadline_exceeded("slow"),
        ] {
            for user_locale in [None, Some(Locale::He)] {
                let event = serde_json::to_value(stream_error(status.clone(), Some(&edge), user_locale)).unwrap();
                let json = json_error(status.clone(), &edge, user_locale).await;
                assert_eq!(event, json, "{status:?} {user_locale:?}");
            }
        }
    }
}
