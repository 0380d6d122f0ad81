//! Credits and plan limits, held by the subscriptions service. Reserving goes out with the
//! caller's token (the forwarded request context), so the workspace charged is the caller's own.
//! Settling never does: it goes through the outbox (see [`crate::events::settle_in`]).

use std::time::Duration;

use nexus_kernel::Error;
use nexus_platform::grpc::{ContextChannel, context_channel};
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;

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
