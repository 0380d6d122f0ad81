//! Shopify Admin GraphQL API (`reference/providers.md` §12).
//!
//! - `POST {root}/admin/api/{version}/graphql.json` with `X-Shopify-Access-Token` (never logged);
//!   the version is pinned.
//! - Throttling: the calculated-cost leaky bucket answers either HTTP 429 or HTTP 200 with a
//!   `THROTTLED` error and `extensions.cost` (`requestedQueryCost`, `throttleStatus.
//!   {currentlyAvailable, restoreRate}`). Both are retried through [`RetryPolicy`]: after
//!   `Retry-After` when given, else after the time the bucket needs to refill the query's cost.
//! - Other top-level `errors` and the mutations' `userErrors` are errors of the request; 401
//!   (token), 402 (frozen shop), 403, 404, 423 (locked shop) are mapped; 5xx is retried.
//! - Translations (not in providers.md; Shopify's "Manage translated content" guide):
//!   `translatableResource` gives each field's `digest`, `translationsRegister` takes
//!   `{locale, key, value, translatableContentDigest}`; `shopLocales` lists the locales the shop
//!   has enabled (a translation into another is refused). Needs the `write_translations` scope.
//! - Webhooks: [`verify_webhook`] checks `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw
//!   body keyed with the app's client secret) against each configured secret (rotation).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};

pub const DEFAULT_API_VERSION: &str = "2026-04";
pub const MAX_ATTEMPTS: u32 = 4;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct ShopifyConfig {
    /// `example.myshopify.com`.
    pub shop: String,
    /// Admin API access token; never logged.
    pub access_token: String,
    pub api_version: String,
    /// Root of the store API; empty: `https://{shop}`.
    pub base_url: String,
    pub timeout: Duration,
    pub attempts: u32,
    /// The longest wait (requested or computed from the bucket) slept through.
    pub max_wait: Duration,
}

impl ShopifyConfig {
    pub fn new(shop: impl Into<String>, access_token: impl Into<String>) -> Self {
        Self {
            shop: shop.into(),
            access_token: access_token.into(),
            api_version: DEFAULT_API_VERSION.into(),
            base_url: String::new(),
            timeout: Duration::from_secs(30),
            attempts: MAX_ATTEMPTS,
            max_wait: Duration::from_secs(20),
        }
    }

    fn endpoint(&self) -> String {
        let root = if self.base_url.is_empty() { format!("https://{}", self.shop) } else { self.base_url.clone() };
        format!("{}/admin/api/{}/graphql.json", root.trim_end_matches('/'), self.api_version)
    }
}

impl fmt::Debug for ShopifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShopifyConfig")
            .field("shop", &self.shop)
            .field("access_token", &"<redacted>")
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

/// Whether `shop` is a Shopify shop domain (`name.myshopify.com`): the only hosts the client
/// talks to, so a tenant cannot point it anywhere else.
pub fn valid_shop_domain(shop: &str) -> bool {
    let Some(name) = shop.strip_suffix(".myshopify.com") else { return false };
    !name.is_empty()
        && name.len() <= 60
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ShopifyError {
    #[error("Shopify throttled the request{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Throttled { retry_after: Option<Duration> },
    #[error("Shopify refused the access token")]
    Auth,
    /// 402 (frozen), 423 (locked), 403, 404: the shop cannot serve the app now.
    #[error("Shopify shop unavailable ({status})")]
    Shop { status: u16 },
    /// Top-level GraphQL errors (syntax, access scopes, …).
    #[error("Shopify GraphQL errors: {0}")]
    GraphQl(String),
    /// A mutation's `userErrors`.
    #[error("Shopify refused the change: {0}")]
    UserErrors(String),
    #[error("Shopify did not answer in time")]
    Timeout,
    #[error("Shopify error {status}: {message}")]
    Upstream { status: u16, message: String },
    #[error("unreadable Shopify answer: {0}")]
    Decode(String),
}

crate::http::transient_errors!(ShopifyError, Throttled);

/// The cost report of an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub requested: f64,
    pub actual: Option<f64>,
    pub currently_available: f64,
    pub maximum_available: f64,
    pub restore_rate: f64,
}

