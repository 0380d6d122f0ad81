//! The fulfilment saga through CJ: success, tracking synced to the store, and the compensation
//! path when CJ fails after the buyer paid.

use nexus_proto::nexus::commerce::v1 as pb;

use crate::support::{Caller, Service, code};

fn buyer() -> pb::Customer {
    pb::Customer {
        name: "Ana Silva".into(),
        email: "ana@example.com".into(),
        phone: "+14155550100".into(),
        address1: "1 Market St".into(),
        city: "San Francisco".into(),
        province: "CA".into(),
        zip: "94105".into(),
        country_code: "US".into(),
        ..Default::default()
    }
}

/// A CJ supplier, one imported product and a paid manual order of its first variant.
async fn paid_cj_order(s: &Service, admin: &Caller) -> (pb::Connection, pb::Order) {
    let cj = s.connect_cj(admin).await;
    let mut c = s.client().await;
    let product = c
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: cj.id.clone(),
            supplier_product_id: "CJPID0001".into(),
            currency: "USD".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(product.variants.len(), 2);
    let order = c
        .create_order(admin.req(pb::CreateOrderRequest {
            idempotency_key: "order-1".into(),
            currency: "USD".into(),
            customer: Some(buyer()),
            lines: vec![pb::OrderLine {
                variant_id: product.variants[0].id.clone(),
                quantity: 2,
                ..Default::default()
            }],
            paid: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.status, "paid");
    (cj, order)
}

#[tokio::test]
async fn a_cj_failure_after_payment_is_compensated_visibly() {
    let s = Service::start().await;
    let admin = s.admin();
    let (cj, order) = paid_cj_order(&s, &admin).await;
    s.cj.fail_orders(1603100, "Insufficient balance");
    let out = s
        .client()
        .await
        .fulfil_order(admin.req(pb::FulfilOrderRequest {
            order_id: order.id.clone(),
            supplier_connection_id: cj.id.clone(),
            pay_with: "balance".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.status, "fulfilment_failed");
    assert!(out.failure.contains("Insufficient balance"), "{}", out.failure);
    assert!(out.failure.contains("refund was requested"), "{}", out.failure);
    assert!(out.supplier_order_id.is_empty());
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders WHERE refund_requested_at IS NOT NULL").await, 1);
    let alerts = s.client().await.list_alerts(admin.req(Default::default())).await.unwrap().into_inner().alerts;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "fulfilment_failed");
    let detail: serde_json::Value = serde_json::from_str(&alerts[0].detail_json).unwrap();
    assert_eq!(detail["refund_requested"], true);
    // The state is readable later, and the sale of the paid order still stands.
    let again =
        s.client().await.get_order(admin.req(pb::GetByIdRequest { id: order.id.clone() })).await.unwrap().into_inner();
    assert_eq!(again.status, "fulfilment_failed");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales WHERE status = 'recorded'").await, 1);
    assert!(s.cj.orders().is_empty());
}

#[tokio::test]
async fn a_cj_order_is_placed_then_its_tracking_synced() {
    let s = Service::start().await;
    let admin = s.admin();
    let (cj, order) = paid_cj_order(&s, &admin).await;
    let mut c = s.client().await;
    let req = || pb::FulfilOrderRequest {
        order_id: order.id.clone(),
        supplier_connection_id: cj.id.clone(),
        ..Default::default()
    };
    let out = c.fulfil_order(admin.req(req())).await.unwrap().into_inner();
    assert_eq!(out.status, "fulfilling");
    let placed = s.cj.orders();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].pay_type, 2, "paid from the CJ balance");
    assert_eq!(placed[0].products[0]["vid"], "CJVID00011");
    assert_eq!(out.supplier_order_id, placed[0].order_id);
    // Not shipped yet: nothing changes.
    c.run_monitoring(admin.req(pb::Empty {})).await.unwrap();
    assert_eq!(
        c.get_order(admin.req(pb::GetByIdRequest { id: order.id.clone() })).await.unwrap().into_inner().status,
        "fulfilling"
    );
    s.cj.ship(&placed[0].order_id, "YT2026110300001");
    c.run_monitoring(admin.req(pb::Empty {})).await.unwrap();
    let done = c.get_order(admin.req(pb::GetByIdRequest { id: order.id.clone() })).await.unwrap().into_inner();
    assert_eq!(done.status, "fulfilled");
    assert_eq!(done.tracking_numbers, ["YT2026110300001"]);
    assert_eq!(s.events("commerce.order.fulfilled").await, 1);
    // A fulfilled order is not sent again.
    let e = c.fulfil_order(admin.req(req())).await.unwrap_err();
    assert_eq!(code(&e), "commerce.order_not_fulfillable");
    assert_eq!(s.cj.orders().len(), 1);
}

#[tokio::test]
async fn fulfilment_refuses_bad_input_and_other_workspaces() {
    let s = Service::start().await;
    let admin = s.admin();
    let (cj, order) = paid_cj_order(&s, &admin).await;
    let mut c = s.client().await;
    let other = s.admin();
    let e = c
        .fulfil_order(other.req(pb::FulfilOrderRequest {
            order_id: order.id.clone(),
            supplier_connection_id: cj.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c
        .fulfil_order(admin.req(pb::FulfilOrderRequest {
            order_id: order.id.clone(),
            supplier_connection_id: cj.id.clone(),
            pay_with: "credit-card".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = c
        .fulfil_order(admin.req(pb::FulfilOrderRequest {
            order_id: "ord_nope".into(),
            supplier_connection_id: cj.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let viewer = s.as_role(&admin, nexus_platform::identity::Role::Viewer);
    let e = c
        .fulfil_order(viewer.req(pb::FulfilOrderRequest {
            order_id: order.id.clone(),
            supplier_connection_id: cj.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders WHERE status = 'paid'").await, 1);
    assert!(s.cj.orders().is_empty());
}

#[tokio::test]
async fn aliexpress_connects_with_a_signed_session_and_imports_by_id() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let ae = s
        .connect(
            &admin,
            pb::ConnectRequest {
                provider: "aliexpress".into(),
                app_key: nexus_testkit::aliexpress::TEST_APP_KEY.into(),
                app_secret: nexus_testkit::aliexpress::TEST_APP_SECRET.into(),
                auth_code: nexus_testkit::aliexpress::TEST_AUTH_CODE.into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!((ae.provider.as_str(), ae.role.as_str()), ("aliexpress", "supplier"));
    assert!(s.aliexpress.requests().iter().all(|(_, _, signed)| *signed));
    let product = c
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: ae.id.clone(),
            supplier_product_id: "1005006".into(),
            currency: "USD".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(product.variants.len(), 2);
    assert_eq!(product.images.len(), 2);
    let e = c
        .search_catalogue(admin.req(pb::SearchCatalogueRequest {
            connection_id: ae.id.clone(),
            keyword: "mug".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "commerce.search_unsupported");
    let e = c
        .create_connection(admin.req(pb::ConnectRequest {
            provider: "aliexpress".into(),
            app_key: nexus_testkit::aliexpress::TEST_APP_KEY.into(),
            app_secret: "wrong".into(),
            auth_code: nexus_testkit::aliexpress::TEST_AUTH_CODE.into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "commerce.credentials_refused");
}
