//! `make bench`: durable tracking throughput over HTTP. Concurrent clients post batches of 100
//! events to the real gateway in front of the real analytics service (JetStream-acknowledged
//! before each answer); we report accepted events per second with p50/p99 acknowledgement
//! latency, the time until every event is in Postgres, and the rate of a raw COPY of the same
//! rows into a table with the same keys, measured in the same run (goal: accepted >= 0.4 of raw).
//!
//! Needs Postgres and NATS (`make bench` starts them).
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use nexus_analytics::app::Analytics;
use nexus_kernel::WorkspaceId;
use nexus_testkit::bench::{Goal, Result};
use nexus_testkit::{TestDb, TestNats};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 60_000;
const BATCH: usize = 100;
const CLIENTS: usize = 16;

const NAMES: [&str; 3] = ["page.viewed", "signup.started", "order.completed"];

fn event(i: usize, at: chrono::DateTime<Utc>) -> serde_json::Value {
    json!({
        "name": NAMES[i % 3],
        "client_event_id": format!("bench-{i}"),
        "timestamp": (at + chrono::Duration::milliseconds(i as i64)).to_rfc3339(),
        "anonymous_id": format!("anon-{}", i % 10_000),
        "properties": {"plan": "pro", "items": i % 7},
        "utm": {"source": "newsletter", "campaign": "launch"},
        "page_url": "https://shop.example.com/products/42",
    })
}

