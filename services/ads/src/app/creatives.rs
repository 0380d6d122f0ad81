//! A built campaign's creative from the platform's own media: a content image, a media-library
//! item or a finished video, named by id instead of a URL. The item is read from the service
//! that holds it and checked against the platform's limits before the build starts; the
//! build's `media` step then uploads its file into the ad account's library (Meta `adimages` /
//! `advideos`, TikTok upload by file with the file's MD5 as signature) and the creative names
//! what the platform answered. A video goes with a picture shown before it plays: the video
//! service's thumbnail, uploaded as a picture too (TikTok can also take the cover it drew itself).
//!
//! Videos are spooled to a temporary file as they download and streamed from it to the platform,
//! so memory stays bounded whatever their size; pictures (a few MB at most) are held whole.

use bytes::Bytes;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::identity::Principal;
use nexus_providers::marketing::PlatformError;
use nexus_providers::multipart::{FileBody, md5_hex, md5_of_file};
use uuid::Uuid;

use super::App;
use super::ad_platform::AdPlatform;
use crate::domain::builder::{BuildSpec, Uploaded, check_creative};
use crate::domain::connections::Provider;
use crate::domain::posts::{Media, MediaKind, MediaSource};

/// A file ready to send: its body, MD5 and type (a spooled video keeps its temporary file until
/// dropped).
struct Prepared {
    body: FileBody,
    md5: String,
    content_type: String,
    _spool: Option<tempfile::TempPath>,
}

/// A lookup's refusal as the build's: an item this workspace does not have is not found (as
/// anywhere else), named by its field; one not finished is the caller's mistake.
fn named(e: Error, field: &'static str) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::not_found("ads.media_not_found").with_param("field", field),
        ErrorKind::InvalidArgument if e.code() == "ads.post_media_not_ready" => {
            e.with_param("field", field).with_violation(field, "not_ready")
        }
        // A malformed id is, to the service holding such items, a bad argument: to the caller,
        // no such item.
        ErrorKind::InvalidArgument => Error::not_found("ads.media_not_found").with_param("field", field),
        _ => e,
    }
}

/// A failure of ours (reading the file) while the step is under way: the build stays
/// `building` with the step `started`, and a retry looks the upload up first.
fn ours(e: impl std::fmt::Display) -> Error {
    Error::unavailable("service.unavailable").with_source(format!("creative file: {e}"))
}

impl App {
    /// Reads the item `spec` names (if any) from its service and checks it fits `provider`'s
    /// ads; the spec with the measured item. A content image is imported into the media library
    /// (once per image) only after it passed, so a refusal changes nothing.
    pub(crate) async fn creative_of(
        &self,
        p: &Principal,
        mut spec: BuildSpec,
        provider: Provider,
    ) -> Result<BuildSpec, Error> {
        let Some((source, id, field)) = spec.media_ref() else { return Ok(spec) };
        let (tenant, id) = (p.workspace_id, id.to_owned());
        let measured = match source {
            MediaSource::Video => match &self.videos {
                Some(v) => v.facts(tenant, &id).await,
                None => Err(Error::unavailable("service.unavailable")),
            },
            MediaSource::Library => self.media_facts(tenant, &id).await,
            MediaSource::Image => self.image_facts(tenant, &id, None).await,
        }
        .map_err(|e| named(e, field))?;
        check_creative(provider, &spec, &measured, field)?;
        // A library video has no picture to show before it plays; TikTok draws its own cover,
        // Meta needs one given.
        if source == MediaSource::Library && measured.kind == MediaKind::Video && provider == Provider::Meta {
            return Err(Error::invalid("ads.build_invalid")
                .with_param("field", field)
                .with_violation(field, "no_thumbnail"));
        }
        let creative = match source {
            MediaSource::Image => {
                self.image_facts(tenant, &id, Some(p.user_id.as_uuid())).await.map_err(|e| named(e, field))?
            }
            _ => measured,
        };
        spec.creative = Some(creative);
        Ok(spec)
    }

