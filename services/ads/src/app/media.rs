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
use crate::domain::media::{Limits, MediaItem, Probe, check_name, too_large};
use crate::domain::posts::Media;
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
        let limits = self.media_limits();
        let id = Uuid::now_v7();
        let key = storage_key(p.workspace_id, id);
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
            created_by: p.user_id.as_uuid(),
            created_at: Utc::now(),
        };
        let saved = async {
            let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
            let saved = repo::media::insert(&mut tx, p.workspace_id, &item).await?;
            db::commit(tx).await?;
            Ok::<_, Error>(saved)
        }
        .await;
        if saved.is_err() {
            self.drop_stored(&key).await;
        }
        saved
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

    async fn live_media(&self, tenant: TenantId, raw_id: &str) -> Result<MediaItem, Error> {
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
        let item = self.live_media(tenant, id).await?;
        Ok(Media {
            url: String::new(),
            kind: item.facts.kind,
            content_type: item.facts.content_type,
            bytes: item.bytes,
            width: item.facts.width,
            height: item.facts.height,
            duration_secs: item.facts.duration_secs,
            video_id: None,
            media_id: Some(MediaId::from_uuid(item.id).to_string()),
        })
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
