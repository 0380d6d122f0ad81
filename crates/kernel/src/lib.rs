//! Shared vocabulary of NexusOne: typed ids, tenancy, money, credits, locales, paging and the one
//! error-kind enum with its mappings. Domain code of every service depends on this crate and on
//! nothing else of ours.

pub mod enums;
pub mod error;
pub mod ids;
pub mod locale;
pub mod money;
pub mod paging;

pub use error::{Error, ErrorKind, Result};
pub use ids::{TenantId, UserId, WorkspaceId};
pub use locale::{Locale, TextDirection};
pub use money::{Credits, Currency, Money};
pub use paging::{Cursor, Page, PageRequest};
