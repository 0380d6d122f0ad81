//! CJ Dropshipping API 2.0 (`reference/providers.md` §11).
//!
//! - Access: `POST /authentication/getAccessToken {"apiKey"}` answers an access token (15 days)
//!   and a refresh token (180 days) with their expiry dates; every other call sends
//!   `CJ-Access-Token`. The client keeps the tokens and refreshes the access token
//!   (`/authentication/refreshAccessToken`) once it is within `refresh_before` of its expiry, so
//!   no call goes out with an expired token; one refresh serves every concurrent caller.
//! - Envelope: `{"code":200,"result":true,"message","data","requestId"}`; a failure is
//!   `result: false` with a CJ code (often with HTTP 200), so both are checked.
//! - Retries through [`RetryPolicy`]: 429 (honouring `Retry-After`), 5xx and connection failures.
//!   An order is created with our own `orderNumber`, so a retried create cannot make two orders
//!   on CJ's side without CJ saying so.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, retryable_status, transport_reason};

pub const DEFAULT_BASE_URL: &str = "https://developers.cjdropshipping.com/api2.0/v1";
pub const MAX_ATTEMPTS: u32 = 3;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// CJ codes meaning the token is not (or no longer) accepted.
const TOKEN_CODES: &[i64] = &[1600001, 1600003];

#[derive(Clone)]
pub struct CjConfig {
    /// `CJUserNum@api@…`; never logged.
    pub api_key: String,
    pub base_url: String,
    pub timeout: Duration,
    /// Refresh the access token when it expires within this.
    pub refresh_before: Duration,
    pub attempts: u32,
    /// The longest `Retry-After` slept through.
    pub max_retry_after: Duration,
}

impl CjConfig {
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.into(),
            timeout: Duration::from_secs(30),
            refresh_before: Duration::from_secs(86_400),
            attempts: MAX_ATTEMPTS,
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for CjConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CjConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("refresh_before", &self.refresh_before)
            .finish_non_exhaustive()
    }
}

/// The tokens of a CJ account, kept (sealed) by the caller between processes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CjTokens {
    pub open_id: String,
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

impl fmt::Debug for CjTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CjTokens")
            .field("open_id", &self.open_id)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CjError {
    #[error("CJ rate limit{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The API key or token was refused.
    #[error("CJ refused the credentials: {message}")]
    Auth { message: String },
    /// CJ answered `result: false` (bad parameters, balance, stock, …).
    #[error("CJ error {code}: {message}")]
    Api { code: i64, message: String },
    #[error("CJ did not answer in time")]
    Timeout,
    /// Any other answer, or `status` 0 when CJ could not be reached.
    #[error("CJ error {status}: {message}")]
    Upstream { status: u16, message: String },
    #[error("unreadable CJ answer: {0}")]
    Decode(String),
    #[error("invalid CJ request: {0}")]
    InvalidArgument(String),
}

crate::http::transient_errors!(CjError, RateLimited);

/// A product in a search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CjProductSummary {
    pub pid: String,
    pub name: String,
    pub sku: String,
    pub category: String,
    pub image: String,
    /// Decimal text in USD (CJ prices are USD); a range keeps its lowest price.
    pub sell_price: String,
}

/// A product with its variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CjProduct {
    pub pid: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub images: Vec<String>,
    pub variants: Vec<CjVariant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CjVariant {
    pub vid: String,
    pub sku: String,
    /// `variantKey`, e.g. `Black-XL`.
    pub key: String,
    pub sell_price: String,
    pub image: String,
}

/// Search criteria of `/product/list`.
#[derive(Debug, Clone, Default)]
pub struct CjSearch {
    pub keyword: String,
    pub category_id: String,
    pub page: u32,
    pub page_size: u32,
}

/// A shipping option from `/logistic/freightCalculate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CjFreight {
    pub logistic_name: String,
    /// Decimal text, USD.
    pub price: String,
    /// Delivery days, e.g. `7-12`.
    pub aging: String,
}

