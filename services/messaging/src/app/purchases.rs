//! Store orders (commerce's `order.created` and `order.refunded`) into the contact book: the
//! buyer becomes (or completes) a contact, a customer, with one `purchase` activity per order and
//! one `refund` activity per refund. Buying is no consent to marketing: none is recorded.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use sqlx::PgConnection;

use super::leads::{Person, find_or_add};
use crate::domain::contact::Stage;
use crate::repo;

/// Who acts for stores in activities.
const ACTOR: &str = "svc:commerce";

/// The buyer and the order as commerce reported them.
#[derive(Debug, Clone, Copy)]
pub struct Buyer<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
}

#[derive(Debug, Clone, Copy)]
pub struct OrderRef<'a> {
    pub order_id: &'a str,
    pub number: &'a str,
    pub source: &'a str,
}

/// What happened to the order: bought for an amount, or (part of) it refunded.
#[derive(Debug, Clone, Copy)]
pub enum Fact<'a> {
    Purchase { amount: &'a str, currency: &'a str },
    Refund { refund_id: &'a str, amount: &'a str, currency: &'a str, full: bool },
}

/// Records `fact` on the buyer's contact inside the consumer's tenant transaction; the source key
/// (the order, or the refund) makes a repeated event add nothing. An order without a usable
/// buyer (no name, email or phone) is not in the book.
pub async fn record(
    tx: &mut PgConnection,
    tenant: TenantId,
    buyer: &Buyer<'_>,
    order: &OrderRef<'_>,
    fact: &Fact<'_>,
    occurred_at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    let person = Person { name: buyer.name, email: buyer.email, phone: buyer.phone, language: None };
    let source = if order.source.is_empty() { "store".to_owned() } else { format!("store:{}", order.source) };
    let found = find_or_add(tx, tenant, &person, &source, ("purchase", Stage::Customer), Some(Stage::Customer)).await?;
    let Some((contact, _)) = found else {
        tracing::info!(order = order.order_id, "order without a usable buyer: not added to the book");
        return Ok(());
    };
    let (kind, key, data) = match *fact {
        Fact::Purchase { amount, currency } => (
            "purchase",
            format!("purchase:{}", order.order_id),
            serde_json::json!({ "order_id": order.order_id, "order_number": order.number,
                "source": order.source, "amount": amount, "currency": currency }),
        ),
        Fact::Refund { refund_id, amount, currency, full } => (
            "refund",
            format!("refund:{}:{refund_id}", order.order_id),
            serde_json::json!({ "order_id": order.order_id, "order_number": order.number,
                "refund_id": refund_id, "amount": amount, "currency": currency, "full": full }),
        ),
    };
    let activity = repo::activities::NewActivity {
        contact,
        kind,
        body: "",
        data,
        actor: ACTOR,
        occurred_at: occurred_at.unwrap_or_else(Utc::now),
        source_key: Some(&key),
    };
    repo::activities::insert(tx, tenant, &activity).await.map(|_| ())
}
