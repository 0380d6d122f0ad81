//! The campaign umbrella: create, read, list, edit, archive.

use nexus_kernel::{Error, ErrorKind, Page, PageRequest};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::{App, id_of, require};
use crate::domain::CampaignId;
use crate::domain::campaigns::{Campaign, CampaignSpec};
use crate::repo;

fn campaign_id(raw: &str) -> Result<Uuid, Error> {
    id_of::<CampaignId>(raw, "ads.campaign_not_found", CampaignId::as_uuid)
}

impl App {
    pub async fn create_campaign(&self, p: &Principal, spec: CampaignSpec) -> Result<Campaign, Error> {
        require(p, Action::Write)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let c = repo::campaigns::insert(&mut tx, p.workspace_id, Uuid::now_v7(), &spec).await?;
        db::commit(tx).await?;
        Ok(c)
    }

    pub async fn campaign(&self, p: &Principal, raw_id: &str) -> Result<Campaign, Error> {
        require(p, Action::Read)?;
        let id = campaign_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let c = repo::campaigns::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.campaign_not_found"))?;
        db::commit(tx).await?;
        Ok(c)
    }

    pub async fn list_campaigns(&self, p: &Principal, page: &PageRequest) -> Result<Page<Campaign>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::campaigns::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }

    /// Replaces the editable fields; an archived campaign is kept as it was.
    pub async fn update_campaign(&self, p: &Principal, raw_id: &str, spec: CampaignSpec) -> Result<Campaign, Error> {
        require(p, Action::Write)?;
        let id = campaign_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let updated = repo::campaigns::update(&mut tx, id, &spec).await?;
        let c = match updated {
            Some(c) => c,
            None => {
                return Err(match repo::campaigns::get(&mut tx, id).await? {
                    Some(_) => Error::new(ErrorKind::FailedPrecondition, "ads.campaign_archived"),
                    None => Error::not_found("ads.campaign_not_found"),
                });
            }
        };
        db::commit(tx).await?;
        Ok(c)
    }

    pub async fn archive_campaign(&self, p: &Principal, raw_id: &str) -> Result<Campaign, Error> {
        require(p, Action::Write)?;
        let id = campaign_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let c =
            repo::campaigns::archive(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.campaign_not_found"))?;
        db::commit(tx).await?;
        Ok(c)
    }
}
