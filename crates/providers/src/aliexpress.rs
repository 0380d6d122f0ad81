//! AliExpress Open Platform, dropshipping APIs (`reference/providers.md` §11).
//!
//! - Business APIs: `POST {base}/sync` with `method=<api name>`; system APIs (tokens):
//!   `POST {base}/rest<path>`. Every request carries `app_key`, `timestamp` (ms),
//!   `sign_method=sha256`, the buyer's `access_token` where one is needed, and `sign`.
//! - Signature ([`sign`]): every parameter but `sign`, sorted by name (ASCII), concatenated as
//!   `name1value1name2value2…`, prefixed by the API path for system APIs; HMAC-SHA256 keyed with
//!   the app secret; upper-case hex.
//! - Answers: `{"<method_with_underscores>_response": {…}}`, or an error as
//!   `{"error_response": {"code","msg"}}` or a top-level `{"code","message"}`.
//! - Retries through [`RetryPolicy`]: 429, 5xx, call-limit codes and connection failures; each
//!   attempt is signed again with a fresh timestamp.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};

pub const DEFAULT_BASE_URL: &str = "https://api-sg.aliexpress.com";
pub const MAX_ATTEMPTS: u32 = 3;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct AliExpressConfig {
    pub app_key: String,
    /// Never logged.
    pub app_secret: String,
    pub base_url: String,
    pub timeout: Duration,
    pub attempts: u32,
    pub max_retry_after: Duration,
}

impl AliExpressConfig {
    pub fn new(app_key: impl Into<String>, app_secret: impl Into<String>) -> Self {
        Self {
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            base_url: DEFAULT_BASE_URL.into(),
            timeout: Duration::from_secs(30),
            attempts: MAX_ATTEMPTS,
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for AliExpressConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AliExpressConfig")
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The signature of a request: see the module documentation. `api_path` is `Some("/auth/token/create")`
/// for system APIs, `None` for business APIs (`/sync`).
pub fn sign(app_secret: &str, api_path: Option<&str>, params: &BTreeMap<String, String>) -> String {
    let mut text = String::from(api_path.unwrap_or_default());
    // A BTreeMap iterates in byte order of its keys: the ASCII order the platform sorts by.
    for (k, v) in params.iter().filter(|(k, _)| k.as_str() != "sign") {
        text.push_str(k);
        text.push_str(v);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret.as_bytes());
    hex::encode_upper(ring::hmac::sign(&key, text.as_bytes()).as_ref())
}

/// Where a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api<'a> {
    /// A business API by name, on `/sync`.
    Method(&'a str),
    /// A system API by path (`/auth/token/create`), on `/rest<path>`.
    System(&'a str),
}

/// The buyer account's session (OAuth).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AeSession {
    pub access_token: String,
    pub refresh_token: String,
    /// Milliseconds since the epoch.
    pub expires_at_ms: i64,
    pub refresh_expires_at_ms: i64,
    pub account: String,
}

impl fmt::Debug for AeSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeSession")
            .field("account", &self.account)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AliExpressError {
    #[error("AliExpress call limit{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// Signature, app key or session refused.
    #[error("AliExpress refused the credentials ({code}): {message}")]
    Auth { code: String, message: String },
    #[error("AliExpress error {code}: {message}")]
    Api { code: String, message: String },
    #[error("AliExpress did not answer in time")]
    Timeout,
    #[error("AliExpress error {status}: {message}")]
    Upstream { status: u16, message: String },
    #[error("unreadable AliExpress answer: {0}")]
    Decode(String),
}

crate::http::transient_errors!(AliExpressError, RateLimited);

/// A product as `aliexpress.ds.product.get` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AeProduct {
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub category_id: String,
    pub images: Vec<String>,
    pub skus: Vec<AeSku>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AeSku {
    pub sku_id: String,
    /// `sku_attr`, e.g. `14:200006154#Blue;5:100014064`, which orders name.
    pub sku_attr: String,
    /// Decimal text in `currency`.
    pub price: String,
    pub currency: String,
    pub stock: i64,
}

/// One line of `aliexpress.ds.order.create`.
#[derive(Debug, Clone, Serialize)]
pub struct AeOrderItem {
    pub product_id: String,
    pub sku_attr: String,
    pub product_count: u32,
    pub logistics_service_name: String,
    pub order_memo: String,
}

/// The shipping address of an order.
#[derive(Debug, Clone, Serialize)]
pub struct AeAddress {
    pub address: String,
    pub address2: String,
    pub city: String,
    pub contact_person: String,
    pub country: String,
    pub full_name: String,
    pub mobile_no: String,
    pub phone_country: String,
    pub province: String,
    pub zip: String,
}

#[derive(Clone, Debug)]
pub struct AliExpressClient {
    inner: Arc<Endpoint<AliExpressConfig>>,
}

impl AliExpressClient {
    pub fn new(cfg: AliExpressConfig, http: reqwest::Client) -> Self {
        let (base, retry) = (cfg.base_url.clone(), RetryPolicy::new(cfg.attempts.max(1), cfg.max_retry_after));
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("aliexpress", "app secret"))) }
    }

