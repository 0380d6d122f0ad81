//! A fake AliExpress Open Platform gateway on port 0 (`reference/providers.md` §11).
//!
//! `POST /sync` (business APIs by `method`) and `POST /rest/<path>` (system APIs) with form or
//! query parameters. Every request must carry `app_key`, a `timestamp` within 10 minutes,
//! `sign_method=sha256` and a `sign` that the fake recomputes (sorted `namevalue` pairs,
//! prefixed by the API path for system APIs, HMAC-SHA256 with the app secret, upper-case hex);
//! otherwise `{"code":"IncompleteSignature",…}`. Business APIs need a session issued by
//! `/auth/token/create` (`code` = [`TEST_AUTH_CODE`]). Served: `aliexpress.ds.product.get`,
//! `aliexpress.ds.order.create`. Knobs: [`FakeAliExpress::limit_next`] (an `ApiCallLimit`
//! answer), the request log with every parameter received.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

pub const TEST_APP_KEY: &str = "502345";
pub const TEST_APP_SECRET: &str = "ae-fake-app-secret-0123456789";
pub const TEST_AUTH_CODE: &str = "3_502345_fakeauthcode";

struct State {
    sessions: HashMap<String, String>,
    limited: VecDeque<()>,
    log: Vec<(String, BTreeMap<String, String>, bool)>,
    orders: Vec<Value>,
    seq: u64,
}

