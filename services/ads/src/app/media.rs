//! The media library of social posts: uploads streamed into storage while their bytes are
//! measured (never trusting the client's word), listing, soft deletion (refused while a post
//! that may still go out names the item), and the signed, expiring public links the platforms
//! fetch items by.

use bytes::Bytes;
use chrono::Utc;
use futures::{Stream, StreamExt as _};
use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use nexus_platform::links::ByteRange;
use nexus_platform::storage::Download;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{App, id_of, require};
use crate::domain::MediaId;
use crate::domain::media::{Limits, MAX_NAME_CHARS, MediaItem, Probe, check_name, too_large};
use crate::domain::posts::{Media, MediaKind};
use crate::repo;

fn media_id(raw: &str) -> Result<Uuid, Error> {
    id_of::<MediaId>(raw.trim(), "ads.media_not_found", MediaId::as_uuid)
}

/// Every refusal of a link itself (malformed, tampered, expired, unknown key, item gone) is the
/// same answer, which says nothing of what exists.
fn invalid_link() -> Error {
    Error::not_found("ads.media_link_invalid")
}

/// Where an item's bytes are kept: built from ids only.
fn storage_key(tenant: TenantId, id: Uuid) -> String {
    format!("post-media/{}/{}", tenant.as_uuid().simple(), id.simple())
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/quicktime" => "mov",
        _ => "mp4",
    }
}

/// A library item as a post's media: its facts and `media_id` (url left empty).
fn post_media(item: MediaItem) -> Media {
    Media {
        kind: item.facts.kind,
        content_type: item.facts.content_type,
        bytes: item.bytes,
        width: item.facts.width,
        height: item.facts.height,
        duration_secs: item.facts.duration_secs,
        media_id: Some(MediaId::from_uuid(item.id).to_string()),
        ..Media::default()
    }
}

/// An imported image's name: its prompt on one line, cut to the name limit (its id when the
/// prompt leaves nothing).
fn image_name(prompt: &str, image_id: &str) -> String {
    let line: String = prompt.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    let name: String = line.chars().take(MAX_NAME_CHARS).collect();
    if name.is_empty() { image_id.chars().take(MAX_NAME_CHARS).collect() } else { name }
}

/// What an upload's bytes showed as they passed.
struct Measuring {
    probe: Probe,
    hash: Sha256,
    refusal: Option<Error>,
}

impl App {
    fn media_limits(&self) -> Limits {
        Limits { max_image_bytes: self.cfg.media.max_image_bytes, max_video_bytes: self.cfg.media.max_video_bytes }
    }

    /// A signed public URL of an item, valid for `media.link_ttl`.
    pub fn media_url(&self, id: Uuid) -> Result<String, Error> {
        let ttl = chrono::Duration::from_std(self.cfg.media.link_ttl).map_err(Error::internal)?;
        let token = self.media_links.sign_id(&MediaId::from_uuid(id).to_string(), Utc::now() + ttl);
        Ok(format!("{}/{token}", self.cfg.media.base_url.trim_end_matches('/')))
    }

    /// Stores an upload while measuring it: its type is read from its first bytes (and must be
    /// the one declared), its size is held to its kind's limit as it arrives, and its picture
    /// size and duration come from the file itself. Nothing is kept of a refused upload.
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn upload_media<S>(
        &self,
        p: &Principal,
        name: &str,
        content_type: &str,
        data: S,
    ) -> Result<MediaItem, Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send,
    {
        require(p, Action::Write)?;
        let name = check_name(name)?;
        self.store_media(p.workspace_id, p.user_id.as_uuid(), name, content_type, data, None).await
    }

