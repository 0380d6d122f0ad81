//! The gRPC server every service gets: `grpc.request_timeout` applied, message size limits that
//! carry the largest asset, and reflection that lists only the services served (v1 here; the
//! end-to-end suite also asks over v1alpha with Python's grpcio).

use std::collections::BTreeSet;
use std::time::Duration;

use nexus_platform::ServiceDef;
use nexus_platform::grpc::{MAX_ASSET_BYTES, MAX_MESSAGE_BYTES};
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::{WebhookReceiver, WebhookReceiverServer};
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use nexus_testkit::service::common_config;
use nexus_testkit::{RunningService, TestDb, TestNats};
use tokio_stream::StreamExt as _;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::fixture::MIGRATIONS;

const DEF: ServiceDef = ServiceDef {
    name: "fixture",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.webhooks.v1.WebhookReceiver"],
    sealed: &[],
};

/// Echoes the body; `provider = "slow"` sleeps for the number of milliseconds in `query` first.
struct Echo;

#[tonic::async_trait]
impl WebhookReceiver for Echo {
    async fn deliver(
        &self,
        req: tonic::Request<DeliverWebhookRequest>,
    ) -> Result<tonic::Response<DeliverWebhookResponse>, tonic::Status> {
        let req = req.into_inner();
        if req.provider == "slow" {
            tokio::time::sleep(Duration::from_millis(req.query.parse().unwrap_or(0))).await;
        }
        Ok(tonic::Response::new(DeliverWebhookResponse { status: 200, content_type: String::new(), body: req.body }))
    }
}

async fn start(timeout: Duration) -> (RunningService, TestDb, TestNats) {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let mut cfg = common_config("fixture", &db, &nats);
    cfg.grpc.request_timeout = timeout;
    let svc = RunningService::start(DEF, cfg, |_| {
        Ok(tonic::service::Routes::new(nexus_platform::sized!(WebhookReceiverServer::new(Echo))))
    })
    .await;
    (svc, db, nats)
}

fn client(svc: &RunningService) -> WebhookReceiverClient<nexus_platform::grpc::ContextChannel> {
    let ch = nexus_platform::grpc::context_channel(&svc.grpc_url(), Duration::from_secs(30)).unwrap();
    nexus_platform::sized!(WebhookReceiverClient::new(ch))
}

fn slow(ms: u64) -> DeliverWebhookRequest {
    DeliverWebhookRequest { provider: "slow".into(), query: ms.to_string(), ..Default::default() }
}

async fn call_when_up(
    c: &mut WebhookReceiverClient<nexus_platform::grpc::ContextChannel>,
    req: DeliverWebhookRequest,
) -> Result<DeliverWebhookResponse, tonic::Status> {
    for _ in 0..100 {
        match c.deliver(req.clone()).await {
            Err(s) if s.code() == tonic::Code::Unavailable => tokio::time::sleep(Duration::from_millis(50)).await,
            other => return other.map(tonic::Response::into_inner),
        }
    }
    panic!("service never came up");
}