    /// The parameters of a call, signed: the business `params`, the common ones and `sign`.
    pub fn signed_params(
        &self,
        api: Api<'_>,
        params: &[(&str, String)],
        session: Option<&str>,
        timestamp_ms: u128,
    ) -> BTreeMap<String, String> {
        let cfg = &self.inner.cfg;
        let mut all: BTreeMap<String, String> = params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        all.insert("app_key".into(), cfg.app_key.clone());
        all.insert("timestamp".into(), timestamp_ms.to_string());
        all.insert("sign_method".into(), "sha256".into());
        if let Some(s) = session {
            all.insert("access_token".into(), s.to_owned());
        }
        let path = match api {
            Api::Method(m) => {
                all.insert("method".into(), m.to_owned());
                None
            }
            Api::System(p) => Some(p),
        };
        let signature = sign(&cfg.app_secret, path, &all);
        all.insert("sign".into(), signature);
        all
    }

    /// Calls `api` and answers the body (an error answer is an `Err`).
    pub async fn call(
        &self,
        api: Api<'_>,
        params: &[(&str, String)],
        session: Option<&str>,
    ) -> Result<Value, AliExpressError> {
        let url = match api {
            Api::Method(_) => format!("{}/sync", self.inner.base),
            Api::System(p) => format!("{}/rest{p}", self.inner.base),
        };
        let attempt = |_| {
            let url = url.clone();
            async move {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
                let form = self.signed_params(api, params, session, now);
                let req = self.inner.http.post(&url).timeout(self.inner.cfg.timeout).form(&form);
                self.attempt(req).await.map_err(|(e, wait)| {
                    let retryable = e.retryable();
                    Failed::new(e, retryable, wait)
                })
            }
        };
        self.inner
            .retry
            .run(attempt, |failed, d| {
                let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                tracing::warn!(attempt, %error, retry, "AliExpress request failed");
            })
            .await
    }

    /// `/auth/token/create`: the buyer's session from an authorization `code`.
    pub async fn create_session(&self, code: &str) -> Result<AeSession, AliExpressError> {
        let v = self.call(Api::System("/auth/token/create"), &[("code", code.to_owned())], None).await?;
        session_of(&v)
    }

    /// `/auth/token/refresh`.
    pub async fn refresh_session(&self, refresh_token: &str) -> Result<AeSession, AliExpressError> {
        let v =
            self.call(Api::System("/auth/token/refresh"), &[("refresh_token", refresh_token.to_owned())], None).await?;
        session_of(&v)
    }

