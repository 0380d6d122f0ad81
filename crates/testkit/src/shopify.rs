//! A fake Shopify Admin GraphQL API on port 0 (`reference/providers.md` §12).
//!
//! `POST /admin/api/<version>/graphql.json` with `X-Shopify-Access-Token` (401 otherwise) and
//! `{query, variables}`. Every answer carries `extensions.cost` with the bucket's state. The
//! operations a client of ours sends are recognised by name: `shop`, `location` (the primary
//! one), `productSet` (by handle:
//! the first call creates, later calls set the same product; variants get ids and inventory
//! items), `order { fulfillmentOrders }`, `fulfillmentCreate` (tracking recorded),
//! `webhookSubscriptionCreate`, `order { cancelledAt }` and `orderCancel` (a second cancel of one
//! order is refused), `order { transactions }` (one successful SALE through the `bogus` gateway)
//! and `refundCreate`: it requires `@idempotent(key:)` (2026-04), answers the first refund again
//! for a repeated key, and refuses with a user error a refund above what remains of an order
//! whose total the test set ([`FakeShopify::set_order_total`]); `translatableResource` with
//! `shopLocales` (the shop's locales: en primary, es and pt-BR published, ar enabled but not
//! published, he not enabled; [`FakeShopify::set_locales`]) and `translationsRegister`, which
//! refuses a locale the shop has not enabled or its primary one, and a digest other than the
//! SHA-256 of the field's current text. Anything else is a top-level GraphQL error.
//!
//! Throttling knobs: [`FakeShopify::throttle_next`] answers HTTP 429 (with `Retry-After`) or
//! HTTP 200 with the `THROTTLED` error and cost data whose refill time is short.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

pub const TEST_ACCESS_TOKEN: &str = "shpat_fake_0123456789abcdef";
pub const TEST_SHOP: &str = "nexus-test.myshopify.com";
/// The shop's primary location, where pushed stock is counted.
pub const PRIMARY_LOCATION: &str = "gid://shopify/Location/64000000001";

/// How a throttled request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// HTTP 429 with `Retry-After: 1`.
    Http429,
    /// HTTP 200, `errors: [{message: "Throttled", extensions: {code: "THROTTLED"}}]`, cost data.
    GraphQl,
}

#[derive(Debug, Clone)]
pub struct FakeShopifyProduct {
    pub id: String,
    pub handle: String,
    pub input: Value,
    /// How many productSet calls named this handle.
    pub sets: u32,
}

/// A refund the store made.
#[derive(Debug, Clone)]
pub struct FakeShopifyRefund {
    pub id: String,
    pub order_id: String,
    pub key: String,
    pub amount: Decimal,
    /// (line item gid, quantity)
    pub lines: Vec<(String, u64)>,
}

/// A translation the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeShopifyTranslation {
    pub product_id: String,
    pub locale: String,
    pub key: String,
    pub value: String,
}

struct State {
    /// (locale, primary, published)
    locales: Vec<(String, bool, bool)>,
    translations: Vec<FakeShopifyTranslation>,
    refunds: Vec<FakeShopifyRefund>,
    order_totals: HashMap<String, Decimal>,
    throttles: VecDeque<Throttle>,
    products: HashMap<String, FakeShopifyProduct>,
    fulfillments: Vec<(String, Value)>,
    webhooks: Vec<(String, String)>,
    /// Every orderCancel that cancelled: (order id, its arguments). Orders are known by any
    /// numeric id; one cancelled twice is refused as Shopify does.
    cancellations: Vec<(String, Value)>,
    /// Every request: (operation, HTTP status answered).
    log: Vec<(String, u16)>,
    seq: u64,
}

