//! Auth's service-credential exchange on port 0, for tests of a service that calls another one
//! as itself (`nexus_platform::identity::ServiceTokens`) without running the auth service: it
//! answers `nexus.auth.v1.Auth/ExchangeServiceCredential` as auth does (the development
//! credential of the named service, else `auth.invalid_service_credential`), with tokens signed
//! by a [`TestIssuer`] the called services trust. Every other Auth method is `Unimplemented`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::auth::v1 as pb;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codegen::{BoxFuture, Service, http};

use crate::fake::lock;
use crate::identity::TestIssuer;

struct Inner {
    issuer: TestIssuer,
    exchanges: AtomicUsize,
    /// (service, workspace) of each exchange answered.
    seen: Mutex<Vec<(String, Option<WorkspaceId>)>>,
}

pub struct FakeServiceAuth {
    pub url: String,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl Drop for FakeServiceAuth {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeServiceAuth {
    pub async fn start(issuer: TestIssuer) -> FakeServiceAuth {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake auth");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Inner { issuer, exchanges: AtomicUsize::new(0), seen: Mutex::new(Vec::new()) });
        let stop = CancellationToken::new();
        let svc = ExchangeOnly(inner.clone());
        let token = stop.clone();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
                .await;
        });
        FakeServiceAuth { url, inner, stop }
    }

    /// Exchanges answered with a token.
    pub fn exchanges(&self) -> usize {
        self.inner.exchanges.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<(String, Option<WorkspaceId>)> {
        lock(&self.inner.seen).clone()
    }
}

#[derive(Clone)]
struct ExchangeOnly(Arc<Inner>);

impl tonic::server::NamedService for ExchangeOnly {
    const NAME: &'static str = "nexus.auth.v1.Auth";
}

struct Exchange(Arc<Inner>);

impl tonic::server::UnaryService<pb::ExchangeServiceCredentialRequest> for Exchange {
    type Response = pb::ExchangedToken;
    type Future = BoxFuture<tonic::Response<pb::ExchangedToken>, tonic::Status>;

    fn call(&mut self, req: tonic::Request<pb::ExchangeServiceCredentialRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let r = req.into_inner();
            let invalid =
                || tonic::Status::from(nexus_kernel::Error::unauthenticated("auth.invalid_service_credential"));
            if r.service.is_empty() || r.secret != nexus_platform::identity::dev_service_secret(&r.service) {
                return Err(invalid());
            }
            let workspace = if r.workspace_id.is_empty() {
                None
            } else {
                Some(WorkspaceId::parse(&r.workspace_id).map_err(|_| invalid())?)
            };
            let ws = workspace.unwrap_or_else(|| WorkspaceId::from_uuid(uuid::Uuid::nil()));
            let access_token = inner.issuer.service_token(ws, &r.service);
            inner.exchanges.fetch_add(1, Ordering::SeqCst);
            lock(&inner.seen).push((r.service, workspace));
            Ok(tonic::Response::new(pb::ExchangedToken { access_token, expires_in: 600, key_id: "test".into() }))
        })
    }
}

impl Service<http::Request<tonic::body::Body>> for ExchangeOnly {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            if req.uri().path() == "/nexus.auth.v1.Auth/ExchangeServiceCredential" {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Exchange(inner), req).await)
            } else {
                Ok(tonic::Status::unimplemented("not served by the fake").into_http())
            }
        })
    }
}
