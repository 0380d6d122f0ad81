//! The CRM through its use cases: timeline and tasks, pipeline and deals, segments, tenancy.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use nexus_kernel::{ErrorKind, PageRequest, WorkspaceId};
use nexus_messaging::app::contacts::ContactPatch;
use nexus_messaging::domain::activity::{ActivityInput, ActivityKind};
use nexus_messaging::domain::contact::{Contact, ContactInput, ContactQuery};
use nexus_messaging::domain::deal::{self, DealInput, Outcome};
use nexus_platform::identity::{Principal, Role};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::support::{Book, book, member};

async fn contact(b: &Book, p: &Principal, name: &str) -> Contact {
    let input = ContactInput { name: Some(name), ..Default::default() };
    b.app.create_contact(p, &input, &Map::new(), "").await.unwrap()
}

fn page(limit: u32, cursor: Option<String>) -> PageRequest {
    PageRequest::new(Some(limit), cursor).unwrap()
}

fn note(body: &str) -> ActivityInput<'_> {
    ActivityInput { kind: "note", body, ..Default::default() }
}

#[tokio::test]
async fn the_timeline_is_newest_first_and_pages_without_gaps() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let ana = member(ws, Role::Member);
    let c = contact(&b, &ana, "Ana").await;
    let id = c.id.to_string();
    let now = Utc::now();
    // Written out of order: the timeline sorts by when things happened.
    for (i, hours_ago) in [(0, 5), (1, 1), (2, 3), (3, 2), (4, 4)] {
        let body = format!("note {i}");
        let input = ActivityInput { occurred_at: Some(now - Duration::hours(hours_ago)), ..note(&body) };
        let a = b.app.add_activity(&ana, &id, &input).await.unwrap();
        assert_eq!((a.kind, a.actor.as_str()), (ActivityKind::Note, ana.actor().as_str()));
    }
    let call = ActivityInput { kind: "call", body: "", ..Default::default() };
    b.app.add_activity(&ana, &id, &call).await.unwrap();
    // The platform records a stage change (once: setting the same stage again changes nothing).
    for _ in 0..2 {
        let patch = ContactPatch {
            input: ContactInput { stage: Some("customer"), ..Default::default() },
            fields: Map::new(),
            owner_id: "",
            mask: vec!["stage".into()],
        };
        b.app.update_contact(&ana, &id, &patch).await.unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = b.app.activities(&ana, &id, &page(2, cursor)).await.unwrap();
        assert!(p.items.len() <= 2);
        seen.extend(p.items);
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let bodies: Vec<&str> = seen.iter().map(|a| a.body.as_str()).collect();
    assert_eq!(bodies, vec!["", "", "note 1", "note 3", "note 2", "note 4", "note 0"]);
    assert!(seen.windows(2).all(|w| (w[0].occurred_at, w[0].id) > (w[1].occurred_at, w[1].id)));
    let stage: Vec<_> = seen.iter().filter(|a| a.kind == ActivityKind::StageChange).collect();
    assert_eq!(stage.len(), 1, "an unchanged stage records nothing");
    assert_eq!(
        (stage[0].data.clone(), stage[0].actor.clone()),
        (json!({"from": "lead", "to": "customer"}), ana.actor())
    );

    // People cannot write platform facts, bad input is refused, and nothing is added.
    for (kind, code) in
        [("stage_change", "messaging.activity_kind_not_writable"), ("meeting", "messaging.invalid_activity_kind")]
    {
        let input = ActivityInput { kind, body: "x", ..Default::default() };
        let e = b.app.add_activity(&ana, &id, &input).await.unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::InvalidArgument, code));
    }
    let e = b.app.add_activity(&ana, &Uuid::now_v7().to_string(), &note("x")).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.contact_not_found"));
    assert_eq!(b.app.activities(&ana, &id, &page(100, None)).await.unwrap().items.len(), 7);
    let e = b.app.activities(&ana, &id, &PageRequest { limit: 5, cursor: Some("garbage".into()) }).await.unwrap_err();
    assert_eq!(e.code(), "request.invalid_cursor");
    // A viewer reads but does not write.
    let viewer = member(ws, Role::Viewer);
    assert_eq!(b.app.activities(&viewer, &id, &page(100, None)).await.unwrap().items.len(), 7);
    assert_eq!(b.app.add_activity(&viewer, &id, &note("x")).await.unwrap_err().kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn tasks_are_listed_open_first_by_due_date_and_completed_once() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let ana = member(ws, Role::Member);
    let bia = member(ws, Role::Member);
    b.join(&bia).await;
    let c = contact(&b, &ana, "Carla").await;
    let id = c.id.to_string();
    let now = Utc::now();
    let mut tasks = Vec::new();
    for days in [3, 1, 2, 4] {
        let body = format!("in {days} days");
        let input =
            ActivityInput { kind: "task", body: &body, due_at: Some(now + Duration::days(days)), ..Default::default() };
        tasks.push(b.app.add_activity(&ana, &id, &input).await.unwrap());
    }
    assert!(tasks.iter().all(|t| t.assignee_id == Some(ana.user_id)), "the caller by default");
    let for_bia = ActivityInput {
        kind: "task",
        body: "for Bia",
        due_at: Some(now),
        assignee_id: &bia.user_id.to_string(),
        ..Default::default()
    };
    b.app.add_activity(&ana, &id, &for_bia).await.unwrap();

    let list = |p: Principal, assignee: String| {
        let app = b.app.clone();
        async move {
            let mut out = Vec::new();
            let mut cursor = None;
            loop {
                let got = app.tasks(&p, &assignee, &page(3, cursor)).await.unwrap();
                out.extend(got.items.into_iter().map(|t| (t.body, t.done_at.is_some())));
                cursor = got.next_cursor;
                if cursor.is_none() {
                    return out;
                }
            }
        }
    };
    let expect = |v: &[(&str, bool)]| v.iter().map(|(s, d)| ((*s).to_owned(), *d)).collect::<Vec<_>>();
    assert_eq!(
        list(ana.clone(), String::new()).await,
        expect(&[("in 1 days", false), ("in 2 days", false), ("in 3 days", false), ("in 4 days", false)])
    );
    // Done tasks go after the open ones; completing again keeps the first completion.
    let done = b.app.complete_task(&ana, &tasks[1].id.to_string()).await.unwrap();
    let first_done = done.done_at.expect("done");
    let again = b.app.complete_task(&bia, &tasks[1].id.to_string()).await.unwrap();
    assert_eq!(again.done_at, Some(first_done));
    assert_eq!(
        list(bia.clone(), ana.user_id.to_string()).await,
        expect(&[("in 2 days", false), ("in 3 days", false), ("in 4 days", false), ("in 1 days", true)])
    );
    assert_eq!(list(bia.clone(), String::new()).await, expect(&[("for Bia", false)]));

    // Not a task, not an id, not a member id, no due date.
    let n = b.app.add_activity(&ana, &id, &note("just a note")).await.unwrap();
    for bad in [n.id.to_string(), "nope".into(), Uuid::now_v7().to_string()] {
        let e = b.app.complete_task(&ana, &bad).await.unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.task_not_found"), "{bad}");
    }
    assert_eq!(b.app.tasks(&ana, "someone", &page(3, None)).await.unwrap_err().code(), "messaging.invalid_member_id");
    let undated = ActivityInput { kind: "task", body: "someday", ..Default::default() };
    assert_eq!(b.app.add_activity(&ana, &id, &undated).await.unwrap_err().code(), "messaging.task_due_required");
}

