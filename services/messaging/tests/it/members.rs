//! Owners of contacts and deals and assignees of tasks must be current members of the workspace,
//! as auth's events (sign-up, member joined, member removed) tell messaging.

use chrono::{Duration, Utc};
use nexus_kernel::{Error, ErrorKind, UserId, WorkspaceId};
use nexus_messaging::app::App;
use nexus_messaging::app::contacts::ContactPatch;
use nexus_messaging::domain::activity::ActivityInput;
use nexus_messaging::domain::contact::ContactInput;
use nexus_messaging::domain::deal::DealInput;
use nexus_platform::identity::{Principal, Role};
use nexus_proto::events as ev;
use prost::{Message, Name};
use serde_json::Map;

use crate::support::*;

async fn publish<M: Message + Name>(
    bus: &nexus_platform::bus::Bus,
    subject: &str,
    ws: WorkspaceId,
    event_id: uuid::Uuid,
    at: chrono::DateTime<Utc>,
    msg: &M,
) {
    publish_event(bus, ("auth", subject), ws, event_id, at, msg).await;
}

fn joined(ws: WorkspaceId, user: UserId) -> ev::MemberJoined {
    ev::MemberJoined { workspace_id: ws.to_string(), user_id: user.to_string(), role: "member".into() }
}

fn not_a_member(e: &Error, field: &str) {
    assert_eq!((e.kind(), e.code()), (ErrorKind::InvalidArgument, "messaging.not_a_member"), "{e:?}");
    assert!(format!("{e:?}").contains(field), "{e:?} names {field}");
}

/// Every way of naming `user` as an owner or assignee, as `p` (who owns the contact `on`).
async fn name_everywhere(app: &App, p: &Principal, on: &str, user: UserId) -> Vec<Result<(), Error>> {
    let id = user.to_string();
    let input = ContactInput { name: Some("Olga"), ..Default::default() };
    let created = app.create_contact(p, &input, &Map::new(), &id).await.map(|_| ());
    let patch = ContactPatch { owner_id: &id, mask: vec!["owner_id".into()], ..Default::default() };
    let updated = app.update_contact(p, on, &patch).await.map(|_| ());
    let task = ActivityInput {
        kind: "task",
        body: "call back",
        due_at: Some(Utc::now() + Duration::days(1)),
        assignee_id: &id,
        ..Default::default()
    };
    let assigned = app.add_activity(p, on, &task).await.map(|_| ());
    let deal = DealInput {
        contact_id: on,
        title: "Renewal",
        amount: Some((10_000, "USD")),
        owner_id: &id,
        ..Default::default()
    };
    let dealt = app.create_deal(p, &deal).await.map(|_| ());
    vec![created, updated, assigned, dealt]
}

const FIELDS: [&str; 4] = ["owner_id", "owner_id", "assignee_id", "owner_id"];

#[tokio::test]
async fn only_current_members_of_the_workspace_can_own_or_be_assigned() {
    let svc = Service::start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("auth").await.unwrap();
    let app = App { pool: svc.pool.clone() };
    let ws = WorkspaceId::new();
    let ana = member(ws, Role::Member);
    let (owner, bia) = (UserId::new(), UserId::new());
    let other_ws = WorkspaceId::new();
    let carl = UserId::new();
    let t0 = Utc::now() - Duration::minutes(10);

    let signed_up = ev::UserSignedUp {
        user_id: owner.to_string(),
        workspace_id: ws.to_string(),
        email: "owner@example.com".into(),
        locale: "en".into(),
    };
    publish(&bus, "nexus.auth.user.signed_up", ws, uuid::Uuid::now_v7(), t0, &signed_up).await;
    let bia_joined = uuid::Uuid::now_v7();
    publish(&bus, "nexus.auth.member.joined", ws, bia_joined, t0, &joined(ws, bia)).await;
    publish(&bus, "nexus.auth.member.joined", other_ws, uuid::Uuid::now_v7(), t0, &joined(other_ws, carl)).await;
    svc.wait_consumed_of("auth", "messaging-members-signed-up", 1).await;
    svc.wait_consumed_of("auth", "messaging-members-joined", 2).await;

    let input = ContactInput { name: Some("Carla"), ..Default::default() };
    let on = app.create_contact(&ana, &input, &Map::new(), "").await.unwrap().id.to_string();

    // Members (the owner who signed up, a member who joined) are accepted everywhere.
    for user in [owner, bia] {
        for r in name_everywhere(&app, &ana, &on, user).await {
            r.unwrap();
        }
    }
    // Someone unknown, and another workspace's member, are refused everywhere.
    for user in [UserId::new(), carl] {
        for (r, field) in name_everywhere(&app, &ana, &on, user).await.iter().zip(FIELDS) {
            not_a_member(r.as_ref().unwrap_err(), field);
        }
    }

    // Bia leaves: refused from now on.
    let removed = ev::MemberRemoved { workspace_id: ws.to_string(), user_id: bia.to_string() };
    publish(&bus, "nexus.auth.member.removed", ws, uuid::Uuid::now_v7(), t0 + Duration::minutes(1), &removed).await;
    svc.wait_consumed_of("auth", "messaging-members-removed", 1).await;
    // Her old `joined` again (a redelivery) and an older one under a new id (a late copy): neither
    // brings her back.
    publish(&bus, "nexus.auth.member.joined", ws, bia_joined, t0, &joined(ws, bia)).await;
    publish(&bus, "nexus.auth.member.joined", ws, uuid::Uuid::now_v7(), t0, &joined(ws, bia)).await;
    svc.wait_consumed_of("auth", "messaging-members-joined", 4).await;
    // The contact is still Bia's from the first round (what she owned stays hers); an update
    // checks only a new owner, so hand it to the owner first.
    let to_owner = ContactPatch { owner_id: &owner.to_string(), mask: vec!["owner_id".into()], ..Default::default() };
    app.update_contact(&ana, &on, &to_owner).await.unwrap();
    for (r, field) in name_everywhere(&app, &ana, &on, bia).await.iter().zip(FIELDS) {
        not_a_member(r.as_ref().unwrap_err(), field);
    }

    // Naming yourself needs no projection row: the token proves the membership.
    for r in name_everywhere(&app, &ana, &on, ana.user_id).await {
        r.unwrap();
    }
    // She joins again, later: accepted.
    let back = t0 + Duration::minutes(2);
    publish(&bus, "nexus.auth.member.joined", ws, uuid::Uuid::now_v7(), back, &joined(ws, bia)).await;
    svc.wait_consumed_of("auth", "messaging-members-joined", 5).await;
    for r in name_everywhere(&app, &ana, &on, bia).await {
        r.unwrap();
    }
    assert_eq!(svc.count(ws, "SELECT count(*) FROM messaging.members WHERE tenant_id = $1").await, 2);
}
