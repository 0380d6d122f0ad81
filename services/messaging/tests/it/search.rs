//! Contact search through `search_contact_ids`, the `SECURITY DEFINER` function that lets the
//! trigram and tag indexes serve it under RLS: confined to the workspace of `nexus.tenant_id`,
//! refused without one, callable by the service role only, and selecting what the plain query
//! under RLS selects.

use std::collections::HashSet;

use nexus_kernel::{PageRequest, WorkspaceId};
use nexus_messaging::domain::contact::{ContactInput, ContactQuery};
use nexus_messaging::domain::segment::Filter;
use nexus_platform::db::{Keyset, begin_system, begin_tenant};
use nexus_platform::identity::Role;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::support::{book, member};

const CALL: &str = "SELECT search_contact_ids($1, $2, NULL, NULL, NULL, NULL, 100)";

#[tokio::test]
async fn the_function_returns_only_the_settings_workspace_and_refuses_without_one() {
    let b = book().await;
    let (a, other) = (member(WorkspaceId::new(), Role::Member), member(WorkspaceId::new(), Role::Member));
    let vip = vec!["vip".to_owned()];
    let mut mine = HashSet::new();
    for (p, n) in [(&a, 3), (&other, 4)] {
        for i in 0..n {
            let name = format!("Shared Surname {i}");
            let input = ContactInput { name: Some(&name), tags: Some(&vip), ..Default::default() };
            let c = b.app.create_contact(p, &input, &Map::new(), "").await.unwrap();
            if std::ptr::eq(p, &a) {
                mine.insert(c.id);
            }
        }
    }

    // As the service role (the pool's login), in A's transaction: A's contacts, none of B's,
    // although B's match the same word and tag.
    let mut tx = begin_tenant(&b.app.pool, a.workspace_id).await.unwrap();
    let found: Vec<Uuid> = sqlx::query_scalar(CALL).bind("surname").bind(&vip).fetch_all(&mut *tx).await.unwrap();
    assert_eq!(found.iter().copied().collect::<HashSet<_>>(), mine);
    assert_eq!(found.len(), 3);
    drop(tx);
    let mut tx = begin_tenant(&b.app.pool, other.workspace_id).await.unwrap();
    let found: Vec<Uuid> = sqlx::query_scalar(CALL).bind("surname").bind(&vip).fetch_all(&mut *tx).await.unwrap();
    assert_eq!(found.len(), 4);
    assert!(found.iter().all(|id| !mine.contains(id)));
    drop(tx);

    // No workspace: a bare transaction, and a system one (which RLS lets see every workspace).
    let mut tx = b.app.pool.begin().await.unwrap();
    let e = sqlx::query_scalar::<_, Uuid>(CALL).bind("surname").bind(&vip).fetch_all(&mut *tx).await.unwrap_err();
    assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42501"), "{e}");
    drop(tx);
    let mut tx = begin_system(&b.app.pool).await.unwrap();
    let e = sqlx::query_scalar::<_, Uuid>(CALL).bind("surname").bind(&vip).fetch_all(&mut *tx).await.unwrap_err();
    assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42501"), "{e}");
    drop(tx);

    // A limit out of range is refused rather than read as "all".
    let mut tx = begin_tenant(&b.app.pool, a.workspace_id).await.unwrap();
    let e = sqlx::query_scalar::<_, Uuid>("SELECT search_contact_ids(NULL, NULL, NULL, NULL, NULL, NULL, 0)")
        .fetch_all(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("22023"), "{e}");
}

