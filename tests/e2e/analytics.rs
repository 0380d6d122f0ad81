//! The analytics binary behind the gateway binary (with auth for tokens): tracking over HTTP
//! survives a restart of the analytics process, and nothing is lost or doubled.

use std::time::Duration;

use nexus_testkit::{TestDb, TestNats};
use serde_json::{Value, json};

use crate::support::{Proc, free_port, migrate, service_env, wait_http_ok};

fn env(service: &str, db: &TestDb, nats: &TestNats, grpc: u16, admin: u16) -> Vec<(&'static str, String)> {
    let mut env = service_env(db, nats, service, grpc, admin);
    env.push(("NEXUS_AUTH__ARGON2_MEMORY_KIB", "4096".into()));
    env
}

async fn stored(db: &TestDb) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT client_event_id) FROM analytics.analytics_events WHERE source = 'track'",
    )
    .fetch_one(&db.admin_pool().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn tracked_events_survive_a_restart_of_the_analytics_binary() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let (auth_grpc, auth_admin, an_grpc, an_admin, http, gw_admin) =
        (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
    let auth_env = env("auth", &db, &nats, auth_grpc, auth_admin);
    let mut an_env = env("analytics", &db, &nats, an_grpc, an_admin);
    an_env.push(("NEXUS_IDENTITY__AUTH_URL", format!("http://127.0.0.1:{auth_grpc}")));
    migrate("nexus-auth", &auth_env);
    migrate("nexus-analytics", &an_env);
    let _auth = Proc::spawn("nexus-auth", &auth_env);
    let mut analytics = Proc::spawn("nexus-analytics", &an_env);
    let _gateway = Proc::spawn(
        "nexus-gateway",
        &[
            ("NEXUS_HTTP__ADDR", format!("127.0.0.1:{http}")),
            ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{gw_admin}")),
            ("NEXUS_SERVICES__AUTH", format!("http://127.0.0.1:{auth_grpc}")),
            ("NEXUS_SERVICES__ANALYTICS", format!("http://127.0.0.1:{an_grpc}")),
        ],
    );
    for url in [
        format!("http://127.0.0.1:{auth_admin}/readyz"),
        format!("http://127.0.0.1:{an_admin}/readyz"),
        format!("http://127.0.0.1:{gw_admin}/readyz"),
    ] {
        assert!(wait_http_ok(&url, Duration::from_secs(30)).await, "{url}");
    }

    let c = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}");
    let email = format!("e2e.{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let signed: Value = c
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": email, "password": "correct horse battery staple", "name": "Ana"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let key: Value =
        c.get(format!("{base}/v1/analytics/write-key")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();

    let send = |from: usize, to: usize| {
        let (c, base, key) = (c.clone(), base.clone(), key.clone());
        async move {
            let events: Vec<Value> = (from..to)
                .map(|i| json!({"name": "page.viewed", "client_event_id": format!("e2e-{i}"), "anonymous_id": format!("a{i}"),
                                "timestamp": (chrono::Utc::now() - chrono::Duration::seconds(i as i64)).to_rfc3339()}))
                .collect();
            // Retried until acknowledged, as an SDK does: the analytics process may be restarting.
            for _ in 0..200 {
                let r = c
                    .post(format!("{base}/v1/track/batch"))
                    .bearer_auth(&key)
                    .json(&json!({"events": events}))
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status() == 200
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("batch {from}..{to} never acknowledged");
        }
    };
    send(0, 200).await;
    send(200, 400).await;

    // SIGTERM: analytics drains and exits 0; a new process takes over the same consumer.
    analytics.signal("TERM");
    assert_eq!(analytics.wait_exit(Duration::from_secs(30)).await.and_then(|s| s.code()), Some(0));
    let _analytics = Proc::spawn("nexus-analytics", &an_env);
    send(400, 600).await;
    // A client that retries a batch it already sent changes nothing.
    send(200, 400).await;

    let mut counts = (0, 0);
    for _ in 0..200 {
        counts = stored(&db).await;
        if counts.0 >= 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts, (600, 600));
}