pub struct FakeAliExpress {
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeAliExpress {
    pub async fn start() -> FakeAliExpress {
        let state = Arc::new(Mutex::new(State {
            sessions: HashMap::new(),
            limited: VecDeque::new(),
            log: Vec::new(),
            orders: Vec::new(),
            seq: 0,
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        FakeAliExpress { base_url: server.base_url.clone(), state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The next `n` requests are refused with `ApiCallLimit`.
    pub fn limit_next(&self, n: usize) {
        let mut st = self.state();
        for _ in 0..n {
            st.limited.push_back(());
        }
    }

    /// Every request: (path, parameters received, whether the signature matched).
    pub fn requests(&self) -> Vec<(String, BTreeMap<String, String>, bool)> {
        self.state().log.clone()
    }

    pub fn orders(&self) -> Vec<Value> {
        self.state().orders.clone()
    }
}

/// The fake's own signature (see the module documentation).
fn expected_sign(path: Option<&str>, params: &BTreeMap<String, String>) -> String {
    let mut text = path.unwrap_or_default().to_owned();
    for (k, v) in params {
        if k != "sign" {
            text.push_str(k);
            text.push_str(v);
        }
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, TEST_APP_SECRET.as_bytes());
    hex::encode(ring::hmac::sign(&key, text.as_bytes()).as_ref()).to_uppercase()
}

fn error(code: &str, message: &str) -> Response {
    (StatusCode::OK, axum::Json(json!({"type": "ISV", "code": code, "message": message, "request_id": "fake-req"})))
        .into_response()
}

async fn handle(AxState(state): AxState<Arc<Mutex<State>>>, uri: Uri, body: Bytes) -> Response {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        params.insert(k.into_owned(), v.into_owned());
    }
    for (k, v) in url::form_urlencoded::parse(&body) {
        params.insert(k.into_owned(), v.into_owned());
    }
    let path = uri.path().to_owned();
    let system = path.strip_prefix("/rest").map(str::to_owned);
    let sign_ok = params.get("sign").is_some_and(|s| *s == expected_sign(system.as_deref(), &params));
    let mut st = lock(&state);
    st.log.push((path.clone(), params.clone(), sign_ok));
    if st.limited.pop_front().is_some() {
        return error("ApiCallLimit", "The request has exceeded the call limit");
    }
    if params.get("app_key").map(String::as_str) != Some(TEST_APP_KEY) {
        return error("InvalidAppKey", "Invalid app key");
    }
    let fresh = params
        .get("timestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| (chrono::Utc::now().timestamp_millis() - t).abs() < 600_000);
    if !fresh || params.get("sign_method").map(String::as_str) != Some("sha256") || !sign_ok {
        return error("IncompleteSignature", "The request signature does not conform to platform standards");
    }
    if let Some(api) = system {
        return match api.as_str() {
            "/auth/token/create" if params.get("code").map(String::as_str) == Some(TEST_AUTH_CODE) => {
                st.seq += 1;
                let token = format!("ae-session-{}", st.seq);
                st.sessions.insert(token.clone(), "buyer@example.com".into());
                let now = chrono::Utc::now().timestamp_millis();
                (
                    StatusCode::OK,
                    axum::Json(json!({
                        "code": "0", "access_token": token, "refresh_token": format!("ae-refresh-{}", st.seq),
                        "expire_time": now + 86_400_000, "refresh_token_valid_time": now + 30 * 86_400_000_i64,
                        "account": "buyer@example.com", "request_id": "fake-req",
                    })),
                )
                    .into_response()
            }
            "/auth/token/create" => error("InvalidCode", "The authorization code is invalid"),
            _ => error("InvalidApiPath", "Unknown API path"),
        };
    }
    let session_ok = params.get("access_token").is_some_and(|t| st.sessions.contains_key(t));
    if !session_ok {
        return error("IllegalAccessToken", "The specified access token is invalid or expired");
    }
    match params.get("method").map(String::as_str) {
        Some("aliexpress.ds.product.get") => {
            let id = params.get("product_id").cloned().unwrap_or_default();
            if !id.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
                return (
                    StatusCode::OK,
                    axum::Json(json!({"aliexpress_ds_product_get_response": {
                    "rsp_code": 405, "rsp_msg": "product not found"}})),
                )
                    .into_response();
            }
            let currency = params.get("target_currency").cloned().unwrap_or_else(|| "USD".into());
            (StatusCode::OK, axum::Json(json!({"aliexpress_ds_product_get_response": {"rsp_code": 200, "result": {
                "ae_item_base_info_dto": {"product_id": id.parse::<i64>().unwrap_or(0), "subject": format!("AE product {id}"),
                                          "detail": "<p>details</p>", "category_id": 200_000_345},
                "ae_multimedia_info_dto": {"image_urls": format!("https://ae.example/{id}-1.jpg;https://ae.example/{id}-2.jpg")},
                "ae_item_sku_info_dtos": {"ae_item_sku_info_d_t_o": [
                    {"sku_id": format!("{id}01"), "sku_attr": "14:200006154#Blue", "offer_sale_price": "4.56", "sku_price": "5.10",
                     "currency_code": currency, "sku_available_stock": 120},
                    {"sku_id": format!("{id}02"), "sku_attr": "14:200006155#Red", "offer_sale_price": "4.81",
                     "currency_code": currency, "sku_available_stock": 0}
                ]}
            }}}))).into_response()
        }
        Some("aliexpress.ds.order.create") => {
            let request: Value = params
                .get("param_place_order_request4_open_api_d_t_o")
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(Value::Null);
            if request.get("product_items").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                return (StatusCode::OK, axum::Json(json!({"aliexpress_ds_order_create_response": {"result": {
                    "is_success": false, "error_code": "B_DROPSHIPPER_DELIVERY_ADDRESS_VALIDATE_FAIL", "error_msg": "no items"}}})))
                    .into_response();
            }
            st.seq += 1;
            let id = 8_100_000_000_000_000_i64 + i64::try_from(st.seq).unwrap_or(0);
            st.orders.push(request);
            (
                StatusCode::OK,
                axum::Json(json!({"aliexpress_ds_order_create_response": {"result": {
                "is_success": true, "order_list": {"number": [id]}}}})),
            )
                .into_response()
        }
        _ => error("InvalidApiName", "Unknown method"),
    }
}