pub struct FakeShopify {
    /// The store root, for `ShopifyConfig::base_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeShopify {
    pub async fn start() -> FakeShopify {
        let state = Arc::new(Mutex::new(State {
            locales: vec![
                ("en".into(), true, true),
                ("es".into(), false, true),
                ("pt-BR".into(), false, true),
                ("ar".into(), false, false),
            ],
            translations: Vec::new(),
            refunds: Vec::new(),
            order_totals: HashMap::new(),
            throttles: VecDeque::new(),
            products: HashMap::new(),
            fulfillments: Vec::new(),
            webhooks: Vec::new(),
            cancellations: Vec::new(),
            log: Vec::new(),
            seq: 0,
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        FakeShopify { base_url: server.base_url.clone(), state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn throttle_next(&self, n: usize, how: Throttle) {
        let mut st = self.state();
        for _ in 0..n {
            st.throttles.push_back(how);
        }
    }

    /// (operation, status) of every request.
    pub fn log(&self) -> Vec<(String, u16)> {
        self.state().log.clone()
    }

    /// The shop's locales: (locale, primary, published).
    pub fn set_locales(&self, locales: &[(&str, bool, bool)]) {
        self.state().locales = locales.iter().map(|(l, p, x)| ((*l).to_owned(), *p, *x)).collect();
    }

    /// The translations registered, in order.
    pub fn translations(&self) -> Vec<FakeShopifyTranslation> {
        self.state().translations.clone()
    }

    pub fn products(&self) -> Vec<FakeShopifyProduct> {
        self.state().products.values().cloned().collect()
    }

    /// (order id, fulfillment input) of every fulfillment created.
    pub fn fulfillments(&self) -> Vec<(String, Value)> {
        self.state().fulfillments.clone()
    }

    /// (order id, arguments) of every cancellation made.
    pub fn cancellations(&self) -> Vec<(String, Value)> {
        self.state().cancellations.clone()
    }

    /// Cancels an order as the merchant would in the Shopify admin.
    pub fn cancel_in_admin(&self, order_id: &str) {
        self.state().cancellations.push((order_id.to_owned(), json!({"by": "admin"})));
    }

    /// Every refund made (a repeated idempotency key made none).
    pub fn refunds(&self) -> Vec<FakeShopifyRefund> {
        self.state().refunds.clone()
    }

    /// What the order (`gid://shopify/Order/…`) took, so refunds above what remains are refused.
    pub fn set_order_total(&self, order_id: &str, total: &str) {
        let total = total.parse().expect("a decimal total");
        self.state().order_totals.insert(order_id.to_owned(), total);
    }

    /// (topic, callback URL) of every webhook subscription.
    pub fn webhooks(&self) -> Vec<(String, String)> {
        self.state().webhooks.clone()
    }
}

fn cost(requested: u32, available: u32) -> Value {
    json!({"cost": {"requestedQueryCost": requested, "actualQueryCost": if available >= requested { json!(requested) } else { Value::Null },
        "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": available, "restoreRate": 500.0}}})
}

fn answer(data: Value) -> Response {
    (StatusCode::OK, axum::Json(json!({"data": data, "extensions": cost(10, 990)}))).into_response()
}

fn operation(query: &str) -> &'static str {
    // First the operations whose queries contain another's name (`shopLocales` holds `shop`).
    let ops = [
        "translationsRegister",
        "translatableResource",
        "refundCreate",
        "transactions",
        "orderCancel",
        "cancelledAt",
        "productSet",
        "fulfillmentCreate",
        "webhookSubscriptionCreate",
        "fulfillmentOrders",
        "shop",
        "location",
    ];
    for op in ops {
        if query.contains(op) {
            return op;
        }
    }
    "unknown"
}

async fn handle(AxState(state): AxState<Arc<Mutex<State>>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = lock(&state);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let query = request.get("query").and_then(Value::as_str).unwrap_or_default().to_owned();
    let vars = request.get("variables").cloned().unwrap_or(Value::Null);
    let op = operation(&query);
    let path_ok = uri.path().starts_with("/admin/api/") && uri.path().ends_with("/graphql.json");
    let token_ok = headers.get("X-Shopify-Access-Token").and_then(|v| v.to_str().ok()) == Some(TEST_ACCESS_TOKEN);
    if !path_ok {
        st.log.push((op.into(), 404));
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    if !token_ok {
        st.log.push((op.into(), 401));
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
            ),
        )
            .into_response();
    }
    if let Some(t) = st.throttles.pop_front() {
        return match t {
            Throttle::Http429 => {
                st.log.push((op.into(), 429));
                let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}))).into_response();
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                r
            }
            Throttle::GraphQl => {
                st.log.push((op.into(), 200));
                // 40 points short at 500/s: refilled in 80 ms.
                (StatusCode::OK, axum::Json(json!({
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": cost(50, 10),
                }))).into_response()
            }
        };
    }
    st.log.push((op.into(), 200));
    match op {
        "shop" => answer(json!({"shop": {"name": "Nexus Test", "myshopifyDomain": TEST_SHOP, "currencyCode": "USD"}})),
        "location" => answer(json!({"location": {"id": PRIMARY_LOCATION}})),
        "cancelledAt" => {
            let id = vars.get("id").and_then(Value::as_str).unwrap_or_default();
            if !id.starts_with("gid://shopify/Order/") {
                return answer(json!({"order": null}));
            }
            let at = st.cancellations.iter().any(|(o, _)| o == id).then_some("2026-11-03T12:00:00Z");
            answer(json!({"order": {"id": id, "cancelledAt": at}}))
        }
        "orderCancel" => {
            let id = vars.get("orderId").and_then(Value::as_str).unwrap_or_default().to_owned();
            if st.cancellations.iter().any(|(o, _)| *o == id) {
                return answer(json!({"orderCancel": {"job": null, "orderCancelUserErrors": [
                    {"field": ["orderId"], "message": "Order has already been cancelled", "code": "INVALID"}]}}));
            }
            let args = json!({"query": query, "staffNote": vars.get("staffNote")});
            st.cancellations.push((id, args));
            st.seq += 1;
            let job = format!("gid://shopify/Job/{}", st.seq);
            answer(json!({"orderCancel": {"job": {"id": job}, "orderCancelUserErrors": []}}))
        }
        "transactions" => {
            let id = vars.get("id").and_then(Value::as_str).unwrap_or_default();
            let Some(n) = id.strip_prefix("gid://shopify/Order/") else { return answer(json!({"order": null})) };
            answer(json!({"order": {"id": id, "transactions": [
                {"id": format!("gid://shopify/OrderTransaction/{n}1"), "kind": "AUTHORIZATION", "status": "SUCCESS", "gateway": "bogus"},
                {"id": format!("gid://shopify/OrderTransaction/{n}2"), "kind": "SALE", "status": "SUCCESS", "gateway": "bogus"}]}}))
        }
        "refundCreate" => refund_create(&mut st, &query, &vars),
        "translatableResource" => {
            let id = vars.get("id").and_then(Value::as_str).unwrap_or_default();
            let locales: Vec<Value> =
                st.locales.iter().map(|(l, p, x)| json!({"locale": l, "primary": p, "published": x})).collect();
            let resource = st.products.values().find(|p| p.id == id).map(|p| {
                let content: Vec<Value> = product_texts(&p.input)
                    .into_iter()
                    .map(|(key, text)| json!({"key": key, "digest": digest(&text), "locale": "en"}))
                    .collect();
                json!({"resourceId": id, "translatableContent": content})
            });
            answer(json!({"shopLocales": locales, "translatableResource": resource}))
        }
        "translationsRegister" => translations_register(&mut st, &vars),
        "productSet" => {
            let handle = vars.pointer("/identifier/handle").and_then(Value::as_str).unwrap_or_default().to_owned();
            let input = vars.get("input").cloned().unwrap_or(Value::Null);
            if handle.is_empty() || input.get("title").and_then(Value::as_str).is_none_or(str::is_empty) {
                return answer(json!({"productSet": {"product": null, "userErrors": [{"field": ["input", "title"], "message": "Title can't be blank", "code": "BLANK"}]}}));
            }
            st.seq += 1;
            let seq = st.seq;
            let p = st.products.entry(handle.clone()).or_insert_with(|| FakeShopifyProduct {
                id: format!("gid://shopify/Product/{}", 7_000_000 + seq),
                handle: handle.clone(),
                input: Value::Null,
                sets: 0,
            });
            p.sets += 1;
            p.input = input.clone();
            let pid = p.id.clone();
            let variants: Vec<Value> = input
                .get("variants")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let sku = v.pointer("/inventoryItem/sku").and_then(Value::as_str).unwrap_or_default();
                    let n = pid.rsplit('/').next().unwrap_or("0");
                    json!({"id": format!("gid://shopify/ProductVariant/{n}{i}"), "sku": sku,
                           "inventoryItem": {"id": format!("gid://shopify/InventoryItem/{n}{i}")}})
                })
                .collect();
            answer(json!({"productSet": {"product": {"id": pid, "handle": handle, "variants": {"nodes": variants}}, "userErrors": []}}))
        }
        "fulfillmentOrders" => {
            let id = vars.get("id").and_then(Value::as_str).unwrap_or_default();
            let n = id.rsplit('/').next().unwrap_or("0");
            let status = if st.fulfillments.iter().any(|(o, _)| o == id) { "CLOSED" } else { "OPEN" };
            answer(json!({"order": {"id": id, "fulfillmentOrders": {"nodes": [{"id": format!("gid://shopify/FulfillmentOrder/{n}"), "status": status}]}}}))
        }
        "fulfillmentCreate" => {
            let f = vars.get("fulfillment").cloned().unwrap_or(Value::Null);
            let fo = f.pointer("/lineItemsByFulfillmentOrder/0/fulfillmentOrderId").and_then(Value::as_str).unwrap_or_default();
            let order = format!("gid://shopify/Order/{}", fo.rsplit('/').next().unwrap_or("0"));
            st.seq += 1;
            let id = format!("gid://shopify/Fulfillment/{}", st.seq);
            st.fulfillments.push((order, f));
            answer(json!({"fulfillmentCreate": {"fulfillment": {"id": id, "status": "SUCCESS"}, "userErrors": []}}))
        }
        "webhookSubscriptionCreate" => {
            let topic = vars.get("topic").and_then(Value::as_str).unwrap_or_default().to_owned();
            let url = vars.pointer("/sub/callbackUrl").and_then(Value::as_str).unwrap_or_default().to_owned();
            st.seq += 1;
            let id = format!("gid://shopify/WebhookSubscription/{}", st.seq);
            st.webhooks.push((topic.clone(), url));
            answer(json!({"webhookSubscriptionCreate": {"webhookSubscription": {"id": id, "topic": topic}, "userErrors": []}}))
        }
        _ => (StatusCode::OK, axum::Json(json!({"errors": [{"message": "Field 'unknown' doesn't exist on type 'QueryRoot'"}], "extensions": cost(1, 999)}))).into_response(),
    }
}

