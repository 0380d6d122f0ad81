//! Content service tests over gRPC, with the real subscriptions service, Postgres and NATS.

mod agents;
mod generations;
mod images;
mod llm;
mod pages;
mod settlement;
mod support;
mod translations;
