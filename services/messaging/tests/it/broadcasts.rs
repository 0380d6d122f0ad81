//! Broadcasts against the fake WhatsApp API: exactly one message per recipient through
//! throttling and restarts, credits charged per sent message, pause, resume and cancel.

use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::messaging::v1 as pb;
use nexus_proto::nexus::messaging::v1::crm_client::CrmClient;
use nexus_testkit::identity::authed;
use nexus_testkit::whatsapp::{TEST_PHONE_NUMBER_ID, TEST_TOKEN};
use tonic::Code;

use crate::whatsapp::{Stack, start_with};

/// `n` contacts tagged `bulk` with WhatsApp marketing consent, written as an import would.
pub(crate) async fn contacts(s: &Stack, ws: WorkspaceId, n: i64) {
    sqlx::query(
        "INSERT INTO messaging.contacts (id, tenant_id, name, phone, tags) \
         SELECT gen_random_uuid(), $1, 'Guest ' || i, '+3460' || lpad(i::text, 8, '0'), '{bulk}' \
         FROM generate_series(1, $2) AS i",
    )
    .bind(ws.as_uuid())
    .bind(n)
    .execute(&s.admin)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO messaging.consents (tenant_id, contact_id, channel, purpose, status, source) \
         SELECT tenant_id, id, 'whatsapp', 'marketing', 'granted', 'import' FROM messaging.contacts WHERE tenant_id = $1",
    )
    .bind(ws.as_uuid())
    .execute(&s.admin)
    .await
    .unwrap();
}

/// Tops the workspace's credits up to `n` (a credit pack bought).
pub(crate) async fn credits(s: &Stack, ws: WorkspaceId, token: &str, n: i64) {
    s.balance(token).await;
    sqlx::query("UPDATE subscriptions.credit_balances SET available = $2 WHERE tenant_id = $1")
        .bind(ws.as_uuid())
        .bind(n)
        .execute(&s.admin)
        .await
        .unwrap();
}