#[tokio::test]
async fn request_timeout_stops_slow_handlers_with_deadline_exceeded() {
    let (svc, _db, _nats) = start(Duration::from_millis(400)).await;
    let mut c = client(&svc);
    assert_eq!(call_when_up(&mut c, slow(0)).await.unwrap().status, 200, "a quick call passes");
    assert_eq!(c.deliver(slow(150)).await.unwrap().into_inner().status, 200, "within the limit");

    let started = std::time::Instant::now();
    let err = c.deliver(slow(5_000)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "request.timeout");
    assert!(started.elapsed() < Duration::from_secs(2), "answered at the limit, not when the handler ended");
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn the_largest_asset_fits_both_ways_and_larger_messages_are_refused() {
    let (svc, _db, _nats) = start(Duration::from_secs(10)).await;
    let mut c = client(&svc);
    call_when_up(&mut c, slow(0)).await.unwrap();
    let asset = vec![7u8; MAX_ASSET_BYTES];
    let got = c.deliver(DeliverWebhookRequest { body: asset.clone(), ..Default::default() }).await.unwrap();
    assert_eq!(got.into_inner().body.len(), MAX_ASSET_BYTES);

    let too_big = vec![7u8; MAX_MESSAGE_BYTES + 1];
    let err = c.deliver(DeliverWebhookRequest { body: too_big.clone(), ..Default::default() }).await.unwrap_err();
    // tonic's encoder fails the stream (the status says Internal): nothing is sent.
    assert!(
        matches!(err.code(), tonic::Code::OutOfRange | tonic::Code::Internal),
        "the client refuses to send it: {err:?}"
    );
    // A client without the limit may send it; the server refuses to read it.
    let raw = nexus_platform::grpc::context_channel(&svc.grpc_url(), Duration::from_secs(30)).unwrap();
    let mut unlimited = WebhookReceiverClient::new(raw).max_decoding_message_size(usize::MAX);
    let err = unlimited.deliver(DeliverWebhookRequest { body: too_big, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    svc.stop().await.unwrap();
}

async fn reflect_raw(url: &str, req: MessageRequest) -> Result<MessageResponse, tonic::Status> {
    let ch = nexus_platform::grpc::channel(url, Duration::from_secs(5)).unwrap();
    let mut c = ServerReflectionClient::new(ch);
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(req) };
    let mut stream = c.server_reflection_info(tokio_stream::iter([request])).await?.into_inner();
    Ok(stream.next().await.expect("an answer")?.message_response.expect("a response"))
}

async fn reflect(url: &str, req: MessageRequest) -> MessageResponse {
    reflect_raw(url, req).await.unwrap()
}

#[tokio::test]
async fn reflection_lists_and_describes_only_what_is_served() {
    let (svc, _db, _nats) = start(Duration::from_secs(10)).await;
    call_when_up(&mut client(&svc), slow(0)).await.unwrap();
    let MessageResponse::ListServicesResponse(list) =
        reflect(&svc.grpc_url(), MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a list");
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    let want: BTreeSet<String> = [
        "nexus.webhooks.v1.WebhookReceiver",
        "grpc.health.v1.Health",
        "nexus.ops.v1.DeadLetters",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, want);
    for own in &want {
        let got = reflect(&svc.grpc_url(), MessageRequest::FileContainingSymbol(own.clone())).await;
        assert!(matches!(got, MessageResponse::FileDescriptorResponse(_)), "{own}: {got:?}");
    }
    for foreign in ["nexus.auth.v1.Auth", "nexus.content.v1.Content", "nexus.subscriptions.v1.Subscriptions"] {
        let got = reflect_raw(&svc.grpc_url(), MessageRequest::FileContainingSymbol(foreign.into())).await;
        assert!(
            matches!(&got, Err(s) if s.code() == tonic::Code::NotFound)
                || matches!(got, Ok(MessageResponse::ErrorResponse(_))),
            "{foreign} is not described: {got:?}"
        );
    }
    svc.stop().await.unwrap();
}

#[test]
fn descriptors_for_a_service_include_its_imports_only() {
    let set = nexus_platform::grpc::descriptors_for(&["nexus.content.v1.Content"]);
    let files: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    assert!(files.iter().any(|f| f.contains("content/v1")), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("auth/v1") || f.contains("subscriptions/v1")), "{files:?}");
    for f in &set.file {
        for dep in &f.dependency {
            assert!(
                files.contains(&dep.as_str()) || dep.starts_with("google/protobuf/"),
                "{} imports {dep}, which is missing",
                f.name()
            );
        }
    }
}

#[tokio::test]
async fn a_bad_outbound_allowlist_stops_start_up_naming_the_key() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let mut cfg = common_config("fixture", &db, &nats);
    cfg.outbound.allow_private_cidrs = vec!["10.0.0.0/99".into()];
    let svc = RunningService::start(DEF, cfg, |_| Ok(tonic::service::Routes::default())).await;
    let err = tokio::time::timeout(Duration::from_secs(10), svc.handle).await.unwrap().unwrap().unwrap_err();
    assert!(format!("{err:#}").contains("outbound.allow_private_cidrs"), "{err:#}");
}