fn usd<'a>(contact: &'a str, title: &'a str, minor: i64) -> DealInput<'a> {
    DealInput { contact_id: contact, title, amount: Some((minor, "USD")), ..Default::default() }
}

#[tokio::test]
async fn deals_keep_exact_money_and_closing_stages_close_them() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let m = member(ws, Role::Member);
    let c = contact(&b, &m, "Dora").await;
    let cid = c.id.to_string();

    let stages = b.app.stages(&m).await.unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, deal::DEFAULT_PIPELINE.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    assert_eq!(b.app.stages(&m).await.unwrap(), stages, "the default pipeline is created once");
    let won = stages.iter().find(|s| s.outcome == Outcome::Won).unwrap();

    // 19.99 three times: stored and added in minor units, exactly 59.97.
    let price = deal::amount_from_decimal("19.99", "USD").unwrap();
    let mut deals = Vec::new();
    for i in 0..3 {
        let title = format!("Order {i}");
        deals.push(b.app.create_deal(&m, &usd(&cid, &title, price.amount_minor)).await.unwrap());
    }
    assert!(deals.iter().all(|d| d.stage_id == stages[0].id && d.closed_at.is_none()));
    let listed = b.app.deals(&m, "", &cid, &page(100, None)).await.unwrap();
    let amounts: Vec<_> = listed.items.iter().map(|d| d.amount).collect();
    let total = deal::total(&amounts).unwrap().unwrap();
    assert_eq!((total.amount_minor, deal::to_decimal(total).to_string()), (5997, "59.97".to_owned()));
    let euro =
        b.app.create_deal(&m, &DealInput { amount: Some((1999, "EUR")), ..usd(&cid, "Euro order", 0) }).await.unwrap();
    let e = deal::total(&[total, euro.amount]).unwrap_err();
    assert_eq!(e.code(), "money.currency_mismatch", "amounts in different currencies are not added up");

    // Won closes the deal and the move is on the contact's timeline; reopening clears the close.
    let id = deals[0].id.to_string();
    let won_id = won.id.to_string();
    let moved = b
        .app
        .update_deal(&m, &id, &DealInput { stage_id: &won_id, ..Default::default() }, &["stage_id".into()])
        .await
        .unwrap();
    assert_eq!((moved.stage_id, moved.amount, moved.title.as_str()), (won.id, price, "Order 0"));
    assert!(moved.closed_at.is_some());
    let reopened_id = stages[1].id.to_string();
    let reopened = b
        .app
        .update_deal(&m, &id, &DealInput { stage_id: &reopened_id, ..Default::default() }, &["stage_id".into()])
        .await
        .unwrap();
    assert_eq!(reopened.closed_at, None);
    let timeline = b.app.activities(&m, &cid, &page(100, None)).await.unwrap().items;
    let deal_moves: Vec<_> =
        timeline.iter().filter(|a| a.kind == ActivityKind::Deal && a.data.get("from").is_some()).collect();
    assert_eq!(deal_moves.len(), 2);
    assert_eq!(deal_moves[1].data["to"], json!("Won"));

    // Changing the amount and the close date; bad input is refused and changes nothing.
    let changed = b
        .app
        .update_deal(
            &m,
            &id,
            &DealInput { amount: Some((2_000_000, "BRL")), expected_close: "2026-03-31", ..Default::default() },
            &["amount".into(), "expected_close".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        (changed.amount.to_string(), changed.expected_close.unwrap().to_string()),
        ("20000.00 BRL".into(), "2026-03-31".into())
    );
    for (input, mask, code) in [
        (DealInput { amount: Some((1, "XYZ")), ..Default::default() }, "amount", "money.unsupported_currency"),
        (DealInput { amount: Some((-1, "USD")), ..Default::default() }, "amount", "messaging.invalid_amount"),
        (
            DealInput { expected_close: "31/03/2026", ..Default::default() },
            "expected_close",
            "messaging.invalid_close_date",
        ),
        (DealInput { title: " ", ..Default::default() }, "title", "messaging.invalid_deal_title"),
        (DealInput::default(), "colour", "messaging.invalid_update_mask"),
        (
            DealInput { stage_id: &Uuid::now_v7().to_string(), ..Default::default() },
            "stage_id",
            "messaging.stage_not_found",
        ),
    ] {
        let e = b.app.update_deal(&m, &id, &input, &[mask.into()]).await.unwrap_err();
        assert_eq!(e.code(), code);
        assert!(matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::NotFound));
    }
    let after = b.app.deals(&m, "", &cid, &page(100, None)).await.unwrap();
    assert_eq!(after.items.iter().find(|d| d.id == deals[0].id).unwrap(), &changed);
    let e = b.app.create_deal(&m, &usd(&Uuid::now_v7().to_string(), "Ghost", 1)).await.unwrap_err();
    assert_eq!(e.code(), "messaging.contact_not_found");

    // Listing by stage, paged.
    let first_stage = stages[0].id.to_string();
    let p1 = b.app.deals(&m, &first_stage, "", &page(2, None)).await.unwrap();
    let p2 = b.app.deals(&m, &first_stage, "", &page(2, p1.next_cursor.clone())).await.unwrap();
    assert_eq!((p1.items.len(), p2.items.len(), p2.next_cursor), (2, 1, None));
    assert_eq!(p1.items[0].id, euro.id, "newest first");
    assert!(p1.items.iter().chain(&p2.items).all(|d| d.stage_id == stages[0].id));

    // Events in the outbox, and every change audited (refused changes rolled back with theirs).
    let count = |sql: &'static str| {
        let pool = b.app.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).bind(ws.as_uuid()).fetch_one(&pool).await.unwrap() }
    };
    let subject = "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND subject = 'nexus.messaging.deal.created'";
    assert_eq!(count(subject).await, 4);
    let audited = "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND audit ->> 'table' = 'deals'";
    assert_eq!(count(audited).await, 4 + 3, "four deals opened, one changed three times");
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE tenant_id = $1 AND subject = 'nexus.messaging.deal.stage_changed' ORDER BY seq",
    )
    .bind(ws.as_uuid())
    .fetch_all(&b.app.pool)
    .await
    .unwrap();
    let moves: Vec<_> = payloads
        .iter()
        .map(|p| <nexus_proto::events::DealStageChanged as prost::Message>::decode(p.as_slice()).unwrap())
        .collect();
    assert_eq!(moves.iter().map(|m| m.outcome.as_str()).collect::<Vec<_>>(), vec!["won", "open"]);
    assert_eq!(
        (moves[0].amount_minor, moves[0].currency.as_str(), moves[0].to_stage_id.clone()),
        (1999, "USD", won.id.to_string())
    );
}

