//! Churn risk over a synthetic population with a planted signal: held-out quality, scores with
//! their factors, one `churn_risk.high` per crossing, too little data said plainly, tenancy,
//! operators, and bad parameters answered in the caller's language.

use chrono::{DateTime, Utc};
use nexus_analytics::app::churn::Churn;
use nexus_kernel::{Locale, WorkspaceId};
use nexus_platform::identity::Role;
use nexus_proto::common::PageRequest;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_testkit::identity::authed;

use crate::support::{Options, Svc, code_of, start, start_with};

const HIGH: &str = "nexus.analytics.churn_risk.high";
const NAMES: [&str; 5] = ["page.viewed", "product.viewed", "cart.added", "order.completed", "search.used"];

/// A small deterministic generator (the population is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

struct Seeded {
    /// Users whose current activity fades: they should be scored high.
    fading: Vec<String>,
}

/// Events straight into the store (what the ingest writer would have written).
async fn insert(svc: &Svc, ws: WorkspaceId, rows: &[(String, &str, DateTime<Utc>)]) {
    let users: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.2).collect();
    sqlx::query(
        "INSERT INTO analytics.analytics_events (tenant_id, client_event_id, name, source, occurred_at, received_at, user_id) \
         SELECT $1, gen_random_uuid()::text, n, 'track', a, a, u FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS x(u, n, a)",
    )
    .bind(ws.as_uuid())
    .bind(&users)
    .bind(&names)
    .bind(&at)
    .execute(&svc.admin().await)
    .await
    .unwrap();
}

/// `n` users. Training looks at [now-60d, now-30d) and labels by [now-30d, now). Churners were
/// seen less, on fewer features, and longer ago before the cut; retained users came back after
/// it. The two overlap (noise), so the model has to weigh. Every `fade_every`-th retained user
/// comes back only once, early in the last 30 days: scored now, they look like churners.
async fn seed(svc: &Svc, ws: WorkspaceId, n: usize, fade_every: usize) -> Seeded {
    let now = Utc::now();
    let cut = now - chrono::Duration::days(30);
    let day = |d: f64| chrono::Duration::seconds((d * 86_400.0) as i64);
    let mut rng = Lcg(ws.as_uuid().as_u128() as u64 | 1);
    let mut rows = Vec::new();
    let mut fading = Vec::new();
    let mut retained_seen = 0;
    for i in 0..n {
        let user = format!("c-{i}");
        let churner = rng.next() < 0.4;
        let (last, count, breadth) = if churner {
            (rng.between(4.0, 29.0), rng.between(1.0, 8.0) as usize, 1 + (rng.next() * 3.0) as usize)
        } else {
            (rng.between(0.0, 14.0), rng.between(3.0, 25.0) as usize, 2 + (rng.next() * 4.0) as usize)
        };
        // The last event `last` days before the cut, the others spread over the window before it.
        rows.push((user.clone(), NAMES[0], cut - day(last)));
        for k in 1..count {
            let at = cut - day(rng.between(last, 30.0).min(29.99));
            rows.push((user.clone(), NAMES[k % breadth], at));
        }
        if churner {
            continue;
        }
        retained_seen += 1;
        if retained_seen % fade_every == 0 {
            fading.push(user.clone());
            rows.push((user.clone(), NAMES[0], now - day(rng.between(27.0, 29.5))));
        } else {
            for k in 0..(3 + (rng.next() * 10.0) as usize) {
                rows.push((user.clone(), NAMES[k % 4], now - day(rng.between(0.0, 10.0))));
            }
        }
    }
    insert(svc, ws, &rows).await;
    Seeded { fading }
}

async fn high_events(svc: &Svc, ws: WorkspaceId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM analytics.outbox WHERE subject = $1 AND tenant_id = $2")
        .bind(HIGH)
        .bind(ws.as_uuid())
        .fetch_one(&svc.admin().await)
        .await
        .unwrap()
}

async fn all_scores(svc: &Svc, token: &str, platform: bool) -> Vec<pb::ChurnScore> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = PageRequest { page_size: 50, cursor: cursor.clone() };
        let r = svc
            .client()
            .list_churn_scores(authed(pb::ChurnScoresRequest { platform, page: Some(page), min_score: 0.0 }, token))
            .await
            .unwrap()
            .into_inner();
        out.extend(r.items);
        cursor = r.page.unwrap_or_default().next_cursor;
        if cursor.is_empty() {
            return out;
        }
    }
}

