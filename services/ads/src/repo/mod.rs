//! Every SQL statement of the ads service. Functions take `&mut PgConnection` (a tenant
//! transaction, or a system one for the expiry watch); row types stay private.

pub mod audience_members;
pub mod audiences;
pub mod builds;
pub mod campaigns;
pub mod connections;
pub mod feeds;
pub mod insights;
pub mod media;
pub mod oauth;
pub mod posts;
pub mod syncs;
