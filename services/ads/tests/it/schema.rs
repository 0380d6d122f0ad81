//! The schema: it migrates (twice, as deployments do), and every tenant table is protected.

use nexus_testkit::TestDb;

#[tokio::test]
async fn every_table_is_under_rls_and_audited() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let cfg = db.config("ads");
    for _ in 0..2 {
        nexus_platform::db::migrate("ads", &cfg, Some(&nexus_ads::MIGRATIONS)).await.unwrap();
    }
    let tables = nexus_testkit::db::assert_tenant_tables_protected(&db.admin_pool().await, "ads").await;
    for t in ["oauth_states", "connections", "connection_accounts", "campaigns", "post_media"] {
        assert!(tables.iter().any(|x| x == t), "{t} is not a protected tenant table: {tables:?}");
    }
}

#[tokio::test]
async fn a_production_start_refuses_the_development_defaults() {
    use nexus_platform::config::DevelopmentDefaults;
    let db = TestDb::new().await;
    let nats = nexus_testkit::TestNats::new();
    let cfg: nexus_ads::Config = nexus_testkit::service::service_config(
        "ads",
        nexus_ads::DEFAULTS,
        &db,
        &nats,
        &[("NEXUS_ENVIRONMENT", "production".into()), ("NEXUS_SANDBOX__ENABLED", "true".into())],
    );
    let keys: Vec<String> = cfg.development_only().into_iter().map(|d| d.key.to_string()).collect();
    for k in ["ads.sealing_keys", "sandbox.enabled", "oauth.redirect_allowlist", "media.signing_keys"] {
        assert!(keys.iter().any(|x| x == k), "{k} not refused: {keys:?}");
    }
    // Unset, the sandbox is off in production.
    let cfg: nexus_ads::Config = nexus_testkit::service::service_config(
        "ads",
        nexus_ads::DEFAULTS,
        &db,
        &nats,
        &[("NEXUS_ENVIRONMENT", "production".into())],
    );
    assert!(!cfg.sandbox_enabled());
}

#[tokio::test]
async fn calls_need_a_token_and_a_new_workspace_starts_empty() {
    use nexus_proto::nexus::ads::v1 as pb;
    let s = crate::support::Service::start().await;
    let mut c = s.client().await;
    let anonymous = c.list_connections(pb::ListRequest::default()).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let viewer = s.caller(nexus_platform::identity::Role::Viewer);
    assert!(
        c.list_connections(viewer.req(pb::ListRequest::default())).await.unwrap().into_inner().connections.is_empty()
    );
    assert!(c.list_campaigns(viewer.req(pb::ListRequest::default())).await.unwrap().into_inner().campaigns.is_empty());
}
