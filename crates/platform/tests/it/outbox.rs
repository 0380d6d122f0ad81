use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use nexus_kernel::TenantId;
use nexus_platform::consumer::{Consumer, ConsumerSpec, Event, EventHandler, HandleError, Outcome};
use nexus_platform::db::begin_tenant;
use nexus_platform::dlq::DeadLetterOps;
use nexus_platform::outbox::{OutboxRelay, enqueue, enqueue_many};
use nexus_proto::events::{AuditRecorded, Envelope};
use nexus_testkit::{TestDb, TestNats, eventually};

use crate::fixture::migrated;

fn note_event(body: &str) -> AuditRecorded {
    AuditRecorded { table: "notes".into(), operation: "INSERT".into(), after_json: body.into(), ..Default::default() }
}

async fn stream_messages(bus: &nexus_platform::bus::Bus, service: &str) -> u64 {
    let mut s = bus.ensure_service_stream(service).await.unwrap();
    s.info().await.unwrap().state.messages
}

#[tokio::test]
async fn rolled_back_events_are_never_published_and_committed_ones_exactly_once_across_a_relay_crash() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let bus = nats.bus().await;
    let (_, pool) = migrated(&db).await;
    let tenant = TenantId::new();

    let mut tx = begin_tenant(&pool, tenant).await.unwrap();
    enqueue(&mut tx, "nexus.fixture.note.created", Some(tenant), &note_event("rolled back")).await.unwrap();
    tx.rollback().await.unwrap();

    let mut tx = begin_tenant(&pool, tenant).await.unwrap();
    let id = enqueue(&mut tx, "nexus.fixture.note.created", Some(tenant), &note_event("committed")).await.unwrap();
    tx.commit().await.unwrap();

    let relay = OutboxRelay::new(pool.clone(), bus.clone(), "fixture", "fixture");
    assert_eq!(stream_messages(&bus, "fixture").await, 0);

    // The relay publishes, then dies before marking the row.
    assert_eq!(relay.publish_then_crash().await.unwrap(), 1);
    assert_eq!(stream_messages(&bus, "fixture").await, 1);
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&pool).await.unwrap();
    assert_eq!(pending, 1, "the row is still pending after the crash");

    // A fresh relay (the restarted process) publishes it again; JetStream drops the duplicate.
    let restarted = OutboxRelay::new(pool.clone(), bus.clone(), "fixture", "fixture");
    assert_eq!(restarted.flush().await.unwrap(), 1);
    assert_eq!(restarted.flush().await.unwrap(), 0);
    assert_eq!(stream_messages(&bus, "fixture").await, 1, "exactly one copy in the stream");

    let mut stream = bus.ensure_service_stream("fixture").await.unwrap();
    let first = stream.info().await.unwrap().state.first_sequence;
    let raw = stream.get_raw_message(first).await.unwrap();
    let env = Envelope::decode(raw.payload.as_ref()).unwrap();
    assert_eq!(env.event_id, id.as_uuid().to_string());
    assert_eq!(env.tenant_id, tenant.as_uuid().to_string());
    assert_eq!(env.event_type, "nexus.events.v1.AuditRecorded");
    assert_eq!(env.source, "fixture");
    assert_eq!(AuditRecorded::decode(env.payload.as_slice()).unwrap().after_json, "committed");
    assert_eq!(raw.subject.as_str(), format!("{}nexus.fixture.note.created", nats.prefix));
}

#[tokio::test]
async fn many_events_enqueued_in_one_statement_are_published_in_order_with_their_ids() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let bus = nats.bus().await;
    let (_, pool) = migrated(&db).await;
    let tenant = TenantId::new();

    let mut tx = begin_tenant(&pool, tenant).await.unwrap();
    let none = enqueue_many::<AuditRecorded>(&mut tx, "nexus.fixture.note.created", Some(tenant), &[]).await.unwrap();
    assert!(none.is_empty());
    let notes: Vec<AuditRecorded> = (0..5).map(|i| note_event(&format!("note {i}"))).collect();
    let ids = enqueue_many(&mut tx, "nexus.fixture.note.created", Some(tenant), &notes).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 5);

    let stored: Vec<(uuid::Uuid, Option<uuid::Uuid>, Vec<u8>)> =
        sqlx::query_as("SELECT id, tenant_id, payload FROM outbox ORDER BY seq").fetch_all(&pool).await.unwrap();
    let got: Vec<(uuid::Uuid, Option<uuid::Uuid>, String)> =
        stored.into_iter().map(|(id, t, p)| (id, t, AuditRecorded::decode(p.as_slice()).unwrap().after_json)).collect();
    let want: Vec<(uuid::Uuid, Option<uuid::Uuid>, String)> =
        ids.iter().zip(&notes).map(|(id, n)| (id.as_uuid(), Some(tenant.as_uuid()), n.after_json.clone())).collect();
    assert_eq!(got, want, "rows in the order given, under the ids answered");

    let relay = OutboxRelay::new(pool.clone(), bus.clone(), "fixture", "fixture");
    assert_eq!(stream_messages(&bus, "fixture").await, 0);
    assert_eq!(relay.flush().await.unwrap(), 5);
    assert_eq!(stream_messages(&bus, "fixture").await, 5);
}

