use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use nexus_testkit::service::common_config;
use nexus_testkit::{NatsServer, RunningService, TestDb, TestNats, eventually};

use crate::fixture::DEF;

async fn health(url: &str) -> Option<ServingStatus> {
    let channel = nexus_platform::grpc::channel(url, Duration::from_secs(2)).ok()?;
    let resp = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.ok()?;
    ServingStatus::try_from(resp.into_inner().status).ok()
}

async fn readyz(url: &str) -> u16 {
    reqwest::get(url).await.map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn both(svc: &RunningService, serving: bool) -> bool {
    let want_health = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
    let want_ready = if serving { 200 } else { 503 };
    health(&svc.grpc_url()).await == Some(want_health) && readyz(&svc.admin_url("/readyz")).await == want_ready
}

#[tokio::test]
async fn health_and_readyz_follow_nats_and_recover_without_restart() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let mut nats_server = NatsServer::start().await;
    nats_server.kill();
    let nats = TestNats::with_url(nats_server.url());
    let svc =
        RunningService::start(DEF, common_config("fixture", &db, &nats), |_| Ok(tonic::service::Routes::default()))
            .await;

    // NATS is down from the start: the process serves RPCs but says NOT_SERVING.
    assert!(eventually(Duration::from_secs(5), || both(&svc, false)).await, "not serving while NATS is down");
    assert_eq!(readyz(&svc.admin_url("/livez")).await, 200, "alive all the same");

    nats_server.resume().await;
    assert!(eventually(Duration::from_secs(15), || both(&svc, true)).await, "serving once NATS answers");

    nats_server.kill();
    assert!(eventually(Duration::from_secs(15), || both(&svc, false)).await, "not serving after NATS died");

    nats_server.resume().await;
    assert!(eventually(Duration::from_secs(15), || both(&svc, true)).await, "recovered without a restart");

    svc.stop().await.unwrap();
}

#[tokio::test]
async fn not_serving_while_postgres_is_unreachable() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let mut cfg = common_config("fixture", &db, &nats);
    nexus_platform::db::migrate("fixture", &cfg.database, DEF.migrations).await.unwrap();
    // Nothing listens on port 1.
    cfg.database.url = nexus_platform::Secret::new("postgres://nexus_fixture@127.0.0.1:1/nowhere");
    cfg.database.acquire_timeout = Duration::from_millis(300);
    let listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let (grpc, admin) = (listeners.grpc.local_addr().unwrap(), listeners.admin.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(nexus_platform::app::serve(DEF, cfg, listeners, stop.clone(), |_| {
        Ok(tonic::service::Routes::default())
    }));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(health(&format!("http://{grpc}")).await, Some(ServingStatus::NotServing));
    assert_eq!(readyz(&format!("http://{admin}/readyz")).await, 503);
    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_rpc_pool_and_outbox_series() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let svc =
        RunningService::start(DEF, common_config("fixture", &db, &nats), |_| Ok(tonic::service::Routes::default()))
            .await;
    assert!(eventually(Duration::from_secs(10), || both(&svc, true)).await);
    for _ in 0..3 {
        health(&svc.grpc_url()).await;
    }
    // The relay records backlog gauges once per cycle.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let resp = reqwest::get(svc.admin_url("/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let body = resp.text().await.unwrap();
    let lines: Vec<std::io::Result<String>> = body.lines().map(|l| Ok(l.to_owned())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).expect("valid Prometheus text");
    for line in body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        assert!(value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value), "bad value in {line:?}");
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end].chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line:?}"
        );
    }
    let names: std::collections::HashSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for expected in [
        "nexus_grpc_requests_total",
        "nexus_grpc_request_duration_seconds",
        "nexus_db_pool_connections",
        "nexus_outbox_backlog",
        "nexus_outbox_oldest_age_seconds",
        "nexus_ready",
    ] {
        assert!(names.iter().any(|n| n.starts_with(expected)), "missing {expected} in:\n{body}");
    }
    let health_rpcs = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "nexus_grpc_requests_total" && s.labels.get("method") == Some("/grpc.health.v1.Health/Check")
        })
        .count();
    assert!(health_rpcs >= 1);
    svc.stop().await.unwrap();
}