/// A `createOrderV2` request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CjOrderRequest {
    /// Ours, unique (≤ 50 characters).
    pub order_number: String,
    pub shipping_country_code: String,
    pub shipping_country: String,
    pub shipping_province: String,
    pub shipping_city: String,
    pub shipping_address: String,
    pub shipping_address2: String,
    pub shipping_zip: String,
    pub shipping_phone: String,
    pub shipping_customer_name: String,
    pub email: String,
    pub logistic_name: String,
    pub from_country_code: String,
    /// 1: page payment (answers `cjPayUrl`), 2: pay from balance, 3: create only.
    pub pay_type: u8,
    pub products: Vec<CjOrderLine>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CjOrderLine {
    pub vid: String,
    pub quantity: u32,
    pub store_line_item_id: String,
}

/// What `createOrderV2` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CjOrderCreated {
    pub order_id: String,
    /// For page payment: where the merchant pays.
    pub pay_url: Option<String>,
    pub status: String,
}

/// `getOrderDetail`: status and tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CjOrderDetail {
    pub order_id: String,
    pub status: String,
    pub track_number: Option<String>,
    pub logistic_name: Option<String>,
}

/// CJ Dropshipping client. Cheap to clone; clones share the tokens.
#[derive(Clone, Debug)]
pub struct CjClient {
    inner: Arc<Endpoint<CjConfig>>,
    tokens: Arc<tokio::sync::Mutex<Option<CjTokens>>>,
}

impl CjClient {
    /// A client that gets its tokens from the API key on first use.
    pub fn new(cfg: CjConfig, http: reqwest::Client) -> Self {
        Self::with_tokens(cfg, http, None)
    }

