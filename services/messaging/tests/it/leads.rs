//! Content's captured leads become contacts with a lead activity, once however often the event
//! arrives; a channel identity with the same phone lands on the same contact.

use chrono::Utc;
use nexus_kernel::WorkspaceId;
use nexus_messaging::domain::contact::IdentityKind;
use nexus_platform::identity::Role;
use nexus_proto::events as ev;
use nexus_proto::nexus::messaging::v1 as pb;
use nexus_proto::nexus::messaging::v1::contacts_client::ContactsClient;
use nexus_testkit::identity::authed;
use prost::{Message, Name};

use crate::support::*;

fn lead(ws: WorkspaceId, lead_id: &str, email: &str, phone: &str) -> ev::PageLeadCaptured {
    ev::PageLeadCaptured {
        workspace_id: ws.to_string(),
        page_id: "pag_0192f0c5c2b87c31a1f1e4f2b1a0c9d7".into(),
        lead_id: lead_id.into(),
        slug: "summer-sale".into(),
        language: "pt".into(),
        name: "Ana Silva".into(),
        email: email.into(),
        phone: phone.into(),
        message: "Quero saber o preço".into(),
        consent: true,
    }
}

async fn publish(bus: &nexus_platform::bus::Bus, ws: WorkspaceId, event_id: uuid::Uuid, msg: &ev::PageLeadCaptured) {
    let env = ev::Envelope {
        event_id: event_id.to_string(),
        tenant_id: ws.as_uuid().to_string(),
        event_type: ev::PageLeadCaptured::full_name(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        schema_version: 1,
        source: "content".into(),
        payload: msg.encode_to_vec(),
        ..Default::default()
    };
    // No message id: JetStream keeps every copy, so the consumer really sees each one.
    bus.js
        .publish(bus.subject("nexus.content.page.lead_captured"), env.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn search(client: &mut ContactsClient<tonic::transport::Channel>, token: &str, text: &str) -> Vec<pb::Contact> {
    let req = pb::SearchContactsRequest { text: text.into(), ..Default::default() };
    client.search_contacts(authed(req, token)).await.unwrap().into_inner().items
}

#[tokio::test]
async fn a_captured_lead_becomes_one_contact_with_one_lead_activity() {
    let svc = Service::start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("content").await.unwrap();
    let ws = WorkspaceId::new();
    let token = svc.issuer.user_token(ws, Role::Member);
    let mut client = svc.contacts().await;

    let first = lead(ws, "led_1", "Ana.Silva@Example.com", "+55 11 98765-4321");
    let event_id = uuid::Uuid::now_v7();
    publish(&bus, ws, event_id, &first).await;
    // The same event twice more (a redelivery), and the same lead under a new event id (a
    // producer that re-sent it after the inbox forgot): nothing changes.
    publish(&bus, ws, event_id, &first).await;
    publish(&bus, ws, uuid::Uuid::now_v7(), &first).await;

    let found = svc
        .eventually(|| {
            let (mut client, token) = (client.clone(), token.clone());
            async move { search(&mut client, &token, "ana.silva").await.into_iter().next() }
        })
        .await;
    assert_eq!(found.email, "ana.silva@example.com");
    assert_eq!(found.phone, "+5511987654321");
    assert_eq!(found.stage, "lead");
    assert_eq!(found.source, "page:summer-sale");
    assert_eq!(found.language, "pt");
    assert!(found.identities.iter().any(|i| i.kind == "email" && i.value == "ana.silva@example.com"));
    let consents: Vec<_> = found.consents.iter().map(|c| (c.channel.as_str(), c.status.as_str())).collect();
    assert_eq!(consents, vec![("email", "granted"), ("whatsapp", "granted")]);

    // Let the copies be consumed, then count.
    svc.wait_consumed("messaging-leads", 3).await;
    assert_eq!(search(&mut client, &token, "ana.silva").await.len(), 1);
    assert_eq!(svc.count(ws, "SELECT count(*) FROM messaging.contacts WHERE tenant_id = $1").await, 1);
    assert_eq!(
        svc.count(ws, "SELECT count(*) FROM messaging.activities WHERE tenant_id = $1 AND kind = 'lead'").await,
        1
    );

    // A second lead of the same person (same phone, no email) adds a lead activity to the same
    // contact.
    let second = lead(ws, "led_2", "", "+55 (11) 98765-4321");
    publish(&bus, ws, uuid::Uuid::now_v7(), &second).await;
    svc.wait_consumed("messaging-leads", 4).await;
    assert_eq!(svc.count(ws, "SELECT count(*) FROM messaging.contacts WHERE tenant_id = $1").await, 1);
    assert_eq!(
        svc.count(ws, "SELECT count(*) FROM messaging.activities WHERE tenant_id = $1 AND kind = 'lead'").await,
        2
    );

    // WhatsApp later knows the person by wa_id: the same contact, which now holds that identity.
    let mut tx = nexus_platform::db::tenant(&svc.pool, ws).await.unwrap();
    let (id, created) = nexus_messaging::app::contacts::resolve_identity(
        &mut tx,
        ws,
        IdentityKind::Whatsapp,
        "5511987654321",
        "Ana",
        "whatsapp",
    )
    .await
    .unwrap();
    nexus_platform::db::commit(tx).await.unwrap();
    assert!(!created);
    assert_eq!(id.to_string(), found.id);
    let again = client.get_contact(authed(pb::GetByIdRequest { id: found.id.clone() }, &token)).await.unwrap();
    assert!(again.into_inner().identities.iter().any(|i| i.kind == "whatsapp" && i.value == "5511987654321"));

    // Another workspace sees none of it.
    let other = svc.issuer.user_token(WorkspaceId::new(), Role::Owner);
    assert!(search(&mut client, &other, "ana.silva").await.is_empty());
    let err = client.get_contact(authed(pb::GetByIdRequest { id: found.id.clone() }, &other)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}
