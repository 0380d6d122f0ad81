//! Supplier and store connections.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use uuid::Uuid;

/// Who a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Cj,
    AliExpress,
    Shopify,
    /// The sample catalogue and local store shipped with the service.
    Local,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cj => "cj",
            Provider::AliExpress => "aliexpress",
            Provider::Shopify => "shopify",
            Provider::Local => "local",
        }
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
            "cj" => Ok(Provider::Cj),
            "aliexpress" => Ok(Provider::AliExpress),
            "shopify" => Ok(Provider::Shopify),
            "local" => Ok(Provider::Local),
            other => Err(Error::invalid("commerce.provider_unknown")
                .with_param("provider", other.chars().take(40).collect::<String>())
                .with_violation("provider", "unknown")),
        }
    }
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Supplier,
    Store,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supplier => "supplier",
            Role::Store => "store",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "supplier" => Ok(Role::Supplier),
            "store" => Ok(Role::Store),
            _ => Err(Error::invalid("commerce.connection_role_invalid").with_violation("role", "invalid")),
        }
    }
}

/// A connection as shown (never its credentials).
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: Uuid,
    pub provider: Provider,
    pub role: Role,
    pub account: String,
    pub status: String,
    pub last_error: String,
    pub checked_at: Option<DateTime<Utc>>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
