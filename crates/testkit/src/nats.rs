//! NATS for tests: a per-test prefix on the shared server, or a private server a test may kill
//! and restart.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nexus_platform::bus::Bus;
use nexus_platform::config::{NatsConfig, Secret};

/// A subject/stream prefix unique to one test on the shared NATS server.
pub struct TestNats {
    pub prefix: String,
    pub url: String,
}

impl TestNats {
    pub fn new() -> Self {
        Self::with_url(crate::nats_url())
    }

    pub fn with_url(url: String) -> Self {
        let prefix = format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        TestNats { prefix, url }
    }

    pub fn config(&self) -> NatsConfig {
        NatsConfig {
            url: self.url.clone(),
            prefix: self.prefix.clone(),
            credentials: Secret::default(),
            max_deliveries: 3,
            ack_wait: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            stream_max_age: Duration::from_secs(3600),
        }
    }

    /// A connected bus with this prefix.
    pub async fn bus(&self) -> Bus {
        let bus = Bus::connect("test", &self.config()).await.expect("nats connect");
        let ok = crate::eventually(Duration::from_secs(10), || {
            let b = bus.clone();
            async move { b.is_connected() }
        })
        .await;
        assert!(ok, "NATS at {} not reachable (run `make test`)", self.url);
        bus
    }
}

impl Default for TestNats {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let cfg = self.config();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async move {
                let bus = Bus::connect("test-cleanup", &cfg).await.ok()?;
                let _ = tokio::time::timeout(Duration::from_secs(5), bus.delete_prefixed_streams()).await;
                Some(())
            })
        })
        .join();
    }
}

/// A private `nats-server -js` on a free port, for tests that stop and start NATS.
pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    std::env::var_os("NEXUS_TEST_NATS_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        let port = StdListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let mut server = NatsServer { port, store: tempfile::tempdir().expect("tempdir"), child: None };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and store.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server binary (install the nats-server package)");
        self.child = Some(child);
        let port = self.port;
        let up = crate::eventually(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        assert!(up, "nats-server did not come up on {port}");
    }

    /// Kills the server abruptly (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
