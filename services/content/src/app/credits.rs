//! Credits and plan limits, held by the subscriptions service. Reserving goes out with the
//! caller's token (the forwarded request context), so the workspace charged is the caller's own.
//! Settling never does: how a metered action ended is announced through the outbox
//! (`MeteredJobFinished` on `nexus.content.job.finished`), in the transaction that stores its
//! result, and subscriptions charges or gives back the hold from that event. A logout, an expired
//! token, subscriptions being down or a crash after the store can therefore neither skip the
//! charge nor make it twice.

use std::time::Duration;

use nexus_kernel::{Error, TenantId};
use nexus_platform::grpc::{ContextChannel, context_channel};
use nexus_platform::outbox::enqueue;
use nexus_proto::events::MeteredJobFinished;
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use sqlx::PgConnection;

/// A hold on credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub amount: i64,
    /// "held" for a fresh hold; "committed" when the key was already used and settled.
    pub status: String,
    pub committed_amount: i64,
}

#[async_trait::async_trait]
pub trait Credits: Send + Sync + 'static {
    /// Holds the price of `action` (x `quantity`), or `credits` when given (token estimates).
    async fn reserve(&self, action: &str, quantity: i64, credits: i64, key: &str, ttl: Duration)
    -> Result<Hold, Error>;
    /// The plan's limit of `feature` (pages, ai_agents).
    async fn limit(&self, feature: &str) -> Result<i64, Error>;
}

pub struct GrpcCredits {
    channel: ContextChannel,
}

impl GrpcCredits {
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            channel: context_channel(url, timeout)
                .map_err(|e| anyhow::anyhow!("services.subscriptions: {url:?}: {e}"))?,
        })
    }

    fn client(&self) -> SubscriptionsClient<ContextChannel> {
        SubscriptionsClient::new(self.channel.clone())
    }
}

fn hold(r: pb::Reservation) -> Hold {
    Hold { id: r.id, amount: r.amount, status: r.status, committed_amount: r.committed_amount }
}

/// A call that died with the connection (subscriptions restarting, a reset) is `Unavailable`
/// (503 at the gateway), never `Internal`.
fn upstream(s: tonic::Status) -> Error {
    nexus_platform::grpc::upstream_error(&s)
}

#[async_trait::async_trait]
impl Credits for GrpcCredits {
    async fn reserve(
        &self,
        action: &str,
        quantity: i64,
        credits: i64,
        key: &str,
        ttl: Duration,
    ) -> Result<Hold, Error> {
        let req = pb::ReserveRequest {
            action: action.to_owned(),
            quantity,
            credits,
            idempotency_key: key.to_owned(),
            ttl_seconds: u32::try_from(ttl.as_secs()).unwrap_or(600),
        };
        self.client().reserve(req).await.map(|r| hold(r.into_inner())).map_err(upstream)
    }

    async fn limit(&self, feature: &str) -> Result<i64, Error> {
        let req = pb::EntitlementRequest { feature: feature.to_owned() };
        self.client().check_entitlement(req).await.map(|r| r.into_inner().limit).map_err(upstream)
    }
}

/// How a metered action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Charge this many credits of the hold (at most its amount); the rest goes back.
    Charge(i64),
    /// Nothing was produced: give the whole hold back.
    Release,
}

/// Writes the settlement of `hold` into the outbox of the transaction `conn`, which must be the
/// one that stores the action's result (or, for a failure, one of its own). `job` names the
/// action for the logs (`content.generation:gen_…`).
pub async fn settle_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    hold: &Hold,
    job: &str,
    outcome: Outcome,
) -> Result<(), Error> {
    let (succeeded, credits) = match outcome {
        // Zero credits of a hold is the same as giving it back (and `credits: 0` would mean
        // "all of it" on the wire).
        Outcome::Charge(n) if n > 0 => (true, n.min(hold.amount)),
        Outcome::Charge(_) | Outcome::Release => (false, 0),
    };
    enqueue(
        conn,
        JOB_FINISHED,
        Some(tenant),
        &MeteredJobFinished {
            workspace_id: tenant.to_string(),
            reservation_id: hold.id.clone(),
            succeeded,
            credits,
            job: job.to_owned(),
        },
    )
    .await
    .map_err(nexus_platform::db::error)?;
    Ok(())
}

/// Subject of the settlement events subscriptions consumes (`subscriptions-settlement-content`).
pub const JOB_FINISHED: &str = "nexus.content.job.finished";
