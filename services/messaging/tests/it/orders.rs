//! Commerce's store orders: each buyer becomes one contact (a customer) with one purchase
//! activity per order and one refund activity per refund, however often the events arrive, in
//! the order's workspace only, with no marketing consent.

use chrono::Utc;
use nexus_kernel::WorkspaceId;
use nexus_proto::events as ev;

use crate::support::*;

const CREATED: (&str, &str) = ("commerce", "nexus.commerce.order.created");
const REFUNDED: (&str, &str) = ("commerce", "nexus.commerce.order.refunded");

fn order(ws: WorkspaceId, id: &str, email: &str, phone: &str) -> ev::CommerceOrderCreated {
    ev::CommerceOrderCreated {
        workspace_id: ws.to_string(),
        order_id: id.into(),
        source: "shopify".into(),
        external_id: "450789469".into(),
        total: "59.90".into(),
        currency: "EUR".into(),
        customer_email: email.into(),
        customer_name: "Rosa Díaz".into(),
        customer_phone: phone.into(),
        order_number: "#1001".into(),
    }
}

async fn activities(svc: &Service, ws: WorkspaceId, kind: &str) -> Vec<(uuid::Uuid, serde_json::Value)> {
    sqlx::query_as(
        "SELECT contact_id, data FROM messaging.activities WHERE tenant_id = $1 AND kind = $2 ORDER BY occurred_at",
    )
    .bind(ws.as_uuid())
    .bind(kind)
    .fetch_all(&svc.admin_pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_buyer_becomes_one_customer_with_one_purchase_and_one_activity_per_refund() {
    let svc = Service::start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("commerce").await.unwrap();
    let ws = WorkspaceId::new();
    let other = WorkspaceId::new();

    // The refund's consumer may run before the order's: it finds or adds the same contact.
    let refund = ev::CommerceOrderRefunded {
        workspace_id: ws.to_string(),
        order_id: "ord_1".into(),
        amount: "10.00".into(),
        currency: "EUR".into(),
        refund_id: "rfnd_1".into(),
        full: false,
        order_number: "#1001".into(),
        customer_email: "Rosa@Example.com".into(),
        customer_name: "Rosa Díaz".into(),
        customer_phone: String::new(),
    };
    let refund_event = uuid::Uuid::now_v7();
    publish_event(&bus, REFUNDED, ws, refund_event, Utc::now(), &refund).await;
    publish_event(&bus, REFUNDED, ws, refund_event, Utc::now(), &refund).await;

    // The order twice under one event id (a redelivery) and once under another (re-sent).
    let first = order(ws, "ord_1", "rosa@example.com", "+34 612 345 678");
    let event_id = uuid::Uuid::now_v7();
    publish_event(&bus, CREATED, ws, event_id, Utc::now(), &first).await;
    publish_event(&bus, CREATED, ws, event_id, Utc::now(), &first).await;
    publish_event(&bus, CREATED, ws, uuid::Uuid::now_v7(), Utc::now(), &first).await;
    svc.wait_consumed_of("commerce", "messaging-orders-created", 3).await;
    svc.wait_consumed_of("commerce", "messaging-orders-refunded", 2).await;

    assert_eq!(svc.count(ws, "SELECT count(*) FROM messaging.contacts WHERE tenant_id = $1").await, 1);
    let (name, email, phone, stage): (String, Option<String>, Option<String>, String) =
        sqlx::query_as("SELECT name, email, phone, stage FROM messaging.contacts WHERE tenant_id = $1")
            .bind(ws.as_uuid())
            .fetch_one(&svc.admin_pool)
            .await
            .unwrap();
    assert_eq!(name, "Rosa Díaz");
    assert_eq!(email.as_deref(), Some("rosa@example.com"));
    // The phone came with the order, after the refund had added the contact.
    assert_eq!(phone.as_deref(), Some("+34612345678"));
    assert_eq!(stage, "customer");

    let purchases = activities(&svc, ws, "purchase").await;
    assert_eq!(purchases.len(), 1);
    let data = &purchases[0].1;
    assert_eq!(data["amount"], "59.90");
    assert_eq!(data["currency"], "EUR");
    assert_eq!(data["order_number"], "#1001");
    assert_eq!(data["order_id"], "ord_1");
    let refunds = activities(&svc, ws, "refund").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].0, purchases[0].0, "the refund is on the buyer's contact");
    assert_eq!(refunds[0].1["amount"], "10.00");
    assert_eq!(refunds[0].1["refund_id"], "rfnd_1");
    // Buying is no consent to marketing.
    assert_eq!(svc.count(ws, "SELECT count(*) FROM messaging.consents WHERE tenant_id = $1").await, 0);

    // A second refund of the same order is a second activity; a second order of the same buyer
    // (known by phone only) a second purchase of the same contact.
    let second_refund = ev::CommerceOrderRefunded { refund_id: "rfnd_2".into(), full: true, ..refund.clone() };
    publish_event(&bus, REFUNDED, ws, uuid::Uuid::now_v7(), Utc::now(), &second_refund).await;
    let again = order(ws, "ord_2", "", "+34612345678");
    publish_event(&bus, CREATED, ws, uuid::Uuid::now_v7(), Utc::now(), &again).await;
    svc.wait_consumed_of("commerce", "messaging-orders-created", 4).await;
    svc.wait_consumed_of("commerce", "messaging-orders-refunded", 3).await;
    assert_eq!(svc.count(ws, "SELECT count(*) FROM messaging.contacts WHERE tenant_id = $1").await, 1);
    assert_eq!(activities(&svc, ws, "purchase").await.len(), 2);
    assert_eq!(activities(&svc, ws, "refund").await.len(), 2);

    // The same buyer in another workspace is another contact; the first workspace is untouched.
    publish_event(
        &bus,
        CREATED,
        other,
        uuid::Uuid::now_v7(),
        Utc::now(),
        &order(other, "ord_9", "rosa@example.com", ""),
    )
    .await;
    svc.wait_consumed_of("commerce", "messaging-orders-created", 5).await;
    assert_eq!(svc.count(other, "SELECT count(*) FROM messaging.contacts WHERE tenant_id = $1").await, 1);
    assert_eq!(activities(&svc, other, "purchase").await.len(), 1);
    assert_eq!(svc.count(ws, "SELECT count(*) FROM messaging.contacts WHERE tenant_id = $1").await, 1);
    assert_eq!(activities(&svc, ws, "purchase").await.len(), 2);
}