/// The part of a batch answer the clients check; the rest is read past without building a tree
/// (the clients share the cores with the servers).
#[derive(serde::Deserialize)]
struct BatchAnswer {
    accepted: u64,
    rejected: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Raw COPY of the same rows (same columns, same unique key and indexes) as the baseline.
async fn raw_copy_rate(admin: &sqlx::PgPool, tenant: uuid::Uuid, at: chrono::DateTime<Utc>) -> f64 {
    sqlx::raw_sql(
        "CREATE TABLE public.raw_events (tenant_id uuid NOT NULL, client_event_id text NOT NULL, name text NOT NULL, \
           source text NOT NULL, occurred_at timestamptz NOT NULL, received_at timestamptz NOT NULL, anonymous_id text, \
           user_id text, properties jsonb NOT NULL, utm_source text, utm_campaign text, page_url text, \
           UNIQUE (tenant_id, client_event_id, occurred_at)); \
         CREATE INDEX ON public.raw_events (tenant_id, occurred_at); \
         CREATE INDEX ON public.raw_events (tenant_id, name, occurred_at);",
    )
    .execute(admin)
    .await
    .unwrap();
    let mut csv = String::with_capacity(EVENTS * 200);
    let now = Utc::now().to_rfc3339();
    for i in 0..EVENTS {
        let e = event(i, at);
        let props = e["properties"].to_string().replace('"', "\"\"");
        csv.push_str(&format!(
            "{tenant},{},{},track,{},{now},{},,\"{props}\",newsletter,launch,{}\n",
            e["client_event_id"].as_str().unwrap(),
            e["name"].as_str().unwrap(),
            e["timestamp"].as_str().unwrap(),
            e["anonymous_id"].as_str().unwrap(),
            e["page_url"].as_str().unwrap(),
        ));
    }
    let mut conn = admin.acquire().await.unwrap();
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY public.raw_events (tenant_id, client_event_id, name, source, occurred_at, received_at, anonymous_id, \
             user_id, properties, utm_source, utm_campaign, page_url) FROM STDIN (FORMAT csv)",
        )
        .await
        .unwrap();
    for chunk in csv.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    let rows = copy.finish().await.unwrap();
    assert_eq!(rows as usize, EVENTS);
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let cfg = db.config("analytics");
    let env = vec![
        ("NEXUS_DATABASE__URL".to_owned(), cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), cfg.admin_url.expose().to_owned()),
        ("NEXUS_DATABASE__MAX_CONNECTIONS".to_owned(), "32".to_owned()),
        ("NEXUS_NATS__URL".to_owned(), nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), nats.prefix.clone()),
    ];
    let mut config: nexus_analytics::Config =
        nexus_platform::config::load_from_env("analytics", nexus_analytics::DEFAULTS, None, env).unwrap();
    config.fleet.services.clear();
    nexus_platform::db::migrate("analytics", &config.common.database, Some(&nexus_analytics::MIGRATIONS))
        .await
        .unwrap();
    let listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let analytics_url = format!("http://{}", listeners.grpc.local_addr().unwrap());
    let stop = CancellationToken::new();
    let (s, c) = (stop.clone(), config.clone());
    tokio::spawn(async move { nexus_analytics::run(c, listeners, s).await.unwrap() });

    let mut gw: nexus_gateway::config::GatewayConfig =
        nexus_platform::config::load_from_env("gateway", nexus_gateway::config::DEFAULTS, None, Vec::new()).unwrap();
    gw.services.analytics = analytics_url;
    gw.rate_limit.track_per_ip_per_minute = 100_000_000;
    let limits = nexus_gateway::edge::RateLimits::new(&gw.rate_limit);
    let app = nexus_gateway::app(gw, limits).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            nexus_gateway::nodelay(listener),
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let pool = nexus_platform::db::connect("analytics", &config.common.database).await.unwrap();
    let sealer = nexus_platform::crypto::Sealer::from_config(config.analytics.sealing_keys.expose()).unwrap();
    let store = Arc::new(Analytics::new(pool, sealer, 395, Duration::from_secs(30)));
    let ws = WorkspaceId::new();
    let key = loop {
        match store.write_key(ws).await {
            Ok(k) => break k.key,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let http = reqwest::Client::new();
    let at = Utc::now() - chrono::Duration::hours(2);
    // Warm-up: connections, caches, the stream and consumer.
    let warm = json!({"events": [json!({"name": "warm", "anonymous_id": "w"})]});
    for _ in 0..100 {
        let r = http.post(format!("{base}/v1/track/batch")).bearer_auth(&key).json(&warm).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Request bodies are made before the clock starts: on this machine the clients share the
    // cores with the servers, and building JSON is the clients' work, not the service's.
    let bodies: Arc<Vec<bytes::Bytes>> = Arc::new(
        (0..EVENTS / BATCH)
            .map(|b| {
                let events: Vec<_> = (b * BATCH..(b + 1) * BATCH).map(|i| event(i, at)).collect();
                serde_json::to_vec(&json!({"events": events})).unwrap().into()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (next, http, key, bodies) = (next.clone(), http.clone(), key.clone(), bodies.clone());
        let url = reqwest::Url::parse(&format!("{base}/v1/track/batch")).unwrap();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(b) else { return latencies };
                let t = Instant::now();
                let r = http
                    .post(url.clone())
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let answer: BatchAnswer = r.json().await.unwrap();
                assert_eq!((answer.accepted, answer.rejected), (BATCH as u64, 0));
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let accepted_secs = started.elapsed().as_secs_f64();
    let admin = db.admin_pool().await;
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM analytics.analytics_events WHERE tenant_id = $1 AND name <> 'warm'",
        )
        .bind(ws.as_uuid())
        .fetch_one(&admin)
        .await
        .unwrap();
        if n as usize >= EVENTS {
            assert_eq!(n as usize, EVENTS);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored_secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let accepted_rate = EVENTS as f64 / accepted_secs;
    let raw = raw_copy_rate(&admin, ws.as_uuid(), at).await;
    println!("raw COPY of the same {EVENTS} rows (baseline): {raw:.0} rows/s");
    println!(
        "tracked over HTTP, batches of {BATCH}, {CLIENTS} clients: {accepted_rate:.0} events/s durable (JetStream-acknowledged), \
         ack latency p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "all {EVENTS} in Postgres after {stored_secs:.2} s: {:.0} events/s end to end",
        EVENTS as f64 / stored_secs
    );
    Result {
        bench: "analytics/ingest",
        name: "events tracked over HTTP, durable",
        value: accepted_rate,
        unit: "events/s",
        baseline: Some(("raw COPY of the same rows", raw, "rows/s")),
        goal: Goal::AtLeast(0.4),
    }
    .report();
    stop.cancel();
}
