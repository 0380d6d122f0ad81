//! `/v1/commerce/sales` and `/v1/commerce/commission-rules`: what paid orders earned, in exact
//! decimals with the reporting currency, and the rules commissions are computed by.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::commerce::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    AmountBody, PageQuery, amount, commerce_client as client, csv_response, next_cursor, page_request, ts, wants_csv,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sales))
        .routes(routes!(put_commission_rule, list_commission_rules))
        .routes(routes!(payout_statement))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PayoutQuery {
    /// The month, YYYY-MM.
    #[param(example = "2026-11", pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub period: String,
    /// One beneficiary; absent: all.
    #[param(example = "aff-7", max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub beneficiary: Option<String>,
    /// json (default) or csv.
    #[param(example = "csv", pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutLineBody {
    pub commission_id: String,
    pub sale_id: String,
    pub beneficiary: String,
    /// earned or reversal (negative).
    pub kind: String,
    pub amount: String,
    pub at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutTotalBody {
    pub beneficiary: String,
    pub earned: String,
    pub reversed: String,
    /// earned − reversed = the sum of the beneficiary's lines.
    pub net: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutStatementBody {
    pub period: String,
    pub currency: String,
    pub lines: Vec<PayoutLineBody>,
    pub totals: Vec<PayoutTotalBody>,
}

/// A month's payout statement: commissions earned and reversed per beneficiary, with totals that
/// reconcile, as JSON or CSV (`format=csv`).
#[utoipa::path(get, path = "/v1/commerce/payouts", tag = "commerce", security(("bearer" = []), ("api_key" = [])), params(PayoutQuery),
    responses((status = 200, description = "The statement (JSON, or text/csv with format=csv)",
            content((PayoutStatementBody = "application/json"), (String = "text/csv", example = "period,kind,beneficiary,commission_id,sale_id,at,amount,currency\n"))),
        (status = 400, description = "Invalid period or format", body = ErrorEnvelope)))]
