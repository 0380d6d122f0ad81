//! gRPC plumbing shared by every service: the server-side context layer (request id, trace
//! context, bearer token, per-RPC metrics, the request time limit), health and reflection, message
//! size limits, and the client side (lazy channels with deadlines and an interceptor that forwards
//! the caller's context).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tower::{Layer, Service};
use tracing::Instrument;

use nexus_kernel::ids::RequestId;

use crate::config::Secret;
use crate::context::{RequestContext, headers};
use crate::identity::Verifier;

/// Puts a [`RequestContext`] around every RPC and records `nexus_grpc_requests_total` and
/// `nexus_grpc_request_duration_seconds`.
///
/// With a verifier, a bearer token is checked before the handler runs: an invalid one is refused
/// with UNAUTHENTICATED, a valid one becomes a [`crate::identity::Principal`] in the request
/// extensions and sets the tenant and actor of the context. Calls without a token reach the
/// handler anonymous; handlers that need a caller ask with [`crate::identity::principal`].
///
/// With a time limit ([`ContextLayer::with_timeout`], `grpc.request_timeout`), a handler that has
/// not produced its response in time is dropped and the caller gets DEADLINE_EXCEEDED
/// (`request.timeout`). A server stream counts until its first response, not for its whole life.
#[derive(Clone)]
pub struct ContextLayer {
    service: Arc<str>,
    verifier: Option<Arc<Verifier>>,
    timeout: Option<Duration>,
}

impl ContextLayer {
    pub fn new(service: &str, verifier: Option<Arc<Verifier>>) -> Self {
        Self { service: service.into(), verifier, timeout: None }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout).filter(|t| !t.is_zero());
        self
    }
}

impl<S> Layer<S> for ContextLayer {
    type Service = ContextService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ContextService { inner, service: self.service.clone(), verifier: self.verifier.clone(), timeout: self.timeout }
    }
}

#[derive(Clone)]
pub struct ContextService<S> {
    inner: S,
    service: Arc<str>,
    verifier: Option<Arc<Verifier>>,
    timeout: Option<Duration>,
}

/// Reads the caller's context from request headers (HTTP/2 headers are gRPC metadata).
pub fn context_from_headers(h: &http::HeaderMap) -> RequestContext {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
    RequestContext {
        request_id: Some(get(headers::REQUEST_ID).and_then(RequestId::parse).unwrap_or_else(RequestId::generate)),
        tenant_id: None,
        actor_id: None,
        client_ip: get(headers::CLIENT_IP).and_then(|s| s.parse::<IpAddr>().ok()),
        bearer: get(headers::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| Secret::new(t.trim())),
        locale: get(headers::LOCALE).map(str::to_owned),
    }
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for ContextService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The ready service is the one we were polled for; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = req.uri().path().to_owned();
        let mut ctx = context_from_headers(req.headers());
        let verifier = self.verifier.clone();
        let span = tracing::info_span!(
            "grpc",
            otel.kind = "server",
            rpc = %method,
            request_id = %ctx.request_id_str(),
            service = %self.service,
            workspace_id = tracing::field::Empty,
            actor = tracing::field::Empty,
        );
        crate::telemetry::set_parent_from(&span, req.headers());
        let service = self.service.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let start = Instant::now();
            if let (Some(verifier), Some(token)) = (verifier, ctx.bearer.clone()) {
                match verifier.verify(token.expose()).instrument(span.clone()).await {
                    Ok(p) => {
                        ctx.tenant_id = Some(p.workspace_id);
                        ctx.actor_id = Some(p.actor());
                        // Every log line and child span of this request names whose work it is.
                        span.record("workspace_id", tracing::field::display(p.workspace_id));
                        span.record("actor", tracing::field::display(p.actor()));
                        req.extensions_mut().insert(p);
                    }
                    Err(e) => {
                        metrics::counter!(
                            "nexus_grpc_requests_total",
                            &[("service", service.to_string()), ("method", method), ("code", "16".to_owned())]
                        )
                        .increment(1);
                        return Ok(tonic::Status::from(e).into_http());
                    }
                }
            }
            let call = ctx.scope(inner.call(req).instrument(span.clone()));
            let result = match timeout {
                None => call.await,
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(r) => r,
                    Err(_) => {
                        span.in_scope(|| tracing::warn!(timeout = ?limit, "request outlived grpc.request_timeout"));
                        let status: tonic::Status =
                            nexus_kernel::Error::new(nexus_kernel::ErrorKind::DeadlineExceeded, "request.timeout")
                                .into();
                        Ok(status.into_http())
                    }
                },
            };
            // Unary errors come back "trailers-only", with grpc-status in the headers; a normal
            // response carries status 0 in trailers.
            let code = match &result {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| "0".to_owned(), str::to_owned),
                Err(_) => "transport".to_owned(),
            };
            let labels = [("service", service.to_string()), ("method", method)];
            metrics::histogram!("nexus_grpc_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
            metrics::counter!(
                "nexus_grpc_requests_total",
                &[("service", labels[0].1.clone()), ("method", labels[1].1.clone()), ("code", code)]
            )
            .increment(1);
            result
        })
    }
}

