//! Channels to the services behind the gateway. Lazy: the gateway starts and answers (with 503
//! for the affected routes) while a service is down or not yet deployed.

use std::time::Duration;

use nexus_platform::grpc::{ContextChannel, context_channel};

use crate::config::ServicesConfig;

/// How long an upload may take from its first byte to the service's answer: the time the gateway
/// gives the client to send the file, plus a margin for the service to finish. Only a last
/// resort: the upload route ends slower uploads itself, in a way the service takes as a failure
/// (a call cut by its deadline would look to the service like a file that ended).
pub const UPLOAD_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// How long a live stream (the WhatsApp inbox feed) runs before it ends and the client
/// reconnects, as event-stream clients do by themselves.
pub const STREAM_DEADLINE: Duration = Duration::from_secs(60 * 60);

#[derive(Clone)]
pub struct Upstreams {
    pub auth: ContextChannel,
    pub subscriptions: ContextChannel,
    pub content: ContextChannel,
    pub video: ContextChannel,
    pub messaging: ContextChannel,
    /// Messaging again, for CSV uploads: a call lasts as long as the client takes to send the
    /// file, so it has [`UPLOAD_DEADLINE`] instead of the usual per-call deadline.
    pub messaging_uploads: ContextChannel,
    /// Messaging for live streams, with [`STREAM_DEADLINE`].
    pub messaging_streams: ContextChannel,
    pub ads: ContextChannel,
    /// Ads again, for media uploads, with [`UPLOAD_DEADLINE`] (as `messaging_uploads`).
    pub ads_uploads: ContextChannel,
    pub commerce: ContextChannel,
    pub analytics: ContextChannel,
}

impl Upstreams {
    pub fn new(cfg: &ServicesConfig, deadline: Duration) -> anyhow::Result<Self> {
        let ch = |name: &str, url: &str| {
            context_channel(url, deadline).map_err(|e| anyhow::anyhow!("services.{name}: {url:?}: {e}"))
        };
        Ok(Self {
            auth: ch("auth", &cfg.auth)?,
            subscriptions: ch("subscriptions", &cfg.subscriptions)?,
            content: ch("content", &cfg.content)?,
            video: ch("video", &cfg.video)?,
            messaging: ch("messaging", &cfg.messaging)?,
            messaging_uploads: context_channel(&cfg.messaging, UPLOAD_DEADLINE)
                .map_err(|e| anyhow::anyhow!("services.messaging: {:?}: {e}", cfg.messaging))?,
            messaging_streams: context_channel(&cfg.messaging, STREAM_DEADLINE)
                .map_err(|e| anyhow::anyhow!("services.messaging: {:?}: {e}", cfg.messaging))?,
            ads: ch("ads", &cfg.ads)?,
            ads_uploads: context_channel(&cfg.ads, UPLOAD_DEADLINE)
                .map_err(|e| anyhow::anyhow!("services.ads: {:?}: {e}", cfg.ads))?,
            commerce: ch("commerce", &cfg.commerce)?,
            analytics: ch("analytics", &cfg.analytics)?,
        })
    }

    /// The service that owns a provider's webhooks.
    pub fn webhook_owner(&self, provider: &str) -> Option<&ContextChannel> {
        Some(match provider {
            "stripe" => &self.subscriptions,
            "replicate" | "runware" => &self.content,
            "d-id" | "elevenlabs" => &self.video,
            "whatsapp" => &self.messaging,
            "meta" | "instagram" | "tiktok" | "youtube" => &self.ads,
            "shopify" | "cj" | "aliexpress" => &self.commerce,
            _ => return None,
        })
    }
}

/// Providers whose webhooks the gateway accepts.
pub const WEBHOOK_PROVIDERS: &[&str] = &[
    "stripe",
    "replicate",
    "runware",
    "d-id",
    "elevenlabs",
    "whatsapp",
    "meta",
    "instagram",
    "tiktok",
    "youtube",
    "shopify",
    "cj",
    "aliexpress",
];
