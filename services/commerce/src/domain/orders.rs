//! Store orders: their states, and a Shopify order payload read into a snapshot that can be
//! applied in any order (an older snapshot never overwrites a newer one).

use chrono::{DateTime, Utc};
use nexus_kernel::{Currency, Error};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Paid,
    Fulfilling,
    Fulfilled,
    FulfilmentFailed,
    Cancelled,
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Fulfilling => "fulfilling",
            Status::Fulfilled => "fulfilled",
            Status::FulfilmentFailed => "fulfilment_failed",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "paid" => Status::Paid,
            "fulfilling" => Status::Fulfilling,
            "fulfilled" => Status::Fulfilled,
            "fulfilment_failed" => Status::FulfilmentFailed,
            "cancelled" => Status::Cancelled,
            "refunded" => Status::Refunded,
            _ => return None,
        })
    }

    /// Whether the buyer's money is with the store (a sale exists).
    pub fn is_paid(self) -> bool {
        matches!(self, Status::Paid | Status::Fulfilling | Status::Fulfilled | Status::FulfilmentFailed)
    }

    /// The state after the store reports `store` for an order now in `self`: the store decides
    /// payment, cancellation and refunds; fulfilment progress is ours and is kept.
    pub fn merge(self, store: Status) -> Status {
        match (self, store) {
            (_, Status::Refunded) => Status::Refunded,
            (Status::Refunded, _) => Status::Refunded,
            (_, Status::Cancelled) if !self.is_paid() || self == Status::FulfilmentFailed => Status::Cancelled,
            (Status::Pending, Status::Paid) => Status::Paid,
            (current, _) => current,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub address1: String,
    pub address2: String,
    pub city: String,
    pub province: String,
    pub zip: String,
    pub country_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Our variant id (`uuid`), when the line matched one of our variants.
    #[serde(default)]
    pub variant_id: Option<uuid::Uuid>,
    pub sku: String,
    pub quantity: u32,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    pub title: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub store_line_id: String,
}

/// An order as stored.
/// What the buyer was charged, in the order's currency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub currency: Currency,
    pub subtotal: Decimal,
    pub shipping: Decimal,
    pub taxes: Decimal,
    pub total: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: uuid::Uuid,
    pub source: String,
    pub external_id: String,
    pub number: String,
    pub status: Status,
    pub totals: Totals,
    pub customer: Customer,
    pub lines: Vec<Line>,
    pub external_updated_at: DateTime<Utc>,
    pub supplier_order_id: Option<String>,
    pub supplier_pay_url: Option<String>,
    pub tracking: Vec<String>,
    pub failure: String,
    pub affiliate: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a Shopify order payload says.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub external_id: String,
    pub number: String,
    pub status: Status,
    pub totals: Totals,
    pub customer: Customer,
    pub lines: Vec<Line>,
    pub updated_at: DateTime<Utc>,
    /// When the buyer paid (the day whose rates convert the sale).
    pub processed_at: DateTime<Utc>,
    pub affiliate: Option<String>,
    /// Every refund the store made of the order so far (Shopify sends them all each time).
    pub refunds: Vec<StoreRefund>,
}

/// A refund made at the store, as its order payload lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRefund {
    /// Shopify's refund id (numeric, as text).
    pub id: String,
    /// The money given back: its successful `refund` transactions, in the order's currency.
    pub amount: Decimal,
    /// The order's lines it took back: their index in the order's lines, and units.
    pub lines: Vec<super::refunds::RefundLine>,
    pub note: String,
}

impl StoreRefund {
    /// Whether a refund we sent to the store came back as this one (`refundCreate` answers the
    /// refund's GID, the webhook its numeric id).
    pub fn is(&self, store_refund_id: &str) -> bool {
        store_refund_id.rsplit('/').next() == Some(self.id.as_str())
    }
}

/// The refunds of a Shopify order payload (`refunds[]`, each with `transactions[]` and
/// `refund_line_items[]`); a refund that gave no money back (a restock only) is left out.
fn store_refunds(v: &Value, lines: &[Line]) -> Result<Vec<StoreRefund>, Error> {
    let Some(all) = v.get("refunds").and_then(Value::as_array) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for r in all.iter().take(250) {
        let id = text(r, "id");
        if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("refunds.id"));
        }
        let mut amount = Decimal::ZERO;
        for t in r.get("transactions").and_then(Value::as_array).into_iter().flatten() {
            if text(t, "kind") == "refund" && text(t, "status") == "success" {
                amount += money(t, "amount").map_err(|_| bad("refunds.transactions.amount"))?;
            }
        }
        if amount <= Decimal::ZERO {
            continue;
        }
        let mut refunded = Vec::new();
        for l in r.get("refund_line_items").and_then(Value::as_array).into_iter().flatten() {
            let item = text(l, "line_item_id");
            let quantity = l
                .get("quantity")
                .and_then(Value::as_u64)
                .and_then(|q| u32::try_from(q).ok())
                .ok_or_else(|| bad("refunds.refund_line_items.quantity"))?;
            // A line we do not have (a payload cut at 250 lines) refunds money, not a line.
            if let Some(line) = lines.iter().position(|x| !item.is_empty() && x.store_line_id == item)
                && quantity > 0
            {
                refunded.push(super::refunds::RefundLine { line, quantity });
            }
        }
        out.push(StoreRefund { id, amount, lines: refunded, note: text(r, "note") });
    }
    Ok(out)
}

