//! Uploaded avatars: checked (type by the bytes, size, dimensions), kept in object storage,
//! listed and deleted; handed to a remote renderer as a signed link, to the local one as bytes.

use chrono::Utc;
use nexus_kernel::{Error, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::App;
use crate::domain::avatars::{self, AvatarId};
use crate::repo::avatars::{self as repo, Avatar};

fn key_for(tenant: TenantId, id: Uuid) -> String {
    format!("avatars/{}/{}", tenant.as_uuid().simple(), id.simple())
}

impl App {
    #[tracing::instrument(skip_all)]
    pub async fn upload_avatar(
        &self,
        p: &Principal,
        name: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<Avatar, Error> {
        p.require(Action::Write)?;
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(120).collect();
        let info = avatars::check(content_type, &data)?;
        let id = AvatarId::new().as_uuid();
        let tenant = p.workspace_id;
        let key = key_for(tenant, id);
        let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
        self.storage
            .put_bytes(&key, data)
            .await
            .map_err(|e| Error::unavailable("service.unavailable").with_source(e))?;
        let stored = async {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let row =
                repo::insert(&mut tx, id, tenant, &name, info.content_type, (info.width, info.height), size, &key)
                    .await?;
            db::commit(tx).await?;
            Ok(row)
        }
        .await;
        if stored.is_err() {
            let _ = self.storage.delete(&key).await;
        }
        stored
    }

    pub async fn list_avatars(&self, p: &Principal, page: &PageRequest) -> Result<Page<Avatar>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(rows)
    }

    pub async fn delete_avatar(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let id = AvatarId::parse(id.trim()).map_err(|_| Error::not_found("video.avatar_not_found"))?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let key =
            repo::delete(&mut tx, id.as_uuid()).await?.ok_or_else(|| Error::not_found("video.avatar_not_found"))?;
        db::commit(tx).await?;
        if let Err(e) = self.storage.delete(&key).await {
            tracing::warn!(error = %e, key, "deleting an avatar's file failed");
        }
        Ok(())
    }

    /// Whether the workspace has this avatar (creating a video with it).
    pub(crate) async fn has_avatar(&self, tenant: TenantId, id: Uuid) -> Result<bool, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let found = repo::get(&mut tx, id).await?;
        db::commit(tx).await?;
        Ok(found.is_some())
    }

    /// A signed link the renderer can fetch the avatar from.
    pub(crate) fn avatar_link(&self, id: Uuid) -> Result<String, Error> {
        let ttl = chrono::Duration::from_std(self.cfg.downloads.avatar_link_ttl).map_err(Error::internal)?;
        let token = self.links.sign_id(&AvatarId::from_uuid(id).to_string(), Utc::now() + ttl);
        Ok(format!("{}/{token}", self.cfg.downloads.avatar_base_url.trim_end_matches('/')))
    }

    /// An avatar's row (any workspace: jobs and signed links have no caller).
    pub(crate) async fn avatar_row(&self, id: Uuid) -> Result<Option<Avatar>, Error> {
        let mut tx = db::system(&self.pool).await?;
        let row = repo::get(&mut tx, id).await?;
        db::commit(tx).await?;
        Ok(row)
    }
}
