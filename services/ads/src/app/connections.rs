//! Connections: OAuth start and callback (state hashed, PKCE verifier sealed, both taken once
//! by the workspace that started them), tokens sealed with the service's versioned keys, the
//! platform's accounts listed and chosen, disconnect.

use nexus_kernel::{Error, Page, PageRequest};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use nexus_providers::oidc::Pkce;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::platforms::Tokens;
use super::{App, id_of, require};
use crate::domain::ConnectionId;
use crate::domain::connections::{self, Connection, Provider, status};
use crate::repo;

fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// Sealing contexts bind a sealed value to its row: a copy pasted elsewhere does not open.
pub(crate) fn verifier_context(state_hash: &[u8]) -> String {
    format!("ads.oauth_states:{}", hex::encode(state_hash))
}

pub(crate) fn tokens_context(id: Uuid) -> String {
    format!("ads.connections:{id}")
}

fn connection_id(raw: &str) -> Result<Uuid, Error> {
    id_of::<ConnectionId>(raw, "ads.connection_not_found", ConnectionId::as_uuid)
}

impl App {
    pub fn seal_tokens(&self, id: Uuid, t: &Tokens) -> Result<String, Error> {
        let json = serde_json::to_vec(t).map_err(|e| Error::internal(format!("tokens: {e}")))?;
        Ok(self.sealer.seal(&json, &tokens_context(id)))
    }

    pub fn open_tokens(&self, id: Uuid, sealed: &str) -> Result<Tokens, Error> {
        let raw = self.sealer.open(sealed, &tokens_context(id)).map_err(|e| Error::internal(format!("tokens: {e}")))?;
        serde_json::from_slice(&raw).map_err(|e| Error::internal(format!("tokens: {e}")))
    }

    /// The address to send the user to. Admins connect platforms (they spend money).
    pub async fn start_connection(
        &self,
        p: &Principal,
        provider: &str,
        redirect_uri: &str,
    ) -> Result<(String, String), Error> {
        require(p, Action::ManageMembers)?;
        let provider: Provider = provider.trim().parse()?;
        if !self.cfg.oauth.redirect_allowlist.iter().any(|u| u == redirect_uri) {
            return Err(Error::invalid("ads.redirect_not_allowed").with_violation("redirect_uri", "not_allowed"));
        }
        self.check_available(provider)?;
        let pkce = Pkce::new();
        let url = self.authorize_url(provider, redirect_uri, &pkce)?;
        let hash = state_hash(&pkce.state);
        let sealed = self.sealer.seal(pkce.verifier.as_bytes(), &verifier_context(&hash));
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let s = repo::oauth::NewState {
            state_hash: &hash,
            provider: provider.as_str(),
            verifier_sealed: &sealed,
            redirect_uri,
        };
        repo::oauth::insert(&mut tx, p.workspace_id, &s).await?;
        db::commit(tx).await?;
        Ok((url, pkce.state))
    }

    /// The platform sent the user back: the state is taken (once; another workspace's is not
    /// found), the code exchanged, the tokens sealed and the accounts stored. A reconnect of
    /// the same platform user renews the existing connection.
    pub async fn complete_connection(
        &self,
        p: &Principal,
        provider: &str,
        code: &str,
        state: &str,
    ) -> Result<Connection, Error> {
        require(p, Action::ManageMembers)?;
        let provider: Provider = provider.trim().parse()?;
        let bad_state = || Error::invalid("ads.oauth_state_invalid").with_violation("state", "invalid");
        if state.is_empty() || state.len() > 200 {
            return Err(bad_state());
        }
        if code.trim().is_empty() || code.len() > 2000 {
            return Err(Error::invalid("ads.oauth_code_invalid").with_violation("code", "invalid"));
        }
        let hash = state_hash(state);
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let taken = repo::oauth::take(&mut tx, &hash).await?;
        db::commit(tx).await?;
        let (stored_provider, sealed, redirect_uri) = taken.ok_or_else(bad_state)?;
        if stored_provider != provider.as_str() {
            return Err(bad_state());
        }
        let verifier = self.sealer.open(&sealed, &verifier_context(&hash)).map_err(|_| bad_state())?;
        let verifier = String::from_utf8(verifier).map_err(|_| bad_state())?;
        self.check_available(provider)?;

        let grant = self.exchange(provider, code.trim(), &verifier, &redirect_uri).await?;
        let new_id = Uuid::now_v7();
        let scopes = connections::scopes(grant.scopes.clone());
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = repo::connections::NewConnection {
            id: new_id,
            provider: provider.as_str(),
            external_user: &grant.external_user,
            display_name: &grant.display_name,
            credentials: &self.seal_tokens(new_id, &grant.tokens)?,
            scopes: &scopes,
            token_expires_at: grant.expires_at,
        };
        let id = repo::connections::upsert(&mut tx, p.workspace_id, &row).await?;
        if id != new_id {
            // A reconnect keeps the row's id; the tokens were sealed for the new one.
            let resealed = self.seal_tokens(id, &grant.tokens)?;
            repo::connections::set_credentials(&mut tx, id, &resealed, grant.expires_at).await?;
        }
        repo::connections::put_accounts(&mut tx, p.workspace_id, id, &grant.accounts).await?;
        // The chosen accounts' backfill is owed from this commit on; the sweep does it.
        repo::syncs::schedule_chosen(&mut tx, p.workspace_id, id).await?;
        let stored =
            repo::connections::get(&mut tx, id).await?.ok_or_else(|| Error::internal("connection vanished"))?;
        db::commit(tx).await?;
        Ok(stored.record)
    }

