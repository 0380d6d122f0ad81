//! Platform connections: who they talk to, what they hold, and when their token needs attention.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use nexus_kernel::Error;
use uuid::Uuid;

/// The platform a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Facebook and Instagram (Marketing and Graph APIs).
    Meta,
    /// TikTok API for Business.
    TikTok,
    /// A TikTok creator through Login Kit: the user token organic posts need.
    TikTokCreator,
    /// YouTube through Google OAuth.
    Google,
    /// The offline sandbox: records what would be created, nothing leaves the service.
    Local,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Meta => "meta",
            Provider::TikTok => "tiktok",
            Provider::TikTokCreator => "tiktok_creator",
            Provider::Google => "google",
            Provider::Local => "local",
        }
    }

    /// Whether an expiring token can be renewed without the user (Google's and TikTok Login
    /// Kit's refresh tokens); the others are reported so the user connects again.
    pub fn refreshes(self) -> bool {
        matches!(self, Provider::Google | Provider::TikTokCreator)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "meta" => Ok(Provider::Meta),
            "tiktok" => Ok(Provider::TikTok),
            "tiktok_creator" => Ok(Provider::TikTokCreator),
            "google" => Ok(Provider::Google),
            "local" => Ok(Provider::Local),
            other => Err(Error::invalid("ads.provider_unknown")
                .with_param("provider", other.chars().take(40).collect::<String>())
                .with_violation("provider", "unknown")),
        }
    }
}

/// What an account of a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    AdAccount,
    Page,
    Instagram,
    Advertiser,
    Channel,
    /// A TikTok creator account (Login Kit).
    Creator,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::AdAccount => "ad_account",
            AccountKind::Page => "page",
            AccountKind::Instagram => "instagram",
            AccountKind::Advertiser => "advertiser",
            AccountKind::Channel => "channel",
            AccountKind::Creator => "creator",
        }
    }
}

impl FromStr for AccountKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "ad_account" => AccountKind::AdAccount,
            "page" => AccountKind::Page,
            "instagram" => AccountKind::Instagram,
            "advertiser" => AccountKind::Advertiser,
            "channel" => AccountKind::Channel,
            "creator" => AccountKind::Creator,
            other => return Err(Error::internal(format!("stored account kind {other}"))),
        })
    }
}

/// An ad account, page, Instagram business account, advertiser or channel of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub kind: AccountKind,
    pub external_id: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub chosen: bool,
}

/// Connection states.
pub mod status {
    pub const ACTIVE: &str = "active";
    /// The token expires within the notice period and cannot be refreshed.
    pub const EXPIRING: &str = "expiring";
    pub const EXPIRED: &str = "expired";
    pub const DISCONNECTED: &str = "disconnected";
}

/// A connection as shown (never its tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: Uuid,
    pub provider: Provider,
    pub external_user: String,
    pub display_name: String,
    pub status: String,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub accounts: Vec<Account>,
    pub created_at: DateTime<Utc>,
}

/// What the expiry watch does with a connection's token now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryStep {
    Nothing,
    /// Renew it with the refresh token (the platform allows it).
    Refresh,
    /// Report it once: status `expiring` and the event.
    Warn,
    /// Past its expiry: status `expired` and the event.
    Expire,
}

/// The expiry rule: expired tokens are marked expired; tokens within `notice` of expiry are
/// refreshed where the platform allows, otherwise reported once (`warned` says whether this
/// token's notice went out already).
pub fn expiry_step(
    provider: Provider,
    expires_at: Option<DateTime<Utc>>,
    warned: bool,
    now: DateTime<Utc>,
    notice: Duration,
) -> ExpiryStep {
    let Some(at) = expires_at else { return ExpiryStep::Nothing };
    if provider.refreshes() && at - now <= notice {
        return ExpiryStep::Refresh;
    }
    if at <= now {
        ExpiryStep::Expire
    } else if at - now <= notice && !warned {
        ExpiryStep::Warn
    } else {
        ExpiryStep::Nothing
    }
}

/// The scopes a connection was granted, cleaned of blanks and duplicates.
pub fn scopes(raw: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = raw.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> Option<DateTime<Utc>> {
        Some(Utc::now() + Duration::days(days))
    }

    #[test]
    fn a_token_six_days_from_expiry_is_warned_once() {
        let now = Utc::now();
        let week = Duration::days(7);
        assert_eq!(expiry_step(Provider::Meta, at(6), false, now, week), ExpiryStep::Warn);
        assert_eq!(expiry_step(Provider::Meta, at(6), true, now, week), ExpiryStep::Nothing);
        assert_eq!(expiry_step(Provider::Meta, at(30), false, now, week), ExpiryStep::Nothing);
        assert_eq!(expiry_step(Provider::Meta, at(-1), true, now, week), ExpiryStep::Expire);
        assert_eq!(expiry_step(Provider::TikTok, None, false, now, week), ExpiryStep::Nothing);
    }

    #[test]
    fn google_tokens_are_refreshed_instead_of_reported() {
        let now = Utc::now();
        assert_eq!(expiry_step(Provider::Google, at(0), false, now, Duration::days(7)), ExpiryStep::Refresh);
        assert_eq!(expiry_step(Provider::Google, at(30), false, now, Duration::days(7)), ExpiryStep::Nothing);
    }

    #[test]
    fn providers_parse_and_unknown_ones_are_refused() {
        for p in [Provider::Meta, Provider::TikTok, Provider::Google, Provider::Local] {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert_eq!("myspace".parse::<Provider>().unwrap_err().code(), "ads.provider_unknown");
    }
}
