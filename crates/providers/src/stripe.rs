//! Stripe client for subscriptions via Checkout (`reference/providers.md` §13): customers,
//! Checkout Sessions, customer portal sessions, subscriptions and invoices, plus webhook
//! signature verification.
//!
//! - Requests are form-encoded with bracket notation (`line_items[0][price]=…`), pinned with
//!   `Stripe-Version`, authenticated with the secret key as a bearer token (never logged).
//! - Every POST carries the caller's `Idempotency-Key`; the same key is sent on every retry, so a
//!   retried create can never create twice. Objects returned by POSTs say whether Stripe replayed
//!   a stored result (`Idempotent-Replayed: true`) in their `replayed` field.
//! - Each request times out after [`REQUEST_TIMEOUT`]. 409, 429, 5xx and transport failures are
//!   retried (at most [`MAX_ATTEMPTS`] attempts) with jittered exponential backoff, honouring a
//!   `Retry-After` of up to [`MAX_RETRY_AFTER`] (a longer one ends the retries). A
//!   `Stripe-Should-Retry` header overrides the status: `false` never retries, `true` retries
//!   whatever the status.
//! - Stripe errors are parsed into [`StripeError`] and map to platform error kinds.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use subtle::{Choice, ConstantTimeEq};

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};

pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
pub const DEFAULT_API_VERSION: &str = "2026-06-24.dahlia";
/// Timeout of every request to Stripe.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// A longer `Retry-After` ends the retries (the caller gets the retryable error).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Webhook timestamps further than this from now are rejected (Stripe's SDK default).
pub const WEBHOOK_TOLERANCE: Duration = Duration::from_secs(300);

const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const MAX_MESSAGE_CHARS: usize = 500;

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}

fn default_api_version() -> String {
    DEFAULT_API_VERSION.into()
}

#[derive(Clone, Deserialize)]
pub struct StripeConfig {
    /// Secret key `sk_live_…`/`sk_test_…` (or a restricted `rk_…`). Never logged.
    pub api_key: String,
    /// Without `/v1`. Default [`DEFAULT_BASE_URL`].
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Sent as `Stripe-Version`. Default [`DEFAULT_API_VERSION`].
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Webhook endpoint secrets `whsec_…`; several while rotating (any may sign).
    #[serde(default)]
    pub webhook_secrets: Vec<String>,
}

impl StripeConfig {
    /// Default base URL and API version, no webhook secrets.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: default_base_url(),
            api_version: default_api_version(),
            webhook_secrets: Vec::new(),
        }
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("api_version", &self.api_version)
            .field("webhook_secrets", &format_args!("<{} redacted>", self.webhook_secrets.len()))
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error answered by Stripe, or a failure to reach it (`status` 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stripe {status} {kind}{}: {message}{}",
    code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
    request_id.as_deref().map(|r| format!(" [{r}]")).unwrap_or_default())]
pub struct StripeError {
    /// HTTP status; 0 when there was no answer (connection failure, timeout) or the request was
    /// refused before it was sent.
    pub status: u16,
    /// The error body's `type` (`card_error`, `invalid_request_error`, `api_error`,
    /// `idempotency_error`, …). Without one: `rate_limit` (429), `api_error` (5xx), `card_error`
    /// (402), `invalid_request_error` (other 4xx), `api_connection_error` (no answer),
    /// `invalid_response` (a 2xx we could not read).
    pub kind: String,
    /// E.g. `card_declined`, `resource_missing`, `rate_limit`, `lock_timeout`.
    pub code: Option<String>,
    pub message: String,
    /// The `param` the error is about, if any.
    pub param: Option<String>,
    /// For card errors, the issuer's reason.
    pub decline_code: Option<String>,
    /// The `Request-Id` response header.
    pub request_id: Option<String>,
    /// Whether retrying the same request (same idempotency key) may succeed.
    pub retryable: bool,
}