/// The largest asset an RPC returns: a stored image (content's `GetPublishedAsset`, whose size
/// `images.max_bytes` may not exceed). Page HTML and every other message are far smaller.
pub const MAX_ASSET_BYTES: usize = 5 * 1024 * 1024;

/// Decoding and encoding limit of every gRPC server and client: the largest asset plus room for
/// the message around it. Generated servers and clients take it with [`sized!`](crate::sized).
pub const MAX_MESSAGE_BYTES: usize = MAX_ASSET_BYTES + 256 * 1024;

/// Applies [`MAX_MESSAGE_BYTES`] in both directions to a generated gRPC server or client:
/// `nexus_platform::sized!(ContentServer::new(svc))`.
#[macro_export]
macro_rules! sized {
    ($svc:expr) => {
        $svc.max_decoding_message_size($crate::grpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size($crate::grpc::MAX_MESSAGE_BYTES)
    };
}

/// Services every binary serves besides its own: health, dead-letter operations, reflection.
pub const PLATFORM_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "nexus.ops.v1.DeadLetters",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The files of our descriptor set that define one of `services`, with every file they import
/// (transitively), so reflection can describe exactly what is served and nothing else.
pub fn descriptors_for(services: &[&str]) -> prost_types::FileDescriptorSet {
    use prost::Message as _;
    let all = prost_types::FileDescriptorSet::decode(nexus_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set is generated at build time and valid");
    let by_name: std::collections::HashMap<&str, &prost_types::FileDescriptorProto> =
        all.file.iter().map(|f| (f.name(), f)).collect();
    let serves = |f: &prost_types::FileDescriptorProto| {
        f.service.iter().any(|s| services.contains(&format!("{}.{}", f.package(), s.name()).as_str()))
    };
    let mut wanted: Vec<&str> = all.file.iter().filter(|f| serves(f)).map(|f| f.name()).collect();
    let mut i = 0;
    while i < wanted.len() {
        if let Some(f) = by_name.get(wanted[i]) {
            for dep in &f.dependency {
                if by_name.contains_key(dep.as_str()) && !wanted.contains(&dep.as_str()) {
                    wanted.push(dep.as_str());
                }
            }
        }
        i += 1;
    }
    prost_types::FileDescriptorSet { file: all.file.iter().filter(|f| wanted.contains(&f.name())).cloned().collect() }
}

fn reflection_builder(services: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_file_descriptor_set(descriptors_for(&[services, PLATFORM_SERVICES].concat()))
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    let mut names: Vec<&str> = services.iter().chain(PLATFORM_SERVICES).copied().collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        builder = builder.with_service_name(name);
    }
    builder
}

/// Reflection (`grpc.reflection.v1`) that lists and describes only `services` (a binary's own,
/// from `ServiceDef.grpc_services`) and [`PLATFORM_SERVICES`].
pub fn reflection_v1(
    services: &[&str],
) -> tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection> {
    reflection_builder(services).build_v1().expect("descriptor sets are generated at build time and valid")
}

/// The same as `grpc.reflection.v1alpha`, which older grpcurl, Postman and Python's grpcio speak.
pub fn reflection_v1alpha(
    services: &[&str],
) -> tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>
{
    reflection_builder(services).build_v1alpha().expect("descriptor sets are generated at build time and valid")
}

/// A lazily connecting channel with a per-call deadline: a service may start before the ones it
/// calls, and a slow dependency cannot hold a request forever.
pub fn channel(url: &str, deadline: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(deadline)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// Forwards the current request's id, bearer token, locale, client IP and trace context.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardContext;

impl tonic::service::Interceptor for ForwardContext {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let ctx = RequestContext::current();
        let md = req.metadata_mut();
        let mut set = |k: &'static str, v: &str| {
            if let Ok(v) = tonic::metadata::MetadataValue::try_from(v) {
                md.insert(k, v);
            }
        };
        if let Some(id) = &ctx.request_id {
            set(headers::REQUEST_ID, id.as_str());
        }
        if let Some(b) = &ctx.bearer {
            set(headers::AUTHORIZATION, &format!("Bearer {}", b.expose()));
        }
        if let Some(l) = &ctx.locale {
            set(headers::LOCALE, l);
        }
        if let Some(ip) = ctx.client_ip {
            set(headers::CLIENT_IP, &ip.to_string());
        }
        crate::telemetry::inject_current(req.metadata_mut());
        Ok(req)
    }
}

