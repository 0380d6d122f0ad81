//! The auth binary behind the gateway binary, as `make run` starts them.

use std::time::Duration;

use nexus_testkit::{TestDb, TestNats};
use serde_json::{Value, json};

use crate::support::{Proc, binary, free_port, wait_http_ok};

fn auth_env(db: &TestDb, nats: &TestNats, grpc: u16, admin: u16) -> Vec<(&'static str, String)> {
    let cfg = db.config("auth");
    vec![
        ("NEXUS_DATABASE__URL", cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL", cfg.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL", nats.url.clone()),
        ("NEXUS_NATS__PREFIX", nats.prefix.clone()),
        ("NEXUS_GRPC__ADDR", format!("127.0.0.1:{grpc}")),
        ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{admin}")),
        ("NEXUS_AUTH__ARGON2_MEMORY_KIB", "4096".into()),
    ]
}

#[tokio::test]
async fn sign_up_and_sign_in_through_the_real_binaries_then_stop_cleanly() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let (grpc, admin, http, gw_admin) = (free_port(), free_port(), free_port(), free_port());
    let env = auth_env(&db, &nats, grpc, admin);

    let migrate = std::process::Command::new(binary("nexus-auth"))
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "migrate: {}", String::from_utf8_lossy(&migrate.stderr));
    let mut auth = Proc::spawn("nexus-auth", &env);
    assert!(wait_http_ok(&format!("http://127.0.0.1:{admin}/readyz"), Duration::from_secs(20)).await, "auth ready");
    let _gateway = Proc::spawn(
        "nexus-gateway",
        &[
            ("NEXUS_HTTP__ADDR", format!("127.0.0.1:{http}")),
            ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{gw_admin}")),
            ("NEXUS_SERVICES__AUTH", format!("http://127.0.0.1:{grpc}")),
        ],
    );
    assert!(
        wait_http_ok(&format!("http://127.0.0.1:{gw_admin}/readyz"), Duration::from_secs(20)).await,
        "gateway ready"
    );

    let c = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}");
    let email = format!("e2e.{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let resp = c
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": email, "password": "correct horse battery staple", "name": "Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = c
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": email, "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let session: Value = resp.json().await.unwrap();
    let me: Value = c
        .get(format!("{base}/v1/me"))
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], email);
    // A signed-in user reads their own local mail (services read anyone's; nobody else does).
    let mail: Value = c
        .get(format!("{base}/v1/local/mail?to={email}"))
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(mail["items"][0]["body"].as_str().unwrap().contains("token="), "local mail readable offline");

    // SIGTERM: drain, flush the outbox, exit 0; every event of the run is on the stream.
    auth.signal("TERM");
    let status = auth.wait_exit(Duration::from_secs(20)).await.expect("auth exits");
    assert_eq!(status.code(), Some(0));
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.outbox WHERE published_at IS NULL")
        .fetch_one(&db.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(pending, 0, "outbox flushed on shutdown");
    let bus = nats.bus().await;
    let mut stream = bus.ensure_service_stream("auth").await.unwrap();
    let published = stream.info().await.unwrap().state.messages;
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.outbox").fetch_one(&db.admin_pool().await).await.unwrap();
    assert_eq!(published, u64::try_from(total).unwrap(), "each outbox row published exactly once");

    // With auth gone the gateway answers 503 in the envelope, not a hang.
    let resp =
        c.post(format!("{base}/v1/auth/login")).json(&json!({"email": email, "password": "x"})).send().await.unwrap();
    assert_eq!(resp.status(), 503);
}
