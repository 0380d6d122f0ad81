//! `make bench`: catalogue sync, imported products whose price and stock are checked per second,
//! against the same supplier calls made by a plain loop.
//!
//! Candidate: N products imported from CJ (`NEXUS_BENCH_CATALOGUE_PRODUCTS`, default 50,000),
//! one variant each, written straight into the tables in setup (two `INSERT … SELECT` over
//! `generate_series`, not the import route one by one). The fake CJ answers at once; against
//! what was imported, every 10th product's cost rose and every 25th ran out of stock. One
//! production sweep of the workspace (`App::monitor_workspace`: pages of products read, each
//! product's detail and each variant's stock asked of CJ `monitoring.concurrency` at a time,
//! repricing by the rules, alerts, events and price history written per page) is timed from
//! its start to its return; the price history must then hold one row per changed variant.
//! Peak RSS of this process (service, fake and bench together) is sampled every 10 ms during it.
//! Floor: the same calls (product detail, then each variant's stock) to the same fake through
//! the same client, by a plain loop with the same concurrency, nothing stored; three times, the
//! median.
//!
//! Figure: products/s against the floor, with the goal, a ratio of at least 0.5.
//!
//! Needs Postgres and NATS (`make bench` starts them).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use nexus_commerce::app::App;
use nexus_proto::nexus::commerce::v1 as pb;
use nexus_proto::nexus::commerce::v1::commerce_client::CommerceClient;
use nexus_testkit::bench::{Goal, Result, rss_mib};
use nexus_testkit::cj::{FakeCj, FakeCjProduct, FakeCjVariant, TEST_API_KEY};
use nexus_testkit::service::TestService;

const BENCH: &str = "commerce/catalogue_sync";
/// The goal: candidate products/s over the plain loop's products/s.
const GOAL: f64 = 0.5;

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pid(i: usize) -> String {
    format!("BENCH{i:06}")
}

/// The fake's catalogue: product `i` has one variant `BV{i}`, imported at 10.00 USD with 100 in
/// stock; every 10th now costs 12.00, every 25th has none left.
fn catalogue(n: usize) -> Vec<FakeCjProduct> {
    (1..=n)
        .map(|i| FakeCjProduct {
            pid: pid(i),
            name: format!("Bench product {i}"),
            category: "Home".into(),
            variants: vec![FakeCjVariant {
                vid: format!("BV{i:06}"),
                sku: format!("BSKU{i:06}"),
                key: "Default".into(),
                price: if i % 10 == 0 { "12.00".into() } else { "10.00".into() },
                stock: if i % 25 == 0 { 0 } else { 100 },
            }],
        })
        .collect()
}

