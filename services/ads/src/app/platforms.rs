//! What each platform does in a connection's life: the authorization address, the code
//! exchange (tokens, the user, the accounts), refresh and revocation. `local` is the offline
//! sandbox: the same steps with nothing leaving the service.

use chrono::{DateTime, Duration, Utc};
use nexus_kernel::{Error, ErrorKind};
use nexus_providers::marketing::PlatformError;
use nexus_providers::oidc::Pkce;
use serde::{Deserialize, Serialize};

use super::App;
use crate::domain::connections::{Account, AccountKind, Provider};

/// Tokens of a connection, sealed at rest.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

/// What a completed authorization yields.
#[derive(Debug, Clone)]
pub struct Grant {
    pub external_user: String,
    pub display_name: String,
    pub scopes: Vec<String>,
    pub tokens: Tokens,
    pub expires_at: Option<DateTime<Utc>>,
    pub accounts: Vec<Account>,
}

/// How long a sandbox token lives (as long as a Meta long-lived token), so the expiry watch has
/// something to watch offline too.
const LOCAL_TOKEN_DAYS: i64 = 60;

fn not_configured(provider: Provider) -> Error {
    Error::new(ErrorKind::FailedPrecondition, "ads.provider_not_configured").with_param("provider", provider.as_str())
}

fn account(kind: AccountKind, id: &str, name: &str, currency: &str, tz: &str) -> Account {
    Account {
        kind,
        external_id: id.to_owned(),
        name: name.to_owned(),
        currency: currency.to_owned(),
        time_zone: tz.to_owned(),
        chosen: false,
    }
}

/// The sandbox's accounts: one of each kind, labelled as local.
fn local_accounts() -> Vec<Account> {
    vec![
        account(AccountKind::AdAccount, "act_local_1", "Local ad account (sandbox)", "USD", "America/New_York"),
        account(AccountKind::Page, "local_page_1", "Local page (sandbox)", "", ""),
        account(AccountKind::Instagram, "local_ig_1", "Local Instagram (sandbox)", "", ""),
        account(AccountKind::Advertiser, "local_adv_1", "Local advertiser (sandbox)", "EUR", "Europe/Madrid"),
        account(AccountKind::Creator, "local_creator_1", "Local TikTok creator (sandbox)", "", ""),
        account(AccountKind::Channel, "local_channel_1", "Local channel (sandbox)", "", ""),
    ]
}

/// A platform's failure as the caller sees it: a refused code or token asks for a new
/// connection, a busy or unreachable platform for a later try, anything else names the platform's
/// refusal.
pub fn platform_error(provider: Provider, e: PlatformError) -> Error {
    let p = provider.as_str();
    match &e {
        PlatformError::Auth { .. } => Error::unauthenticated("ads.oauth_failed").with_param("provider", p),
        PlatformError::RateLimited { .. } | PlatformError::Timeout { .. } | PlatformError::Upstream { .. } => {
            Error::unavailable("ads.platform_unavailable").with_param("provider", p)
        }
        PlatformError::Api { .. } | PlatformError::Decode { .. } => {
            Error::new(ErrorKind::FailedPrecondition, "ads.platform_refused").with_param("provider", p)
        }
    }
    .with_source(e)
}

/// Seconds from now as an instant.
fn expiry(expires_in: Option<u64>) -> Option<DateTime<Utc>> {
    expires_in.and_then(|s| i64::try_from(s).ok()).map(|s| Utc::now() + Duration::seconds(s))
}

/// The only account of a kind is chosen at once; with several, the user chooses.
fn choose_lone(mut accounts: Vec<Account>) -> Vec<Account> {
    let kinds: Vec<AccountKind> = accounts.iter().map(|a| a.kind).collect();
    for a in &mut accounts {
        a.chosen = kinds.iter().filter(|k| **k == a.kind).count() == 1;
    }
    accounts
}

impl App {
    /// Whether the provider can be connected on this server (its app is configured, or the
    /// sandbox is on).
    pub fn check_available(&self, provider: Provider) -> Result<(), Error> {
        let ok = match provider {
            Provider::Local => {
                if !self.cfg.sandbox_enabled() {
                    return Err(Error::new(ErrorKind::FailedPrecondition, "ads.sandbox_disabled"));
                }
                true
            }
            Provider::Meta => !self.cfg.meta.app_id.is_empty(),
            Provider::TikTok => !self.cfg.tiktok.app_id.is_empty(),
            Provider::TikTokCreator => !self.cfg.tiktok.client_key.is_empty(),
            Provider::Google => !self.cfg.google.client_id.is_empty(),
        };
        if ok { Ok(()) } else { Err(not_configured(provider)) }
    }