#[tokio::test]
async fn a_stage_with_deals_cannot_be_removed() {
    let b = book().await;
    let m = member(WorkspaceId::new(), Role::Admin);
    let c = contact(&b, &m, "Eva").await;
    let stages = b.app.stages(&m).await.unwrap();
    let cid = c.id.to_string();
    let deal = b.app.create_deal(&m, &usd(&cid, "Big one", 100)).await.unwrap();
    assert_eq!(deal.stage_id, stages[0].id);

    let ids: Vec<String> = stages.iter().map(|s| s.id.to_string()).collect();
    // Without the first stage (which holds the deal): refused, nothing changes.
    let without_first: Vec<_> = stages
        .iter()
        .zip(&ids)
        .skip(1)
        .map(|(s, id)| (Some(id.as_str()), s.name.as_str(), s.outcome.as_str()))
        .collect();
    let e = b.app.save_stages(&m, &without_first).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::FailedPrecondition, "messaging.stage_has_deals"));
    assert_eq!(e.params().iter().find(|(k, _)| k == "stage").map(|(_, v)| v.as_str()), Some("New"));
    assert_eq!(b.app.stages(&m).await.unwrap(), stages);

    // Renamed, reordered (swapping two names), an empty stage dropped, one added: ids are kept.
    let new = vec![
        (Some(ids[1].as_str()), "New", "open"),
        (Some(ids[0].as_str()), "Qualified", "open"),
        (None, "Demo", "open"),
        (Some(ids[4].as_str()), "Won", "won"),
        (Some(ids[5].as_str()), "Lost", "lost"),
    ];
    let saved = b.app.save_stages(&m, &new).await.unwrap();
    let got: Vec<(Uuid, &str)> = saved.iter().map(|s| (s.id, s.name.as_str())).collect();
    assert_eq!(got[0], (stages[1].id, "New"));
    assert_eq!(got[1], (stages[0].id, "Qualified"));
    assert_eq!((got[2].1, got.len()), ("Demo", 5));
    assert!(!saved.iter().any(|s| s.id == stages[2].id || s.id == stages[3].id));

    // Turning the deal's stage into a won stage closes the deal; the outcome back reopens it.
    let mut as_won = new.clone();
    as_won[1].2 = "won";
    b.app.save_stages(&m, &as_won).await.unwrap();
    let d = b.app.deals(&m, "", &cid, &page(10, None)).await.unwrap().items.remove(0);
    assert!(d.closed_at.is_some());
    b.app.save_stages(&m, &new).await.unwrap();
    let d = b.app.deals(&m, "", &cid, &page(10, None)).await.unwrap().items.remove(0);
    assert_eq!(d.closed_at, None);

    for (bad, code) in [
        (vec![(None, "Only won", "won")], "messaging.pipeline_needs_open_stage"),
        (vec![(None, "A", "open"), (None, "a", "won")], "messaging.duplicate_stage_name"),
        (vec![(Some("not-an-id"), "A", "open")], "messaging.stage_not_found"),
        (vec![(None, "A", "maybe")], "messaging.invalid_outcome"),
        (vec![], "messaging.invalid_pipeline"),
    ] {
        assert_eq!(b.app.save_stages(&m, &bad).await.unwrap_err().code(), code);
    }
    let unknown = Uuid::now_v7().to_string();
    let e = b.app.save_stages(&m, &[(Some(unknown.as_str()), "A", "open")]).await.unwrap_err();
    assert_eq!(e.code(), "messaging.stage_not_found");
    assert_eq!(b.app.stages(&m).await.unwrap().len(), 5);
}

