//! Retention cohorts and stickiness equal figures computed here from the events sent; bad
//! parameters are refused with their code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support::*;

fn monday(t: DateTime<Utc>) -> NaiveDate {
    let d = t.date_naive();
    d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday()))
}

#[tokio::test]
async fn cohorts_and_stickiness_match_the_events_and_bad_input_is_refused() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let viewer = svc.token(ws, Role::Viewer);
    let key = svc.write_key(ws).await;
    let now = Utc::now();
    let day0 = Utc.from_utc_datetime(&(now.date_naive() - chrono::Days::new(60)).and_hms_opt(0, 0, 0).unwrap());
    let mut seed: u64 = 0xD1B5_4A32_D192_ED03;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut sent: Vec<(&str, String, DateTime<Utc>)> = Vec::new();
    for u in 0..80 {
        let signup = day0 + Duration::minutes(next(40 * 1440) as i64);
        sent.push(("signup.completed", format!("u{u}"), signup));
        for _ in 0..next(12) {
            let at = signup + Duration::minutes(next(50 * 1440) as i64);
            if at < now {
                sent.push((if next(2) == 0 { "page.viewed" } else { "image.generated" }, format!("u{u}"), at));
            }
        }
    }
    let events: Vec<pb::TrackEvent> = sent
        .iter()
        .enumerate()
        .map(|(i, (name, user, at))| {
            let mut e = event(name, &format!("r{i}"), *at, "");
            e.user_id = user.clone();
            e
        })
        .collect();
    let mut c = svc.client();
    for chunk in events.chunks(400) {
        assert_eq!(c.track_batch(batch(&key, chunk.to_vec())).await.unwrap().into_inner().rejected, 0);
    }
    svc.wait_for_events(ws, sent.len() as i64, 30).await;

    let (from, to) = (day0, day0 + Duration::days(42));
    let range = Some(pb::TimeRange { from: from.to_rfc3339(), to: to.to_rfc3339() });
    for (start, ret) in [("signup.completed", "page.viewed"), ("image.generated", "image.generated")] {
        let got = c
            .retention(authed(
                pb::RetentionRequest {
                    range: range.clone(),
                    start_event: start.into(),
                    return_event: ret.into(),
                    weeks: 6,
                },
                &viewer,
            ))
            .await
            .unwrap()
            .into_inner();
        // Independently: first start per user, cohort week, weeks with a return.
        let mut first: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for (n, u, at) in &sent {
            if *n == start && *at < to {
                let f = first.entry(u.as_str()).or_insert(*at);
                *f = (*f).min(*at);
            }
        }
        let mut want: BTreeMap<NaiveDate, (i64, Vec<BTreeSet<&str>>)> = BTreeMap::new();
        for (u, f) in first.iter().filter(|(_, f)| **f >= from) {
            let w = want.entry(monday(*f)).or_insert_with(|| (0, vec![BTreeSet::new(); 6]));
            w.0 += 1;
            for (n, u2, at) in &sent {
                let k = (monday(*at) - monday(*f)).num_weeks();
                if *n == ret && u2 == u && (0..6).contains(&k) {
                    w.1[k as usize].insert(u);
                }
            }
        }
        let want: Vec<(String, i64, Vec<i64>)> = want
            .into_iter()
            .map(|(w, (n, sets))| (w.to_string(), n, sets.iter().map(|s| s.len() as i64).collect()))
            .collect();
        let got: Vec<(String, i64, Vec<i64>)> =
            got.cohorts.into_iter().map(|c| (c.week_start, c.users, c.retained)).collect();
        assert_eq!(got, want, "{start} -> {ret}");
        assert!(got.len() >= 5 && got.iter().any(|c| c.2[1] > 0), "cohorts worth testing: {got:?}");
        if start == ret {
            assert!(got.iter().all(|c| c.2[0] == c.1), "a feature's users all used it in their first week");
        }
    }

    let (s_from, s_to) = (day0 + Duration::days(30), day0 + Duration::days(45));
    let st = c
        .stickiness(authed(
            pb::StickinessRequest {
                range: Some(pb::TimeRange { from: s_from.to_rfc3339(), to: s_to.to_rfc3339() }),
                event: String::new(),
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.points.len(), 15);
    for p in &st.points {
        let day: NaiveDate = p.day.parse().unwrap();
        let active = |lo: NaiveDate| {
            sent.iter()
                .filter(|(_, _, at)| at.date_naive() >= lo && at.date_naive() <= day)
                .map(|e| &e.1)
                .collect::<BTreeSet<_>>()
                .len() as i64
        };
        assert_eq!((p.daily_users, p.monthly_users), (active(day), active(day - chrono::Days::new(29))), "{day}");
        assert!((p.ratio - p.daily_users as f64 / p.monthly_users.max(1) as f64).abs() < 1e-9);
    }

    // Bad input: refused with its code, nothing else.
    let bad = |start: &str, ret: &str, weeks: u32| pb::RetentionRequest {
        range: None,
        start_event: start.into(),
        return_event: ret.into(),
        weeks,
    };
    for (req, code) in [
        (bad("", "a", 4), "analytics.invalid_event_name"),
        (bad("a", "b\u{7}", 4), "analytics.invalid_event_name"),
        (bad("a", "b", 27), "analytics.invalid_weeks"),
    ] {
        let e = c.retention(authed(req, &viewer)).await.unwrap_err();
        assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::InvalidArgument, code));
    }
    let mut long = bad("a", "b", 4);
    long.range = Some(pb::TimeRange { from: "2020-01-01T00:00:00Z".into(), to: "2026-01-01T00:00:00Z".into() });
    assert_eq!(code_of(&c.retention(authed(long, &viewer)).await.unwrap_err()), "analytics.range_too_large");
    let e =
        c.stickiness(authed(pb::StickinessRequest { range: None, event: "x".repeat(300) }, &viewer)).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_event_name");
    let e = c.retention(tonic::Request::new(bad("a", "b", 4))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    // Another workspace sees no cohort of these users.
    let theirs = c
        .retention(authed(
            pb::RetentionRequest {
                range,
                start_event: "signup.completed".into(),
                return_event: "page.viewed".into(),
                weeks: 6,
            },
            &svc.owner(WorkspaceId::new()),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.cohorts.is_empty());
}