    /// Stores a file while measuring it (see [`App::upload_media`]). `source_image`: the content
    /// image it is imported from; when a live item of that image is already there (a concurrent
    /// import won), that item is the answer and this copy is dropped.
    async fn store_media<S>(
        &self,
        tenant: TenantId,
        created_by: Uuid,
        name: String,
        content_type: &str,
        data: S,
        source_image: Option<&str>,
    ) -> Result<MediaItem, Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send,
    {
        let limits = self.media_limits();
        let id = Uuid::now_v7();
        let key = storage_key(tenant, id);
        let mut m = Measuring { probe: Probe::new(content_type, limits), hash: Sha256::new(), refusal: None };
        let body = data.map(|chunk| {
            let checked = chunk.and_then(|b| {
                m.probe.push(&b)?;
                m.hash.update(&b);
                Ok(b)
            });
            // The store sees only that the stream failed; the reason stays here.
            checked.map_err(|e| {
                m.refusal = Some(e);
                "upload refused"
            })
        });
        let ceiling = limits.max_image_bytes.max(limits.max_video_bytes);
        let stored = self.storage.put_stream(&key, body, ceiling).await;
        let bytes = match stored {
            Ok(n) => n,
            Err(e) => {
                if let Some(refused) = m.refusal {
                    return Err(refused);
                }
                if e.too_large {
                    return Err(too_large(ceiling));
                }
                tracing::warn!(reason = %e.reason, "storing an upload failed");
                return Err(Error::unavailable("service.unavailable"));
            }
        };
        let facts = match m.probe.finish() {
            Ok(f) => f,
            Err(e) => {
                self.drop_stored(&key).await;
                return Err(e);
            }
        };
        let item = MediaItem {
            id,
            name,
            facts,
            bytes,
            sha256: hex::encode(m.hash.finalize()),
            storage_key: key.clone(),
            created_by,
            created_at: Utc::now(),
        };
        let saved = async {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let mut saved = repo::media::insert(&mut tx, tenant, &item, source_image).await?;
            if let (None, Some(image)) = (&saved, source_image) {
                saved = repo::media::by_source_image(&mut tx, image).await?;
            }
            db::commit(tx).await?;
            // Lost to an import that was deleted at once: rare enough to ask for a retry.
            saved.ok_or_else(|| Error::unavailable("service.unavailable"))
        }
        .await;
        if !saved.as_ref().is_ok_and(|s| s.id == id) {
            self.drop_stored(&key).await;
        }
        saved
    }

