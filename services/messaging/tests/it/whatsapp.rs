//! WhatsApp: numbers and the plan limit, the webhook (handshake, signatures, idempotent intake,
//! statuses in any order), sending inside and outside the 24-hour window, opt-outs and consent,
//! credits, and the local sandbox with its simulator — against the messaging service, the
//! subscriptions service it charges, and a fake WhatsApp Cloud API.

use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::messaging::v1 as pb;
use nexus_proto::nexus::messaging::v1::contacts_client::ContactsClient;
use nexus_proto::nexus::messaging::v1::whats_app_client::WhatsAppClient;
use nexus_proto::nexus::subscriptions::v1 as spb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use nexus_testkit::identity::{TestIssuer, authed};
use nexus_testkit::whatsapp::{FakeWhatsApp, TEST_PHONE_NUMBER_ID, TEST_TOKEN};
use nexus_testkit::{RunningService, TestDb, TestNats};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

const APP_SECRET: &str = "nexus-development-whatsapp-app-secret";
const VERIFY_TOKEN: &str = "nexus-development-verify-token";

pub struct Stack {
    pub fake: FakeWhatsApp,
    pub issuer: TestIssuer,
    pub admin: sqlx::PgPool,
    url: String,
    subs_url: String,
    messaging: Option<RunningService>,
    extra: Vec<(String, String)>,
    stop: CancellationToken,
    nats: TestNats,
    db: TestDb,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(m) = &self.messaging {
            m.shutdown.cancel();
        }
    }
}

fn env(db: &TestDb, nats: &TestNats, service: &str, extra: &[(String, String)]) -> Vec<(String, String)> {
    let cfg = db.config(service);
    let mut env = vec![
        ("NEXUS_ENVIRONMENT".to_owned(), "development".to_owned()),
        ("NEXUS_DATABASE__URL".to_owned(), cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), cfg.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL".to_owned(), nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), nats.prefix.clone()),
    ];
    env.extend(extra.iter().cloned());
    env
}

pub async fn start() -> Stack {
    start_with(&[]).await
}