#[tokio::test]
async fn the_running_relay_publishes_on_commit_and_flushes_on_shutdown() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let bus = nats.bus().await;
    let (_, pool) = migrated(&db).await;
    bus.ensure_service_stream("fixture").await.unwrap();
    let tenant = TenantId::new();

    let stop = CancellationToken::new();
    let relay = tokio::spawn(OutboxRelay::new(pool.clone(), bus.clone(), "fixture", "fixture").run(stop.clone()));

    // Audit rows from the trigger are published too, as AuditRecorded.
    let mut tx = begin_tenant(&pool, tenant).await.unwrap();
    sqlx::query("INSERT INTO notes (tenant_id, body) VALUES ($1, 'x')")
        .bind(tenant.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || {
            let b = bus.clone();
            async move { stream_messages(&b, "fixture").await == 1 }
        })
        .await
    );

    // Commits do not NOTIFY (Postgres serializes notifying commits): the relay's probe of pending
    // rows finds the next one well before its one-second round.
    let notifies: bool =
        sqlx::query_scalar("SELECT to_regprocedure('outbox_notify()') IS NOT NULL").fetch_one(&pool).await.unwrap();
    assert!(!notifies);
    let mut tx = begin_tenant(&pool, tenant).await.unwrap();
    enqueue(&mut tx, "nexus.fixture.note.created", Some(tenant), &note_event("soon")).await.unwrap();
    tx.commit().await.unwrap();
    let committed = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || {
            let b = bus.clone();
            async move { stream_messages(&b, "fixture").await == 2 }
        })
        .await
    );
    assert!(committed.elapsed() < Duration::from_millis(900), "published after {:?}", committed.elapsed());

    // Written just before shutdown: the final flush must publish it.
    let mut tx = begin_tenant(&pool, tenant).await.unwrap();
    enqueue(&mut tx, "nexus.fixture.note.created", Some(tenant), &note_event("late")).await.unwrap();
    tx.commit().await.unwrap();
    stop.cancel();
    relay.await.unwrap();
    assert_eq!(stream_messages(&bus, "fixture").await, 3);
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&pool).await.unwrap();
    assert_eq!(pending, 0);
}