    /// `aliexpress.ds.product.get`.
    pub async fn product(
        &self,
        session: &str,
        product_id: &str,
        ship_to: &str,
        currency: &str,
        language: &str,
    ) -> Result<AeProduct, AliExpressError> {
        let params = [
            ("product_id", product_id.to_owned()),
            ("ship_to_country", ship_to.to_owned()),
            ("target_currency", currency.to_owned()),
            ("target_language", language.to_owned()),
        ];
        let v = self.call(Api::Method("aliexpress.ds.product.get"), &params, Some(session)).await?;
        let result = v
            .get("aliexpress_ds_product_get_response")
            .and_then(|r| r.get("result"))
            .ok_or_else(|| AliExpressError::Decode("no product result".into()))?;
        let base = result.get("ae_item_base_info_dto").cloned().unwrap_or(Value::Null);
        let images = text(&result.get("ae_multimedia_info_dto").cloned().unwrap_or(Value::Null), "image_urls");
        let skus = result
            .get("ae_item_sku_info_dtos")
            .and_then(|s| s.get("ae_item_sku_info_d_t_o"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(AeProduct {
            product_id: text(&base, "product_id"),
            title: text(&base, "subject"),
            description: text(&base, "detail"),
            category_id: text(&base, "category_id"),
            images: images.split(';').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            skus: skus
                .iter()
                .map(|s| AeSku {
                    sku_id: text(s, "sku_id"),
                    sku_attr: text(s, "sku_attr"),
                    price: {
                        let offer = text(s, "offer_sale_price");
                        if offer.is_empty() { text(s, "sku_price") } else { offer }
                    },
                    currency: text(s, "currency_code"),
                    stock: s.get("sku_available_stock").and_then(Value::as_i64).unwrap_or(0),
                })
                .collect(),
        })
    }

    /// `aliexpress.ds.order.create`: the AliExpress order ids created (one per seller).
    pub async fn create_order(
        &self,
        session: &str,
        out_order_id: &str,
        address: &AeAddress,
        items: &[AeOrderItem],
    ) -> Result<Vec<String>, AliExpressError> {
        let request = serde_json::json!({
            "out_order_id": out_order_id,
            "logistics_address": address,
            "product_items": items,
        });
        let params = [("param_place_order_request4_open_api_d_t_o", request.to_string())];
        let v = self.call(Api::Method("aliexpress.ds.order.create"), &params, Some(session)).await?;
        let result = v
            .get("aliexpress_ds_order_create_response")
            .and_then(|r| r.get("result"))
            .ok_or_else(|| AliExpressError::Decode("no order result".into()))?;
        if result.get("is_success").and_then(Value::as_bool) != Some(true) {
            return Err(AliExpressError::Api { code: text(result, "error_code"), message: text(result, "error_msg") });
        }
        let ids = result
            .get("order_list")
            .and_then(|l| l.get("number"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|n| match n {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ids)
    }

    async fn attempt(&self, req: reqwest::RequestBuilder) -> Result<Value, (AliExpressError, Option<Duration>)> {
        let resp = req.send().await.map_err(|e| (transport_error(&e), None))?;
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers());
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport_error(&e), None))?;
        if status == 429 {
            return Err((AliExpressError::RateLimited { retry_after: wait }, wait));
        }
        let v: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if status >= 500 => {
                return Err((AliExpressError::Upstream { status, message: "unreadable error body".into() }, wait));
            }
            Err(e) => return Err((AliExpressError::Decode(e.to_string()), None)),
        };
        let error = v.get("error_response").cloned().or_else(|| {
            let code = v.get("code").map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            code.filter(|c| c != "0").map(|_| v.clone())
        });
        if let Some(err) = error {
            let code = match err.get("code") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let message = crate::llm::clip(&{
                let m = text(&err, "msg");
                if m.is_empty() { text(&err, "message") } else { m }
            });
            let e = if code.contains("CallLimit") || code.contains("Frequency") {
                AliExpressError::RateLimited { retry_after: wait.or(Some(Duration::from_secs(1))) }
            } else if matches!(
                code.as_str(),
                "IncompleteSignature"
                    | "InvalidApiPath"
                    | "InvalidAppKey"
                    | "IllegalAccessToken"
                    | "InvalidSession"
                    | "MissingAccessToken"
            ) {
                AliExpressError::Auth { code, message }
            } else if status >= 500 || code == "isp.service-unavailable" {
                AliExpressError::Upstream { status, message }
            } else {
                AliExpressError::Api { code, message }
            };
            return Err((e, wait));
        }
        if !(200..300).contains(&status) {
            return Err((AliExpressError::Upstream { status, message: "unexpected status".into() }, wait));
        }
        Ok(v)
    }
}

fn session_of(v: &Value) -> Result<AeSession, AliExpressError> {
    let access_token = text(v, "access_token");
    if access_token.is_empty() {
        return Err(AliExpressError::Decode("token answer without access_token".into()));
    }
    let ms =
        |k: &str| v.get(k).and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0);
    Ok(AeSession {
        access_token,
        refresh_token: text(v, "refresh_token"),
        expires_at_ms: ms("expire_time"),
        refresh_expires_at_ms: ms("refresh_token_valid_time"),
        account: text(v, "account"),
    })
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn transport_error(e: &reqwest::Error) -> AliExpressError {
    if e.is_timeout() {
        AliExpressError::Timeout
    } else {
        AliExpressError::Upstream { status: 0, message: format!("could not reach AliExpress: {}", transport_reason(e)) }
    }
}
