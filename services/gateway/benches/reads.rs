//! `make bench`: an authenticated read through the whole path, against what Postgres alone does.
//!
//! Candidate: `GET /v1/content/generations?limit=20` (a page of 20 rows) with a bearer token,
//! through gateway (token verification, limits, JSON) → gRPC → content (token verification, RLS
//! transaction) → Postgres, 64 concurrent clients. Floor: the same transaction driven straight at
//! Postgres as the content role over 64 connections, in a prepared-statement loop (`set_config`
//! of the tenant and audit settings, the `SELECT` of the page, commit). Both alternate in
//! one-second slices so machine load weighs on them alike. Goal: ratio >= 0.4.
//!
//! Needs Postgres and NATS (`make bench` starts them).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexus_testkit::bench::{Goal, Result};
use sqlx::PgPool;

const CONCURRENCY: usize = 64;
const WINDOW: Duration = Duration::from_secs(1);
const ROUNDS: usize = 6;
const ROWS: usize = 20;
const GOAL: f64 = 0.4;

/// The content service's columns and keyset of a generations page (services/content repo).
const PAGE_SQL: &str = "SELECT id, kind, platform, language, tone, status, provider, model, prompt_version, input::text AS input, \
    variants, title_limit, body_limit, prompt_tokens, completion_tokens, total_tokens, credits, created_at \
    FROM generations WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::uuid)) \
    ORDER BY created_at DESC, id DESC LIMIT $3";

/// The settings every tenant transaction makes (crates/platform db::apply_settings).
const SETTINGS_SQL: &str = "SELECT set_config('nexus.tenant_id', $1, true), set_config('nexus.system', $2, true), \
    set_config('nexus.actor_id', $3, true), set_config('nexus.request_id', $4, true), \
    set_config('nexus.client_ip', $5, true), set_config('nexus.traceparent', $6, true), \
    set_config('nexus.tracestate', $7, true)";

/// The load generator does no more than an HTTP benchmark tool would (status and body length;
/// the page's content is checked once in full by [`expected_body_len`]), so the candidate is not
/// charged for parsing its own answers: in one process they share the same two cores.
async fn gateway_slice(url: &str, token: &str, body_len: usize) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, done, url, token) = (client.clone(), done.clone(), url.to_owned(), token.to_owned());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let resp = client.get(&url).bearer_auth(&token).send().await.expect("request");
                    assert!(resp.status().is_success(), "status {}", resp.status());
                    let body = resp.bytes().await.expect("body");
                    assert_eq!(body.len(), body_len, "the page changed size");
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

/// Fetches the page once, checks it holds the page of rows, and returns its size in bytes.
async fn expected_body_len(url: &str, token: &str) -> usize {
    let resp = reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("request");
    assert!(resp.status().is_success(), "status {}", resp.status());
    let body = resp.bytes().await.expect("body");
    let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(ROWS));
    body.len()
}

async fn postgres_slice(pool: &PgPool, tenant: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (pool, done, tenant) = (pool.clone(), done.clone(), tenant.to_owned());
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.expect("connection");
                while Instant::now() < deadline {
                    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
                    sqlx::query(SETTINGS_SQL)
                        .bind(&tenant)
                        .bind("")
                        .bind("user:bench")
                        .bind(uuid::Uuid::new_v4().to_string())
                        .bind("127.0.0.1")
                        .bind("")
                        .bind("")
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    let rows = sqlx::query(PAGE_SQL)
                        .bind(None::<chrono::DateTime<chrono::Utc>>)
                        .bind(None::<uuid::Uuid>)
                        .bind(ROWS as i64 + 1)
                        .fetch_all(&mut *tx)
                        .await
                        .unwrap();
                    assert_eq!(rows.len(), ROWS);
                    tx.commit().await.unwrap();
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
    let stack = common::start(
        &[("NEXUS_AUTH__ARGON2_MEMORY_KIB", "1024".to_owned()), ("NEXUS_AUTH__ARGON2_ITERATIONS", "1".to_owned())],
        true,
    )
    .await;
    let base = common::start_gateway(&stack.gateway).await;
    let (_, session) = common::sign_up(&base, "correct horse battery staple").await;
    let token = session["access_token"].as_str().unwrap().to_owned();

    // Twenty generations (local provider, one credit each of FREE's 50).
    let http = reqwest::Client::new();
    for i in 0..ROWS {
        let r = http
            .post(format!("{base}/v1/content/generations"))
            .bearer_auth(&token)
            .header("idempotency-key", format!("bench-{i}"))
            .json(&serde_json::json!({"kind": "email", "language": "en", "product": format!("Trail Runner {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }
    let admin = stack.db.admin_pool().await;
    let tenant: String =
        sqlx::query_scalar("SELECT tenant_id::text FROM content.generations LIMIT 1").fetch_one(&admin).await.unwrap();

    let mut db = stack.db.config("content");
    db.max_connections = CONCURRENCY as u32;
    db.min_connections = 0;
    let pool = nexus_platform::db::connect("content", &db).await.unwrap();

    let url = format!("{base}/v1/content/generations?limit={ROWS}");
    let body_len = expected_body_len(&url, &token).await;
    println!("page of {ROWS}: {body_len} bytes of JSON");
    gateway_slice(&url, &token, body_len).await; // warm-up: connections, caches
    postgres_slice(&pool, &tenant).await;
    let (mut floor, mut full) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        floor += postgres_slice(&pool, &tenant).await;
        full += gateway_slice(&url, &token, body_len).await;
    }
    let (floor, full) = (floor / ROUNDS as f64, full / ROUNDS as f64);
    let name = format!("authenticated read, page of {ROWS}, {CONCURRENCY} clients, through the gateway");
    Result {
        bench: "gateway/reads",
        name: &name,
        value: full,
        unit: "req/s",
        baseline: Some(("the same query on Postgres alone", floor, "tx/s")),
        goal: Goal::AtLeast(GOAL),
    }
    .report();
    stack.stop.cancel();
}
