//! The schema: it migrates (twice, as deployments do), and every tenant table is protected.

use nexus_testkit::TestDb;

#[tokio::test]
async fn every_table_is_under_rls_and_audited() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let cfg = db.config("commerce");
    for _ in 0..2 {
        nexus_platform::db::migrate("commerce", &cfg, Some(&nexus_commerce::MIGRATIONS)).await.unwrap();
    }
    let tables = nexus_testkit::db::assert_tenant_tables_protected(&db.admin_pool().await, "commerce").await;
    for t in [
        "connections",
        "pricing_rules",
        "dropshipping_products",
        "product_variants",
        "price_history",
        "alerts",
        "orders",
        "webhook_receipts",
        "dropshipping_sales",
        "commission_rules",
        "commissions",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} is not a protected tenant table: {tables:?}");
    }
}

#[tokio::test]
async fn a_production_start_refuses_the_development_keys() {
    use nexus_platform::config::DevelopmentDefaults;
    let db = TestDb::new().await;
    let nats = nexus_testkit::TestNats::new();
    let cfg: nexus_commerce::Config = nexus_testkit::service::service_config(
        "commerce",
        nexus_commerce::DEFAULTS,
        &db,
        &nats,
        &[("NEXUS_ENVIRONMENT", "production".into())],
    );
    let keys: Vec<String> = cfg.development_only().into_iter().map(|d| d.key.to_string()).collect();
    assert!(keys.iter().any(|k| k == "commerce.sealing_keys"), "{keys:?}");
    assert!(keys.iter().any(|k| k == "shopify.webhook_secrets"), "{keys:?}");
    // The sample catalogue is off in production unless chosen by name.
    assert!(!cfg.local_enabled());
}

#[tokio::test]
async fn listing_connections_needs_a_token_and_starts_empty() {
    use nexus_proto::nexus::commerce::v1 as pb;
    let s = crate::support::Service::start().await;
    let mut c = s.client().await;
    let anonymous = c.list_connections(pb::ListRequest::default()).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let (_, token) = s.token(nexus_platform::identity::Role::Viewer);
    let list = c.list_connections(nexus_testkit::identity::authed(pb::ListRequest::default(), &token)).await.unwrap();
    assert!(list.into_inner().connections.is_empty());
}