    /// Where the user is sent to grant access.
    pub fn authorize_url(&self, provider: Provider, redirect_uri: &str, pkce: &Pkce) -> Result<String, Error> {
        let parse = |base: &str| {
            reqwest::Url::parse(base).map_err(|e| Error::internal(format!("{provider} authorization address: {e}")))
        };
        let mut url = match provider {
            // The sandbox "authorizes" at once: straight back to the caller with a code.
            Provider::Local => {
                let mut u = parse(redirect_uri)?;
                u.query_pairs_mut().append_pair("code", &format!("local-{}", nexus_providers::oidc::random_token()));
                u
            }
            Provider::Meta => {
                let m = &self.cfg.meta;
                let mut u = parse(&format!("{}/{}/dialog/oauth", m.dialog_url.trim_end_matches('/'), m.api_version))?;
                u.query_pairs_mut()
                    .append_pair("client_id", &m.app_id)
                    .append_pair("redirect_uri", redirect_uri)
                    .append_pair("response_type", "code")
                    .append_pair("scope", &m.scopes.join(","))
                    .append_pair("code_challenge", &pkce.challenge)
                    .append_pair("code_challenge_method", "S256");
                u
            }
            Provider::TikTok => {
                let t = &self.cfg.tiktok;
                let mut u = parse(&t.auth_url)?;
                u.query_pairs_mut().append_pair("app_id", &t.app_id).append_pair("redirect_uri", redirect_uri);
                u
            }
            Provider::TikTokCreator => {
                let t = &self.cfg.tiktok;
                let mut u = parse(&t.login_url)?;
                u.query_pairs_mut()
                    .append_pair("client_key", &t.client_key)
                    .append_pair("scope", &t.creator_scopes.join(","))
                    .append_pair("response_type", "code")
                    .append_pair("redirect_uri", redirect_uri);
                u
            }
            Provider::Google => {
                let g = &self.cfg.google;
                let mut u = parse(&g.auth_url)?;
                u.query_pairs_mut()
                    .append_pair("client_id", &g.client_id)
                    .append_pair("redirect_uri", redirect_uri)
                    .append_pair("response_type", "code")
                    .append_pair("scope", &g.scopes.join(" "))
                    // A refresh token, and again on a reconnect (Google only sends it on consent).
                    .append_pair("access_type", "offline")
                    .append_pair("prompt", "consent")
                    .append_pair("code_challenge", &pkce.challenge)
                    .append_pair("code_challenge_method", "S256");
                u
            }
        };
        url.query_pairs_mut().append_pair("state", &pkce.state);
        Ok(url.into())
    }

