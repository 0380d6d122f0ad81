//! `make bench`: a WhatsApp broadcast against a plain HTTP load generator.
//!
//! Candidate: one broadcast to N recipients (`NEXUS_BENCH_BROADCAST_RECIPIENTS`, default 10,000;
//! 100,000 for the memory goal) sent by the production sender (`run_sender`) through the real
//! Cloud API client to the fake WhatsApp server with no rate limit, the broadcast's rate at its
//! maximum (1,000/s) — each recipient claimed under a lease, marked `sending`, sent, and its
//! outcome, message, events and audit committed. The clock stops when the last recipient's
//! outcome is committed.
//! Floor: the same fake hit by as many concurrent tasks as the sender has sends in flight, one
//! keep-alive reqwest client POSTing the JSON the sender sent (same bytes) N times. They
//! alternate so machine load weighs on them alike. Goal: ratio >= 0.5.
//!
//! Also reported: p99 schedule-to-send (from the broadcast's scheduled time to each recipient's
//! committed `sent`), and the process's peak RSS while the broadcast runs (goal < 150 MiB at
//! 100,000 recipients; sampled from /proc/self/status every 50 ms, and VmHWM at the end).
//!
//! Needs Postgres (`make bench` starts it).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexus_kernel::{TenantId, WorkspaceId};
use nexus_messaging::app::broadcasts::{SenderConfig, run_sender};
use nexus_messaging::app::whatsapp::WhatsApp;
use nexus_platform::crypto::Sealer;
use nexus_platform::db;
use nexus_providers::whatsapp::{LocalWhatsApp, WhatsAppClient, WhatsAppConfig};
use nexus_testkit::bench::{Goal, Result, rss_mib};
use nexus_testkit::whatsapp::{FakeWhatsApp, TEST_PHONE_NUMBER_ID, TEST_TOKEN};
use sqlx::PgPool;
use uuid::Uuid;

/// Sends in flight: the sender's `in_flight`, and the floor's concurrency.
const IN_FLIGHT: usize = 32;
const BATCH: i64 = 200;
/// The highest rate a broadcast may ask for.
const RATE: i32 = 1_000;
const GOAL: f64 = 0.5;
const RSS_GOAL_MIB: f64 = 150.0;

fn recipients() -> usize {
    std::env::var("NEXUS_BENCH_BROADCAST_RECIPIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// A meta number (token sealed as the service seals it), N contacts, and a running broadcast of
/// a one-parameter template to all of them; answers the broadcast's id.
async fn broadcast(pool: &PgPool, sealer: &Sealer, ws: WorkspaceId, n: usize, number: Option<Uuid>) -> (Uuid, Uuid) {
    let tenant = TenantId::from_uuid(ws.as_uuid());
    let mut tx = db::tenant(pool, tenant).await.unwrap();
    let number = match number {
        Some(id) => id,
        None => {
            let id = Uuid::now_v7();
            let sealed = sealer.seal(TEST_TOKEN.as_bytes(), &format!("wa_number:{id}"));
            sqlx::query(
                "INSERT INTO wa_numbers (id, tenant_id, waba_id, phone_number_id, display_phone_number, provider, token_sealed) \
                 VALUES ($1, $2, '102290129340398', $3, '+1 555 078 3881', 'meta', $4)",
            )
            .bind(id)
            .bind(ws.as_uuid())
            .bind(TEST_PHONE_NUMBER_ID)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .unwrap();
            id
        }
    };
    let b = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO wa_broadcasts (id, tenant_id, number_id, template_name, language, params, status, scheduled_at, rate, total) \
         VALUES ($1, $2, $3, 'order_update', 'en_US', '[\"name\"]', 'paused', now(), $4, $5)",
    )
    .bind(b)
    .bind(ws.as_uuid())
    .bind(number)
    .bind(RATE)
    .bind(i32::try_from(n).unwrap())
    .execute(&mut *tx)
    .await
    .unwrap();
    // 100,000 rows (and their audit) in one statement outlast the service's statement timeout.
    sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await.unwrap();
    // Contacts of this round: fresh phones (a contact's phone is unique in the workspace).
    let base: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&mut *tx).await.unwrap();
    sqlx::query(
        "WITH c AS (INSERT INTO contacts (id, tenant_id, name, phone, source) \
           SELECT gen_random_uuid(), $1, 'Contact ' || g, '+55119' || lpad(($3 + g)::text, 8, '0'), 'bench' \
           FROM generate_series(1, $2::bigint) g RETURNING id, name, phone) \
         INSERT INTO wa_broadcast_recipients (broadcast_id, contact_id, tenant_id, to_number, params) \
         SELECT $4, c.id, $1, substr(c.phone, 2), jsonb_build_array(c.name, c.phone, '{}'::jsonb) FROM c",
    )
    .bind(ws.as_uuid())
    .bind(n as i64)
    .bind(base)
    .bind(b)
    .execute(&mut *tx)
    .await
    .unwrap();
    db::commit(tx).await.unwrap();
    (b, number)
}

