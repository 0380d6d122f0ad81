use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Path of a workspace binary next to this test executable (`target/debug/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} not built: run `cargo build --workspace --bins` (make test does)", path.display());
    path
}

/// A port for a binary to listen on, drawn at random below the kernel's ephemeral range
/// (32768–60999 on Linux): a port the kernel handed out and we released could be taken by any
/// outgoing connection (a Postgres, NATS or HTTP client) before the binary binds it. 10000–19999
/// stays clear of the contract stack's ports (21000+) and of `make run`'s.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    loop {
        let port = rng.random_range(10_000..20_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(name: &str, env: &[(&str, String)]) -> Proc {
        let mut cmd = Command::new(binary(name));
        // Tests run the development rules (local mail, local billing, built-in keys) unless a test
        // says otherwise.
        cmd.env("NEXUS_ENVIRONMENT", "development")
            .env("NEXUS_TELEMETRY__LOG_FORMAT", "json")
            .env("NEXUS_TELEMETRY__LOG_LEVEL", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn binary");
        Proc { child }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for exit up to `limit`; `None` if still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn wait_http_ok(url: &str, limit: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A service binary's environment: its schema in the test database, the test NATS prefix, and
/// its gRPC and admin ports.
pub fn service_env(
    db: &nexus_testkit::TestDb,
    nats: &nexus_testkit::TestNats,
    service: &str,
    grpc: u16,
    admin: u16,
) -> Vec<(&'static str, String)> {
    let cfg = db.config(service);
    vec![
        ("NEXUS_DATABASE__URL", cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL", cfg.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL", nats.url.clone()),
        ("NEXUS_NATS__PREFIX", nats.prefix.clone()),
        ("NEXUS_GRPC__ADDR", format!("127.0.0.1:{grpc}")),
        ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{admin}")),
    ]
}

/// Runs `name migrate` with `env` and fails the test if it fails.
pub fn migrate(name: &str, env: &[(&'static str, String)]) {
    let out = Command::new(binary(name))
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run migrate");
    assert!(out.status.success(), "{name} migrate: {}", String::from_utf8_lossy(&out.stderr));
}
