//! `/v1/plans`: the plans on offer, named in the caller's language.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::subscriptions::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{MoneyBody, PlansQuery, money, subscriptions_client as client};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_plans))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanBody {
    #[schema(example = "pro")]
    pub code: String,
    /// In the caller's language.
    pub name: String,
    pub description: String,
    pub price: Option<MoneyBody>,
    #[schema(example = "month")]
    pub interval: String,
    #[schema(example = 500)]
    pub monthly_credits: i64,
    pub credits_roll_over: bool,
    /// Limits by feature (videos_per_month, whatsapp_numbers, pages, ai_agents, ad_accounts, stores, seats).
    pub entitlements: std::collections::BTreeMap<String, i64>,
    /// The price in every currency offered.
    pub prices: Vec<MoneyBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    pub items: Vec<PlanBody>,
}

/// The plans on offer, named in the caller's language.
#[utoipa::path(get, path = "/v1/plans", tag = "billing", params(PlansQuery),
    responses((status = 200, description = "Plans", body = PlanList), (status = 400, description = "Unsupported currency", body = ErrorEnvelope), (status = 503, description = "Billing unavailable", body = ErrorEnvelope)))]
pub async fn list_plans(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PlansQuery>,
) -> Result<Json<PlanList>, ApiError> {
    let plans = client(&state)
        .list_plans(pb::ListPlansRequest { currency: q.currency.unwrap_or_default() })
        .await?
        .into_inner();
    Ok(Json(PlanList {
        items: plans
            .items
            .into_iter()
            .map(|p| PlanBody {
                code: p.code,
                name: p.name,
                description: p.description,
                price: money(p.price),
                interval: p.interval,
                monthly_credits: p.monthly_credits,
                credits_roll_over: p.credits_roll_over,
                entitlements: p.entitlements.into_iter().collect(),
                prices: p.prices.into_iter().filter_map(|m| money(Some(m))).collect(),
            })
            .collect(),
    }))
}
