//! `make bench`: insight ingestion, rows stored per second, against a raw `COPY` of the same rows.
//!
//! Candidate: the fake Meta serving N daily ad-level rows (`NEXUS_BENCH_INSIGHT_ROWS`, default
//! 100,000: the 28-day backfill of one ad account with as many ads as that takes), in pages of
//! 500 (Meta's most) at a usage of 1 % (no slowing down), synced by one round of the production
//! account sweep (`App::sweep_insights`: claim, async report job, every page read, parsed and
//! stored by `repo::insights::upsert` under the tenant's RLS, release). The report job completes
//! at its second poll; the poll interval is 10 ms so that the round measures the sync, not a
//! wait the real Meta sets. The clock starts with the round and stops when it returns, every row
//! stored; the rows stored must equal the rows served.
//! Floor: the same rows, read back as stored, written by one raw `COPY … FROM STDIN` into the
//! same table emptied (`TRUNCATE`), no RLS, no parsing; three times, the median.
//!
//! Figure: rows/s against the floor, with the goal, a ratio of at least 0.3.
//!
//! Needs Postgres and NATS (`make bench` starts them).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

mod support;

use std::time::Instant;

use futures::TryStreamExt;
use nexus_proto::nexus::ads::v1 as pb;
use nexus_proto::nexus::ads::v1::ads_client::AdsClient;
use nexus_testkit::bench::{Goal, Result};
use nexus_testkit::meta::FakeMeta;
use nexus_testkit::service::TestService;

const BENCH: &str = "ads/insights";
/// The goal: candidate rows/s over COPY rows/s.
const GOAL: f64 = 0.3;
/// The fake's ad account with a time zone (America/Los_Angeles) and a currency.
const ACCOUNT: &str = "act_111";
/// The stored columns, in the order the floor copies them.
const COLUMNS: &str = "tenant_id, connection_id, ad_account, campaign_id, adset_id, ad_id, day, currency, time_zone, \
                       spend_minor, impressions, reach, clicks, conversions, revenue_minor, synced_at";

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn stored(s: &TestService) -> i64 {
    s.scalar("SELECT count(*) FROM ads.account_insights").await
}

/// The floor: `rows` (COPY text) written into the emptied table by one `COPY`; answers rows/s.
async fn copy_floor(s: &TestService, rows: &[u8], n: usize) -> f64 {
    s.exec("TRUNCATE ads.account_insights").await;
    let mut conn = s.admin_pool.acquire().await.unwrap();
    let started = Instant::now();
    let sql = format!("COPY ads.account_insights ({COLUMNS}) FROM STDIN");
    let mut copy = conn.copy_in_raw(&sql).await.unwrap();
    for chunk in rows.chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    let copied = copy.finish().await.unwrap();
    let rate = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(copied as usize, n, "COPY wrote every row");
    rate
}

#[tokio::main]
async fn main() {
    nexus_platform::install_crypto_provider();
    let n = env_or("NEXUS_BENCH_INSIGHT_ROWS", 100_000);
    let meta = FakeMeta::start().await;
    meta.generate_insights(n);
    meta.set_insights_page(500);
    meta.set_usage_percent(1);
    let env = [("NEXUS_INSIGHTS__POLL_INTERVAL", "10ms".to_owned())];
    let (s, app) = support::start(&meta, 16, &env).await;
    let admin = s.admin();
    let conn = support::connect_meta(&s, &admin).await;
    let req = pb::ChooseAccountsRequest { id: conn, external_ids: vec![ACCOUNT.into()] };
    AdsClient::new(s.channel().await).choose_accounts(admin.req(req)).await.unwrap();
    let i = &app.cfg.insights;
    println!(
        "config: {n} rows served, the {}-day backfill (async report over {} days), pages of 500, usage 1 %",
        i.backfill_days, i.async_over_days
    );

    let started = Instant::now();
    let round = app.sweep_insights().await.expect("sweep");
    let secs = started.elapsed().as_secs_f64();
    let served = meta.insights_served_count();
    assert_eq!((round.synced, round.failed), (1, 0), "the account synced");
    assert_eq!(served, n, "the fake served every row");
    assert_eq!(round.rows as usize, n, "the sweep stored every row served");
    assert_eq!(stored(&s).await as usize, n, "every row served is in the table");
    let rate = n as f64 / secs;
    let pages = meta.insights_calls().len();

    // The same rows, as stored, for the floor.
    let mut conn = s.admin_pool.acquire().await.unwrap();
    let sql = format!("COPY (SELECT {COLUMNS} FROM ads.account_insights) TO STDOUT");
    let rows: Vec<u8> = conn
        .copy_out_raw(&sql)
        .await
        .unwrap()
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .unwrap();
    drop(conn);
    let mut floors = Vec::new();
    for _ in 0..3 {
        floors.push(copy_floor(&s, &rows, n).await);
    }
    floors.sort_by(f64::total_cmp);
    let floor = floors[1];
    assert_eq!(stored(&s).await as usize, n);

    println!(
        "{n} rows in {pages} pages: {rate:.0} rows/s in {secs:.2} s; COPY of the same rows {:.0} / {floor:.0} / {:.0} \
         rows/s (min / median / max)",
        floors[0], floors[2]
    );
    let name = format!("{n} daily insight rows synced from the fake Meta, pages of 500");
    Result {
        bench: BENCH,
        name: &name,
        value: rate,
        unit: "rows/s",
        baseline: Some(("raw COPY of the same rows", floor, "rows/s")),
        goal: Goal::AtLeast(GOAL),
    }
    .report();
}
