//! Video service tests over gRPC, with the real subscriptions service, Postgres and NATS, and
//! fake D-ID and ElevenLabs servers.

mod avatars;
mod downloads;
mod local;
mod messages;
mod pipeline;
mod s3;
mod schema;
mod scripts;
mod support;
mod videos;
mod webhooks;
