//! `environment = production` refuses development conveniences at start-up, naming each key, and
//! exits non-zero before it touches Postgres or NATS.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::binary;

/// Runs `name serve` and returns its exit code and stderr; `None` when it was still running after
/// a few seconds (past the check, waiting for its dependencies), and then it is killed.
fn serve(name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(binary(name));
    cmd.arg("serve").env_remove("NEXUS_ENVIRONMENT").env("NEXUS_TELEMETRY__LOG_LEVEL", "error");
    // Nothing listens here: had the check let it through, start-up would fail differently.
    cmd.env("NEXUS_DATABASE__URL", "postgres://nobody@127.0.0.1:1/none").env("NEXUS_NATS__URL", "nats://127.0.0.1:1");
    cmd.env("NEXUS_GRPC__ADDR", "127.0.0.1:0")
        .env("NEXUS_ADMIN__ADDR", "127.0.0.1:0")
        .env("NEXUS_HTTP__ADDR", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("run binary");
    let deadline = Instant::now() + Duration::from_secs(5);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (code, stderr)
}

#[test]
fn production_binaries_refuse_development_keys_and_defaults_naming_them() {
    // (binary, environment, keys its refusal must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        // The built-in default is production: saying nothing is not development.
        ("nexus-auth", &[], &["auth.sealing_keys", "mail.mode", "auth.service_credentials.content"]),
        ("nexus-auth", &[("NEXUS_ENVIRONMENT", "production"), ("NEXUS_MAIL__MODE", "smtp")], &["auth.sealing_keys"]),
        (
            "nexus-analytics",
            &[("NEXUS_ENVIRONMENT", "production")],
            &["analytics.sealing_keys", "identity.service_secret"],
        ),
        ("nexus-subscriptions", &[("NEXUS_ENVIRONMENT", "production")], &["stripe.api_key"]),
        (
            "nexus-subscriptions",
            &[("NEXUS_ENVIRONMENT", "production"), ("NEXUS_STRIPE__API_KEY", "sk_live_x")],
            &["stripe.webhook_secrets"],
        ),
        ("nexus-content", &[("NEXUS_ENVIRONMENT", "production")], &["llm.provider", "images.provider"]),
        (
            "nexus-content",
            &[
                ("NEXUS_ENVIRONMENT", "production"),
                ("NEXUS_LLM__PROVIDER", "local"),
                ("NEXUS_IMAGES__PROVIDER", "replicate"),
                ("NEXUS_REPLICATE__API_TOKEN", "r8_x"),
            ],
            &["replicate.webhook_secret"],
        ),
        (
            "nexus-gateway",
            &[("NEXUS_ENVIRONMENT", "production"), ("NEXUS_HTTP__TRUST_FORWARDED_FOR", "true")],
            &["http.trust_forwarded_for", "identity.service_secret"],
        ),
    ];
    for (bin, env, keys) in cases {
        let (code, stderr) = serve(bin, env);
        assert_eq!(code, Some(2), "{bin} {env:?} must refuse to start: {stderr}");
        assert!(stderr.contains("production"), "{bin}: {stderr}");
        for key in *keys {
            assert!(stderr.contains(key), "{bin} {env:?} names {key}: {stderr}");
        }
    }
}

#[test]
fn production_accepts_explicit_local_providers_and_real_keys() {
    // Chosen by name, local providers are fine in production; the check passes and start-up goes
    // on to wait for the unreachable database (or fails on it with another exit code).
    let secret = ("NEXUS_IDENTITY__SERVICE_SECRET", "a-real-credential-from-a-secret-store");
    let (code, stderr) = serve(
        "nexus-content",
        &[
            ("NEXUS_ENVIRONMENT", "production"),
            ("NEXUS_LLM__PROVIDER", "local"),
            ("NEXUS_IMAGES__PROVIDER", "local"),
            secret,
        ],
    );
    assert_ne!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("refuses development settings"), "{stderr}");
    let key = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let (code, stderr) = serve(
        "nexus-analytics",
        &[("NEXUS_ENVIRONMENT", "production"), ("NEXUS_ANALYTICS__SEALING_KEYS", key), secret],
    );
    assert_ne!(code, Some(2), "{stderr}");
    // Development allows everything, with warnings.
    let (code, stderr) = serve("nexus-auth", &[("NEXUS_ENVIRONMENT", "development")]);
    assert_ne!(code, Some(2), "{stderr}");
}

/// `ready` (the containers' health check) answers as the admin `/readyz` does: non-zero when
/// nothing listens, and the same verdict as an HTTP client's while the binary runs.
#[tokio::test]
async fn the_ready_subcommand_reports_the_admin_readiness() {
    nexus_testkit::init_tracing();
    let ready = |admin: u16| {
        Command::new(binary("nexus-gateway"))
            .arg("ready")
            .env("NEXUS_ADMIN__ADDR", format!("0.0.0.0:{admin}"))
            .env("NEXUS_TELEMETRY__LOG_LEVEL", "error")
            .output()
            .expect("run ready")
    };
    let nobody = crate::support::free_port();
    let out = ready(nobody);
    assert!(!out.status.success(), "nothing listens: {}", String::from_utf8_lossy(&out.stderr));

    let (http, admin) = (crate::support::free_port(), crate::support::free_port());
    let _gateway = crate::support::Proc::spawn(
        "nexus-gateway",
        &[("NEXUS_HTTP__ADDR", format!("127.0.0.1:{http}")), ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{admin}"))],
    );
    assert!(crate::support::wait_http_ok(&format!("http://127.0.0.1:{admin}/livez"), Duration::from_secs(20)).await);
    let status = reqwest::get(format!("http://127.0.0.1:{admin}/readyz")).await.unwrap().status();
    let out = ready(admin);
    assert_eq!(out.status.success(), status == 200, "readyz {status}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `await-migrations` (the pods' init container) waits while the schema lacks any migration the
/// binary embeds, and returns as soon as the migration Job has run.
#[tokio::test]
async fn await_migrations_waits_for_the_migration_job() {
    nexus_testkit::init_tracing();
    let db = nexus_testkit::TestDb::new().await;
    let nats = nexus_testkit::TestNats::new();
    let env =
        crate::support::service_env(&db, &nats, "commerce", crate::support::free_port(), crate::support::free_port());
    let wait = |timeout: &str| {
        Command::new(binary("nexus-commerce"))
            .args(["await-migrations", "--timeout", timeout])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("NEXUS_TELEMETRY__LOG_LEVEL", "error")
            .output()
            .expect("run await-migrations")
    };
    let before = wait("3s");
    assert!(!before.status.success(), "nothing migrated yet: {}", String::from_utf8_lossy(&before.stderr));
    assert!(String::from_utf8_lossy(&before.stderr).contains("still pending"));
    crate::support::migrate("nexus-commerce", &env);
    let started = Instant::now();
    let after = wait("30s");
    assert!(after.status.success(), "migrated: {}", String::from_utf8_lossy(&after.stderr));
    assert!(started.elapsed() < Duration::from_secs(10), "returns at once once applied");
}
