//! Use cases of messaging. Each opens one tenant transaction, checks what the caller may do,
//! calls `repo`, and writes its events into the outbox before committing.

pub mod bots;
pub mod broadcasts;
pub mod contacts;
pub mod crm;
pub mod inbox;
pub mod leads;
pub mod media;
pub mod members;
pub mod numbers;
pub mod purchases;
pub mod sealed;
pub mod segments;
pub mod templates;
pub mod transfer;
pub mod webhooks;
pub mod whatsapp;

use sqlx::PgPool;

/// What every use case needs.
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// An id from a request: malformed ids are the same "not found" as other tenants' ids, so a
/// caller learns nothing about what exists elsewhere.
pub(crate) fn parse_id(raw: &str, not_found: &'static str) -> Result<uuid::Uuid, nexus_kernel::Error> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| nexus_kernel::Error::not_found(not_found))
}
