//! `/v1/avatars`: portraits a workspace uploads for its videos (use one as
//! `"avatar_url": "avatar:<id>"`). The image is the request body itself.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use nexus_proto::nexus::video::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, next_cursor, page_request, ts, video_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiPath, ApiQuery, RawBody};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload_avatar, list_avatars)).routes(routes!(delete_avatar))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "avt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "name": "Amira", "content_type": "image/png", "width": 1024, "height": 1024,
    "size_bytes": 482113, "created_at": "2026-12-06T10:00:00+00:00"}))]
pub struct AvatarBody {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub size_bytes: i64,
    pub created_at: Option<String>,
}

fn avatar(a: pb::AvatarRecord) -> AvatarBody {
    AvatarBody {
        id: a.id,
        name: a.name,
        content_type: a.content_type,
        width: a.width,
        height: a.height,
        size_bytes: a.size_bytes,
        created_at: ts(a.created_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AvatarList {
    pub items: Vec<AvatarBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A label (up to 120 characters).
    #[param(example = "Amira", max_length = 120)]
    pub name: Option<String>,
}

/// Upload a portrait: the body is a PNG or JPEG (its Content-Type must match its bytes), sides
/// 256 to 4096 pixels, at most the gateway's body limit (1 MiB by default; the service takes up
/// to 5 MiB).
#[utoipa::path(post, path = "/v1/avatars", tag = "videos", security(("bearer" = []), ("api_key" = [])), params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "image/png", description = "The image", example = "<the PNG bytes>"),
    responses((status = 201, description = "Stored", body = AvatarBody), (status = 400, description = "Sides out of range", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 413, description = "Too large", body = ErrorEnvelope),
        (status = 415, description = "Not a PNG or JPEG, or not the type declared", body = ErrorEnvelope)))]
pub async fn upload_avatar(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<AvatarBody>), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let req = pb::UploadAvatarRequest { name: q.name.unwrap_or_default(), content_type, data: body.to_vec() };
    Ok((StatusCode::CREATED, Json(avatar(client(&state).upload_avatar(req).await?.into_inner()))))
}

/// Avatars of the current workspace, newest first.
#[utoipa::path(get, path = "/v1/avatars", tag = "videos", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of avatars", body = AvatarList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn list_avatars(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<AvatarList>, ApiError> {
    let r = client(&state).list_avatars(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(AvatarList { items: r.items.into_iter().map(avatar).collect(), next_cursor: next_cursor(r.page) }))
}

/// Delete an avatar and its image.
#[utoipa::path(delete, path = "/v1/avatars/{id}", tag = "videos", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "avt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 404, description = "No such avatar in this workspace", body = ErrorEnvelope)))]
pub async fn delete_avatar(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_avatar(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
