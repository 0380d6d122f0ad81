//! Media a post names instead of a URL: a finished video of the video service (`video_id`) or an
//! upload of the workspace's media library (`media_id`). Their facts are read when the post is
//! written, so the platforms' limits are checked against what the file really is; their URL is a
//! fresh signed link made just before the platform is asked to fetch it, so a post scheduled
//! weeks ahead never carries a link that expired.

use std::collections::HashMap;
use std::sync::Arc;

use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::grpc::{ContextChannel, upstream_error};
use nexus_platform::identity::ServiceTokens;
use nexus_proto::nexus::video::v1 as vpb;

use super::App;
use crate::domain::posts::{Media, MediaKind, MediaSource};

/// The video service as this service sees it (acting for a workspace).
#[async_trait::async_trait]
pub trait Videos: Send + Sync {
    /// A finished video's facts as post media (no URL).
    async fn facts(&self, tenant: TenantId, id: &str) -> Result<Media, Error>;
    /// A fresh download link of the video.
    async fn link(&self, tenant: TenantId, id: &str) -> Result<String, Error>;
}

/// [`Videos`] over the video service's gRPC API, with this service's own tokens.
pub struct VideoService {
    pub channel: ContextChannel,
    pub tokens: Arc<ServiceTokens>,
}

#[async_trait::async_trait]
impl Videos for VideoService {
    async fn facts(&self, tenant: TenantId, id: &str) -> Result<Media, Error> {
        let mut client = vpb::video_client::VideoClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(tenant)).await?;
        let v = ctx
            .scope(client.get_video(vpb::GetByIdRequest { id: id.to_owned() }))
            .await
            .map_err(|s| upstream_error(&s))?
            .into_inner();
        if v.status != "done" {
            return Err(Error::invalid("ads.post_media_not_ready").with_param("status", v.status));
        }
        Ok(Media {
            video_id: Some(id.to_owned()),
            kind: MediaKind::Video,
            // The video service renders MP4 (H.264/AAC) only.
            content_type: "video/mp4".into(),
            bytes: u64::try_from(v.size_bytes).unwrap_or(0),
            width: u32::try_from(v.width).unwrap_or(0),
            height: u32::try_from(v.height).unwrap_or(0),
            duration_secs: v.duration_seconds,
            ..Media::default()
        })
    }

    async fn link(&self, tenant: TenantId, id: &str) -> Result<String, Error> {
        let mut client = vpb::video_client::VideoClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(tenant)).await?;
        let link = ctx
            .scope(client.create_download_link(vpb::GetByIdRequest { id: id.to_owned() }))
            .await
            .map_err(|s| upstream_error(&s))?
            .into_inner();
        Ok(link.url)
    }
}

/// Facts already read while writing one post (its shared media reach every target).
pub type FactsCache = HashMap<(MediaSource, String), Media>;

impl App {
    /// Replaces each referenced item's declared facts with the ones its service holds. A reference
    /// the workspace does not have (or a video still rendering) is refused naming the field.
    pub(crate) async fn media_facts_of(
        &self,
        tenant: TenantId,
        media: &mut [Media],
        cache: &mut FactsCache,
    ) -> Result<(), Error> {
        for (i, m) in media.iter_mut().enumerate() {
            // A URL and a reference at once is left for the check to refuse.
            let Some((source, id)) = m.reference().filter(|_| m.url.is_empty()) else { continue };
            let key = (source, id.to_owned());
            let facts = match cache.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let field = format!("media[{i}]");
                    let read = match source {
                        MediaSource::Video => match &self.videos {
                            Some(v) => v.facts(tenant, id).await,
                            None => Err(Error::unavailable("service.unavailable")),
                        },
                        MediaSource::Library => self.media_facts(tenant, id).await,
                    };
                    let f = read.map_err(|e| named(e, &field))?;
                    cache.insert(key, f.clone());
                    f
                }
            };
            *m = m.with_facts(&facts);
        }
        Ok(())
    }

    /// Gives each referenced item a fresh link, just before a platform is asked to fetch it.
    pub(crate) async fn media_links_of(&self, tenant: TenantId, media: &mut [Media]) -> Result<(), Error> {
        for m in media.iter_mut() {
            let Some((source, id)) = m.reference() else { continue };
            let url = match source {
                MediaSource::Video => match &self.videos {
                    Some(v) => v.link(tenant, id).await?,
                    None => return Err(Error::unavailable("service.unavailable")),
                },
                MediaSource::Library => self.media_link(tenant, id).await?,
            };
            m.url = url;
        }
        Ok(())
    }
}

/// A lookup's refusal as the post's error: what is missing is the caller's mistake, named by
/// field; anything else (a service down) stays what it was.
fn named(e: Error, field: &str) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::invalid("ads.post_media_not_found")
            .with_param("field", field.to_owned())
            .with_violation(field.to_owned(), "not_found"),
        ErrorKind::InvalidArgument if e.code() == "ads.post_media_not_ready" => {
            e.with_param("field", field.to_owned()).with_violation(field.to_owned(), "not_ready")
        }
        // A malformed id is, to the video service, a bad argument: to the caller, no such video.
        ErrorKind::InvalidArgument => Error::invalid("ads.post_media_not_found")
            .with_param("field", field.to_owned())
            .with_violation(field.to_owned(), "not_found"),
        _ => e,
    }
}
