//! Trace context across the gateway: the span of a public request and the server span of the
//! RPC it causes belong to one trace (`traceparent` travels in the gRPC metadata), and the RPC
//! span names the caller's workspace.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;

use crate::auth::{email, stack};
use crate::support::client;

/// Keeps every finished span in memory.
#[derive(Debug, Clone, Default)]
struct Capture(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Capture {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Capture {
    fn find(&self, pick: impl Fn(&SpanData) -> bool) -> Option<SpanData> {
        self.0.lock().unwrap().iter().find(|s| pick(s)).cloned()
    }
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

// A current-thread runtime: the gateway and the services it calls all run on this thread, so
// the subscriber set for it sees both sides.
#[tokio::test(flavor = "current_thread")]
async fn a_request_and_the_rpc_it_causes_share_one_trace_and_the_rpc_names_the_workspace() {
    let capture = Capture::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(capture.clone()).build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let s = stack(1000).await;
    let signed = s.sign_up(&email("trace")).await;
    let token = signed["access_token"].as_str().unwrap();
    let workspace = signed["workspace"]["id"].as_str().unwrap().to_owned();

    let resp = client().get(format!("{}/v1/me", s.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let gateway = |s: &SpanData| s.name == "http" && attr(s, "path").as_deref() == Some("/v1/me");
    let rpc = |s: &SpanData| {
        s.name == "grpc" && s.span_kind == SpanKind::Server && attr(s, "rpc").is_some_and(|r| r.ends_with("/GetMe"))
    };
    let found = nexus_testkit::eventually(std::time::Duration::from_secs(5), || {
        let c = capture.clone();
        async move { c.find(gateway).is_some() && c.find(rpc).is_some() }
    })
    .await;
    assert!(found, "both spans exported");
    let (gateway, rpc) = (capture.find(gateway).unwrap(), capture.find(rpc).unwrap());

    assert!(gateway.span_context.is_valid());
    assert_eq!(rpc.span_context.trace_id(), gateway.span_context.trace_id(), "one trace from gateway to service");
    assert_ne!(rpc.span_context.span_id(), gateway.span_context.span_id());
    assert_eq!(attr(&rpc, "workspace_id"), Some(workspace), "the RPC span names the caller's workspace");
    assert!(attr(&rpc, "actor").is_some_and(|a| !a.is_empty()));
    assert_eq!(attr(&rpc, "service").as_deref(), Some("auth"));
}
