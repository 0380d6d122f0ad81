//! What the service stores and answers with, free of any storage or wire format.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A plan as offered, in the caller's language and currency (USD where it has no price in it).
#[derive(Debug, Clone)]
pub struct Plan {
    pub code: String,
    pub monthly_credits: i64,
    pub rollover: bool,
    pub entitlements: serde_json::Value,
    pub name: String,
    pub description: String,
    pub currency: String,
    pub amount_minor: i64,
    pub interval: String,
}

/// A workspace's subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub tenant_id: Uuid,
    pub plan_code: String,
    pub status: String,
    pub billing: String,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
    pub pending_plan_code: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub currency: String,
}

impl Subscription {
    /// Paid features stay while Stripe retries a payment (past_due); they go when the
    /// subscription is canceled, unpaid or never completed.
    pub fn has_access(&self) -> bool {
        super::status_has_access(&self.status)
    }

    /// The plan whose limits apply now.
    pub fn effective_plan(&self) -> &str {
        if self.has_access() { &self.plan_code } else { "free" }
    }
}

#[derive(Debug, Clone)]
pub struct Balance {
    pub available: i64,
    pub reserved: i64,
    pub period_grant: i64,
    pub period_used: i64,
}

/// A hold on credits, and how it was settled.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: Uuid,
    pub action: String,
    pub amount: i64,
    pub status: String,
    pub committed_amount: i64,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub action: String,
    pub reservation_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct EntitlementView {
    pub feature: String,
    pub allowed: bool,
    pub limit: i64,
    pub used: i64,
}

#[derive(Debug, Clone)]
pub struct UsageView {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub credits_used: i64,
    pub credits_granted: i64,
    pub by_action: HashMap<String, i64>,
    pub features: Vec<EntitlementView>,
}

/// A purchase in progress (Stripe Checkout or a local session).
#[derive(Debug, Clone)]
pub struct Checkout {
    pub id: String,
    pub provider: String,
    pub kind: String,
    pub plan_code: Option<String>,
    pub pack_code: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    pub url: String,
    pub status: String,
}

/// What a caller asks to buy.
#[derive(Debug, Clone)]
pub struct CheckoutInput {
    pub kind: String,
    pub plan_code: String,
    pub pack_code: String,
    pub currency: String,
    pub success_url: String,
    pub cancel_url: String,
    pub idempotency_key: String,
}

/// A new checkout session to store.
#[derive(Debug, Clone)]
pub struct NewCheckout<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub kind: &'a str,
    pub plan_code: Option<&'a str>,
    pub pack_code: Option<&'a str>,
    pub currency: &'a str,
    pub amount_minor: i64,
    pub url: &'a str,
    pub idempotency_key: &'a str,
}

/// An invoice or receipt as stored: what was recorded, with our id and when.
#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub details: NewInvoice,
}

/// An invoice to store (from Stripe, or a local receipt).
#[derive(Debug, Clone)]
pub struct NewInvoice {
    /// "stripe" or "local".
    pub provider: String,
    pub external_id: String,
    pub number: String,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub reason: String,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub hosted_url: String,
    pub pdf_url: String,
}

impl NewInvoice {
    /// Local billing's own receipt, paid in full.
    pub fn local_receipt(
        reason: &str,
        currency: &str,
        amount: i64,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Self {
        let id = super::local_id("lin");
        Self {
            provider: "local".into(),
            number: format!("LOCAL-{}", &id[id.len() - 10..].to_uppercase()),
            external_id: id,
            status: "paid".into(),
            amount_due: amount,
            amount_paid: amount,
            currency: currency.into(),
            reason: reason.into(),
            period_start: Some(start),
            period_end: end,
            hosted_url: String::new(),
            pdf_url: String::new(),
        }
    }
}

/// A credit pack with its price in one currency.
#[derive(Debug, Clone)]
pub struct Pack {
    pub code: String,
    pub credits: i64,
    pub currency: String,
    pub amount_minor: i64,
}

/// A subscription as its billing source reports it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub plan: String,
    /// One of our stored statuses (see [`super::normalize_status`]).
    pub status: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
    /// "stripe" or "local".
    pub billing: &'static str,
    pub stripe_customer: Option<String>,
    pub stripe_subscription: Option<String>,
    pub currency: Option<String>,
}

impl Observed {
    /// Local billing of `sub`'s current period with another plan or cancellation flag.
    pub fn local(sub: &Subscription, plan: &str, cancel_at_period_end: bool) -> Self {
        Self {
            plan: plan.into(),
            status: sub.status.clone(),
            period_start: sub.current_period_start,
            period_end: sub.current_period_end,
            cancel_at_period_end,
            billing: "local",
            stripe_customer: None,
            stripe_subscription: None,
            currency: None,
        }
    }
}

/// A credit notice of the current period.
#[derive(Debug, Clone, Copy)]
pub struct Notice {
    pub percent: i32,
    pub created_at: DateTime<Utc>,
}
