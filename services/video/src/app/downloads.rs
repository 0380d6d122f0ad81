//! Signed, expiring download links to finished videos, the files they open (whole or a byte
//! range, streamed), and deletion of videos with their files.

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};

use super::App;
use super::storage::Opened;
use crate::domain::links::ByteRange;
use crate::domain::{VideoId, parse_video_id};
use crate::repo::videos as repo;

/// A link to a finished video's file.
#[derive(Debug, Clone)]
pub struct Link {
    pub url: String,
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// An opened download: the file's bytes (or a range of them) and its name.
pub use nexus_platform::storage::Download;

fn invalid_link() -> Error {
    Error::new(ErrorKind::PermissionDenied, "video.download_link_invalid")
}

impl App {
    #[tracing::instrument(skip_all, fields(video = %id))]
    pub async fn create_download_link(&self, p: &Principal, id: &str) -> Result<Link, Error> {
        p.require(Action::Read)?;
        let id = parse_video_id(id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let file = repo::file_of(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        let Some((status, key, _)) = file else { return Err(Error::not_found("video.not_found")) };
        if status != "done" || key.is_none() {
            return Err(Error::new(ErrorKind::FailedPrecondition, "video.not_ready").with_param("status", status));
        }
        let ttl = chrono::Duration::from_std(self.cfg.downloads.ttl).map_err(Error::internal)?;
        let expires_at = Utc::now() + ttl;
        let token = self.links.sign_id(&id.to_string(), expires_at);
        let url = format!("{}/{token}", self.cfg.downloads.base_url.trim_end_matches('/'));
        Ok(Link { url, token, expires_at })
    }

    /// Opens the file a signed link names. Every refusal of the link itself (malformed,
    /// tampered, expired, unknown key, video gone) is the same error.
    #[tracing::instrument(skip_all)]
    pub async fn open_download(&self, token: &str, range: Option<ByteRange>) -> Result<Download, Error> {
        let id = self.links.verify_id(token, Utc::now()).map_err(|why| {
            tracing::info!(?why, "download link refused");
            invalid_link()
        })?;
        if let Ok(avatar) = crate::domain::avatars::AvatarId::parse(&id) {
            return self.open_avatar(avatar, range).await;
        }
        if let Some(video) = crate::domain::links::parse_thumbnail_id(&id) {
            return self.open_thumbnail(video, range).await;
        }
        let video = VideoId::parse(&id).map_err(|_| invalid_link())?.as_uuid();
        let mut tx = db::system(&self.pool).await?;
        let file = repo::file_of(&mut tx, video).await?;
        db::commit(tx).await?;
        let Some((status, Some(key), _)) = file else { return Err(invalid_link()) };
        if status != "done" {
            return Err(invalid_link());
        }
        let opened = self.open_stored(&key, range).await?;
        Ok(Download {
            opened,
            partial: range.is_some(),
            filename: format!("{}.mp4", VideoId::from_uuid(video)),
            content_type: "video/mp4".into(),
        })
    }

    /// A signed link to a done video's thumbnail (empty when it has none), valid as long as a
    /// download link.
    pub fn thumbnail_url(&self, v: &crate::domain::Video) -> String {
        if v.status != "done" || v.thumbnail_key.is_none() {
            return String::new();
        }
        let ttl = chrono::Duration::from_std(self.cfg.downloads.ttl).unwrap_or(chrono::Duration::minutes(15));
        let token = self.links.sign_id(&crate::domain::links::thumbnail_id(v.id), Utc::now() + ttl);
        format!("{}/{token}", self.cfg.downloads.thumbnail_base_url.trim_end_matches('/'))
    }

    /// A done video's thumbnail behind a signed link.
    async fn open_thumbnail(&self, video: uuid::Uuid, range: Option<ByteRange>) -> Result<Download, Error> {
        let mut tx = db::system(&self.pool).await?;
        let found = repo::thumbnail_of(&mut tx, video).await?;
        db::commit(tx).await?;
        let Some((status, Some(key))) = found else { return Err(invalid_link()) };
        if status != "done" {
            return Err(invalid_link());
        }
        let opened = self.open_stored(&key, range).await?;
        Ok(Download {
            opened,
            partial: range.is_some(),
            filename: format!("{}.jpg", VideoId::from_uuid(video)),
            content_type: "image/jpeg".into(),
        })
    }

    /// A stored object for a signed link: gone is the link's problem, a range outside the file
    /// the caller's.
    async fn open_stored(&self, key: &str, range: Option<ByteRange>) -> Result<Opened, Error> {
        self.storage.open_download(key, range, invalid_link, "video.range_not_satisfiable").await
    }

    /// An uploaded avatar behind a signed link (what a remote renderer fetches).
    async fn open_avatar(
        &self,
        id: crate::domain::avatars::AvatarId,
        range: Option<ByteRange>,
    ) -> Result<Download, Error> {
        let row = self.avatar_row(id.as_uuid()).await?.ok_or_else(invalid_link)?;
        let opened = self.open_stored(&row.storage_key, range).await?;
        let ext = if row.content_type == "image/png" { "png" } else { "jpg" };
        Ok(Download {
            opened,
            partial: range.is_some(),
            filename: format!("{id}.{ext}"),
            content_type: row.content_type,
        })
    }

    /// Deletes a finished video and its file. A video still being made must be canceled first.
    #[tracing::instrument(skip_all, fields(video = %id))]
    pub async fn delete_video(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let id = parse_video_id(id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let Some((status, _, _)) = repo::file_of(&mut tx, id.as_uuid()).await? else {
            return Err(Error::not_found("video.not_found"));
        };
        let Some(key) = repo::delete_finished(&mut tx, id.as_uuid()).await? else {
            return Err(Error::new(ErrorKind::FailedPrecondition, "video.not_deletable").with_param("status", status));
        };
        db::commit(tx).await?;
        let (file, thumbnail) = key;
        for key in file.into_iter().chain(thumbnail) {
            if let Err(e) = self.storage.delete(&key).await {
                // The row is gone, so no link can reach the file any more; log it for cleanup.
                tracing::warn!(error = %e, key, "deleting a video's file failed");
            }
        }
        Ok(())
    }
}