/// Starts the broadcast (scheduled now) and runs the sender until every recipient's outcome is
/// committed; answers (messages/s, p50, p99 schedule-to-send, peak RSS MiB while it ran).
async fn broadcast_round(
    pool: &PgPool,
    wa: &Arc<WhatsApp>,
    ws: WorkspaceId,
    b: Uuid,
    n: usize,
) -> (f64, Duration, Duration, f64) {
    let cfg = SenderConfig {
        default_rate: 80,
        batch: BATCH,
        in_flight: IN_FLIGHT,
        lease: Duration::from_secs(60),
        idle: Duration::from_millis(20),
    };
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let (peak, stop) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Some(mib) = rss_mib(std::process::id()) {
                    peak.fetch_max((mib * 1024.0) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let tenant = TenantId::from_uuid(ws.as_uuid());
    let mut tx = db::tenant(pool, tenant).await.unwrap();
    sqlx::query("UPDATE wa_broadcasts SET status = 'running', scheduled_at = now() WHERE id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .unwrap();
    db::commit(tx).await.unwrap();
    let started = Instant::now();
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(run_sender(wa.clone(), cfg, cancel.clone()));
    loop {
        let mut tx = db::tenant(pool, tenant).await.unwrap();
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM wa_broadcast_recipients WHERE broadcast_id = $1 AND state IN ('queued', 'claimed', 'sending')",
        )
        .bind(b)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        db::commit(tx).await.unwrap();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    running.await.unwrap();
    sampling.cancel();
    sampler.await.unwrap();
    let mut tx = db::tenant(pool, tenant).await.unwrap();
    let (sent, p50, p99): (i64, f64, f64) = sqlx::query_as(
        "SELECT count(*), \
           coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.updated_at - b.scheduled_at)), 0)::float8, \
           coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.updated_at - b.scheduled_at)), 0)::float8 \
         FROM wa_broadcast_recipients r JOIN wa_broadcasts b ON b.id = r.broadcast_id \
         WHERE r.broadcast_id = $1 AND r.state = 'sent'",
    )
    .bind(b)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    db::commit(tx).await.unwrap();
    assert_eq!(sent as usize, n, "every recipient sent once");
    let rss = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    (n as f64 / elapsed.as_secs_f64(), Duration::from_secs_f64(p50), Duration::from_secs_f64(p99), rss)
}

/// The floor: `n` plain POSTs of the sender's JSON to the same fake, `IN_FLIGHT` at a time.
async fn http_floor(url: &str, body: &[u8], n: usize) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build().unwrap();
    let left = Arc::new(AtomicU64::new(n as u64));
    let started = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (client, left, url, body) = (client.clone(), left.clone(), url.to_owned(), body.to_vec());
            tokio::spawn(async move {
                while left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1)).is_ok() {
                    let resp = client
                        .post(&url)
                        .header("authorization", format!("Bearer {TEST_TOKEN}"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request");
                    assert!(resp.status().is_success());
                    let _ = resp.bytes().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    nexus_platform::install_crypto_provider();
    let n = recipients();
    let test_db = nexus_testkit::TestDb::new().await;
    let mut cfg = test_db.config("messaging");
    cfg.max_connections = (IN_FLIGHT + 8) as u32;
    db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
    let pool = db::connect("messaging", &cfg).await.unwrap();

    let fake = FakeWhatsApp::start().await;
    // Counted, not kept: the memory measured is the sender's, not the fake's archive.
    fake.keep_accepted(false);
    let sealer = Sealer::new(&[(1, &Sealer::generate_key())]).unwrap();
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap();
    let meta = WhatsAppClient::new(WhatsAppConfig { base_url: format!("{}/v25.0", fake.base_url) }, http);
    let store_root = std::env::temp_dir().join(format!("nexus-bench-broadcasts-{}", Uuid::new_v4().simple()));
    let storage = nexus_platform::storage::StorageConfig {
        backend: "local".into(),
        root: store_root.clone(),
        max_bytes: 1024,
        download_timeout: Duration::from_secs(5),
        s3: nexus_platform::storage::S3Config {
            bucket: String::new(),
            endpoint: String::new(),
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key: nexus_platform::Secret::new(String::new()),
            allow_http: false,
        },
    };
    let wa = Arc::new(WhatsApp {
        pool: pool.clone(),
        sealer: sealer.clone(),
        // Broadcasts here are inserted running: nothing is reserved or limited.
        credits: Arc::new(
            nexus_platform::credits::GrpcCredits::new("http://127.0.0.1:1", Duration::from_secs(1)).unwrap(),
        ),
        meta: Some(Arc::new(meta)),
        local: Arc::new(LocalWhatsApp::new()),
        allow_local: false,
        app_secret: String::new(),
        verify_token: String::new(),
        bus: None,
        stopping: tokio_util::sync::CancellationToken::new(),
        agents: None,
        storage: Arc::new(nexus_platform::storage::Storage::new(&storage).unwrap()),
    });
    let ws = WorkspaceId::new();

    // Warm-up: connections, plans, the sender's first claims; and the JSON it sends.
    fake.keep_accepted(true);
    let (warm, number) = broadcast(&pool, &sealer, ws, 200, None).await;
    broadcast_round(&pool, &wa, ws, warm, 200).await;
    fake.keep_accepted(false);
    let sent = fake.accepted().pop().expect("the warm-up sent");
    let body = serde_json::to_vec(&sent.body).unwrap();
    let url = format!("{}/v25.0/{TEST_PHONE_NUMBER_ID}/messages", fake.base_url);
    http_floor(&url, &body, 1_000).await;

    let (b, _) = broadcast(&pool, &sealer, ws, n, Some(number)).await;
    let before = rss_mib(std::process::id()).unwrap_or(0.0);
    let plain = http_floor(&url, &body, n).await;
    let (rate, p50, p99, rss) = broadcast_round(&pool, &wa, ws, b, n).await;
    let plain_after = http_floor(&url, &body, n).await;
    let floor = (plain + plain_after) / 2.0;
    println!(
        "broadcast of {n}: {rate:.0} messages/s (plain HTTP {plain:.0} before, {plain_after:.0} after), \
         schedule-to-send p50 {p50:?} p99 {p99:?}; RSS {before:.1} MiB before, peak {rss:.1} MiB while sending"
    );
    let name = format!("broadcast of {n} template messages, {IN_FLIGHT} in flight, {} B bodies", body.len());
    Result {
        bench: "messaging/broadcasts",
        name: &name,
        value: rate,
        unit: "messages/s",
        baseline: Some(("plain HTTP to the same fake", floor, "req/s")),
        goal: Goal::AtLeast(GOAL),
    }
    .report();
    let name = format!("p99 schedule-to-send, broadcast of {n}");
    Result {
        bench: "messaging/broadcasts",
        name: &name,
        value: p99.as_secs_f64() * 1000.0,
        unit: "ms",
        // Every recipient is due at once: the last waits for everyone before it, so the goal is
        // what the floor's rate allows, twice over.
        baseline: None,
        goal: Goal::AtMost(2.0 * n as f64 / floor * 1000.0),
    }
    .report();
    let name = format!("peak RSS while a broadcast of {n} sends");
    Result {
        bench: "messaging/broadcasts",
        name: &name,
        value: rss,
        unit: "MiB",
        baseline: None,
        goal: Goal::AtMost(RSS_GOAL_MIB),
    }
    .report();
    if let Some(hwm) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_owned())))
    {
        println!("VmHWM of the whole run (warm-up and floors included): {hwm}");
    }
    let _ = std::fs::remove_dir_all(&store_root);
    drop(pool);
}