pub async fn start_with(more: &[(&str, &str)]) -> Stack {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let issuer = TestIssuer::new();
    let stop = CancellationToken::new();
    let fake = FakeWhatsApp::start().await;

    let cfg: nexus_subscriptions::Config = nexus_platform::config::load_from_env(
        "subscriptions",
        nexus_subscriptions::DEFAULTS,
        None,
        env(&db, &nats, "subscriptions", &[]),
    )
    .expect("subscriptions config");
    nexus_platform::db::migrate("subscriptions", &cfg.common.database, Some(&nexus_subscriptions::MIGRATIONS))
        .await
        .expect("migrate subscriptions");
    let listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let subs_url = format!("http://{}", listeners.grpc.local_addr().unwrap());
    let (keys, token) = (issuer.keys(), stop.child_token());
    tokio::spawn(async move {
        nexus_subscriptions::run_with_keys(cfg, listeners, token, Some(keys)).await.expect("subscriptions serves")
    });

    let mut extra = vec![
        ("NEXUS_SERVICES__SUBSCRIPTIONS".to_owned(), subs_url.clone()),
        ("NEXUS_WHATSAPP__BASE_URL".to_owned(), format!("{}/v25.0", fake.base_url)),
        ("NEXUS_BROADCASTS__IDLE".to_owned(), "50ms".to_owned()),
    ];
    extra.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let admin = db.admin_pool().await;
    let mut stack = Stack { fake, issuer, admin, url: String::new(), subs_url, messaging: None, extra, stop, nats, db };
    stack.start_messaging().await;
    for _ in 0..200 {
        if stack.subs().list_plans(spb::ListPlansRequest::default()).await.is_ok() {
            return stack;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("subscriptions did not start");
}

fn channel(url: &str) -> Channel {
    nexus_platform::grpc::channel(url, Duration::from_secs(30)).unwrap()
}

impl Stack {
    /// Starts the messaging service (again, on a new port) over the same database.
    pub async fn start_messaging(&mut self) {
        let cfg: nexus_messaging::Config = nexus_platform::config::load_from_env(
            "messaging",
            nexus_messaging::DEFAULTS,
            None,
            env(&self.db, &self.nats, "messaging", &self.extra),
        )
        .expect("messaging config");
        let common = cfg.common.clone();
        let build = nexus_messaging::service(cfg).expect("messaging config");
        let m = RunningService::start_with_keys(nexus_messaging::DEF, common, Some(self.issuer.keys()), build).await;
        self.url = m.grpc_url();
        self.messaging = Some(m);
    }

    /// Starts a second messaging replica over the same database and NATS; the stack's clients
    /// talk to it from now on, while the first keeps serving what it already serves.
    pub async fn add_replica(&mut self) -> RunningService {
        let first = self.messaging.take();
        self.start_messaging().await;
        let second = std::mem::replace(&mut self.messaging, first).expect("started");
        self.url = second.grpc_url();
        second
    }

    /// Stops the messaging process mid-work (its claimed recipients are left to their leases).
    pub async fn stop_messaging(&mut self) {
        if let Some(m) = self.messaging.take() {
            m.stop().await.expect("messaging stops");
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn wa(&self) -> WhatsAppClient<Channel> {
        WhatsAppClient::new(channel(&self.url))
    }

    pub fn contacts(&self) -> ContactsClient<Channel> {
        ContactsClient::new(channel(&self.url))
    }

    pub fn hooks(&self) -> WebhookReceiverClient<Channel> {
        WebhookReceiverClient::new(channel(&self.url))
    }

    pub fn subs(&self) -> SubscriptionsClient<Channel> {
        SubscriptionsClient::new(channel(&self.subs_url))
    }

    pub fn owner(&self, ws: WorkspaceId) -> String {
        self.issuer.user_token(ws, Role::Owner)
    }

    pub async fn balance(&self, token: &str) -> spb::Balance {
        self.subs().get_balance(authed(spb::Empty {}, token)).await.unwrap().into_inner()
    }

    /// Connects Meta's test number (against the fake) as the workspace's.
    pub async fn connect(
        &self,
        token: &str,
        phone_number_id: &str,
        access_token: &str,
    ) -> Result<pb::WhatsAppNumber, tonic::Status> {
        let req = pb::ConnectNumberRequest {
            waba_id: "102290129340398".into(),
            phone_number_id: phone_number_id.into(),
            display_phone_number: "+1 555 078 3881".into(),
            access_token: access_token.into(),
        };
        self.wa().connect_number(authed(req, token)).await.map(|r| r.into_inner())
    }

    /// A contact with a phone and, when `consent` says so, WhatsApp consent for both purposes.
    pub async fn contact(&self, token: &str, phone: &str, consent: Option<&str>) -> String {
        let input = pb::ContactInput { name: "Ana".into(), phone: phone.into(), ..Default::default() };
        let c = self.contacts().create_contact(authed(input, token)).await.unwrap().into_inner();
        if let Some(status) = consent {
            for purpose in ["marketing", "transactional"] {
                let req = pb::SetConsentRequest {
                    contact_id: c.id.clone(),
                    channel: "whatsapp".into(),
                    purpose: purpose.into(),
                    status: status.into(),
                    source: "form".into(),
                    proof: "Yes, message me on WhatsApp".into(),
                };
                self.contacts().set_consent(authed(req, token)).await.unwrap();
            }
        }
        c.id
    }

    /// Sets when the contact last wrote to the number, as the clock would leave it.
    pub async fn last_inbound(&self, number: &str, contact: &str, ago: chrono::Duration) {
        sqlx::query(
            "INSERT INTO messaging.wa_conversations (tenant_id, number_id, contact_id, last_inbound_at) \
             SELECT tenant_id, id, $2, $3 FROM messaging.wa_numbers WHERE id = $1 \
             ON CONFLICT (number_id, contact_id) DO UPDATE SET last_inbound_at = EXCLUDED.last_inbound_at",
        )
        .bind(uuid::Uuid::parse_str(number).unwrap())
        .bind(uuid::Uuid::parse_str(contact).unwrap())
        .bind(chrono::Utc::now() - ago)
        .execute(&self.admin)
        .await
        .unwrap();
    }

    pub async fn send_text(
        &self,
        token: &str,
        number: &str,
        contact: &str,
        text: &str,
    ) -> Result<pb::WhatsAppMessage, tonic::Status> {
        let req = pb::SendMessageRequest {
            number_id: number.into(),
            contact_id: contact.into(),
            content: Some(pb::send_message_request::Content::Text(text.into())),
            purpose: String::new(),
        };
        self.wa().send_message(authed(req, token)).await.map(|r| r.into_inner())
    }

    pub async fn post(&self, body: &[u8], signature: &str) -> DeliverWebhookResponse {
        let mut headers = std::collections::HashMap::new();
        headers.insert("x-hub-signature-256".to_owned(), signature.to_owned());
        let req = DeliverWebhookRequest {
            provider: "whatsapp".into(),
            method: "POST".into(),
            query: String::new(),
            headers,
            body: body.to_vec(),
        };
        self.hooks().deliver(req).await.unwrap().into_inner()
    }

    pub async fn create_template(
        &self,
        token: &str,
        number: &str,
        input: pb::TemplateInput,
    ) -> Result<pb::WhatsAppTemplate, tonic::Status> {
        let req = pb::TemplateInput { number_id: number.into(), ..input };
        self.wa().create_template(authed(req, token)).await.map(|r| r.into_inner())
    }

    /// `order_update` ("Hi {{1}}, your order shipped.") created, submitted and approved.
    pub async fn approved_template(&self, token: &str, number: &str) -> pb::WhatsAppTemplate {
        let t = self.create_template(token, number, order_update()).await.unwrap();
        self.wa().submit_template(authed(pb::GetByIdRequest { id: t.id.clone() }, token)).await.unwrap();
        self.fake.set_template_status("order_update", "APPROVED", None);
        let req = pb::TemplatesRequest { number_id: number.into() };
        let list = self.wa().sync_templates(authed(req, token)).await.unwrap().into_inner();
        list.templates.into_iter().find(|x| x.id == t.id).unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&self.admin).await.unwrap()
    }

    pub async fn message_status(&self, id: &str) -> String {
        sqlx::query_scalar("SELECT status FROM messaging.wa_messages WHERE id = $1")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }
}

pub fn order_update() -> pb::TemplateInput {
    pb::TemplateInput {
        number_id: String::new(),
        name: "order_update".into(),
        language: "en_US".into(),
        category: "utility".into(),
        header: "Your order".into(),
        body: "Hi {{1}}, your order shipped.".into(),
        footer: "Reply STOP to opt out".into(),
        buttons: vec![pb::TemplateButton { r#type: "quick_reply".into(), text: "Thanks".into(), url: String::new() }],
        body_examples: vec!["Ana".into()],
    }
}

fn status_body(wamid: &str, status: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": TEST_PHONE_NUMBER_ID},
                  "statuses": [{"id": wamid, "status": status, "timestamp": "1750857384", "recipient_id": "34612341111"}]}}]}]})
    .to_string()
    .into_bytes()
}