async fn retrain(svc: &Svc, token: &str, platform: bool) -> Result<pb::ChurnModel, tonic::Status> {
    let r = svc.client().retrain_churn(authed(pb::ChurnModelRequest { platform }, token)).await?;
    Ok(r.into_inner())
}

async fn model(svc: &Svc, token: &str, platform: bool) -> Result<pb::ChurnModel, tonic::Status> {
    let r = svc.client().get_churn_model(authed(pb::ChurnModelRequest { platform }, token)).await?;
    Ok(r.into_inner())
}

/// The service with its churn scheduler stopped: the tests run rounds themselves.
async fn start_quiet(operator: Option<WorkspaceId>) -> Svc {
    start_with(Options {
        operator,
        extra_env: vec![("NEXUS_CHURN__ENABLED", "false".to_owned())],
        ..Options::default()
    })
    .await
}

/// The service's churn scheduler over its own pool (what each replica runs).
async fn scheduler(svc: &Svc) -> Churn {
    Churn { app: svc.app().await, cfg: svc.config.churn.clone(), operator: None }
}

#[tokio::test]
async fn a_planted_signal_is_learned_scored_and_announced_once_per_crossing() {
    let svc = start_quiet(None).await;
    let ws = WorkspaceId::new();
    let owner = svc.owner(ws);
    // Settings exist once the workspace has used analytics (the scheduler enrols from them).
    svc.client().get_settings(authed(pb::Empty {}, &owner)).await.unwrap();
    let seeded = seed(&svc, ws, 900, 12).await;
    assert!(seeded.fading.len() >= 20, "{}", seeded.fading.len());

    // Nothing trained yet: said as such, and no scores.
    let e = model(&svc, &owner, false).await.unwrap_err();
    assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::NotFound, "analytics.churn_not_trained"));

    let m = retrain(&svc, &owner, false).await.unwrap();
    assert_eq!((m.status.as_str(), m.code.as_str(), m.population.as_str()), ("trained", "", "customers"), "{m:?}");
    let bins: Vec<String> = m
        .calibration
        .iter()
        .map(|b| {
            format!("[{:.1},{:.1}) n={} p={:.3} o={:.3}", b.lower, b.upper, b.count, b.mean_predicted, b.observed_rate)
        })
        .collect();
    eprintln!(
        "churn held-out: auc={:.4} brier={:.4} train={} test={} churned={}/{} bins: {}",
        m.auc,
        m.brier,
        m.train_subjects,
        m.test_subjects,
        m.churned,
        m.subjects,
        bins.join(" ")
    );
    assert!(m.auc >= 0.8, "held-out AUC {}", m.auc);
    assert!(m.brier < 0.2, "Brier {}", m.brier);
    assert_eq!(m.subjects, 900);
    assert_eq!(m.train_subjects + m.test_subjects, 900);
    assert!((150..=400).contains(&m.test_subjects), "{}", m.test_subjects);
    assert_eq!(m.calibration.len(), 10);
    assert_eq!(m.calibration.iter().map(|b| b.count).sum::<u64>(), m.test_subjects);
    // Calibrated where it matters: the observed churn rate rises with the predicted one.
    let populated: Vec<&pb::ChurnCalibrationBin> = m.calibration.iter().filter(|b| b.count >= 15).collect();
    assert!(populated.len() >= 2);
    assert!(populated.first().unwrap().observed_rate < populated.last().unwrap().observed_rate, "{bins:?}");
    let coef = |f: &str| m.coefficients.iter().find(|c| c.feature == f).unwrap().coefficient;
    assert!(coef("days_since_last_event") > 0.0 && coef("events_30d") < coef("days_since_last_event"), "{m:?}");

    // Scores: everyone active in the last 30 days (retained users), highest risk first, each
    // with three signed factors; the fading users are the high ones.
    let scores = all_scores(&svc, &owner, false).await;
    assert!(scores.windows(2).all(|w| w[0].score >= w[1].score), "ordered");
    assert!(scores.iter().all(|s| s.factors.len() == 3 && (0.0..=1.0).contains(&s.score)));
    let high: Vec<&str> = scores.iter().filter(|s| s.high).map(|s| s.subject.as_str()).collect();
    for f in &seeded.fading {
        assert!(high.contains(&f.as_str()), "{f} should be high: {:?}", scores.iter().find(|s| &s.subject == f));
    }
    assert!(high.len() <= seeded.fading.len() + 5, "{} high for {} fading", high.len(), seeded.fading.len());
    let top = &scores[0];
    assert_eq!(top.factors[0].feature, "days_since_last_event", "{top:?}");
    assert!(top.factors[0].contribution > 0.0);
    let first = i64::try_from(high.len()).unwrap();
    assert_eq!(high_events(&svc, ws).await, first);
    // The page boundary holds: a filtered listing starts with the same subjects.
    let r = svc
        .client()
        .list_churn_scores(authed(
            pb::ChurnScoresRequest {
                platform: false,
                page: Some(PageRequest { page_size: 5, cursor: String::new() }),
                min_score: 0.7,
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = r.items.iter().map(|s| s.subject.as_str()).collect();
    assert_eq!(names, scores.iter().take(5).map(|s| s.subject.as_str()).collect::<Vec<_>>());

    // Asking again at once is refused; so is a viewer.
    let e = retrain(&svc, &owner, false).await.unwrap_err();
    assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::ResourceExhausted, "analytics.churn_retrain_too_soon"));
    let viewer = svc.token(ws, Role::Viewer);
    let e = retrain(&svc, &viewer, false).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // The next daily run scores again (the model is fresh, so no training): the same users
    // stay high and nothing is announced again.
    let churn = scheduler(&svc).await;
    let admin = svc.admin().await;
    sqlx::query("UPDATE analytics.churn_jobs SET next_run_at = now() - interval '1 second'")
        .execute(&admin)
        .await
        .unwrap();
    assert!(churn.tick().await.unwrap() >= 1);
    assert_eq!(high_events(&svc, ws).await, first, "no second event while they stay high");

    // One low-risk user goes quiet (only their oldest recent visit is left): one new crossing.
    let calm = scores.iter().rev().find(|s| !s.high).unwrap().subject.clone();
    sqlx::query(
        "DELETE FROM analytics.analytics_events WHERE tenant_id = $1 AND user_id = $2 AND occurred_at > now() - interval '30 days' \
         AND occurred_at <> (SELECT min(occurred_at) FROM analytics.analytics_events WHERE tenant_id = $1 AND user_id = $2 \
                             AND occurred_at > now() - interval '30 days')",
    )
    .bind(ws.as_uuid())
    .bind(&calm)
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE analytics.analytics_events SET occurred_at = now() - interval '29 days' \
                 WHERE tenant_id = $1 AND user_id = $2 AND occurred_at > now() - interval '30 days'",
    )
    .bind(ws.as_uuid())
    .bind(&calm)
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("UPDATE analytics.churn_jobs SET next_run_at = now() - interval '1 second'")
        .execute(&admin)
        .await
        .unwrap();
    churn.tick().await.unwrap();
    assert_eq!(high_events(&svc, ws).await, first + 1, "{calm} crossed once");
    let payload: Vec<u8> = sqlx::query_scalar(
        "SELECT payload FROM analytics.outbox WHERE subject = $1 AND tenant_id = $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(HIGH)
    .bind(ws.as_uuid())
    .fetch_one(&admin)
    .await
    .unwrap();
    let e = <nexus_proto::events::ChurnRiskHigh as prost::Message>::decode(payload.as_slice()).unwrap();
    assert_eq!(
        (e.subject.as_str(), e.population.as_str(), e.workspace_id.clone()),
        (calm.as_str(), "customers", ws.to_string())
    );
    assert!(e.score >= 0.7 && e.factors.len() == 3, "{e:?}");

    // Another workspace sees nothing of it.
    let other = svc.owner(WorkspaceId::new());
    let e = model(&svc, &other, false).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.churn_not_trained");
    assert!(all_scores(&svc, &other, false).await.is_empty());
    // Nor is the platform's population open to a workspace owner.
    let e = model(&svc, &owner, true).await.unwrap_err();
    assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::PermissionDenied, "analytics.operator_required"));
}

