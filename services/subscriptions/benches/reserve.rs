//! `make bench`: credit reservations per second, on one hot workspace and spread over 1,000
//! workspaces, against the raw rate of the equivalent single-row conditional UPDATE measured in
//! the same run (goal: hot >= 0.5 of raw, issue #11), and a check that no run overspent.
//!
//! Needs Postgres and NATS (`make bench` starts them).
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexus_kernel::WorkspaceId;
use nexus_subscriptions::app::Billing;
use nexus_testkit::TestDb;
use nexus_testkit::bench::{Goal, Result};
use sqlx::PgPool;

const TASKS: usize = 16;
/// Each workload runs in slices of this length, taking turns with the others for [`ROUNDS`]
/// rounds, so that whatever else the machine does weighs on baseline and candidate alike.
const SLICE: Duration = Duration::from_secs(1);
const ROUNDS: u32 = 6;

type Op = Arc<dyn Fn(u64) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// A workload's running total: operations done, seconds spent, and the next key number.
struct Tally {
    op: Op,
    done: u64,
    secs: f64,
    next: Arc<AtomicU64>,
}

impl Tally {
    fn new(op: Op) -> Self {
        Self { op, done: 0, secs: 0.0, next: Arc::new(AtomicU64::new(0)) }
    }

    async fn slice(&mut self) {
        let (n, secs) = run(self.op.clone(), self.next.clone()).await;
        self.done += n;
        self.secs += secs;
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.secs
    }
}

/// [`TASKS`] callers run `f` for one [`SLICE`]; returns how many succeeded and the seconds taken.
async fn run(f: Op, next: Arc<AtomicU64>) -> (u64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + SLICE;
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let (f, done, next) = (f.clone(), done.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if f(next.fetch_add(1, Ordering::Relaxed)).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    (done.load(Ordering::Relaxed), started.elapsed().as_secs_f64())
}

async fn overspent(admin: &PgPool) -> i64 {
    // Any workspace whose ledger disagrees with its balance, or whose balance went negative.
    sqlx::query_scalar(
        "SELECT count(*) FROM subscriptions.credit_balances b \
         WHERE b.available < 0 OR b.available <> (SELECT coalesce(sum(amount), 0) FROM subscriptions.credit_ledger l WHERE l.tenant_id = b.tenant_id) \
            OR b.reserved <> (SELECT coalesce(sum(amount), 0) FROM subscriptions.reservations r WHERE r.tenant_id = b.tenant_id AND r.status = 'held')",
    )
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::main]
async fn main() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let mut cfg = db.config("subscriptions");
    cfg.max_connections = 32;
    cfg.acquire_timeout = Duration::from_secs(60);
    nexus_platform::db::migrate("subscriptions", &cfg, Some(&nexus_subscriptions::MIGRATIONS)).await.unwrap();
    let pool = nexus_platform::db::connect("subscriptions", &cfg).await.unwrap();
    let admin = db.admin_pool().await;
    let billing_cfg: nexus_subscriptions::Config =
        nexus_platform::config::load_from_env("subscriptions", nexus_subscriptions::DEFAULTS, None, Vec::new())
            .unwrap();
    let billing = Arc::new(Billing::new(pool.clone(), &billing_cfg));

    // Baseline: the same conditional decrement as a single autocommitted statement.
    sqlx::query(
        "CREATE TABLE public.raw_balance (id int PRIMARY KEY, available bigint NOT NULL CHECK (available >= 0))",
    )
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("INSERT INTO public.raw_balance VALUES (1, 1000000000)").execute(&admin).await.unwrap();
    let raw_pool = admin.clone();
    let mut raw = Tally::new(Arc::new(move |_| {
        let p = raw_pool.clone();
        Box::pin(async move {
            sqlx::query("UPDATE public.raw_balance SET available = available - 1 WHERE id = 1 AND available >= 1")
                .execute(&p)
                .await
                .is_ok_and(|r| r.rows_affected() == 1)
        })
    }));

    let grant = |tenant: WorkspaceId, amount: i64| {
        let pool = pool.clone();
        async move {
            let mut tx = nexus_platform::db::begin_tenant(&pool, tenant).await.unwrap();
            Billing::ensure_subscription(&mut tx, tenant).await.unwrap();
            Billing::grant(&mut tx, tenant, amount, "purchase", "bench", false).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    let hot = WorkspaceId::new();
    grant(hot, 100_000_000).await;
    let b = billing.clone();
    let mut hot_rate = Tally::new(Arc::new(move |i| {
        let b = b.clone();
        Box::pin(async move { b.reserve(hot, "content.generation", 0, 1, &format!("hot-{i}"), 600).await.is_ok() })
    }));

    let spread: Arc<Vec<WorkspaceId>> = Arc::new((0..1000).map(|_| WorkspaceId::new()).collect());
    for ws in spread.iter() {
        grant(*ws, 1_000_000).await;
    }
    let (b, s) = (billing.clone(), spread.clone());
    let mut spread_rate = Tally::new(Arc::new(move |i| {
        let (b, s) = (b.clone(), s.clone());
        Box::pin(async move {
            let ws = s[usize::try_from(i).unwrap_or(0) % s.len()];
            b.reserve(ws, "content.generation", 0, 1, &format!("spread-{i}"), 600).await.is_ok()
        })
    }));

    for _ in 0..ROUNDS {
        raw.slice().await;
        hot_rate.slice().await;
        spread_rate.slice().await;
    }
    let (raw, hot_rate, spread_rate) = (raw.rate(), hot_rate.rate(), spread_rate.rate());

    let bad = overspent(&admin).await;
    println!(
        "raw conditional UPDATE (baseline): {raw:.0} /s with {TASKS} concurrent callers ({ROUNDS} interleaved rounds of {}s each)",
        SLICE.as_secs()
    );
    Result {
        bench: "subscriptions/reserve",
        name: "credit reservations, one hot workspace",
        value: hot_rate,
        unit: "/s",
        baseline: Some(("raw conditional UPDATE", raw, "/s")),
        goal: Goal::AtLeast(0.5),
    }
    .report();
    println!("reservations over 1,000 workspaces: {spread_rate:.0} /s, ratio {:.2} of raw", spread_rate / raw);
    Result {
        bench: "subscriptions/reserve",
        name: "workspaces overspent or out of balance with their ledger",
        value: bad as f64,
        unit: "workspaces",
        baseline: None,
        goal: Goal::AtMost(0.0),
    }
    .report();
    assert_eq!(bad, 0);
}
