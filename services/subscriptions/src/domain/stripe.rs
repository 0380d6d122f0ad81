//! Stripe's objects in our terms: which plan a subscription stands for, its state as an
//! [`Observed`], an invoice as a [`NewInvoice`]. Pure: the Stripe calls are in `app`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use nexus_providers::stripe::{Invoice, Subscription};

use super::{NewInvoice, Observed};

/// A Unix timestamp from Stripe (now when out of range).
pub fn unix(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_else(Utc::now)
}

/// The plan a Stripe price stands for (configuration first, then the subscription's metadata).
pub fn plan_of(prices: &BTreeMap<String, String>, sub: &Subscription) -> Option<String> {
    let by_price = sub.items.iter().find_map(|price| {
        prices.iter().find(|(code, id)| *id == price && !code.starts_with("credits_")).map(|(c, _)| c)
    });
    by_price.cloned().or_else(|| sub.metadata.get("plan").cloned())
}

/// A Stripe subscription as the state machine sees it; `None` for an unknown plan or status.
pub fn observed(prices: &BTreeMap<String, String>, sub: &Subscription) -> Option<Observed> {
    let plan = plan_of(prices, sub)?;
    let status = super::normalize_status(&sub.status)?;
    let now = Utc::now().timestamp();
    let start = sub.current_period_start.unwrap_or(now);
    Some(Observed {
        plan,
        status: status.into(),
        period_start: unix(start),
        period_end: sub.current_period_end.map(unix).unwrap_or_else(|| super::next_period_end(unix(start))),
        cancel_at_period_end: sub.cancel_at_period_end,
        billing: "stripe",
        stripe_customer: Some(sub.customer.clone()).filter(|c| !c.is_empty()),
        stripe_subscription: Some(sub.id.clone()),
        currency: None,
    })
}

/// A Stripe invoice as we store it.
pub fn invoice(invoice: &Invoice) -> NewInvoice {
    NewInvoice {
        provider: "stripe".into(),
        external_id: invoice.id.clone(),
        number: invoice.number.clone().unwrap_or_default(),
        status: invoice.status.clone().unwrap_or_else(|| "open".into()),
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        currency: invoice.currency.clone(),
        reason: invoice.billing_reason.clone().unwrap_or_default(),
        period_start: invoice.period_start.map(unix),
        period_end: invoice.period_end.map(unix),
        hosted_url: invoice.hosted_invoice_url.clone().unwrap_or_default(),
        pdf_url: invoice.invoice_pdf.clone().unwrap_or_default(),
    }
}

/// The receipt of a credit pack paid through Stripe Checkout (the session stands for the invoice).
pub fn pack_receipt(checkout: &str, amount: i64, currency: String, paid_at: i64) -> NewInvoice {
    NewInvoice {
        provider: "stripe".into(),
        external_id: checkout.to_owned(),
        number: String::new(),
        status: "paid".into(),
        amount_due: amount,
        amount_paid: amount,
        currency,
        reason: "credits".into(),
        period_start: Some(unix(paid_at)),
        period_end: None,
        hosted_url: String::new(),
        pdf_url: String::new(),
    }
}
