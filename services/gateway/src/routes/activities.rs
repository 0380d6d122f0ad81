//! `/v1/contacts/{id}/activities` and `/v1/tasks`: a contact's CRM timeline, and the tasks on it
//! (messaging).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    PageQuery, crm_client as client, next_cursor, non_empty as opt, page_request, paging, proto_ts, ts,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_activity, list_activities))
        .routes(routes!(list_tasks))
        .routes(routes!(complete_task))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1", "contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7",
    "kind": "task", "body": "Send the quote", "data": {}, "actor": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8",
    "due_at": "2026-12-10T15:00:00+00:00", "assignee_id": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8",
    "occurred_at": "2026-12-06T09:00:00+00:00"}))]
pub struct ActivityBody {
    pub id: String,
    pub contact_id: String,
    /// note, task and call are written by people; message, lead, purchase, refund,
    /// stage_change, consent, merge, import and deal by the platform.
    pub kind: String,
    pub body: String,
    /// Details of the kind (a deal's stage move, a purchase's amount …); `{}` when none.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Who did it: a user id, `key:…` for an API key, `svc:…` or `system` for the platform.
    pub actor: String,
    /// Tasks only.
    pub due_at: Option<String>,
    /// Tasks only.
    pub assignee_id: Option<String>,
    /// When a task was completed.
    pub done_at: Option<String>,
    pub occurred_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityList {
    pub items: Vec<ActivityBody>,
    pub next_cursor: Option<String>,
}

fn activity(a: pb::Activity) -> ActivityBody {
    // The service writes the details as a JSON object; anything else is shown as none.
    let data = serde_json::from_str::<serde_json::Value>(&a.data_json)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    ActivityBody {
        id: a.id,
        contact_id: a.contact_id,
        kind: a.kind,
        body: a.body,
        data,
        actor: a.actor,
        due_at: ts(a.due_at),
        assignee_id: opt(a.assignee_id),
        done_at: ts(a.done_at),
        occurred_at: ts(a.occurred_at),
    }
}

fn list(page: pb::ActivityPage) -> ActivityList {
    ActivityList { items: page.items.into_iter().map(activity).collect(), next_cursor: next_cursor(page.page) }
}

/// A note, task or call as a person writes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "task", "body": "Send the quote", "due_at": "2026-12-10T15:00:00Z"}))]
pub struct ActivityRequest {
    /// note, task or call (the other kinds are recorded by the platform).
    #[schema(pattern = "^(note|task|call)$")]
    pub kind: String,
    /// Required for a note; trimmed; no control characters other than line breaks and tabs.
    #[schema(max_length = 10000)]
    pub body: Option<String>,
    /// RFC 3339. Required for a task, refused for the other kinds.
    pub due_at: Option<DateTime<Utc>>,
    /// A member's user id (`usr_…`); tasks only, default the caller.
    #[schema(
        example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8",
        pattern = "^((usr_)?([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))?$"
    )]
    pub assignee_id: Option<String>,
    /// RFC 3339, when it happened (default now); not in the future.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Add a note, task or call to a contact's timeline. A task needs `due_at` and is assigned to
/// `assignee_id` or the caller; a note needs `body`; only tasks take `due_at` and `assignee_id`.
#[utoipa::path(post, path = "/v1/contacts/{id}/activities", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    request_body = ActivityRequest,
    responses((status = 201, description = "The new activity", body = ActivityBody),
        (status = 400, description = "Invalid kind, body, member id or time; a task without a due date; task fields on another kind", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope)))]
pub async fn add_activity(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ActivityRequest>,
) -> Result<(StatusCode, Json<ActivityBody>), ApiError> {
    let req = pb::ActivityInput {
        contact_id: id,
        kind: b.kind,
        body: b.body.unwrap_or_default(),
        due_at: b.due_at.map(proto_ts),
        assignee_id: b.assignee_id.unwrap_or_default(),
        occurred_at: b.occurred_at.map(proto_ts),
    };
    let added = client(&state).add_activity(req).await?.into_inner();
    Ok((StatusCode::CREATED, Json(activity(added))))
}

/// A contact's timeline, newest first: what people wrote and what the platform recorded.
#[utoipa::path(get, path = "/v1/contacts/{id}/activities", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"), PageQuery),
    responses((status = 200, description = "A page of the timeline", body = ActivityList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this workspace", body = ErrorEnvelope)))]
pub async fn list_activities(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ActivityList>, ApiError> {
    let req = pb::ListActivitiesRequest { contact_id: id, page: page_request(q) };
    Ok(Json(list(client(&state).list_activities(req).await?.into_inner())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// A member's user id; absent or empty: the caller's tasks.
    #[param(
        example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8",
        pattern = "^((usr_)?([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))?$"
    )]
    pub assignee_id: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (task lists have cursors of their own: open before
    /// done, by due date).
    #[param(
        example = "eyJkb25lIjpmYWxzZSwiZHVlX2F0IjoiMjAyNi0xMi0xMFQxNTowMDowMFoiLCJpZCI6IjAxOTJmMGM1LWMyYjgtN2MzMS1hMWYxLWU0ZjJiMWEwYzllMSJ9"
    )]
    pub cursor: Option<String>,
}

/// A member's tasks: open ones first, soonest due first, then the done ones.
#[utoipa::path(get, path = "/v1/tasks", tag = "crm", security(("bearer" = []), ("api_key" = [])), params(TasksQuery),
    responses((status = 200, description = "A page of tasks", body = ActivityList),
        (status = 400, description = "Invalid member id, page size or cursor", body = ErrorEnvelope)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<TasksQuery>,
) -> Result<Json<ActivityList>, ApiError> {
    let req = pb::ListTasksRequest { assignee_id: q.assignee_id.unwrap_or_default(), page: paging(q.limit, q.cursor) };
    Ok(Json(list(client(&state).list_tasks(req).await?.into_inner())))
}

/// Mark a task done (completing a done task changes nothing).
#[utoipa::path(post, path = "/v1/tasks/{id}/complete", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1")),
    responses((status = 200, description = "The task", body = ActivityBody),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such task in this workspace", body = ErrorEnvelope)))]
pub async fn complete_task(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ActivityBody>, ApiError> {
    Ok(Json(activity(client(&state).complete_task(pb::GetByIdRequest { id }).await?.into_inner())))
}
