//! Messaging's `webhook_endpoint.disabled` mails the workspace's owner and admins once each, in
//! their language, however often the event arrives; members, viewers and other workspaces get
//! nothing.

use chrono::Utc;
use nexus_kernel::WorkspaceId;
use nexus_proto::events as ev;
use nexus_proto::nexus::auth::v1 as pb;
use prost::{Message, Name};

use crate::support::*;

/// Signs up `email` in `locale` and joins the workspace of `inviter` as `role`.
async fn join(auth: &Auth, inviter: &str, email: &str, role: &str, locale: &str) {
    let mut c = auth.client();
    c.invite_member(authed(pb::InviteMemberRequest { email: email.into(), role: role.into() }, inviter))
        .await
        .expect("invite");
    let token = token_in(&auth.last_mail(email).await);
    let session = c
        .sign_up(pb::SignUpRequest {
            email: email.into(),
            password: PASSWORD.into(),
            name: "Dana Levi".into(),
            locale: locale.into(),
            client: None,
        })
        .await
        .expect("sign up")
        .into_inner();
    c.accept_invite(authed(pb::TokenRequest { token }, &session.access_token)).await.expect("accept");
}

async fn mails(auth: &Auth, to: &str) -> Vec<pb::LocalMail> {
    let req = pb::ListLocalMailRequest { to: to.into(), limit: 100 };
    auth.client().list_local_mail(authed(req, &auth.ops_token().await)).await.unwrap().into_inner().items
}

/// The endpoint-disabled mails `to` holds, by their subject in `locale`.
async fn notices(auth: &Auth, to: &str, locale: &str) -> Vec<pb::LocalMail> {
    let subject = nexus_i18n::try_message(locale.parse().unwrap(), "mail-webhook_disabled-subject", &[]).unwrap();
    mails(auth, to).await.into_iter().filter(|m| m.subject == subject).collect()
}

async fn publish(
    bus: &nexus_platform::bus::Bus,
    ws: WorkspaceId,
    event_id: uuid::Uuid,
    msg: &ev::WebhookEndpointDisabled,
) {
    let env = ev::Envelope {
        event_id: event_id.to_string(),
        tenant_id: ws.as_uuid().to_string(),
        event_type: ev::WebhookEndpointDisabled::full_name(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        schema_version: 1,
        source: "messaging".into(),
        payload: msg.encode_to_vec(),
        ..Default::default()
    };
    // No message id: JetStream keeps both copies, so the consumer really sees the duplicate.
    let subject = bus.subject(nexus_auth::events::notices::ENDPOINT_DISABLED);
    bus.js.publish(subject, env.encode_to_vec().into()).await.unwrap().await.unwrap();
}

/// Waits until the notices consumer acknowledged `n` messages.
async fn wait_consumed(bus: &nexus_platform::bus::Bus, n: u64) {
    let stream = bus.ensure_service_stream("messaging").await.unwrap();
    let ok = nexus_testkit::eventually(std::time::Duration::from_secs(15), || {
        let stream = stream.clone();
        async move {
            let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> =
                stream.get_consumer(nexus_auth::events::notices::DURABLE).await;
            match consumer {
                Ok(mut c) => c.info().await.is_ok_and(|i| i.ack_floor.consumer_sequence >= n),
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(ok, "the notices consumer did not acknowledge {n} messages");
}

#[tokio::test]
async fn a_disabled_endpoint_mails_each_owner_and_admin_once_in_their_language() {
    let auth = start_auth(&[]).await;
    let bus = auth._nats.bus().await;
    let owner_email = unique_email("owner");
    let owner = auth.sign_up(&owner_email).await;
    let ws = WorkspaceId::parse(&owner.workspace.as_ref().unwrap().id).unwrap();
    let (admin_email, member_email) = (unique_email("admin"), unique_email("member"));
    join(&auth, &owner.access_token, &admin_email, "admin", "he").await;
    join(&auth, &owner.access_token, &member_email, "member", "en").await;
    let other_email = unique_email("other");
    auth.sign_up(&other_email).await;

    let endpoint = uuid::Uuid::now_v7();
    let disabled = ev::WebhookEndpointDisabled {
        workspace_id: ws.to_string(),
        endpoint_id: endpoint.to_string(),
        url: "https://hooks.example.com/nexus".into(),
        reason: "failing".into(),
        failing_since: Some(prost_types::Timestamp { seconds: Utc::now().timestamp() - 5 * 86_400, nanos: 0 }),
    };
    // The same event twice (a redelivery, or the relay publishing again after a crash).
    let event_id = uuid::Uuid::now_v7();
    publish(&bus, ws, event_id, &disabled).await;
    publish(&bus, ws, event_id, &disabled).await;
    wait_consumed(&bus, 2).await;

    let to_owner = notices(&auth, &owner_email, "pt").await;
    assert_eq!(to_owner.len(), 1, "one mail to the owner");
    let body = &to_owner[0].body;
    assert_eq!(to_owner[0].locale, "pt");
    assert!(body.contains("https://hooks.example.com/nexus"), "{body}");
    assert!(body.contains("todas as entregas falharam durante cinco dias"), "{body}");
    assert!(body.contains(&format!("/settings/webhooks/{endpoint}")), "{body}");

    let to_admin = notices(&auth, &admin_email, "he").await;
    assert_eq!(to_admin.len(), 1, "one mail to the admin, in Hebrew");
    assert!(to_admin[0].body.contains("כל המשלוחים נכשלו במשך חמישה ימים"), "{}", to_admin[0].body);

    // A member, and the owner of another workspace, get nothing (in any language).
    for to in [&member_email, &other_email] {
        let all = mails(&auth, to).await;
        assert!(all.iter().all(|m| !m.body.contains("hooks.example.com")), "{to} got {all:?}");
    }

    // A later event for another workspace mails only that workspace's owner.
    let other_ws =
        WorkspaceId::parse(&auth.login(&other_email, PASSWORD).await.unwrap().workspace.unwrap().id).unwrap();
    let theirs = ev::WebhookEndpointDisabled { workspace_id: other_ws.to_string(), ..disabled.clone() };
    publish(&bus, other_ws, uuid::Uuid::now_v7(), &theirs).await;
    wait_consumed(&bus, 3).await;
    assert_eq!(notices(&auth, &other_email, "pt").await.len(), 1);
    assert_eq!(notices(&auth, &owner_email, "pt").await.len(), 1, "the first workspace's owner got nothing more");
}
