//! Media a post names instead of a URL: a finished video of the video service (`video_id`), an
//! upload of the workspace's media library (`media_id`) or a finished image of the content
//! service (`image_id`, imported into the library when the post is written and named by its
//! `media_id` from then on). Their facts are read when the post is written, so the platforms'
//! limits are checked against what the file really is; their URL is a fresh signed link made just
//! before the platform is asked to fetch it, so a post scheduled weeks ahead never carries a link
//! that expired.

use std::collections::HashMap;
use std::sync::Arc;

use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::grpc::{ContextChannel, upstream_error};
use nexus_platform::identity::ServiceTokens;
use nexus_proto::nexus::content::v1 as cpb;
use nexus_proto::nexus::video::v1 as vpb;
use uuid::Uuid;

use super::App;
use crate::domain::posts::{Media, MediaKind, MediaSource};

/// The video service as this service sees it (acting for a workspace).
#[async_trait::async_trait]
pub trait Videos: Send + Sync {
    /// A finished video's facts as post media (no URL).
    async fn facts(&self, tenant: TenantId, id: &str) -> Result<Media, Error>;
    /// A fresh download link of the video.
    async fn link(&self, tenant: TenantId, id: &str) -> Result<String, Error>;
    /// A fresh link to the finished video's thumbnail (a JPEG of one frame).
    async fn thumbnail(&self, tenant: TenantId, id: &str) -> Result<String, Error>;
}

/// [`Videos`] over the video service's gRPC API, with this service's own tokens.
pub struct VideoService {
    pub channel: ContextChannel,
    pub tokens: Arc<ServiceTokens>,
}

impl VideoService {
    /// The video as the video service shows it to the workspace.
    async fn record(&self, tenant: TenantId, id: &str) -> Result<vpb::VideoRecord, Error> {
        let mut client = vpb::video_client::VideoClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(tenant)).await?;
        Ok(ctx
            .scope(client.get_video(vpb::GetByIdRequest { id: id.to_owned() }))
            .await
            .map_err(|s| upstream_error(&s))?
            .into_inner())
    }
}

#[async_trait::async_trait]
impl Videos for VideoService {
    async fn facts(&self, tenant: TenantId, id: &str) -> Result<Media, Error> {
        let v = self.record(tenant, id).await?;
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

    async fn thumbnail(&self, tenant: TenantId, id: &str) -> Result<String, Error> {
        let v = self.record(tenant, id).await?;
        if v.thumbnail_url.is_empty() {
            return Err(Error::invalid("ads.post_media_not_ready").with_param("status", v.status));
        }
        Ok(v.thumbnail_url)
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

/// A finished image of the content service: its file and what it was drawn from.
#[derive(Debug, Clone)]
pub struct ImageFile {
    pub content_type: String,
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub prompt: String,
}

/// The content service's images as this service sees them (acting for a workspace).
#[async_trait::async_trait]
pub trait Images: Send + Sync {
    /// A finished image's file. Unknown or another workspace's: not found; not finished:
    /// `ads.post_media_not_ready`.
    async fn read(&self, tenant: TenantId, id: &str) -> Result<ImageFile, Error>;
}

/// [`Images`] over the content service's gRPC API, with this service's own tokens.
pub struct ContentImages {
    pub channel: ContextChannel,
    pub tokens: Arc<ServiceTokens>,
}

#[async_trait::async_trait]
impl Images for ContentImages {
    async fn read(&self, tenant: TenantId, id: &str) -> Result<ImageFile, Error> {
        // An image is up to `images.max_bytes`: past tonic's default 4 MiB message.
        let mut client = nexus_platform::sized!(cpb::content_client::ContentClient::new(self.channel.clone()));
        let ctx = self.tokens.context(Some(tenant)).await?;
        let f = ctx
            .scope(client.read_image(cpb::GetByIdRequest { id: id.to_owned() }))
            .await
            .map_err(|s| match upstream_error(&s) {
                e if e.code() == "content.image_not_ready" => Error::invalid("ads.post_media_not_ready"),
                e => e,
            })?
            .into_inner();
        Ok(ImageFile { content_type: f.content_type, data: f.data, width: f.width, height: f.height, prompt: f.prompt })
    }
}

/// Facts already read while writing one post (its shared media reach every target).
pub type FactsCache = HashMap<(MediaSource, String), Media>;

impl App {
    /// Replaces each referenced item's declared facts with the ones its service holds. A reference
    /// the workspace does not have (or a video or image not finished) is refused naming the field.
    /// A content image is imported into the library for `by` (who writes the post) and named by
    /// its `media_id` from then on; without `by` (a dry run) it is only measured.
    pub(crate) async fn media_facts_of(
        &self,
        tenant: TenantId,
        media: &mut [Media],
        cache: &mut FactsCache,
        by: Option<Uuid>,
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
                        MediaSource::Image => self.image_facts(tenant, id, by).await,
                    };
                    let f = read.map_err(|e| named(e, &field))?;
                    cache.insert(key, f.clone());
                    f
                }
            };
            // An imported image becomes the library item's reference here.
            *m = m.with_facts(&facts);
        }
        Ok(())
    }

    /// The shared media of a post as stored: each content image as the library item (with its
    /// facts) it became while the targets were checked.
    pub(crate) fn imported(media: &[Media], cache: &FactsCache) -> Vec<Media> {
        media
            .iter()
            .map(|m| match m.image_id.as_ref().and_then(|id| cache.get(&(MediaSource::Image, id.clone()))) {
                Some(facts) if m.url.is_empty() => m.with_facts(facts),
                _ => m.clone(),
            })
            .collect()
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
                // Imported when the post was written: a stored post never names one.
                MediaSource::Image => return Err(Error::not_found("ads.post_media_not_found")),
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
        // An imported image's file the library cannot read.
        ErrorKind::InvalidArgument if e.code() == "ads.media_unreadable" => e.with_param("field", field.to_owned()),
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
