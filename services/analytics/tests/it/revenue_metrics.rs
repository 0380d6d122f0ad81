//! Revenue metrics from stored domain events: the platform's MRR report equals the hand-computed
//! figures to the cent, forecasts answer (or say there is not enough data), nobody but an
//! operator sees the platform's MRR, another workspace sees none of a workspace's credits, and
//! bad parameters are refused with a localized 400.

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use nexus_kernel::{Locale, WorkspaceId};
use nexus_platform::identity::Role;
use nexus_proto::events as ev;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support::*;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

fn changed(ws: WorkspaceId, plan: &str, status: &str, amount: i64) -> ev::SubscriptionChanged {
    ev::SubscriptionChanged {
        workspace_id: ws.to_string(),
        plan_code: plan.into(),
        previous_plan_code: String::new(),
        status: status.into(),
        monthly_amount_minor: amount,
        currency: "USD".into(),
    }
}

const CHANGED: &str = "nexus.subscriptions.subscription.changed";

/// The same scripted history as the domain's unit test, one workspace per customer:
/// Jan A pro, B premium; Feb A -> premium, C pro; Mar B -> pro, C cancels; Apr C back on pro,
/// D starts and cancels inside April; E only ever trials (never MRR).
async fn scripted_history(svc: &Svc) -> [WorkspaceId; 5] {
    let bus = svc.bus().await;
    bus.ensure_service_stream("subscriptions").await.unwrap();
    let ws = [WorkspaceId::new(), WorkspaceId::new(), WorkspaceId::new(), WorkspaceId::new(), WorkspaceId::new()];
    let [a, b, c, d, e] = ws;
    let script = [
        (a, at(2026, 1, 3), changed(a, "pro", "active", 9700)),
        (b, at(2026, 1, 20), changed(b, "premium", "active", 29700)),
        (a, at(2026, 2, 10), changed(a, "premium", "active", 29700)),
        (c, at(2026, 2, 14), changed(c, "pro", "active", 9700)),
        (b, at(2026, 3, 1), changed(b, "pro", "active", 9700)),
        (c, at(2026, 3, 31), changed(c, "free", "canceled", 0)),
        (c, at(2026, 4, 2), changed(c, "pro", "active", 9700)),
        (d, at(2026, 4, 5), changed(d, "pro", "active", 9700)),
        (d, at(2026, 4, 25), changed(d, "free", "canceled", 0)),
        (e, at(2026, 2, 1), changed(e, "pro", "trialing", 9700)),
    ];
    for (w, t, msg) in &script {
        publish_at(&bus, CHANGED, *w, uuid::Uuid::now_v7(), *t, msg).await;
    }
    for (w, n) in [(a, 2), (b, 2), (c, 3), (d, 2), (e, 1)] {
        svc.wait_for_events(w, n, 30).await;
    }
    ws
}

fn month_of(r: &pb::MrrReportResponse, month: &str) -> pb::MrrMonth {
    r.months.iter().find(|m| m.month == month && m.currency == "USD").cloned().unwrap_or_else(|| panic!("{month}"))
}