    /// Exchanges the platform's code for tokens, the user and the accounts.
    pub async fn exchange(
        &self,
        provider: Provider,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Grant, Error> {
        match provider {
            Provider::Local => {
                if !code.starts_with("local-") {
                    return Err(Error::unauthenticated("ads.oauth_failed").with_param("provider", "local"));
                }
                let accounts = choose_lone(local_accounts());
                Ok(Grant {
                    external_user: "local".into(),
                    display_name: "Local sandbox".into(),
                    scopes: vec!["sandbox".into()],
                    tokens: Tokens { access_token: code.to_owned(), refresh_token: String::new() },
                    expires_at: Some(Utc::now() + Duration::days(LOCAL_TOKEN_DAYS)),
                    accounts,
                })
            }
            Provider::Meta => {
                let meta = self.meta.as_ref().ok_or_else(|| not_configured(provider))?;
                let e = |e| platform_error(provider, e);
                let short = meta.exchange_code(code, redirect_uri, verifier).await.map_err(e)?;
                // The short-lived token lasts hours; the long-lived one about 60 days.
                let long = meta.long_lived(&short.access_token).await.map_err(e)?;
                let (user, name) = meta.me(&long.access_token).await.map_err(e)?;
                let mut accounts: Vec<Account> = meta
                    .ad_accounts(&long.access_token)
                    .await
                    .map_err(e)?
                    .into_iter()
                    .map(|a| account(AccountKind::AdAccount, &a.id, &a.name, &a.currency, &a.timezone))
                    .collect();
                for p in meta.pages(&long.access_token).await.map_err(e)? {
                    accounts.push(account(AccountKind::Page, &p.id, &p.name, "", ""));
                    if let Some((id, username)) = p.instagram {
                        accounts.push(account(AccountKind::Instagram, &id, &username, "", ""));
                    }
                }
                Ok(Grant {
                    external_user: user,
                    display_name: name,
                    scopes: self.cfg.meta.scopes.clone(),
                    tokens: Tokens { access_token: long.access_token, refresh_token: String::new() },
                    expires_at: expiry(long.expires_in),
                    accounts: choose_lone(accounts),
                })
            }
            Provider::TikTok => {
                let tiktok = self.tiktok.as_ref().ok_or_else(|| not_configured(provider))?;
                let e = |e| platform_error(provider, e);
                let grant = tiktok.access_token(code).await.map_err(e)?;
                let advertisers = tiktok.advertisers(&grant.access_token, &grant.advertiser_ids).await.map_err(e)?;
                let mut ids = grant.advertiser_ids.clone();
                ids.sort();
                // TikTok names no user: the grant is known by the advertisers it covers.
                let external_user = ids.first().cloned().unwrap_or_else(|| "tiktok".into());
                let display_name = advertisers.first().map(|a| a.name.clone()).unwrap_or_default();
                let accounts = grant
                    .advertiser_ids
                    .iter()
                    .map(|id| match advertisers.iter().find(|a| &a.id == id) {
                        Some(a) => account(AccountKind::Advertiser, id, &a.name, &a.currency, &a.timezone),
                        None => account(AccountKind::Advertiser, id, "", "", ""),
                    })
                    .collect();
                Ok(Grant {
                    external_user,
                    display_name,
                    scopes: grant.scope,
                    tokens: Tokens { access_token: grant.access_token, refresh_token: String::new() },
                    // Long-lived: TikTok's advertiser tokens do not expire.
                    expires_at: None,
                    accounts: choose_lone(accounts),
                })
            }
            Provider::TikTokCreator => {
                let login = self.tiktok_login.as_ref().ok_or_else(|| not_configured(provider))?;
                let e = |e| platform_error(provider, e);
                let g = login.exchange_code(code, redirect_uri).await.map_err(e)?;
                let me = login.profile(&g.access_token).await.map_err(e)?;
                let name = if me.username.is_empty() { me.display_name.clone() } else { format!("@{}", me.username) };
                Ok(Grant {
                    external_user: me.open_id.clone(),
                    display_name: me.display_name,
                    scopes: g.scope,
                    tokens: Tokens { access_token: g.access_token, refresh_token: g.refresh_token },
                    expires_at: expiry(g.expires_in),
                    accounts: vec![account(AccountKind::Creator, &me.open_id, &name, "", "")],
                })
            }
            Provider::Google => {
                let google = self.google.as_ref().ok_or_else(|| not_configured(provider))?;
                let e = |e| platform_error(provider, e);
                let t = google.exchange_code(code, redirect_uri, verifier).await.map_err(e)?;
                let channels = google.channels(&t.access_token).await.map_err(e)?;
                let external_user = channels.first().map(|c| c.0.clone()).unwrap_or_else(|| "google".into());
                let display_name = channels.first().map(|c| c.1.clone()).unwrap_or_default();
                let accounts =
                    channels.iter().map(|(id, title)| account(AccountKind::Channel, id, title, "", "")).collect();
                Ok(Grant {
                    external_user,
                    display_name,
                    scopes: t.scope,
                    tokens: Tokens { access_token: t.access_token, refresh_token: t.refresh_token },
                    expires_at: expiry(t.expires_in),
                    accounts: choose_lone(accounts),
                })
            }
        }
    }

    /// Renews a token with its refresh token (only where the platform allows it: Google).
    pub async fn refresh(&self, provider: Provider, tokens: &Tokens) -> Result<(Tokens, Option<DateTime<Utc>>), Error> {
        match provider {
            Provider::Google if !tokens.refresh_token.is_empty() => {
                let google = self.google.as_ref().ok_or_else(|| not_configured(provider))?;
                let t = google.refresh(&tokens.refresh_token).await.map_err(|e| platform_error(provider, e))?;
                // Google keeps the refresh token unless it sends a new one.
                let refresh_token =
                    if t.refresh_token.is_empty() { tokens.refresh_token.clone() } else { t.refresh_token };
                Ok((Tokens { access_token: t.access_token, refresh_token }, expiry(t.expires_in)))
            }
            // Refresh tokens rotate: the new one replaces the one sent, which stops working.
            Provider::TikTokCreator if !tokens.refresh_token.is_empty() => {
                let login = self.tiktok_login.as_ref().ok_or_else(|| not_configured(provider))?;
                let g = login.refresh(&tokens.refresh_token).await.map_err(|e| platform_error(provider, e))?;
                Ok((Tokens { access_token: g.access_token, refresh_token: g.refresh_token }, expiry(g.expires_in)))
            }
            other => Err(Error::new(ErrorKind::FailedPrecondition, "ads.refresh_unsupported")
                .with_param("provider", other.as_str())),
        }
    }

    /// Revokes the grant at the platform where it supports that (Meta, Google); TikTok's token
    /// and the sandbox's are only forgotten.
    pub async fn revoke(&self, provider: Provider, tokens: &Tokens) -> Result<(), Error> {
        let e = |e| platform_error(provider, e);
        match provider {
            Provider::Local | Provider::TikTok => Ok(()),
            Provider::Meta => self
                .meta
                .as_ref()
                .ok_or_else(|| not_configured(provider))?
                .revoke(&tokens.access_token)
                .await
                .map_err(e),
            Provider::TikTokCreator => self
                .tiktok_login
                .as_ref()
                .ok_or_else(|| not_configured(provider))?
                .revoke(&tokens.access_token)
                .await
                .map_err(e),
            Provider::Google => {
                let token = if tokens.refresh_token.is_empty() { &tokens.access_token } else { &tokens.refresh_token };
                self.google.as_ref().ok_or_else(|| not_configured(provider))?.revoke(token).await.map_err(e)
            }
        }
    }
}
