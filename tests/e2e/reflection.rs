//! gRPC reflection of every real binary lists exactly the services that binary serves, over
//! `grpc.reflection.v1alpha` as Python's grpcio-reflection speaks it, and over `v1` from Rust.

use std::collections::BTreeSet;
use std::time::Duration;

use nexus_testkit::{TestDb, TestNats};
use tokio_stream::StreamExt as _;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{Proc, binary, free_port};

const PLATFORM: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "nexus.ops.v1.DeadLetters",
];

/// Each binary with the services it serves itself.
const BINARIES: &[(&str, &str, &[&str])] = &[
    ("auth", "nexus-auth", &["nexus.auth.v1.Auth"]),
    (
        "subscriptions",
        "nexus-subscriptions",
        &["nexus.subscriptions.v1.Subscriptions", "nexus.webhooks.v1.WebhookReceiver"],
    ),
    ("content", "nexus-content", &["nexus.content.v1.Content", "nexus.webhooks.v1.WebhookReceiver"]),
    ("analytics", "nexus-analytics", &["nexus.analytics.v1.Analytics"]),
];

async fn start(service: &str, bin: &str, db: &TestDb, nats: &TestNats) -> (Proc, u16) {
    let cfg = db.config(service);
    let (grpc, admin) = (free_port(), free_port());
    let env: Vec<(&str, String)> = vec![
        ("NEXUS_DATABASE__URL", cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL", cfg.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL", nats.url.clone()),
        ("NEXUS_NATS__PREFIX", nats.prefix.clone()),
        ("NEXUS_GRPC__ADDR", format!("127.0.0.1:{grpc}")),
        ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{admin}")),
    ];
    let migrate = std::process::Command::new(binary(bin))
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{bin} migrate: {}", String::from_utf8_lossy(&migrate.stderr));
    let proc = Proc::spawn(bin, &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", grpc)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "{bin} never listened on gRPC");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (proc, grpc)
}

/// Python's grpcio-reflection (v1alpha): the listed services, each resolved to its descriptor.
fn python_list(port: u16) -> (BTreeSet<String>, serde_json::Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/reflection.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("python3 runs (make test installs grpcio and grpcio-reflection)");
    assert!(out.status.success(), "reflection.py: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = v["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    (names, v["methods"].clone())
}

async fn v1(port: u16, req: MessageRequest) -> Result<MessageResponse, tonic::Status> {
    let channel = channel(port);
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(req) };
    let mut stream = client.server_reflection_info(tokio_stream::iter([request])).await?.into_inner();
    let resp = stream.next().await.expect("one answer")?;
    Ok(resp.message_response.expect("a response"))
}

fn channel(port: u16) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect_lazy()
}

#[tokio::test]
async fn each_binary_reflects_exactly_its_own_services_over_v1alpha_and_v1() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    for (service, bin, own) in BINARIES {
        let (_proc, port) = start(service, bin, &db, &nats).await;
        let expected: BTreeSet<String> = own.iter().chain(PLATFORM).map(|s| (*s).to_owned()).collect();

        let (listed, methods) = python_list(port);
        assert_eq!(listed, expected, "{bin} over v1alpha (grpcio)");
        for s in *own {
            assert!(methods[*s].as_u64().unwrap() > 0, "{bin}: {s} resolved with its methods: {methods}");
        }

        let MessageResponse::ListServicesResponse(list) =
            v1(port, MessageRequest::ListServices(String::new())).await.unwrap()
        else {
            panic!("{bin}: not a service list");
        };
        let listed: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
        assert_eq!(listed, expected, "{bin} over v1");

        // Another binary's service is not described either.
        let foreign = BINARIES.iter().flat_map(|(_, _, s)| s.iter()).find(|s| !own.contains(s)).unwrap();
        let got = v1(port, MessageRequest::FileContainingSymbol((*foreign).to_owned())).await;
        assert!(matches!(&got, Ok(MessageResponse::ErrorResponse(_)) | Err(_)), "{bin} describes {foreign}: {got:?}");
        let got = v1(port, MessageRequest::FileContainingSymbol(own[0].to_owned())).await.unwrap();
        assert!(matches!(got, MessageResponse::FileDescriptorResponse(_)), "{bin}: {got:?}");
    }
}