impl StripeError {
    fn local(kind: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            status: 0,
            kind: kind.into(),
            code: Some(code.into()),
            message: message.into(),
            param: None,
            decline_code: None,
            request_id: None,
            retryable: false,
        }
    }

    fn connection(reason: &str) -> Self {
        Self {
            retryable: true,
            code: None,
            ..Self::local("api_connection_error", "", format!("could not reach Stripe: {reason}"))
        }
    }

    /// Parses `{"error":{…}}`; tolerates any body.
    fn from_response(status: u16, body: &[u8], request_id: Option<String>, should_retry: Option<bool>) -> Self {
        #[derive(Deserialize, Default)]
        struct Body {
            error: Option<Inner>,
        }
        #[derive(Deserialize, Default)]
        struct Inner {
            #[serde(rename = "type")]
            kind: Option<String>,
            code: Option<String>,
            message: Option<String>,
            param: Option<String>,
            decline_code: Option<String>,
        }
        let err = serde_json::from_slice::<Body>(body).ok().and_then(|b| b.error).unwrap_or_default();
        let kind = err.kind.filter(|k| !k.is_empty()).unwrap_or_else(|| {
            match status {
                429 => "rate_limit",
                402 => "card_error",
                s if s >= 500 => "api_error",
                _ => "invalid_request_error",
            }
            .into()
        });
        let mut message = err.message.unwrap_or_else(|| format!("Stripe answered {status} without an error body"));
        if message.chars().count() > MAX_MESSAGE_CHARS {
            message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
        }
        let retryable = should_retry.unwrap_or(matches!(status, 409 | 429) || status >= 500);
        Self {
            status,
            kind,
            code: err.code,
            message,
            param: err.param,
            decline_code: err.decline_code,
            request_id,
            retryable,
        }
    }

    pub fn is_card_error(&self) -> bool {
        self.kind == "card_error" || self.status == 402
    }

    pub fn is_idempotency_error(&self) -> bool {
        self.kind == "idempotency_error"
    }

    /// `resource_missing` (unknown id).
    pub fn is_not_found(&self) -> bool {
        self.status == 404 || self.code.as_deref() == Some("resource_missing")
    }
}

impl From<StripeError> for nexus_kernel::Error {
    /// Card errors are the user's (402); idempotency clashes are conflicts; rate limits, Stripe
    /// outages and unreachable Stripe are transient; anything else (bad params, unknown ids, bad
    /// key) is our bug and stays internal with the cause kept for logs.
    fn from(e: StripeError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        if e.is_idempotency_error() || e.status == 409 {
            Error::new(ErrorKind::Conflict, "request.conflict").with_source(e)
        } else if e.is_card_error() {
            Error::new(ErrorKind::PaymentRequired, "subscriptions.payment_failed").with_source(e)
        } else if e.status == 429 || e.status >= 500 || e.kind == "api_connection_error" {
            Error::new(ErrorKind::Unavailable, "service.unavailable").with_source(e)
        } else {
            Error::internal(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

/// `"cus_…"` or an expanded object's `id`; `null` → `None`.
fn id_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(String::from),
        _ => None,
    })
}

/// `null` → `T::default()`.
fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Stripe replayed the stored result of an earlier request with the same idempotency key.
    #[serde(skip)]
    pub replayed: bool,
}

/// `subscription` (recurring prices) or `payment` (one-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckoutMode {
    #[default]
    Subscription,
    Payment,
}

impl CheckoutMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutMode::Subscription => "subscription",
            CheckoutMode::Payment => "payment",
        }
    }
}

/// A Checkout Session for one price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutParams {
    pub mode: CheckoutMode,
    /// Existing customer `cus_…`; without one Stripe creates a customer (from `customer_email`
    /// if given).
    pub customer: Option<String>,
    /// Prefills the email when there is no `customer`.
    pub customer_email: Option<String>,
    pub price: String,
    pub quantity: u32,
    /// May contain the literal `{CHECKOUT_SESSION_ID}`, which Stripe fills in.
    pub success_url: String,
    pub cancel_url: String,
    /// Our user id; comes back in `checkout.session.completed`.
    pub client_reference_id: Option<String>,
    /// Set on the session and, in subscription mode, on the subscription too
    /// (`subscription_data[metadata]`), so subscription events carry it.
    pub metadata: Vec<(String, String)>,
    /// Subscription mode only.
    pub trial_period_days: Option<u32>,
    pub allow_promotion_codes: bool,
}

impl CheckoutParams {
    /// Subscription mode, quantity 1, nothing optional set.
    pub fn subscription(
        price: impl Into<String>,
        success_url: impl Into<String>,
        cancel_url: impl Into<String>,
    ) -> Self {
        Self {
            mode: CheckoutMode::Subscription,
            customer: None,
            customer_email: None,
            price: price.into(),
            quantity: 1,
            success_url: success_url.into(),
            cancel_url: cancel_url.into(),
            client_reference_id: None,
            metadata: Vec::new(),
            trial_period_days: None,
            allow_promotion_codes: false,
        }
    }

