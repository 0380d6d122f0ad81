//! A number's lifecycle against the fake Meta API: its quality rating and tier read at connect
//! (refused tokens and unknown ids connect nothing; Meta down is 503), on demand, by the sweep
//! (two sweeps never claim one number) and from Meta's quality webhook (idempotently);
//! disconnecting (broadcasts canceled and settled, bot removed, token wiped, history kept, the
//! number free again); deleting a bot; and handoffs assigning the conversation.

use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_kernel::ids::UserId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::messaging::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_testkit::whatsapp::{TEST_PHONE_NUMBER_ID, TEST_TOKEN};
use serde_json::json;
use tonic::Code;

use crate::whatsapp::{Stack, start, start_with};

const APP_SECRET: &str = "nexus-development-whatsapp-app-secret";

fn code(e: &tonic::Status) -> String {
    nexus_kernel::Error::from_status(e).code().to_owned()
}

async fn number_row(s: &Stack, id: &str) -> (String, String, Option<chrono::DateTime<chrono::Utc>>, String) {
    sqlx::query_as(
        "SELECT quality_rating, messaging_tier, quality_checked_at, token_sealed FROM messaging.wa_numbers WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(id).unwrap())
    .fetch_one(&s.admin)
    .await
    .unwrap()
}

async fn quality_events(s: &Stack) -> i64 {
    s.count("SELECT count(*) FROM messaging.outbox WHERE subject LIKE '%number.quality_changed'").await
}

fn by_id(id: &str) -> pb::GetByIdRequest {
    pb::GetByIdRequest { id: id.into() }
}

#[tokio::test]
async fn connecting_reads_the_standing_and_a_token_or_id_meta_refuses_connects_nothing() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);

    let e = s.connect(&token, TEST_PHONE_NUMBER_ID, "EAAG-expired").await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (Code::InvalidArgument, "messaging.whatsapp_token_refused"));
    s.fake.forget_number("106540352240000");
    let e = s.connect(&token, "106540352240000", TEST_TOKEN).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (Code::InvalidArgument, "messaging.whatsapp_number_unknown_to_meta"));
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_numbers").await, 0, "nothing stored");
    assert_eq!(s.fake.number_reads(), 2);

    s.fake.set_number_state(TEST_PHONE_NUMBER_ID, "YELLOW", "TIER_10K");
    let n = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap();
    assert_eq!((n.quality_rating.as_str(), n.messaging_tier.as_str()), ("YELLOW", "TIER_10K"));
    assert!(n.quality_checked_at.is_some());

    // The local sandbox says so itself.
    let local = s.connect(&s.owner(WorkspaceId::new()), "5550900", "").await.unwrap();
    assert_eq!((local.quality_rating.as_str(), local.messaging_tier.as_str()), ("GREEN", "TIER_1K"));
}

#[tokio::test]
async fn meta_unreachable_at_connect_is_503_and_nothing_is_stored() {
    let s = start_with(&[("NEXUS_WHATSAPP__BASE_URL", "http://127.0.0.1:1/v25.0")]).await;
    let token = s.owner(WorkspaceId::new());
    let e = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (Code::Unavailable, "messaging.whatsapp_unavailable"));
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_numbers").await, 0);
}

