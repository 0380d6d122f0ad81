//! Local mode end to end, offline: the sample catalogue and local store; import → price →
//! publish → order → fulfil → sale and commission → refund reverses them. Plus bad input and
//! other workspaces' ids.

use nexus_platform::identity::Role;
use nexus_proto::nexus::commerce::v1 as pb;

use crate::support::{Service, code};

#[tokio::test]
async fn import_price_publish_order_fulfil_and_commission_offline() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let supplier = s.connect_local(&admin, "supplier").await;
    let store = s.connect_local(&admin, "store").await;
    assert_eq!((supplier.provider.as_str(), supplier.role.as_str()), ("local", "supplier"));

    let found = c
        .search_catalogue(admin.req(pb::SearchCatalogueRequest {
            connection_id: supplier.id.clone(),
            keyword: "mug".into(),
            ship_from: "DE".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.provider, "local");
    assert!(!found.items.is_empty());
    let item = &found.items[0];
    assert_eq!(item.price.as_ref().unwrap().currency, "EUR");

    c.put_pricing_rule(admin.req(pb::PricingRule {
        scope: "default".into(),
        markup_percent: "50".into(),
        markup_fixed: "1.00".into(),
        compare_at_percent: "20".into(),
        rounding: "cents95".into(),
        currency: "USD".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let product = c
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: supplier.id.clone(),
            supplier_product_id: item.supplier_product_id.clone(),
            currency: "USD".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    // Importing again answers the same product.
    let again = c
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: supplier.id.clone(),
            supplier_product_id: item.supplier_product_id.clone(),
            currency: "USD".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, product.id);
    let v = product.variants.iter().find(|v| v.stock > 0).unwrap_or(&product.variants[0]).clone();
    // EUR cost converted to USD with the latest offline rate, recorded on the price.
    assert_eq!(v.cost.as_ref().unwrap().currency, "EUR");
    assert_eq!(v.price.as_ref().unwrap().currency, "USD");
    assert_ne!(v.rate, "1");
    assert_eq!(v.rate_day, "2026-11-13");
    assert!(v.price.as_ref().unwrap().value.ends_with(".95"), "{:?}", v.price);
    assert!(v.compare_at.ends_with(".95"), "{}", v.compare_at);

    let published = c
        .publish_product(
            admin.req(pb::PublishProductRequest {
                product_id: product.id.clone(),
                store_connection_id: store.id.clone(),
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(published.store_product_id.starts_with("local:"));

    c.put_commission_rule(admin.req(pb::CommissionRule {
        scope: "affiliate".into(),
        scope_ref: "aff-7".into(),
        beneficiary: "aff-7".into(),
        kind: "percentage".into(),
        value: "10".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let order = c
        .create_order(admin.req(pb::CreateOrderRequest {
            idempotency_key: "local-1".into(),
            currency: "USD".into(),
            customer: Some(pb::Customer {
                name: "Ana".into(),
                email: "ana@example.com".into(),
                country_code: "BR".into(),
                ..Default::default()
            }),
            lines: vec![pb::OrderLine {
                variant_id: v.id.clone(),
                quantity: 1,
                price: "20.00".into(),
                ..Default::default()
            }],
            shipping: "5.00".into(),
            paid: true,
            affiliate: "aff-7".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let done = c
        .fulfil_order(admin.req(pb::FulfilOrderRequest {
            order_id: order.id.clone(),
            supplier_connection_id: supplier.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.status, "fulfilled");
    assert!(done.tracking_numbers[0].starts_with("LOCALTRACK"));

    let sales = c.list_sales(admin.req(Default::default())).await.unwrap().into_inner().sales;
    assert_eq!(sales.len(), 1);
    let sale = &sales[0];
    assert_eq!(sale.revenue.as_ref().unwrap().value, "25.00");
    // 2.9 % of 25.00 + 0.30 = 1.025 → 1.03
    assert_eq!(sale.payment_fee.as_ref().unwrap().value, "1.03");
    assert_eq!(
        s.scalar("SELECT count(*) FROM commerce.commissions WHERE status = 'earned' AND amount = 2.50").await,
        1
    );
    assert_eq!(s.events("commerce.commission.earned").await, 1);

    // The same idempotency key answers the same order.
    let twin = c
        .create_order(admin.req(pb::CreateOrderRequest {
            idempotency_key: "local-1".into(),
            currency: "USD".into(),
            lines: vec![pb::OrderLine { variant_id: v.id.clone(), quantity: 9, ..Default::default() }],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(twin.id, order.id);

    let refunded = c.refund_order(admin.req(pb::GetByIdRequest { id: order.id.clone() })).await.unwrap().into_inner();
    assert_eq!(refunded.status, "refunded");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.commissions WHERE status = 'reversed'").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales WHERE status = 'reversed'").await, 1);
    assert_eq!(s.events("commerce.commission.earned").await, 2, "the reversal is announced too");

    // The month's payout statement: earned and reversed reconcile to a net of zero.
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let st = c
        .get_payout_statement(
            admin.req(pb::PayoutStatementRequest { period: period.clone(), beneficiary: String::new() }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.lines.len(), 2);
    assert_eq!(st.totals.len(), 1);
    let t = &st.totals[0];
    assert_eq!(
        (t.beneficiary.as_str(), t.earned.as_str(), t.reversed.as_str(), t.net.as_str()),
        ("aff-7", "2.50", "2.50", "0.00")
    );
    assert_eq!(st.csv.lines().count(), 4, "{}", st.csv);
    let e = c
        .get_payout_statement(
            admin.req(pb::PayoutStatementRequest { period: "2026-13".into(), beneficiary: String::new() }),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "commerce.period_invalid");
}

#[tokio::test]
async fn bad_input_is_refused_with_nothing_changed() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let supplier = s.connect_local(&admin, "supplier").await;

    let bad_rules = [
        pb::PricingRule { scope: "galaxy".into(), ..Default::default() },
        pb::PricingRule { scope: "default".into(), markup_percent: "-5".into(), ..Default::default() },
        pb::PricingRule { scope: "default".into(), markup_percent: "1e3".into(), ..Default::default() },
        pb::PricingRule { scope: "default".into(), rounding: "cents42".into(), ..Default::default() },
        pb::PricingRule { scope: "category".into(), scope_ref: "".into(), ..Default::default() },
        pb::PricingRule { scope: "default".into(), currency: "XYZ".into(), ..Default::default() },
    ];
    for r in bad_rules {
        let e = c.put_pricing_rule(admin.req(r.clone())).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{r:?}: {e:?}");
    }
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.pricing_rules").await, 0);

    for (provider, field) in [("paypal", "provider"), ("shopify", "shop_domain"), ("cj", "api_key")] {
        let e = c
            .create_connection(admin.req(pb::ConnectRequest {
                provider: provider.into(),
                shop_domain: "evil.example.com".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{field}: {e:?}");
    }
    let e = c
        .create_connection(admin.req(pb::ConnectRequest {
            provider: "cj".into(),
            api_key: "CJ0@api@wrong".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "commerce.credentials_refused");

    let e = c
        .search_catalogue(admin.req(pb::SearchCatalogueRequest {
            connection_id: supplier.id.clone(),
            min_price: "9".into(),
            max_price: "1".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "commerce.search_invalid");
    let e = c
        .create_order(admin.req(pb::CreateOrderRequest {
            idempotency_key: "x".into(),
            currency: "USD".into(),
            lines: vec![pb::OrderLine {
                variant_id: "var_00000000000000000000000000000000".into(),
                quantity: 1,
                ..Default::default()
            }],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c
        .create_order(admin.req(pb::CreateOrderRequest {
            idempotency_key: "y".into(),
            currency: "USD".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "commerce.order_invalid");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders").await, 0);

    // A viewer reads but does not change; a member cannot connect stores.
    let viewer = s.as_role(&admin, Role::Viewer);
    assert!(c.list_products(viewer.req(Default::default())).await.is_ok());
    let e = c
        .import_product(viewer.req(pb::ImportProductRequest {
            connection_id: supplier.id.clone(),
            supplier_product_id: "LOC0001".into(),
            currency: "".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let member = s.as_role(&admin, Role::Member);
    let e = c
        .create_connection(member.req(pb::ConnectRequest {
            provider: "local".into(),
            role: "store".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn another_workspace_sees_nothing_and_secrets_are_sealed() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let supplier = s.connect_local(&admin, "supplier").await;
    let cj = s.connect_cj(&admin).await;
    let product = c
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: supplier.id.clone(),
            supplier_product_id: "LOC0002".into(),
            currency: "".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let other = s.admin();
    let e = c.get_product(other.req(pb::GetByIdRequest { id: product.id.clone() })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c
        .import_product(other.req(pb::ImportProductRequest {
            connection_id: supplier.id.clone(),
            supplier_product_id: "LOC0003".into(),
            currency: "".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c.check_connection(other.req(pb::GetByIdRequest { id: cj.id.clone() })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(c.list_connections(other.req(Default::default())).await.unwrap().into_inner().connections.is_empty());
    // The database holds no key or token in clear, nor does the audit trail.
    let leaked = s
        .scalar(&format!(
            "SELECT count(*) FROM commerce.connections WHERE credentials LIKE '%{}%' OR credentials LIKE '%cj-access%'",
            nexus_testkit::cj::TEST_API_KEY
        ))
        .await;
    assert_eq!(leaked, 0);
    let audited = s.scalar("SELECT count(*) FROM commerce.outbox WHERE audit::text LIKE '%cj-access%' OR audit::text LIKE '%CJ1234567@api%'").await;
    assert_eq!(audited, 0);
    // The sealed credentials still work: a check reaches CJ.
    let checked = c.check_connection(admin.req(pb::GetByIdRequest { id: cj.id.clone() })).await.unwrap().into_inner();
    assert_eq!(checked.status, "active");
}

#[tokio::test]
async fn a_dsers_product_export_is_imported_once() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let supplier = s.connect_local(&admin, "supplier").await;
    let csv = "Product ID,Product Title,Variant ID,SKU,Variant,Cost,Currency,Stock\n\
               DS1001,Ceramic Mug,11,MUG-BLK,Color:Black,3.10,USD,40\n\
               DS1001,Ceramic Mug,12,MUG-WHT,Color:White,3.25,USD,0\n\
               DS1002,Desk Lamp,21,LAMP-1,,12.00,EUR,5\n\
               DS1003,Broken,31,X,,twelve,USD,1\n";
    let req = || pb::DsersImportRequest {
        connection_id: supplier.id.clone(),
        csv: csv.as_bytes().to_vec(),
        currency: "USD".into(),
    };
    let r = c.import_dsers_products(admin.req(req())).await.unwrap().into_inner();
    assert_eq!((r.rows, r.imported, r.already_imported), (4, 2, 0));
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, 5);
    let again = c.import_dsers_products(admin.req(req())).await.unwrap().into_inner();
    assert_eq!((again.imported, again.already_imported), (0, 2));
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_products").await, 2);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.product_variants").await, 3);
    let e = c
        .import_dsers_products(admin.req(pb::DsersImportRequest {
            connection_id: supplier.id.clone(),
            csv: b"Name\nx\n".to_vec(),
            currency: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "commerce.dsers_file_invalid");
    let other = s.admin();
    let e = c.import_dsers_products(other.req(req())).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}