    fn to_form(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = vec![
            ("mode".into(), self.mode.as_str().into()),
            ("line_items[0][price]".into(), self.price.clone()),
            ("line_items[0][quantity]".into(), self.quantity.to_string()),
            ("success_url".into(), self.success_url.clone()),
            ("cancel_url".into(), self.cancel_url.clone()),
        ];
        if let Some(c) = &self.customer {
            f.push(("customer".into(), c.clone()));
        } else if let Some(e) = &self.customer_email {
            f.push(("customer_email".into(), e.clone()));
        }
        if let Some(r) = &self.client_reference_id {
            f.push(("client_reference_id".into(), r.clone()));
        }
        for (k, v) in &self.metadata {
            f.push((format!("metadata[{k}]"), v.clone()));
        }
        if self.mode == CheckoutMode::Subscription {
            for (k, v) in &self.metadata {
                f.push((format!("subscription_data[metadata][{k}]"), v.clone()));
            }
            if let Some(days) = self.trial_period_days {
                f.push(("subscription_data[trial_period_days]".into(), days.to_string()));
            }
        }
        if self.allow_promotion_codes {
            f.push(("allow_promotion_codes".into(), "true".into()));
        }
        f
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    /// Where to send the user; `null` once the session is complete or expired.
    #[serde(default)]
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    #[serde(default)]
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub customer: Option<String>,
    /// Set once `status` is `complete` (subscription mode).
    #[serde(default, deserialize_with = "id_or_object")]
    pub subscription: Option<String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
    #[serde(skip)]
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PortalSession {
    pub id: String,
    pub url: String,
    #[serde(skip)]
    pub replayed: bool,
}

/// A subscription. Since API version `2025-03-31.basil` the billing period lives on the items;
/// `current_period_*` here is read from the subscription when present, else from its items
/// (earliest start, latest end).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawSubscription")]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    /// `incomplete`, `incomplete_expired`, `trialing`, `active`, `past_due`, `canceled`, `unpaid`,
    /// `paused`.
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    /// Price ids of the items, in order.
    pub items: Vec<String>,
    /// Subscription item ids (`si_…`), in the same order: needed to change an item's price.
    pub item_ids: Vec<String>,
    pub metadata: Metadata,
    pub replayed: bool,
}

#[derive(Deserialize)]
struct RawSubscription {
    id: String,
    #[serde(default, deserialize_with = "id_or_object")]
    customer: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default, deserialize_with = "null_default")]
    cancel_at_period_end: bool,
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    items: RawList<RawItem>,
    #[serde(default, deserialize_with = "null_default")]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct RawList<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

impl<T> Default for RawList<T> {
    fn default() -> Self {
        Self { data: Vec::new() }
    }
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    price: Option<String>,
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
}

impl From<RawSubscription> for Subscription {
    fn from(r: RawSubscription) -> Self {
        let items = &r.items.data;
        let current_period_start =
            r.current_period_start.or_else(|| items.iter().filter_map(|i| i.current_period_start).min());
        let current_period_end =
            r.current_period_end.or_else(|| items.iter().filter_map(|i| i.current_period_end).max());
        Subscription {
            id: r.id,
            customer: r.customer.unwrap_or_default(),
            status: r.status,
            cancel_at_period_end: r.cancel_at_period_end,
            current_period_start,
            current_period_end,
            item_ids: items.iter().filter_map(|i| i.id.clone()).collect(),
            items: r.items.data.into_iter().filter_map(|i| i.price).collect(),
            metadata: r.metadata,
            replayed: false,
        }
    }
}