/// A book of eight contacts covering every kind of condition, and the names a filter selects.
async fn seeded(b: &Book, p: &Principal) {
    b.app.define_field(p, "tier", "Tier", "choice", &["Gold".into(), "Silver".into()]).await.unwrap();
    b.app.define_field(p, "spend", "Spend", "number", &[]).await.unwrap();
    b.app.define_field(p, "since", "Customer since", "date", &[]).await.unwrap();
    b.app.define_field(p, "city", "City", "text", &[]).await.unwrap();
    let rows: [(&str, &[&str], &str, Value); 8] = [
        (
            "Ana Silva",
            &["vip"],
            "customer",
            json!({"tier": "Gold", "spend": "120.50", "since": "2020-05-01", "city": "São Paulo"}),
        ),
        ("Bruno Costa", &["vip", "newsletter"], "lead", json!({"tier": "Silver", "spend": "9.99", "city": "Rio"})),
        ("Carla Dias", &["newsletter"], "customer", json!({"spend": "1000", "since": "2023-01-15"})),
        ("Davi Lima", &[], "subscriber", json!({"tier": "Gold", "city": "sao paulo"})),
        ("Eva Rocha", &["vip"], "qualified", json!({"spend": "-5", "since": "2019-12-31"})),
        ("Fábio Melo", &[], "lead", json!({})),
        ("Gabi Nunes", &["newsletter"], "customer", json!({"tier": "Silver", "spend": "120.5"})),
        ("Hugo Reis", &["vip"], "other", json!({"city": "Recife"})),
    ];
    for (name, tags, stage, fields) in rows {
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        let input = ContactInput { name: Some(name), tags: Some(&tags), stage: Some(stage), ..Default::default() };
        b.app.create_contact(p, &input, fields.as_object().unwrap(), "").await.unwrap();
    }
    // Consents and creation dates have no use case here yet: written in a tenant transaction.
    let mut tx = nexus_platform::db::tenant(&b.app.pool, p.workspace_id).await.unwrap();
    for (name, channel, purpose, status) in [
        ("Ana Silva", "whatsapp", "marketing", "granted"),
        ("Bruno Costa", "whatsapp", "marketing", "withdrawn"),
        ("Carla Dias", "whatsapp", "transactional", "granted"),
        ("Davi Lima", "email", "marketing", "granted"),
        ("Gabi Nunes", "whatsapp", "marketing", "granted"),
    ] {
        sqlx::query(
            "INSERT INTO consents (tenant_id, contact_id, channel, purpose, status, source) \
             SELECT tenant_id, id, $2, $3, $4, 'test' FROM contacts WHERE name = $1",
        )
        .bind(name)
        .bind(channel)
        .bind(purpose)
        .bind(status)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    for (name, created) in [
        ("Ana Silva", "2025-12-20T10:00:00Z"),
        ("Bruno Costa", "2026-01-01T00:00:00Z"),
        ("Carla Dias", "2026-01-15T12:00:00Z"),
        ("Davi Lima", "2026-01-31T23:59:59Z"),
        ("Eva Rocha", "2026-02-01T00:00:00Z"),
        ("Fábio Melo", "2026-02-10T00:00:00Z"),
        ("Gabi Nunes", "2026-03-01T00:00:00Z"),
        ("Hugo Reis", "2026-03-05T00:00:00Z"),
    ] {
        sqlx::query("UPDATE contacts SET created_at = $2::timestamptz WHERE name = $1")
            .bind(name)
            .bind(created)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    nexus_platform::db::commit(tx).await.unwrap();
}

/// First names of the contacts a saved segment selects through contact search (paged), checked
/// against the segment's own count.
async fn selected(b: &Book, p: &Principal, filter: &Value) -> BTreeSet<String> {
    let seg = b.app.save_segment(p, "", &format!("s {}", Uuid::now_v7()), &filter.to_string()).await.unwrap();
    let mut names = BTreeSet::new();
    let mut cursor = None;
    loop {
        let q = ContactQuery { segment_id: Some(seg.id.to_string()), ..Default::default() };
        let got = b.app.search_contacts(p, q, &Map::new(), &page(3, cursor)).await.unwrap();
        names.extend(got.items.iter().map(|c| c.name.split(' ').next().unwrap_or_default().to_owned()));
        cursor = got.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seg.count, names.len() as i64, "{filter}: count and search agree");
    assert_eq!(b.app.segment(p, &seg.id.to_string()).await.unwrap().count, seg.count);
    b.app.delete_segment(p, &seg.id.to_string()).await.unwrap();
    names
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test]
async fn segments_select_exactly_the_matching_contacts() {
    let b = book().await;
    let p = member(WorkspaceId::new(), Role::Member);
    seeded(&b, &p).await;
    let everyone = set(&["Ana", "Bruno", "Carla", "Davi", "Eva", "Fábio", "Gabi", "Hugo"]);
    for (filter, expected) in [
        (json!({"all": []}), everyone.clone()),
        (json!({"any": []}), set(&[])),
        (json!({"tag": "VIP"}), set(&["Ana", "Bruno", "Eva", "Hugo"])),
        (json!({"stage": "customer"}), set(&["Ana", "Carla", "Gabi"])),
        (json!({"field": "tier", "op": "eq", "value": "Gold"}), set(&["Ana", "Davi"])),
        // `ne` needs a value; `not eq` also takes contacts without one.
        (json!({"field": "tier", "op": "ne", "value": "Gold"}), set(&["Bruno", "Gabi"])),
        (
            json!({"not": {"field": "tier", "op": "eq", "value": "Gold"}}),
            set(&["Bruno", "Carla", "Eva", "Fábio", "Gabi", "Hugo"]),
        ),
        // Numbers compare as numbers (as strings, "9.99" > "120.5" and "1000" < "120.5").
        (json!({"field": "spend", "op": "gt", "value": "100"}), set(&["Ana", "Carla", "Gabi"])),
        (json!({"field": "spend", "op": "lt", "value": 10}), set(&["Bruno", "Eva"])),
        (json!({"field": "spend", "op": "eq", "value": "120.500"}), set(&["Ana", "Gabi"])),
        // Dates as dates.
        (json!({"field": "since", "op": "lt", "value": "2020-05-01"}), set(&["Eva"])),
        (json!({"field": "since", "op": "gt", "value": "2020-05-01"}), set(&["Carla"])),
        // Text: contains ignores case; eq is exact.
        (json!({"field": "city", "op": "contains", "value": "PAULO"}), set(&["Ana", "Davi"])),
        (json!({"field": "city", "op": "eq", "value": "Rio"}), set(&["Bruno"])),
        (json!({"field": "city", "op": "lt", "value": "S"}), set(&["Bruno", "Hugo"])),
        (json!({"field": "tier", "op": "contains", "value": "ilv"}), set(&["Bruno", "Gabi"])),
        (json!({"text": "silva"}), set(&["Ana"])),
        (json!({"text": "50%"}), set(&[])),
        (json!({"consent": {"channel": "whatsapp", "purpose": "marketing"}}), set(&["Ana", "Gabi"])),
        // Half-open created range, bare dates at midnight UTC.
        (json!({"created": {"after": "2026-01-01", "before": "2026-02-01"}}), set(&["Bruno", "Carla", "Davi"])),
        (json!({"created": {"after": "2026-03-01"}}), set(&["Gabi", "Hugo"])),
        (json!({"created": {"before": "2026-01-01T00:00:00Z"}}), set(&["Ana"])),
        // Nesting.
        (
            json!({"all": [{"tag": "vip"}, {"any": [{"stage": "customer"}, {"not": {"created": {"before": "2026-02-01"}}}]}]}),
            set(&["Ana", "Eva", "Hugo"]),
        ),
        (
            json!({"any": [{"all": [{"tag": "newsletter"}, {"not": {"consent": {"channel": "whatsapp", "purpose": "marketing"}}}]}, {"field": "spend", "op": "lt", "value": "0"}]}),
            set(&["Bruno", "Carla", "Eva"]),
        ),
        (json!({"not": {"not": {"tag": "vip"}}}), set(&["Ana", "Bruno", "Eva", "Hugo"])),
    ] {
        assert_eq!(selected(&b, &p, &filter).await, expected, "{filter}");
    }

    // A segment ANDs with the search's other criteria.
    let seg = b.app.save_segment(&p, "", "VIP", &json!({"tag": "vip"}).to_string()).await.unwrap();
    let q = ContactQuery { segment_id: Some(seg.id.to_string()), ..ContactQuery::new("", &[], "lead").unwrap() };
    let found = b.app.search_contacts(&p, q, &Map::new(), &PageRequest::default()).await.unwrap();
    assert_eq!(found.items.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["Bruno Costa"]);
    // Counts are live: a new VIP is counted on the next read; renaming keeps the id.
    let input = ContactInput { name: Some("Ivo"), tags: Some(&["vip".to_owned()]), ..Default::default() };
    b.app.create_contact(&p, &input, &Map::new(), "").await.unwrap();
    assert_eq!(b.app.segment(&p, &seg.id.to_string()).await.unwrap().count, 5);
    let renamed = b.app.save_segment(&p, &seg.id.to_string(), "VIPs", &seg.filter.to_string()).await.unwrap();
    assert_eq!((renamed.id, renamed.name.as_str(), renamed.count), (seg.id, "VIPs", 5));
    // An anonymized contact is nobody's audience, even of a segment of everyone.
    let everyone = b.app.save_segment(&p, "", "Everyone", "{\"all\": []}").await.unwrap();
    assert_eq!(everyone.count, 9);
    let hugo = b
        .app
        .search_contacts(&p, ContactQuery::new("hugo", &[], "").unwrap(), &Map::new(), &PageRequest::default())
        .await
        .unwrap();
    b.app.anonymize_contact(&p, &hugo.items[0].id.to_string()).await.unwrap();
    assert_eq!(b.app.segment(&p, &everyone.id.to_string()).await.unwrap().count, 8);
    assert_eq!(b.app.segment(&p, &seg.id.to_string()).await.unwrap().count, 4);
    b.app.delete_segment(&p, &everyone.id.to_string()).await.unwrap();
    // A deleted field's condition matches nobody, and the segment still reads.
    let gold = b
        .app
        .save_segment(
            &p,
            "",
            "Gold",
            &json!({"any": [{"field": "tier", "op": "eq", "value": "Gold"}, {"tag": "newsletter"}]}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(gold.count, 5);
    b.app.delete_field(&p, "tier").await.unwrap();
    assert_eq!(b.app.segment(&p, &gold.id.to_string()).await.unwrap().count, 3);
    let listed = b.app.segments(&p, &page(1, None)).await.unwrap();
    assert_eq!((listed.items[0].name.as_str(), listed.items[0].count), ("Gold", 3));
    let rest = b.app.segments(&p, &page(10, listed.next_cursor)).await.unwrap();
    assert_eq!(rest.items.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["VIPs"]);
}

#[tokio::test]
async fn bad_segments_get_4xx_codes_and_change_nothing() {
    let b = book().await;
    let p = member(WorkspaceId::new(), Role::Member);
    seeded(&b, &p).await;
    let mut deep = json!({"tag": "vip"});
    for _ in 0..10 {
        deep = json!({"not": deep});
    }
    for (filter, code) in [
        ("{\"tag\": ".to_owned(), "messaging.invalid_segment_filter"),
        ("[]".to_owned(), "messaging.invalid_segment_filter"),
        (json!({"tag": "vip", "stage": "lead"}).to_string(), "messaging.invalid_segment_filter"),
        (json!({"field": "colour", "op": "eq", "value": "red"}).to_string(), "messaging.segment_unknown_field"),
        (json!({"field": "spend", "op": "gt", "value": "lots"}).to_string(), "messaging.segment_invalid_value"),
        (json!({"field": "spend", "op": "contains", "value": "1"}).to_string(), "messaging.segment_op_not_for_kind"),
        (json!({"field": "city", "op": "like", "value": "R"}).to_string(), "messaging.invalid_segment_op"),
        (json!({"stage": "boss"}).to_string(), "messaging.segment_invalid_value"),
        (deep.to_string(), "messaging.segment_filter_too_deep"),
        ("[".repeat(100_000), "messaging.segment_filter_too_large"),
        (format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)), "messaging.segment_filter_too_deep"),
    ] {
        let e = b.app.save_segment(&p, "", "Bad", &filter).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::InvalidArgument, code),
            "{}",
            filter.chars().take(80).collect::<String>()
        );
    }
    for name in ["", "   ", &"n".repeat(101)] {
        let e = b.app.save_segment(&p, "", name, "{\"all\": []}").await.unwrap_err();
        assert_eq!(e.code(), "messaging.invalid_segment_name");
    }
    assert!(b.app.segments(&p, &PageRequest::default()).await.unwrap().items.is_empty(), "nothing was saved");
    b.app.save_segment(&p, "", "Everyone", "{\"all\": []}").await.unwrap();
    let e = b.app.save_segment(&p, "", "Everyone", "{\"any\": []}").await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Conflict, "messaging.segment_name_taken"));
    for id in ["nope", &Uuid::now_v7().to_string()] {
        assert_eq!(b.app.segment(&p, id).await.unwrap_err().code(), "messaging.segment_not_found");
        assert_eq!(
            b.app.save_segment(&p, id, "X", "{\"all\": []}").await.unwrap_err().code(),
            "messaging.segment_not_found"
        );
        let q = ContactQuery { segment_id: Some(id.to_owned()), ..Default::default() };
        let e = b.app.search_contacts(&p, q, &Map::new(), &PageRequest::default()).await.unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.segment_not_found"));
    }
    assert_eq!(b.app.segments(&p, &PageRequest::default()).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn another_workspace_sees_none_of_the_crm() {
    let b = book().await;
    let a = member(WorkspaceId::new(), Role::Owner);
    let other = member(WorkspaceId::new(), Role::Owner);
    let c = contact(&b, &a, "Ana").await;
    let cid = c.id.to_string();
    b.app.add_activity(&a, &cid, &note("private")).await.unwrap();
    let due = Some(Utc::now() + Duration::days(1));
    let task = b
        .app
        .add_activity(&a, &cid, &ActivityInput { kind: "task", body: "call back", due_at: due, ..Default::default() })
        .await
        .unwrap();
    let d = b.app.create_deal(&a, &usd(&cid, "Secret deal", 5000)).await.unwrap();
    let seg = b.app.save_segment(&a, "", "All", "{\"all\": []}").await.unwrap();
    assert_eq!(seg.count, 1);

    let e = b.app.activities(&other, &cid, &PageRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), "messaging.contact_not_found");
    assert_eq!(b.app.add_activity(&other, &cid, &note("x")).await.unwrap_err().code(), "messaging.contact_not_found");
    assert_eq!(b.app.complete_task(&other, &task.id.to_string()).await.unwrap_err().code(), "messaging.task_not_found");
    let theirs = b.app.tasks(&other, &a.user_id.to_string(), &PageRequest::default()).await.unwrap();
    assert!(theirs.items.is_empty());

    assert!(b.app.deals(&other, "", "", &PageRequest::default()).await.unwrap().items.is_empty());
    assert!(
        b.app.deals(&other, &d.stage_id.to_string(), &cid, &PageRequest::default()).await.unwrap().items.is_empty()
    );
    let title_only = ["title".to_owned()];
    let e = b
        .app
        .update_deal(&other, &d.id.to_string(), &DealInput { title: "Mine", ..Default::default() }, &title_only)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "messaging.deal_not_found");
    assert_eq!(
        b.app.create_deal(&other, &usd(&cid, "Steal", 1)).await.unwrap_err().code(),
        "messaging.contact_not_found"
    );
    // Their own contact in A's stage: the stage is not theirs.
    let own = contact(&b, &other, "Bea").await;
    let own_id = own.id.to_string();
    let a_stage = d.stage_id.to_string();
    let e =
        b.app.create_deal(&other, &DealInput { stage_id: &a_stage, ..usd(&own_id, "Sneaky", 1) }).await.unwrap_err();
    assert_eq!(e.code(), "messaging.stage_not_found");
    let e = b.app.save_stages(&other, &[(Some(a_stage.as_str()), "Mine", "open")]).await.unwrap_err();
    assert_eq!(e.code(), "messaging.stage_not_found");
    assert_ne!(b.app.stages(&other).await.unwrap()[0].id, d.stage_id, "each workspace has its own pipeline");

    let sid = seg.id.to_string();
    assert_eq!(b.app.segment(&other, &sid).await.unwrap_err().code(), "messaging.segment_not_found");
    assert_eq!(b.app.delete_segment(&other, &sid).await.unwrap_err().code(), "messaging.segment_not_found");
    assert_eq!(
        b.app.save_segment(&other, &sid, "Mine", "{\"any\": []}").await.unwrap_err().code(),
        "messaging.segment_not_found"
    );
    assert!(b.app.segments(&other, &PageRequest::default()).await.unwrap().items.is_empty());
    let q = ContactQuery { segment_id: Some(sid.clone()), ..Default::default() };
    let e = b.app.search_contacts(&other, q, &Map::new(), &PageRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), "messaging.segment_not_found");
    // Their "everyone" counts only their own book.
    assert_eq!(b.app.save_segment(&other, "", "All", "{\"all\": []}").await.unwrap().count, 1);

    // A's data is intact.
    assert_eq!(b.app.segment(&a, &sid).await.unwrap().name, "All");
    assert_eq!(b.app.activities(&a, &cid, &PageRequest::default()).await.unwrap().items.len(), 3);
    assert_eq!(b.app.deals(&a, "", "", &PageRequest::default()).await.unwrap().items[0].title, "Secret deal");
}

