//! Reports equal the same figures computed here, independently, from the raw events sent —
//! including local days of a non-UTC zone, whose boundaries differ from UTC's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support::*;

#[derive(Debug, Clone)]
struct Sent {
    name: &'static str,
    user: String,
    at: DateTime<Utc>,
    revenue: Option<(i64, &'static str)>,
    plan: &'static str,
    utm: &'static str,
}

const NAMES: [&str; 4] = ["page.viewed", "signup.started", "signup.completed", "order.paid"];

/// A reproducible spread of events over four UTC days starting at `day0`, many of them in the
/// three hours after UTC midnight (the previous day in São Paulo).
fn generate(day0: DateTime<Utc>) -> Vec<Sent> {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut out = Vec::new();
    for i in 0..420 {
        let minutes = if i % 3 == 0 { next(4) * 1440 + next(180) } else { next(4 * 1440) };
        let at =
            day0 + Duration::minutes(minutes as i64) + Duration::seconds(next(60) as i64) + Duration::milliseconds(i);
        let name = NAMES[next(4) as usize];
        let revenue =
            (name == "order.paid").then(|| (100 + next(10_000) as i64, if next(2) == 0 { "USD" } else { "BRL" }));
        out.push(Sent {
            name,
            user: format!("u{}", next(25)),
            at,
            revenue,
            plan: ["free", "pro", "premium"][next(3) as usize],
            utm: ["google", "facebook", ""][next(3) as usize],
        });
    }
    // The explicit boundary case: 01:30 UTC on day 1 is 22:30 of day 0 in São Paulo.
    out.push(Sent {
        name: "page.viewed",
        user: "u-edge".into(),
        at: day0 + Duration::minutes(1440 + 90),
        revenue: Some((500, "USD")),
        plan: "pro",
        utm: "",
    });
    out
}

fn local_day(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// Funnel as specified: from each step-1 event in range, take the earliest next step strictly
/// after the previous one and no later than step 1 + window; a user counts at the furthest step
/// any of their starts reaches.
fn expected_funnel(
    events: &[Sent],
    steps: &[&str],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window: Duration,
) -> Vec<i64> {
    let mut by_user: HashMap<&str, Vec<&Sent>> = HashMap::new();
    for e in events.iter().filter(|e| e.at >= from) {
        by_user.entry(&e.user).or_default().push(e);
    }
    let mut reached = vec![0i64; steps.len()];
    for evs in by_user.values_mut() {
        evs.sort_by_key(|e| e.at);
        let mut best = 0;
        for start in evs.iter().filter(|e| e.name == steps[0] && e.at < to) {
            let (mut level, mut last) = (1, start.at);
            for step in &steps[1..] {
                match evs.iter().find(|e| e.name == *step && e.at > last && e.at <= start.at + window) {
                    Some(e) => {
                        level += 1;
                        last = e.at;
                    }
                    None => break,
                }
            }
            best = best.max(level);
        }
        for r in reached.iter_mut().take(best) {
            *r += 1;
        }
    }
    reached
}

fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<pb::TimeRange> {
    Some(pb::TimeRange { from: from.to_rfc3339(), to: to.to_rfc3339() })
}

#[tokio::test]
async fn time_series_funnel_and_revenue_match_figures_computed_from_the_raw_events() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let viewer = svc.token(ws, Role::Viewer);
    let key = svc.write_key(ws).await;
    let today = Utc::now().date_naive();
    let day0 = Utc.from_utc_datetime(&(today - chrono::Days::new(10)).and_hms_opt(0, 0, 0).unwrap());
    let events = generate(day0);
    let to_track = events
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut e = event(s.name, &format!("r-{i}"), s.at, &s.user);
            e.revenue = s.revenue.map(|(a, c)| nexus_proto::common::Money { amount_minor: a, currency: c.into() });
            e.properties_json = serde_json::json!({"plan": s.plan}).to_string();
            e.utm = Some(pb::Utm { source: s.utm.into(), ..Default::default() });
            e
        })
        .collect::<Vec<_>>();
    let mut c = svc.client();
    for chunk in to_track.chunks(300) {
        let r = c.track_batch(batch(&key, chunk.to_vec())).await.unwrap().into_inner();
        assert_eq!(r.rejected, 0);
    }
    svc.wait_for_events(ws, events.len() as i64, 30).await;

    let (from, to) = (day0, day0 + Duration::days(4));
    let sp: Tz = "America/Sao_Paulo".parse().unwrap();

    // Daily series in São Paulo, asked for explicitly and as the workspace's default zone.
    let ask = |tz: &str, interval: &str| pb::TimeSeriesRequest {
        range: range(from, to),
        interval: interval.into(),
        time_zone: tz.into(),
        event: String::new(),
    };
    let series = c.time_series(authed(ask("America/Sao_Paulo", "day"), &viewer)).await.unwrap().into_inner();
    let mut want: BTreeMap<NaiveDate, (i64, BTreeSet<&str>)> = BTreeMap::new();
    for d in 0..5 {
        want.insert(local_day(from, sp) + chrono::Days::new(d), (0, BTreeSet::new()));
    }
    for e in &events {
        let w = want.get_mut(&local_day(e.at, sp)).unwrap();
        w.0 += 1;
        w.1.insert(&e.user);
    }
    let got: Vec<(String, i64, i64)> =
        series.points.iter().map(|p| (p.local_start.clone(), p.events, p.unique_users)).collect();
    let expect: Vec<(String, i64, i64)> =
        want.iter().map(|(d, (n, users))| (format!("{d}T00:00:00"), *n, users.len() as i64)).collect();
    assert_eq!(got, expect);
    // The bucket's instant is local midnight (03:00 UTC).
    assert_eq!(series.points[1].start.as_ref().unwrap().seconds, (day0 + Duration::hours(3)).timestamp());

    // In UTC the same events fall into other days: the zone really matters here.
    let utc = c.time_series(authed(ask("UTC", "day"), &token)).await.unwrap().into_inner();
    let utc_counts: Vec<i64> = utc.points.iter().map(|p| p.events).collect();
    let want_utc: Vec<i64> = (0..4)
        .map(|d| events.iter().filter(|e| e.at.date_naive() == from.date_naive() + chrono::Days::new(d)).count() as i64)
        .collect();
    assert_eq!(utc_counts, want_utc);
    assert_ne!(utc_counts, series.points.iter().map(|p| p.events).take(4).collect::<Vec<_>>());

    c.update_settings(authed(
        pb::UpdateSettingsRequest { time_zone: "America/Sao_Paulo".into(), retention_days: 0 },
        &token,
    ))
    .await
    .unwrap();
    let default_zone = c.time_series(authed(ask("", "day"), &viewer)).await.unwrap().into_inner();
    assert_eq!(default_zone.time_zone, "America/Sao_Paulo");
    assert_eq!(default_zone.points, series.points);

    // Hourly buckets of one event name.
    let mut hourly = ask("Asia/Jerusalem", "hour");
    hourly.event = "signup.started".into();
    let h = c.time_series(authed(hourly, &viewer)).await.unwrap().into_inner();
    assert_eq!(
        h.points.iter().map(|p| p.events).sum::<i64>(),
        events.iter().filter(|e| e.name == "signup.started").count() as i64
    );
    assert!(h.points.len() >= 95, "{}", h.points.len());

    // Funnel over a range that starts a day later, one-day window.
    let (f_from, window) = (from + Duration::days(1), Duration::days(1));
    let steps = ["page.viewed", "signup.started", "signup.completed"];
    let funnel = c
        .funnel(authed(
            pb::FunnelRequest {
                range: range(f_from, to),
                steps: steps.iter().map(|s| (*s).to_owned()).collect(),
                window_seconds: window.num_seconds() as u64,
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    let want = expected_funnel(&events, &steps, f_from, to, window);
    let got: Vec<i64> = funnel.steps.iter().map(|s| s.users).collect();
    assert_eq!(got, want);
    assert!(want[0] > want[2] && want[2] > 0, "a funnel worth testing: {want:?}");
    for (i, s) in funnel.steps.iter().enumerate() {
        let prev = if i == 0 { want[0] } else { want[i - 1] };
        assert_eq!(s.drop_off, prev - want[i]);
        assert!((s.conversion_from_start - want[i] as f64 / want[0] as f64).abs() < 1e-9);
    }
    // A shorter window can only lose conversions.
    let short = c
        .funnel(authed(
            pb::FunnelRequest {
                range: range(f_from, to),
                steps: steps.iter().map(|s| (*s).to_owned()).collect(),
                window_seconds: 600,
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        short.steps.iter().map(|s| s.users).collect::<Vec<_>>(),
        expected_funnel(&events, &steps, f_from, to, Duration::seconds(600))
    );

    // Revenue per São Paulo day and currency, in minor units.
    let rev = c
        .revenue(authed(
            pb::RevenueRequest {
                range: range(from, to),
                interval: "day".into(),
                time_zone: String::new(),
                currency: String::new(),
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut want: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for e in &events {
        if let Some((amount, cur)) = e.revenue {
            let w = want.entry((format!("{}T00:00:00", local_day(e.at, sp)), cur.to_owned())).or_default();
            w.0 += amount;
            w.1 += 1;
            *totals.entry(cur.to_owned()).or_default() += amount;
        }
    }
    let got: BTreeMap<(String, String), (i64, i64)> = rev
        .points
        .iter()
        .map(|p| {
            let m = p.total.as_ref().unwrap();
            ((p.local_start.clone(), m.currency.clone()), (m.amount_minor, p.events))
        })
        .collect();
    assert_eq!(got, want);
    let got_totals: BTreeMap<String, i64> = rev.totals.iter().map(|m| (m.currency.clone(), m.amount_minor)).collect();
    assert_eq!(got_totals, totals);
    let brl = c
        .revenue(authed(
            pb::RevenueRequest {
                range: range(from, to),
                interval: "month".into(),
                time_zone: "UTC".into(),
                currency: "BRL".into(),
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(brl.totals.len(), 1);
    assert_eq!(brl.totals[0].amount_minor, totals["BRL"]);

    // Top events, paged two at a time, and breakdowns.
    let mut names = BTreeMap::new();
    for e in &events {
        *names.entry(e.name.to_owned()).or_insert(0i64) += 1;
    }
    let mut seen = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = c
            .top_events(authed(
                pb::TopEventsRequest {
                    range: range(from, to),
                    page: Some(nexus_proto::common::PageRequest { page_size: 2, cursor: cursor.clone() }),
                },
                &viewer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.rows.len() <= 2);
        seen.extend(page.rows.into_iter().map(|r| (r.key, r.events)));
        cursor = page.page.unwrap().next_cursor;
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seen, names);
    let plans = c
        .property_breakdown(authed(
            pb::PropertyBreakdownRequest {
                range: range(from, to),
                event: "order.paid".into(),
                property: "plan".into(),
                page: None,
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut want_plans = BTreeMap::new();
    for e in events.iter().filter(|e| e.name == "order.paid") {
        *want_plans.entry(e.plan.to_owned()).or_insert(0i64) += 1;
    }
    assert_eq!(plans.rows.iter().map(|r| (r.key.clone(), r.events)).collect::<BTreeMap<_, _>>(), want_plans);
    let utm = c
        .utm_breakdown(authed(
            pb::UtmBreakdownRequest {
                range: range(from, to),
                dimension: "source".into(),
                event: String::new(),
                page: None,
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut want_utm = BTreeMap::new();
    for e in &events {
        *want_utm.entry(e.utm.to_owned()).or_insert(0i64) += 1;
    }
    assert_eq!(utm.rows.iter().map(|r| (r.key.clone(), r.events)).collect::<BTreeMap<_, _>>(), want_utm);

    // Another workspace sees nothing of these events.
    let stranger = svc.owner(WorkspaceId::new());
    let theirs = c.time_series(authed(ask("UTC", "day"), &stranger)).await.unwrap().into_inner();
    assert!(theirs.points.iter().all(|p| p.events == 0));
    let theirs = c
        .top_events(authed(pb::TopEventsRequest { range: range(from, to), page: None }, &stranger))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.rows.is_empty());
}

#[tokio::test]
async fn bad_report_parameters_are_refused_with_their_code() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.token(ws, Role::Viewer);
    let mut c = svc.client();
    let ts = |tz: &str, interval: &str, from: &str, to: &str| pb::TimeSeriesRequest {
        range: Some(pb::TimeRange { from: from.into(), to: to.into() }),
        interval: interval.into(),
        time_zone: tz.into(),
        event: String::new(),
    };
    let cases = [
        (ts("Mars/Olympus_Mons", "day", "", ""), "analytics.invalid_time_zone"),
        (ts("'; DROP TABLE x; --", "day", "", ""), "analytics.invalid_time_zone"),
        (ts("UTC", "fortnight", "", ""), "analytics.invalid_interval"),
        (ts("UTC", "day", "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"), "analytics.invalid_range"),
        (ts("UTC", "day", "last week", ""), "analytics.invalid_range"),
        (ts("UTC", "hour", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), "analytics.range_too_large"),
    ];
    for (req, code) in cases {
        let e = c.time_series(authed(req, &token)).await.unwrap_err();
        assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::InvalidArgument, code));
    }
    let funnel = |steps: Vec<&str>, window: u64| pb::FunnelRequest {
        range: None,
        steps: steps.into_iter().map(str::to_owned).collect(),
        window_seconds: window,
    };
    let e = c.funnel(authed(funnel(vec!["a"], 60), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_funnel_steps");
    let e = c.funnel(authed(funnel(vec!["a", ""], 60), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_funnel_steps");
    let e = c.funnel(authed(funnel(vec!["a", "b"], 91 * 86_400), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_window");
    let e = c
        .utm_breakdown(authed(
            pb::UtmBreakdownRequest { dimension: "utm_source; --".into(), ..Default::default() },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_dimension");
    let e = c
        .revenue(authed(pb::RevenueRequest { currency: "DOGE".into(), ..Default::default() }, &token))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "money.unsupported_currency");
    let e = c
        .top_events(authed(
            pb::TopEventsRequest {
                range: None,
                page: Some(nexus_proto::common::PageRequest { page_size: 500, cursor: String::new() }),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "request.invalid_page_size");
    let e = c.time_series(tonic::Request::new(ts("UTC", "day", "", ""))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let e = c
        .update_settings(authed(pb::UpdateSettingsRequest { time_zone: "UTC".into(), retention_days: 0 }, &token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "viewers read, admins change settings");
    let owner = svc.owner(ws);
    let e = c
        .update_settings(authed(pb::UpdateSettingsRequest { time_zone: String::new(), retention_days: 5000 }, &owner))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_retention");
    let e = c
        .update_settings(authed(
            pb::UpdateSettingsRequest { time_zone: "Nowhere/Land".into(), retention_days: 0 },
            &owner,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_time_zone");
    let s = c.get_settings(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!((s.time_zone.as_str(), s.retention_days), ("UTC", 395), "nothing changed");
}
