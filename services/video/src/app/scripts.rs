//! Scripts written by the content service: a request with a topic instead of a script asks
//! content's generation RPC, as this service (a service token for the caller's workspace, from
//! `ServiceTokens`), for a short spoken piece in the video's language. Content charges the
//! workspace for it as it charges any generation; the video's idempotency key keys the
//! generation too, so a retried request neither writes nor charges twice.

use std::sync::Arc;
use std::time::Duration;

use nexus_kernel::{Error, ErrorKind, Locale, WorkspaceId};
use nexus_platform::grpc::{ContextChannel, context_channel, upstream_error};
use nexus_platform::identity::ServiceTokens;
use nexus_proto::nexus::content::v1 as cpb;
use nexus_proto::nexus::content::v1::content_client::ContentClient;

use crate::domain::Aspect;

/// What the script is asked to be.
pub struct ScriptRequest<'a> {
    pub topic: &'a str,
    pub brief: &'a str,
    pub language: Locale,
    pub aspect: Aspect,
    /// The video's idempotency key.
    pub key: &'a str,
}

pub struct ScriptWriter {
    tokens: Arc<ServiceTokens>,
    channel: ContextChannel,
}

impl ScriptWriter {
    pub fn new(tokens: Arc<ServiceTokens>, content_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let channel = context_channel(content_url, timeout)
            .map_err(|e| anyhow::anyhow!("services.content: {content_url:?}: {e}"))?;
        Ok(Self { tokens, channel })
    }

    /// The script's text (the first variant's body), at most `max_chars` characters.
    pub async fn write(
        &self,
        workspace: WorkspaceId,
        req: ScriptRequest<'_>,
        max_chars: usize,
    ) -> Result<String, Error> {
        // A social post for the platform the video's shape suits: short, spoken, one call to action.
        let platform = if req.aspect == Aspect::Portrait { "tiktok" } else { "youtube" };
        let generate = cpb::GenerateRequest {
            kind: "social_post".into(),
            platform: platform.into(),
            language: req.language.code().into(),
            product: req.topic.into(),
            description: req.brief.into(),
            variants: 1,
            idempotency_key: format!("video-script:{}", req.key),
            ..Default::default()
        };
        let ctx = self.tokens.context(Some(workspace)).await.map_err(unavailable)?;
        let generation = ctx
            .scope(ContentClient::new(self.channel.clone()).generate(generate))
            .await
            .map_err(|s| upstream_error(&s))?
            .into_inner();
        let body = generation.variants.into_iter().map(|v| v.body).find(|b| !b.trim().is_empty()).unwrap_or_default();
        let script: String = body.trim().chars().take(max_chars).collect();
        if script.is_empty() {
            return Err(Error::new(ErrorKind::Unavailable, "video.script_unavailable"));
        }
        Ok(script)
    }
}

/// Auth not answering a service token is a passing problem of ours, not the caller's.
fn unavailable(e: Error) -> Error {
    Error::new(ErrorKind::Unavailable, "video.script_unavailable").with_source(e)
}
