//! Analytics tests over gRPC with real Postgres and NATS.

mod churn;
mod domain_events;
mod ingest;
mod privacy;
mod reports;
mod reseal;
mod retention;
mod revenue_metrics;
mod rollups;
mod support;
mod tenancy;
