//! `/v1/ads/media`: the media library of social posts (pictures and videos a post names by
//! `media_id`), uploaded as the raw request body streamed to the ads service (never held whole),
//! and the items' bytes at the public `/v1/media/posts/{token}`: no caller token there, the
//! signed, expiring token in the address is the key (what the platforms fetch when a post goes
//! out).

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::StreamExt as _;
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::ads::v1 as pb;
use nexus_proto::nexus::ads::v1::upload_media_chunk::Part;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    PageQuery, UPLOAD_TIME, UploadParts, ads_client as client, ads_upload_client, anonymous, finish_upload,
    next_cursor, page_request, serve_file, ts, upload_messages,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiPath, ApiQuery};
use crate::identity::Authenticated;

/// The largest upload read: the ads service's default video limit (512 MiB). The service holds
/// each kind to its own configured limit and answers `ads.media_too_large` itself.
pub const MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    // The upload's own body limit (the gateway's `http.body_limit` stays on every other route);
    // the body is streamed, and counted against MAX_UPLOAD_BYTES as it is read.
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_media))
        .layer(DefaultBodyLimit::max(usize::try_from(MAX_UPLOAD_BYTES).unwrap_or(usize::MAX)));
    OpenApiRouter::new()
        .routes(routes!(list_media))
        .routes(routes!(get_media, delete_media))
        .routes(routes!(open_media))
        .merge(upload)
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "media_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "name": "Winter launch teaser", "kind": "video",
    "content_type": "video/mp4", "bytes": 18_734_112, "width": 1080, "height": 1920, "duration_secs": 27.5,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "url": "https://api.example.com/v1/media/posts/media_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765101600.k1.Xq2-7wZ",
    "created_at": "2026-12-06T10:00:00+00:00"}))]
pub struct MediaBody {
    /// What a post's media object names as `media_id`.
    pub id: String,
    pub name: String,
    /// `image` or `video`.
    pub kind: String,
    /// image/jpeg, image/png, image/webp, video/mp4 or video/quicktime, as read from the bytes.
    pub content_type: String,
    pub bytes: u64,
    /// Pixels, measured from the file (a video's as displayed, turned by its rotation).
    pub width: u32,
    pub height: u32,
    /// Seconds; 0 for pictures.
    pub duration_secs: f64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// A signed public address of the bytes, valid for a limited time (24 hours by default).
    pub url: String,
    pub created_at: Option<String>,
}

fn media(m: pb::MediaItem) -> MediaBody {
    MediaBody {
        id: m.id,
        name: m.name,
        kind: m.kind,
        content_type: m.content_type,
        bytes: m.bytes,
        width: m.width,
        height: m.height,
        duration_secs: m.duration_secs,
        sha256: m.sha256,
        url: m.url,
        created_at: ts(m.created_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaList {
    pub items: Vec<MediaBody>,
    pub next_cursor: Option<String>,
}

/// The upload's name. A query parameter rather than a form part, so the body is the file as it
/// is and can be streamed.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// 1 to 200 characters, no line breaks.
    #[param(example = "Winter launch teaser", max_length = 200)]
    pub name: String,
}

/// A picture or video file: a binary string in the document.
#[derive(Debug)]
pub struct MediaFile;

impl utoipa::PartialSchema for MediaFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("The file's bytes as they are; Content-Type names its type."))
            .into()
    }
}

impl ToSchema for MediaFile {}

fn upload_parts() -> UploadParts<pb::UploadMediaChunk> {
    UploadParts {
        data: |piece| pb::UploadMediaChunk { part: Some(Part::Data(piece.to_vec())) },
        end: || pb::UploadMediaChunk { part: Some(Part::End(true)) },
        // No part: the service refuses it at once and stores nothing.
        broken: || pb::UploadMediaChunk { part: None },
        max_bytes: MAX_UPLOAD_BYTES,
    }
}

