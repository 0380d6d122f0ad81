//! `/v1/images`: hero and ad images, made by a provider or as local placeholders.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::nexus::content::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{content_client as client, idempotency_key, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_image)).routes(routes!(get_image))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"purpose": "hero", "prompt": "trail running shoes on a rocky path at sunrise", "caption": "Trail Runner X", "language": "en"}))]
pub struct ImageRequest {
    /// hero (1024 x 576 by default; a local placeholder is an SVG) or ad (1024 x 1024; JPEG, to be
    /// named by a social post's media `image_id`).
    #[schema(pattern = "^(hero|ad)$")]
    pub purpose: String,
    /// 1 to 1,000 characters, not only spaces; no control characters but line breaks and tabs.
    #[schema(
        max_length = 1000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub prompt: String,
    /// Text drawn on local placeholders: up to 120 characters.
    #[schema(max_length = 120, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub caption: Option<String>,
    /// en, es, pt, he or ar; empty or absent: your language.
    #[schema(pattern = "^(|en|es|pt|he|ar)$")]
    pub language: Option<String>,
    /// 256 to 2048, multiples of 64.
    #[schema(minimum = 256, maximum = 2048, multiple_of = 64)]
    pub width: Option<u32>,
    #[schema(minimum = 256, maximum = 2048, multiple_of = 64)]
    pub height: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageBody {
    pub id: String,
    pub purpose: String,
    /// pending, succeeded or failed.
    pub status: String,
    /// local (placeholder), replicate or runware.
    pub provider: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub size_bytes: i64,
    pub prompt: String,
    pub created_at: Option<String>,
}

fn image(i: pb::Image) -> ImageBody {
    ImageBody {
        id: i.id,
        purpose: i.purpose,
        status: i.status,
        provider: i.provider,
        content_type: i.content_type,
        width: i.width,
        height: i.height,
        size_bytes: i.size_bytes,
        prompt: i.prompt,
        created_at: ts(i.created_at),
    }
}

/// Create a hero or ad image (credits: content.image). Use its id as a page's hero `image_id`.
///
/// An ad image (a JPEG) can also be named by a social post's media `image_id`.
#[utoipa::path(post, path = "/v1/images", tag = "content", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, example = "hero-spring")), request_body = ImageRequest,
    responses((status = 201, description = "Created (pending while a provider works on it)", body = ImageBody), (status = 400, description = "Invalid purpose, size or prompt", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 402, description = "Not enough credits", body = ErrorEnvelope)))]
pub async fn create_image(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ImageRequest>,
) -> Result<(StatusCode, Json<ImageBody>), ApiError> {
    let req = pb::CreateImageRequest {
        purpose: b.purpose,
        prompt: b.prompt,
        caption: b.caption.unwrap_or_default(),
        language: b.language.unwrap_or_default(),
        width: b.width.unwrap_or(0),
        height: b.height.unwrap_or(0),
        idempotency_key: idempotency_key(&headers)?,
    };
    Ok((StatusCode::CREATED, Json(image(client(&state).create_image(req).await?.into_inner()))))
}

/// One image's status and facts.
#[utoipa::path(get, path = "/v1/images/{id}", tag = "content", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The image", body = ImageBody), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 404, description = "No such image in this workspace", body = ErrorEnvelope)))]
pub async fn get_image(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ImageBody>, ApiError> {
    Ok(Json(image(client(&state).get_image(pb::GetByIdRequest { id }).await?.into_inner())))
}
