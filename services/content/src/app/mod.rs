//! Use cases. gRPC handlers call these with the verified caller; every state change commits
//! with its outbox event, and every metered action reserves credits first, then commits what
//! was used or releases the hold.

pub mod agents;
pub mod credits;
pub mod generations;
pub mod images;
pub mod pages;
pub mod providers;

use std::sync::Arc;

use nexus_kernel::{Error, Locale};
use nexus_platform::RequestContext;
use nexus_platform::identity::{Action, Principal};
use sqlx::PgPool;

use crate::config::Config;
use crate::generator::TextGenerator;
use crate::local::LocalGenerator;

pub use credits::{Credits, GrpcCredits, Hold};

pub struct App {
    pub pool: PgPool,
    pub cfg: Arc<Config>,
    pub credits: Arc<dyn Credits>,
    /// The configured text provider (an LLM, or the local generator when no key is set).
    pub text: Arc<dyn TextGenerator>,
    pub local: Arc<LocalGenerator>,
    /// Image provider; `None`: local placeholders.
    pub images: Option<Arc<providers::ImageProvider>>,
    /// Downloads of provider outputs: URLs the provider chose, so through the safe client.
    pub http: nexus_platform::outbound::OutboundClient,
}

pub fn db(e: sqlx::Error) -> Error {
    nexus_platform::db::error(e)
}

/// The caller, allowed to do `action`.
pub fn require(p: &Principal, action: Action) -> Result<(), Error> {
    p.require(action)
}

/// The language to use when a request names none: the user's setting, else the negotiated one.
pub fn caller_locale(p: Option<&Principal>) -> Locale {
    p.and_then(|p| p.locale)
        .or_else(|| RequestContext::current().locale.and_then(|l| l.parse().ok()))
        .unwrap_or_default()
}

/// Client idempotency keys: 1–200 printable characters.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > 200 || key.chars().any(char::is_control) {
        return Err(Error::invalid("content.invalid_idempotency_key").with_violation("idempotency_key", "invalid"));
    }
    Ok(())
}

/// Runs `fut` on its own task with the current request context (token, tenant, request id), so
/// it finishes (and settles its credits) even if the caller goes away.
pub fn spawn_in_context<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(RequestContext::current().scope(fut))
}

/// A task failure is our bug; turn it into an internal error.
pub fn joined<T>(r: Result<Result<T, Error>, tokio::task::JoinError>) -> Result<T, Error> {
    r.map_err(Error::internal)?
}