fn bad(what: &str) -> Error {
    Error::invalid("commerce.order_payload_invalid").with_param("field", what).with_violation(what, "invalid")
}

fn money(v: &Value, key: &str) -> Result<Decimal, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Decimal::ZERO),
        Some(Value::String(s)) => {
            let d: Decimal = s.parse().map_err(|_| bad(key))?;
            if d.is_sign_negative() || d > super::money::max_value() { Err(bad(key)) } else { Ok(d) }
        }
        Some(_) => Err(bad(key)),
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.chars().take(500).collect(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn time(v: &Value, key: &str) -> Result<DateTime<Utc>, Error> {
    let s = text(v, key);
    DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(|_| bad(key))
}

/// Reads a Shopify order (REST webhook JSON: `orders/create`, `orders/updated`, …).
pub fn parse_shopify_order(v: &Value) -> Result<Snapshot, Error> {
    let id = match v.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 100 => s.clone(),
        _ => return Err(bad("id")),
    };
    let currency: Currency = text(v, "currency").parse().map_err(|_| bad("currency"))?;
    let financial = text(v, "financial_status");
    let status = if v.get("cancelled_at").is_some_and(|c| !c.is_null()) && financial != "refunded" {
        Status::Cancelled
    } else {
        match financial.as_str() {
            "paid" | "partially_refunded" => Status::Paid,
            "refunded" => Status::Refunded,
            "voided" => Status::Cancelled,
            _ => Status::Pending,
        }
    };
    let shipping = match v.pointer("/total_shipping_price_set/shop_money/amount") {
        Some(Value::String(s)) => s.parse().map_err(|_| bad("total_shipping_price_set"))?,
        _ => Decimal::ZERO,
    };
    let lines = v
        .get("line_items")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("line_items"))?
        .iter()
        .take(250)
        .map(|l| {
            Ok(Line {
                variant_id: None,
                sku: text(l, "sku"),
                quantity: l
                    .get("quantity")
                    .and_then(Value::as_u64)
                    .and_then(|q| u32::try_from(q).ok())
                    .filter(|q| (1..=10_000).contains(q))
                    .ok_or_else(|| bad("quantity"))?,
                price: money(l, "price")?,
                title: text(l, "title"),
                vendor: text(l, "vendor"),
                store_line_id: text(l, "id"),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let address = v.get("shipping_address").cloned().unwrap_or(Value::Null);
    let customer = v.get("customer").cloned().unwrap_or(Value::Null);
    let name = {
        let n = text(&address, "name");
        if n.is_empty() {
            format!("{} {}", text(&customer, "first_name"), text(&customer, "last_name")).trim().to_owned()
        } else {
            n
        }
    };
    let affiliate = v
        .get("note_attributes")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|n| text(n, "name") == "affiliate"))
        .map(|n| text(n, "value"))
        .filter(|s| !s.is_empty());
    let updated_at = time(v, "updated_at")?;
    let refunds = store_refunds(v, &lines)?;
    Ok(Snapshot {
        external_id: id,
        number: text(v, "name"),
        status,
        totals: Totals {
            currency,
            subtotal: money(v, "subtotal_price")?,
            shipping,
            taxes: money(v, "total_tax")?,
            total: money(v, "total_price")?,
        },
        customer: Customer {
            name,
            email: {
                let e = text(v, "email");
                if e.is_empty() { text(&customer, "email") } else { e }
            },
            phone: text(&address, "phone"),
            address1: text(&address, "address1"),
            address2: text(&address, "address2"),
            city: text(&address, "city"),
            province: text(&address, "province"),
            zip: text(&address, "zip"),
            country_code: text(&address, "country_code"),
        },
        lines,
        updated_at,
        processed_at: time(v, "processed_at").unwrap_or(updated_at),
        affiliate,
        refunds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_store_decides_payment_and_refunds_we_decide_fulfilment() {
        assert_eq!(Status::Pending.merge(Status::Paid), Status::Paid);
        assert_eq!(Status::Paid.merge(Status::Pending), Status::Paid);
        assert_eq!(Status::Fulfilled.merge(Status::Paid), Status::Fulfilled);
        assert_eq!(Status::Fulfilled.merge(Status::Refunded), Status::Refunded);
        assert_eq!(Status::Refunded.merge(Status::Paid), Status::Refunded);
        assert_eq!(Status::Pending.merge(Status::Cancelled), Status::Cancelled);
        assert_eq!(Status::Fulfilling.merge(Status::Cancelled), Status::Fulfilling);
    }

    #[test]
    fn reads_a_shopify_order_and_refuses_a_malformed_one() {
        let v = json!({
            "id": 820982911946154508_u64, "name": "#1001", "currency": "USD", "financial_status": "paid",
            "email": "ana@example.com", "subtotal_price": "39.98", "total_tax": "3.20", "total_price": "48.17",
            "total_shipping_price_set": {"shop_money": {"amount": "4.99", "currency_code": "USD"}},
            "updated_at": "2026-11-03T10:00:00-05:00", "processed_at": "2026-11-03T09:59:00-05:00",
            "line_items": [{"id": 1, "sku": "SKU-1", "quantity": 2, "price": "19.99", "title": "Mug", "vendor": "Acme"}],
            "shipping_address": {"name": "Ana Silva", "address1": "1 Market St", "city": "SF", "zip": "94105", "country_code": "US"},
            "note_attributes": [{"name": "affiliate", "value": "aff-1"}],
        });
        let s = parse_shopify_order(&v).unwrap();
        assert_eq!(s.external_id, "820982911946154508");
        assert_eq!(s.status, Status::Paid);
        assert_eq!(s.totals.shipping, "4.99".parse().unwrap());
        assert_eq!(s.lines[0].quantity, 2);
        assert_eq!(s.affiliate.as_deref(), Some("aff-1"));
        assert_eq!(s.updated_at.to_rfc3339(), "2026-11-03T15:00:00+00:00");
        for (key, value) in [
            ("currency", json!("XYZ")),
            ("total_price", json!(12.5)),
            ("updated_at", json!("yesterday")),
            ("line_items", json!("x")),
        ] {
            let mut broken = v.clone();
            broken[key] = value;
            assert_eq!(parse_shopify_order(&broken).unwrap_err().code(), "commerce.order_payload_invalid", "{key}");
        }
        let mut zero = v.clone();
        zero["line_items"][0]["quantity"] = json!(0);
        assert!(parse_shopify_order(&zero).is_err());
    }

    #[test]
    fn reads_the_store_refunds_with_their_money_and_lines() {
        let v = json!({
            "id": 1, "currency": "USD", "financial_status": "partially_refunded", "total_price": "44.97",
            "updated_at": "2026-11-04T10:00:00Z",
            "line_items": [{"id": 11, "sku": "A", "quantity": 2, "price": "19.99"}, {"id": 12, "sku": "B", "quantity": 1, "price": "5.00"}],
            "refunds": [
                {"id": 901, "note": "damaged", "refund_line_items": [{"line_item_id": 12, "quantity": 1}],
                 "transactions": [{"kind": "refund", "status": "success", "amount": "5.00"},
                                  {"kind": "refund", "status": "failure", "amount": "5.00"}]},
                {"id": 902, "refund_line_items": [{"line_item_id": 11, "quantity": 1}], "transactions": []},
                {"id": 903, "transactions": [{"kind": "refund", "status": "success", "amount": "2.50"},
                                             {"kind": "refund", "status": "success", "amount": "0.49"}]},
            ],
        });
        let s = parse_shopify_order(&v).unwrap();
        assert_eq!(s.status, Status::Paid);
        let got: Vec<(&str, String, usize)> =
            s.refunds.iter().map(|r| (r.id.as_str(), r.amount.to_string(), r.lines.len())).collect();
        // 902 gave no money back (a restock only); failed transactions are not money back.
        assert_eq!(got, vec![("901", "5.00".to_owned(), 1), ("903", "2.99".to_owned(), 0)]);
        assert_eq!(s.refunds[0].lines[0], crate::domain::refunds::RefundLine { line: 1, quantity: 1 });
        assert!(s.refunds[0].is("gid://shopify/Refund/901") && s.refunds[0].is("901") && !s.refunds[0].is("9010"));
        for (key, value) in [("id", json!("x")), ("id", json!(null))] {
            let mut broken = v.clone();
            broken["refunds"][0][key] = value;
            assert!(parse_shopify_order(&broken).is_err(), "{key}");
        }
        let mut negative = v.clone();
        negative["refunds"][0]["transactions"][0]["amount"] = json!("-5.00");
        assert!(parse_shopify_order(&negative).is_err());
    }
}