pub async fn payout_statement(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PayoutQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let csv = wants_csv(q.format.as_deref())?;
    let req = pb::PayoutStatementRequest { period: q.period, beneficiary: q.beneficiary.unwrap_or_default() };
    let s = client(&state).get_payout_statement(req).await?.into_inner();
    if csv {
        return Ok(csv_response(&format!("payouts-{}.csv", s.period), s.csv));
    }
    Ok(Json(PayoutStatementBody {
        period: s.period,
        currency: s.currency,
        lines: s
            .lines
            .into_iter()
            .map(|l| PayoutLineBody {
                commission_id: l.commission_id,
                sale_id: l.sale_id,
                beneficiary: l.beneficiary,
                kind: l.kind,
                amount: l.amount,
                at: ts(l.at),
            })
            .collect(),
        totals: s
            .totals
            .into_iter()
            .map(|t| PayoutTotalBody { beneficiary: t.beneficiary, earned: t.earned, reversed: t.reversed, net: t.net })
            .collect(),
    })
    .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SaleBody {
    pub id: String,
    pub order_id: String,
    pub revenue: Option<AmountBody>,
    pub product_cost: Option<AmountBody>,
    pub shipping_cost: Option<AmountBody>,
    pub platform_fee: Option<AmountBody>,
    pub payment_fee: Option<AmountBody>,
    pub taxes: Option<AmountBody>,
    pub profit: Option<AmountBody>,
    pub reporting_revenue: Option<AmountBody>,
    pub reporting_profit: Option<AmountBody>,
    /// Order currency to reporting currency, on `rate_day` (the order's day).
    pub rate: String,
    pub rate_day: String,
    /// recorded or reversed (refunded).
    pub status: String,
    pub paid_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SaleList {
    pub items: Vec<SaleBody>,
    pub next_cursor: Option<String>,
}

/// Sales, newest first.
#[utoipa::path(get, path = "/v1/commerce/sales", tag = "commerce", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of sales", body = SaleList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_sales(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<SaleList>, ApiError> {
    let r = client(&state).list_sales(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(SaleList {
        items: r
            .sales
            .into_iter()
            .map(|s| SaleBody {
                id: s.id,
                order_id: s.order_id,
                revenue: amount(s.revenue),
                product_cost: amount(s.product_cost),
                shipping_cost: amount(s.shipping_cost),
                platform_fee: amount(s.platform_fee),
                payment_fee: amount(s.payment_fee),
                taxes: amount(s.taxes),
                profit: amount(s.profit),
                reporting_revenue: amount(s.reporting_revenue),
                reporting_profit: amount(s.reporting_profit),
                rate: s.rate,
                rate_day: s.rate_day,
                status: s.status,
                paid_at: ts(s.paid_at),
            })
            .collect(),
        next_cursor: next_cursor(r.page),
    }))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierBody {
    /// From the n-th qualifying order of a month on (2 to 1,000,000; each tier above the last).
    #[schema(minimum = 2, maximum = 1000000)]
    pub from_orders: u32,
    /// Like the rule's `value`.
    #[schema(example = "7", pattern = r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]
    pub value: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scope": "affiliate", "scope_ref": "aff-7", "beneficiary": "aff-7", "kind": "percentage", "value": "5", "tiers": [{"from_orders": 20, "value": "7"}], "cap": "500.00"}))]
pub struct CommissionRuleBody {
    /// Absent: a new rule; present: replaces that rule.
    pub id: Option<String>,
    /// workspace, product, vendor or affiliate.
    #[schema(pattern = "^(workspace|product|vendor|affiliate)$")]
    pub scope: String,
    pub scope_ref: Option<String>,
    pub beneficiary: String,
    /// percentage (of revenue in the reporting currency) or fixed (per order).
    #[schema(pattern = "^(percentage|fixed)$")]
    pub kind: String,
    /// A percentage, or an amount in the currency (no more decimals than it has).
    #[schema(example = "5", pattern = r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]
    pub value: String,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tiers: Vec<TierBody>,
    /// Most paid to the beneficiary in a month; absent or empty: no cap.
    #[schema(example = "500.00", pattern = r"^([0-9]{1,15}(\.[0-9]{1,3})?)?$")]
    pub cap: Option<String>,
    /// The reporting currency; absent: it.
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommissionRuleList {
    pub items: Vec<CommissionRuleBody>,
}

fn rule(r: pb::CommissionRule) -> CommissionRuleBody {
    CommissionRuleBody {
        id: Some(r.id),
        scope: r.scope,
        scope_ref: Some(r.scope_ref).filter(|s| !s.is_empty()),
        beneficiary: r.beneficiary,
        kind: r.kind,
        value: r.value,
        tiers: r.tiers.into_iter().map(|t| TierBody { from_orders: t.from_orders, value: t.value }).collect(),
        cap: Some(r.cap).filter(|s| !s.is_empty()),
        currency: Some(r.currency),
    }
}

/// Create or replace a commission rule (owners and admins). Commissions are computed when an
/// order is paid and reversed when it is refunded.
#[utoipa::path(put, path = "/v1/commerce/commission-rules", tag = "commerce", security(("bearer" = []), ("api_key" = [])), request_body = CommissionRuleBody,
    responses((status = 200, description = "The rule", body = CommissionRuleBody), (status = 400, description = "Invalid scope, value, tiers or cap", body = ErrorEnvelope),
        (status = 403, description = "Only admins manage commissions", body = ErrorEnvelope), (status = 404, description = "No such rule to replace", body = ErrorEnvelope)))]
pub async fn put_commission_rule(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<CommissionRuleBody>,
) -> Result<Json<CommissionRuleBody>, ApiError> {
    let req = pb::CommissionRule {
        id: b.id.unwrap_or_default(),
        scope: b.scope,
        scope_ref: b.scope_ref.unwrap_or_default(),
        beneficiary: b.beneficiary,
        kind: b.kind,
        value: b.value,
        tiers: b.tiers.into_iter().map(|t| pb::Tier { from_orders: t.from_orders, value: t.value }).collect(),
        cap: b.cap.unwrap_or_default(),
        currency: b.currency.unwrap_or_default(),
    };
    Ok(Json(rule(client(&state).put_commission_rule(req).await?.into_inner())))
}

/// The workspace's commission rules.
#[utoipa::path(get, path = "/v1/commerce/commission-rules", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The rules", body = CommissionRuleList), (status = 403, description = "No access to this workspace", body = ErrorEnvelope)))]
pub async fn list_commission_rules(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<CommissionRuleList>, ApiError> {
    let r = client(&state).list_commission_rules(pb::Empty {}).await?.into_inner();
    Ok(Json(CommissionRuleList { items: r.rules.into_iter().map(rule).collect() }))
}