    /// A client starting from tokens kept earlier (refreshed when due).
    pub fn with_tokens(cfg: CjConfig, http: reqwest::Client, tokens: Option<CjTokens>) -> Self {
        let (base, retry) = (cfg.base_url.clone(), RetryPolicy::new(cfg.attempts.max(1), cfg.max_retry_after));
        Self {
            inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("cj", "API key"))),
            tokens: Arc::new(tokio::sync::Mutex::new(tokens)),
        }
    }

    /// The tokens now held (to keep them after a refresh).
    pub async fn tokens(&self) -> Option<CjTokens> {
        self.tokens.lock().await.clone()
    }

    /// An access token valid for at least `refresh_before`: the one held, a refreshed one, or
    /// (no tokens, or the refresh token is spent too) a new one from the API key.
    pub async fn access_token(&self) -> Result<String, CjError> {
        let mut held = self.tokens.lock().await;
        let now = Utc::now();
        let margin = chrono::Duration::from_std(self.inner.cfg.refresh_before).unwrap_or_default();
        if let Some(t) = held.as_ref()
            && t.access_expires_at - margin > now
        {
            return Ok(t.access_token.clone());
        }
        let fresh = match held.as_ref() {
            Some(t) if t.refresh_expires_at > now + chrono::Duration::minutes(1) => {
                match self
                    .token_call("/authentication/refreshAccessToken", json!({"refreshToken": t.refresh_token}))
                    .await
                {
                    Ok(fresh) => fresh,
                    // A refresh token CJ no longer accepts: start again from the key.
                    Err(CjError::Auth { .. }) => self.new_tokens().await?,
                    Err(e) => return Err(e),
                }
            }
            _ => self.new_tokens().await?,
        };
        let token = fresh.access_token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    async fn new_tokens(&self) -> Result<CjTokens, CjError> {
        self.token_call("/authentication/getAccessToken", json!({"apiKey": self.inner.cfg.api_key})).await
    }

    async fn token_call(&self, path: &str, body: Value) -> Result<CjTokens, CjError> {
        let data = self.send(Method::POST, path, None, Some(&body), None).await?;
        let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
        let date = |k: &str| -> Result<DateTime<Utc>, CjError> {
            let s = text(k).ok_or_else(|| CjError::Decode(format!("token answer without {k}")))?;
            parse_cj_date(&s).ok_or_else(|| CjError::Decode(format!("{k} is not a date")))
        };
        Ok(CjTokens {
            open_id: data.get("openId").map(value_text).unwrap_or_default(),
            access_token: text("accessToken").ok_or_else(|| CjError::Decode("no accessToken".into()))?,
            access_expires_at: date("accessTokenExpiryDate")?,
            refresh_token: text("refreshToken").ok_or_else(|| CjError::Decode("no refreshToken".into()))?,
            refresh_expires_at: date("refreshTokenExpiryDate")?,
        })
    }

    /// An authenticated call. A token CJ refuses is dropped and the call made once more with a
    /// new one (CJ may revoke tokens before their date, e.g. after a new key was issued).
    async fn authed(
        &self,
        method: Method,
        path: &str,
        query: Option<&[(&str, String)]>,
        body: Option<&Value>,
    ) -> Result<Value, CjError> {
        let token = self.access_token().await?;
        match self.send(method.clone(), path, query, body, Some(&token)).await {
            Err(CjError::Auth { .. }) => {
                self.tokens.lock().await.take();
                let token = self.access_token().await?;
                self.send(method, path, query, body, Some(&token)).await
            }
            other => other,
        }
    }

    /// `/product/list`: one page of products.
    pub async fn search(&self, s: &CjSearch) -> Result<Vec<CjProductSummary>, CjError> {
        let mut q = vec![("pageNum", s.page.max(1).to_string()), ("pageSize", s.page_size.clamp(1, 200).to_string())];
        if !s.keyword.is_empty() {
            q.push(("productNameEn", s.keyword.clone()));
        }
        if !s.category_id.is_empty() {
            q.push(("categoryId", s.category_id.clone()));
        }
        let data = self.authed(Method::GET, "/product/list", Some(&q), None).await?;
        let list = data.get("list").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(list
            .iter()
            .map(|p| CjProductSummary {
                pid: text_of(p, "pid"),
                name: text_of(p, "productNameEn"),
                sku: text_of(p, "productSku"),
                category: text_of(p, "categoryName"),
                image: text_of(p, "productImage"),
                sell_price: lowest_price(&text_of(p, "sellPrice")),
            })
            .collect())
    }

    /// `/product/query?pid=`: a product with its variants.
    pub async fn product(&self, pid: &str) -> Result<CjProduct, CjError> {
        if pid.is_empty() {
            return Err(CjError::InvalidArgument("empty pid".into()));
        }
        let data = self.authed(Method::GET, "/product/query", Some(&[("pid", pid.to_owned())]), None).await?;
        let images = match data.get("productImageSet") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => vec![text_of(&data, "productImage")].into_iter().filter(|s| !s.is_empty()).collect(),
        };
        let variants = data.get("variants").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(CjProduct {
            pid: text_of(&data, "pid"),
            name: text_of(&data, "productNameEn"),
            description: text_of(&data, "description"),
            category: text_of(&data, "categoryName"),
            images,
            variants: variants
                .iter()
                .map(|v| CjVariant {
                    vid: text_of(v, "vid"),
                    sku: text_of(v, "variantSku"),
                    key: text_of(v, "variantKey"),
                    sell_price: text_of(v, "variantSellPrice"),
                    image: text_of(v, "variantImage"),
                })
                .collect(),
        })
    }

    /// `/product/stock/queryByVid`: units available over all warehouses.
    pub async fn stock(&self, vid: &str) -> Result<i64, CjError> {
        let data =
            self.authed(Method::GET, "/product/stock/queryByVid", Some(&[("vid", vid.to_owned())]), None).await?;
        let rows = match &data {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        Ok(rows.iter().filter_map(|r| r.get("storageNum").and_then(Value::as_i64)).sum())
    }

    /// `/logistic/freightCalculate`: shipping options for variants to a country.
    pub async fn freight(&self, from: &str, to: &str, lines: &[(String, u32)]) -> Result<Vec<CjFreight>, CjError> {
        let products: Vec<Value> = lines.iter().map(|(vid, q)| json!({"vid": vid, "quantity": q})).collect();
        let body = json!({"startCountryCode": from, "endCountryCode": to, "products": products});
        let data = self.authed(Method::POST, "/logistic/freightCalculate", None, Some(&body)).await?;
        Ok(data
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|o| CjFreight {
                logistic_name: text_of(o, "logisticName"),
                price: text_of(o, "logisticPrice"),
                aging: text_of(o, "logisticAging"),
            })
            .collect())
    }

    /// `createOrderV2`.
    pub async fn create_order(&self, order: &CjOrderRequest) -> Result<CjOrderCreated, CjError> {
        if order.order_number.is_empty() || order.order_number.len() > 50 || order.products.is_empty() {
            return Err(CjError::InvalidArgument("orderNumber (1–50 characters) and products are required".into()));
        }
        let body = serde_json::to_value(order).map_err(|e| CjError::InvalidArgument(e.to_string()))?;
        let data = self.authed(Method::POST, "/shopping/order/createOrderV2", None, Some(&body)).await?;
        let order_id = text_of(&data, "orderId");
        if order_id.is_empty() {
            return Err(CjError::Decode("createOrderV2 answered no orderId".into()));
        }
        let pay_url = Some(text_of(&data, "cjPayUrl")).filter(|s| !s.is_empty());
        Ok(CjOrderCreated { order_id, pay_url, status: text_of(&data, "orderStatus") })
    }

    /// `getOrderDetail`.
    pub async fn order(&self, order_id: &str) -> Result<CjOrderDetail, CjError> {
        let data = self
            .authed(Method::GET, "/shopping/order/getOrderDetail", Some(&[("orderId", order_id.to_owned())]), None)
            .await?;
        let opt = |k: &str| Some(text_of(&data, k)).filter(|s| !s.is_empty());
        Ok(CjOrderDetail {
            order_id: text_of(&data, "orderId"),
            status: text_of(&data, "orderStatus"),
            track_number: opt("trackNumber"),
            logistic_name: opt("logisticName"),
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: Option<&[(&str, String)]>,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Value, CjError> {
        let url = format!("{}{path}", self.inner.base);
        let attempt = |_| {
            let (method, url) = (method.clone(), url.clone());
            async move {
                let mut req = self.inner.http.request(method, &url).timeout(self.inner.cfg.timeout);
                if let Some(q) = query {
                    req = req.query(q);
                }
                if let Some(b) = body {
                    req = req.json(b);
                }
                if let Some(t) = token {
                    req = req.header("CJ-Access-Token", t);
                }
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
                tracing::warn!(attempt, %error, retry, path, "CJ request failed");
            })
            .await
    }

    async fn attempt(&self, req: reqwest::RequestBuilder) -> Result<Value, (CjError, Option<Duration>)> {
        let resp = req.send().await.map_err(|e| (transport_error(&e), None))?;
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers());
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport_error(&e), None))?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status == 429 {
            return Err((CjError::RateLimited { retry_after: wait }, wait));
        }
        let Some(v) = parsed else {
            let e = if retryable_status(status) || !(200..300).contains(&status) {
                CjError::Upstream { status, message: "unreadable error body".into() }
            } else {
                CjError::Decode("not JSON".into())
            };
            return Err((e, wait));
        };
        let ok = v.get("result").and_then(Value::as_bool) == Some(true)
            && v.get("code").and_then(Value::as_i64).is_none_or(|c| c == 200);
        if (200..300).contains(&status) && ok {
            return Ok(v.get("data").cloned().unwrap_or(Value::Null));
        }
        let code = v.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = crate::llm::clip(&text_of(&v, "message"));
        let e = if status == 401 || status == 403 || TOKEN_CODES.contains(&code) || code == 1601000 {
            CjError::Auth { message }
        } else if status >= 500 {
            CjError::Upstream { status, message }
        } else if code == 1600200 {
            // "Too many requests" carried in the envelope.
            CjError::RateLimited { retry_after: wait.or(Some(Duration::from_secs(1))) }
        } else {
            CjError::Api { code, message }
        };
        Err((e, wait))
    }
}