/// Upload a picture (JPEG, PNG or WebP, at most 8 MiB) or video (MP4 or QuickTime, at most 512
/// MiB) for posts, the file as the request body with its own Content-Type. Its kind, size,
/// picture size and duration are read from the bytes (a video's from its `moov` box), never
/// taken from the request; a post then names it by `media_id`. Sent within 10 minutes; a file
/// that does not arrive whole stores nothing.
#[utoipa::path(post, path = "/v1/ads/media", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(UploadQuery),
    request_body(content = MediaFile, content_type = "video/mp4", description = "The file (image/jpeg, image/png, image/webp, video/mp4 or video/quicktime)",
        example = "<the MP4 bytes>"),
    responses((status = 201, description = "Stored and measured", body = MediaBody),
        (status = 400, description = "A name missing or too long, a file cut short or unreadable as its type, or an upload that broke off", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot upload", body = ErrorEnvelope),
        (status = 413, description = "Over the limit of its kind; nothing was stored", body = ErrorEnvelope),
        (status = 415, description = "Not a JPEG, PNG, WebP, MP4 or QuickTime file, or not the type declared", body = ErrorEnvelope),
        (status = 504, description = "The file did not arrive within 10 minutes; nothing was stored", body = ErrorEnvelope)))]
pub async fn upload_media(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<MediaBody>), ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD_BYTES) {
        return Err(ApiError::new(ErrorKind::PayloadTooLarge, "ads.media_too_large")
            .with_param("max", MAX_UPLOAD_BYTES.to_string())
            .with_param("max_mb", (MAX_UPLOAD_BYTES / (1024 * 1024)).to_string()));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let head = pb::UploadMediaHead { name: q.name, content_type: content_type.to_owned() };
    let first = pb::UploadMediaChunk { part: Some(Part::Head(head)) };
    let (cut_tx, cut_rx) = oneshot::channel();
    let messages = futures::stream::once(async move { first }).chain(upload_messages(
        body,
        Instant::now() + UPLOAD_TIME,
        cut_tx,
        upload_parts(),
    ));
    let mut upstream = ads_upload_client(&state);
    let call = async move { upstream.upload_media(messages).await };
    let item = finish_upload(call, cut_rx, "ads.media_upload_interrupted").await?;
    Ok((StatusCode::CREATED, Json(media(item))))
}

/// The workspace's media library, newest first (deleted items are not listed).
#[utoipa::path(get, path = "/v1/ads/media", tag = "ads", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of items", body = MediaList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_media(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<MediaList>, ApiError> {
    let r = client(&state).list_media(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(MediaList { items: r.items.into_iter().map(media).collect(), next_cursor: next_cursor(r.page) }))
}

/// An item of the media library, with a fresh signed link to its bytes.
#[utoipa::path(get, path = "/v1/ads/media/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "media_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The item", body = MediaBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such item in this workspace", body = ErrorEnvelope)))]
pub async fn get_media(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MediaBody>, ApiError> {
    Ok(Json(media(client(&state).get_media(pb::GetByIdRequest { id }).await?.into_inner())))
}

/// Delete an item: its links stop working. Refused while a draft, a post waiting for approval
/// or a scheduled post still to publish names it.
#[utoipa::path(delete, path = "/v1/ads/media/{id}", tag = "ads", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "media_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot delete", body = ErrorEnvelope),
        (status = 404, description = "No such item in this workspace", body = ErrorEnvelope),
        (status = 409, description = "A post that has not gone out yet uses it (`ads.media_in_use`)", body = ErrorEnvelope)))]
pub async fn delete_media(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_media(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An item's bytes by its signed link (an item's `url`; what a platform fetches when a post
/// goes out). Supports one byte range per request (`Range: bytes=…` → 206).
#[utoipa::path(get, path = "/v1/media/posts/{token}", tag = "ads",
    params(("token" = String, Path, description = "The signed token of the link", example = "media_0192f0c5c2b87c31a1f1e4f2b1a0c9d7.1765101600.k1.Xq2-7wZ"),
        ("Range" = Option<String>, Header, description = "One byte range", example = "bytes=0-1048575")),
    responses((status = 200, description = "The whole file", content_type = "video/mp4", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "video/mp4", body = Vec<u8>),
        (status = 404, description = "Invalid, tampered or expired link, or a deleted item", body = ErrorEnvelope),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope)))]
pub async fn open_media(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Public: no caller token goes to the service, whatever the request carried.
    serve_file(token, &headers, |req| async move { anonymous().scope(client(&state).open_media(req)).await }).await
}
