//! `make bench`: the cost of identity at the gateway and of a login.
//!
//! 1. Authenticated no-op request (JWT verification + context forwarding + the per-user budget)
//!    in requests/s, as a ratio of the same route without a token (which spends the per-IP
//!    budget), measured in the same run (goal >= 0.84), with the budgets in process and with
//!    them shared through Redis (`rate_limit.redis_url`, Redis at 127.0.0.1:6379 or
//!    NEXUS_BENCH_REDIS_URL). Baseline and candidate alternate in six rounds of one-second slices.
//! 2. Login latency p50/p99 with the production Argon2id parameters (goal p50 < 100 ms).
//!
//! Needs Postgres and NATS (`make bench` starts them).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::start_gateway;
use nexus_testkit::bench::{Goal, Result};

const CONCURRENCY: usize = 32;
/// Baseline and candidate alternate in slices this long, so machine load weighs on both alike.
const WINDOW: Duration = Duration::from_secs(1);
const ROUNDS: usize = 6;
const LOGINS: usize = 60;

/// Requests/s without and with the token, measured in alternating slices (summed over the rounds).
async fn interleaved(url: &str, token: &str) -> (f64, f64) {
    let (mut plain, mut authed) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        plain += throughput(url, None).await;
        authed += throughput(url, Some(token)).await;
    }
    (plain / ROUNDS as f64, authed / ROUNDS as f64)
}

async fn throughput(url: &str, token: Option<&str>) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, done, url, token) = (client.clone(), done.clone(), url.to_owned(), token.map(str::to_owned));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut r = client.get(&url);
                if let Some(t) = &token {
                    r = r.bearer_auth(t);
                }
                let resp = r.send().await.expect("request");
                assert!(resp.status().is_success(), "status {}", resp.status());
                let _ = resp.bytes().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    // Production Argon2id parameters: the defaults.
    let stack = common::start(&[], false).await;
    let cfg = stack.gateway.clone();
    let base = start_gateway(&cfg).await;
    let mut shared_cfg = cfg.clone();
    shared_cfg.rate_limit.redis_url = nexus_platform::config::Secret::new(
        std::env::var("NEXUS_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    );
    shared_cfg.rate_limit.redis_prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
    let shared_base = start_gateway(&shared_cfg).await;

    let http = reqwest::Client::new();
    let password = "correct horse battery staple";
    let (email, session) = common::sign_up(&base, password).await;
    let token = session["access_token"].as_str().unwrap().to_owned();

    for (label, base) in [("in-process limiter", &base), ("shared limiter (Redis)", &shared_base)] {
        let url = format!("{base}/v1/locales");
        throughput(&url, None).await; // warm-up
        throughput(&url, Some(&token)).await;
        let (plain, authed) = interleaved(&url, &token).await;
        Result {
            bench: "gateway/identity",
            name: &format!("authenticated requests, {label}"),
            value: authed,
            unit: "req/s",
            baseline: Some(("unauthenticated", plain, "req/s")),
            goal: Goal::AtLeast(0.84),
        }
        .report();
    }

    let mut times = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        let started = Instant::now();
        let r = http
            .post(format!("{base}/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
        times.push(started.elapsed());
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("login latency over {LOGINS}: p50 {p50:.1} ms, p99 {p99:.1} ms");
    let name = format!("login p50 over {LOGINS} (Argon2id)");
    Result {
        bench: "gateway/identity",
        name: &name,
        value: p50,
        unit: "ms",
        baseline: None,
        goal: Goal::AtMost(100.0),
    }
    .report();
    stack.stop.cancel();
}