/// An invoice. Amounts are in the currency's minor unit; `currency` is lower-case ISO 4217.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawInvoice")]
pub struct Invoice {
    pub id: String,
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible`, `void`.
    pub status: Option<String>,
    pub amount_paid: i64,
    pub amount_due: i64,
    pub currency: String,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub created: i64,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    /// From `parent.subscription_details.subscription` (API `2025-03-31.basil` and later) or the
    /// older top-level `subscription`.
    pub subscription: Option<String>,
    /// `subscription_create`, `subscription_cycle`, `subscription_update`, `manual`, …
    pub billing_reason: Option<String>,
    #[serde(default)]
    pub customer: Option<String>,
}

#[derive(Deserialize)]
struct RawInvoice {
    id: String,
    number: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    amount_paid: i64,
    #[serde(default, deserialize_with = "null_default")]
    amount_due: i64,
    #[serde(default, deserialize_with = "null_default")]
    currency: String,
    hosted_invoice_url: Option<String>,
    invoice_pdf: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    created: i64,
    period_start: Option<i64>,
    period_end: Option<i64>,
    #[serde(default, deserialize_with = "id_or_object")]
    subscription: Option<String>,
    parent: Option<Value>,
    billing_reason: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    customer: Option<String>,
}

impl From<RawInvoice> for Invoice {
    fn from(r: RawInvoice) -> Self {
        let from_parent =
            r.parent.as_ref().and_then(|p| p.pointer("/subscription_details/subscription")).and_then(|s| match s {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("id").and_then(Value::as_str).map(String::from),
                _ => None,
            });
        Invoice {
            id: r.id,
            number: r.number,
            status: r.status,
            amount_paid: r.amount_paid,
            amount_due: r.amount_due,
            currency: r.currency,
            hosted_invoice_url: r.hosted_invoice_url,
            invoice_pdf: r.invoice_pdf,
            created: r.created,
            period_start: r.period_start,
            period_end: r.period_end,
            subscription: from_parent.or(r.subscription),
            billing_reason: r.billing_reason,
            customer: r.customer,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// Stripe API client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct StripeClient {
    inner: Arc<Endpoint<StripeConfig>>,
}

/// A decoded 2xx answer and what its headers said.
struct Reply<T> {
    value: T,
    replayed: bool,
}

impl StripeClient {
    pub fn new(cfg: StripeConfig, http: reqwest::Client) -> Self {
        let base = cfg.base_url.trim_end_matches('/').trim_end_matches("/v1").to_string();
        let retry = RetryPolicy::new(MAX_ATTEMPTS, MAX_RETRY_AFTER);
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("stripe", "secret key"))) }
    }

    pub fn config(&self) -> &StripeConfig {
        &self.inner.cfg
    }

    /// `POST /v1/customers`.
    pub async fn create_customer(
        &self,
        email: &str,
        name: Option<&str>,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<Customer, StripeError> {
        let mut form = vec![("email".to_string(), email.to_string())];
        if let Some(name) = name {
            form.push(("name".into(), name.into()));
        }
        form.extend(metadata.iter().map(|(k, v)| (format!("metadata[{k}]"), v.to_string())));
        let r: Reply<Customer> = self.post("/v1/customers", &form, idempotency_key).await?;
        Ok(Customer { replayed: r.replayed, ..r.value })
    }

    /// `POST /v1/checkout/sessions`; send the user to the returned `url`.
    pub async fn create_checkout_session(
        &self,
        params: &CheckoutParams,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, StripeError> {
        if params.quantity == 0 {
            return Err(StripeError::local(
                "invalid_request_error",
                "parameter_invalid_integer",
                "quantity must be ≥ 1",
            ));
        }
        let r: Reply<CheckoutSession> = self.post("/v1/checkout/sessions", &params.to_form(), idempotency_key).await?;
        Ok(CheckoutSession { replayed: r.replayed, ..r.value })
    }

    /// `GET /v1/checkout/sessions/{id}` (`subscription` is an id, not expanded).
    pub async fn retrieve_checkout_session(&self, id: &str) -> Result<CheckoutSession, StripeError> {
        check_id(id)?;
        Ok(self.get(&format!("/v1/checkout/sessions/{id}"), &[]).await?.value)
    }

    /// `POST /v1/billing_portal/sessions`; the URL is short-lived, create one per visit.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<PortalSession, StripeError> {
        check_id(customer)?;
        let form = [("customer".to_string(), customer.to_string()), ("return_url".to_string(), return_url.to_string())];
        let r: Reply<PortalSession> = self.post("/v1/billing_portal/sessions", &form, idempotency_key).await?;
        Ok(PortalSession { replayed: r.replayed, ..r.value })
    }

    /// `GET /v1/subscriptions/{id}`.
    pub async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        check_id(id)?;
        Ok(self.get(&format!("/v1/subscriptions/{id}"), &[]).await?.value)
    }

    /// `POST /v1/subscriptions/{id}` with raw form parameters in bracket notation, e.g.
    /// `("items[0][id]", "si_…")`, `("items[0][price]", "price_…")`,
    /// `("proration_behavior", "create_prorations")`.
    pub async fn update_subscription(
        &self,
        id: &str,
        params: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        check_id(id)?;
        let r: Reply<Subscription> = self.post(&format!("/v1/subscriptions/{id}"), params, idempotency_key).await?;
        Ok(Subscription { replayed: r.replayed, ..r.value })
    }

    /// Sets (or clears) `cancel_at_period_end`.
    pub async fn cancel_subscription_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let params = [("cancel_at_period_end".to_string(), cancel.to_string())];
        self.update_subscription(id, &params, idempotency_key).await
    }

    /// `GET /v1/invoices?customer=…&limit=…`, newest first; `limit` is clamped to 1..=100.
    pub async fn list_invoices(&self, customer: &str, limit: u32) -> Result<Vec<Invoice>, StripeError> {
        check_id(customer)?;
        #[derive(Deserialize)]
        struct List {
            data: Vec<Invoice>,
        }
        let query = [("customer", customer.to_string()), ("limit", limit.clamp(1, 100).to_string())];
        let r: Reply<List> = self.get("/v1/invoices", &query).await?;
        Ok(r.value.data)
    }

    /// [`verify_webhook`] with the configured secrets, [`WEBHOOK_TOLERANCE`] and the current time.
    pub fn construct_event(&self, payload: &[u8], signature_header: &str) -> Result<StripeEvent, WebhookError> {
        verify_webhook(payload, signature_header, &self.inner.cfg.webhook_secrets, WEBHOOK_TOLERANCE, unix_now())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<Reply<T>, StripeError> {
        self.call(Method::GET, path, query, None, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<Reply<T>, StripeError> {
        check_idempotency_key(idempotency_key)?;
        self.call(Method::POST, path, &[], Some(form), Some(idempotency_key)).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        form: Option<&[(String, String)]>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<T>, StripeError> {
        let url = format!("{}{path}", self.inner.base);
        // The attempts share `idempotency_key`, so a retried create can never create twice.
        let attempt = |_| async {
            self.attempt(&method, &url, query, form, idempotency_key).await.map_err(|(err, wait)| {
                let retryable = err.retryable;
                Failed::new(err, retryable, wait)
            })
        };
        let reply: Reply<T> = self
            .inner
            .retry
            .run(attempt, |failed, d| {
                let (err, attempt, retry) = (&failed.error, d.attempt, d.retry);
                tracing::warn!(
                    %method, path, attempt, status = err.status, kind = %err.kind, code = err.code.as_deref(),
                    request_id = err.request_id.as_deref(), retry, "stripe request failed"
                );
            })
            .await?;
        if reply.replayed {
            tracing::info!(%method, path, idempotency_key, "stripe replayed an idempotent request");
        }
        Ok(reply)
    }

    /// One request. On failure: the error and the `Retry-After` the answer asked for.
    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        query: &[(&str, String)],
        form: Option<&[(String, String)]>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<T>, (StripeError, Option<Duration>)> {
        let cfg = &self.inner.cfg;
        let mut req = self
            .inner
            .http
            .request(method.clone(), url)
            .bearer_auth(&cfg.api_key)
            .header("Stripe-Version", &cfg.api_version)
            .header(ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(form) = form {
            req = req.form(form);
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req.send().await.map_err(|e| (StripeError::connection(transport_reason(&e)), None))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let request_id = header_str(&headers, "request-id").map(String::from);
        let body = read_limited(resp, MAX_BODY_BYTES)
            .await
            .map_err(|e| (StripeError { status, ..StripeError::connection(transport_reason(&e)) }, None))?;
        if (200..300).contains(&status) {
            let value = serde_json::from_slice(&body).map_err(|e| {
                let mut err = StripeError::local("invalid_response", "", format!("unreadable Stripe answer: {e}"));
                err.status = status;
                err.code = None;
                err.request_id = request_id.clone();
                (err, None)
            })?;
            let replayed = header_str(&headers, "idempotent-replayed").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            return Ok(Reply { value, replayed });
        }
        let should_retry = header_str(&headers, "stripe-should-retry").and_then(|v| match v.trim() {
            v if v.eq_ignore_ascii_case("true") => Some(true),
            v if v.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        });
        Err((StripeError::from_response(status, &body, request_id, should_retry), retry_after(&headers)))
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Object ids go into URL paths: letters, digits and `_` only.
fn check_id(id: &str) -> Result<(), StripeError> {
    let ok = !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StripeError::local("invalid_request_error", "invalid_id", "malformed Stripe object id"))
    }
}

/// Stripe accepts up to 255 characters; we also require printable ASCII (a header value).
fn check_idempotency_key(key: &str) -> Result<(), StripeError> {
    let ok = !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(StripeError::local(
            "invalid_request_error",
            "idempotency_key_invalid",
            "idempotency key must be 1-255 printable ASCII characters",
        ))
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// A verified webhook event.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEvent {
    /// `evt_…`; deliveries repeat, dedupe on it.
    pub id: String,
    /// The event `type`, e.g. `checkout.session.completed`.
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// `data.object`.
    pub data_object: Value,
    /// `data.previous_attributes` (`*.updated` events).
    pub previous_attributes: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: {0}")]
    Malformed(&'static str),
    #[error("no v1 signature matches a configured webhook secret")]
    NoMatchingSignature,
    #[error("webhook timestamp outside the tolerance")]
    Expired,
    #[error("webhook payload is not a Stripe event: {0}")]
    InvalidPayload(String),
}

impl From<WebhookError> for nexus_kernel::Error {
    /// A bad signature or stale timestamp means we do not trust the sender: unauthenticated.
    fn from(e: WebhookError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        match e {
            WebhookError::InvalidPayload(_) => Error::new(ErrorKind::InvalidArgument, "request.invalid").with_source(e),
            _ => Error::new(ErrorKind::Unauthenticated, "auth.unauthenticated").with_source(e),
        }
    }
}

/// Verifies a `Stripe-Signature` header (`t=…,v1=…[,v1=…][,v0=…]`) and parses the event.
///
/// The signature is `hex(HMAC-SHA256(secret as UTF-8 bytes, "{t}.{payload}"))`; the event is
/// authentic if any `v1` matches under any of `secrets` (compared in constant time; empty
/// secrets are ignored). Then `t` must lie within `tolerance` of `now` (Unix seconds) in either
/// direction. `v0` and unknown keys are ignored. A header without any `v1` has no matching
/// signature.
pub fn verify_webhook(
    payload: &[u8],
    signature_header: &str,
    secrets: &[String],
    tolerance: Duration,
    now: i64,
) -> Result<StripeEvent, WebhookError> {
    let header = signature_header.trim();
    if header.is_empty() {
        return Err(WebhookError::MissingHeader);
    }
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<&str> = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else { continue };
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::Malformed("several timestamps"));
                }
                let t =
                    value.trim().parse::<i64>().map_err(|_| WebhookError::Malformed("timestamp is not a number"))?;
                timestamp = Some(t);
            }
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(WebhookError::Malformed("no timestamp"))?;

    let secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        tracing::warn!("stripe webhook received but no webhook secret is configured");
        return Err(WebhookError::NoMatchingSignature);
    }
    let mut matched = Choice::from(0);
    for secret in secrets {
        let expected = webhook_signature(secret.as_bytes(), t, payload);
        for sig in &signatures {
            matched |= expected.as_bytes().ct_eq(sig.as_bytes());
        }
    }
    if !bool::from(matched) {
        tracing::info!(signatures = signatures.len(), "stripe webhook signature rejected");
        return Err(WebhookError::NoMatchingSignature);
    }

    let tol = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if t < now.saturating_sub(tol) || t > now.saturating_add(tol) {
        tracing::info!(timestamp = t, now, "stripe webhook timestamp outside tolerance");
        return Err(WebhookError::Expired);
    }

    #[derive(Deserialize)]
    struct RawEvent {
        id: String,
        #[serde(rename = "type")]
        kind: String,
        created: i64,
        #[serde(default)]
        livemode: bool,
        #[serde(default)]
        api_version: Option<String>,
        data: RawData,
    }
    #[derive(Deserialize)]
    struct RawData {
        object: Value,
        #[serde(default)]
        previous_attributes: Option<Value>,
    }
    let raw: RawEvent = serde_json::from_slice(payload).map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
    if !raw.data.object.is_object() {
        return Err(WebhookError::InvalidPayload("data.object is not an object".into()));
    }
    Ok(StripeEvent {
        id: raw.id,
        kind: raw.kind,
        created: raw.created,
        livemode: raw.livemode,
        api_version: raw.api_version,
        data_object: raw.data.object,
        previous_attributes: raw.data.previous_attributes.filter(|p| !p.is_null()),
    })
}

/// `hex(HMAC-SHA256(key, "{t}.{payload}"))`.
fn webhook_signature(key: &[u8], t: i64, payload: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(payload);
    hex::encode(ctx.sign().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const PAYLOAD: &[u8] = br#"{"id":"evt_1"}"#;

    #[test]
    fn signature_known_answer() {
        // Python: hmac.new(b"whsec_test_secret", b'1700000000.{"id":"evt_1"}', sha256).hexdigest()
        assert_eq!(
            webhook_signature(SECRET.as_bytes(), 1_700_000_000, PAYLOAD),
            "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
        );
    }

    #[test]
    fn header_parsing_edge_cases() {
        let secrets = vec![SECRET.to_string()];
        let sig = webhook_signature(SECRET.as_bytes(), 1_700_000_000, PAYLOAD);
        let verify = |h: &str| verify_webhook(PAYLOAD, h, &secrets, WEBHOOK_TOLERANCE, 1_700_000_000);
        // Signature ok, then the payload is not an event.
        assert!(matches!(verify(&format!("t=1700000000,v1={sig}")), Err(WebhookError::InvalidPayload(_))));
        // Whitespace around items and junk items are tolerated.
        assert!(matches!(
            verify(&format!(" t=1700000000 , junk, x=y, v0=abc, v1={sig} ")),
            Err(WebhookError::InvalidPayload(_))
        ));
        assert_eq!(verify("   ").unwrap_err(), WebhookError::MissingHeader);
        assert!(matches!(verify("t=1,t=2,v1=aa"), Err(WebhookError::Malformed(_))));
        assert!(matches!(verify("t=soon,v1=aa"), Err(WebhookError::Malformed(_))));
        assert!(matches!(verify(&format!("v1={sig}")), Err(WebhookError::Malformed(_))));
        assert_eq!(verify("t=1700000000,v0=abc").unwrap_err(), WebhookError::NoMatchingSignature);
        // Upper-case hex is not what Stripe sends; it does not match.
        assert_eq!(
            verify(&format!("t=1700000000,v1={}", sig.to_uppercase())).unwrap_err(),
            WebhookError::NoMatchingSignature
        );
        // An empty secret never verifies anything (HMAC under an empty key is forgeable).
        let empty = webhook_signature(b"", 1_700_000_000, PAYLOAD);
        let r = verify_webhook(
            PAYLOAD,
            &format!("t=1700000000,v1={empty}"),
            &[String::new()],
            WEBHOOK_TOLERANCE,
            1_700_000_000,
        );
        assert_eq!(r.unwrap_err(), WebhookError::NoMatchingSignature);
    }

    #[test]
    fn checkout_form_uses_bracket_notation() {
        let mut p = CheckoutParams::subscription(
            "price_1",
            "https://app/ok?session_id={CHECKOUT_SESSION_ID}",
            "https://app/no",
        );
        p.customer = Some("cus_1".into());
        p.customer_email = Some("ignored@example.com".into());
        p.client_reference_id = Some("42".into());
        p.metadata = vec![("user_id".into(), "42".into())];
        p.trial_period_days = Some(14);
        let f = p.to_form();
        let get = |k: &str| f.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("mode"), Some("subscription"));
        assert_eq!(get("line_items[0][price]"), Some("price_1"));
        assert_eq!(get("line_items[0][quantity]"), Some("1"));
        assert_eq!(get("customer"), Some("cus_1"));
        assert_eq!(get("customer_email"), None);
        assert_eq!(get("metadata[user_id]"), Some("42"));
        assert_eq!(get("subscription_data[metadata][user_id]"), Some("42"));
        assert_eq!(get("subscription_data[trial_period_days]"), Some("14"));
        assert_eq!(get("allow_promotion_codes"), None);

        p.mode = CheckoutMode::Payment;
        let f = p.to_form();
        assert!(!f.iter().any(|(k, _)| k.starts_with("subscription_data")));
    }

    #[test]
    fn subscription_period_from_items_and_invoice_subscription_from_parent() {
        let sub: Subscription = serde_json::from_value(serde_json::json!({
            "id": "sub_1", "customer": {"id": "cus_1", "object": "customer"}, "status": "active",
            "cancel_at_period_end": false, "metadata": {"user_id": "42"},
            "items": {"object": "list", "data": [
                {"id": "si_1", "price": {"id": "price_a"}, "current_period_start": 100, "current_period_end": 200},
                {"id": "si_2", "price": "price_b", "current_period_start": 90, "current_period_end": 210}
            ]}
        }))
        .unwrap();
        assert_eq!(sub.customer, "cus_1");
        assert_eq!(sub.items, vec!["price_a", "price_b"]);
        assert_eq!((sub.current_period_start, sub.current_period_end), (Some(90), Some(210)));
        assert_eq!(sub.metadata["user_id"], "42");

        let inv: Invoice = serde_json::from_value(serde_json::json!({
            "id": "in_1", "number": null, "status": "paid", "amount_paid": 9700, "amount_due": 9700,
            "currency": "usd", "created": 5, "period_start": 1, "period_end": 2,
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1"}}
        }))
        .unwrap();
        assert_eq!(inv.subscription.as_deref(), Some("sub_1"));
        assert_eq!(inv.hosted_invoice_url, None);
    }

    #[test]
    fn error_body_parsing_and_retryability() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card was declined.","param":"card"}}"#;
        let e = StripeError::from_response(402, body, Some("req_1".into()), None);
        assert_eq!(e.kind, "card_error");
        assert_eq!(e.code.as_deref(), Some("card_declined"));
        assert_eq!(e.decline_code.as_deref(), Some("insufficient_funds"));
        assert!(!e.retryable);
        assert!(e.to_string().contains("req_1"));

        let e = StripeError::from_response(503, b"<html>", None, None);
        assert_eq!((e.kind.as_str(), e.retryable), ("api_error", true));
        let e = StripeError::from_response(429, b"", None, Some(false));
        assert_eq!((e.kind.as_str(), e.retryable), ("rate_limit", false));
        let e = StripeError::from_response(400, b"{}", None, Some(true));
        assert!(e.retryable);
    }

    #[test]
    fn kernel_mapping() {
        use nexus_kernel::ErrorKind;
        let k = |status: u16, kind: &str| -> nexus_kernel::Error {
            StripeError::from_response(status, format!(r#"{{"error":{{"type":"{kind}"}}}}"#).as_bytes(), None, None)
                .into()
        };
        assert_eq!(k(402, "card_error").kind(), ErrorKind::PaymentRequired);
        assert_eq!(k(402, "card_error").code(), "subscriptions.payment_failed");
        assert_eq!(k(429, "invalid_request_error").kind(), ErrorKind::Unavailable);
        assert_eq!(k(500, "api_error").code(), "service.unavailable");
        assert_eq!(k(400, "idempotency_error").code(), "request.conflict");
        assert_eq!(k(409, "invalid_request_error").kind(), ErrorKind::Conflict);
        let internal = k(404, "invalid_request_error");
        assert_eq!(internal.kind(), ErrorKind::Internal);
        assert!(std::error::Error::source(&internal).is_some());
        assert_eq!(k(401, "invalid_request_error").kind(), ErrorKind::Internal);
        let conn: nexus_kernel::Error = StripeError::connection("timed out").into();
        assert_eq!(conn.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn ids_and_keys_are_checked_before_sending() {
        assert!(check_id("sub_1MowQVLkdIwHu7ixeRlqHVzs").is_ok());
        for bad in ["", "../customers", "sub_1?expand[]=x", "cus 1"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert!(check_idempotency_key("0190c3c2-8d7e-7c5b-9a53-6b7d4b1f2a11").is_ok());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key("has space").is_err());
        assert!(check_idempotency_key(&"k".repeat(256)).is_err());
    }

    #[test]
    fn config_defaults_and_redaction() {
        let cfg: StripeConfig = serde_json::from_value(serde_json::json!({
            "api_key": "sk_live_supersecret", "webhook_secrets": ["whsec_one", "whsec_two"]
        }))
        .unwrap();
        assert_eq!(cfg.base_url, DEFAULT_BASE_URL);
        assert_eq!(cfg.api_version, DEFAULT_API_VERSION);
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("supersecret") && !shown.contains("whsec_"), "{shown}");
    }
}