#[tokio::test]
async fn too_little_data_is_said_plainly_and_gives_no_scores() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let owner = svc.owner(ws);
    seed(&svc, ws, 40, 5).await;
    let m = retrain(&svc, &owner, false).await.unwrap();
    assert_eq!((m.status.as_str(), m.code.as_str()), ("not_enough_data", "analytics.churn_not_enough_data"), "{m:?}");
    assert_eq!((m.subjects, m.min_subjects, m.min_per_class), (40, 100, 10));
    assert!(m.calibration.is_empty() && m.coefficients.is_empty() && m.auc == 0.0);
    assert!(all_scores(&svc, &owner, false).await.is_empty());
    // The same answer later, from the stored training.
    let again = model(&svc, &owner, false).await.unwrap();
    assert_eq!(again.status, "not_enough_data");
}

#[tokio::test]
async fn one_run_at_a_time_and_operators_only_for_the_platform() {
    let operator_ws = WorkspaceId::new();
    let svc = start_quiet(Some(operator_ws)).await;
    let ws = WorkspaceId::new();
    let owner = svc.owner(ws);
    // Another replica holds the workspace's population: a retrain now is refused.
    sqlx::query("INSERT INTO analytics.churn_jobs (tenant_id, population, lease_until) VALUES ($1, 'customers', now() + interval '1 hour')")
        .bind(ws.as_uuid())
        .execute(&svc.admin().await)
        .await
        .unwrap();
    let e = retrain(&svc, &owner, false).await.unwrap_err();
    assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::AlreadyExists, "analytics.churn_training_in_progress"));

    // The platform's population (its workspaces): three are far too few for a model.
    for w in [WorkspaceId::new(), WorkspaceId::new(), ws] {
        insert(&svc, w, &[("u".into(), "page.viewed", Utc::now() - chrono::Duration::days(40))]).await;
    }
    let operator = svc.token(operator_ws, Role::Admin);
    let m = retrain(&svc, &operator, true).await.unwrap();
    assert_eq!((m.population.as_str(), m.status.as_str()), ("platform", "not_enough_data"), "{m:?}");
    assert!(m.subjects >= 3);
    for token in [owner.clone(), svc.token(operator_ws, Role::Viewer)] {
        let e = svc
            .client()
            .list_churn_scores(authed(pb::ChurnScoresRequest { platform: true, ..Default::default() }, &token))
            .await
            .unwrap_err();
        assert_eq!(code_of(&e), "analytics.operator_required");
    }
    // The workspace's own model is not the platform's.
    let e = model(&svc, &operator, false).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.churn_not_trained");
}

