//! A fake CJ Dropshipping API 2.0 on port 0 (`reference/providers.md` §11).
//!
//! As the contract says: `getAccessToken` with the right API key answers an access token and a
//! refresh token with expiry dates (RFC 3339); `refreshAccessToken` swaps a valid refresh token
//! for a new access token; every other call needs a current `CJ-Access-Token` (an unknown or
//! expired one gets `{"code":1600001,"result":false}` with HTTP 200, as CJ does). Answers use
//! the `{code,result,message,data,requestId}` envelope. Products (`/product/list`,
//! `/product/query`, `/product/stock/queryByVid`), freight, `createOrderV2` (unique
//! `orderNumber`; pay type 1 answers a `cjPayUrl`) and `getOrderDetail` (a tracking number once
//! shipped) are served from memory.
//!
//! Knobs: the access-token lifetime, [`FakeCj::fail_next`] (status, body, `Retry-After`),
//! [`FakeCj::fail_orders`] (createOrderV2 refused with a CJ code), product cost and stock
//! changes, and logs of token calls and of every request's token.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

pub const TEST_API_KEY: &str = "CJ1234567@api@0123456789abcdef";

/// A product the fake sells.
#[derive(Debug, Clone)]
pub struct FakeCjProduct {
    pub pid: String,
    pub name: String,
    pub category: String,
    pub variants: Vec<FakeCjVariant>,
}

#[derive(Debug, Clone)]
pub struct FakeCjVariant {
    pub vid: String,
    pub sku: String,
    pub key: String,
    /// USD, decimal text.
    pub price: String,
    pub stock: i64,
}

/// An order created on the fake.
#[derive(Debug, Clone)]
pub struct FakeCjOrder {
    pub order_id: String,
    pub order_number: String,
    pub pay_type: u64,
    pub logistic_name: String,
    pub products: Value,
    pub track_number: Option<String>,
}

struct Failure {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

struct Token {
    expires_at: DateTime<Utc>,
}

struct State {
    access_ttl: Duration,
    access: HashMap<String, Token>,
    refresh: HashMap<String, DateTime<Utc>>,
    failures: VecDeque<Failure>,
    order_failure: Option<(i64, String)>,
    products: Vec<FakeCjProduct>,
    /// Where each product (`pid`) and variant (`vid`) is in `products`: a catalogue of tens of
    /// thousands answers in constant time, as CJ's does.
    by_pid: HashMap<String, usize>,
    by_vid: HashMap<String, (usize, usize)>,
    orders: Vec<FakeCjOrder>,
    token_calls: Vec<String>,
    /// (path, token sent, whether it was accepted)
    calls: Vec<(String, String, bool)>,
    seq: u64,
}

pub struct FakeCj {
    /// For `CjConfig::base_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeCj {
    pub async fn start() -> FakeCj {
        let mut state = State {
            access_ttl: Duration::from_secs(15 * 86_400),
            access: HashMap::new(),
            refresh: HashMap::new(),
            failures: VecDeque::new(),
            order_failure: None,
            products: Vec::new(),
            by_pid: HashMap::new(),
            by_vid: HashMap::new(),
            orders: Vec::new(),
            token_calls: Vec::new(),
            calls: Vec::new(),
            seq: 0,
        };
        state.add(sample_products());
        let state = Arc::new(Mutex::new(state));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        FakeCj { base_url: format!("{}/api2.0/v1", server.base_url), state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Lifetime of access tokens issued from now on (CJ: 15 days).
    pub fn set_access_ttl(&self, ttl: Duration) {
        self.state().access_ttl = ttl;
    }

    /// The next `n` requests get `status` with `body` (+ `Retry-After` seconds).
    pub fn fail_next(&self, n: usize, status: u16, body: Value, retry_after: Option<u64>) {
        let mut st = self.state();
        for _ in 0..n {
            st.failures.push_back(Failure { status, body: body.clone(), retry_after });
        }
    }

    /// Every `createOrderV2` from now on is refused with this CJ code and message.
    pub fn fail_orders(&self, code: i64, message: &str) {
        self.state().order_failure = Some((code, message.to_owned()));
    }

    /// Token endpoint calls so far: `get` or `refresh`.
    pub fn token_calls(&self) -> Vec<String> {
        self.state().token_calls.clone()
    }

    /// Authenticated calls: (path, whether the token was accepted).
    pub fn calls(&self) -> Vec<(String, bool)> {
        self.state().calls.iter().map(|(p, _, ok)| (p.clone(), *ok)).collect()
    }

    pub fn orders(&self) -> Vec<FakeCjOrder> {
        self.state().orders.clone()
    }

    pub fn products(&self) -> Vec<FakeCjProduct> {
        self.state().products.clone()
    }

    /// Adds products to the catalogue (a `pid` or `vid` already sold is taken by the newer one).
    pub fn add_products(&self, products: Vec<FakeCjProduct>) {
        self.state().add(products);
    }

    /// Sets a variant's price (USD) and stock.
    pub fn set_variant(&self, vid: &str, price: &str, stock: i64) {
        let mut st = self.state();
        if let Some(&(p, v)) = st.by_vid.get(vid) {
            let v = &mut st.products[p].variants[v];
            v.price = price.to_owned();
            v.stock = stock;
        }
    }

    /// Forgets the log of authenticated calls (a long benchmark's log would be most of its memory).
    pub fn clear_calls(&self) {
        let mut st = self.state();
        st.calls = Vec::new();
    }

    /// Marks an order shipped with a tracking number.
    pub fn ship(&self, order_id: &str, track_number: &str) {
        for o in &mut self.state().orders {
            if o.order_id == order_id {
                o.track_number = Some(track_number.to_owned());
            }
        }
    }

    pub fn envelope_error(code: i64, message: &str) -> Value {
        json!({"code": code, "result": false, "message": message, "data": null, "requestId": "req-fake"})
    }
}

impl State {
    fn add(&mut self, products: Vec<FakeCjProduct>) {
        for p in products {
            let at = self.products.len();
            self.by_pid.insert(p.pid.clone(), at);
            for (i, v) in p.variants.iter().enumerate() {
                self.by_vid.insert(v.vid.clone(), (at, i));
            }
            self.products.push(p);
        }
    }

    fn product(&self, pid: &str) -> Option<&FakeCjProduct> {
        self.by_pid.get(pid).map(|&i| &self.products[i])
    }

    fn variant(&self, vid: &str) -> Option<&FakeCjVariant> {
        self.by_vid.get(vid).map(|&(p, v)| &self.products[p].variants[v])
    }
}

fn sample_products() -> Vec<FakeCjProduct> {
    (1..=3)
        .map(|n| FakeCjProduct {
            pid: format!("CJPID{n:04}"),
            name: format!("Fake product {n}"),
            category: if n == 1 { "Shoes".into() } else { "Home".into() },
            variants: (1..=2)
                .map(|m| FakeCjVariant {
                    vid: format!("CJVID{n:04}{m}"),
                    sku: format!("CJSKU{n:04}-{m}"),
                    key: if m == 1 { "Black".into() } else { "White".into() },
                    price: format!("{}.50", 5 * n + m),
                    stock: 100,
                })
                .collect(),
        })
        .collect()
}

fn ok(data: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"code": 200, "result": true, "message": "Success", "data": data, "requestId": "req-fake"})),
    )
        .into_response()
}

