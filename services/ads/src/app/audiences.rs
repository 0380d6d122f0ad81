//! Custom audiences: members normalized and SHA-256 hashed here, so only hashes leave the
//! service, uploaded to a chosen Meta ad account (batches of one session) or TikTok advertiser.

use nexus_kernel::Error;
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::ad_platform::ad_account_kind;
use super::platforms::platform_error;
use super::{App, require};
use crate::domain::audiences::hash_members;
use crate::repo;
use crate::repo::audiences::Audience;

/// What a client sent: the members of a CRM segment.
#[derive(Debug, Clone, Default)]
pub struct AudienceRequest {
    pub connection_id: String,
    pub ad_account: String,
    pub name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
}

impl App {
    pub async fn create_audience(&self, p: &Principal, req: AudienceRequest) -> Result<Audience, Error> {
        require(p, Action::Write)?;
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid("ads.audience_invalid")
                .with_param("field", "name")
                .with_violation("name", "length"));
        }
        // Checked (and hashed) before any platform call.
        let hashed = hash_members(&req.emails, &req.phones)?;
        let stored = self.stored_connection(p, &req.connection_id).await?;
        let c = &stored.record;
        let platform = self.ad_platform(c.provider)?;
        let kind = ad_account_kind(c.provider);
        if !c.accounts.iter().any(|a| a.kind == kind && a.external_id == req.ad_account.trim() && a.chosen) {
            return Err(Error::invalid("ads.account_unknown")
                .with_param("account", req.ad_account.chars().take(60).collect::<String>())
                .with_violation("ad_account", "unknown"));
        }
        let token = self.open_tokens(c.id, &stored.credentials)?.access_token;
        let account = req.ad_account.trim();
        let session = u64::from(rand_session());
        let audience = platform
            .upload_audience(&token, account, name, &hashed.emails, &hashed.phones, session)
            .await
            .map_err(|e| platform_error(c.provider, e))?;
        let row = Audience {
            id: Uuid::now_v7(),
            connection_id: c.id,
            ad_account: account.to_owned(),
            name: name.to_owned(),
            platform_id: audience,
            members: i32::try_from(hashed.emails.len() + hashed.phones.len()).unwrap_or(i32::MAX),
            dropped: i32::try_from(hashed.dropped).unwrap_or(i32::MAX),
            created_at: chrono::Utc::now(),
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::audiences::insert(&mut tx, p.workspace_id, &row).await?;
        db::commit(tx).await?;
        Ok(stored)
    }
}

/// An upload session id (Meta groups the batches of one upload by it).
fn rand_session() -> u32 {
    let b = Uuid::new_v4().into_bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