#[tokio::test]
async fn refresh_on_demand_announces_only_changes_and_refuses_viewers_and_strangers() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let id = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    let (_, _, connected_at, _) = number_row(&s, &id).await;

    s.fake.set_number_state(TEST_PHONE_NUMBER_ID, "RED", "TIER_250");
    let n = s.wa().refresh_number(authed(by_id(&id), &token)).await.unwrap().into_inner();
    assert_eq!((n.quality_rating.as_str(), n.messaging_tier.as_str()), ("RED", "TIER_250"));
    let (_, _, checked_at, _) = number_row(&s, &id).await;
    assert!(checked_at > connected_at);
    assert_eq!(quality_events(&s).await, 1);
    s.wa().refresh_number(authed(by_id(&id), &token)).await.unwrap();
    assert_eq!(quality_events(&s).await, 1, "nothing changed, nothing announced");

    let viewer = s.issuer.user_token(ws, Role::Viewer);
    assert_eq!(s.wa().refresh_number(authed(by_id(&id), &viewer)).await.unwrap_err().code(), Code::PermissionDenied);
    let other = s.owner(WorkspaceId::new());
    assert_eq!(s.wa().refresh_number(authed(by_id(&id), &other)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(s.wa().refresh_number(authed(by_id("nope"), &token)).await.unwrap_err().code(), Code::NotFound);

    // A token Meta no longer takes: explained, and the standing stays as last read.
    s.fake.forget_number(TEST_PHONE_NUMBER_ID);
    let e = s.wa().refresh_number(authed(by_id(&id), &token)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(number_row(&s, &id).await.0, "RED");
}

#[tokio::test]
async fn the_sweep_reads_due_numbers_again() {
    let s = start_with(&[("NEXUS_WHATSAPP__QUALITY_REFRESH_EVERY", "300ms")]).await;
    let token = s.owner(WorkspaceId::new());
    let id = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    s.fake.set_number_state(TEST_PHONE_NUMBER_ID, "YELLOW", "TIER_1K");
    let refreshed =
        nexus_testkit::eventually(Duration::from_secs(10), || async { number_row(&s, &id).await.0 == "YELLOW" }).await;
    assert!(refreshed, "the sweep read the new rating");
    assert!(nexus_testkit::eventually(Duration::from_secs(10), || async { quality_events(&s).await == 1 }).await);
}

#[tokio::test]
async fn two_sweeps_never_claim_the_same_number() {
    // The default period: this process's own sweep stays out of the way.
    let s = start().await;
    let token = s.owner(WorkspaceId::new());
    let id = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;

    // Claims skip what another open claim holds, and move what they take out of the due set.
    sqlx::query("UPDATE messaging.wa_numbers SET quality_checked_at = NULL").execute(&s.admin).await.unwrap();
    let mut a = s.admin.begin().await.unwrap();
    let mut b = s.admin.begin().await.unwrap();
    for tx in [&mut a, &mut b] {
        sqlx::query("SET LOCAL search_path TO messaging").execute(&mut **tx).await.unwrap();
    }
    let first = nexus_messaging::repo::whatsapp::claim_due_standing(&mut a, 3600.0, 10).await.unwrap();
    let second = nexus_messaging::repo::whatsapp::claim_due_standing(&mut b, 3600.0, 10).await.unwrap();
    let claimed: Vec<String> = first.iter().chain(&second).map(|n| n.id.to_string()).collect();
    assert_eq!(claimed.iter().filter(|c| **c == id).count(), 1, "{claimed:?}");
    a.commit().await.unwrap();
    b.commit().await.unwrap();
    let mut c = s.admin.begin().await.unwrap();
    sqlx::query("SET LOCAL search_path TO messaging").execute(&mut *c).await.unwrap();
    let again = nexus_messaging::repo::whatsapp::claim_due_standing(&mut c, 3600.0, 10).await.unwrap();
    assert!(again.is_empty(), "claimed numbers are not due again within the period");
}

fn quality_webhook(limit: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": 1748454394,
        "changes": [{"field": "phone_number_quality_update",
                     "value": {"display_phone_number": "15550783881", "event": "DOWNGRADE", "current_limit": limit}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn metas_quality_webhook_applies_the_tier_once_and_makes_the_rating_due() {
    let s = start().await;
    let token = s.owner(WorkspaceId::new());
    let id = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;

    let body = quality_webhook("TIER_250");
    let signature = nexus_providers::whatsapp::signature(APP_SECRET, &body);
    let r = s.post(&body, &signature).await;
    assert_eq!(r.status, 200);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["applied"], 1);
    let (rating, tier, checked_at, _) = number_row(&s, &id).await;
    assert_eq!((rating.as_str(), tier.as_str(), checked_at), ("GREEN", "TIER_250", None));
    assert_eq!(quality_events(&s).await, 1);
    // Meta redelivers: nothing more changes.
    let r = s.post(&body, &signature).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["applied"], 0);
    assert_eq!(quality_events(&s).await, 1);
    // Unsigned or for a number not connected here: nothing.
    let r = s.post(&quality_webhook("TIER_1K"), "sha256=00").await;
    assert_eq!(r.status, 401);
    let other = quality_webhook("TIER_1K");
    let other = String::from_utf8(other).unwrap().replace("15550783881", "15550000000").into_bytes();
    let r = s.post(&other, &nexus_providers::whatsapp::signature(APP_SECRET, &other)).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["applied"], 0);
    assert_eq!(number_row(&s, &id).await.1, "TIER_250");
}

#[tokio::test]
async fn disconnecting_cancels_broadcasts_removes_the_bot_wipes_the_token_and_frees_the_number() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    s.approved_template(&token, &number).await;
    crate::broadcasts::contacts(&s, ws, 5).await;
    crate::broadcasts::credits(&s, ws, &token, 100).await;
    let seg = crate::broadcasts::segment(&s, &token).await;
    let mut later = crate::broadcasts::input(&number, &seg, 1);
    later.scheduled_at = Some(prost_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 3600, nanos: 0 });
    let b = s.wa().create_broadcast(authed(later, &token)).await.unwrap().into_inner();
    assert!(
        nexus_testkit::eventually(Duration::from_secs(20), || async { s.balance(&token).await.reserved > 0 }).await
    );
    let bot = json!({"rules": [], "time_zone": "Europe/Madrid", "handoff_keyword": "agent", "handoff_reply": "Soon."});
    let req = pb::SetBotRequest { number_id: number.clone(), config_json: bot.to_string(), enabled: true };
    s.wa().set_bot(authed(req, &token)).await.unwrap();
    // History: a contact wrote and was answered.
    let contact = s.contact(&token, "+34612340001", Some("granted")).await;
    s.last_inbound(&number, &contact, chrono::Duration::minutes(5)).await;
    s.send_text(&token, &number, &contact, "Hello!").await.unwrap();

    // Members and other workspaces cannot.
    let member = s.issuer.user_token(ws, Role::Member);
    let e = s.wa().disconnect_number(authed(by_id(&number), &member)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let other = s.owner(WorkspaceId::new());
    assert_eq!(s.wa().disconnect_number(authed(by_id(&number), &other)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(s.wa().disconnect_number(authed(by_id("nope"), &token)).await.unwrap_err().code(), Code::NotFound);

    s.wa().disconnect_number(authed(by_id(&number), &token)).await.unwrap();
    let b = s.wa().get_broadcast(authed(by_id(&b.id), &token)).await.unwrap().into_inner();
    assert_eq!(b.status, "canceled");
    assert!(
        nexus_testkit::eventually(Duration::from_secs(20), || async { s.balance(&token).await.reserved == 0 }).await,
        "the broadcast's hold is given back"
    );
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_bots").await, 0);
    assert_eq!(number_row(&s, &number).await.3, "", "token wiped");
    assert_eq!(s.count("SELECT count(*) FROM messaging.outbox WHERE subject LIKE '%number.disconnected'").await, 1);
    assert_eq!(s.wa().disconnect_number(authed(by_id(&number), &token)).await.unwrap_err().code(), Code::NotFound);

    // Gone for acting on it; its history stays readable.
    assert!(s.wa().list_numbers(authed(pb::Empty {}, &token)).await.unwrap().into_inner().numbers.is_empty());
    assert_eq!(s.wa().get_number(authed(by_id(&number), &token)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(s.send_text(&token, &number, &contact, "Again").await.unwrap_err().code(), Code::NotFound);
    let tpl = s.create_template(&token, &number, crate::whatsapp::order_update()).await.unwrap_err();
    assert_eq!(tpl.code(), Code::NotFound);
    let req = pb::SimulateRequest {
        number_id: number.clone(),
        event: Some(pb::simulate_request::Event::Status(pb::SimulatedStatus {
            wamid: "wamid.x".into(),
            status: "read".into(),
            error_code: 0,
        })),
    };
    assert_eq!(s.wa().simulate(authed(req, &token)).await.unwrap_err().code(), Code::NotFound);
    let req = pb::TemplatesRequest { number_id: number.clone() };
    assert_eq!(s.wa().get_bot(authed(req, &token)).await.unwrap_err().code(), Code::NotFound);
    let req = pb::ListWhatsAppMessagesRequest { contact_id: contact.clone(), page: None };
    let history = s.wa().list_whats_app_messages(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!(history.messages.len(), 1);
    let req = pb::ListConversationsRequest { filter: "all".into(), number_id: String::new(), page: None };
    assert_eq!(s.wa().list_conversations(authed(req, &token)).await.unwrap().into_inner().conversations.len(), 1);

    // Free again: in this workspace (the FREE plan's one number no longer taken) and, once
    // disconnected here, in another.
    let again = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap();
    assert_ne!(again.id, number);
    s.wa().disconnect_number(authed(by_id(&again.id), &token)).await.unwrap();
    s.connect(&other, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap();
    assert_eq!(s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap_err().code(), Code::AlreadyExists);
}

#[tokio::test]
async fn a_bot_is_deleted_once() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, "5550910", "").await.unwrap().id;
    let req = |t: &str| authed(pb::TemplatesRequest { number_id: number.clone() }, t);
    assert_eq!(s.wa().delete_bot(req(&token)).await.unwrap_err().code(), Code::NotFound, "no bot yet");
    let bot = json!({"rules": [], "time_zone": "UTC", "handoff_keyword": "agent", "handoff_reply": "Soon."});
    let set = pb::SetBotRequest { number_id: number.clone(), config_json: bot.to_string(), enabled: true };
    s.wa().set_bot(authed(set, &token)).await.unwrap();
    let viewer = s.issuer.user_token(ws, Role::Viewer);
    assert_eq!(s.wa().delete_bot(req(&viewer)).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(s.wa().delete_bot(req(&s.owner(WorkspaceId::new()))).await.unwrap_err().code(), Code::NotFound);
    s.wa().delete_bot(req(&token)).await.unwrap();
    assert_eq!(s.wa().get_bot(req(&token)).await.unwrap_err().code(), Code::NotFound);
    let e = s.wa().delete_bot(req(&token)).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (Code::NotFound, "messaging.whatsapp_bot_not_found"));
}

/// Records `user` as a member who joined `minutes_ago`.
async fn member(s: &Stack, ws: WorkspaceId, minutes_ago: i64, active: bool) -> UserId {
    let user = UserId::new();
    sqlx::query("INSERT INTO messaging.members (tenant_id, user_id, active, changed_at) VALUES ($1, $2, $3, $4)")
        .bind(ws.as_uuid())
        .bind(user.as_uuid())
        .bind(active)
        .bind(chrono::Utc::now() - chrono::Duration::minutes(minutes_ago))
        .execute(&s.admin)
        .await
        .unwrap();
    user
}

async fn say(s: &Stack, token: &str, number: &str, from: &str, text: &str) {
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
    assert_eq!(s.wa().simulate(authed(req, token)).await.unwrap().into_inner().http_status, 200);
}

async fn assignee(s: &Stack, from: &str) -> Option<uuid::Uuid> {
    sqlx::query_scalar(
        "SELECT c.assigned_to FROM messaging.wa_conversations c JOIN messaging.contact_identities i \
         ON i.contact_id = c.contact_id WHERE i.value = $1",
    )
    .bind(from)
    .fetch_one(&s.admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_handoff_assigns_the_least_busy_member_or_the_configured_one_and_keeps_an_assignee() {
    // Content is unreachable: an agent that cannot answer hands over too.
    let s = start_with(&[("NEXUS_SERVICES__CONTENT", "http://127.0.0.1:1")]).await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let senior = member(&s, ws, 60, true).await;
    let junior = member(&s, ws, 10, true).await;
    let gone = member(&s, ws, 90, false).await;
    let number = s.connect(&token, "5550920", "").await.unwrap().id;
    let mut config = json!({"rules": [{"kind": "keyword", "pattern": "price", "reply": "From 10 €"}],
        "time_zone": "UTC", "handoff_keyword": "agent", "handoff_reply": "A person will answer soon."});
    let set = |config: &serde_json::Value| {
        let mut wa = s.wa();
        let req = pb::SetBotRequest { number_id: number.clone(), config_json: config.to_string(), enabled: true };
        let req = authed(req, &token);
        async move { wa.set_bot(req).await }
    };
    // The configured assignee must be a current member.
    for bad in [gone.to_string(), UserId::new().to_string(), "usr_nonsense".into()] {
        config["handoff_assignee"] = json!(bad);
        assert_eq!(set(&config).await.unwrap_err().code(), Code::InvalidArgument, "{bad}");
    }
    config.as_object_mut().unwrap().remove("handoff_assignee");
    set(&config).await.unwrap();

    // The senior member already has an open conversation.
    say(&s, &token, &number, "5511900000001", "price").await;
    let first = s.count("SELECT count(*) FROM messaging.wa_conversations").await;
    assert_eq!(first, 1);
    sqlx::query("UPDATE messaging.wa_conversations SET assigned_to = $1")
        .bind(senior.as_uuid())
        .execute(&s.admin)
        .await
        .unwrap();

    // Fewest open conversations: the junior one.
    say(&s, &token, &number, "5511900000002", "agent").await;
    assert_eq!(assignee(&s, "5511900000002").await, Some(junior.as_uuid()));
    // One each now: the longest-standing member.
    say(&s, &token, &number, "5511900000003", "AGENT").await;
    assert_eq!(assignee(&s, "5511900000003").await, Some(senior.as_uuid()));
    // Someone has it already: it stays with them.
    say(&s, &token, &number, "5511900000001", "agent").await;
    assert_eq!(assignee(&s, "5511900000001").await, Some(senior.as_uuid()));
    // The handoff events carry the assignee.
    let handoffs: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'assigned_to' FROM messaging.webhook_messages WHERE event_type = 'bot.handoff' ORDER BY created_at, id",
    )
    .fetch_all(&s.admin)
    .await
    .unwrap();
    assert_eq!(handoffs, vec![junior.to_string(), senior.to_string(), senior.to_string()]);

    // Configured: always that member, while a member.
    config["handoff_assignee"] = json!(junior.to_string());
    set(&config).await.unwrap();
    say(&s, &token, &number, "5511900000004", "agent").await;
    assert_eq!(assignee(&s, "5511900000004").await, Some(junior.as_uuid()));

    // An AI agent that cannot answer hands the conversation over the same way.
    config["agent_id"] = json!("agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7");
    set(&config).await.unwrap();
    say(&s, &token, &number, "5511900000005", "do you ship to Recife?").await;
    assert!(
        nexus_testkit::eventually(Duration::from_secs(10), || async {
            assignee(&s, "5511900000005").await == Some(junior.as_uuid())
        })
        .await
    );
    let paused: bool = sqlx::query_scalar(
        "SELECT c.bot_paused FROM messaging.wa_conversations c JOIN messaging.contact_identities i \
         ON i.contact_id = c.contact_id WHERE i.value = '5511900000005'",
    )
    .fetch_one(&s.admin)
    .await
    .unwrap();
    assert!(paused);
    let told = s
        .count(
            "SELECT count(*) FROM messaging.wa_messages WHERE direction = 'out' \
             AND content->>'summary' = 'A person will answer soon.'",
        )
        .await;
    assert_eq!(told, 5, "every handoff told the customer, the AI's too");
}
