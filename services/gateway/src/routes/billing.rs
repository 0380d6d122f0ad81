//! `/v1/billing`: the workspace's subscription (checkout, portal, plan changes, cancel and
//! resume), period usage, invoices and billing notices.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::subscriptions::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    MoneyBody, PageQuery, idempotency_key, money, next_cursor, non_empty, page_request, subscriptions_client as client,
    ts,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(subscription))
        .routes(routes!(usage))
        .routes(routes!(checkout))
        .routes(routes!(complete_checkout))
        .routes(routes!(portal))
        .routes(routes!(change_plan))
        .routes(routes!(cancel))
        .routes(routes!(resume))
        .routes(routes!(invoices))
        .routes(routes!(notices))
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
    Ok(Json(subscription_body(client(&state).get_subscription(pb::Empty {}).await?.into_inner())))
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// The plan to subscribe to (`pro`, `premium`); or
    #[schema(example = "pro")]
    pub plan: Option<String>,
    /// the credit pack to buy (`credits_100`, `credits_500`, `credits_2000`).
    #[schema(example = json!(null))]
    pub credits_pack: Option<String>,
    /// ISO 4217; default the subscription's currency (USD for new workspaces).
    #[schema(example = "USD")]
    pub currency: Option<String>,
    /// Where Stripe sends the user after paying (default from configuration): an http(s) URL of
    /// up to 2,048 characters, without spaces.
    #[schema(max_length = 2048, pattern = r"^(https?://[^\s\x00-\x1F\x7F-\x9F]*)?$")]
    pub success_url: Option<String>,
    #[schema(max_length = 2048, pattern = r"^(https?://[^\s\x00-\x1F\x7F-\x9F]*)?$")]
    pub cancel_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutSessionBody {
    #[schema(example = "cs_test_a1b2c3")]
    pub id: String,
    /// "stripe" (send the user to `url`) or "local" (no payment provider configured: complete it
    /// with `POST /v1/billing/checkout/{id}/complete`).
    #[schema(example = "stripe")]
    pub provider: String,
    /// Stripe Checkout page; absent for local sessions.
    pub url: Option<String>,
    /// open, complete or expired.
    #[schema(example = "open")]
    pub status: String,
    /// "plan" or "credits".
    pub kind: String,
    pub plan: Option<String>,
    pub credits_pack: Option<String>,
    pub amount: Option<MoneyBody>,
}

fn checkout_body(s: pb::CheckoutSession) -> CheckoutSessionBody {
    CheckoutSessionBody {
        id: s.id,
        provider: s.provider,
        url: (!s.url.is_empty()).then_some(s.url),
        status: s.status,
        kind: s.kind,
        plan: (!s.plan_code.is_empty()).then_some(s.plan_code),
        credits_pack: (!s.pack_code.is_empty()).then_some(s.pack_code),
        amount: money(s.amount),
    }
}

/// Starts paying for a plan (from Free) or buying credits. Send an `Idempotency-Key` header to
/// make retries return the same session.
#[utoipa::path(post, path = "/v1/billing/checkout", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key, same session (1-255 characters)", example = "3f1c2a9e-checkout-pro")),
    request_body(content = CheckoutBody, example = json!({"plan": "pro", "currency": "USD"})),
    responses(
        (status = 201, description = "Checkout session", body = CheckoutSessionBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Only owners and admins manage billing", body = ErrorEnvelope),
        (status = 409, description = "Already on a paid plan (change plan instead)", body = ErrorEnvelope),
        (status = 422, description = "Unknown plan or pack, unsupported currency, bad URL", body = ErrorEnvelope),
        (status = 503, description = "Payment provider unavailable; retry", body = ErrorEnvelope)))]
