//! `/v1/commerce/orders`: store orders (from Shopify webhooks) and manual or local ones, their
//! fulfilment through the supplier, and refunds (whole, or an amount or some lines).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::nexus::commerce::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    AmountBody, PageQuery, amount, commerce_client as client, idempotency_key, next_cursor, page_request, ts,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(fulfil_order))
        .routes(routes!(refund_order))
        .routes(routes!(create_refund, list_refunds))
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub name: String,
    /// Empty, or an address with an `@`.
    #[serde(default)]
    #[schema(max_length = 254, pattern = r"^([^\s@\x00-\x1F\x7F-\x9F]*@[^\s\x00-\x1F\x7F-\x9F]*)?$")]
    pub email: String,
    #[serde(default)]
    #[schema(max_length = 32, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub phone: String,
    #[serde(default)]
    #[schema(max_length = 300, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub address1: String,
    #[serde(default)]
    #[schema(max_length = 300, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub address2: String,
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub city: String,
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub province: String,
    #[serde(default)]
    #[schema(max_length = 20, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub zip: String,
    /// ISO 3166 alpha-2, upper case; empty if unknown.
    #[serde(default)]
    #[schema(pattern = "^([A-Z]{2})?$")]
    pub country_code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    /// A variant of an imported product (`var_…`).
    pub variant_id: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
    /// Unit price (decimal, no more decimals than the currency has); absent: the variant's price.
    #[schema(pattern = r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]
    pub price: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"currency": "USD", "customer": {"name": "Ana Silva", "email": "ana@example.com", "address1": "1 Market St", "city": "San Francisco", "zip": "94105", "country_code": "US"},
    "lines": [{"variant_id": "var_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "quantity": 1}], "shipping": "4.99", "paid": true, "affiliate": "aff-7"}))]
pub struct OrderRequest {
    #[schema(schema_with = crate::openapi::vocab::currency_code)]
    pub currency: String,
    pub customer: Option<CustomerBody>,
    /// 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<OrderLineRequest>,
    #[schema(pattern = r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]
    pub shipping: Option<String>,
    #[schema(pattern = r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]
    pub taxes: Option<String>,
    /// Paid at once (records the sale and commissions).
    #[serde(default)]
    pub paid: bool,
    /// An affiliate's code, for commission rules.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub affiliate: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineBody {
    pub variant_id: Option<String>,
    pub sku: String,
    pub quantity: u32,
    pub price: String,
    pub title: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    #[schema(example = "ord_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    /// shopify, local or manual.
    pub source: String,
    pub external_id: String,
    pub number: String,
    /// pending, paid, fulfilling, fulfilled, fulfilment_failed, cancelled or refunded.
    pub status: String,
    pub subtotal: Option<AmountBody>,
    pub shipping: Option<AmountBody>,
    pub taxes: Option<AmountBody>,
    pub total: Option<AmountBody>,
    pub customer: CustomerBody,
    pub lines: Vec<OrderLineBody>,
    pub supplier_order_id: Option<String>,
    /// The supplier's payment page, when the order is paid there.
    pub supplier_pay_url: Option<String>,
    pub tracking_numbers: Vec<String>,
    /// Why fulfilment failed and what was done about it (a refund request, an alert).
    pub failure: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    pub items: Vec<OrderBody>,
    pub next_cursor: Option<String>,
}

fn opt(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

fn order(o: pb::Order) -> OrderBody {
    let c = o.customer.unwrap_or_default();
    OrderBody {
        id: o.id,
        source: o.source,
        external_id: o.external_id,
        number: o.number,
        status: o.status,
        subtotal: amount(o.subtotal),
        shipping: amount(o.shipping),
        taxes: amount(o.taxes),
        total: amount(o.total),
        customer: CustomerBody {
            name: c.name,
            email: c.email,
            phone: c.phone,
            address1: c.address1,
            address2: c.address2,
            city: c.city,
            province: c.province,
            zip: c.zip,
            country_code: c.country_code,
        },
        lines: o
            .lines
            .into_iter()
            .map(|l| OrderLineBody {
                variant_id: opt(l.variant_id),
                sku: l.sku,
                quantity: l.quantity,
                price: l.price,
                title: l.title,
            })
            .collect(),
        supplier_order_id: opt(o.supplier_order_id),
        supplier_pay_url: opt(o.supplier_pay_url),
        tracking_numbers: o.tracking_numbers,
        failure: opt(o.failure),
        created_at: ts(o.created_at),
        updated_at: ts(o.updated_at),
    }
}

/// Create a manual (or local store) order. The same `Idempotency-Key` answers the same order.
#[utoipa::path(post, path = "/v1/commerce/orders", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = String, Header, example = "order-2026-11-03-0001")), request_body = OrderRequest,
    responses((status = 201, description = "Created", body = OrderBody), (status = 400, description = "Invalid customer, lines or amounts", body = ErrorEnvelope),
        (status = 404, description = "A variant is not in this workspace", body = ErrorEnvelope)))]
pub async fn create_order(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiJson(b): ApiJson<OrderRequest>,
) -> Result<(StatusCode, Json<OrderBody>), ApiError> {
    let c = b.customer.unwrap_or_default();
    let req = pb::CreateOrderRequest {
        idempotency_key: idempotency_key(&headers)?,
        currency: b.currency,
        customer: Some(pb::Customer {
            name: c.name,
            email: c.email,
            phone: c.phone,
            address1: c.address1,
            address2: c.address2,
            city: c.city,
            province: c.province,
            zip: c.zip,
            country_code: c.country_code,
        }),
        lines: b
            .lines
            .into_iter()
            .map(|l| pb::OrderLine {
                variant_id: l.variant_id,
                quantity: l.quantity,
                price: l.price.unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        shipping: b.shipping.unwrap_or_default(),
        taxes: b.taxes.unwrap_or_default(),
        paid: b.paid,
        affiliate: b.affiliate.unwrap_or_default(),
    };
    Ok((StatusCode::CREATED, Json(order(client(&state).create_order(req).await?.into_inner()))))
}

/// Orders, newest first.
#[utoipa::path(get, path = "/v1/commerce/orders", tag = "commerce", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of orders", body = OrderList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_orders(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<OrderList>, ApiError> {
    let r = client(&state).list_orders(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(OrderList { items: r.orders.into_iter().map(order).collect(), next_cursor: next_cursor(r.page) }))
}

/// One order.
#[utoipa::path(get, path = "/v1/commerce/orders/{id}", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "ord_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The order", body = OrderBody), (status = 404, description = "No such order in this workspace", body = ErrorEnvelope)))]
pub async fn get_order(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrderBody>, ApiError> {
    Ok(Json(order(client(&state).get_order(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"supplier_connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "logistic_name": "CJPacket Ordinary", "pay_with": "balance"}))]
pub struct FulfilRequest {
    pub supplier_connection_id: String,
    /// A freight option (at most 100 characters, no control characters); absent: the
    /// supplier's standard one.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub logistic_name: Option<String>,
    /// balance (pay from the supplier balance) or page (answer the supplier's pay link).
    #[schema(pattern = "^(balance|page)$")]
    pub pay_with: Option<String>,
}

/// Order the goods from the supplier. A supplier failure after the buyer paid ends in
/// `fulfilment_failed` with the reason, a refund request and an alert.
#[utoipa::path(post, path = "/v1/commerce/orders/{id}/fulfil", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "ord_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = FulfilRequest,
    responses((status = 200, description = "The order after the attempt", body = OrderBody),
        (status = 400, description = "A logistic name too long or with control characters, or pay_with not balance or page", body = ErrorEnvelope),
        (status = 404, description = "No such order or supplier", body = ErrorEnvelope),
        (status = 409, description = "The order is not paid, or already fulfilled", body = ErrorEnvelope), (status = 422, description = "An order line is not from this supplier", body = ErrorEnvelope)))]
pub async fn fulfil_order(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<FulfilRequest>,
) -> Result<Json<OrderBody>, ApiError> {
    let req = pb::FulfilOrderRequest {
        order_id: id,
        supplier_connection_id: b.supplier_connection_id,
        logistic_name: b.logistic_name.unwrap_or_default(),
        pay_with: b.pay_with.unwrap_or_default(),
    };
    Ok(Json(order(client(&state).fulfil_order(req).await?.into_inner())))
}

/// Refund an order (its sale and commissions are reversed).
#[utoipa::path(post, path = "/v1/commerce/orders/{id}/refund", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "ord_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "Refunded", body = OrderBody), (status = 404, description = "No such order", body = ErrorEnvelope),
        (status = 409, description = "The order was never paid", body = ErrorEnvelope)))]
pub async fn refund_order(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrderBody>, ApiError> {
    Ok(Json(order(client(&state).refund_order(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLineBody {
    /// Index of the line in the order's `lines` (from 0).
    #[schema(minimum = 0, maximum = 99)]
    pub line: u32,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lines": [{"line": 0, "quantity": 1}], "reason": "Arrived damaged"}))]
pub struct RefundRequest {
    /// An amount in the order's currency; or give `lines` (each refunded at its unit price).
    #[schema(pattern = r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]
    pub amount: Option<String>,
    #[schema(max_items = 100)]
    pub lines: Option<Vec<RefundLineBody>>,
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "rfnd_0192f0c5c2b87c31a1f1e4f2b1a0c9d9", "order_id": "ord_0192f0c5c2b87c31a1f1e4f2b1a0c9d7",
    "status": "completed", "amount": {"value": "19.99", "currency": "USD"}, "lines": [{"line": 0, "quantity": 1}],
    "reason": "Arrived damaged", "store_refund_id": "gid://shopify/Refund/1", "profit_reversed": {"value": "6.10", "currency": "USD"},
    "reporting_profit_reversed": {"value": "6.10", "currency": "USD"}, "created_at": "2026-11-03T10:00:00+00:00",
    "completed_at": "2026-11-03T10:00:01+00:00"}))]
pub struct RefundBody {
    pub id: String,
    pub order_id: String,
    /// pending (the store has not answered yet: send the same request again), completed or failed.
    pub status: String,
    pub amount: Option<AmountBody>,
    pub lines: Vec<RefundLineBody>,
    pub reason: String,
    pub store_refund_id: Option<String>,
    /// Why the store refused it.
    pub failure: Option<String>,
    /// The share of the sale's profit this refund took back.
    pub profit_reversed: Option<AmountBody>,
    pub reporting_profit_reversed: Option<AmountBody>,
    pub created_at: Option<String>,
    pub completed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundList {
    pub items: Vec<RefundBody>,
}

fn refund(r: pb::Refund) -> RefundBody {
    RefundBody {
        id: r.id,
        order_id: r.order_id,
        status: r.status,
        amount: amount(r.amount),
        lines: r.lines.into_iter().map(|l| RefundLineBody { line: l.line, quantity: l.quantity }).collect(),
        reason: r.reason,
        store_refund_id: opt(r.store_refund_id),
        failure: opt(r.failure),
        profit_reversed: amount(r.profit_reversed),
        reporting_profit_reversed: amount(r.reporting_profit_reversed),
        created_at: ts(r.created_at),
        completed_at: ts(r.completed_at),
    }
}

/// Refund an amount or some lines of a paid order: a store order at the store first. Never more
/// than remains refundable; the sale's profit and commissions are taken back in proportion. The
/// same `Idempotency-Key` refunds once and answers the same refund.
#[utoipa::path(post, path = "/v1/commerce/orders/{id}/refunds", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "ord_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"), ("Idempotency-Key" = String, Header, example = "refund-2026-11-03-0001")),
    request_body = RefundRequest,
    responses((status = 201, description = "The refund", body = RefundBody), (status = 400, description = "Invalid amount, lines or key", body = ErrorEnvelope),
        (status = 404, description = "No such order", body = ErrorEnvelope),
        (status = 409, description = "The order is not paid, or the refund is more than remains", body = ErrorEnvelope),
        (status = 422, description = "The store refused the refund", body = ErrorEnvelope),
        (status = 503, description = "The store did not answer: send the same request again", body = ErrorEnvelope)))]
pub async fn create_refund(
    State(state): State<AppState>,
    _a: Authenticated,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<RefundRequest>,
) -> Result<(StatusCode, Json<RefundBody>), ApiError> {
    let req = pb::CreateRefundRequest {
        order_id: id,
        idempotency_key: idempotency_key(&headers)?,
        amount: b.amount.unwrap_or_default(),
        lines: b
            .lines
            .unwrap_or_default()
            .into_iter()
            .map(|l| pb::RefundLine { line: l.line, quantity: l.quantity })
            .collect(),
        reason: b.reason.unwrap_or_default(),
    };
    Ok((StatusCode::CREATED, Json(refund(client(&state).create_refund(req).await?.into_inner()))))
}

/// An order's refunds, oldest first.
#[utoipa::path(get, path = "/v1/commerce/orders/{id}/refunds", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "ord_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The refunds", body = RefundList), (status = 404, description = "No such order", body = ErrorEnvelope)))]
pub async fn list_refunds(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RefundList>, ApiError> {
    let r = client(&state).list_refunds(pb::GetByIdRequest { id }).await?.into_inner();
    Ok(Json(RefundList { items: r.refunds.into_iter().map(refund).collect() }))
}
