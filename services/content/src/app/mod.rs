//! Use cases. gRPC handlers call these with the verified caller; every state change commits
//! with its outbox event, and every metered action reserves credits first, then commits what
//! was used or releases the hold.

pub mod agents;
pub mod generations;
pub mod generator;
pub mod images;
pub mod llm;
pub mod local;
pub mod pages;
pub mod providers;
pub mod translations;
pub mod webhooks;

use std::sync::Arc;

use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::RequestContext;
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use sqlx::PgPool;

use crate::config::Config;
use crate::repo::{self, Limited};

use generator::TextGenerator;
use local::LocalGenerator;

pub use crate::events::{Outcome, settle_in};
pub use nexus_platform::credits::{Credits, GrpcCredits, Hold};

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

impl App {
    /// Gives a hold back when its action produced nothing to store. The release goes through the
    /// outbox in a transaction of its own (no token, no call to subscriptions); if even that
    /// cannot be written, the hold expires at its TTL and the credits come back then.
    pub(crate) async fn give_back(&self, tenant: TenantId, hold: &Hold, job: &str) {
        let written = async {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            settle_in(&mut tx, tenant, hold, job, Outcome::Release).await?;
            db::commit(tx).await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(error = ?e, reservation = %hold.id, job, "recording the release failed; the hold will expire");
        }
    }

    /// After trying to store a metered action's result: a failure gives the hold back, except
    /// when a twin request with the same key (so the same hold) stored first, which settles it.
    pub(crate) async fn give_back_on_failure<T>(
        &self,
        tenant: TenantId,
        hold: &Hold,
        job: &str,
        stored: &Result<T, Error>,
    ) {
        match stored {
            Err(e) if e.code() == "content.idempotency_key_reused" => {}
            Err(_) => self.give_back(tenant, hold, job).await,
            Ok(_) => {}
        }
    }
}

/// A hold from an earlier request with the same key (now settled) pays for nothing new: doing the
/// work again would be free. Callers answer with the stored result when there is one.
pub fn fresh(hold: &Hold) -> Result<(), Error> {
    if hold.status == "held" {
        Ok(())
    } else {
        Err(Error::new(nexus_kernel::ErrorKind::Conflict, "content.idempotency_key_reused"))
    }
}

/// Plan limit on pages and agents, checked against the rows that exist (not a monthly counter):
/// a workspace on FREE may keep three pages, whatever it deletes and creates.
pub(crate) async fn within_limit(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    table: Limited,
    feature: &str,
    limit: i64,
) -> Result<(), Error> {
    let used = repo::count_locked(conn, tenant, table, feature).await?;
    if used >= limit {
        return Err(Error::new(ErrorKind::PaymentRequired, "subscriptions.limit_reached")
            .with_param("feature", feature)
            .with_param("limit", limit.to_string()));
    }
    Ok(())
}

/// The caller, allowed to do `action`.
pub fn require(p: &Principal, action: Action) -> Result<(), Error> {
    p.require(action)
}

pub use nexus_platform::identity::caller_locale;

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
