//! Who is asking, on behalf of which tenant, under which request id: carried through a request's
//! task so database transactions, outgoing gRPC calls and outbox rows pick it up without every
//! function passing it along.

use std::net::IpAddr;

use nexus_kernel::TenantId;
use nexus_kernel::ids::RequestId;

use crate::config::Secret;

#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: Option<RequestId>,
    pub tenant_id: Option<TenantId>,
    /// User or API key id, for audit.
    pub actor_id: Option<String>,
    pub client_ip: Option<IpAddr>,
    /// The caller's bearer token, forwarded verbatim to downstream services, which verify it
    /// themselves.
    pub bearer: Option<Secret>,
    /// `Accept-Language` or the user's setting, as negotiated at the edge.
    pub locale: Option<String>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// The context of the running task, or an empty one outside any request.
    pub fn current() -> RequestContext {
        CURRENT.try_with(Clone::clone).unwrap_or_default()
    }

    /// Runs `fut` with `self` as the current context.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    pub fn request_id_str(&self) -> &str {
        self.request_id.as_ref().map_or("", RequestId::as_str)
    }
}

/// Metadata / header names used between the gateway and services.
pub mod headers {
    pub const REQUEST_ID: &str = "x-request-id";
    pub const AUTHORIZATION: &str = "authorization";
    pub const LOCALE: &str = "x-nexus-locale";
    pub const CLIENT_IP: &str = "x-nexus-client-ip";
}
