use crate::support;

#[tokio::test]
async fn every_tenant_table_is_under_rls() {
    let s = support::start().await;
    let tables = nexus_testkit::db::assert_tenant_tables_protected(&s.admin().await, "video").await;
    assert!(tables.contains(&"videos".to_owned()) && tables.contains(&"video_transitions".to_owned()), "{tables:?}");
}
