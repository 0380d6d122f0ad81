//! `/v1/deals`: deals with contacts, moving along the pipeline (messaging).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::messaging::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{DecimalMoneyBody, crm_client as client, next_cursor, non_empty as opt, paging, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_deal, list_deals)).routes(routes!(update_deal))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f5", "contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7",
    "title": "Annual plan", "stage_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f0", "amount": {"amount": "1999.90", "currency": "BRL"},
    "expected_close": "2026-12-31", "owner_id": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8",
    "created_at": "2026-12-06T09:00:00+00:00", "updated_at": "2026-12-06T09:00:00+00:00"}))]
pub struct DealBody {
    pub id: String,
    pub contact_id: String,
    pub title: String,
    pub stage_id: String,
    pub amount: Option<DecimalMoneyBody>,
    /// YYYY-MM-DD.
    pub expected_close: Option<String>,
    pub owner_id: Option<String>,
    /// Set while the deal is in a won or lost stage.
    pub closed_at: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealList {
    pub items: Vec<DealBody>,
    pub next_cursor: Option<String>,
}

fn deal(d: pb::Deal) -> DealBody {
    DealBody {
        id: d.id,
        contact_id: d.contact_id,
        title: d.title,
        stage_id: d.stage_id,
        amount: d.amount.map(DecimalMoneyBody::from),
        expected_close: opt(d.expected_close),
        owner_id: opt(d.owner_id),
        closed_at: ts(d.closed_at),
        created_at: ts(d.created_at),
        updated_at: ts(d.updated_at),
    }
}

/// A deal's attributes as a client sends them. A new deal needs `contact_id`, `title` and
/// `amount`; on update, the attributes present are changed (an empty `expected_close` or
/// `owner_id` clears it) and the absent ones are kept.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"contact_id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "title": "Annual plan",
    "amount": {"amount": "1999.90", "currency": "BRL"}, "expected_close": "2026-12-31"}))]
pub struct DealRequest {
    #[schema(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")]
    pub contact_id: Option<String>,
    /// Trimmed; no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    /// A stage of the pipeline; on a new deal, absent: the first open stage. Entering a won or
    /// lost stage closes the deal; an open stage reopens it.
    #[schema(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f0")]
    pub stage_id: Option<String>,
    pub amount: Option<DecimalMoneyBody>,
    /// YYYY-MM-DD; empty: none.
    #[schema(example = "2026-12-31", pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub expected_close: Option<String>,
    /// A member's user id (`usr_…`); empty: none.
    #[schema(
        example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d8",
        pattern = "^((usr_)?([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))?$"
    )]
    pub owner_id: Option<String>,
}

impl DealRequest {
    fn input(&self) -> Result<pb::DealInput, ApiError> {
        Ok(pb::DealInput {
            contact_id: self.contact_id.clone().unwrap_or_default(),
            title: self.title.clone().unwrap_or_default(),
            stage_id: self.stage_id.clone().unwrap_or_default(),
            amount: self.amount.as_ref().map(DecimalMoneyBody::to_proto).transpose()?,
            expected_close: self.expected_close.clone().unwrap_or_default(),
            owner_id: self.owner_id.clone().unwrap_or_default(),
        })
    }

    /// The attributes present, as an update mask.
    fn mask(&self) -> Vec<String> {
        [
            ("contact_id", self.contact_id.is_some()),
            ("title", self.title.is_some()),
            ("stage_id", self.stage_id.is_some()),
            ("amount", self.amount.is_some()),
            ("expected_close", self.expected_close.is_some()),
            ("owner_id", self.owner_id.is_some()),
        ]
        .iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| (*name).to_owned())
        .collect()
    }
}

/// Open a deal with a contact (recorded on the contact's timeline).
#[utoipa::path(post, path = "/v1/deals", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    request_body = DealRequest,
    responses((status = 201, description = "The new deal", body = DealBody),
        (status = 400, description = "A title, amount, currency, date or member id missing or invalid (more decimals than the currency has included)", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such contact or stage in this workspace", body = ErrorEnvelope)))]
pub async fn create_deal(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<DealRequest>,
) -> Result<(StatusCode, Json<DealBody>), ApiError> {
    let created = client(&state).create_deal(b.input()?).await?.into_inner();
    Ok((StatusCode::CREATED, Json(deal(created))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DealsQuery {
    /// Only the deals in this stage.
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f0")]
    pub stage_id: Option<String>,
    /// Only the deals with this contact.
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")]
    pub contact_id: Option<String>,
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyZjBjNS1jMmI4LTdjMzEtYTFmMS1lNGYyYjFhMGM5ZDcifQ"
    )]
    pub cursor: Option<String>,
}

/// Deals newest first, of one stage and/or one contact when given.
#[utoipa::path(get, path = "/v1/deals", tag = "crm", security(("bearer" = []), ("api_key" = [])), params(DealsQuery),
    responses((status = 200, description = "A page of deals", body = DealList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 404, description = "A stage or contact id that cannot exist", body = ErrorEnvelope)))]
pub async fn list_deals(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<DealsQuery>,
) -> Result<Json<DealList>, ApiError> {
    let req = pb::ListDealsRequest {
        stage_id: q.stage_id.unwrap_or_default(),
        contact_id: q.contact_id.unwrap_or_default(),
        page: paging(q.limit, q.cursor),
    };
    let r = client(&state).list_deals(req).await?.into_inner();
    Ok(Json(DealList { items: r.items.into_iter().map(deal).collect(), next_cursor: next_cursor(r.page) }))
}

/// Change the attributes present in the body. A stage move is recorded on the contact's
/// timeline.
#[utoipa::path(patch, path = "/v1/deals/{id}", tag = "crm", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9f5")),
    request_body = DealRequest,
    responses((status = 200, description = "The deal", body = DealBody),
        (status = 400, description = "Invalid attributes, or nothing to change", body = ErrorEnvelope),
        (status = 403, description = "Viewers and read-only keys cannot write", body = ErrorEnvelope),
        (status = 404, description = "No such deal, contact or stage in this workspace", body = ErrorEnvelope)))]
pub async fn update_deal(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DealRequest>,
) -> Result<Json<DealBody>, ApiError> {
    let req = pb::UpdateDealRequest { id, deal: Some(b.input()?), update_mask: b.mask() };
    Ok(Json(deal(client(&state).update_deal(req).await?.into_inner())))
}
