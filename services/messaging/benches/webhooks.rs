//! `make bench`: outbound webhook delivery against a plain HTTP load generator.
//!
//! Candidate: signed deliveries per second through the whole path — due deliveries claimed from
//! Postgres with a lease, each message signed (Standard Webhooks), POSTed through the safe
//! outbound client to a local receiver, and its attempt, delivery state and audit records
//! committed — with 64 deliveries in flight over 16 endpoints. A round's clock stops when the
//! worker has committed the record of the last delivery, not when the receiver got it.
//! Floor: the same receiver (same process, same runtime) hit by 64 concurrent tasks of one
//! keep-alive reqwest client, each POSTing in a loop a body the worker sent (same bytes, same
//! size), to the same 16 URLs. Both alternate so machine load weighs on them alike.
//! Goal: ratio >= 0.5.
//!
//! Also reported: p99 from an event's commit to its delivery at the receiver while events are
//! published at a steady rate and the worker runs as in production.
//!
//! Needs Postgres (`make bench` starts it).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use nexus_kernel::WorkspaceId;
use nexus_messaging::app::webhooks::{EndpointInput, Webhooks, publish};
use nexus_messaging::domain::webhooks::{Clock, SystemClock};
use nexus_messaging::events::deliver::{Worker, WorkerConfig};
use nexus_platform::crypto::Sealer;
use nexus_platform::db;
use nexus_platform::identity::{Principal, PrincipalKind, Role};
use nexus_platform::outbound::{OutboundClient, OutboundConfig};
use nexus_testkit::bench::{Goal, Result};
use sqlx::PgPool;

const CONCURRENCY: usize = 64;
const ENDPOINTS: usize = 16;
/// Messages per round (each goes to every endpoint).
const MESSAGES: usize = 150;
const ROUNDS: usize = 4;
const WINDOW: Duration = Duration::from_secs(1);
const GOAL: f64 = 0.5;

#[derive(Default)]
struct Receiver {
    count: AtomicU64,
    /// The first signed body received: the floor sends these bytes.
    last_signed: std::sync::OnceLock<Vec<u8>>,
    /// Arrival of each webhook-id, while latency is measured.
    arrivals: Mutex<Option<Vec<(String, Instant)>>>,
}