#[tokio::test]
async fn the_mrr_report_equals_the_hand_computed_figures_and_only_operators_see_it() {
    let operator = WorkspaceId::new();
    let svc = start_with(Options { operator: Some(operator), ..Options::default() }).await;
    let [a, ..] = scripted_history(&svc).await;
    let req = || pb::MrrReportRequest { from_month: "2026-01".into(), to_month: "2026-04".into() };
    let r = svc.client().mrr_report(authed(req(), &svc.owner(operator))).await.unwrap().into_inner();
    assert_eq!(r.months.len(), 4, "{r:?}");
    let jan = month_of(&r, "2026-01");
    assert_eq!((jan.mrr_minor, jan.arr_minor, jan.new_minor, jan.paying_customers), (39_400, 472_800, 39_400, 2));
    assert_eq!((jan.arpu_minor, jan.ltv_minor, jan.churn_rate.as_str()), (19_700, None, "0"));
    let feb = month_of(&r, "2026-02");
    assert_eq!((feb.mrr_minor, feb.new_minor, feb.expansion_minor, feb.net_new_minor), (69_100, 9_700, 20_000, 29_700));
    assert_eq!((feb.paying_customers, feb.arpu_minor), (3, 23_033));
    let mar = month_of(&r, "2026-03");
    assert_eq!(
        (mar.mrr_minor, mar.contraction_minor, mar.churned_minor, mar.net_new_minor),
        (39_400, 20_000, 9_700, -29_700)
    );
    assert_eq!((mar.churned_customers, mar.churn_rate.as_str(), mar.ltv_minor), (1, "0.3333", Some(59_100)));
    let apr = month_of(&r, "2026-04");
    assert_eq!((apr.mrr_minor, apr.reactivation_minor, apr.new_minor, apr.net_new_minor), (49_100, 9_700, 0, 9_700));

    // A customer workspace, even its owner, and an operator workspace's plain member: refused.
    for token in [svc.owner(a), svc.token(operator, Role::Member)] {
        let e = svc.client().mrr_report(authed(req(), &token)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert_eq!(code_of(&e), "analytics.mrr_operator_only");
        let f = pb::ForecastRequest { metric: "mrr".into(), horizon: 2, currency: String::new() };
        let e = svc.client().forecast(authed(f, &token)).await.unwrap_err();
        assert_eq!(code_of(&e), "analytics.mrr_operator_only");
    }

    // The MRR forecast answers from the same events: months Jan..last closed month, flat since
    // April, so the forecast stays near 49 100 (Holt's method: less than two years of history).
    let f = pb::ForecastRequest { metric: "mrr".into(), horizon: 2, currency: "USD".into() };
    let r = svc.client().forecast(authed(f, &svc.owner(operator))).await.unwrap().into_inner();
    assert!(r.enough_data, "{r:?}");
    assert_eq!((r.method.as_str(), r.currency.as_str(), r.points.len()), ("holt", "USD", 2));
    assert_eq!(r.history.first().map(|p| (p.month.as_str(), p.value)), Some(("2026-01", 39_400.0)));
    assert!(r.history.iter().skip(3).all(|p| p.value == 49_100.0), "{:?}", r.history);
    for p in &r.points {
        assert!(p.lower <= p.value && p.value <= p.upper, "{p:?}");
        assert!((p.value - 49_100.0).abs() < 5_000.0, "{p:?}");
    }
    assert!(r.backtest_mape.is_some());
    assert_eq!(r.interval_level, 0.8);
}

#[tokio::test]
async fn the_credits_forecast_is_the_workspaces_own_and_bad_parameters_are_refused() {
    let svc = start().await;
    let bus = svc.bus().await;
    bus.ensure_service_stream("subscriptions").await.unwrap();
    let (ws, other) = (WorkspaceId::new(), WorkspaceId::new());
    // Eight closed months of consumption growing by 10 credits a month, in two charges each.
    let this_month = Utc::now().date_naive().with_day0(0).unwrap();
    let mut n = 0;
    for k in (1..=8u32).rev() {
        let month = this_month - Months::new(k);
        let day = Utc.from_utc_datetime(&month.and_hms_opt(10, 0, 0).unwrap());
        let total = 100 + 10 * i64::from(8 - k);
        for (i, credits) in [total - 40, 40].into_iter().enumerate() {
            let msg = ev::CreditsCharged {
                workspace_id: ws.to_string(),
                reservation_id: uuid::Uuid::now_v7().to_string(),
                action: "content.generation".into(),
                credits,
            };
            let when = day + chrono::TimeDelta::days(i as i64 + 1);
            publish_at(&bus, "nexus.subscriptions.credits.charged", ws, uuid::Uuid::now_v7(), when, &msg).await;
            n += 1;
        }
    }
    svc.wait_for_events(ws, n, 30).await;

    let req =
        |metric: &str, horizon: u32| pb::ForecastRequest { metric: metric.into(), horizon, currency: String::new() };
    let r = svc.client().forecast(authed(req("credits", 3), &svc.owner(ws))).await.unwrap().into_inner();
    assert!(r.enough_data, "{r:?}");
    let history: Vec<f64> = r.history.iter().map(|p| p.value).collect();
    assert_eq!(history, [100.0, 110.0, 120.0, 130.0, 140.0, 150.0, 160.0, 170.0]);
    assert_eq!((r.method.as_str(), r.points.len(), r.min_points), ("holt", 3, 6));
    // A straight line is continued: 180, 190, 200.
    for (p, want) in r.points.iter().zip([180.0, 190.0, 200.0]) {
        assert!((p.value - want).abs() < 1.0, "{p:?}");
        assert!(p.lower <= p.value && p.value <= p.upper);
    }
    let next = (this_month + Months::new(1)).format("%Y-%m").to_string();
    assert_eq!(r.points[1].month, next);
    assert!(r.backtest_mape.unwrap() < 1.0, "{r:?}");

    // Another workspace sees nothing of it: no history, not enough data.
    let r = svc.client().forecast(authed(req("credits", 3), &svc.owner(other))).await.unwrap().into_inner();
    assert!(!r.enough_data && r.history.is_empty() && r.points.is_empty(), "{r:?}");
    assert_eq!(r.method, "none");

    // Bad parameters: a 400 whose message is in the caller's language.
    let mrr = |from: &str, to: &str| pb::MrrReportRequest { from_month: from.into(), to_month: to.into() };
    let cases: Vec<(tonic::Status, &str)> = vec![
        (
            svc.client().forecast(authed(req("credits", 0), &svc.owner(ws))).await.unwrap_err(),
            "analytics.invalid_horizon",
        ),
        (
            svc.client().forecast(authed(req("credits", 4), &svc.owner(ws))).await.unwrap_err(),
            "analytics.invalid_horizon",
        ),
        (
            svc.client().forecast(authed(req("revenue", 2), &svc.owner(ws))).await.unwrap_err(),
            "analytics.invalid_metric",
        ),
        (svc.client().forecast(authed(req("", 2), &svc.owner(ws))).await.unwrap_err(), "analytics.invalid_metric"),
    ];
    let operator = start_with(Options { operator: Some(ws), ..Options::default() }).await;
    let mut cases = cases;
    for (from, to) in [("2026-13", "2026-12"), ("2026-05", "2026-02"), ("may", "")] {
        let e = operator.client().mrr_report(authed(mrr(from, to), &operator.owner(ws))).await.unwrap_err();
        cases.push((e, "analytics.invalid_month"));
    }
    for (status, code) in cases {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert_eq!(code_of(&status), code);
        // Rendered as the gateway renders every error.
        let api = nexus_gateway::error::ApiError::from(status);
        assert_eq!(api.status().as_u16(), 400);
        let es = nexus_gateway::error::envelope(api.status(), api.info(), Locale::Es, "req-1");
        let ar = nexus_gateway::error::envelope(api.status(), api.info(), Locale::Ar, "req-1");
        let (es, ar) = (serde_json::to_value(es).unwrap(), serde_json::to_value(ar).unwrap());
        let (es, ar) =
            (es["error"]["message"].as_str().unwrap().to_owned(), ar["error"]["message"].as_str().unwrap().to_owned());
        let want_es = match code {
            "analytics.invalid_horizon" => "horizonte",
            "analytics.invalid_metric" => "pronosticar",
            _ => "mes",
        };
        assert!(es.contains(want_es), "{code}: {es}");
        let want_ar = match code {
            "analytics.invalid_horizon" => "أفق",
            "analytics.invalid_metric" => "التنبؤ",
            _ => "الشهر",
        };
        assert!(ar.contains(want_ar), "{code}: {ar}");
    }
    // Too long a range is refused as unprocessable.
    let e = operator.client().mrr_report(authed(mrr("2023-01", "2026-01"), &operator.owner(ws))).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.range_too_large");
}