/// Records each applied event in `applied`; fails while `broken` is set.
struct Recorder {
    broken: AtomicBool,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let _: AuditRecorded = event.decode()?;
        if self.broken.load(Ordering::SeqCst) {
            return Err(HandleError::Retry("downstream unavailable".into()));
        }
        let tenant = event.tenant.ok_or_else(|| HandleError::Permanent("no tenant".into()))?;
        sqlx::query("INSERT INTO applied (tenant_id, event_id) VALUES ($1, $2)")
            .bind(tenant.as_uuid())
            .bind(event.event_id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

async fn publish_copy(bus: &nexus_platform::bus::Bus, env: &Envelope, msg_id: &str) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    bus.js
        .publish_with_headers(bus.subject("nexus.fixture.note.created"), headers, env.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

fn envelope(tenant: TenantId) -> Envelope {
    Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.as_uuid().to_string(),
        event_type: "nexus.events.v1.AuditRecorded".into(),
        schema_version: 1,
        payload: note_event("hi").encode_to_vec(),
        ..Default::default()
    }
}

fn spec() -> ConsumerSpec {
    ConsumerSpec {
        producer: "fixture".into(),
        durable: "fixture-recorder".into(),
        filter_subject: "nexus.fixture.>".into(),
        max_deliveries: 3,
        ack_wait: Duration::from_secs(5),
    }
}

async fn applied_count(pool: &sqlx::PgPool) -> i64 {
    let mut tx = nexus_platform::db::begin_system(pool).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM applied").fetch_one(&mut *tx).await.unwrap()
}

#[tokio::test]
async fn a_consumer_handed_the_same_event_twice_applies_it_once() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let bus = nats.bus().await;
    let (_, pool) = migrated(&db).await;
    bus.ensure_service_stream("fixture").await.unwrap();
    let tenant = TenantId::new();
    let env = envelope(tenant);
    // Two copies with different message ids: as if re-published after the duplicate window.
    publish_copy(&bus, &env, "copy-1").await;
    publish_copy(&bus, &env, "copy-2").await;

    let handler = Arc::new(Recorder { broken: AtomicBool::new(false), calls: AtomicUsize::new(0) });
    let consumer = Consumer::new(pool.clone(), bus.clone(), spec(), handler.clone());
    let mut outcomes = Vec::new();
    let pull = bus.ensure_service_stream("fixture").await.unwrap();
    let c: async_nats::jetstream::consumer::PullConsumer = pull
        .get_or_create_consumer(
            "fixture-recorder",
            async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("fixture-recorder".into()),
                filter_subject: bus.subject("nexus.fixture.>"),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                max_deliver: -1,
                ack_wait: Duration::from_secs(5),
                max_ack_pending: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut batch = c.fetch().max_messages(2).expires(Duration::from_secs(2)).messages().await.unwrap();
    while let Some(Ok(m)) = batch.next().await {
        outcomes.push(consumer.process(&m).await);
    }
    assert_eq!(outcomes, vec![Outcome::Applied, Outcome::Duplicate]);
    assert_eq!(applied_count(&pool).await, 1);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "the duplicate never reaches the handler");
}

#[tokio::test]
async fn failing_messages_go_to_the_dead_letter_stream_and_replay_applies_them() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let bus = nats.bus().await;
    let (_, pool) = migrated(&db).await;
    bus.ensure_service_stream("fixture").await.unwrap();
    let tenant = TenantId::new();
    let env = envelope(tenant);
    publish_copy(&bus, &env, "only").await;
    // And one that can never be decoded.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "garbage");
    bus.js
        .publish_with_headers(bus.subject("nexus.fixture.junk"), headers, "not protobuf".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let handler = Arc::new(Recorder { broken: AtomicBool::new(true), calls: AtomicUsize::new(0) });
    let stop = CancellationToken::new();
    let running = tokio::spawn(Consumer::new(pool.clone(), bus.clone(), spec(), handler.clone()).run(stop.clone()));

    let ops = DeadLetterOps::new(bus.clone());
    let dead = eventually(Duration::from_secs(20), || {
        let ops = ops.clone();
        async move { ops.list("fixture-recorder", 10).await.map(|l| l.len() == 2).unwrap_or(false) }
    })
    .await;
    assert!(dead, "both messages should be dead-lettered");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3, "bounded: exactly max_deliveries attempts");
    let letters = ops.list("fixture-recorder", 10).await.unwrap();
    let bad = letters.iter().find(|l| l.original_subject == "nexus.fixture.junk").unwrap();
    assert!(bad.error.contains("undecodable"), "{bad:?}");
    let retried = letters.iter().find(|l| l.event_id == env.event_id).unwrap();
    assert_eq!(retried.deliveries, 3);
    assert!(retried.error.contains("downstream unavailable"));
    assert_eq!(applied_count(&pool).await, 0);
    // What the DLQ alert reads: this consumer's parked messages, and none of another's.
    let dlq = |c: &str| bus.dlq_subject(c);
    assert_eq!(nexus_platform::consumer::dead_letters(&bus, &dlq("fixture-recorder")).await, Some(2));
    assert_eq!(nexus_platform::consumer::dead_letters(&bus, &dlq("someone-else")).await, Some(0));

    // The operator fixes the cause and replays the good one.
    handler.broken.store(false, Ordering::SeqCst);
    assert_eq!(ops.replay("fixture-recorder", &[retried.sequence]).await.unwrap(), 1);
    assert!(
        eventually(Duration::from_secs(10), || {
            let p = pool.clone();
            async move { applied_count(&p).await == 1 }
        })
        .await
    );
    let left = ops.list("fixture-recorder", 10).await.unwrap();
    assert_eq!(left.len(), 1, "only the undecodable message remains");
    assert_eq!(nexus_platform::consumer::dead_letters(&bus, &dlq("fixture-recorder")).await, Some(1));
    stop.cancel();
    running.await.unwrap();
}
