use nexus_kernel::TenantId;
use nexus_platform::RequestContext;
use nexus_platform::db::{begin_system, begin_tenant};
use nexus_testkit::TestDb;
use nexus_testkit::db::assert_tenant_tables_protected;

use crate::fixture::migrated;

#[tokio::test]
async fn tenant_transaction_sees_only_its_own_rows_even_without_where() {
    let db = TestDb::new().await;
    let (_, pool) = migrated(&db).await;
    let (a, b) = (TenantId::new(), TenantId::new());

    // The runtime connection is the service role: not a superuser, not the table owner.
    let (user, superuser): (String, bool) =
        sqlx::query_as("SELECT current_user::text, usesuper FROM pg_user WHERE usename = current_user")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(user, "nexus_fixture");
    assert!(!superuser);

    for (tenant, n) in [(a, 2), (b, 3)] {
        let mut tx = begin_tenant(&pool, tenant).await.unwrap();
        for i in 0..n {
            sqlx::query("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)")
                .bind(tenant.as_uuid())
                .bind(format!("note {i}"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }

    let mut tx = begin_tenant(&pool, a).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notes").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(count, 2, "tenant A must see only its own two rows");
    let updated = sqlx::query("UPDATE notes SET body = 'overwritten'").execute(&mut *tx).await.unwrap().rows_affected();
    assert_eq!(updated, 2);
    let deleted = sqlx::query("DELETE FROM notes WHERE tenant_id = $1")
        .bind(b.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "tenant A cannot delete B's rows even by naming them");
    tx.commit().await.unwrap();

    // Writing a row for another tenant is refused by the policy's WITH CHECK.
    let mut tx = begin_tenant(&pool, a).await.unwrap();
    let err = sqlx::query("INSERT INTO notes (tenant_id, body) VALUES ($1, 'smuggled')")
        .bind(b.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);

    // No tenant set: nothing visible at all.
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM notes").fetch_one(&pool).await.unwrap();
    assert_eq!(none, 0);

    // B's rows are untouched; a system transaction sees both tenants.
    let mut tx = begin_system(&pool).await.unwrap();
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, body FROM notes ORDER BY body").fetch_all(&mut *tx).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows.iter().filter(|(t, body)| *t == b.as_uuid() && body.starts_with("note")).count(), 3);

    let admin = db.admin_pool().await;
    let tables = assert_tenant_tables_protected(&admin, "fixture").await;
    assert_eq!(tables, vec!["applied".to_owned(), "notes".to_owned()]);
}

#[tokio::test]
async fn every_change_to_a_tenant_table_is_audited_in_the_same_transaction() {
    let db = TestDb::new().await;
    let (_, pool) = migrated(&db).await;
    let tenant = TenantId::new();
    let ctx = RequestContext {
        request_id: nexus_kernel::ids::RequestId::parse("req-audit-1"),
        actor_id: Some("usr_test".into()),
        client_ip: Some("203.0.113.9".parse().unwrap()),
        ..Default::default()
    };
    ctx.scope(async {
        let mut tx = begin_tenant(&pool, tenant).await.unwrap();
        sqlx::query("INSERT INTO notes (tenant_id, body, secret) VALUES ($1, 'hello', 'hunter2')")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("UPDATE notes SET body = 'changed'").execute(&mut *tx).await.unwrap();
        // A no-op update records nothing.
        sqlx::query("UPDATE notes SET body = 'changed'").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();

        // A rolled-back change leaves no audit trace.
        let mut tx = begin_tenant(&pool, tenant).await.unwrap();
        sqlx::query("DELETE FROM notes").execute(&mut *tx).await.unwrap();
        tx.rollback().await.unwrap();
    })
    .await;

    let admin = db.admin_pool().await;
    let rows: Vec<(Option<uuid::Uuid>, String, serde_json::Value, String, String)> =
        sqlx::query_as("SELECT tenant_id, subject, audit, actor_id, request_id FROM fixture.outbox ORDER BY seq")
            .fetch_all(&admin)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "insert and update, nothing for the no-op or the rollback");
    for (t, subject, audit, actor, req) in &rows {
        assert_eq!(*t, Some(tenant.as_uuid()));
        assert_eq!(subject, "nexus.fixture.audit.recorded");
        assert_eq!(actor, "usr_test");
        assert_eq!(req, "req-audit-1");
        assert_eq!(audit["client_ip"], "203.0.113.9");
        assert!(!audit.to_string().contains("hunter2"), "redacted column leaked: {audit}");
    }
    assert_eq!(rows[0].2["operation"], "INSERT");
    assert_eq!(rows[1].2["operation"], "UPDATE");
    assert_eq!(rows[1].2["before"]["body"], "hello");
    assert_eq!(rows[1].2["after"]["body"], "changed");
}

/// Opening a transaction writes its settings as literals (one round trip): whatever a caller
/// puts in them arrives verbatim, and nothing in them can end the literal and run SQL.
#[tokio::test]
async fn transaction_settings_arrive_verbatim_whatever_they_contain() {
    let db = TestDb::new().await;
    let (_, pool) = migrated(&db).await;
    let tenant = TenantId::new();
    let hostile = [
        "plain",
        "it's",
        "back\\slash\\' then quote",
        "'); DROP TABLE notes; --",
        "E'\\x00\\n' $$ $tag$ ;",
        "עברית والعربية 🎉",
        "",
    ];
    for actor in hostile {
        let ctx = RequestContext { actor_id: Some(actor.to_owned()), ..RequestContext::default() };
        let got: (String, String, String) = ctx
            .scope(async {
                let mut tx = begin_tenant(&pool, tenant).await.unwrap();
                let row = sqlx::query_as(
                    "SELECT current_setting('nexus.actor_id'), current_setting('nexus.tenant_id'), \
                            current_setting('nexus.system')",
                )
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
                row
            })
            .await;
        assert_eq!(got, (actor.to_owned(), tenant.as_uuid().to_string(), String::new()), "actor {actor:?}");
    }
    // NUL cannot be stored in a Postgres setting: it is dropped, the rest arrives.
    let ctx = RequestContext { actor_id: Some("a\0b".to_owned()), ..RequestContext::default() };
    let actor: String = ctx
        .scope(async {
            let mut tx = begin_system(&pool).await.unwrap();
            let a = sqlx::query_scalar("SELECT current_setting('nexus.actor_id')").fetch_one(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            a
        })
        .await;
    assert_eq!(actor, "ab");
    let admin = db.admin_pool().await;
    let notes: bool =
        sqlx::query_scalar("SELECT to_regclass('fixture.notes') IS NOT NULL").fetch_one(&admin).await.unwrap();
    assert!(notes, "the table named in a hostile value still exists");
}