impl Cost {
    fn parse(v: &Value) -> Option<Cost> {
        let c = v.get("extensions")?.get("cost")?;
        let t = c.get("throttleStatus")?;
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        Some(Cost {
            requested: num(c, "requestedQueryCost")?,
            actual: num(c, "actualQueryCost"),
            currently_available: num(t, "currentlyAvailable")?,
            maximum_available: num(t, "maximumAvailable").unwrap_or(0.0),
            restore_rate: num(t, "restoreRate")?,
        })
    }

    /// How long until the bucket holds the query's cost again.
    pub fn refill_wait(&self) -> Duration {
        if self.restore_rate <= 0.0 {
            return Duration::from_secs(1);
        }
        let missing = (self.requested - self.currently_available).max(0.0);
        Duration::from_secs_f64((missing / self.restore_rate).clamp(0.05, 3600.0))
    }
}

/// A product as created or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyProduct {
    pub id: String,
    pub handle: String,
    /// (variant id, sku, inventory item id)
    pub variants: Vec<(String, String, String)>,
}

const PRODUCT_SET: &str = "mutation($input: ProductSetInput!, $identifier: ProductSetIdentifiers) { \
productSet(input: $input, identifier: $identifier, synchronous: true) { \
product { id handle variants(first: 250) { nodes { id sku inventoryItem { id } } } } \
userErrors { field message code } } }";

/// The shop's enabled locales and a resource's translatable fields with their digests (a
/// translation names the digest of the text it translates, so Shopify can mark it outdated when
/// the text changes).
const TRANSLATABLE: &str = "query($id: ID!) { shopLocales { locale primary published } \
translatableResource(resourceId: $id) { resourceId translatableContent { key digest locale } } }";

const TRANSLATIONS_REGISTER: &str = "mutation($id: ID!, $translations: [TranslationInput!]!) { \
translationsRegister(resourceId: $id, translations: $translations) { translations { key locale } \
userErrors { field message code } } }";

const FULFILLMENT_ORDERS: &str = "query($id: ID!) { order(id: $id) { id fulfillmentOrders(first: 20) { \
nodes { id status } } } }";

const FULFILLMENT_CREATE: &str = "mutation($fulfillment: FulfillmentInput!) { \
fulfillmentCreate(fulfillment: $fulfillment) { fulfillment { id status } userErrors { field message } } }";

const WEBHOOK_CREATE: &str = "mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) { \
webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) { \
webhookSubscription { id topic } userErrors { field message } } }";

const SHOP: &str = "query { shop { name myshopifyDomain currencyCode } }";

const ORDER_CANCELLED_AT: &str = "query($id: ID!) { order(id: $id) { id cancelledAt } }";

/// A full refund of a store order is its cancellation with refund and restock (`refundCreate`
/// is for partial ones). Cancelling runs as a background job at Shopify; the job is accepted here.
const ORDER_CANCEL: &str = "mutation($orderId: ID!, $staffNote: String) { \
orderCancel(orderId: $orderId, reason: CUSTOMER, refund: true, restock: true, notifyCustomer: true, staffNote: $staffNote) { \
job { id } orderCancelUserErrors { field message code } } }";

/// The order's payment transactions: a refund goes back through the one that took the money.
const ORDER_TRANSACTIONS: &str = "query($id: ID!) { order(id: $id) { id transactions(first: 20) { \
id kind status gateway } } }";

/// A partial refund. `@idempotent` is required from 2026-04: the same key creates one refund
/// however often the request is retried, and answers the refund it created.
const REFUND_CREATE: &str = "mutation($input: RefundInput!, $key: String!) { \
refundCreate(input: $input) @idempotent(key: $key) { refund { id totalRefundedSet { shopMoney { amount currencyCode } } } \
userErrors { field message } } }";

/// A partial refund to send: money back through the order's payment, and the line items it
/// is for (none when refunding an amount only).
/// A locale the shop has enabled (`published`: shown to buyers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopLocale {
    pub locale: String,
    pub primary: bool,
    pub published: bool,
}