fn sign(body: &[u8]) -> String {
    nexus_providers::whatsapp::signature(APP_SECRET, body)
}

#[tokio::test]
async fn a_free_workspace_cannot_connect_a_second_number() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let first = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap();
    assert_eq!(first.provider, "meta");
    let err = s.connect(&token, "106540352242923", TEST_TOKEN).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let details = nexus_kernel::Error::from_status(&err);
    assert_eq!((details.code(), details.param("limit")), ("messaging.whatsapp_number_limit", Some("1")));
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_numbers").await, 1);
    // The token is sealed at rest, never stored as given.
    let sealed: String =
        sqlx::query_scalar("SELECT token_sealed FROM messaging.wa_numbers").fetch_one(&s.admin).await.unwrap();
    assert!(!sealed.is_empty() && !sealed.contains(TEST_TOKEN));

    // Another workspace cannot take the same Meta number, and bad input changes nothing.
    let other = s.owner(WorkspaceId::new());
    assert_eq!(s.connect(&other, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap_err().code(), Code::AlreadyExists);
    assert_eq!(s.connect(&other, "12ab", TEST_TOKEN).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_numbers").await, 1);
    let listed = s.wa().list_numbers(authed(pb::Empty {}, &other)).await.unwrap().into_inner();
    assert!(listed.numbers.is_empty());
    // Connecting needs an admin.
    let member = s.issuer.user_token(ws, Role::Member);
    assert_eq!(s.connect(&member, "106540352242924", TEST_TOKEN).await.unwrap_err().code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_handshake_answers_the_challenge_only_with_the_right_token() {
    let s = start().await;
    let get = |query: String| {
        let mut hooks = s.hooks();
        async move {
            let req = DeliverWebhookRequest {
                provider: "whatsapp".into(),
                method: "GET".into(),
                query,
                headers: Default::default(),
                body: vec![],
            };
            hooks.deliver(req).await.unwrap().into_inner()
        }
    };
    let ok = get(format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444")).await;
    assert_eq!((ok.status, ok.body.as_slice()), (200, b"1158201444".as_slice()));
    let wrong = get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444".into()).await;
    assert_eq!(wrong.status, 403);
    assert!(!String::from_utf8_lossy(&wrong.body).contains("1158201444"));
    let mode = get(format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1")).await;
    assert_eq!(mode.status, 403);
}

#[tokio::test]
async fn free_form_outside_the_window_is_refused_locally_and_inside_it_is_sent_and_charged() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    let contact = s.contact(&token, "+34612341111", Some("granted")).await;
    let before = s.balance(&token).await;

    s.last_inbound(&number, &contact, chrono::Duration::hours(25)).await;
    let err = s.send_text(&token, &number, &contact, "Your order shipped").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(s.fake.requests(), 0, "nothing reaches Meta");
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_messages").await, 0);
    let details = nexus_kernel::Error::from_status(&err);
    assert_eq!(details.code(), "messaging.whatsapp_window_closed");
    assert!(details.param("templates").is_some(), "the refusal offers templates");

    s.last_inbound(&number, &contact, chrono::Duration::hours(23)).await;
    let sent = s.send_text(&token, &number, &contact, "Your order shipped").await.unwrap();
    assert_eq!(sent.status, "sent");
    assert!(sent.wamid.starts_with("wamid."));
    assert_eq!(s.fake.count_to("34612341111"), 1);
    assert_eq!(s.fake.accepted()[0].body["text"]["body"], "Your order shipped");

    // The hold is settled through the outbox: one message's price charged, nothing held.
    let charged = nexus_testkit::eventually(Duration::from_secs(20), || async {
        let b = s.balance(&token).await;
        b.reserved == 0 && b.available < before.available
    })
    .await;
    assert!(charged, "the message was charged");
    let after = s.balance(&token).await;
    assert_eq!(before.available - after.available, 1);
    // And it is an activity of its contact.
    assert_eq!(s.count("SELECT count(*) FROM messaging.activities WHERE kind = 'message'").await, 1);

    // Meta refusing the send gives the hold back and records the failure with its code.
    s.fake.fail_next(1, 400, 131_026);
    let err = s.send_text(&token, &number, &contact, "Again").await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_meta_undeliverable");
    assert_eq!(
        s.count("SELECT count(*) FROM messaging.wa_messages WHERE status = 'failed' AND error_code = 131026").await,
        1
    );
    nexus_testkit::eventually(Duration::from_secs(20), || async { s.balance(&token).await.reserved == 0 }).await;
    assert_eq!(s.balance(&token).await.available, after.available);
}

#[tokio::test]
async fn opted_out_and_unconsented_contacts_are_refused_locally() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    s.approved_template(&token, &number).await;
    let template = || {
        Some(pb::send_message_request::Content::Template(pb::TemplateSend {
            name: "order_update".into(),
            language: "en_US".into(),
            body_params: vec!["Ana".into()],
        }))
    };
    let send = |contact: String| {
        let mut wa = s.wa();
        let req = pb::SendMessageRequest {
            number_id: number.clone(),
            contact_id: contact,
            content: template(),
            purpose: "marketing".into(),
        };
        let req = authed(req, &token);
        async move { wa.send_message(req).await }
    };
    let opted_out = s.contact(&token, "+34612342222", Some("withdrawn")).await;
    let err = send(opted_out.clone()).await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_opted_out");
    // Even inside the window.
    s.last_inbound(&number, &opted_out, chrono::Duration::hours(1)).await;
    let err = s.send_text(&token, &number, &opted_out, "hi").await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_opted_out");

    let unknown = s.contact(&token, "+34612343333", None).await;
    let err = send(unknown).await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_no_consent");

    let granted = s.contact(&token, "+34612344444", Some("granted")).await;
    let ok = send(granted).await.unwrap().into_inner();
    assert_eq!((ok.r#type.as_str(), ok.status.as_str()), ("template", "sent"));
    assert_eq!(s.fake.requests(), 1, "only the allowed send reached Meta");
    assert_eq!(s.fake.count_to("34612344444"), 1);

    // Bad content, unknown and other workspaces' ids: refused, nothing stored or sent.
    let bad = pb::SendMessageRequest {
        number_id: number.clone(),
        contact_id: opted_out.clone(),
        content: Some(pb::send_message_request::Content::Interactive(pb::InteractiveSend {
            body: "Pick".into(),
            buttons: (0..4).map(|i| pb::ReplyButton { id: format!("b{i}"), title: "x".into() }).collect(),
            ..Default::default()
        })),
        purpose: String::new(),
    };
    let err = s.wa().send_message(authed(bad, &token)).await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_buttons_invalid");
    let other = s.owner(WorkspaceId::new());
    let err = s.send_text(&other, &number, &opted_out, "hi").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_messages").await, 1);
}

#[tokio::test]
async fn statuses_in_any_order_and_twice_leave_the_message_read_and_bad_signatures_change_nothing() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    let contact = s.contact(&token, "+34612341111", Some("granted")).await;
    s.last_inbound(&number, &contact, chrono::Duration::hours(1)).await;
    let sent = s.send_text(&token, &number, &contact, "Hello").await.unwrap();

    // A forged delivery: wrong signature, no change.
    let read = status_body(&sent.wamid, "read");
    let forged = s.post(&read, &nexus_providers::whatsapp::signature("not-the-secret", &read)).await;
    assert_eq!(forged.status, 401);
    let unsigned = s.post(&read, "").await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(s.message_status(&sent.id).await, "sent");

    assert_eq!(s.post(&read, &sign(&read)).await.status, 200);
    let delivered = status_body(&sent.wamid, "delivered");
    assert_eq!(s.post(&delivered, &sign(&delivered)).await.status, 200);
    assert_eq!(s.post(&read, &sign(&read)).await.status, 200);
    assert_eq!(s.post(&delivered, &sign(&delivered)).await.status, 200);
    assert_eq!(s.message_status(&sent.id).await, "read");
    // One status change recorded (delivered was older than read).
    assert_eq!(s.count("SELECT count(*) FROM messaging.outbox WHERE subject LIKE '%message.status_changed'").await, 1);
    // A body that is not Meta's envelope, correctly signed, is refused.
    let junk = b"{\"hello\":1}";
    assert_eq!(s.post(junk, &sign(junk)).await.status, 400);
}

#[tokio::test]
async fn the_local_sandbox_and_simulator_go_through_the_signed_webhook_path_once_per_message() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, "5550100", "").await.unwrap();
    assert_eq!(number.provider, "local");
    let simulate = |from: &str, text: &str, id: &str| {
        let mut wa = s.wa();
        let req = pb::SimulateRequest {
            number_id: number.id.clone(),
            event: Some(pb::simulate_request::Event::Inbound(pb::SimulatedInbound {
                from: from.into(),
                name: "Bea".into(),
                text: text.into(),
                message_id: id.into(),
                reply_id: String::new(),
                media: None,
            })),
        };
        let req = authed(req, &token);
        async move { wa.simulate(req).await.map(|r| r.into_inner()) }
    };
    let first = simulate("34612349999", "Hola", "wamid.sim.1").await.unwrap();
    assert_eq!(first.http_status, 200);
    simulate("34612349999", "Hola", "wamid.sim.1").await.unwrap();
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_messages WHERE direction = 'in'").await, 1);
    // The sender became a contact with a WhatsApp identity, and the window is open.
    let contact: uuid::Uuid = sqlx::query_scalar("SELECT contact_id FROM messaging.wa_messages WHERE direction = 'in'")
        .fetch_one(&s.admin)
        .await
        .unwrap();
    let reply = s.send_text(&token, &number.id, &contact.to_string(), "¡Hola Bea!").await.unwrap();
    assert_eq!((reply.provider.as_str(), reply.status.as_str()), ("local", "sent"));
    assert_eq!(s.fake.requests(), 0, "the sandbox never calls Meta");
    let listed = s
        .wa()
        .list_whats_app_messages(authed(
            pb::ListWhatsAppMessagesRequest { contact_id: contact.to_string(), page: None },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.messages.len(), 2);
    assert_eq!(listed.messages[0].direction, "out");

    // A status for the sandbox message through the simulator moves it forward.
    let req = pb::SimulateRequest {
        number_id: number.id.clone(),
        event: Some(pb::simulate_request::Event::Status(pb::SimulatedStatus {
            wamid: reply.wamid.clone(),
            status: "failed".into(),
            error_code: 131_047,
        })),
    };
    s.wa().simulate(authed(req, &token)).await.unwrap();
    let listed = s
        .wa()
        .list_whats_app_messages(authed(
            pb::ListWhatsAppMessagesRequest { contact_id: contact.to_string(), page: None },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.messages[0].status, "failed");
    assert_eq!(listed.messages[0].error_code, 131_047);
    assert!(!listed.messages[0].error_message.is_empty());

    // "STOP" opts the contact out: the next send is refused locally.
    simulate("34612349999", "STOP", "").await.unwrap();
    let err = s.send_text(&token, &number.id, &contact.to_string(), "more?").await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_opted_out");

    // The simulator refuses Meta numbers.
    let other = s.owner(WorkspaceId::new());
    let meta = s.connect(&other, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap();
    let req = pb::SimulateRequest {
        number_id: meta.id,
        event: Some(pb::simulate_request::Event::Status(pb::SimulatedStatus {
            wamid: "x".into(),
            status: "read".into(),
            error_code: 0,
        })),
    };
    assert_eq!(s.wa().simulate(authed(req, &other)).await.unwrap_err().code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn templates_are_checked_submitted_synced_and_sends_match_them() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;

    // Meta's limits, checked before anything is stored or sent.
    let mut bad = order_update();
    bad.buttons = (0..11)
        .map(|i| pb::TemplateButton { r#type: "quick_reply".into(), text: format!("b{i}"), url: String::new() })
        .collect();
    let err = s.create_template(&token, &number, bad).await.unwrap_err();
    let e = nexus_kernel::Error::from_status(&err);
    assert_eq!((e.code(), e.param("field")), ("messaging.whatsapp_template_field_invalid", Some("buttons")));
    let mut bad = order_update();
    bad.body_examples.clear();
    assert_eq!(s.create_template(&token, &number, bad).await.unwrap_err().code(), Code::InvalidArgument);
    let mut bad = order_update();
    bad.category = "promo".into();
    assert_eq!(s.create_template(&token, &number, bad).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_templates").await, 0);

    let t = s.create_template(&token, &number, order_update()).await.unwrap();
    assert_eq!((t.status.as_str(), t.body_params), ("draft", 1));
    assert_eq!(s.create_template(&token, &number, order_update()).await.unwrap_err().code(), Code::AlreadyExists);
    let submitted =
        s.wa().submit_template(authed(pb::GetByIdRequest { id: t.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(submitted.status, "pending");
    let at_meta = s.fake.templates();
    assert_eq!(at_meta.len(), 1);
    assert_eq!(at_meta[0].1["category"], "UTILITY");
    assert_eq!(at_meta[0].1["components"][1]["example"]["body_text"][0][0], "Ana");

    // A pending template is not sent.
    let contact = s.contact(&token, "+34612341111", Some("granted")).await;
    let send = |params: Vec<String>| {
        let mut wa = s.wa();
        let req = pb::SendMessageRequest {
            number_id: number.clone(),
            contact_id: contact.clone(),
            content: Some(pb::send_message_request::Content::Template(pb::TemplateSend {
                name: "order_update".into(),
                language: "en_US".into(),
                body_params: params,
            })),
            purpose: String::new(),
        };
        let req = authed(req, &token);
        async move { wa.send_message(req).await }
    };
    let err = send(vec!["Ana".into()]).await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_template_not_approved");

    // Meta rejects it; the sync shows why.
    s.fake.set_template_status("order_update", "REJECTED", Some("INVALID_FORMAT"));
    let req = pb::TemplatesRequest { number_id: number.clone() };
    let list = s.wa().sync_templates(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!((list.templates[0].status.as_str(), list.templates[0].reason.as_str()), ("rejected", "INVALID_FORMAT"));
    s.fake.set_template_status("order_update", "APPROVED", None);
    let req = pb::TemplatesRequest { number_id: number.clone() };
    let list = s.wa().sync_templates(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!((list.templates[0].status.as_str(), list.templates[0].reason.as_str()), ("approved", ""));

    // Parameters must match the template; then it is sent.
    let err = send(vec![]).await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_template_params_mismatch");
    assert_eq!(s.fake.requests(), 0);
    let ok = send(vec!["Ana".into()]).await.unwrap().into_inner();
    assert_eq!(ok.status, "sent");
    assert_eq!(s.fake.accepted()[0].body["template"]["components"][0]["parameters"][0]["text"], "Ana");

    // Outside the window, free-form is refused with the approved template offered.
    s.last_inbound(&number, &contact, chrono::Duration::hours(30)).await;
    let err = s.send_text(&token, &number, &contact, "hi").await.unwrap_err();
    assert_eq!(nexus_kernel::Error::from_status(&err).param("templates"), Some("order_update"));

    // Another workspace sees none of it; deleting removes it at Meta and here.
    let other = s.owner(WorkspaceId::new());
    let err = s.wa().delete_template(authed(pb::GetByIdRequest { id: t.id.clone() }, &other)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    s.wa().delete_template(authed(pb::GetByIdRequest { id: t.id.clone() }, &token)).await.unwrap();
    assert!(s.fake.templates().is_empty());
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_templates").await, 0);
}

#[tokio::test]
async fn a_bot_answers_through_the_simulator_hands_off_on_agent_and_stays_silent_until_given_back() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, "5550100", "").await.unwrap().id;
    let config = json!({
        "rules": [
            {"kind": "keyword", "pattern": "menu", "menu": true},
            {"kind": "regex", "pattern": "\\b(price|precio)\\b", "reply": "From 10 €"}
        ],
        "menu_text": "How can we help?",
        "menu": [{"id": "hours", "title": "Opening hours", "reply": "9 to 6"},
                 {"id": "where", "title": "Where are you", "reply": "Main St 1"}],
        "time_zone": "Europe/Madrid",
        "handoff_keyword": "agent",
        "handoff_reply": "A person will answer soon."
    });
    let set = |config: String| {
        let mut wa = s.wa();
        let req = authed(pb::SetBotRequest { number_id: number.clone(), config_json: config, enabled: true }, &token);
        async move { wa.set_bot(req).await }
    };
    let mut bad = config.clone();
    bad["rules"][1]["pattern"] = json!("(unclosed");
    assert_eq!(set(bad.to_string()).await.unwrap_err().code(), Code::InvalidArgument);
    set(config.to_string()).await.unwrap();

    let inbound = |text: &str, reply_id: &str| {
        let mut wa = s.wa();
        let req = pb::SimulateRequest {
            number_id: number.clone(),
            event: Some(pb::simulate_request::Event::Inbound(pb::SimulatedInbound {
                from: "34612349999".into(),
                name: "Bea".into(),
                text: text.into(),
                message_id: String::new(),
                reply_id: reply_id.into(),
                media: None,
            })),
        };
        let req = authed(req, &token);
        async move { wa.simulate(req).await.unwrap().into_inner() }
    };
    let last_out = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT kind, content->>'summary' FROM messaging.wa_messages WHERE direction = 'out' ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_optional(&s.admin)
        .await
        .unwrap()
    };
    let outs = || s.count("SELECT count(*) FROM messaging.wa_messages WHERE direction = 'out'");

    inbound("Menu", "").await;
    assert_eq!(last_out().await.unwrap(), ("interactive".to_owned(), "How can we help?".to_owned()));
    inbound("Opening hours", "hours").await;
    assert_eq!(last_out().await.unwrap().1, "9 to 6");
    inbound("what is the price?", "").await;
    assert_eq!(last_out().await.unwrap().1, "From 10 €");
    // No rule matches and no AI agent answers: the message waits for a person.
    inbound("something else entirely", "").await;
    assert_eq!(outs().await, 3);

    inbound("AGENT", "").await;
    assert_eq!(last_out().await.unwrap().1, "A person will answer soon.");
    assert_eq!(s.count("SELECT count(*) FROM messaging.outbox WHERE subject LIKE '%bot.handoff'").await, 1);
    // Available to the workspace's outbound webhooks too.
    assert_eq!(s.count("SELECT count(*) FROM messaging.webhook_messages WHERE event_type = 'bot.handoff'").await, 1);
    assert!(
        s.count("SELECT count(*) FROM messaging.webhook_messages WHERE event_type = 'message.received'").await >= 5
    );
    assert!(s.count("SELECT count(*) FROM messaging.webhook_messages WHERE event_type = 'message.sent'").await >= 4);
    inbound("price", "").await;
    inbound("menu", "").await;
    assert_eq!(outs().await, 4, "the bot stays silent after the handoff");

    // Given back, it answers again.
    let contact: uuid::Uuid =
        sqlx::query_scalar("SELECT contact_id FROM messaging.wa_messages LIMIT 1").fetch_one(&s.admin).await.unwrap();
    let req = pb::ResumeBotRequest { number_id: number.clone(), contact_id: contact.to_string() };
    s.wa().resume_bot(authed(req, &token)).await.unwrap();
    inbound("price", "").await;
    assert_eq!(outs().await, 5);
    let other = s.owner(WorkspaceId::new());
    let req = pb::ResumeBotRequest { number_id: number.clone(), contact_id: contact.to_string() };
    assert_eq!(s.wa().resume_bot(authed(req, &other)).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn a_number_token_resealed_under_a_new_key_still_sends_with_it_alone_and_never_shows_in_a_dump() {
    use nexus_platform::crypto::Sealer;
    use nexus_platform::reseal::{ResealOptions, reseal};
    let (k1, k2) = (Sealer::generate_key(), Sealer::generate_key());
    let mut s = start_with(&[("NEXUS_MESSAGING__SEALING_KEYS", &format!("1:{k1}"))]).await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_numbers WHERE token_sealed LIKE 'v1.%'").await, 1);

    let pool = nexus_platform::db::connect("messaging", &s.db.config("messaging")).await.unwrap();
    let rotated = Sealer::from_config(&format!("1:{k1},2:{k2}")).unwrap();
    let report = reseal(&pool, &rotated, nexus_messaging::DEF.sealed, ResealOptions::default()).await.unwrap();
    assert_eq!((report.resealed(), report.failed()), (1, 0), "{report:?}");
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_numbers WHERE token_sealed LIKE 'v1.%'").await, 0);

    // Messaging restarted with only key 2 opens the token to send.
    s.stop_messaging().await;
    s.extra.retain(|(k, _)| k != "NEXUS_MESSAGING__SEALING_KEYS");
    s.extra.push(("NEXUS_MESSAGING__SEALING_KEYS".into(), format!("2:{k2}")));
    s.start_messaging().await;
    let contact = s.contact(&token, "+34612341111", Some("granted")).await;
    s.last_inbound(&number, &contact, chrono::Duration::hours(1)).await;
    let sent = s.send_text(&token, &number, &contact, "Your order shipped").await.unwrap();
    assert_eq!(sent.status, "sent");
    assert_eq!(s.fake.count_to("34612341111"), 1);

    assert!(s.db.assert_dump_hides(&[TEST_TOKEN]) > 0);
}