pub async fn checkout(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: axum::http::HeaderMap,
    ApiJson(b): ApiJson<CheckoutBody>,
) -> Result<(StatusCode, Json<CheckoutSessionBody>), ApiError> {
    let (kind, plan_code, pack_code) = match (b.plan, b.credits_pack) {
        (Some(plan), None) => ("plan", plan, String::new()),
        (None, Some(pack)) => ("credits", String::new(), pack),
        _ => return Err(ApiError::new(ErrorKind::InvalidArgument, "subscriptions.invalid_checkout_kind")),
    };
    let req = pb::CheckoutRequest {
        kind: kind.into(),
        plan_code,
        pack_code,
        currency: b.currency.unwrap_or_default(),
        success_url: b.success_url.unwrap_or_default(),
        cancel_url: b.cancel_url.unwrap_or_default(),
        idempotency_key: idempotency_key(&headers)?,
    };
    let s = client(&state).create_checkout(req).await?.into_inner();
    Ok((StatusCode::CREATED, Json(checkout_body(s))))
}

/// Local billing only: completes a checkout as if the customer paid (development and offline use).
#[utoipa::path(post, path = "/v1/billing/checkout/{id}/complete", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "Local checkout session id", example = "lcs_0192f3")),
    responses(
        (status = 200, description = "Completed session", body = CheckoutSessionBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Only owners and admins manage billing", body = ErrorEnvelope),
        (status = 404, description = "No such session in this workspace", body = ErrorEnvelope),
        (status = 409, description = "A Stripe session (completed on Stripe's page)", body = ErrorEnvelope)))]
pub async fn complete_checkout(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CheckoutSessionBody>, ApiError> {
    let s =
        client(&state).complete_local_checkout(pb::CompleteLocalCheckoutRequest { session_id: id }).await?.into_inner();
    Ok(Json(checkout_body(s)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalBody {
    /// Where the portal sends the user back (default from configuration): an http(s) URL of up
    /// to 2,048 characters, without spaces.
    #[schema(max_length = 2048, pattern = r"^(https?://[^\s\x00-\x1F\x7F-\x9F]*)?$")]
    pub return_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalSessionBody {
    /// Short-lived Stripe Customer Portal URL; create one per visit.
    pub url: String,
}

/// Stripe Customer Portal: payment methods, invoices, cancellation.
#[utoipa::path(post, path = "/v1/billing/portal", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    request_body(content = PortalBody, example = json!({"return_url": "https://app.example.com/billing"})),
    responses(
        (status = 200, description = "Portal session", body = PortalSessionBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Only owners and admins manage billing", body = ErrorEnvelope),
        (status = 409, description = "No online payments yet (local billing or never paid)", body = ErrorEnvelope),
        (status = 503, description = "Payment provider unavailable; retry", body = ErrorEnvelope)))]
pub async fn portal(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<PortalBody>,
) -> Result<Json<PortalSessionBody>, ApiError> {
    let r = client(&state)
        .create_portal(pb::PortalRequest { return_url: b.return_url.unwrap_or_default() })
        .await?
        .into_inner();
    Ok(Json(PortalSessionBody { url: r.url }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanBody {
    /// Higher plans apply now (prorated); lower ones at the end of the period; `free` cancels.
    #[schema(schema_with = crate::openapi::vocab::plan_code)]
    pub plan: String,
}

fn subscription_body(s: pb::Subscription) -> SubscriptionBody {
    SubscriptionBody {
        plan_code: s.plan_code,
        status: s.status,
        current_period_start: ts(s.current_period_start),
        current_period_end: ts(s.current_period_end),
        cancel_at_period_end: s.cancel_at_period_end,
        pending_plan_code: (!s.pending_plan_code.is_empty()).then_some(s.pending_plan_code),
        billing: s.billing,
        access: s.access,
    }
}

/// Changes a paid subscription's plan.
#[utoipa::path(post, path = "/v1/billing/subscription/plan", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried change safe", example = "8d0b6c1f-upgrade-premium")),
    request_body(content = ChangePlanBody, example = json!({"plan": "premium"})),
    responses(
        (status = 200, description = "Subscription after the change", body = SubscriptionBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Only owners and admins manage billing", body = ErrorEnvelope),
        (status = 409, description = "On Free: use checkout", body = ErrorEnvelope),
        (status = 422, description = "Unknown plan", body = ErrorEnvelope),
        (status = 503, description = "Payment provider unavailable; retry", body = ErrorEnvelope)))]
pub async fn change_plan(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: axum::http::HeaderMap,
    ApiJson(b): ApiJson<ChangePlanBody>,
) -> Result<Json<SubscriptionBody>, ApiError> {
    let req = pb::ChangePlanRequest { plan_code: b.plan, idempotency_key: idempotency_key(&headers)? };
    Ok(Json(subscription_body(client(&state).change_plan(req).await?.into_inner())))
}

/// Cancels the paid plan at the end of the period (Free from then on).
#[utoipa::path(post, path = "/v1/billing/subscription/cancel", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Subscription, cancel_at_period_end set", body = SubscriptionBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Only owners and admins manage billing", body = ErrorEnvelope),
        (status = 409, description = "Nothing to cancel on Free", body = ErrorEnvelope)))]
pub async fn cancel(State(state): State<AppState>, _a: Authenticated) -> Result<Json<SubscriptionBody>, ApiError> {
    Ok(Json(subscription_body(client(&state).cancel_subscription(pb::Empty {}).await?.into_inner())))
}

/// Undoes a pending cancellation or downgrade.
#[utoipa::path(post, path = "/v1/billing/subscription/resume", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Subscription", body = SubscriptionBody),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Only owners and admins manage billing", body = ErrorEnvelope),
        (status = 409, description = "Nothing to resume on Free", body = ErrorEnvelope)))]
