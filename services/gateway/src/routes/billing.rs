//! Plans, the workspace's subscription, credits and usage.

use axum::Json;
use axum::extract::State;
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ts;
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::identity::Authenticated;

fn client(state: &AppState) -> SubscriptionsClient<nexus_platform::grpc::ContextChannel> {
    SubscriptionsClient::new(state.upstreams.subscriptions.clone())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyBody {
    /// Integer minor units (cents).
    #[schema(example = 9700)]
    pub amount_minor: i64,
    #[schema(example = "USD")]
    pub currency: String,
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlansQuery {
    /// ISO 4217 code of the price to show; default USD.
    #[param(example = "BRL")]
    pub currency: Option<String>,
}

fn money(m: Option<nexus_proto::common::Money>) -> Option<MoneyBody> {
    m.map(|m| MoneyBody { amount_minor: m.amount_minor, currency: m.currency })
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

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionBody {
    #[schema(example = "pro")]
    pub plan_code: String,
    /// trialing, active, past_due, canceled, unpaid, paused or incomplete.
    #[schema(example = "active")]
    pub status: String,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
    /// The plan that takes over at the end of the period, if a downgrade is scheduled.
    pub pending_plan_code: Option<String>,
    /// "stripe" or "local" (offline billing for development).
    pub billing: String,
    /// Whether paid features are usable now.
    pub access: bool,
}

/// The current workspace's subscription.
#[utoipa::path(get, path = "/v1/billing/subscription", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Subscription", body = SubscriptionBody), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn subscription(
    State(state): State<AppState>,
    _a: Authenticated,
) -> Result<Json<SubscriptionBody>, ApiError> {
    let s = client(&state).get_subscription(pb::Empty {}).await?.into_inner();
    Ok(Json(SubscriptionBody {
        plan_code: s.plan_code,
        status: s.status,
        current_period_start: ts(s.current_period_start),
        current_period_end: ts(s.current_period_end),
        cancel_at_period_end: s.cancel_at_period_end,
        pending_plan_code: (!s.pending_plan_code.is_empty()).then_some(s.pending_plan_code),
        billing: s.billing,
        access: s.access,
    }))
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; default 20.
    #[param(example = 20)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyIn0")]
    pub cursor: Option<String>,
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
    let page =
        nexus_proto::common::PageRequest { page_size: q.limit.unwrap_or(0), cursor: q.cursor.unwrap_or_default() };
    let r = client(&state).list_ledger(pb::ListLedgerRequest { page: Some(page) }).await?.into_inner();
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
        next_cursor: r.page.map(|p| p.next_cursor).filter(|c| !c.is_empty()),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureUsageBody {
    #[schema(example = "videos_per_month")]
    pub feature: String,
    pub used: i64,
    pub limit: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBody {
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub credits_used: i64,
    pub credits_granted: i64,
    /// Credits used per action this period.
    pub credits_by_action: std::collections::BTreeMap<String, i64>,
    pub features: Vec<FeatureUsageBody>,
}

/// Use of credits and plan limits this period.
#[utoipa::path(get, path = "/v1/billing/usage", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Usage", body = UsageBody), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn usage(State(state): State<AppState>, _a: Authenticated) -> Result<Json<UsageBody>, ApiError> {
    let u = client(&state).get_usage(pb::Empty {}).await?.into_inner();
    Ok(Json(UsageBody {
        period_start: ts(u.period_start),
        period_end: ts(u.period_end),
        credits_used: u.credits_used,
        credits_granted: u.credits_granted,
        credits_by_action: u.credits_by_action.into_iter().collect(),
        features: u
            .features
            .into_iter()
            .map(|f| FeatureUsageBody { feature: f.feature, used: f.used, limit: f.limit })
            .collect(),
    }))
}
