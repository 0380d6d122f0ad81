//! `/v1/audit`: the workspace's audit trail, kept by the analytics service.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::analytics::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{analytics_client as client, next_cursor, non_empty, paging, time_range, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Who made the change: a user id, `key:<id>` for an API key, or `system`.
    #[param(example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub actor: Option<String>,
    /// `<service>.<table>`.
    #[param(example = "auth.memberships")]
    pub resource_type: Option<String>,
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")]
    pub resource_id: Option<String>,
    #[param(example = "2026-11-01T00:00:00Z", format = DateTime)]
    pub from: Option<String>,
    #[param(example = "2026-11-25T00:00:00Z", format = DateTime)]
    pub to: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    #[param(
        example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyZjBjNS1jMmI4LTdjMzEtYTFmMS1lNGYyYjFhMGM5ZDcifQ"
    )]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryBody {
    #[schema(example = "log_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub at: Option<String>,
    pub actor: String,
    /// insert, update, delete, or a system action such as retention.purge.
    #[schema(example = "update")]
    pub action: String,
    #[schema(example = "auth")]
    pub service: String,
    #[schema(example = "auth.memberships")]
    pub resource_type: String,
    pub resource_id: String,
    /// The row before and after; secret columns left out, personal data hashed.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// Truncated (IPv4 /24, IPv6 /48).
    #[schema(example = "203.0.113.0")]
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageBody {
    /// Newest first.
    pub items: Vec<AuditEntryBody>,
    pub next_cursor: Option<String>,
}

/// The workspace's audit trail: every change made through any service, searchable by actor,
/// resource and time.
#[utoipa::path(get, path = "/v1/audit", tag = "analytics", security(("bearer" = []), ("api_key" = [])), params(AuditQuery),
    responses((status = 200, description = "Audit entries", body = AuditPageBody), (status = 400, description = "Bad page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope), (status = 422, description = "Bad range", body = ErrorEnvelope)))]
pub async fn audit(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageBody>, ApiError> {
    let r = client(&state)
        .search_audit(pb::AuditSearchRequest {
            actor: q.actor.unwrap_or_default(),
            resource_type: q.resource_type.unwrap_or_default(),
            resource_id: q.resource_id.unwrap_or_default(),
            range: time_range(q.from, q.to),
            page: paging(q.limit, q.cursor),
        })
        .await?
        .into_inner();
    let json = |s: String| non_empty(s).and_then(|s| serde_json::from_str(&s).ok());
    Ok(Json(AuditPageBody {
        items: r
            .items
            .into_iter()
            .map(|e| AuditEntryBody {
                id: e.id,
                at: ts(e.at),
                actor: e.actor,
                action: e.action,
                service: e.service,
                resource_type: e.resource_type,
                resource_id: e.resource_id,
                before: json(e.before_json),
                after: json(e.after_json),
                ip: non_empty(e.ip),
                request_id: non_empty(e.request_id),
            })
            .collect(),
        next_cursor: next_cursor(r.page),
    }))
}
