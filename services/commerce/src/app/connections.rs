//! Supplier and store connections: credentials checked with the provider, then sealed.

use nexus_kernel::{Error, ErrorKind, Page, PageRequest};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::suppliers::{Credentials, ae_error, cj_error, shopify_error};
use super::{App, require};
use crate::domain::ConnectionId;
use crate::domain::connections::{Connection, Provider, Role};
use crate::repo;

/// What a client sent to connect.
#[derive(Debug, Clone, Default)]
pub struct ConnectInput {
    pub provider: String,
    pub role: String,
    pub shop_domain: String,
    pub access_token: String,
    pub api_key: String,
    pub app_key: String,
    pub app_secret: String,
    pub auth_code: String,
    /// A store's languages (of en, es, pt, he, ar): products are localized into them.
    pub languages: Vec<String>,
}

fn required(v: &str, field: &str) -> Result<String, Error> {
    let v = v.trim();
    if v.is_empty() || v.len() > 500 || v.chars().any(char::is_control) {
        return Err(Error::invalid("commerce.credentials_invalid")
            .with_param("field", field)
            .with_violation(field, "invalid"));
    }
    Ok(v.to_owned())
}

/// Store topics registered when a store connects.
pub const SHOPIFY_TOPICS: &[&str] = &["ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID", "ORDERS_CANCELLED"];

impl App {
    /// Connects a supplier or store: the credentials are tried against the provider first (a
    /// CJ key becomes tokens, an AliExpress code a session, a Shopify token must read the shop),
    /// then sealed with the service's current key.
    pub async fn connect(&self, p: &Principal, input: ConnectInput) -> Result<Connection, Error> {
        require(p, Action::ManageMembers)?;
        let provider: Provider = input.provider.trim().parse()?;
        let languages = crate::domain::catalogue::languages(&input.languages)?;
        let id = Uuid::now_v7();
        let (role, account, creds, expires) = match provider {
            Provider::Local => {
                if !self.cfg.local_enabled() {
                    return Err(Error::new(ErrorKind::FailedPrecondition, "commerce.local_disabled"));
                }
                let role: Role = input.role.trim().parse()?;
                // One local supplier and one local store per workspace.
                (role, format!("local-{}", role.as_str()), Credentials::Local, None)
            }
            Provider::Cj => {
                let api_key = required(&input.api_key, "api_key")?;
                let client = self.cj(&api_key, None);
                client.access_token().await.map_err(cj_error)?;
                let tokens = client.tokens().await;
                let account =
                    tokens.as_ref().map(|t| t.open_id.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| "cj".into());
                let expires = tokens.as_ref().map(|t| t.access_expires_at);
                (Role::Supplier, account, Credentials::Cj { api_key, tokens }, expires)
            }
            Provider::AliExpress => {
                let app_key = required(&input.app_key, "app_key")?;
                let app_secret = required(&input.app_secret, "app_secret")?;
                let code = required(&input.auth_code, "auth_code")?;
                let session = self.aliexpress(&app_key, &app_secret).create_session(&code).await.map_err(ae_error)?;
                let expires = chrono::DateTime::from_timestamp_millis(session.expires_at_ms);
                let account = if session.account.is_empty() { app_key.clone() } else { session.account.clone() };
                (Role::Supplier, account, Credentials::Aliexpress { app_key, app_secret, session }, expires)
            }
            Provider::Shopify => {
                let shop = input.shop_domain.trim().to_ascii_lowercase();
                if !nexus_providers::shopify::valid_shop_domain(&shop) {
                    return Err(Error::invalid("commerce.shop_domain_invalid").with_violation("shop_domain", "invalid"));
                }
                let token = required(&input.access_token, "access_token")?;
                let client = self.shopify(&shop, &token);
                client.shop().await.map_err(shopify_error)?;
                let callback = self.cfg.shopify_webhooks.callback_url.trim();
                if !callback.is_empty() {
                    for topic in SHOPIFY_TOPICS {
                        client.subscribe_webhook(topic, callback).await.map_err(shopify_error)?;
                    }
                }
                (Role::Store, shop.clone(), Credentials::Shopify { shop, access_token: token }, None)
            }
        };
        let sealed = self.seal(id, &creds)?;
        let c = Connection {
            id,
            provider,
            role,
            account,
            status: "active".into(),
            last_error: String::new(),
            checked_at: None,
            token_expires_at: expires,
            created_at: chrono::Utc::now(),
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::connections::upsert(&mut tx, p.workspace_id, &c, &sealed).await;
        let stored = match stored {
            // A reconnect keeps the row's id; its credentials were sealed for the new id.
            Ok(s) if s.id != id => {
                let resealed = self.seal(s.id, &creds)?;
                repo::connections::checked(&mut tx, s.id, None, Some((&resealed, expires))).await?
            }
            Ok(s) => s,
            Err(e) => return Err(e),
        };
        if role == Role::Store {
            let codes: Vec<&str> = languages.iter().map(|l| l.code()).collect();
            repo::connections::set_languages(&mut tx, stored.id, &codes).await?;
        } else if !languages.is_empty() {
            return Err(Error::invalid("commerce.language_invalid")
                .with_param("languages", "en, es, pt, he, ar")
                .with_violation("languages", "invalid"));
        }
        db::commit(tx).await?;
        Ok(stored)
    }

    /// The workspace's connections, newest first (credentials never leave the service).
    pub async fn list_connections(&self, p: &Principal, page: &PageRequest) -> Result<Page<Connection>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::connections::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }

