//! Shopify order webhooks: verified against the raw body, deduplicated by webhook id, applied in
//! any order; a forged one changes nothing.

use std::collections::HashMap;

use nexus_proto::nexus::webhooks::v1::DeliverWebhookRequest;
use serde_json::{Value, json};

use crate::support::Service;

const SECRET: &str = "nexus-dev-shopify-client-secret";

pub(crate) fn order(financial: &str, updated_at: &str) -> Value {
    json!({
        "id": 5_550_001_u64, "name": "#1001", "currency": "USD", "financial_status": financial,
        "email": "ana@example.com", "subtotal_price": "39.98", "total_tax": "0.00", "total_price": "44.97",
        "total_shipping_price_set": {"shop_money": {"amount": "4.99", "currency_code": "USD"}},
        "created_at": "2026-11-03T10:00:00Z", "updated_at": updated_at, "processed_at": "2026-11-03T10:00:00Z",
        "line_items": [{"id": 1, "sku": "SKU-LOC0001-11", "quantity": 2, "price": "19.99", "title": "Mug", "vendor": "Acme"}],
        "shipping_address": {"name": "Ana Silva", "address1": "1 Market St", "city": "SF", "zip": "94105", "country_code": "US", "phone": "+14155550100"},
    })
}

fn delivery(topic: &str, id: &str, body: &[u8], signature: &str, shop: &str) -> DeliverWebhookRequest {
    let headers: HashMap<String, String> = [
        ("x-shopify-topic", topic),
        ("x-shopify-webhook-id", id),
        ("x-shopify-hmac-sha256", signature),
        ("x-shopify-shop-domain", shop),
        ("content-type", "application/json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    DeliverWebhookRequest {
        provider: "shopify".into(),
        method: "POST".into(),
        query: String::new(),
        headers,
        body: body.to_vec(),
    }
}

pub(crate) fn signed(topic: &str, id: &str, body: &Value) -> DeliverWebhookRequest {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = nexus_providers::shopify::sign_webhook(SECRET, &bytes);
    delivery(topic, id, &bytes, &sig, nexus_testkit::shopify::TEST_SHOP)
}

pub(crate) async fn deliver(s: &Service, d: DeliverWebhookRequest) -> (u32, Value) {
    let r = s.webhooks().await.deliver(d).await.unwrap().into_inner();
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

#[tokio::test]
async fn an_order_delivered_twice_creates_one_order() {
    let s = Service::start().await;
    let admin = s.admin();
    s.connect_shopify(&admin).await;
    let d = signed("orders/create", "wh-1", &order("paid", "2026-11-03T10:00:00Z"));
    let (status, body) = deliver(&s, d.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "paid");
    let (status, body) = deliver(&s, d).await;
    assert_eq!(status, 200);
    assert_eq!(body["duplicate"], true);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales").await, 1);
    assert_eq!(s.events("commerce.order.created").await, 1);
    // The order is the store's, in the workspace that connected the shop.
    let list = s.client().await.list_orders(admin.req(Default::default())).await.unwrap().into_inner();
    assert_eq!(list.orders.len(), 1);
    assert_eq!(list.orders[0].external_id, "5550001");
    assert_eq!(list.orders[0].total.as_ref().unwrap().value, "44.97");
    let other = s.admin();
    let theirs = s.client().await.list_orders(other.req(Default::default())).await.unwrap().into_inner();
    assert!(theirs.orders.is_empty());
}

#[tokio::test]
async fn a_forged_signature_is_refused_and_changes_nothing() {
    let s = Service::start().await;
    s.connect_shopify(&s.admin()).await;
    let body = serde_json::to_vec(&order("paid", "2026-11-03T10:00:00Z")).unwrap();
    for sig in [nexus_providers::shopify::sign_webhook("not-the-secret", &body), String::new(), "AAAA".into()] {
        let (status, answer) =
            deliver(&s, delivery("orders/create", "wh-f", &body, &sig, nexus_testkit::shopify::TEST_SHOP)).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"]["code"], "webhooks.invalid_signature");
    }
    // A body changed after signing.
    let sig = nexus_providers::shopify::sign_webhook(SECRET, &body);
    let mut tampered = body.clone();
    tampered.push(b' ');
    let (status, _) =
        deliver(&s, delivery("orders/create", "wh-f", &tampered, &sig, nexus_testkit::shopify::TEST_SHOP)).await;
    assert_eq!(status, 401);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.webhook_receipts").await, 0);
}

#[tokio::test]
async fn orders_updated_before_orders_create_ends_in_the_right_state() {
    let s = Service::start().await;
    s.connect_shopify(&s.admin()).await;
    // The update (paid, later) arrives first; the creation (pending, earlier) after it.
    let (_, body) = deliver(&s, signed("orders/updated", "wh-2", &order("paid", "2026-11-03T10:05:00Z"))).await;
    assert_eq!(body["status"], "paid");
    let (status, body) = deliver(&s, signed("orders/create", "wh-1", &order("pending", "2026-11-03T10:00:00Z"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "paid", "the older version changed nothing");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders WHERE status = 'paid'").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales").await, 1);
    // A later refund reverses the sale.
    let (_, body) = deliver(&s, signed("orders/updated", "wh-3", &order("refunded", "2026-11-04T09:00:00Z"))).await;
    assert_eq!(body["status"], "refunded");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales WHERE status = 'reversed'").await, 1);
    assert_eq!(s.events("commerce.order.refunded").await, 1);
}

#[tokio::test]
async fn unreadable_payloads_and_unknown_shops() {
    let s = Service::start().await;
    s.connect_shopify(&s.admin()).await;
    let mut bad = order("paid", "2026-11-03T10:00:00Z");
    bad["currency"] = json!("DOGE");
    let (status, body) = deliver(&s, signed("orders/create", "wh-9", &bad)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "commerce.order_payload_invalid");
    // The delivery id was not spent: the corrected retry applies.
    let (status, body) = deliver(&s, signed("orders/create", "wh-9", &order("paid", "2026-11-03T10:00:00Z"))).await;
    assert_eq!((status, body["status"].clone()), (200, json!("paid")));
    let bytes = serde_json::to_vec(&order("paid", "2026-11-03T10:00:00Z")).unwrap();
    let sig = nexus_providers::shopify::sign_webhook(SECRET, &bytes);
    let (status, body) = deliver(&s, delivery("orders/create", "wh-10", &bytes, &sig, "nobody.myshopify.com")).await;
    assert_eq!((status, body["applied"].clone()), (200, json!(false)));
    let (status, _) = deliver(&s, delivery("orders/create", "", &bytes, &sig, nexus_testkit::shopify::TEST_SHOP)).await;
    assert_eq!(status, 400);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders").await, 1);
}

#[tokio::test]
async fn connecting_a_store_registers_its_order_webhooks() {
    let s = Service::start_with(&[(
        "NEXUS_SHOPIFY_WEBHOOKS__CALLBACK_URL",
        "https://api.example.com/webhooks/shopify".into(),
    )])
    .await;
    let store = s.connect_shopify(&s.admin()).await;
    assert_eq!((store.role.as_str(), store.account.as_str()), ("store", nexus_testkit::shopify::TEST_SHOP));
    let hooks = s.shopify.webhooks();
    assert!(hooks.iter().all(|(_, url)| url == "https://api.example.com/webhooks/shopify"), "{hooks:?}");
    let topics: Vec<&str> = hooks.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID", "ORDERS_CANCELLED"]);
}

#[tokio::test]
async fn refunding_a_store_order_cancels_it_at_the_store_once() {
    let s = Service::start().await;
    let admin = s.admin();
    s.connect_shopify(&admin).await;
    let (status, _) = deliver(&s, signed("orders/create", "wh-r1", &order("paid", "2026-11-03T10:00:00Z"))).await;
    assert_eq!(status, 200);
    let mut c = s.client().await;
    let id = c.list_orders(admin.req(Default::default())).await.unwrap().into_inner().orders[0].id.clone();
    let refund = nexus_proto::nexus::commerce::v1::GetByIdRequest { id: id.clone() };
    let done = c.refund_order(admin.req(refund.clone())).await.unwrap().into_inner();
    assert_eq!(done.status, "refunded");
    // Cancelled at the store with the refund and restock, once; the sale is reversed here.
    let cancels = s.shopify.cancellations();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].0, "gid://shopify/Order/5550001");
    let query = cancels[0].1["query"].as_str().unwrap();
    assert!(query.contains("refund: true") && query.contains("restock: true"), "{query}");
    assert_eq!(s.events("commerce.order.refunded").await, 1);
    // Refunding again changes nothing anywhere.
    c.refund_order(admin.req(refund)).await.unwrap();
    assert_eq!(s.shopify.cancellations().len(), 1);
    assert_eq!(s.events("commerce.order.refunded").await, 1);
    // Another workspace cannot refund it.
    let other = s.admin();
    let e = c.refund_order(other.req(nexus_proto::nexus::commerce::v1::GetByIdRequest { id })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn an_order_already_cancelled_at_the_store_is_only_recorded_as_refunded() {
    let s = Service::start().await;
    let admin = s.admin();
    s.connect_shopify(&admin).await;
    deliver(&s, signed("orders/create", "wh-r2", &order("paid", "2026-11-03T10:00:00Z"))).await;
    // As after a refund whose answer was lost: the store has it cancelled already.
    s.shopify.cancel_in_admin("gid://shopify/Order/5550001");
    let mut c = s.client().await;
    let id = c.list_orders(admin.req(Default::default())).await.unwrap().into_inner().orders[0].id.clone();
    let done =
        c.refund_order(admin.req(nexus_proto::nexus::commerce::v1::GetByIdRequest { id })).await.unwrap().into_inner();
    assert_eq!(done.status, "refunded");
    assert_eq!(s.shopify.cancellations().len(), 1, "no second cancellation");
    assert!(!s.shopify.log().iter().any(|(op, _)| op == "orderCancel"));
}