/// A product's translatable fields as Shopify keys them.
fn product_texts(input: &Value) -> Vec<(&'static str, String)> {
    [("title", "title"), ("body_html", "descriptionHtml")]
        .into_iter()
        .filter_map(|(key, field)| {
            input.get(field).and_then(Value::as_str).filter(|t| !t.is_empty()).map(|t| (key, t.to_owned()))
        })
        .collect()
}

fn digest(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn translations_register(st: &mut State, vars: &Value) -> Response {
    let refuse = |field: &str, message: &str, code: &str| {
        answer(json!({"translationsRegister": {"translations": null, "userErrors": [
            {"field": ["translations", field], "message": message, "code": code}]}}))
    };
    let id = vars.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(product) = st.products.values().find(|p| p.id == id) else {
        return refuse("resourceId", "Resource does not exist", "RESOURCE_NOT_FOUND");
    };
    let texts = product_texts(&product.input);
    let list = vars.get("translations").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut taken = Vec::new();
    for t in &list {
        let field = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (locale, key, value, given) =
            (field("locale"), field("key"), field("value"), field("translatableContentDigest"));
        match st.locales.iter().find(|(l, _, _)| *l == locale) {
            None => return refuse("locale", "Locale is not enabled for the shop", "INVALID_LOCALE_FOR_SHOP"),
            Some((_, true, _)) => {
                return refuse("locale", "Locale cannot be the shop's primary locale", "INVALID_LOCALE_FOR_SHOP");
            }
            Some(_) => {}
        }
        match texts.iter().find(|(k, _)| *k == key) {
            None => return refuse("key", "Key is not translatable", "INVALID_KEY_FOR_MODEL"),
            Some((_, text)) if digest(text) != given => {
                return refuse(
                    "translatableContentDigest",
                    "Translatable content hash is invalid",
                    "INVALID_TRANSLATABLE_CONTENT",
                );
            }
            Some(_) => {}
        }
        taken.push(FakeShopifyTranslation { product_id: id.clone(), locale, key, value });
    }
    let answered: Vec<Value> = taken.iter().map(|t| json!({"key": t.key, "locale": t.locale})).collect();
    for t in taken {
        st.translations.retain(|x| !(x.product_id == t.product_id && x.locale == t.locale && x.key == t.key));
        st.translations.push(t);
    }
    answer(json!({"translationsRegister": {"translations": answered, "userErrors": []}}))
}

fn refund_error(field: &str, message: &str) -> Response {
    answer(json!({"refundCreate": {"refund": null, "userErrors": [{"field": ["input", field], "message": message}]}}))
}

/// `refundCreate` as the 2026-04 API takes it: idempotency key required, one refund per key,
/// money back through the order's own sale transaction, never more than remains.
fn refund_create(st: &mut State, query: &str, vars: &Value) -> Response {
    if !query.contains("@idempotent") {
        return (
            StatusCode::OK,
            axum::Json(json!({"errors": [{"message": "The @idempotent directive is required for this mutation",
            "extensions": {"code": "BAD_REQUEST"}}], "extensions": cost(10, 990)})),
        )
            .into_response();
    }
    let key = vars.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
    let money = |id: &str, amount: Decimal| json!({"refundCreate": {"refund": {"id": id, "totalRefundedSet": {"shopMoney": {"amount": amount.to_string(), "currencyCode": "USD"}}}, "userErrors": []}});
    if let Some(done) = st.refunds.iter().find(|r| r.key == key && !key.is_empty()) {
        return answer(money(&done.id, done.amount));
    }
    let input = vars.get("input").cloned().unwrap_or(Value::Null);
    let order = input.get("orderId").and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(n) = order.strip_prefix("gid://shopify/Order/") else {
        return refund_error("orderId", "Order does not exist");
    };
    let tx = input.pointer("/transactions/0").cloned().unwrap_or(Value::Null);
    if tx.get("parentId").and_then(Value::as_str) != Some(&format!("gid://shopify/OrderTransaction/{n}2"))
        || tx.get("kind").and_then(Value::as_str) != Some("REFUND")
    {
        return refund_error("transactions", "Parent transaction must be a successful sale or capture of this order");
    }
    let Some(amount) =
        tx.get("amount").and_then(Value::as_str).and_then(|a| a.parse::<Decimal>().ok()).filter(|a| *a > Decimal::ZERO)
    else {
        return refund_error("transactions", "Amount must be greater than zero");
    };
    if let Some(total) = st.order_totals.get(&order) {
        let refunded: Decimal = st.refunds.iter().filter(|r| r.order_id == order).map(|r| r.amount).sum();
        if refunded + amount > *total {
            return refund_error("transactions", "Refund amount must be less than or equal to the refundable amount");
        }
    }
    let lines = input
        .get("refundLineItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (
                l.get("lineItemId").and_then(Value::as_str).unwrap_or_default().to_owned(),
                l.get("quantity").and_then(Value::as_u64).unwrap_or(0),
            )
        })
        .collect();
    st.seq += 1;
    let id = format!("gid://shopify/Refund/{}", st.seq);
    st.refunds.push(FakeShopifyRefund { id: id.clone(), order_id: order, key, amount, lines });
    answer(money(&id, amount))
}
