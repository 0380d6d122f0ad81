//! Messaging's `webhook_endpoint.disabled`, and the ads scheduler's `post.failed` and
//! `account.paused`, mail the workspace's owner and admins once each, in their language, however
//! often the event arrives; members, viewers and other workspaces get nothing. Text a platform
//! wrote reaches the mail as one line of inert text.

use chrono::Utc;
use nexus_auth::events::notices::{ACCOUNT_PAUSED, DURABLE, ENDPOINT_DISABLED, POST_FAILED, ads_durable};
use nexus_kernel::WorkspaceId;
use nexus_proto::events as ev;
use nexus_proto::nexus::auth::v1 as pb;
use prost::{Message, Name};

use crate::support::*;

const MESSAGING: (&str, &str) = ("messaging", ENDPOINT_DISABLED);

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

/// Publishes `msg` as `producer`'s event `event_id` on `subject`.
async fn publish<M: Message + Name>(
    bus: &nexus_platform::bus::Bus,
    (producer, subject): (&str, &str),
    ws: WorkspaceId,
    event_id: uuid::Uuid,
    msg: &M,
) {
    let env = ev::Envelope {
        event_id: event_id.to_string(),
        tenant_id: ws.as_uuid().to_string(),
        event_type: M::full_name(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        schema_version: 1,
        source: producer.into(),
        payload: msg.encode_to_vec(),
        ..Default::default()
    };
    // No message id: JetStream keeps both copies, so the consumer really sees the duplicate.
    bus.js.publish(bus.subject(subject), env.encode_to_vec().into()).await.unwrap().await.unwrap();
}

/// Waits until the consumer `durable` of `producer`'s stream acknowledged `n` messages.
async fn wait_consumed(bus: &nexus_platform::bus::Bus, producer: &str, durable: &str, n: u64) {
    let stream = bus.ensure_service_stream(producer).await.unwrap();
    let ok = nexus_testkit::eventually(std::time::Duration::from_secs(15), || {
        let stream = stream.clone();
        async move {
            let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> = stream.get_consumer(durable).await;
            match consumer {
                Ok(mut c) => c.info().await.is_ok_and(|i| i.ack_floor.consumer_sequence >= n),
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(ok, "the consumer {durable} did not acknowledge {n} messages");
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
    publish(&bus, MESSAGING, ws, event_id, &disabled).await;
    publish(&bus, MESSAGING, ws, event_id, &disabled).await;
    wait_consumed(&bus, "messaging", DURABLE, 2).await;

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
    publish(&bus, MESSAGING, other_ws, uuid::Uuid::now_v7(), &theirs).await;
    wait_consumed(&bus, "messaging", DURABLE, 3).await;
    assert_eq!(notices(&auth, &other_email, "pt").await.len(), 1);
    assert_eq!(notices(&auth, &owner_email, "pt").await.len(), 1, "the first workspace's owner got nothing more");
}

/// A workspace whose owner reads Portuguese, with an admin reading Spanish, one reading Arabic
/// and a member; and the owner of another workspace.
struct People {
    ws: WorkspaceId,
    owner: String,
    es_admin: String,
    ar_admin: String,
    member: String,
    other_ws: WorkspaceId,
    other: String,
}

async fn people(auth: &Auth) -> People {
    let owner = unique_email("owner");
    let session = auth.sign_up(&owner).await;
    let ws = WorkspaceId::parse(&session.workspace.as_ref().unwrap().id).unwrap();
    let (es_admin, ar_admin, member) = (unique_email("es-admin"), unique_email("ar-admin"), unique_email("member"));
    join(auth, &session.access_token, &es_admin, "admin", "es").await;
    join(auth, &session.access_token, &ar_admin, "admin", "ar").await;
    join(auth, &session.access_token, &member, "member", "en").await;
    let other = unique_email("other");
    let other_ws = WorkspaceId::parse(&auth.sign_up(&other).await.workspace.unwrap().id).unwrap();
    People { ws, owner, es_admin, ar_admin, member, other_ws, other }
}

/// The mails `to` holds that link to `link`.
async fn linking(auth: &Auth, to: &str, link: &str) -> Vec<pb::LocalMail> {
    mails(auth, to).await.into_iter().filter(|m| m.body.contains(link)).collect()
}

/// A platform's message trying to add markup and a header of its own.
const HOSTILE: &str = "Invalid parameter <script>alert(1)</script>\r\nBcc: attacker@evil.test\nSubject: pwned";

/// Mail quoting [`HOSTILE`] carries it as one line of text: no markup, no header of its own.
fn assert_inert(m: &pb::LocalMail) {
    assert!(!m.subject.contains(['\r', '\n', '<']), "{:?}", m.subject);
    assert!(!m.body.contains("<script"), "{}", m.body);
    assert!(m.body.lines().all(|l| !l.starts_with("Bcc:") && !l.starts_with("Subject:")), "{}", m.body);
    let quoted = "Invalid parameter ‹script›alert(1)‹/script› Bcc: attacker@evil.test Subject: pwned";
    assert!(m.body.lines().any(|l| l == quoted), "{}", m.body);
}

/// Delivers the ads event `make(ws)` twice (one event id) and an ads event that is no notice
/// (its consumer does not even receive it), then the same event for another workspace. Checks who got mail linking to `link`: the
/// owner and each admin once, in their language; the member and the other workspace's owner
/// nothing, until the other workspace's own event mails its owner alone. Returns the Spanish
/// and the Arabic admin's mail.
async fn ads_notice<M: Message + Name>(
    subject: &str,
    make: impl Fn(WorkspaceId) -> M,
    link: &str,
) -> (pb::LocalMail, pb::LocalMail) {
    let auth = start_auth(&[]).await;
    let bus = auth._nats.bus().await;
    let p = people(&auth).await;
    bus.ensure_service_stream("ads").await.unwrap();
    let event_id = uuid::Uuid::now_v7();
    publish(&bus, ("ads", subject), p.ws, event_id, &make(p.ws)).await;
    publish(&bus, ("ads", subject), p.ws, event_id, &make(p.ws)).await;
    let scheduled = ev::AdsPostScheduled { workspace_id: p.ws.to_string(), ..Default::default() };
    publish(&bus, ("ads", "nexus.ads.post.scheduled"), p.ws, uuid::Uuid::now_v7(), &scheduled).await;
    wait_consumed(&bus, "ads", ads_durable(subject), 2).await;

    let mut got = Vec::new();
    for (to, locale) in [(&p.owner, "pt"), (&p.es_admin, "es"), (&p.ar_admin, "ar")] {
        let mut theirs = linking(&auth, to, link).await;
        assert_eq!(theirs.len(), 1, "{to}: {theirs:?}");
        let m = theirs.remove(0);
        assert_eq!(m.locale, locale);
        assert_inert(&m);
        got.push(m);
    }
    for to in [&p.member, &p.other] {
        assert!(linking(&auth, to, link).await.is_empty(), "{to} got mail");
    }

    publish(&bus, ("ads", subject), p.other_ws, uuid::Uuid::now_v7(), &make(p.other_ws)).await;
    wait_consumed(&bus, "ads", ads_durable(subject), 3).await;
    assert_eq!(linking(&auth, &p.other, link).await.len(), 1);
    for to in [&p.owner, &p.es_admin, &p.ar_admin] {
        assert_eq!(linking(&auth, to, link).await.len(), 1, "{to} got mail for another workspace");
    }
    let ar = got.pop().unwrap();
    (got.pop().unwrap(), ar)
}

#[tokio::test]
async fn a_failed_post_mails_each_owner_and_admin_once_with_the_platforms_reason() {
    let post = uuid::Uuid::now_v7();
    let failed = |ws: WorkspaceId| ev::AdsPostFailed {
        workspace_id: ws.to_string(),
        post_id: format!("post_{}", post.simple()),
        target_id: format!("ptgt_{}", uuid::Uuid::now_v7().simple()),
        provider: "meta".into(),
        platform: "instagram".into(),
        account: "17841405822304914".into(),
        error_code: "ads.post_rejected".into(),
        reason: HOSTILE.into(),
    };
    let (es, ar) = ads_notice(POST_FAILED, failed, &format!("/posts/post_{}", post.simple())).await;

    assert_eq!(es.subject, "Tu publicación no salió en Instagram (17841405822304914)");
    assert!(es.body.contains("No pudimos publicar en Instagram"), "{}", es.body);
    assert!(es.body.contains("La plataforma la rechazó con este mensaje:"), "{}", es.body);
    assert!(ar.subject.contains("تعذّر نشر منشور على Instagram"), "{}", ar.subject);
    assert!(ar.body.lines().any(|l| l == "17841405822304914"), "{}", ar.body);
    assert!(ar.body.contains("رفضت المنصة المنشور"), "{}", ar.body);
}

#[tokio::test]
async fn a_paused_account_mails_each_owner_and_admin_once_asking_to_reconnect() {
    let connection = uuid::Uuid::now_v7();
    let paused = |ws: WorkspaceId| ev::AdsAccountPaused {
        workspace_id: ws.to_string(),
        connection_id: format!("conn_{}", connection.simple()),
        provider: "meta".into(),
        reason: HOSTILE.into(),
    };
    let (es, ar) = ads_notice(ACCOUNT_PAUSED, paused, &format!("/connections/conn_{}", connection.simple())).await;

    assert_eq!(es.subject, "Vuelve a conectar Meta para reanudar tus publicaciones programadas");
    assert!(es.body.contains("Vuelve a conectar Meta aquí"), "{}", es.body);
    assert!(ar.subject.contains("أعد ربط Meta"), "{}", ar.subject);
    assert!(ar.body.contains("أعد ربط Meta من هنا"), "{}", ar.body);
}