/// The service against `cj`, its own sweep off, and its use cases.
async fn start(cj: &FakeCj) -> (TestService, Arc<App>) {
    let env: Vec<(&str, String)> = vec![
        ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
        ("NEXUS_CJ__BASE_URL", cj.base_url.clone()),
        ("NEXUS_MONITORING__ENABLED", "false".into()),
    ];
    let shared = Arc::new(OnceLock::new());
    let sharing = shared.clone();
    let s = TestService::start(nexus_commerce::DEF, nexus_commerce::DEFAULTS, &env, |config| {
        nexus_commerce::service_sharing(config, sharing).expect("config")
    })
    .await;
    for _ in 0..200 {
        if let Some(app) = shared.get() {
            return (s, Arc::clone(app));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the service did not build its use cases");
}

/// Writes the N imported products and their variants as the import would have left them.
async fn import(s: &TestService, tenant: uuid::Uuid, connection: uuid::Uuid, n: usize) {
    sqlx::query(
        "INSERT INTO commerce.dropshipping_products (id, tenant_id, connection_id, supplier, supplier_product_id, title, \
           category, status, created_at) \
         SELECT gen_random_uuid(), $1, $2, 'cj', 'BENCH' || lpad(i::text, 6, '0'), 'Bench product ' || i, 'Home', 'draft', \
           now() + i * interval '1 microsecond' FROM generate_series(1, $3) AS i",
    )
    .bind(tenant)
    .bind(connection)
    .bind(i32::try_from(n).expect("product count"))
    .execute(&s.admin_pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO commerce.product_variants (id, tenant_id, product_id, supplier_variant_id, sku, options, cost, \
           cost_currency, price, price_currency, rate, rate_day, rate_source, stock) \
         SELECT gen_random_uuid(), tenant_id, id, 'BV' || substr(supplier_product_id, 6), 'BSKU' || substr(supplier_product_id, 6), \
           '{\"Variant\":\"Default\"}', 10.00, 'USD', 19.99, 'USD', 1, current_date, 'local', 100 \
         FROM commerce.dropshipping_products WHERE tenant_id = $1",
    )
    .bind(tenant)
    .execute(&s.admin_pool)
    .await
    .unwrap();
    s.exec("ANALYZE commerce.dropshipping_products").await;
    s.exec("ANALYZE commerce.product_variants").await;
}

/// The floor: each product's detail and its variants' stock, `concurrency` products at a time;
/// answers products/s.
async fn plain_loop(app: &App, n: usize, concurrency: usize) -> f64 {
    let client = app.cj(TEST_API_KEY, None);
    client.access_token().await.expect("token");
    let started = Instant::now();
    let checked = stream::iter(1..=n)
        .map(|i| {
            let client = client.clone();
            async move {
                let p = client.product(&pid(i)).await.expect("product");
                for v in &p.variants {
                    client.stock(&v.vid).await.expect("stock");
                }
            }
        })
        .buffer_unordered(concurrency)
        .count()
        .await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(checked, n);
    rate
}

#[tokio::main]
async fn main() {
    nexus_platform::install_crypto_provider();
    let n = env_or("NEXUS_BENCH_CATALOGUE_PRODUCTS", 50_000);
    let cj = FakeCj::start().await;
    cj.add_products(catalogue(n));
    let (s, app) = start(&cj).await;
    let admin = s.admin();
    let req = pb::ConnectRequest { provider: "cj".into(), api_key: TEST_API_KEY.into(), ..Default::default() };
    CommerceClient::new(s.channel().await).create_connection(admin.req(req)).await.unwrap();
    let connection: uuid::Uuid = sqlx::query_scalar("SELECT id FROM commerce.connections WHERE provider = 'cj'")
        .fetch_one(&s.admin_pool)
        .await
        .unwrap();
    let setup = Instant::now();
    import(&s, admin.ws.as_uuid(), connection, n).await;
    let m = &app.cfg.monitoring;
    let concurrency = m.concurrency;
    println!(
        "config: {n} products imported in {:.1} s, one variant each; pages of {}, {concurrency} supplier calls at once",
        setup.elapsed().as_secs_f64(),
        m.page_size
    );
    cj.clear_calls();

    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let (sampling, peak) = (sampling.clone(), peak.clone());
        async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(mib) = rss_mib(std::process::id()) {
                    peak.fetch_max(mib.to_bits(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let rss_before = rss_mib(std::process::id()).unwrap_or(0.0);
    let started = Instant::now();
    let report = app.monitor_workspace(admin.ws).await.expect("sweep");
    let secs = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    // Positive f64 bit patterns order as the numbers do.
    let peak = f64::from_bits(peak.load(Ordering::Relaxed));
    let rate = n as f64 / secs;
    let calls = cj.calls().len();
    cj.clear_calls();
    let changed = n / 10 + n / 25 - n / 50;
    assert_eq!(report.variants_checked as usize, n, "every variant checked");
    assert_eq!(calls, 2 * n, "one detail and one stock call per product");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.price_history").await as usize, changed, "one row per change");
    assert_eq!(report.out_of_stock as usize, n / 25);

    let mut floors = Vec::new();
    for _ in 0..3 {
        floors.push(plain_loop(&app, n, concurrency).await);
        cj.clear_calls();
    }
    floors.sort_by(f64::total_cmp);
    let floor = floors[1];
    println!(
        "{n} products ({changed} changed, {} repriced, {} out of stock, {} alerts): {rate:.0} products/s in {secs:.2} s; \
         peak RSS {peak:.0} MiB (before the sweep {rss_before:.0} MiB); plain loop {:.0} / {floor:.0} / {:.0} products/s \
         (min / median / max)",
        report.prices_changed, report.out_of_stock, report.alerts_raised, floors[0], floors[2]
    );
    let name =
        format!("{n} imported products' price and stock checked against the fake CJ, {concurrency} calls at once");
    Result {
        bench: BENCH,
        name: &name,
        value: rate,
        unit: "products/s",
        baseline: Some(("plain loop of the same calls", floor, "products/s")),
        goal: Goal::AtLeast(GOAL),
    }
    .report();
}
