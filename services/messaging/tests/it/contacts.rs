//! The contact book through its use cases: normalization, dedupe, fields, search, tenancy.

use nexus_kernel::{ErrorKind, PageRequest, WorkspaceId};
use nexus_messaging::domain::contact::{ContactInput, ContactQuery};
use nexus_platform::identity::Role;
use serde_json::{Map, Value, json};

use crate::support::{book, member};

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn phones_are_read_in_the_workspace_region_and_one_phone_is_one_contact() {
    let b = book().await;
    let ana = member(WorkspaceId::new(), Role::Member);
    b.app.set_default_region(&ana, "br").await.unwrap();
    let input = ContactInput {
        name: Some("Ana"),
        phone: Some("(11) 98765-4321"),
        email: Some("Ana@Example.com"),
        ..Default::default()
    };
    let c = b.app.create_contact(&ana, &input, &Map::new(), "").await.unwrap();
    assert_eq!((c.phone.as_deref(), c.email.as_deref()), (Some("+5511987654321"), Some("ana@example.com")));
    assert_eq!(c.identities.len(), 1, "the email is an identity: {:?}", c.identities);

    // The same number typed another way is the same person.
    let again = ContactInput { name: Some("Ana S."), phone: Some("+55 11 98765 4321"), ..Default::default() };
    let e = b.app.create_contact(&ana, &again, &Map::new(), "").await.unwrap_err();
    assert_eq!(
        (e.kind(), e.code(), e.violations()[0].field.as_str()),
        (ErrorKind::Conflict, "messaging.duplicate_contact", "phone")
    );

    // Another workspace keeps its own book: the same phone is fine there, and ids do not cross.
    let other = member(WorkspaceId::new(), Role::Owner);
    b.app.create_contact(&other, &again, &Map::new(), "").await.unwrap();
    let e = b.app.contact(&other, &c.id.to_string()).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.contact_not_found"));
    assert_eq!(b.app.contact(&other, "not-an-id").await.unwrap_err().code(), "messaging.contact_not_found");

    // Every bad field is named; nothing is written.
    let bad = ContactInput { phone: Some("12"), email: Some("nope"), ..Default::default() };
    let e = b.app.create_contact(&ana, &bad, &Map::new(), "").await.unwrap_err();
    assert_eq!((e.kind(), e.violations().len()), (ErrorKind::InvalidArgument, 2));
    let all = b.app.search_contacts(&ana, ContactQuery::default(), &Map::new(), &PageRequest::default()).await.unwrap();
    assert_eq!(all.items.len(), 1);
}

#[tokio::test]
async fn custom_fields_are_typed_and_checked() {
    let b = book().await;
    let owner = member(WorkspaceId::new(), Role::Owner);
    b.app.define_field(&owner, "tier", "Tier", "choice", &["Gold".into(), "Silver".into()]).await.unwrap();
    b.app.define_field(&owner, "spend", "Spend", "number", &[]).await.unwrap();
    let e = b.app.define_field(&owner, "tier", "Tier", "text", &[]).await.unwrap_err();
    assert_eq!(e.code(), "messaging.field_kind_fixed");
    // Relabelling keeps the kind.
    let relabelled = b.app.define_field(&owner, "tier", "Level", "choice", &["Gold".into()]).await.unwrap();
    assert_eq!((relabelled.label.as_str(), relabelled.options.len()), ("Level", 1));

    let input = ContactInput { name: Some("Bea"), ..Default::default() };
    let c = b.app.create_contact(&owner, &input, &fields(json!({"tier": "Gold", "spend": 12.50})), "").await.unwrap();
    assert_eq!(c.fields.get("spend"), Some(&json!("12.5")));
    for (bad, code) in [
        (json!({"tier": "Bronze"}), "messaging.invalid_field_value"),
        (json!({"spend": "a lot"}), "messaging.invalid_field_value"),
        (json!({"colour": "red"}), "messaging.unknown_field"),
    ] {
        let e = b.app.create_contact(&owner, &input, &fields(bad.clone()), "").await.unwrap_err();
        assert_eq!(e.code(), code, "{bad}");
    }

    let gold = b
        .app
        .search_contacts(&owner, ContactQuery::default(), &fields(json!({"tier": "Gold"})), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(gold.items.len(), 1);
    b.app.delete_field(&owner, "tier").await.unwrap();
    let c = b.app.contact(&owner, &c.id.to_string()).await.unwrap();
    assert!(!c.fields.contains_key("tier"), "a deleted field's values go with it");
    assert_eq!(b.app.delete_field(&owner, "tier").await.unwrap_err().code(), "messaging.field_not_found");
}

#[tokio::test]
async fn search_by_text_tag_and_stage_pages_newest_first() {
    let b = book().await;
    let m = member(WorkspaceId::new(), Role::Member);
    for i in 0..25 {
        let name = format!("Customer {i:02}");
        let tags: Vec<String> = if i % 2 == 0 { vec!["vip".into()] } else { vec![] };
        let stage = if i % 5 == 0 { "customer" } else { "lead" };
        let input = ContactInput { name: Some(&name), tags: Some(&tags), stage: Some(stage), ..Default::default() };
        b.app.create_contact(&m, &input, &Map::new(), "").await.unwrap();
    }
    let q = ContactQuery::new("custom", &["VIP".into()], "").unwrap();
    let first =
        b.app.search_contacts(&m, q.clone(), &Map::new(), &PageRequest::new(Some(10), None).unwrap()).await.unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.items[0].name, "Customer 24", "newest first");
    let second = b
        .app
        .search_contacts(&m, q, &Map::new(), &PageRequest::new(Some(10), first.next_cursor).unwrap())
        .await
        .unwrap();
    assert_eq!((second.items.len(), second.next_cursor), (3, None));
    assert!(second.items.iter().all(|c| c.tags == ["vip"]));

    let customers = ContactQuery::new("", &[], "customer").unwrap();
    let found = b.app.search_contacts(&m, customers, &Map::new(), &PageRequest::default()).await.unwrap();
    assert_eq!(found.items.len(), 5);
    // LIKE wildcards in the text are literal.
    let wild = ContactQuery::new("%%%", &[], "").unwrap();
    assert!(b.app.search_contacts(&m, wild, &Map::new(), &PageRequest::default()).await.unwrap().items.is_empty());
    assert_eq!(ContactQuery::new("ab", &[], "").unwrap_err().code(), "messaging.invalid_search");
    assert_eq!(ContactQuery::new("", &[], "vip").unwrap_err().code(), "messaging.invalid_stage");
}

