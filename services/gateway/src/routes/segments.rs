//! `/v1/segments`: saved filters over the contact book, counted live (messaging).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, crm_client as client, next_cursor, page_request, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_segment, list_segments)).routes(routes!(
        get_segment,
        replace_segment,
        delete_segment
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa", "name": "Gold customers who opted in",
    "filter": {"all": [{"stage": "customer"}, {"field": "tier", "op": "eq", "value": "Gold"},
        {"consent": {"channel": "whatsapp", "purpose": "marketing"}}]},
    "count": 42, "created_at": "2026-12-06T09:00:00+00:00", "updated_at": "2026-12-06T09:00:00+00:00"}))]
pub struct SegmentBody {
    pub id: String,
    pub name: String,
    /// The filter as saved (in its canonical form).
    #[schema(value_type = Object)]
    pub filter: serde_json::Value,
    /// Contacts matching now.
    pub count: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentList {
    pub items: Vec<SegmentBody>,
    pub next_cursor: Option<String>,
}

fn segment(s: pb::Segment) -> Result<SegmentBody, ApiError> {
    // The service stores only filters it parsed, so this fails only on a broken upstream.
    let filter = serde_json::from_str(&s.filter_json).map_err(|e| ApiError::from(nexus_kernel::Error::internal(e)))?;
    Ok(SegmentBody {
        id: s.id,
        name: s.name,
        filter,
        count: s.count,
        created_at: ts(s.created_at),
        updated_at: ts(s.updated_at),
    })
}

/// A segment as a client sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Gold customers who opted in",
    "filter": {"all": [{"stage": "customer"}, {"field": "tier", "op": "eq", "value": "Gold"},
        {"consent": {"channel": "whatsapp", "purpose": "marketing"}}]}}))]
pub struct SegmentRequest {
    /// Unique in the workspace; runs of spaces become one.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// A JSON object: `{"all": [...]}`, `{"any": [...]}` or `{"not": {...}}` over the conditions
    /// `{"tag": "vip"}`, `{"stage": "lead"}`, `{"field": "tier", "op": "eq|ne|lt|gt|contains", "value": "Gold"}`,
    /// `{"text": "ana"}` (3 to 200 characters), `{"consent": {"channel": "whatsapp", "purpose": "marketing"}}`
    /// and `{"created": {"after": "2026-01-01", "before": "2026-02-01"}}`. At most 50 conditions,
    /// nested at most 5 deep; `field` names a custom field of the workspace.
    #[schema(value_type = Object)]
    pub filter: serde_json::Map<String, serde_json::Value>,
}

/// A refused save, naming the body's `filter` rather than the service's `filter_json`.
fn save_error(status: tonic::Status) -> ApiError {
    ApiError::from(status).renaming_field("filter_json", "filter")
}

impl SegmentRequest {
    fn input(self, id: String) -> pb::SegmentInput {
        pb::SegmentInput { id, name: self.name, filter_json: serde_json::Value::Object(self.filter).to_string() }
    }
}

/// Save a filter over the contact book as a named segment.
#[utoipa::path(post, path = "/v1/segments", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    request_body = SegmentRequest,
    responses((status = 201, description = "The new segment, counted", body = SegmentBody),
        (status = 400, description = "Invalid name or filter (unknown condition, field, comparison or value; too deep or too large)", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 409, description = "Another segment has this name", body = ErrorEnvelope)))]
pub async fn create_segment(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<SegmentRequest>,
) -> Result<(StatusCode, Json<SegmentBody>), ApiError> {
    let saved = client(&state).save_segment(b.input(String::new())).await.map_err(save_error)?.into_inner();
    Ok((StatusCode::CREATED, Json(segment(saved)?)))
}

/// Segments newest first, each counted now.
#[utoipa::path(get, path = "/v1/segments", tag = "crm", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of segments", body = SegmentList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_segments(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<SegmentList>, ApiError> {
    let r = client(&state).list_segments(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    let items = r.items.into_iter().map(segment).collect::<Result<_, _>>()?;
    Ok(Json(SegmentList { items, next_cursor: next_cursor(r.page) }))
}

/// One segment, counted now.
#[utoipa::path(get, path = "/v1/segments/{id}", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    responses((status = 200, description = "The segment", body = SegmentBody),
        (status = 404, description = "No such segment in this workspace", body = ErrorEnvelope)))]
pub async fn get_segment(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SegmentBody>, ApiError> {
    Ok(Json(segment(client(&state).get_segment(pb::GetByIdRequest { id }).await?.into_inner())?))
}

/// Replace a segment's name and filter.
#[utoipa::path(put, path = "/v1/segments/{id}", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    request_body = SegmentRequest,
    responses((status = 200, description = "The segment, counted", body = SegmentBody),
        (status = 400, description = "Invalid name or filter (unknown condition, field, comparison or value; too deep or too large)", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such segment in this workspace", body = ErrorEnvelope),
        (status = 409, description = "Another segment has this name", body = ErrorEnvelope)))]
pub async fn replace_segment(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SegmentRequest>,
) -> Result<Json<SegmentBody>, ApiError> {
    // An empty id would create a segment; a PUT only replaces an existing one.
    if id.trim().is_empty() {
        return Err(ApiError::new(nexus_kernel::ErrorKind::NotFound, "messaging.segment_not_found"));
    }
    Ok(Json(segment(client(&state).save_segment(b.input(id)).await.map_err(save_error)?.into_inner())?))
}

/// Delete a segment (its contacts stay).
#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9fa")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such segment in this workspace", body = ErrorEnvelope)))]
pub async fn delete_segment(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_segment(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
