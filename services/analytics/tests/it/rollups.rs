//! Rollup-backed reports equal the answers computed from the raw events, bucket by bucket, on a
//! generated data set with duplicates (same id resent, same id with another time) and late
//! events (into hours already compacted), before and after compaction. Counts, revenue and
//! credits are exact; unique users are HyperLogLog estimates, held to `hll::within_bound`
//! (three standard errors of 1.6 %, at least 2).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexus_analytics::app::Analytics;
use nexus_analytics::app::rollups::Compactor;
use nexus_analytics::domain::Interval;
use nexus_analytics::domain::hll::within_bound;
use nexus_analytics::domain::report::{BreakdownBy, Range};
use nexus_analytics::repo;
use nexus_analytics::repo::reports::Slice;
use nexus_kernel::{PageRequest, TenantId, WorkspaceId};
use nexus_platform::db;
use nexus_proto::nexus::analytics::v1 as pb;

use crate::support::*;

const NAMES: [&str; 5] =
    ["page.viewed", "signup.started", "signup.completed", "order.paid", "subscriptions.credits.charged"];

struct Gen(u64);

impl Gen {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn make(g: &mut Gen, id: String, at: DateTime<Utc>) -> pb::TrackEvent {
    let name = NAMES[g.next(5) as usize];
    let mut e = event(name, &id, at, &format!("anon-{}", g.next(400)));
    if g.next(3) > 0 {
        e.user_id = format!("user-{}", g.next(300));
    }
    if name == "order.paid" {
        let cur = if g.next(2) == 0 { "USD" } else { "EUR" };
        e.revenue = Some(nexus_proto::common::Money { amount_minor: 1 + g.next(20_000) as i64, currency: cur.into() });
    }
    if name == "subscriptions.credits.charged" {
        let plan = ["free", "pro", "premium"][g.next(3) as usize];
        let action = ["image", "video", "text"][g.next(3) as usize];
        e.properties_json = serde_json::json!({"plan": plan, "action": action, "credits": 1 + g.next(40)}).to_string();
    }
    e
}

async fn send(svc: &Svc, key: &str, events: Vec<pb::TrackEvent>) {
    let mut c = svc.client();
    for chunk in events.chunks(400) {
        let r = c.track_batch(batch(key, chunk.to_vec())).await.unwrap().into_inner();
        assert_eq!(r.rejected, 0);
    }
}

fn check_users(what: &str, got: i64, want: i64) {
    assert!(within_bound(got, want), "{what}: {got} unique users estimated, {want} exact");
}

/// Every rollup-backed report against its raw-event form, for several ranges, zones, intervals.
async fn compare(app: &Analytics, tenant: TenantId, ranges: &[Range]) {
    let cases = [
        (Interval::Hour, "UTC"),
        (Interval::Hour, "Asia/Jerusalem"),
        (Interval::Day, "UTC"),
        (Interval::Day, "America/Sao_Paulo"),
        (Interval::Day, "Asia/Kolkata"),
        (Interval::Week, "UTC"),
    ];
    for &range in ranges {
        // The raw-event answers, read as the service reads (in a tenant transaction).
        let mut tx = db::tenant(&app.db, tenant).await.unwrap();
        for (interval, tz) in cases {
            for name in [None, Some("order.paid")] {
                let got = app.time_series(tenant, range, interval, tz, name.unwrap_or("")).await.unwrap();
                let want = repo::reports::time_series(&mut tx, tenant, range, interval, tz, name).await.unwrap();
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    let what = format!("{tz} {interval:?} {name:?} bucket {}", w.local_start);
                    assert_eq!((g.local_start, g.start, g.events), (w.local_start, w.start, w.events), "{what}");
                    check_users(&what, g.unique_users, w.unique_users);
                }
            }
            let (points, totals) = app.revenue(tenant, range, interval, tz, "").await.unwrap();
            let want = repo::reports::revenue(&mut tx, tenant, range, interval, tz, None).await.unwrap();
            let got: Vec<_> = points
                .iter()
                .map(|p| (p.local_start, p.start, p.total.currency.code().to_owned(), p.total.amount_minor, p.events))
                .collect();
            let want_rows: Vec<_> =
                want.iter().map(|s| (s.local_start, s.start, s.currency.clone(), s.total, s.events)).collect();
            assert_eq!(got, want_rows, "revenue {tz} {interval:?}");
            let (_, want_totals) = nexus_analytics::domain::report::revenue(want).unwrap();
            assert_eq!(totals, want_totals);
        }
        let top = app.top_events(tenant, range, &PageRequest::new(Some(100), None).unwrap()).await.unwrap();
        let slice = Slice { offset: 0, fetch: 101 };
        let want = repo::reports::breakdown(&mut tx, tenant, range, BreakdownBy::EventName, None, slice).await.unwrap();
        assert_eq!(
            top.items.iter().map(|b| (b.key.clone(), b.events)).collect::<BTreeMap<_, _>>(),
            want.iter().map(|b| (b.key.clone(), b.events)).collect::<BTreeMap<_, _>>()
        );
        for (g, w) in top.items.iter().zip(&want) {
            assert_eq!(g.events, w.events, "ranked alike");
            let u = want.iter().find(|x| x.key == g.key).unwrap().unique_users;
            check_users(&g.key, g.unique_users, u);
        }
        let usage = app.feature_usage(tenant, range).await.unwrap();
        let want = repo::reports::feature_usage(&mut tx, tenant, range).await.unwrap();
        assert_eq!(usage.len(), want.len());
        for (g, w) in usage.iter().zip(&want) {
            assert_eq!((&g.plan, &g.feature, g.uses, g.credits), (&w.plan, &w.feature, w.uses, w.credits));
            check_users(&format!("{} {}", g.plan, g.feature), g.unique_users, w.unique_users);
        }
        let steps: Vec<String> =
            ["page.viewed", "signup.started", "signup.completed", "order.paid"].map(String::from).to_vec();
        for window in [3_600, 2 * 86_400] {
            let got = app.funnel(tenant, range, &steps, window).await.unwrap();
            let want = repo::reports::funnel_counts(&mut tx, tenant, range, &steps, window).await.unwrap();
            assert_eq!(got.iter().map(|s| s.users).collect::<Vec<_>>(), want, "funnel, window {window}");
        }
        db::commit(tx).await.unwrap();
    }
}

