//! The schema: it migrates (twice, as deployments do), and every table is a protected tenant table.

use nexus_testkit::TestDb;

#[tokio::test]
async fn every_table_is_under_rls_and_audited() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let cfg = db.config("messaging");
    for _ in 0..2 {
        nexus_platform::db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
    }
    let tables = nexus_testkit::db::assert_tenant_tables_protected(&db.admin_pool().await, "messaging").await;
    for t in [
        "book_settings",
        "contacts",
        "contact_identities",
        "field_definitions",
        "consents",
        "activities",
        "pipeline_stages",
        "deals",
        "segments",
        "merges",
        "imports",
        "import_errors",
        "webhook_endpoints",
        "webhook_messages",
        "webhook_deliveries",
        "webhook_attempts",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} is not a protected tenant table: {tables:?}");
    }
}

#[tokio::test]
async fn the_database_refuses_what_the_domain_refuses() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let cfg = db.config("messaging");
    nexus_platform::db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
    let admin = db.admin_pool().await;
    let insert = |phone: &'static str, email: &'static str| {
        let admin = admin.clone();
        async move {
            sqlx::query("INSERT INTO messaging.contacts (id, tenant_id, phone, email) VALUES (gen_random_uuid(), $1, nullif($2, ''), nullif($3, ''))")
                .bind(uuid::Uuid::nil())
                .bind(phone)
                .bind(email)
                .execute(&admin)
                .await
        }
    };
    insert("+5511987654321", "ana@example.com").await.unwrap();
    // Not E.164, not lower-case, and a second live contact with the same phone or email.
    assert!(insert("11987654321", "").await.is_err());
    assert!(insert("", "Ana@Example.com").await.is_err());
    assert!(insert("+5511987654321", "").await.is_err());
    assert!(insert("", "ana@example.com").await.is_err());
}