    /// A connection with its credentials (another workspace's is not found).
    pub async fn connection(&self, p: &Principal, raw_id: &str) -> Result<(Connection, Credentials), Error> {
        let id = super::id_of::<ConnectionId>(raw_id, "commerce.connection_not_found", ConnectionId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::connections::get(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("commerce.connection_not_found"))?;
        db::commit(tx).await?;
        if stored.record.status == "disconnected" {
            return Err(Error::not_found("commerce.connection_not_found"));
        }
        let creds = self.unseal(id, &stored.credentials)?;
        Ok((stored.record, creds))
    }

    /// Calls the provider with the stored credentials and records how it went (refreshed
    /// tokens are sealed again).
    pub async fn check_connection(&self, p: &Principal, raw_id: &str) -> Result<Connection, Error> {
        require(p, Action::Write)?;
        let (c, creds) = self.connection(p, raw_id).await?;
        let (outcome, refreshed) = match &creds {
            Credentials::Local => (Ok(()), None),
            Credentials::Cj { api_key, tokens } => {
                let client = self.cj(api_key, tokens.clone());
                let r = client.access_token().await.map(|_| ()).map_err(cj_error);
                let fresh = client.tokens().await;
                let changed = fresh.as_ref().map(|t| &t.access_token) != tokens.as_ref().map(|t| &t.access_token);
                let refreshed = (r.is_ok() && changed).then(|| {
                    let expires = fresh.as_ref().map(|t| t.access_expires_at);
                    (Credentials::Cj { api_key: api_key.clone(), tokens: fresh }, expires)
                });
                (r, refreshed)
            }
            Credentials::Aliexpress { .. } => (Ok(()), None),
            Credentials::Shopify { shop, access_token } => {
                (self.shopify(shop, access_token).shop().await.map(|_| ()).map_err(shopify_error), None)
            }
        };
        let sealed = refreshed.as_ref().map(|(c2, exp)| self.seal(c.id, c2).map(|s| (s, *exp))).transpose()?;
        let error = outcome.as_ref().err().map(|e| e.code().to_owned());
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let updated = repo::connections::checked(
            &mut tx,
            c.id,
            error.as_deref(),
            sealed.as_ref().map(|(s, exp)| (s.as_str(), *exp)),
        )
        .await?;
        db::commit(tx).await?;
        Ok(updated)
    }
}