/// A channel whose calls carry the caller's context.
pub type ContextChannel = tonic::service::interceptor::InterceptedService<Channel, ForwardContext>;

pub fn context_channel(url: &str, deadline: Duration) -> Result<ContextChannel, tonic::transport::Error> {
    Ok(tonic::service::interceptor::InterceptedService::new(channel(url, deadline)?, ForwardContext))
}

/// The status an RPC answers for `e`; internal failures are logged here (with the request's
/// span), since their cause never crosses the boundary.
pub fn status(e: nexus_kernel::Error) -> tonic::Status {
    match e.kind() {
        nexus_kernel::ErrorKind::Internal => tracing::error!(error = ?e, "request failed"),
        // A transient failure with a cause (a lost connection, a lock or statement timeout) is
        // answered 503 and retried; its cause is logged here, the only place it is still known.
        nexus_kernel::ErrorKind::Unavailable if std::error::Error::source(&e).is_some() => {
            tracing::warn!(error = ?e, "request failed, transiently");
        }
        _ => {}
    }
    e.into()
}

/// The page a request asks for: its size bounded and its opaque cursor checked (a bad one is
/// `request.invalid_cursor`); absent, the first page of the default size.
/// A file download as the `FileChunk` stream every `Open…` call answers: the head first, then
/// the bytes. A read that fails midway ends the stream with 503 (`what` names the file in the log).
pub fn file_stream(
    d: crate::storage::Download,
    what: &'static str,
) -> Pin<Box<dyn futures::Stream<Item = Result<nexus_proto::common::FileChunk, tonic::Status>> + Send + 'static>> {
    use futures::StreamExt as _;
    use nexus_proto::common::{FileChunk, FileHead};
    let head = FileHead {
        content_type: d.content_type,
        total_size: d.opened.size,
        start: d.opened.range.0,
        end: d.opened.range.1,
        partial: d.partial,
        filename: d.filename,
    };
    let first = futures::stream::once(async move { Ok(FileChunk { head: Some(head), data: Vec::new() }) });
    let body = d.opened.body.map(move |chunk| match chunk {
        Ok(data) => Ok(FileChunk { head: None, data: data.to_vec() }),
        Err(e) => {
            tracing::warn!(error = %e, what, "reading a stored file failed");
            Err(status(nexus_kernel::Error::unavailable("service.unavailable")))
        }
    });
    Box::pin(first.chain(body))
}

pub fn page_request(p: Option<nexus_proto::common::PageRequest>) -> Result<nexus_kernel::PageRequest, tonic::Status> {
    let p = p.unwrap_or_default();
    nexus_kernel::PageRequest::new(Some(p.page_size), Some(p.cursor)).map_err(status)
}

