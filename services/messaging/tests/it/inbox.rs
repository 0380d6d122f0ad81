//! The shared inbox: conversations listed with unread counts and filters, assigned to members
//! only, resolved and reopened (a new message reopens), read; other workspaces and viewers
//! refused; and the live feed, which follows the events of whichever replica stored a message.

use std::time::Duration;

use futures::StreamExt as _;
use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::messaging::v1 as pb;
use nexus_testkit::identity::authed;
use tonic::Code;

use crate::whatsapp::{Stack, start};

/// The `sub` claim of a test token: the caller's user id.
fn user_of(token: &str) -> String {
    use base64::Engine as _;
    let claims = token.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap();
    serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["sub"].as_str().unwrap().to_owned()
}

async fn inbound(s: &Stack, token: &str, number: &str, from: &str, text: &str) -> pb::SimulateResponse {
    let req = pb::SimulateRequest {
        number_id: number.into(),
        event: Some(pb::simulate_request::Event::Inbound(pb::SimulatedInbound {
            from: from.into(),
            name: format!("Customer {from}"),
            text: text.into(),
            message_id: String::new(),
            reply_id: String::new(),
            media: None,
        })),
    };
    let r = s.wa().simulate(authed(req, token)).await.unwrap().into_inner();
    assert_eq!(r.http_status, 200);
    r
}

async fn list(s: &Stack, token: &str, filter: &str) -> Result<Vec<pb::Conversation>, tonic::Status> {
    let req = pb::ListConversationsRequest { filter: filter.into(), number_id: String::new(), page: None };
    s.wa().list_conversations(authed(req, token)).await.map(|r| r.into_inner().conversations)
}