fn err(code: i64, message: &str) -> Response {
    (StatusCode::OK, axum::Json(FakeCj::envelope_error(code, message))).into_response()
}

fn issue(st: &mut State) -> Value {
    st.seq += 1;
    let now = Utc::now();
    let access = format!("cj-access-{}-{}", st.seq, uuid::Uuid::new_v4().simple());
    let refresh = format!("cj-refresh-{}-{}", st.seq, uuid::Uuid::new_v4().simple());
    let expires = now + chrono::Duration::from_std(st.access_ttl).unwrap_or_default();
    let refresh_expires = now + chrono::Duration::days(180);
    st.access.insert(access.clone(), Token { expires_at: expires });
    st.refresh.insert(refresh.clone(), refresh_expires);
    json!({
        "openId": 1234567,
        "accessToken": access,
        "accessTokenExpiryDate": expires.to_rfc3339(),
        "refreshToken": refresh,
        "refreshTokenExpiryDate": refresh_expires.to_rfc3339(),
        "createDate": now.to_rfc3339(),
    })
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches("/api2.0/v1").to_owned();
    let mut st = lock(&state);
    if let Some(f) = st.failures.pop_front() {
        let mut r = (StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(f.body))
            .into_response();
        if let Some(s) = f.retry_after {
            r.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
        }
        return r;
    }
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (method.as_str(), path.as_str()) {
        ("POST", "/authentication/getAccessToken") => {
            st.token_calls.push("get".into());
            if json_body.get("apiKey").and_then(Value::as_str) != Some(TEST_API_KEY) {
                return err(1601000, "User not find");
            }
            let data = issue(&mut st);
            return ok(data);
        }
        ("POST", "/authentication/refreshAccessToken") => {
            st.token_calls.push("refresh".into());
            let token = json_body.get("refreshToken").and_then(Value::as_str).unwrap_or_default().to_owned();
            match st.refresh.get(&token) {
                Some(exp) if *exp > Utc::now() => {}
                _ => return err(1600001, "Invalid refresh token"),
            }
            st.refresh.remove(&token);
            let data = issue(&mut st);
            return ok(data);
        }
        _ => {}
    }
    let token = headers.get("CJ-Access-Token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let valid = st.access.get(&token).is_some_and(|t| t.expires_at > Utc::now());
    st.calls.push((path.clone(), token, valid));
    if !valid {
        return err(1600001, "Invalid token");
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/product/list") => {
            let keyword = query.get("productNameEn").map(|s| s.to_lowercase()).unwrap_or_default();
            let list: Vec<Value> = st
                .products
                .iter()
                .filter(|p| keyword.is_empty() || p.name.to_lowercase().contains(&keyword))
                .map(|p| {
                    let prices: Vec<&str> = p.variants.iter().map(|v| v.price.as_str()).collect();
                    json!({
                        "pid": p.pid, "productNameEn": p.name, "productSku": format!("{}-SKU", p.pid),
                        "categoryName": p.category, "productImage": format!("https://img.example/{}.jpg", p.pid),
                        "sellPrice": format!("{} -- {}", prices.first().unwrap_or(&"0"), prices.last().unwrap_or(&"0")),
                    })
                })
                .collect();
            ok(json!({"pageNum": 1, "pageSize": 20, "total": list.len(), "list": list}))
        }
        ("GET", "/product/query") => {
            let pid = query.get("pid").cloned().unwrap_or_default();
            let Some(p) = st.product(&pid) else {
                return err(1600100, "Param error: product not found");
            };
            let variants: Vec<Value> = p
                .variants
                .iter()
                .map(|v| {
                    json!({"vid": v.vid, "variantSku": v.sku, "variantKey": v.key,
                           "variantSellPrice": v.price.parse::<f64>().unwrap_or(0.0),
                           "variantImage": format!("https://img.example/{}.jpg", v.vid)})
                })
                .collect();
            ok(json!({
                "pid": p.pid, "productNameEn": p.name, "description": format!("<p>{}</p>", p.name),
                "categoryName": p.category, "productImageSet": [format!("https://img.example/{}.jpg", p.pid)],
                "variants": variants,
            }))
        }
        ("GET", "/product/stock/queryByVid") => {
            let vid = query.get("vid").cloned().unwrap_or_default();
            match st.variant(&vid) {
                Some(v) => ok(json!([{"vid": v.vid, "areaEn": "China Warehouse", "storageNum": v.stock}])),
                None => err(1600100, "Param error: variant not found"),
            }
        }
        ("POST", "/logistic/freightCalculate") => ok(json!([
            {"logisticName": "CJPacket Ordinary", "logisticPrice": 3.25, "logisticAging": "7-12"},
            {"logisticName": "DHL", "logisticPrice": 18.9, "logisticAging": "3-5"},
        ])),
        ("POST", "/shopping/order/createOrderV2") => {
            if let Some((code, message)) = st.order_failure.clone() {
                return err(code, &message);
            }
            let number = json_body.get("orderNumber").and_then(Value::as_str).unwrap_or_default().to_owned();
            if number.is_empty() || number.len() > 50 {
                return err(1600100, "Param error: orderNumber");
            }
            if st.orders.iter().any(|o| o.order_number == number) {
                return err(1603001, "orderNumber already exists");
            }
            let products = json_body.get("products").cloned().unwrap_or(Value::Null);
            let known = products.as_array().is_some_and(|a| {
                !a.is_empty()
                    && a.iter().all(|p| st.variant(p.get("vid").and_then(Value::as_str).unwrap_or("")).is_some())
            });
            if !known {
                return err(1600100, "Param error: products");
            }
            st.seq += 1;
            let order_id = format!("CJORD{:06}", st.seq);
            let pay_type = json_body.get("payType").and_then(Value::as_u64).unwrap_or(1);
            st.orders.push(FakeCjOrder {
                order_id: order_id.clone(),
                order_number: number.clone(),
                pay_type,
                logistic_name: json_body.get("logisticName").and_then(Value::as_str).unwrap_or_default().to_owned(),
                products,
                track_number: None,
            });
            let mut data = json!({"orderId": order_id, "orderNumber": number,
                                  "orderStatus": if pay_type == 2 { "UNSHIPPED" } else { "CREATED" }});
            if pay_type == 1 {
                data["cjPayUrl"] = json!(format!("https://cjdropshipping.example/pay/{order_id}"));
            }
            ok(data)
        }
        ("GET", "/shopping/order/getOrderDetail") => {
            let id = query.get("orderId").cloned().unwrap_or_default();
            match st.orders.iter().find(|o| o.order_id == id) {
                Some(o) => ok(json!({
                    "orderId": o.order_id, "orderNum": o.order_number,
                    "orderStatus": if o.track_number.is_some() { "SHIPPED" } else { "UNSHIPPED" },
                    "trackNumber": o.track_number, "logisticName": o.logistic_name,
                })),
                None => err(1600100, "Param error: order not found"),
            }
        }
        _ => (StatusCode::NOT_FOUND, axum::Json(FakeCj::envelope_error(404, "Not Found"))).into_response(),
    }
}
