//! Price and stock monitoring against the fake CJ: a cost rise that drops the margin below the
//! threshold raises one alert and, within the limit, updates the store price once.

use nexus_proto::nexus::commerce::v1 as pb;

use crate::support::Service;

#[tokio::test]
async fn a_cost_rise_alerts_once_and_moves_the_store_price_once() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    c.put_pricing_rule(admin.req(pb::PricingRule {
        scope: "default".into(),
        markup_percent: "60".into(),
        rounding: "cents99".into(),
        currency: "USD".into(),
        min_margin_percent: "25".into(),
        max_auto_increase_percent: "30".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let cj = s.connect_cj(&admin).await;
    let store = s.connect_shopify(&admin).await;
    let product = c
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: cj.id.clone(),
            supplier_product_id: "CJPID0001".into(),
            currency: "USD".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    // 6.50 × 1.6 = 10.40 → 10.99, converted at rate 1 and recorded.
    let v = &product.variants[0];
    assert_eq!(v.price.as_ref().unwrap().value, "10.99");
    assert_eq!((v.rate.as_str(), v.rate_source.as_str()), ("1", "local"));
    c.publish_product(
        admin.req(pb::PublishProductRequest { product_id: product.id.clone(), store_connection_id: store.id.clone() }),
    )
    .await
    .unwrap();
    assert_eq!(s.shopify.products()[0].sets, 1);
    // Stock is set at the shop's primary location, as imported.
    let pushed = s.shopify.products()[0].input["variants"].clone();
    let first = pushed.as_array().unwrap().iter().find(|x| x["inventoryItem"]["sku"] == v.sku.as_str()).unwrap();
    assert_eq!(
        first["inventoryQuantities"],
        serde_json::json!([{"locationId": nexus_testkit::shopify::PRIMARY_LOCATION, "name": "available", "quantity": v.stock}])
    );

    // Unchanged supplier: nothing happens.
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.variants_checked, r.prices_changed, r.alerts_raised), (2, 0, 0));

    // The cost rises to 8.50: margin at 10.99 is 22.66 % < 25 %. The rule's price, 13.99, is
    // within 30 % of 10.99 (14.29): the price moves once and the store gets it once.
    s.cj.set_variant(&v.supplier_variant_id, "8.50", 100);
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.prices_changed, r.alerts_raised), (1, 1));
    let alerts = c.list_alerts(admin.req(Default::default())).await.unwrap().into_inner().alerts;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "margin_below_threshold");
    let after = c.get_product(admin.req(pb::GetByIdRequest { id: product.id.clone() })).await.unwrap().into_inner();
    let moved = after.variants.iter().find(|x| x.id == v.id).unwrap();
    assert_eq!(moved.price.as_ref().unwrap().value, "13.99");
    assert_eq!(moved.cost.as_ref().unwrap().value, "8.5");
    assert_eq!(s.shopify.products()[0].sets, 2);
    let pushed = &s.shopify.products()[0].input["variants"];
    assert!(pushed.as_array().unwrap().iter().any(|x| x["price"] == "13.99"), "{pushed}");
    assert_eq!(s.events("commerce.price.changed").await, 1);

    // The next sweep sees the same cost: no second alert, no second push.
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.prices_changed, r.alerts_raised), (0, 0));
    assert_eq!(c.list_alerts(admin.req(Default::default())).await.unwrap().into_inner().alerts.len(), 1);
    assert_eq!(s.shopify.products()[0].sets, 2);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.price_history").await, 1);

    // Stock alone changes at the supplier: the store gets the new quantity once, same price.
    s.cj.set_variant(&v.supplier_variant_id, "8.50", 7);
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.prices_changed, r.alerts_raised), (0, 0));
    assert_eq!(s.shopify.products()[0].sets, 3);
    let pushed = s.shopify.products()[0].input["variants"].clone();
    let now = pushed.as_array().unwrap().iter().find(|x| x["inventoryItem"]["sku"] == v.sku.as_str()).unwrap();
    assert_eq!((now["inventoryQuantities"][0]["quantity"].as_i64(), now["price"].as_str()), (Some(7), Some("13.99")));
    c.run_monitoring(admin.req(pb::Empty {})).await.unwrap();
    assert_eq!(s.shopify.products()[0].sets, 3);
}

#[tokio::test]
async fn running_out_of_stock_alerts_once() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let cj = s.connect_cj(&admin).await;
    let product = c
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: cj.id.clone(),
            supplier_product_id: "CJPID0002".into(),
            currency: "".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let v = &product.variants[0];
    s.cj.set_variant(&v.supplier_variant_id, "11.50", 0);
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.out_of_stock, r.alerts_raised, r.prices_changed), (1, 1, 0));
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.out_of_stock, r.alerts_raised), (0, 0));
    assert_eq!(s.events("commerce.stock.out").await, 1);

    // Back in stock: the alert is resolved (once), and running out again raises a new one.
    let open = "SELECT count(*) FROM commerce.alerts WHERE kind = 'out_of_stock' AND resolved_at IS NULL";
    assert_eq!(s.scalar(open).await, 1);
    s.cj.set_variant(&v.supplier_variant_id, "11.50", 7);
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.out_of_stock, r.alerts_raised), (0, 0));
    assert_eq!(s.scalar(open).await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.alerts WHERE resolved_at IS NOT NULL").await, 1);
    s.cj.set_variant(&v.supplier_variant_id, "11.50", 0);
    let r = c.run_monitoring(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!((r.out_of_stock, r.alerts_raised), (1, 1));
    assert_eq!(s.scalar(open).await, 1);
    assert_eq!(s.events("commerce.stock.out").await, 2);
}
