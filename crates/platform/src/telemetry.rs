//! Logs, traces and trace-context propagation.
//!
//! Logs are JSON lines (or pretty for humans). Spans go to an OTLP collector when one is
//! configured; without one an SDK tracer still assigns trace ids, so `traceparent` flows
//! HTTP -> gRPC -> NATS and every log line can be joined to its request.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

/// Flushes spans on drop; keep it alive for the life of `main`.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

fn propagator() -> &'static TraceContextPropagator {
    PROPAGATOR.get_or_init(TraceContextPropagator::new)
}

/// Installs the global subscriber. Safe to call more than once (tests): later calls only return
/// a guard with nothing to flush.
pub fn init(service: &str, cfg: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&cfg.log_level))?;

    let mut builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(cfg.sample_ratio))))
        .with_resource(
            Resource::builder()
                .with_service_name(format!("nexus-{service}"))
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        );
    if !cfg.otlp_endpoint.is_empty() {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.otlp_endpoint.clone())
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(format!("nexus-{service}")));

    let fmt_layer = match cfg.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(false).compact().boxed(),
    };

    let installed = tracing_subscriber::registry().with(filter).with(otel).with(fmt_layer).try_init().is_ok();
    Ok(TelemetryGuard { provider: installed.then_some(provider) })
}

/// Test and tool set-up: pretty logs at `warn` unless `RUST_LOG` says otherwise.
pub fn init_for_tests() {
    let cfg = TelemetryConfig {
        log_format: LogFormat::Pretty,
        log_level: "warn".into(),
        otlp_endpoint: String::new(),
        sample_ratio: 1.0,
    };
    if let Ok(guard) = init("test", &cfg) {
        // The provider must outlive every test in the process.
        std::mem::forget(guard);
    }
}

/// Trace id of the current span, for logs and error bodies; empty when there is none.
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt;
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() { sc.trace_id().to_string() } else { String::new() }
}

/// Where trace context is read from and written to: HTTP headers, gRPC metadata, NATS headers.
pub trait Carrier {
    fn get_value(&self, key: &str) -> Option<&str>;
    fn set_value(&mut self, key: &str, value: String);
    fn key_names(&self) -> Vec<&str>;
}

struct Adapter<'a, C: ?Sized>(&'a mut C);
struct ReadAdapter<'a, C: ?Sized>(&'a C);

impl<C: Carrier + ?Sized> Injector for Adapter<'_, C> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set_value(key, value);
    }
}

impl<C: Carrier + ?Sized> Extractor for ReadAdapter<'_, C> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get_value(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.key_names()
    }
}

/// Writes the current span's context (`traceparent`, `tracestate`) into `carrier`.
pub fn inject_current(carrier: &mut (impl Carrier + ?Sized)) {
    let cx = tracing::Span::current().context();
    propagator().inject_context(&cx, &mut Adapter(carrier));
}

/// Reads a remote parent context from `carrier`.
pub fn extract(carrier: &(impl Carrier + ?Sized)) -> Context {
    propagator().extract(&ReadAdapter(carrier))
}

/// Makes `span` a child of the context found in `carrier` (if any).
pub fn set_parent_from(span: &tracing::Span, carrier: &(impl Carrier + ?Sized)) {
    let _ = span.set_parent(extract(carrier));
}

/// `traceparent` value of the current span, for storing beside an outbox row.
pub fn current_traceparent() -> (String, String) {
    let mut map = std::collections::HashMap::<String, String>::new();
    inject_current(&mut map);
    (map.remove("traceparent").unwrap_or_default(), map.remove("tracestate").unwrap_or_default())
}

impl Carrier for std::collections::HashMap<String, String> {
    fn get_value(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
    fn set_value(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }
    fn key_names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }
}

impl Carrier for http::HeaderMap {
    fn get_value(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.to_str().ok())
    }
    fn set_value(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(val)) = (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.insert(name, val);
        }
    }
    fn key_names(&self) -> Vec<&str> {
        self.keys().map(http::HeaderName::as_str).collect()
    }
}

impl Carrier for tonic::metadata::MetadataMap {
    fn get_value(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.to_str().ok())
    }
    fn set_value(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(val)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.insert(name, val);
        }
    }
    fn key_names(&self) -> Vec<&str> {
        self.keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

impl Carrier for async_nats::HeaderMap {
    fn get_value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|v| v.as_str())
    }
    fn set_value(&mut self, key: &str, value: String) {
        self.insert(key, value.as_str());
    }
    fn key_names(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_round_trips_through_every_carrier() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut http_headers = http::HeaderMap::new();
        http_headers.insert("traceparent", parent.parse().unwrap());
        let cx = extract(&http_headers);

        let mut md = tonic::metadata::MetadataMap::new();
        propagator().inject_context(&cx, &mut Adapter(&mut md));
        assert_eq!(md.get_value("traceparent"), Some(parent));

        let mut nats = async_nats::HeaderMap::new();
        propagator().inject_context(&extract(&md), &mut Adapter(&mut nats));
        assert_eq!(nats.get_value("traceparent"), Some(parent));
    }
}