    /// The workspace's connections, newest first (tokens never leave the service).
    pub async fn list_connections(&self, p: &Principal, page: &PageRequest) -> Result<Page<Connection>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::connections::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }

    /// A live connection with its sealed tokens (another workspace's, or a disconnected one,
    /// is not found).
    pub(crate) async fn stored_connection(
        &self,
        p: &Principal,
        raw_id: &str,
    ) -> Result<repo::connections::Stored, Error> {
        let id = connection_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::connections::get(&mut tx, id).await?;
        db::commit(tx).await?;
        stored
            .filter(|s| s.record.status != status::DISCONNECTED)
            .ok_or_else(|| Error::not_found("ads.connection_not_found"))
    }

    pub async fn connection(&self, p: &Principal, raw_id: &str) -> Result<Connection, Error> {
        require(p, Action::Read)?;
        Ok(self.stored_connection(p, raw_id).await?.record)
    }

    /// Chooses the accounts campaigns and posts may use; every id must be one of the
    /// connection's.
    pub async fn choose_accounts(
        &self,
        p: &Principal,
        raw_id: &str,
        external_ids: &[String],
    ) -> Result<Connection, Error> {
        require(p, Action::ManageMembers)?;
        let c = self.stored_connection(p, raw_id).await?.record;
        let mut wanted: Vec<String> = external_ids.iter().map(|s| s.trim().to_owned()).collect();
        wanted.sort();
        wanted.dedup();
        if let Some(unknown) = wanted.iter().find(|w| !c.accounts.iter().any(|a| &a.external_id == *w)) {
            return Err(Error::invalid("ads.account_unknown")
                .with_param("account", unknown.chars().take(60).collect::<String>())
                .with_violation("external_ids", "unknown"));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::connections::choose(&mut tx, c.id, &wanted).await?;
        repo::syncs::schedule_chosen(&mut tx, p.workspace_id, c.id).await?;
        let stored =
            repo::connections::get(&mut tx, c.id).await?.ok_or_else(|| Error::not_found("ads.connection_not_found"))?;
        db::commit(tx).await?;
        Ok(stored.record)
    }

    /// Revokes the grant where the platform supports it, then forgets the tokens and accounts.
    /// A platform that cannot be reached does not keep the connection alive here: the tokens
    /// are forgotten either way, and the failure is logged.
    pub async fn disconnect(&self, p: &Principal, raw_id: &str) -> Result<Connection, Error> {
        require(p, Action::ManageMembers)?;
        let stored = self.stored_connection(p, raw_id).await?;
        let c = stored.record;
        if let Ok(tokens) = self.open_tokens(c.id, &stored.credentials)
            && let Err(e) = self.revoke(c.provider, &tokens).await
        {
            tracing::warn!(provider = %c.provider, code = e.code(), "revoking a platform grant failed");
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::connections::disconnect(&mut tx, c.id).await?;
        // No accounts left: no syncs owed.
        repo::syncs::schedule_chosen(&mut tx, p.workspace_id, c.id).await?;
        db::commit(tx).await?;
        Ok(Connection { status: status::DISCONNECTED.into(), token_expires_at: None, accounts: Vec::new(), ..c })
    }
}