    /// The build's `media` step: the creative's file (and a video's thumbnail) put into the ad
    /// account's library; what the platform answered, encoded. With `look_first` (an earlier
    /// attempt started the step and never learned its outcome) the library is searched for the
    /// file before it is sent again. The outer error is ours (the file could not be read: the
    /// step stays started); the inner one the platform's.
    ///
    /// Rollback leaves uploads alone: Meta's and TikTok's media libraries keep files apart from
    /// the ads that use them, and a picture or video there costs nothing and may serve again.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn upload_creative(
        &self,
        tenant: TenantId,
        platform: AdPlatform<'_>,
        token: &str,
        account: &str,
        build: Uuid,
        name: &str,
        spec: &BuildSpec,
        look_first: bool,
    ) -> Result<Result<String, PlatformError>, Error> {
        let m = spec.creative.as_ref().ok_or_else(|| Error::internal("media step without a creative"))?;
        if let AdPlatform::Local = platform {
            // The sandbox sends nothing anywhere: it records ids made from the build.
            let b = build.simple();
            let up = match m.kind {
                MediaKind::Image => Uploaded { image: format!("local_image_{b}"), video: None },
                MediaKind::Video => {
                    Uploaded { image: format!("local_cover_{b}"), video: Some(format!("local_video_{b}")) }
                }
            };
            return Ok(Ok(up.encode()));
        }
        let file = self.creative_file(tenant, m).await?;
        let main = match self.upload_one(platform, token, account, name, m.kind, &file, look_first).await {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        if m.kind == MediaKind::Image {
            return Ok(Ok(Uploaded { image: main.0, video: None }.encode()));
        }
        let cover = match (m.video_id.as_deref(), platform) {
            (Some(video), _) => {
                let thumb = self.thumbnail_file(tenant, video).await?;
                match self.upload_one(platform, token, account, name, MediaKind::Image, &thumb, look_first).await {
                    Ok((id, _)) => id,
                    Err(e) => return Ok(Err(e)),
                }
            }
            // A library video on TikTok: the cover TikTok drew from it, fetched by TikTok itself.
            (None, AdPlatform::TikTok(t)) if !main.1.is_empty() => {
                match t.upload_image_by_url(token, account, &main.1, &format!("{name}.cover")).await {
                    Ok(id) => id,
                    Err(e) => return Ok(Err(e)),
                }
            }
            _ => return Err(Error::internal("a video creative without a cover")),
        };
        Ok(Ok(Uploaded { image: cover, video: Some(main.0) }.encode()))
    }

    /// One file into the library (or found there): its id (Meta's picture hash) and, for a
    /// TikTok video, the cover TikTok drew.
    #[allow(clippy::too_many_arguments)]
    async fn upload_one(
        &self,
        platform: AdPlatform<'_>,
        token: &str,
        account: &str,
        name: &str,
        kind: MediaKind,
        file: &Prepared,
        look_first: bool,
    ) -> Result<(String, String), PlatformError> {
        match (platform, kind) {
            (AdPlatform::Meta(meta), MediaKind::Image) => {
                // Meta's picture hash is the file's MD5: a picture already there is not sent again.
                if look_first && meta.has_image(token, account, &file.md5).await? {
                    return Ok((file.md5.clone(), String::new()));
                }
                let FileBody::Bytes(data) = &file.body else {
                    return Err(PlatformError::Decode { platform: "Meta", message: "a picture on disk".into() });
                };
                Ok((meta.upload_image(token, account, name, data).await?, String::new()))
            }
            (AdPlatform::Meta(meta), MediaKind::Video) => {
                let kind = nexus_providers::meta::MetaObject::Video;
                if look_first && let Some(id) = meta.find_by_name(token, account, kind, name).await? {
                    return Ok((id, String::new()));
                }
                Ok((
                    meta.upload_video(token, account, name, &file.content_type, file.body.clone()).await?,
                    String::new(),
                ))
            }
            (AdPlatform::TikTok(t), MediaKind::Image) => {
                if look_first && let Some(id) = t.find_file(token, account, "image", &file.md5).await? {
                    return Ok((id, String::new()));
                }
                let FileBody::Bytes(data) = &file.body else {
                    return Err(PlatformError::Decode { platform: "TikTok", message: "a picture on disk".into() });
                };
                let file_name = format!("{name}.{}", extension(&file.content_type));
                Ok((
                    t.upload_image_file(token, account, &file_name, &file.content_type, data.clone()).await?,
                    String::new(),
                ))
            }
            (AdPlatform::TikTok(t), MediaKind::Video) => {
                if look_first && let Some(id) = t.find_file(token, account, "video", &file.md5).await? {
                    return Ok((id, String::new()));
                }
                let file_name = format!("{name}.{}", extension(&file.content_type));
                t.upload_video_file(token, account, &file_name, &file.content_type, file.body.clone(), &file.md5).await
            }
            (AdPlatform::Local, _) => Ok((String::new(), String::new())),
        }
    }

    /// The creative's file: a library item read from storage (a video spooled to disk), or a
    /// finished video downloaded through the safe outbound client from a fresh link.
    async fn creative_file(&self, tenant: TenantId, m: &Media) -> Result<Prepared, Error> {
        match m.reference() {
            Some((MediaSource::Library, id)) => {
                let item = self.live_media(tenant, id).await?;
                let content_type = item.facts.content_type.clone();
                if item.facts.kind == MediaKind::Image {
                    let data = self.storage.read_all(&item.storage_key).await.map_err(ours)?;
                    return Ok(Prepared {
                        md5: md5_hex(&data),
                        body: FileBody::Bytes(data),
                        content_type,
                        _spool: None,
                    });
                }
                let spool = tempfile::NamedTempFile::new().map_err(ours)?.into_temp_path();
                let len = self.storage.download_to(&item.storage_key, &spool).await.map_err(ours)?;
                let md5 = md5_of_file(&spool).await.map_err(ours)?;
                Ok(Prepared {
                    body: FileBody::Path { path: spool.to_path_buf(), len },
                    md5,
                    content_type,
                    _spool: Some(spool),
                })
            }
            Some((MediaSource::Video, id)) => {
                let videos = self.videos.as_ref().ok_or_else(|| Error::unavailable("service.unavailable"))?;
                let link = videos.link(tenant, id).await?;
                let spool = tempfile::NamedTempFile::new().map_err(ours)?.into_temp_path();
                let mut limits = self.outbound.limits();
                limits.max_bytes = m.bytes.max(1);
                let (status, len) = self.outbound.download_to_file(&link, limits, &spool).await?;
                if !status.is_success() || len != m.bytes {
                    return Err(ours(format!("the video answered {status} with {len} of {} bytes", m.bytes)));
                }
                let md5 = md5_of_file(&spool).await.map_err(ours)?;
                let body = FileBody::Path { path: spool.to_path_buf(), len };
                Ok(Prepared { body, md5, content_type: m.content_type.clone(), _spool: Some(spool) })
            }
            // A content image was imported into the library when the build was checked.
            _ => Err(Error::internal("a creative without a file")),
        }
    }

    /// A finished video's thumbnail (a JPEG of one frame), through the safe outbound client.
    async fn thumbnail_file(&self, tenant: TenantId, video: &str) -> Result<Prepared, Error> {
        let videos = self.videos.as_ref().ok_or_else(|| Error::unavailable("service.unavailable"))?;
        let url = videos.thumbnail(tenant, video).await?;
        let mut limits = self.outbound.limits();
        limits.max_bytes = limits.max_bytes.min(self.cfg.media.max_image_bytes);
        let f = self.outbound.get_with(&url, limits).await?;
        if !f.status.is_success() || f.body.is_empty() {
            return Err(ours(format!("the thumbnail answered {}", f.status)));
        }
        let data: Bytes = f.body;
        Ok(Prepared {
            md5: md5_hex(&data),
            body: FileBody::Bytes(data),
            content_type: "image/jpeg".into(),
            _spool: None,
        })
    }
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "video/quicktime" => "mov",
        _ => "mp4",
    }
}