pub async fn resume(State(state): State<AppState>, _a: Authenticated) -> Result<Json<SubscriptionBody>, ApiError> {
    Ok(Json(subscription_body(client(&state).resume_subscription(pb::Empty {}).await?.into_inner())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceBody {
    pub id: String,
    /// "stripe" or "local" (receipts of local billing).
    pub provider: String,
    #[schema(example = "A1B2C3-0001")]
    pub number: String,
    /// draft, open, paid, uncollectible or void.
    #[schema(example = "paid")]
    pub status: String,
    pub amount_due: Option<MoneyBody>,
    pub amount_paid: Option<MoneyBody>,
    /// subscription_create, subscription_cycle, subscription_update, credits, manual.
    pub reason: String,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    /// Stripe's hosted invoice page and PDF.
    pub hosted_url: Option<String>,
    pub pdf_url: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePage {
    pub items: Vec<InvoiceBody>,
    pub next_cursor: Option<String>,
}

/// Invoices and receipts, newest first.
#[utoipa::path(get, path = "/v1/billing/invoices", tag = "billing", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "Invoice page", body = InvoicePage), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn invoices(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<InvoicePage>, ApiError> {
    let r = client(&state).list_invoices(pb::ListInvoicesRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(InvoicePage {
        items: r
            .items
            .into_iter()
            .map(|i| InvoiceBody {
                id: i.id,
                provider: i.provider,
                number: i.number,
                status: i.status,
                amount_due: money(i.amount_due),
                amount_paid: money(i.amount_paid),
                reason: i.reason,
                period_start: ts(i.period_start),
                period_end: ts(i.period_end),
                hosted_url: non_empty(i.hosted_url),
                pdf_url: non_empty(i.pdf_url),
                created_at: ts(i.created_at),
            })
            .collect(),
        next_cursor: next_cursor(r.page),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeBody {
    /// 80 or 100 (% of the month's credits used).
    #[schema(example = 80)]
    pub percent: u32,
    pub title: String,
    pub body: String,
    /// "ltr" or "rtl".
    #[schema(example = "ltr")]
    pub dir: String,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeList {
    pub items: Vec<NoticeBody>,
}

/// In-app credit notices of this period (80% and 100% used), newest first, in the user's language.
#[utoipa::path(get, path = "/v1/billing/notices", tag = "billing", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Notices", body = NoticeList), (status = 401, description = "No valid token", body = ErrorEnvelope)))]
pub async fn notices(State(state): State<AppState>, _a: Authenticated) -> Result<Json<NoticeList>, ApiError> {
    let r = client(&state).list_notices(pb::Empty {}).await?.into_inner();
    Ok(Json(NoticeList {
        items: r
            .items
            .into_iter()
            .map(|n| NoticeBody {
                percent: n.percent,
                title: n.title,
                body: n.body,
                dir: n.dir,
                created_at: ts(n.created_at),
            })
            .collect(),
    }))
}