async fn receiver() -> (String, Arc<Receiver>) {
    let state = Arc::new(Receiver::default());
    let shared = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = shared.clone();
            async move {
                state.count.fetch_add(1, Ordering::Relaxed);
                if state.last_signed.get().is_none() && headers.contains_key("webhook-signature") {
                    let _ = state.last_signed.set(body.to_vec());
                }
                if let Some(arrivals) = state.arrivals.lock().unwrap().as_mut()
                    && let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok())
                {
                    arrivals.push((id.to_owned(), Instant::now()));
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn owner(ws: WorkspaceId) -> Principal {
    Principal {
        user_id: nexus_kernel::UserId::new(),
        workspace_id: ws,
        role: Role::Owner,
        scopes: None,
        session_id: "bench".into(),
        kind: PrincipalKind::User,
        token_id: "bench".into(),
        expires_at: i64::MAX,
        locale: None,
        service: None,
    }
}

fn payload(n: usize) -> serde_json::Value {
    serde_json::json!({
        "id": uuid::Uuid::now_v7(), "name": format!("Contact {n}"), "phone": "+5511987654321",
        "email": "ana@example.com", "language": "pt", "tags": ["vip"], "stage": "lead", "source": "bench",
    })
}

/// Publishes `n` messages, 50 to a transaction; answers each message's id and commit time.
async fn publish_many(pool: &PgPool, ws: WorkspaceId, n: usize) -> Vec<(uuid::Uuid, Instant)> {
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let mut tx = db::tenant(pool, ws).await.unwrap();
        let mut ids = Vec::new();
        for i in chunk {
            let m = publish(&mut tx, ws, "contact.created", &uuid::Uuid::now_v7().to_string(), &payload(*i))
                .await
                .unwrap()
                .unwrap();
            ids.push(m.id);
        }
        db::commit(tx).await.unwrap();
        let at = Instant::now();
        out.extend(ids.into_iter().map(|id| (id, at)));
    }
    out
}

/// Publishes a round of messages, then runs the worker as in production until they are all
/// delivered and recorded (the worker stops once the receiver has them all, committing what is
/// in flight); answers deliveries per second.
async fn webhook_round(pool: &PgPool, worker: &Worker, ws: WorkspaceId, rx: &Receiver) -> f64 {
    publish_many(pool, ws, MESSAGES).await;
    let target = rx.count.load(Ordering::Relaxed) + (MESSAGES * ENDPOINTS) as u64;
    let cancel = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(worker.clone().run(cancel.clone()));
    while rx.count.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cancel.cancel();
    running.await.unwrap();
    let elapsed = started.elapsed();
    (MESSAGES * ENDPOINTS) as f64 / elapsed.as_secs_f64()
}

/// The floor: plain POSTs of a body of the same size, `CONCURRENCY` at a time.
async fn http_slice(urls: &[String], body: &[u8]) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|i| {
            let (client, done, url, body) = (client.clone(), done.clone(), urls[i % urls.len()].clone(), body.to_vec());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request");
                    assert!(resp.status().is_success());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    nexus_platform::install_crypto_provider();
    let test_db = nexus_testkit::TestDb::new().await;
    let mut cfg = test_db.config("messaging");
    cfg.max_connections = 16;
    db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
    let pool = db::connect("messaging", &cfg).await.unwrap();

    let outbound = OutboundConfig { allow_private_cidrs: vec!["127.0.0.0/8".into()], ..Default::default() };
    let sealer = Sealer::new(&[(1, &Sealer::generate_key())]).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hooks = Webhooks {
        pool: pool.clone(),
        sealer: sealer.clone(),
        outbound: OutboundClient::new(&outbound).unwrap(),
        allow_http: false,
        clock: clock.clone(),
    };
    let ws = WorkspaceId::new();
    let (url, rx) = receiver().await;
    // One receiver, several endpoint URLs (each endpoint has its own rate limit).
    let urls: Vec<String> = (0..ENDPOINTS).map(|i| format!("{url}?e={i}")).collect();
    for u in &urls {
        let input =
            EndpointInput { url: u.clone(), description: String::new(), event_types: vec![], rate_limit: Some(1000) };
        hooks.create_endpoint(&owner(ws), &input).await.unwrap();
    }
    let cfg = WorkerConfig { in_flight: CONCURRENCY, batch: CONCURRENCY as i64, ..Default::default() };
    let worker = Worker::new(pool.clone(), &outbound, sealer, clock, cfg).unwrap();
    // Warm-up: connections, caches, plans; and a signed body for the floor to send.
    webhook_round(&pool, &worker, ws, &rx).await;
    let body = rx.last_signed.get().expect("the receiver kept a signed body").clone();
    http_slice(&urls, &body).await;
    let (mut floor, mut full) = (0.0, 0.0);
    for round in 1..=ROUNDS {
        let plain = http_slice(&urls, &body).await;
        let signed = webhook_round(&pool, &worker, ws, &rx).await;
        println!(
            "  round {round}: plain HTTP {plain:.0} req/s, signed deliveries {signed:.0}/s, ratio {:.2}",
            signed / plain
        );
        floor += plain;
        full += signed;
    }
    let (floor, full) = (floor / ROUNDS as f64, full / ROUNDS as f64);
    let name =
        format!("signed webhook deliveries, {ENDPOINTS} endpoints, {CONCURRENCY} in flight, {} B bodies", body.len());
    Result {
        bench: "messaging/webhooks",
        name: &name,
        value: full,
        unit: "deliveries/s",
        baseline: Some(("plain HTTP to the same receiver", floor, "req/s")),
        goal: Goal::AtLeast(GOAL),
    }
    .report();

    // Event → delivery latency with the worker running as in production, 100 events/s.
    *rx.arrivals.lock().unwrap() = Some(Vec::new());
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(cancel.clone()));
    let mut published: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..300 {
        tick.tick().await;
        for (id, at) in publish_many(&pool, ws, 1).await {
            published.insert(nexus_messaging::domain::webhooks::webhook_id(id), at);
        }
    }
    let expected = published.len() * ENDPOINTS;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.arrivals.lock().unwrap().as_ref().map_or(0, Vec::len) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    running.await.unwrap();
    let arrivals = rx.arrivals.lock().unwrap().take().unwrap_or_default();
    let mut lat: Vec<Duration> =
        arrivals.iter().filter_map(|(id, at)| published.get(id).map(|p| at.saturating_duration_since(*p))).collect();
    lat.sort();
    let pct = |q: f64| lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1))).copied();
    println!(
        "event -> delivery ({} deliveries of {expected}, 100 events/s x {ENDPOINTS} endpoints): p50 {:?}, p99 {:?}",
        lat.len(),
        pct(0.50).unwrap_or_default(),
        pct(0.99).unwrap_or_default()
    );
    drop(pool);
}
