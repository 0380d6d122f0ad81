//! `/v1/commerce/pricing-rules`, `/v1/commerce/monitoring` and `/v1/commerce/alerts`: pricing
//! rules in exact decimals, the price and stock check, and the alerts it raises.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::commerce::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{PageQuery, commerce_client as client, next_cursor, page_request, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_rule, list_rules))
        .routes(routes!(delete_rule))
        .routes(routes!(run_monitoring))
        .routes(routes!(list_alerts))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scope": "category", "scope_ref": "Shoes", "markup_percent": "60", "markup_fixed": "1.00", "compare_at_percent": "30", "rounding": "cents99", "currency": "USD", "min_margin_percent": "25", "max_auto_increase_percent": "10"}))]
pub struct PricingRuleBody {
    /// Set by the server.
    #[serde(default)]
    pub id: Option<String>,
    /// default, category or product.
    #[schema(pattern = "^(default|category|product)$")]
    pub scope: String,
    /// The category, or the product id (`prod_…`); absent for the default rule.
    pub scope_ref: Option<String>,
    /// Decimal strings.
    pub markup_percent: Option<String>,
    pub markup_fixed: Option<String>,
    /// Absent: no compare-at price.
    pub compare_at_percent: Option<String>,
    /// none, cents99 or cents95.
    pub rounding: Option<String>,
    /// Store currency; absent: the reporting currency.
    pub currency: Option<String>,
    /// A cost rise that takes the margin below this raises an alert.
    pub min_margin_percent: Option<String>,
    /// How far monitoring may raise a price by itself, in percent.
    pub max_auto_increase_percent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PricingRuleList {
    pub items: Vec<PricingRuleBody>,
}

fn rule(r: pb::PricingRule) -> PricingRuleBody {
    let opt = |s: String| Some(s).filter(|s| !s.is_empty());
    PricingRuleBody {
        id: opt(r.id),
        scope: r.scope,
        scope_ref: opt(r.scope_ref),
        markup_percent: opt(r.markup_percent),
        markup_fixed: opt(r.markup_fixed),
        compare_at_percent: opt(r.compare_at_percent),
        rounding: opt(r.rounding),
        currency: opt(r.currency),
        min_margin_percent: opt(r.min_margin_percent),
        max_auto_increase_percent: opt(r.max_auto_increase_percent),
    }
}

/// Create or replace the rule of a scope (a product's own rule wins over its category's, which
/// wins over the default).
#[utoipa::path(put, path = "/v1/commerce/pricing-rules", tag = "commerce", security(("bearer" = []), ("api_key" = [])), request_body = PricingRuleBody,
    responses((status = 200, description = "The rule", body = PricingRuleBody), (status = 400, description = "Invalid scope, number or rounding", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot change rules", body = ErrorEnvelope)))]
pub async fn put_rule(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<PricingRuleBody>,
) -> Result<Json<PricingRuleBody>, ApiError> {
    let req = pb::PricingRule {
        id: String::new(),
        scope: b.scope,
        scope_ref: b.scope_ref.unwrap_or_default(),
        markup_percent: b.markup_percent.unwrap_or_default(),
        markup_fixed: b.markup_fixed.unwrap_or_default(),
        compare_at_percent: b.compare_at_percent.unwrap_or_default(),
        rounding: b.rounding.unwrap_or_default(),
        currency: b.currency.unwrap_or_default(),
        min_margin_percent: b.min_margin_percent.unwrap_or_default(),
        max_auto_increase_percent: b.max_auto_increase_percent.unwrap_or_default(),
    };
    Ok(Json(rule(client(&state).put_pricing_rule(req).await?.into_inner())))
}

/// The workspace's pricing rules.
#[utoipa::path(get, path = "/v1/commerce/pricing-rules", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The rules", body = PricingRuleList), (status = 403, description = "No access to this workspace", body = ErrorEnvelope)))]
pub async fn list_rules(State(state): State<AppState>, _a: Authenticated) -> Result<Json<PricingRuleList>, ApiError> {
    let r = client(&state).list_pricing_rules(pb::Empty {}).await?.into_inner();
    Ok(Json(PricingRuleList { items: r.rules.into_iter().map(rule).collect() }))
}

/// Delete a pricing rule.
#[utoipa::path(delete, path = "/v1/commerce/pricing-rules/{id}", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "rule_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such rule in this workspace", body = ErrorEnvelope)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    client(&state).delete_pricing_rule(pb::GetByIdRequest { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitoringBody {
    pub variants_checked: u32,
    pub prices_changed: u32,
    pub alerts_raised: u32,
    pub out_of_stock: u32,
}

/// Check every imported product's cost and stock with its supplier now (the service also does
/// it on a schedule), and sync supplier tracking numbers to the store.
#[utoipa::path(post, path = "/v1/commerce/monitoring/run", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "What the check did", body = MonitoringBody), (status = 403, description = "Viewers cannot run checks", body = ErrorEnvelope)))]
pub async fn run_monitoring(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<MonitoringBody>, ApiError> {
    let r = client(&state).run_monitoring(pb::Empty {}).await?.into_inner();
    Ok(Json(MonitoringBody {
        variants_checked: r.variants_checked,
        prices_changed: r.prices_changed,
        alerts_raised: r.alerts_raised,
        out_of_stock: r.out_of_stock,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertBody {
    pub id: String,
    /// margin_below_threshold, out_of_stock, fulfilment_failed or price_limit_reached.
    pub kind: String,
    /// The variant or order concerned.
    pub subject_id: String,
    pub detail: serde_json::Value,
    pub created_at: Option<String>,
    pub resolved_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub items: Vec<AlertBody>,
    pub next_cursor: Option<String>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/v1/commerce/alerts", tag = "commerce", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of alerts", body = AlertList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<AlertList>, ApiError> {
    let r = client(&state).list_alerts(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(AlertList {
        items: r
            .alerts
            .into_iter()
            .map(|a| AlertBody {
                id: a.id,
                kind: a.kind,
                subject_id: a.subject_id,
                detail: serde_json::from_str(&a.detail_json).unwrap_or(serde_json::Value::Null),
                created_at: ts(a.created_at),
                resolved_at: ts(a.resolved_at),
            })
            .collect(),
        next_cursor: next_cursor(r.page),
    }))
}