fn transport_error(e: &reqwest::Error) -> CjError {
    if e.is_timeout() {
        CjError::Timeout
    } else {
        CjError::Upstream { status: 0, message: format!("could not reach CJ: {}", transport_reason(e)) }
    }
}

/// A JSON field as text: strings as they are, numbers in their decimal form.
fn text_of(v: &Value, key: &str) -> String {
    v.get(key).map(value_text).unwrap_or_default()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `"1.20 -- 3.40"` → `"1.20"`.
fn lowest_price(s: &str) -> String {
    s.split("--").next().unwrap_or_default().trim().to_owned()
}

/// CJ's dates: RFC 3339 (`2026-11-20T09:16:33+08:00`), or `yyyy-MM-dd HH:mm:ss` in UTC.
fn parse_cj_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok().map(|n| n.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cj_dates_and_price_ranges() {
        assert_eq!(parse_cj_date("2021-08-18T09:16:33+08:00").unwrap().to_rfc3339(), "2021-08-18T01:16:33+00:00");
        assert!(parse_cj_date("2021-08-18 09:16:33").is_some());
        assert!(parse_cj_date("yesterday").is_none());
        assert_eq!(lowest_price("1.20 -- 3.40"), "1.20");
        assert_eq!(lowest_price("7.5"), "7.5");
    }
}
