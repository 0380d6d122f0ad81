//! Commerce's store orders into the contact book: `order.created` adds the buyer's purchase,
//! `order.refunded` each refund, one durable consumer per subject (NATS 2.9 filters one subject
//! per consumer). The platform inbox and each activity's source key make a redelivery — or the
//! same fact under a new event id — change nothing; the refund carries the buyer too, so it
//! lands on the right contact whichever consumer runs first.

use nexus_platform::config::NatsConfig;
use nexus_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use nexus_proto::events as ev;
use prost::Name;
use sqlx::PgConnection;

use crate::app::purchases::{self, Buyer, Fact, OrderRef};

/// `(subject, durable)` of each consumer.
pub const SUBJECTS: [(&str, &str); 2] = [
    ("nexus.commerce.order.created", "messaging-orders-created"),
    ("nexus.commerce.order.refunded", "messaging-orders-refunded"),
];

pub fn specs(nats: &NatsConfig) -> Vec<ConsumerSpec> {
    SUBJECTS.iter().map(|(subject, durable)| ConsumerSpec::new("commerce", *durable, *subject, nats)).collect()
}

pub struct OrdersHandler;

#[async_trait::async_trait]
impl EventHandler for OrdersHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(tenant) = event.tenant else {
            return Err(HandleError::Permanent("an order event without a workspace".into()));
        };
        let at = event.envelope.occurred_at.as_ref().and_then(nexus_platform::grpc::from_ts);
        let t = event.envelope.event_type.as_str();
        if t == ev::CommerceOrderCreated::full_name() {
            let e: ev::CommerceOrderCreated = event.decode()?;
            let buyer = Buyer { name: &e.customer_name, email: &e.customer_email, phone: &e.customer_phone };
            let order = OrderRef { order_id: &e.order_id, number: &e.order_number, source: &e.source };
            let fact = Fact::Purchase { amount: &e.total, currency: &e.currency };
            purchases::record(tx, tenant, &buyer, &order, &fact, at).await?;
        } else if t == ev::CommerceOrderRefunded::full_name() {
            let e: ev::CommerceOrderRefunded = event.decode()?;
            if e.refund_id.is_empty() {
                return Err(HandleError::Permanent("a refund without its id".into()));
            }
            let buyer = Buyer { name: &e.customer_name, email: &e.customer_email, phone: &e.customer_phone };
            let order = OrderRef { order_id: &e.order_id, number: &e.order_number, source: "" };
            let fact = Fact::Refund { refund_id: &e.refund_id, amount: &e.amount, currency: &e.currency, full: e.full };
            purchases::record(tx, tenant, &buyer, &order, &fact, at).await?;
        } else {
            return Err(HandleError::Permanent(format!("unexpected event type {t}")));
        }
        Ok(())
    }
}
