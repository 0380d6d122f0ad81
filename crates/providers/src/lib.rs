//! Third-party API clients, one module per provider.

pub mod oidc;