#[tokio::test]
async fn the_function_is_a_pinned_definer_of_the_schema_owner_executable_by_the_service_role_only() {
    let b = book().await;
    let admin = b.admin_pool().await;
    let (definer, volatility, config, owner_is_schema_owner, owner_bypasses_rls, service, public): (
        bool,
        String,
        Vec<String>,
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT p.prosecdef, p.provolatile::text, coalesce(p.proconfig, '{}'), p.proowner = n.nspowner, \
                r.rolsuper OR r.rolbypassrls, \
                has_function_privilege('nexus_messaging', p.oid, 'EXECUTE'), \
                EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a \
                        WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner \
         WHERE n.nspname = 'messaging' AND p.proname = 'search_contact_ids'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(definer, "SECURITY DEFINER");
    assert_eq!(volatility, "s", "STABLE");
    assert!(config.contains(&"search_path=messaging, pg_temp".to_owned()), "{config:?}");
    assert!(owner_is_schema_owner);
    // Otherwise the forced policy binds the function too and the indexes serve nothing.
    assert!(owner_bypasses_rls);
    assert!(service, "the service role may execute it");
    assert!(!public, "PUBLIC may not");
}

/// Ids of every page of `q`, `size` at a time, through the repository's search as the service
/// role; `segment` routes it through the plain query under RLS instead of the function.
async fn pages(pool: &sqlx::PgPool, ws: WorkspaceId, q: &ContactQuery, segment: bool, size: u32) -> Vec<Uuid> {
    let mut q = q.clone();
    if segment {
        q.segment = Some(Filter::All(Vec::new()));
    }
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let keyset = Keyset::new(&PageRequest::new(Some(size), cursor).unwrap()).unwrap();
        let mut tx = begin_tenant(pool, ws).await.unwrap();
        let page = nexus_messaging::repo::contacts::search(&mut tx, ws, &q, &keyset).await.unwrap();
        tx.commit().await.unwrap();
        assert!(page.items.len() <= size as usize);
        all.extend(page.items.iter().map(|c| c.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            return all;
        }
    }
}

#[tokio::test]
async fn every_kind_of_criterion_selects_and_pages_as_the_plain_query_does() {
    let b = book().await;
    let owner = member(WorkspaceId::new(), Role::Owner);
    let elsewhere = member(WorkspaceId::new(), Role::Owner);
    for p in [&owner, &elsewhere] {
        b.app.define_field(p, "tier", "Tier", "choice", &["Gold".into(), "Silver".into()]).await.unwrap();
        b.app.define_field(p, "city", "City", "text", &[]).await.unwrap();
    }
    let names = ["Ana Silva", "Bruno Costa", "Davi Silva", "Davi_Silva", "Eva 100% Silva", "Fábio Souza"];
    for i in 0..36usize {
        let name = format!("{} {i}", names[i % names.len()]);
        let email = format!("p{i}@mail{}.example.com", i % 4);
        let mut tags: Vec<String> = Vec::new();
        if i % 2 == 0 {
            tags.push("vip".into());
        }
        if i % 3 == 0 {
            tags.push("newsletter".into());
        }
        let stage = ["lead", "customer", "qualified"][i % 3];
        let input = ContactInput {
            name: Some(&name),
            email: Some(&email),
            tags: Some(&tags),
            stage: Some(stage),
            ..Default::default()
        };
        let fields = json!({"tier": if i % 4 == 0 { "Gold" } else { "Silver" }, "city": if i % 5 == 0 { "Recife" } else { "Porto" }});
        for p in [&owner, &elsewhere] {
            b.app.create_contact(p, &input, fields.as_object().unwrap(), "").await.unwrap();
        }
    }

    let query = |text: &str, tags: &[&str], stage: &str, fields: &[(&str, Value)]| {
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        let mut q = ContactQuery::new(text, &tags, stage).unwrap();
        q.fields = fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        q
    };
    let cases = [
        (query("", &[], "", &[]), 36),
        (query("silva", &[], "", &[]), 24),
        // `_` and `%` are literal: "davi_" is not "davi silva".
        (query("davi_", &[], "", &[]), 6),
        (query("100%", &[], "", &[]), 6),
        (query("mail2.ex", &[], "", &[]), 9),
        (query("", &["vip"], "", &[]), 18),
        (query("", &["vip", "newsletter"], "", &[]), 6),
        (query("", &[], "customer", &[]), 12),
        (query("", &[], "", &[("tier", json!("Gold"))]), 9),
        (query("", &[], "", &[("tier", json!("Gold")), ("city", json!("Recife"))]), 2),
        (query("silva", &["vip"], "lead", &[("tier", json!("Gold"))]), 3),
        (query("souza", &["newsletter"], "", &[]), 0),
    ];
    for (q, want) in &cases {
        let indexed = pages(&b.app.pool, owner.workspace_id, q, false, 5).await;
        let plain = pages(&b.app.pool, owner.workspace_id, q, true, 7).await;
        assert_eq!(indexed.len(), *want, "{q:?}");
        assert_eq!(indexed, plain, "{q:?}: same contacts in the same order");
        assert_eq!(indexed.iter().collect::<HashSet<_>>().len(), indexed.len(), "{q:?}: no contact twice");
    }

    // Through the use case: the newest match first, then the rest a page at a time.
    let got = b
        .app
        .search_contacts(
            &owner,
            query("silva", &["vip"], "", &[]),
            &Map::new(),
            &PageRequest::new(Some(2), None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(got.items.len(), 2);
    assert!(got.items[0].created_at >= got.items[1].created_at);
    assert!(got.items.iter().all(|c| c.name.to_lowercase().contains("silva") && c.tags.contains(&"vip".to_owned())));
    assert!(got.next_cursor.is_some());
}
