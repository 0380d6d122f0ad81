//! Integration tests of the ads service against real Postgres and NATS.

mod audience_segments;
mod audiences;
mod builder;
mod campaigns;
mod connections;
mod creatives;
mod creators;
mod insights;
mod management;
mod media;
mod messages;
mod platforms;
mod posts;
mod publishing;
mod reseal;
mod sandbox_ads;
mod scheduling;
mod schema;
mod support;
mod sweep;
mod targeting;
mod tiktok;