#[tokio::test]
async fn viewers_read_but_do_not_write() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let viewer = member(ws, Role::Viewer);
    let input = ContactInput { name: Some("Caio"), ..Default::default() };
    let e = b.app.create_contact(&viewer, &input, &Map::new(), "").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(b.app.define_field(&viewer, "x", "X", "text", &[]).await.is_err());
    b.app.create_contact(&member(ws, Role::Member), &input, &Map::new(), "").await.unwrap();
    let seen =
        b.app.search_contacts(&viewer, ContactQuery::default(), &Map::new(), &PageRequest::default()).await.unwrap();
    assert_eq!(seen.items.len(), 1);
}

/// "Do not sell or share" (CCPA): per contact, a consent on the channel `ads` withdrawn, kept
/// with its source and proof; per workspace, a setting of the book, announced once per change
/// and changed by members only.
#[tokio::test]
async fn do_not_sell_is_recorded_per_contact_and_per_workspace() {
    use nexus_messaging::app::contacts::ConsentChange;
    let b = book().await;
    let ws = WorkspaceId::new();
    let ana = member(ws, Role::Member);
    let input = ContactInput { name: Some("Rui"), email: Some("rui@example.com"), ..Default::default() };
    let c = b.app.create_contact(&ana, &input, &Map::new(), "").await.unwrap();
    let opt_out = ConsentChange {
        channel: "ads",
        purpose: "marketing",
        status: "withdrawn",
        source: "privacy_form",
        proof: "Do Not Sell or Share My Personal Information",
    };
    let c = b.app.set_consent(&ana, &c.id.to_string(), &opt_out).await.unwrap();
    let ads: Vec<_> = c.consents.iter().filter(|k| k.channel.as_str() == "ads").collect();
    assert_eq!(ads.len(), 1);
    assert_eq!((ads[0].status.as_str(), ads[0].proof.as_str()), ("withdrawn", opt_out.proof));
    let fax = ConsentChange { channel: "fax", ..opt_out };
    assert_eq!(b.app.set_consent(&ana, &c.id.to_string(), &fax).await.unwrap_err().code(), "messaging.invalid_channel");

    let admin = b.admin_pool().await;
    let events = "SELECT count(*) FROM messaging.outbox WHERE subject = 'nexus.messaging.book.do_not_sell_changed'";
    let count = |sql: &'static str| {
        let admin = admin.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&admin).await.unwrap() }
    };
    assert_eq!(b.app.do_not_sell(&ana).await.unwrap(), (false, None));
    // Off is the default: saying so again changes nothing.
    b.app.set_do_not_sell(&ana, false).await.unwrap();
    assert_eq!(count(events).await, 0);
    b.app.set_do_not_sell(&ana, true).await.unwrap();
    b.app.set_do_not_sell(&ana, true).await.unwrap();
    let (on, at) = b.app.do_not_sell(&ana).await.unwrap();
    assert!(on && at.is_some());
    assert_eq!(count(events).await, 1, "announced once");
    // Viewers cannot change it; another workspace does not see it.
    let viewer = member(ws, Role::Viewer);
    assert_eq!(b.app.set_do_not_sell(&viewer, false).await.unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert!(b.app.do_not_sell(&viewer).await.unwrap().0);
    assert_eq!(b.app.do_not_sell(&member(WorkspaceId::new(), Role::Owner)).await.unwrap(), (false, None));
    b.app.set_do_not_sell(&ana, false).await.unwrap();
    assert!(!b.app.do_not_sell(&ana).await.unwrap().0);
    assert_eq!(count(events).await, 2);
}