#[tokio::test]
async fn bad_parameters_are_refused_in_the_callers_language() {
    let svc = start().await;
    let owner = svc.owner(WorkspaceId::new());
    let bad = [
        (1.5, PageRequest::default(), "analytics.churn_invalid_min_score"),
        (-0.1, PageRequest::default(), "analytics.churn_invalid_min_score"),
        (f64::NAN, PageRequest::default(), "analytics.churn_invalid_min_score"),
        (0.0, PageRequest { page_size: 1000, cursor: String::new() }, "request.invalid_page_size"),
        (0.0, PageRequest { page_size: 10, cursor: "not-a-cursor!".into() }, "request.invalid_cursor"),
    ];
    for (min_score, page, code) in bad {
        let e = svc
            .client()
            .list_churn_scores(authed(pb::ChurnScoresRequest { platform: false, page: Some(page), min_score }, &owner))
            .await
            .unwrap_err();
        assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::InvalidArgument, code));
        // What the gateway answers: 400, the message in the caller's language.
        let api = nexus_gateway::error::ApiError::from(e);
        assert_eq!(api.status().as_u16(), 400);
        let render = |l| nexus_gateway::error::envelope(api.status(), api.info(), l, "req_test").error;
        let (en, es, ar) = (render(Locale::En), render(Locale::Es), render(Locale::Ar));
        assert_eq!(es.code, code);
        assert!(!es.message.is_empty() && es.message != en.message && ar.message != en.message, "{es:?} {ar:?}");
        assert_eq!(ar.dir, "rtl");
        if code == "analytics.churn_invalid_min_score" {
            assert!(es.message.contains("puntuación mínima"), "{}", es.message);
            assert!(ar.message.contains("الحد الأدنى"), "{}", ar.message);
        }
    }
}