pub(crate) async fn segment(s: &Stack, token: &str) -> String {
    let mut crm = CrmClient::new(nexus_platform::grpc::channel(&s.url(), Duration::from_secs(30)).unwrap());
    let input = pb::SegmentInput { id: String::new(), name: "Bulk".into(), filter_json: r#"{"tag": "bulk"}"#.into() };
    crm.save_segment(authed(input, token)).await.unwrap().into_inner().id
}

pub(crate) fn input(number: &str, segment: &str, rate: i32) -> pb::BroadcastInput {
    pb::BroadcastInput {
        number_id: number.into(),
        segment_id: segment.into(),
        template_name: "order_update".into(),
        language: "en_US".into(),
        params: vec!["name".into()],
        scheduled_at: None,
        rate,
    }
}

async fn get(s: &Stack, token: &str, id: &str) -> pb::Broadcast {
    s.wa().get_broadcast(authed(pb::GetByIdRequest { id: id.into() }, token)).await.unwrap().into_inner()
}

async fn wait_sent(s: &Stack, token: &str, id: &str, at_least: i64, within: Duration) -> pb::Broadcast {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let b = get(s, token, id).await;
        let t = b.totals.unwrap();
        if t.sent >= at_least || b.status == "finished" {
            return b;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} sent of {at_least} in {within:?}: {b:?}", t.sent);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ten_thousand_recipients_through_throttling_and_two_kills_get_exactly_one_message_each() {
    const N: i64 = 10_000;
    let mut s = start_with(&[("NEXUS_BROADCASTS__LEASE", "3s"), ("NEXUS_BROADCASTS__IN_FLIGHT", "48")]).await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    s.approved_template(&token, &number).await;
    contacts(&s, ws, N).await;
    credits(&s, ws, &token, 25_000).await;
    let seg = segment(&s, &token).await;
    s.fake.throttle_share(0.05);

    let b = s.wa().create_broadcast(authed(input(&number, &seg, 1_000), &token)).await.unwrap().into_inner();
    assert_eq!(b.totals.as_ref().unwrap().total, N);
    assert_eq!(b.credits_held, N);
    let held = s.balance(&token).await;
    assert_eq!(held.reserved, N);

    // Killed twice mid-way; each new process takes over from the leases.
    wait_sent(&s, &token, &b.id, 3_000, Duration::from_secs(120)).await;
    s.stop_messaging().await;
    s.start_messaging().await;
    wait_sent(&s, &token, &b.id, 6_500, Duration::from_secs(120)).await;
    s.stop_messaging().await;
    s.start_messaging().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let done = loop {
        let b = get(&s, &token, &b.id).await;
        if b.status == "finished" {
            break b;
        }
        assert!(tokio::time::Instant::now() < deadline, "not finished: {b:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Exactly one message per recipient at the fake, despite throttling and restarts.
    let per = s.fake.per_recipient();
    assert_eq!(per.len(), N as usize);
    assert!(per.values().all(|n| *n == 1), "some recipient got more than one");
    assert!(s.fake.throttled() > 0, "the fake throttled some calls");
    let t = done.totals.unwrap();
    assert_eq!((t.sent, t.failed, t.unknown, t.queued, t.sending), (N, 0, 0, 0, 0));
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_messages WHERE broadcast_id IS NOT NULL").await, N);
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_broadcast_recipients WHERE state = 'sent'").await, N);
    // Charged exactly the sent messages; nothing left held.
    let settled =
        nexus_testkit::eventually(Duration::from_secs(30), || async { s.balance(&token).await.reserved == 0 }).await;
    assert!(settled);
    assert_eq!(s.balance(&token).await.available, 25_000 - N);
    // Per-recipient results page through.
    let page = s
        .wa()
        .list_broadcast_recipients(authed(
            pb::BroadcastRecipientsRequest { broadcast_id: b.id.clone(), after: String::new(), limit: 100 },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.recipients.len(), 100);
    assert!(page.recipients.iter().all(|r| r.state == "sent" && !r.message_id.is_empty()));
}

#[tokio::test]
async fn a_broadcast_pauses_resumes_and_cancels_and_charges_only_what_was_sent() {
    let s = start_with(&[]).await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let number = s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap().id;
    s.approved_template(&token, &number).await;
    contacts(&s, ws, 40).await;
    credits(&s, ws, &token, 100).await;
    let seg = segment(&s, &token).await;

    // Bad input is refused with nothing stored.
    let mut bad = input(&number, &seg, 0);
    bad.params = vec!["email".into()];
    assert_eq!(s.wa().create_broadcast(authed(bad, &token)).await.unwrap_err().code(), Code::InvalidArgument);
    let mut bad = input(&number, &seg, 0);
    bad.params.clear();
    assert_eq!(s.wa().create_broadcast(authed(bad, &token)).await.unwrap_err().code(), Code::InvalidArgument);
    let other = s.owner(WorkspaceId::new());
    assert_eq!(
        s.wa().create_broadcast(authed(input(&number, &seg, 0), &other)).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_broadcasts").await, 0);

    // Two a second: slow enough to pause in the middle.
    let b = s.wa().create_broadcast(authed(input(&number, &seg, 2), &token)).await.unwrap().into_inner();
    wait_sent(&s, &token, &b.id, 2, Duration::from_secs(20)).await;
    let paused =
        s.wa().pause_broadcast(authed(pb::GetByIdRequest { id: b.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(paused.status, "paused");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let frozen = s.fake.accepted().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.fake.accepted().len(), frozen, "nothing is sent while paused");
    let resumed =
        s.wa().resume_broadcast(authed(pb::GetByIdRequest { id: b.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(resumed.status, "running");
    wait_sent(&s, &token, &b.id, frozen as i64 + 2, Duration::from_secs(20)).await;
    let canceled =
        s.wa().cancel_broadcast(authed(pb::GetByIdRequest { id: b.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(canceled.status, "canceled");
    let err = s.wa().resume_broadcast(authed(pb::GetByIdRequest { id: b.id.clone() }, &token)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = get(&s, &token, &b.id).await.totals.unwrap();
    let sent = s.fake.accepted().len() as i64;
    assert_eq!(t.sent, sent);
    assert_eq!(t.sent + t.canceled + t.sending, 40);
    // The hold is settled: only the sent messages are charged.
    assert!(
        nexus_testkit::eventually(Duration::from_secs(20), || async { s.balance(&token).await.reserved == 0 }).await
    );
    assert_eq!(s.balance(&token).await.available, 100 - sent);
}