#[tokio::test]
async fn conversations_are_listed_assigned_to_members_resolved_reopened_and_read() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let me = user_of(&token);
    let number = s.connect(&token, "5550200", "").await.unwrap().id;
    inbound(&s, &token, &number, "5511999990001", "Hi").await;
    inbound(&s, &token, &number, "5511999990001", "Is the blue one in stock?").await;
    inbound(&s, &token, &number, "5511999990002", "Hello").await;

    let open = list(&s, &token, "").await.unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!((open[0].unread, open[0].contact_name.as_str()), (1, "Customer 5511999990002"), "latest first");
    assert_eq!((open[1].unread, open[1].last_message_text.as_str()), (2, "Is the blue one in stock?"));
    let ana = open[1].contact_id.clone();
    let conv = |contact: &str| pb::ConversationRequest { number_id: number.clone(), contact_id: contact.into() };

    // Only current members are assignees; the caller's token proves their own membership.
    let assign = |user: &str| pb::AssignConversationRequest {
        number_id: number.clone(),
        contact_id: ana.clone(),
        user_id: user.into(),
    };
    let stranger = nexus_kernel::ids::UserId::new().to_string();
    let refused = s.wa().assign_conversation(authed(assign(&stranger), &token)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("not_a_member") || format!("{refused:?}").contains("not_a_member"),
        "{refused:?}"
    );
    let refused = s.wa().assign_conversation(authed(assign("usr_nonsense"), &token)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let c = s.wa().assign_conversation(authed(assign(&me), &token)).await.unwrap().into_inner();
    assert_eq!(c.assigned_to, me);
    let mine = list(&s, &token, "mine").await.unwrap();
    assert_eq!(mine.iter().map(|c| c.contact_id.as_str()).collect::<Vec<_>>(), vec![ana.as_str()]);
    let unassigned = list(&s, &token, "unassigned").await.unwrap();
    assert_eq!(unassigned.len(), 1);
    assert_ne!(unassigned[0].contact_id, ana);
    // Someone else's "mine" is empty.
    assert!(list(&s, &s.owner(ws), "mine").await.unwrap().is_empty());

    // Read resets the unread count; resolved leaves the open inbox until the contact writes again.
    let read = s.wa().mark_conversation_read(authed(conv(&ana), &token)).await.unwrap().into_inner();
    assert_eq!(read.unread, 0);
    let req = pb::ResolveConversationRequest { number_id: number.clone(), contact_id: ana.clone(), resolved: true };
    assert!(s.wa().resolve_conversation(authed(req, &token)).await.unwrap().into_inner().resolved);
    assert_eq!(list(&s, &token, "open").await.unwrap().len(), 1);
    assert_eq!(list(&s, &token, "resolved").await.unwrap()[0].contact_id, ana);
    assert_eq!(list(&s, &token, "all").await.unwrap().len(), 2);
    inbound(&s, &token, &number, "5511999990001", "One more thing").await;
    let open = list(&s, &token, "open").await.unwrap();
    assert_eq!((open.len(), open[0].contact_id.as_str(), open[0].unread), (2, ana.as_str(), 1), "reopened on top");
    assert_eq!(open[0].assigned_to, me, "the assignment stays");

    // Each change is announced once, in its transaction; a change that changes nothing is not.
    s.wa().assign_conversation(authed(assign(&me), &token)).await.unwrap();
    let changes = s.count("SELECT count(*) FROM messaging.outbox WHERE subject LIKE '%conversation.changed'").await;
    assert_eq!(changes, 3, "assigned, read, resolved");
    let unassign = authed(assign(""), &token);
    assert!(s.wa().assign_conversation(unassign).await.unwrap().into_inner().assigned_to.is_empty());

    // Bad filters, unknown ids, other workspaces and viewers.
    assert_eq!(list(&s, &token, "everything").await.unwrap_err().code(), Code::InvalidArgument);
    let other = s.owner(WorkspaceId::new());
    assert!(list(&s, &other, "all").await.unwrap().is_empty());
    for (req, t) in [(conv(&ana), &other), (conv("not-a-uuid"), &token)] {
        assert_eq!(s.wa().mark_conversation_read(authed(req, t)).await.unwrap_err().code(), Code::NotFound);
    }
    let e = s.wa().assign_conversation(authed(assign(""), &other)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let viewer = s.issuer.user_token(ws, Role::Viewer);
    let req = pb::ResolveConversationRequest { number_id: number.clone(), contact_id: ana.clone(), resolved: true };
    assert_eq!(s.wa().resolve_conversation(authed(req, &viewer)).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(list(&s, &viewer, "").await.unwrap().len(), 2, "viewers read the inbox");
    let req =
        pb::ListConversationsRequest { filter: String::new(), number_id: uuid::Uuid::now_v7().to_string(), page: None };
    assert_eq!(s.wa().list_conversations(authed(req, &token)).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn the_live_inbox_follows_messages_stored_by_another_replica_and_only_its_workspace() {
    let mut s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let other = s.owner(WorkspaceId::new());
    let number = s.connect(&token, "5550300", "").await.unwrap().id;
    let other_number = s.connect(&other, "5550301", "").await.unwrap().id;

    // Both watch through the first replica; the messages arrive through a second one.
    let mut mine = s.wa().watch_inbox(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    let mut theirs = s.wa().watch_inbox(authed(pb::Empty {}, &other)).await.unwrap().into_inner();
    let second = s.add_replica().await;
    let sim = inbound(&s, &token, &number, "5511999990003", "Hi from the other replica").await;
    assert!(!sim.message_id.is_empty());

    let next = tokio::time::timeout(Duration::from_secs(10), mine.next()).await.expect("an event in time");
    let e = next.unwrap().unwrap();
    assert_eq!(
        (e.kind.as_str(), e.number_id.as_str(), e.direction.as_str(), e.status.as_str()),
        ("message", number.as_str(), "in", "received")
    );
    let contact = e.contact_id.clone();
    let stored: uuid::Uuid = sqlx::query_scalar("SELECT contact_id FROM messaging.wa_messages WHERE wamid = $1")
        .bind(&sim.message_id)
        .fetch_one(&s.admin)
        .await
        .unwrap();
    assert_eq!(contact, stored.to_string());

    // A conversation change shows up as such.
    let req = pb::ResolveConversationRequest { number_id: number.clone(), contact_id: contact.clone(), resolved: true };
    s.wa().resolve_conversation(authed(req, &token)).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), mine.next()).await.expect("in time").unwrap().unwrap();
    assert_eq!(
        (e.kind.as_str(), e.status.as_str(), e.contact_id.as_str()),
        ("conversation", "resolved", contact.as_str())
    );

    // The other workspace saw none of it; its own message it does see.
    inbound(&s, &other, &other_number, "5511999990004", "Mine").await;
    let e = tokio::time::timeout(Duration::from_secs(10), theirs.next()).await.expect("in time").unwrap().unwrap();
    assert_eq!((e.kind.as_str(), e.number_id.as_str()), ("message", other_number.as_str()));
    drop(second);

    let viewer_watch = s.wa().watch_inbox(authed(pb::Empty {}, &s.issuer.user_token(ws, Role::Viewer))).await;
    assert!(viewer_watch.is_ok(), "viewers follow the inbox");
    s.stop_messaging().await;
}