/// Where the next page starts, as every list response carries it (empty on the last page).
pub fn page_info<T>(p: &nexus_kernel::Page<T>) -> Option<nexus_proto::common::PageInfo> {
    Some(nexus_proto::common::PageInfo { next_cursor: p.next_cursor.clone().unwrap_or_default() })
}

/// A protobuf timestamp of `t`.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// The instant of a protobuf timestamp; `None` when it is out of range or malformed.
pub fn from_ts(t: &prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::TimeZone as _;
    chrono::Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).ok()?).single()
}

/// The error for a failed call to another service. A status the service answered with (it
/// carries our error detail) keeps its meaning. One the transport made up because the callee
/// went away mid-request — connection refused, reset or closed, a broken HTTP/2 stream (tonic
/// reports these as `Unavailable`, or as `Unknown`, `Internal` or `Cancelled` with the transport
/// error as the cause) — becomes `service.unavailable` (503 with `Retry-After` at the gateway):
/// the callee died or is restarting, and trying again is right. It is never `internal`.
pub fn upstream_error(status: &tonic::Status) -> nexus_kernel::Error {
    if status.details().is_empty() && is_transport_failure(status) {
        return nexus_kernel::Error::unavailable("service.unavailable").with_source(status.clone());
    }
    // A callee that does not serve the method yet (a service deployed before the capability that
    // routes to it) is, for the caller, a service that is not there: 503, never a 500.
    if status.code() == tonic::Code::Unimplemented && status.details().is_empty() {
        return nexus_kernel::Error::unavailable("service.unavailable").with_source(status.clone());
    }
    nexus_kernel::Error::from_status(status)
}

/// Whether a status without our error detail says the connection to the callee failed.
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    use tonic::Code;
    match status.code() {
        Code::Unavailable => true,
        Code::Unknown | Code::Internal | Code::Cancelled => caused_by_transport(status),
        _ => false,
    }
}

fn caused_by_transport(status: &tonic::Status) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = cause {
        if e.is::<hyper::Error>()
            || e.is::<h2::Error>()
            || e.is::<std::io::Error>()
            || e.is::<tonic::transport::Error>()
        {
            return true;
        }
        cause = e.source();
    }
    // A status rebuilt from text (no cause kept) still names what failed.
    let message = status.message().to_ascii_lowercase();
    ["transport error", "h2 protocol error", "connection reset", "connection closed", "broken pipe", "stream closed"]
        .iter()
        .any(|m| message.contains(m))
}

#[cfg(test)]
mod upstream_tests {
    use super::*;
    use nexus_kernel::ErrorKind;

    #[test]
    fn transport_failures_are_unavailable() {
        let reset = tonic::Status::from_error(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert_eq!(upstream_error(&reset).kind(), ErrorKind::Unavailable);
        let h2 = tonic::Status::from(h2::Error::from(h2::Reason::INTERNAL_ERROR));
        assert_eq!(h2.code(), tonic::Code::Internal, "tonic calls a reset stream internal");
        assert_eq!(upstream_error(&h2).kind(), ErrorKind::Unavailable);
        let unknown = tonic::Status::unknown("transport error");
        assert_eq!(upstream_error(&unknown).kind(), ErrorKind::Unavailable);
        let e = upstream_error(&tonic::Status::unavailable("tcp connect error"));
        assert_eq!((e.kind(), e.code()), (ErrorKind::Unavailable, "service.unavailable"));
    }

    #[test]
    fn answers_of_the_service_keep_their_meaning() {
        let own: tonic::Status = nexus_kernel::Error::internal("bug").into();
        assert_eq!(upstream_error(&own).kind(), ErrorKind::Internal);
        let refused: tonic::Status =
            nexus_kernel::Error::new(ErrorKind::PaymentRequired, "subscriptions.insufficient_credits").into();
        assert_eq!(upstream_error(&refused).code(), "subscriptions.insufficient_credits");
        // A bare internal status with no transport cause is a bug somewhere, not an outage.
        assert_eq!(upstream_error(&tonic::Status::internal("oops")).kind(), ErrorKind::Internal);
        assert_eq!(upstream_error(&tonic::Status::not_found("x")).kind(), ErrorKind::NotFound);
    }
}
