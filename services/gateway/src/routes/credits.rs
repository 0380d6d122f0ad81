//! `/v1/credits`: the workspace's credit balance, its history and the credit packs on sale.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::subscriptions::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    MoneyBody, PageQuery, PlansQuery, money, next_cursor, page_request, subscriptions_client as client, ts,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(balance)).routes(routes!(ledger)).routes(routes!(credit_packs))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceBody {
    /// Credits that can be spent now.
    #[schema(example = 412)]
    pub available: i64,
    /// Credits held by actions in progress.
    pub reserved: i64,
    /// Credits granted this period.
    pub period_grant: i64,
    /// Credits used this period.
    pub period_used: i64,
    pub period_end: Option<String>,
}

/// Credits of the current workspace.
#[utoipa::path(get, path = "/v1/credits/balance", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Balance", body = BalanceBody), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn balance(State(state): State<AppState>, _a: Authenticated) -> Result<Json<BalanceBody>, ApiError> {
    let b = client(&state).get_balance(pb::Empty {}).await?.into_inner();
    Ok(Json(BalanceBody {
        available: b.available,
        reserved: b.reserved,
        period_grant: b.period_grant,
        period_used: b.period_used,
        period_end: ts(b.period_end),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryBody {
    pub id: String,
    /// grant, purchase, reserve, commit, release, expire or adjust.
    #[schema(example = "reserve")]
    pub kind: String,
    /// Change to available credits.
    #[schema(example = -3)]
    pub amount: i64,
    pub balance_after: i64,
    #[schema(example = "content.generation")]
    pub action: String,
    pub reservation_id: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntryBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Credit history of the current workspace, newest first.
#[utoipa::path(get, path = "/v1/credits/ledger", tag = "billing", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "Ledger page", body = LedgerPage), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn ledger(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<LedgerPage>, ApiError> {
    let r = client(&state).list_ledger(pb::ListLedgerRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(LedgerPage {
        items: r
            .items
            .into_iter()
            .map(|e| LedgerEntryBody {
                id: e.id,
                kind: e.kind,
                amount: e.amount,
                balance_after: e.balance_after,
                action: e.action,
                reservation_id: (!e.reservation_id.is_empty()).then_some(e.reservation_id),
                created_at: ts(e.created_at),
            })
            .collect(),
        next_cursor: next_cursor(r.page),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreditPackBody {
    #[schema(example = "credits_500")]
    pub code: String,
    /// In the caller's language.
    pub name: String,
    #[schema(example = 500)]
    pub credits: i64,
    pub price: Option<MoneyBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreditPackList {
    pub items: Vec<CreditPackBody>,
}

/// Credit top-ups on sale, priced in the requested currency.
#[utoipa::path(get, path = "/v1/credits/packs", tag = "billing", params(PlansQuery),
    responses((status = 200, description = "Credit packs", body = CreditPackList), (status = 400, description = "Unsupported currency", body = ErrorEnvelope)))]
pub async fn credit_packs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PlansQuery>,
) -> Result<Json<CreditPackList>, ApiError> {
    let r = client(&state)
        .list_credit_packs(pb::ListPlansRequest { currency: q.currency.unwrap_or_default() })
        .await?
        .into_inner();
    Ok(Json(CreditPackList {
        items: r
            .items
            .into_iter()
            .map(|p| CreditPackBody { code: p.code, name: p.name, credits: p.credits, price: money(p.price) })
            .collect(),
    }))
}
