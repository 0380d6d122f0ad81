//! The NATS authorization block shipped with the Kubernetes manifests, on a real nats-server:
//! each service's user publishes its own events and cannot forge another service's.

use std::process::{Command, Stdio};
use std::time::Duration;

use nexus_platform::bus::Bus;
use nexus_platform::config::NatsConfig;

use crate::support::free_port;

fn nats_config(url: String) -> NatsConfig {
    NatsConfig {
        url,
        prefix: String::new(),
        credentials: Default::default(),
        max_deliveries: 5,
        ack_wait: Duration::from_secs(30),
        duplicate_window: Duration::from_secs(60),
        stream_max_age: Duration::from_secs(3600),
    }
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn each_service_user_publishes_only_its_own_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../k8s/base/nats/authorization.conf");
    std::fs::copy(manifest, dir.path().join("nexus-authorization.conf")).unwrap();
    let port = free_port();
    let store = dir.path().join("js");
    std::fs::write(
        dir.path().join("server.conf"),
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\ninclude ./nexus-authorization.conf\n",
            store.display().to_string()
        ),
    )
    .unwrap();
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
    let mut cmd = Command::new(binary);
    cmd.arg("-c").arg(dir.path().join("server.conf")).stdout(Stdio::null()).stderr(Stdio::null());
    for svc in ["auth", "subscriptions", "content", "video", "messaging", "ads", "commerce", "analytics"] {
        cmd.env(format!("NEXUS_{}_NATS_PASSWORD", svc.to_uppercase()), format!("pw-{svc}"));
    }
    let _server = Server(cmd.spawn().expect("nats-server"));
    let url = |svc: &str| format!("nats://nexus_{svc}:pw-{svc}@127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "nats-server with the shipped authorization block did not start");

    let auth = Bus::connect("auth", &nats_config(url("auth"))).await.unwrap();
    let mut auth_stream = auth.ensure_service_stream("auth").await.unwrap();
    auth.js.publish("nexus.auth.session.revoked", "real".into()).await.unwrap().await.unwrap();

    let content = Bus::connect("content", &nats_config(url("content"))).await.unwrap();
    content.ensure_service_stream("content").await.unwrap();
    content.js.publish("nexus.content.job.finished", "own".into()).await.unwrap().await.expect("own subject stored");
    // A forged revocation from the content service's user is refused by the server: no ack, and
    // nothing reaches auth's stream.
    let forged = tokio::time::timeout(Duration::from_secs(3), async {
        match content.js.publish("nexus.auth.session.revoked", "forged".into()).await {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    assert!(!matches!(forged, Ok(true)), "a forged event was acknowledged");
    assert_eq!(auth_stream.info().await.unwrap().state.messages, 1, "only auth's own event is on its stream");

    // A wrong password gets no connection: nothing it asks of JetStream is answered.
    let bad = Bus::connect("auth", &nats_config(format!("nats://nexus_auth:guess@127.0.0.1:{port}"))).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(3), bad.ensure_service_stream("auth")).await;
    assert!(!matches!(refused, Ok(Ok(_))), "a wrong password must not reach JetStream");
    assert!(!bad.is_connected());
}