    /// A finished image of the content service as post media. With `by` (who writes the post)
    /// it is imported into the library once per image (the item imported before is reused; its
    /// name is the image's prompt) and named by its `media_id` from then on; without (a dry run)
    /// it is only measured, nothing is stored. A file the library does not take (a hero's SVG)
    /// keeps its reference and content's word of what it is, which the platforms' check refuses
    /// by its type.
    pub(crate) async fn image_facts(&self, tenant: TenantId, image_id: &str, by: Option<Uuid>) -> Result<Media, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let imported = repo::media::by_source_image(&mut tx, image_id).await?;
        db::commit(tx).await?;
        if let Some(item) = imported {
            return Ok(post_media(item));
        }
        let images = self.images.as_ref().ok_or_else(|| Error::unavailable("service.unavailable"))?;
        let file = images.read(tenant, image_id).await?;
        let mut probe = Probe::new(&file.content_type, self.media_limits());
        let facts = match probe.push(&file.data).and_then(|()| probe.finish()) {
            Ok(facts) => facts,
            Err(e) if e.kind() == ErrorKind::UnsupportedMediaType => {
                return Ok(Media {
                    image_id: Some(image_id.to_owned()),
                    kind: MediaKind::Image,
                    content_type: file.content_type,
                    bytes: file.data.len() as u64,
                    width: file.width,
                    height: file.height,
                    ..Media::default()
                });
            }
            Err(e) => return Err(e),
        };
        let Some(by) = by else {
            return Ok(Media {
                image_id: Some(image_id.to_owned()),
                kind: facts.kind,
                content_type: facts.content_type,
                bytes: file.data.len() as u64,
                width: facts.width,
                height: facts.height,
                ..Media::default()
            });
        };
        let name = check_name(&image_name(&file.prompt, image_id))?;
        let data = futures::stream::iter([Ok(Bytes::from(file.data))]);
        let item = self.store_media(tenant, by, name, &file.content_type, data, Some(image_id)).await?;
        Ok(post_media(item))
    }

    async fn drop_stored(&self, key: &str) {
        if let Err(e) = self.storage.delete(key).await {
            tracing::warn!(error = %e, key, "deleting a refused upload failed");
        }
    }

    pub async fn media_item(&self, p: &Principal, raw_id: &str) -> Result<MediaItem, Error> {
        require(p, Action::Read)?;
        self.live_media(p.workspace_id, raw_id).await
    }

    pub(crate) async fn live_media(&self, tenant: TenantId, raw_id: &str) -> Result<MediaItem, Error> {
        let id = media_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let item = repo::media::get(&mut tx, id, false).await?;
        db::commit(tx).await?;
        item.ok_or_else(|| Error::not_found("ads.media_not_found"))
    }

    pub async fn list_media(&self, p: &Principal, page: &PageRequest) -> Result<Page<MediaItem>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::media::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }

    /// Deletes an item (its row stays for the posts that went out with it; its file goes). A
    /// draft, a post waiting for approval or a scheduled one still to publish that names it
    /// keeps it: `ads.media_in_use`.
    #[tracing::instrument(skip_all, fields(media = %raw_id))]
    pub async fn delete_media(&self, p: &Principal, raw_id: &str) -> Result<(), Error> {
        require(p, Action::Write)?;
        let id = media_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        // Locked: a post naming it checks it is there in a transaction of its own.
        if repo::media::get(&mut tx, id, true).await?.is_none() {
            return Err(Error::not_found("ads.media_not_found"));
        }
        if repo::media::in_use(&mut tx, &MediaId::from_uuid(id).to_string()).await? {
            return Err(Error::new(ErrorKind::Conflict, "ads.media_in_use"));
        }
        let key =
            repo::media::soft_delete(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.media_not_found"))?;
        db::commit(tx).await?;
        if let Err(e) = self.storage.delete(&key).await {
            // The row is marked deleted, so no link reaches the file any more; log it for cleanup.
            tracing::warn!(error = %e, key, "deleting a media file failed");
        }
        Ok(())
    }

    /// The stored item's facts as a post's media (url left empty), for checking a post's limits
    /// at scheduling. Not found / deleted / other tenant -> Error::not_found("ads.media_not_found").
    pub async fn media_facts(&self, tenant: TenantId, id: &str) -> Result<Media, Error> {
        Ok(post_media(self.live_media(tenant, id).await?))
    }

    /// A fresh signed public URL of the item, valid for `media.link_ttl` (publish time).
    pub async fn media_link(&self, tenant: TenantId, id: &str) -> Result<String, Error> {
        let item = self.live_media(tenant, id).await?;
        self.media_url(item.id)
    }

    /// Opens the item a signed link names, whole or a byte range of it.
    #[tracing::instrument(skip_all)]
    pub async fn open_media(&self, token: &str, range: Option<ByteRange>) -> Result<Download, Error> {
        let id = self.media_links.verify_id(token, Utc::now()).map_err(|why| {
            tracing::info!(?why, "media link refused");
            invalid_link()
        })?;
        let id = MediaId::parse(&id).map_err(|_| invalid_link())?;
        // The link is the permission: read across workspaces.
        let mut tx = db::system(&self.pool).await?;
        let item = repo::media::get(&mut tx, id.as_uuid(), false).await?;
        db::commit(tx).await?;
        let item = item.ok_or_else(invalid_link)?;
        let opened = self
            .storage
            .open_download(&item.storage_key, range, invalid_link, "ads.media_range_not_satisfiable")
            .await?;
        Ok(Download {
            opened,
            partial: range.is_some(),
            filename: format!("{id}.{}", extension(&item.facts.content_type)),
            content_type: item.facts.content_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_images_are_named_after_their_prompt_on_one_line_within_the_limit() {
        assert_eq!(image_name("  Winter coats\n\ton a\u{7}street ", "img_1"), "Winter coats on a street");
        let long = "é".repeat(MAX_NAME_CHARS + 50);
        assert_eq!(image_name(&long, "img_1").chars().count(), MAX_NAME_CHARS);
        assert!(check_name(&image_name(&long, "img_1")).is_ok());
        assert_eq!(image_name(" \n ", "img_1"), "img_1");
    }
}
