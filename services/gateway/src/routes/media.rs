//! `/v1/media`: files behind signed, expiring links (no token: the link is the permission),
//! streamed from the owning service with HTTP range requests.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{serve_file, video_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiPath;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(download_video))
        .routes(routes!(download_avatar))
        .routes(routes!(download_thumbnail))
}

/// An uploaded avatar by its signed link (what a video provider fetches while rendering).
#[utoipa::path(get, path = "/v1/media/avatars/{token}", tag = "videos",
    params(("token" = String, Path, description = "The signed token of the link", example = "avt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w"),
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1023")),
    responses((status = 200, description = "The image", content_type = "image/png", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "image/png", body = Vec<u8>),
        (status = 403, description = "Invalid, tampered or expired link", body = ErrorEnvelope),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope)))]
pub async fn download_avatar(
    state: State<AppState>,
    token: ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download_video(state, token, headers).await
}

/// A finished video's thumbnail (a JPEG of one frame) by the signed link in the video's
/// `thumbnail_url`.
#[utoipa::path(get, path = "/v1/media/thumbnails/{token}", tag = "videos",
    params(("token" = String, Path, description = "The signed token of the link", example = "vtn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w"),
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1023")),
    responses((status = 200, description = "The image", content_type = "image/jpeg", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "image/jpeg", body = Vec<u8>),
        (status = 403, description = "Invalid, tampered or expired link", body = ErrorEnvelope),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope)))]
pub async fn download_thumbnail(
    state: State<AppState>,
    token: ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download_video(state, token, headers).await
}

/// Download a video by its signed link (`POST /v1/videos/{id}/download-link`). Supports one
/// byte range per request (`Range: bytes=…` → 206).
#[utoipa::path(get, path = "/v1/media/videos/{token}", tag = "videos",
    params(("token" = String, Path, description = "The signed token of the link", example = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765015200.k1.3q2-7w"),
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1048575")),
    responses((status = 200, description = "The whole file", content_type = "video/mp4", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "video/mp4", body = Vec<u8>),
        (status = 403, description = "Invalid, tampered or expired link", body = ErrorEnvelope),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope)))]
pub async fn download_video(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_file(token, &headers, |req| async move { client(&state).open_download(req).await }).await
}