#[tokio::test]
async fn the_crm_service_answers_over_grpc() {
    use nexus_proto::common::{Money, PageRequest as PbPage};
    use nexus_proto::nexus::messaging::v1 as pb;
    use nexus_proto::nexus::messaging::v1::contacts_client::ContactsClient;
    use nexus_proto::nexus::messaging::v1::crm_client::CrmClient;
    use nexus_testkit::identity::authed;

    let svc = crate::support::Service::start().await;
    let ws = WorkspaceId::new();
    let token = svc.issuer.user_token(ws, Role::Member);
    let other = svc.issuer.user_token(WorkspaceId::new(), Role::Owner);
    let channel = tonic::transport::Endpoint::from_shared(svc.running.grpc_url()).unwrap().connect().await.unwrap();
    let mut crm = CrmClient::new(channel.clone());
    let mut contacts = ContactsClient::new(channel);
    let mut ids = Vec::new();
    for (name, tags) in [("Ana", vec!["vip".to_owned()]), ("Bea", vec![])] {
        let input = pb::ContactInput { name: name.into(), tags, ..Default::default() };
        ids.push(contacts.create_contact(authed(input, &token)).await.unwrap().into_inner().id);
    }

    // A segment, and contact search narrowed by it.
    let input = pb::SegmentInput { name: "VIP".into(), filter_json: r#"{"tag": "vip"}"#.into(), ..Default::default() };
    let seg = crm.save_segment(authed(input, &token)).await.unwrap().into_inner();
    assert_eq!((seg.count, seg.filter_json.as_str()), (1, r#"{"tag":"vip"}"#));
    let req = pb::SearchContactsRequest { segment_id: seg.id.clone(), ..Default::default() };
    let found = contacts.search_contacts(authed(req, &token)).await.unwrap().into_inner().items;
    assert_eq!(found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["Ana"]);
    let e = crm.get_segment(authed(pb::GetByIdRequest { id: seg.id.clone() }, &other)).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::NotFound, "messaging.segment_not_found"));
    let bad = pb::SegmentInput {
        name: "Bad".into(),
        filter_json: r#"{"field": "colour", "op": "eq", "value": "red"}"#.into(),
        ..Default::default()
    };
    let e = crm.save_segment(authed(bad, &token)).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::InvalidArgument, "messaging.segment_unknown_field"));

    // A deal in exact money, won.
    let stages = crm.list_stages(authed(pb::Empty {}, &token)).await.unwrap().into_inner().items;
    let won = stages.iter().find(|s| s.outcome == "won").unwrap();
    let input = pb::DealInput {
        contact_id: ids[0].clone(),
        title: "Annual plan".into(),
        amount: Some(Money { amount_minor: 1999, currency: "USD".into() }),
        expected_close: "2026-06-30".into(),
        ..Default::default()
    };
    let d = crm.create_deal(authed(input, &token)).await.unwrap().into_inner();
    assert_eq!(
        (d.amount.clone().unwrap().amount_minor, d.stage_id.as_str(), d.closed_at),
        (1999, stages[0].id.as_str(), None)
    );
    let update = pb::UpdateDealRequest {
        id: d.id.clone(),
        deal: Some(pb::DealInput { stage_id: won.id.clone(), ..Default::default() }),
        update_mask: vec!["stage_id".into()],
    };
    let closed = crm.update_deal(authed(update, &token)).await.unwrap().into_inner();
    assert!(closed.closed_at.is_some());
    let listed = crm
        .list_deals(authed(
            pb::ListDealsRequest {
                stage_id: won.id.clone(),
                page: Some(PbPage { page_size: 10, cursor: String::new() }),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.iter().map(|d| d.title.as_str()).collect::<Vec<_>>(), vec!["Annual plan"]);
    let bad_money = pb::DealInput {
        amount: Some(Money { amount_minor: 5, currency: "DOGE".into() }),
        ..pb::DealInput { contact_id: ids[1].clone(), title: "X".into(), ..Default::default() }
    };
    let e = crm.create_deal(authed(bad_money, &token)).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::InvalidArgument, "money.unsupported_currency"));

    // A task: listed, completed; a malformed time is refused.
    let due = nexus_platform::grpc::ts(Utc::now() + Duration::days(1));
    let input = pb::ActivityInput {
        contact_id: ids[1].clone(),
        kind: "task".into(),
        body: "Call Bea".into(),
        due_at: Some(due),
        ..Default::default()
    };
    let task = crm.add_activity(authed(input, &token)).await.unwrap().into_inner();
    assert!(task.assignee_id.starts_with("usr_"));
    let tasks = crm.list_tasks(authed(pb::ListTasksRequest::default(), &token)).await.unwrap().into_inner().items;
    assert_eq!(tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), vec![task.id.as_str()]);
    let done =
        crm.complete_task(authed(pb::GetByIdRequest { id: task.id.clone() }, &token)).await.unwrap().into_inner();
    assert!(done.done_at.is_some());
    let broken = prost_types::Timestamp { seconds: 0, nanos: -1 };
    let input = pb::ActivityInput {
        contact_id: ids[1].clone(),
        kind: "call".into(),
        occurred_at: Some(broken),
        ..Default::default()
    };
    let e = crm.add_activity(authed(input, &token)).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::InvalidArgument, "messaging.invalid_time"));
    let timeline = crm
        .list_activities(authed(pb::ListActivitiesRequest { contact_id: ids[0].clone(), page: None }, &token))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(timeline.iter().all(|a| a.kind == "deal") && timeline.len() == 2, "{timeline:?}");
    assert_eq!(serde_json::from_str::<Value>(&timeline[0].data_json).unwrap()["to"], json!("Won"));
}