#[tokio::test]
async fn a_purchase_moves_a_lead_forward_but_never_back() {
    let svc = Service::start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("commerce").await.unwrap();
    let ws = WorkspaceId::new();
    for (email, stage) in [("lead@example.com", "lead"), ("fan@example.com", "evangelist"), ("x@example.com", "other")]
    {
        sqlx::query(
            "INSERT INTO messaging.contacts (id, tenant_id, name, email, stage, source) VALUES ($1, $2, '', $3, $4, 'manual')",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(ws.as_uuid())
        .bind(email)
        .bind(stage)
        .execute(&svc.admin_pool)
        .await
        .unwrap();
    }
    for (i, email) in ["lead@example.com", "fan@example.com", "x@example.com"].into_iter().enumerate() {
        let o = order(ws, &format!("ord_{i}"), email, "");
        publish_event(&bus, CREATED, ws, uuid::Uuid::now_v7(), Utc::now(), &o).await;
    }
    svc.wait_consumed_of("commerce", "messaging-orders-created", 3).await;
    let stages: Vec<(String, String, String)> =
        sqlx::query_as("SELECT email, stage, name FROM messaging.contacts WHERE tenant_id = $1 ORDER BY email")
            .bind(ws.as_uuid())
            .fetch_all(&svc.admin_pool)
            .await
            .unwrap();
    let got: Vec<(&str, &str, &str)> = stages.iter().map(|(e, s, n)| (e.as_str(), s.as_str(), n.as_str())).collect();
    // The empty names are filled; stages move only from before a customer.
    assert_eq!(
        got,
        vec![
            ("fan@example.com", "evangelist", "Rosa Díaz"),
            ("lead@example.com", "customer", "Rosa Díaz"),
            ("x@example.com", "other", "Rosa Díaz")
        ]
    );
    assert_eq!(
        svc.count(ws, "SELECT count(*) FROM messaging.activities WHERE tenant_id = $1 AND kind = 'stage_change'").await,
        1
    );
}