/// What [`ShopifyClient::translatable`] answers.
#[derive(Debug, Clone, Default)]
pub struct Translatable {
    pub locales: Vec<ShopLocale>,
    /// Field key → digest of its current text.
    pub digests: std::collections::BTreeMap<String, String>,
}

/// One translated field for [`ShopifyClient::register_translations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationInput {
    /// The shop's locale (`es`, `pt-BR`, …).
    pub locale: String,
    /// `title` or `body_html`.
    pub key: String,
    pub value: String,
    /// The digest of the text translated, from [`Translatable::digests`].
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInput {
    /// `gid://shopify/Order/…`.
    pub order_id: String,
    /// Exact decimal in the shop's currency.
    pub amount: String,
    /// (store line item id, numeric or gid, quantity)
    pub lines: Vec<(String, u32)>,
    pub note: String,
    /// The idempotency key (our refund's id).
    pub key: String,
}

/// `location` without an id is the shop's primary location, where pushed stock is counted.
const PRIMARY_LOCATION: &str = "query { location { id } }";

#[derive(Clone, Debug)]
pub struct ShopifyClient {
    inner: Arc<Endpoint<ShopifyConfig>>,
}

impl ShopifyClient {
    pub fn new(cfg: ShopifyConfig, http: reqwest::Client) -> Self {
        let base = cfg.endpoint();
        let retry = RetryPolicy::new(cfg.attempts.max(1), cfg.max_wait);
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("shopify", "access token"))) }
    }

    /// Runs a query or mutation; answers its `data`, retrying throttled attempts.
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, ShopifyError> {
        let body = json!({"query": query, "variables": variables});
        let attempt = |_| async {
            self.attempt(&body).await.map_err(|(e, wait)| {
                let retryable = e.retryable();
                Failed::new(e, retryable, wait)
            })
        };
        self.inner
            .retry
            .run(attempt, |failed, d| {
                let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                tracing::warn!(attempt, %error, retry, shop = %self.inner.cfg.shop, "Shopify request failed");
            })
            .await
    }

    /// The shop's name and currency (a health check of the token).
    pub async fn shop(&self) -> Result<(String, String), ShopifyError> {
        let data = self.graphql(SHOP, json!({})).await?;
        let shop = data.get("shop").ok_or_else(|| ShopifyError::Decode("no shop".into()))?;
        Ok((text(shop, "name"), text(shop, "currencyCode")))
    }

    /// Cancels `order_id` (a `gid://shopify/Order/…`) with a full refund and restock, unless it
    /// is cancelled already (looked up first: a retry after a lost answer must not fail on, or
    /// repeat, a cancellation that happened). Answers whether this call cancelled it.
    pub async fn cancel_and_refund(&self, order_id: &str, staff_note: &str) -> Result<bool, ShopifyError> {
        let data = self.graphql(ORDER_CANCELLED_AT, json!({"id": order_id})).await?;
        let order = data
            .get("order")
            .filter(|o| !o.is_null())
            .ok_or_else(|| ShopifyError::UserErrors("the order is not in this store".into()))?;
        if order.get("cancelledAt").is_some_and(|c| !c.is_null()) {
            return Ok(false);
        }
        let data = self.graphql(ORDER_CANCEL, json!({"orderId": order_id, "staffNote": staff_note})).await?;
        let payload = data.get("orderCancel").ok_or_else(|| ShopifyError::Decode("no orderCancel".into()))?;
        if let Some(errs) = payload.get("orderCancelUserErrors").and_then(Value::as_array).filter(|e| !e.is_empty()) {
            let msg = errs.iter().map(|e| text(e, "message")).collect::<Vec<_>>().join("; ");
            return Err(ShopifyError::UserErrors(crate::llm::clip(&msg)));
        }
        Ok(true)
    }

    /// Refunds part of an order (`refundCreate` through the order's successful sale or capture,
    /// no restock); answers the store's refund id. Retrying with the same key is safe.
    pub async fn refund(&self, r: &RefundInput) -> Result<String, ShopifyError> {
        let data = self.graphql(ORDER_TRANSACTIONS, json!({"id": r.order_id})).await?;
        let txs = data
            .get("order")
            .filter(|o| !o.is_null())
            .ok_or_else(|| ShopifyError::UserErrors("the order is not in this store".into()))?
            .get("transactions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let parent = txs
            .iter()
            .find(|t| {
                matches!(t.get("kind").and_then(Value::as_str), Some("SALE" | "CAPTURE"))
                    && t.get("status").and_then(Value::as_str) == Some("SUCCESS")
            })
            .ok_or_else(|| ShopifyError::UserErrors("the order has no successful payment to refund".into()))?;
        let line_items: Vec<Value> = r
            .lines
            .iter()
            .map(|(id, q)| {
                let gid = if id.starts_with("gid://") { id.clone() } else { format!("gid://shopify/LineItem/{id}") };
                json!({"lineItemId": gid, "quantity": q, "restockType": "NO_RESTOCK"})
            })
            .collect();
        let input = json!({
            "orderId": r.order_id,
            "note": r.note,
            "notify": true,
            "refundLineItems": line_items,
            "transactions": [{"orderId": r.order_id, "parentId": text(parent, "id"), "gateway": text(parent, "gateway"),
                "kind": "REFUND", "amount": r.amount}],
        });
        let data = self.graphql(REFUND_CREATE, json!({"input": input, "key": r.key})).await?;
        let payload = data.get("refundCreate").ok_or_else(|| ShopifyError::Decode("no refundCreate".into()))?;
        user_errors(payload)?;
        let id = payload.get("refund").map(|x| text(x, "id")).unwrap_or_default();
        if id.is_empty() { Err(ShopifyError::Decode("no refund".into())) } else { Ok(id) }
    }

    /// The id of the shop's primary location (`gid://shopify/Location/…`).
    pub async fn primary_location(&self) -> Result<String, ShopifyError> {
        let data = self.graphql(PRIMARY_LOCATION, json!({})).await?;
        let id = data.get("location").map(|l| text(l, "id")).unwrap_or_default();
        if id.is_empty() { Err(ShopifyError::Decode("no primary location".into())) } else { Ok(id) }
    }

    /// `productSet` (synchronous) identified by `handle`: creating it the first time and
    /// setting the same state again on a retry, so a push is idempotent.
    pub async fn product_set(&self, handle: &str, input: Value) -> Result<ShopifyProduct, ShopifyError> {
        let vars = json!({"input": input, "identifier": {"handle": handle}});
        let data = self.graphql(PRODUCT_SET, vars).await?;
        let payload = data.get("productSet").ok_or_else(|| ShopifyError::Decode("no productSet".into()))?;
        user_errors(payload)?;
        let p = payload.get("product").ok_or_else(|| ShopifyError::Decode("no product".into()))?;
        let variants = p
            .get("variants")
            .and_then(|v| v.get("nodes"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let item = v.get("inventoryItem").map(|i| text(i, "id")).unwrap_or_default();
                (text(v, "id"), text(v, "sku"), item)
            })
            .collect();
        Ok(ShopifyProduct { id: text(p, "id"), handle: text(p, "handle"), variants })
    }

    /// The shop's enabled locales and the digests of `resource`'s translatable fields (by key:
    /// `title`, `body_html`, …).
    pub async fn translatable(&self, resource: &str) -> Result<Translatable, ShopifyError> {
        let data = self.graphql(TRANSLATABLE, json!({"id": resource})).await?;
        let locales = data
            .get("shopLocales")
            .and_then(Value::as_array)
            .map(|ls| {
                ls.iter()
                    .map(|l| ShopLocale {
                        locale: text(l, "locale"),
                        primary: l.get("primary").and_then(Value::as_bool).unwrap_or(false),
                        published: l.get("published").and_then(Value::as_bool).unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let r = data
            .get("translatableResource")
            .filter(|r| !r.is_null())
            .ok_or_else(|| ShopifyError::UserErrors("the resource has nothing to translate".into()))?;
        let digests = r
            .get("translatableContent")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter(|c| !text(c, "digest").is_empty())
                    .map(|c| (text(c, "key"), text(c, "digest")))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Translatable { locales, digests })
    }

    /// Registers translations of `resource`'s fields (setting the same ones again changes
    /// nothing); answers how many Shopify took.
    pub async fn register_translations(
        &self,
        resource: &str,
        translations: &[TranslationInput],
    ) -> Result<usize, ShopifyError> {
        let list: Vec<Value> = translations
            .iter()
            .map(|t| json!({"locale": t.locale, "key": t.key, "value": t.value, "translatableContentDigest": t.digest}))
            .collect();
        let data = self.graphql(TRANSLATIONS_REGISTER, json!({"id": resource, "translations": list})).await?;
        let payload =
            data.get("translationsRegister").ok_or_else(|| ShopifyError::Decode("no translationsRegister".into()))?;
        user_errors(payload)?;
        Ok(payload.get("translations").and_then(Value::as_array).map_or(0, Vec::len))
    }

    /// Fulfils every open fulfillment order of `order_id` with a tracking number.
    pub async fn fulfil(&self, order_id: &str, number: &str, company: &str) -> Result<String, ShopifyError> {
        let data = self.graphql(FULFILLMENT_ORDERS, json!({"id": order_id})).await?;
        let open: Vec<Value> = data
            .get("order")
            .and_then(|o| o.get("fulfillmentOrders"))
            .and_then(|f| f.get("nodes"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| matches!(f.get("status").and_then(Value::as_str), Some("OPEN" | "IN_PROGRESS")))
            .map(|f| json!({"fulfillmentOrderId": text(&f, "id")}))
            .collect();
        if open.is_empty() {
            return Err(ShopifyError::UserErrors("the order has no open fulfillment order".into()));
        }
        let fulfillment = json!({
            "lineItemsByFulfillmentOrder": open,
            "trackingInfo": {"number": number, "company": company},
            "notifyCustomer": true,
        });
        let data = self.graphql(FULFILLMENT_CREATE, json!({"fulfillment": fulfillment})).await?;
        let payload =
            data.get("fulfillmentCreate").ok_or_else(|| ShopifyError::Decode("no fulfillmentCreate".into()))?;
        user_errors(payload)?;
        Ok(payload.get("fulfillment").map(|f| text(f, "id")).unwrap_or_default())
    }

    /// Subscribes `callback_url` to `topic` (`ORDERS_CREATE`, …).
    pub async fn subscribe_webhook(&self, topic: &str, callback_url: &str) -> Result<String, ShopifyError> {
        let vars = json!({"topic": topic, "sub": {"callbackUrl": callback_url, "format": "JSON"}});
        let data = self.graphql(WEBHOOK_CREATE, vars).await?;
        let payload = data
            .get("webhookSubscriptionCreate")
            .ok_or_else(|| ShopifyError::Decode("no webhookSubscriptionCreate".into()))?;
        user_errors(payload)?;
        Ok(payload.get("webhookSubscription").map(|w| text(w, "id")).unwrap_or_default())
    }

    async fn attempt(&self, body: &Value) -> Result<Value, (ShopifyError, Option<Duration>)> {
        let resp = self
            .inner
            .http
            .post(&self.inner.base)
            .header("X-Shopify-Access-Token", &self.inner.cfg.access_token)
            .timeout(self.inner.cfg.timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| (transport_error(&e), None))?;
        let status = resp.status().as_u16();
        let requested_wait = retry_after(resp.headers());
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport_error(&e), None))?;
        let v: Option<Value> = serde_json::from_slice(&bytes).ok();
        let cost = v.as_ref().and_then(Cost::parse);
        let throttled_in_body = v.as_ref().is_some_and(is_throttled);
        if status == 429 || throttled_in_body {
            let wait = requested_wait.or_else(|| cost.map(|c| c.refill_wait())).unwrap_or(Duration::from_secs(1));
            return Err((ShopifyError::Throttled { retry_after: Some(wait) }, Some(wait)));
        }
        match status {
            401 => return Err((ShopifyError::Auth, None)),
            402 | 403 | 404 | 423 => return Err((ShopifyError::Shop { status }, None)),
            s if s >= 500 => {
                return Err((ShopifyError::Upstream { status, message: "server error".into() }, requested_wait));
            }
            s if !(200..300).contains(&s) => {
                return Err((ShopifyError::Upstream { status, message: "unexpected status".into() }, None));
            }
            _ => {}
        }
        let v = v.ok_or_else(|| (ShopifyError::Decode("not JSON".into()), None))?;
        if let Some(errors) = v.get("errors").filter(|e| !e.is_null()) {
            let msg = match errors {
                Value::Array(a) => a.iter().map(|e| text(e, "message")).collect::<Vec<_>>().join("; "),
                other => other.to_string(),
            };
            return Err((ShopifyError::GraphQl(crate::llm::clip(&msg)), None));
        }
        Ok(v.get("data").cloned().unwrap_or(Value::Null))
    }
}

fn is_throttled(v: &Value) -> bool {
    v.get("errors").and_then(Value::as_array).is_some_and(|errs| {
        errs.iter().any(|e| {
            e.get("extensions").and_then(|x| x.get("code")).and_then(Value::as_str) == Some("THROTTLED")
                || e.get("message").and_then(Value::as_str) == Some("Throttled")
        })
    })
}

fn user_errors(payload: &Value) -> Result<(), ShopifyError> {
    match payload.get("userErrors").and_then(Value::as_array) {
        Some(errs) if !errs.is_empty() => {
            let msg = errs.iter().map(|e| text(e, "message")).collect::<Vec<_>>().join("; ");
            Err(ShopifyError::UserErrors(crate::llm::clip(&msg)))
        }
        _ => Ok(()),
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn transport_error(e: &reqwest::Error) -> ShopifyError {
    if e.is_timeout() {
        ShopifyError::Timeout
    } else {
        ShopifyError::Upstream { status: 0, message: format!("could not reach Shopify: {}", transport_reason(e)) }
    }
}

/// Whether `hmac_header` (`X-Shopify-Hmac-Sha256`: base64) is the HMAC-SHA256 of `body` under
/// one of `secrets` (the current client secret and, while rotating, the previous one). Compared
/// in constant time; no secret never matches.
pub fn verify_webhook<'a>(secrets: impl IntoIterator<Item = &'a str>, body: &[u8], hmac_header: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(hmac_header.trim()) else {
        return false;
    };
    secrets.into_iter().filter(|s| !s.is_empty()).any(|secret| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        ring::hmac::verify(&key, body, &given).is_ok()
    })
}

/// The `X-Shopify-Hmac-Sha256` of `body` under `secret` (for the local store and tests).
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, body).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shop_domains_are_stores() {
        assert!(valid_shop_domain("acme-store.myshopify.com"));
        for bad in ["acme.com", ".myshopify.com", "evil.com/.myshopify.com", "a.b.myshopify.com", "-x.myshopify.com"] {
            assert!(!valid_shop_domain(bad), "{bad}");
        }
    }

    #[test]
    fn a_webhook_signature_is_checked_against_every_secret() {
        let body = br#"{"id":1}"#;
        let sig = sign_webhook("new", body);
        assert!(verify_webhook(["old", "new"], body, &sig));
        assert!(!verify_webhook(["old"], body, &sig));
        assert!(!verify_webhook(["new"], b"{\"id\":2}", &sig));
        assert!(!verify_webhook(["new"], body, "not base64!"));
        assert!(!verify_webhook([""], body, &sign_webhook("", body)));
    }

    #[test]
    fn the_bucket_says_how_long_to_wait() {
        let v = json!({"extensions": {"cost": {"requestedQueryCost": 120, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 20, "restoreRate": 50.0}}}});
        let c = Cost::parse(&v).unwrap();
        assert_eq!(c.refill_wait(), Duration::from_secs(2));
    }
}