#[tokio::test]
async fn reading_the_pipeline_writes_nothing_and_its_ids_hold_at_the_first_write() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let viewer = member(ws, Role::Viewer);
    let m = member(ws, Role::Member);
    let c = contact(&b, &m, "Vera").await;
    let admin = b.admin_pool().await;
    let rows = |sql: &'static str| {
        let admin = admin.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).bind(ws.as_uuid()).fetch_one(&admin).await.unwrap() }
    };
    const STAGES: &str = "SELECT count(*) FROM messaging.pipeline_stages WHERE tenant_id = $1";
    const OUTBOX: &str = "SELECT count(*) FROM messaging.outbox WHERE tenant_id = $1";
    let outbox_before = rows(OUTBOX).await;

    let shown = b.app.stages(&viewer).await.unwrap();
    assert_eq!(
        shown.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        deal::DEFAULT_PIPELINE.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    assert_eq!(b.app.stages(&viewer).await.unwrap(), shown, "the same ids on every read");
    // Nothing stored, nothing audited.
    assert_eq!((rows(STAGES).await, rows(OUTBOX).await), (0, outbox_before));
    // Another workspace is shown other ids.
    let elsewhere = b.app.stages(&member(WorkspaceId::new(), Role::Viewer)).await.unwrap();
    assert!(elsewhere.iter().all(|s| !shown.iter().any(|t| t.id == s.id)));

    // A deal placed in a stage the viewer was shown: the first write stores the pipeline under
    // those ids.
    let qualified = &shown[1];
    let input = DealInput {
        contact_id: &c.id.to_string(),
        title: "First",
        stage_id: &qualified.id.to_string(),
        amount: Some((500, "USD")),
        ..Default::default()
    };
    let d = b.app.create_deal(&m, &input).await.unwrap();
    assert_eq!(d.stage_id, qualified.id);
    assert_eq!(rows(STAGES).await, i64::try_from(shown.len()).unwrap());
    assert_eq!(b.app.stages(&viewer).await.unwrap(), shown);
}
