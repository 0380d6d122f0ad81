//! Consumers through a Postgres outage (a TCP proxy the test cuts), and the tenancy check of
//! event payloads against their envelopes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prost::Message;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use nexus_kernel::TenantId;
use nexus_platform::Secret;
use nexus_platform::bus::Bus;
use nexus_platform::consumer::{Consumer, ConsumerSpec, Event, EventHandler, HandleError};
use nexus_platform::dlq::DeadLetterOps;
use nexus_proto::events::{AuditRecorded, ContentGenerated, Envelope};
use nexus_testkit::{TcpProxy, TestDb, TestNats, eventually};

use crate::fixture::migrated;

/// Records every event it is handed in `applied`, whatever its type.
struct Apply {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl EventHandler for Apply {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let tenant = event.tenant.ok_or_else(|| HandleError::Permanent("no tenant".into()))?;
        sqlx::query("INSERT INTO applied (tenant_id, event_id) VALUES ($1, $2)")
            .bind(tenant.as_uuid())
            .bind(event.event_id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

fn spec(durable: &str) -> ConsumerSpec {
    ConsumerSpec {
        producer: "fixture".into(),
        durable: durable.into(),
        filter_subject: "nexus.fixture.>".into(),
        // A small budget and a short ack wait: an outage that spent either would show.
        max_deliveries: 2,
        ack_wait: Duration::from_secs(2),
    }
}

fn envelope<M: Message + prost::Name>(tenant: TenantId, m: &M) -> Envelope {
    Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.as_uuid().to_string(),
        event_type: M::full_name(),
        schema_version: 1,
        payload: m.encode_to_vec(),
        ..Default::default()
    }
}

async fn publish(bus: &Bus, env: &Envelope) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", env.event_id.as_str());
    bus.js
        .publish_with_headers(bus.subject("nexus.fixture.thing.happened"), headers, env.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// (rows, distinct event ids) in `applied`, read past RLS with a direct connection.
async fn applied(pool: &sqlx::PgPool) -> (i64, i64) {
    let mut tx = nexus_platform::db::begin_system(pool).await.unwrap();
    sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM applied").fetch_one(&mut *tx).await.unwrap()
}

async fn wait_applied(pool: &sqlx::PgPool, n: i64, limit: Duration) -> bool {
    eventually(limit, || async { applied(pool).await.0 >= n }).await
}

#[tokio::test]
async fn a_database_outage_dead_letters_nothing_and_applies_every_message_once() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let bus = nats.bus().await;
    let (mut cfg, direct) = migrated(&db).await;
    let url = url::Url::parse(cfg.url.expose()).unwrap();
    let upstream: SocketAddr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432)).parse().unwrap();
    let proxy = TcpProxy::start(upstream).await;
    cfg.url = Secret::new(proxy.rewrite_url(cfg.url.expose()));
    cfg.acquire_timeout = Duration::from_secs(1);
    let pool = nexus_platform::db::connect("fixture", &cfg).await.unwrap();
    bus.ensure_service_stream("fixture").await.unwrap();

    let handler = Arc::new(Apply { calls: AtomicUsize::new(0) });
    let stop = CancellationToken::new();
    let running = tokio::spawn(
        Consumer::new(pool.clone(), bus.clone(), spec("fixture-outage"), handler.clone()).run(stop.clone()),
    );
    let tenant = TenantId::new();
    let note = AuditRecorded { table: "notes".into(), ..Default::default() };
    for _ in 0..5 {
        publish(&bus, &envelope(tenant, &note)).await;
    }
    assert!(wait_applied(&direct, 5, Duration::from_secs(20)).await, "applied before the outage");

    // Postgres disappears for 15 seconds while events keep arriving.
    proxy.cut();
    for _ in 0..20 {
        publish(&bus, &envelope(tenant, &note)).await;
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(applied(&direct).await.0, 5, "nothing could be applied during the outage");
    proxy.restore();

    assert!(wait_applied(&direct, 25, Duration::from_secs(30)).await, "every message applied after the outage");
    // Give redeliveries, if any went astray, time to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(applied(&direct).await, (25, 25), "each message applied exactly once");
    let letters = DeadLetterOps::new(bus.clone()).list("fixture-outage", 100).await.unwrap();
    assert!(letters.is_empty(), "nothing dead-lettered: {letters:?}");
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn an_event_naming_another_workspace_than_its_envelope_is_dead_lettered() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let bus = nats.bus().await;
    let (_, pool) = migrated(&db).await;
    bus.ensure_service_stream("fixture").await.unwrap();
    let handler = Arc::new(Apply { calls: AtomicUsize::new(0) });
    let stop = CancellationToken::new();
    let running = tokio::spawn(
        Consumer::new(pool.clone(), bus.clone(), spec("fixture-tenancy"), handler.clone()).run(stop.clone()),
    );

    let (mine, theirs) = (TenantId::new(), TenantId::new());
    let good = envelope(mine, &ContentGenerated { workspace_id: mine.to_string(), ..Default::default() });
    let forged = envelope(mine, &ContentGenerated { workspace_id: theirs.to_string(), ..Default::default() });
    let mut orphan = envelope(mine, &ContentGenerated { workspace_id: theirs.to_string(), ..Default::default() });
    orphan.tenant_id = String::new();
    for env in [&forged, &orphan, &good] {
        publish(&bus, env).await;
    }

    let ops = DeadLetterOps::new(bus.clone());
    let parked = eventually(Duration::from_secs(20), || {
        let ops = ops.clone();
        async move { ops.list("fixture-tenancy", 10).await.map(|l| l.len() == 2).unwrap_or(false) }
    })
    .await;
    assert!(parked, "both mismatches dead-lettered");
    let letters = ops.list("fixture-tenancy", 10).await.unwrap();
    let forged_letter = letters.iter().find(|l| l.event_id == forged.event_id).unwrap();
    assert!(forged_letter.error.contains("does not match"), "{forged_letter:?}");
    let orphan_letter = letters.iter().find(|l| l.event_id == orphan.event_id).unwrap();
    assert!(orphan_letter.error.contains("no tenant"), "{orphan_letter:?}");

    assert!(wait_applied(&pool, 1, Duration::from_secs(10)).await);
    assert_eq!(applied(&pool).await, (1, 1), "only the matching event applied");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "refused events never reach the handler");
    stop.cancel();
    running.await.unwrap();
}