#[tokio::test]
async fn rollup_backed_reports_equal_the_raw_answers_with_late_and_duplicate_events() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let tenant: TenantId = ws;
    let key = svc.write_key(ws).await;
    let app = svc.app().await;
    let now = Utc::now();
    let day0 = Utc.from_utc_datetime(&(now.date_naive() - chrono::Days::new(6)).and_hms_opt(0, 0, 0).unwrap());
    let span = (now - day0).num_seconds() as u64;
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);

    // Wave 1: events over six days up to now (the open hour included), a few sent twice.
    let mut first = Vec::new();
    for i in 0..2500 {
        let at = day0 + Duration::seconds(g.next(span) as i64) + Duration::microseconds(i);
        first.push(make(&mut g, format!("w1-{i}"), at));
    }
    let resent: Vec<_> = first.iter().step_by(7).cloned().collect();
    send(&svc, &key, first.clone()).await;
    send(&svc, &key, resent).await;
    svc.wait_for_events(ws, 2500, 60).await;
    let compactor = Compactor { app: app.clone(), cfg: svc.config.rollups.clone() };
    assert!(compactor.once().await.unwrap() > 0, "wave 1 left partial rows to fold");

    // Wave 2: late events into compacted days, and the same ids again, one with another time
    // (a client retry without a timestamp): stored once, counted once.
    let mut second = Vec::new();
    for i in 0..600 {
        let at = day0 + Duration::seconds(g.next(span - 7200) as i64);
        second.push(make(&mut g, format!("w2-{i}"), at));
    }
    let mut moved = first[3].clone();
    moved.timestamp = (now - Duration::minutes(1)).to_rfc3339();
    second.push(moved);
    second.extend(first.iter().skip(1).step_by(11).cloned());
    send(&svc, &key, second).await;
    svc.wait_for_events(ws, 3100, 60).await;

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM analytics.analytics_rollups WHERE tenant_id = $1")
        .bind(ws.as_uuid())
        .fetch_one(&svc.admin().await)
        .await
        .unwrap();
    assert!(rows > 100, "reports have rollups to read: {rows}");

    let ranges = [
        Range { from: day0, to: now + Duration::hours(1) },
        Range { from: day0 + Duration::minutes(517), to: now - Duration::minutes(1333) },
        Range { from: day0 + Duration::hours(30) + Duration::seconds(1), to: day0 + Duration::hours(31) },
    ];
    compare(&app, tenant, &ranges).await;
    // Compaction changes the rows, never the answers.
    assert!(compactor.once().await.unwrap() > 0);
    let split: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM analytics.analytics_rollups WHERE tenant_id = $1 AND bucket < $2 \
         GROUP BY grain, bucket, name, currency, plan, feature HAVING count(*) > 1) k",
    )
    .bind(ws.as_uuid())
    .bind(now - Duration::days(1))
    .fetch_one(&svc.admin().await)
    .await
    .unwrap();
    assert_eq!(split, 0, "closed buckets are folded into one row per key");
    compare(&app, tenant, &ranges[..1]).await;
}
