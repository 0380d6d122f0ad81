//! Credits and plan limits, held by the subscriptions service, as every metered service asks for
//! them. Calls go out with the caller's token (the forwarded request context), so the workspace
//! charged is the caller's own. Settling never goes through here: it goes through the service's
//! outbox (`MeteredJobFinished`), so it happens once however the job ends.

use std::time::Duration;

use nexus_kernel::Error;
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;

use crate::grpc::{ContextChannel, context_channel, upstream_error};

/// A hold on credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub amount: i64,
    /// "held" for a fresh hold; "committed" (or "released") when the key was used and settled.
    pub status: String,
    pub committed_amount: i64,
}

#[async_trait::async_trait]
pub trait Credits: Send + Sync + 'static {
    /// Holds the price of `action` × `quantity` under `key` (the same key never holds twice), or
    /// `credits` when given (an estimate, as for tokens); for `ttl` at most.
    async fn reserve(&self, action: &str, quantity: i64, credits: i64, key: &str, ttl: Duration)
    -> Result<Hold, Error>;
    /// The plan's limit of `feature` (pages, ai_agents, whatsapp_numbers, ...).
    async fn limit(&self, feature: &str) -> Result<i64, Error>;
    /// Counts one use of a monthly `feature` under `key` (the same key counts once), refused
    /// when the month's allowance is spent.
    async fn use_feature(&self, feature: &str, key: &str) -> Result<(), Error>;
}

/// [`Credits`] over gRPC to the subscriptions service (`services.subscriptions`).
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

/// A call that died with the connection (subscriptions restarting, a reset) is `Unavailable`
/// (503 at the gateway), never `Internal`.
fn upstream(s: tonic::Status) -> Error {
    upstream_error(&s)
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
            ttl_seconds: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX),
        };
        let r = self.client().reserve(req).await.map_err(upstream)?.into_inner();
        Ok(Hold { id: r.id, amount: r.amount, status: r.status, committed_amount: r.committed_amount })
    }

    async fn limit(&self, feature: &str) -> Result<i64, Error> {
        let req = pb::EntitlementRequest { feature: feature.to_owned() };
        self.client().check_entitlement(req).await.map(|r| r.into_inner().limit).map_err(upstream)
    }

    async fn use_feature(&self, feature: &str, key: &str) -> Result<(), Error> {
        let req = pb::UseEntitlementRequest { feature: feature.to_owned(), idempotency_key: key.to_owned() };
        self.client().use_entitlement(req).await.map_err(upstream)?;
        Ok(())
    }
}
