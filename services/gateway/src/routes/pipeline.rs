//! `/v1/pipeline/stages`: the workspace's sales pipeline, in order (messaging).

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::crm_client as client;
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiJson;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_stages, save_stages))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f0", "name": "Proposal", "outcome": "open"}))]
pub struct StageBody {
    pub id: String,
    pub name: String,
    /// open (deals move on), won or lost (deals entering it are closed).
    pub outcome: String,
}

/// The pipeline in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageList {
    pub items: Vec<StageBody>,
}

fn stages(list: pb::StageList) -> StageList {
    StageList {
        items: list.items.into_iter().map(|s| StageBody { id: s.id, name: s.name, outcome: s.outcome }).collect(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    /// An existing stage's id keeps that stage and its deals; absent: a new stage.
    #[schema(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f0")]
    pub id: Option<String>,
    /// Unique in the pipeline (ignoring case); runs of spaces become one.
    #[schema(example = "Proposal", min_length = 1, max_length = 60)]
    pub name: String,
    /// open (default), won or lost.
    #[schema(pattern = "^(|open|won|lost)$")]
    pub outcome: Option<String>,
}

/// The whole pipeline, in order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [{"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f0", "name": "New"}, {"name": "Demo booked"},
    {"name": "Won", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}]}))]
pub struct StagesRequest {
    /// 1 to 30 stages, at least one of them open.
    #[schema(min_items = 1, max_items = 30)]
    pub items: Vec<StageRequest>,
}

/// The pipeline in order (a default one until the workspace saves its own).
#[utoipa::path(get, path = "/v1/pipeline/stages", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The stages in order", body = StageList)))]
pub async fn list_stages(State(state): State<AppState>, _a: Authenticated) -> Result<Json<StageList>, ApiError> {
    Ok(Json(stages(client(&state).list_stages(pb::Empty {}).await?.into_inner())))
}

/// Replace the pipeline: the stages given, in this order. A stage sent with its id keeps its
/// deals; a stage left out is removed, which is refused while it has deals.
#[utoipa::path(put, path = "/v1/pipeline/stages", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    request_body = StagesRequest,
    responses((status = 200, description = "The stages in order", body = StageList),
        (status = 400, description = "No stages or too many, a name missing, too long or repeated, an unknown outcome, no open stage", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot change the pipeline", body = ErrorEnvelope),
        (status = 404, description = "A stage id that is not in this workspace's pipeline", body = ErrorEnvelope),
        (status = 409, description = "A stage left out still has deals", body = ErrorEnvelope)))]
pub async fn save_stages(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<StagesRequest>,
) -> Result<Json<StageList>, ApiError> {
    let items = b
        .items
        .into_iter()
        .map(|s| pb::Stage { id: s.id.unwrap_or_default(), name: s.name, outcome: s.outcome.unwrap_or_default() })
        .collect();
    Ok(Json(stages(client(&state).save_stages(pb::StageList { items }).await?.into_inner())))
}
