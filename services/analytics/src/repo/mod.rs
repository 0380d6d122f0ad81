//! Every SQL statement of the service, one file per table group. Functions take the caller's
//! connection or transaction and answer with domain types or small structs.

pub mod audit;
pub mod churn;
pub mod events;
pub mod partitions;
pub mod plans;
pub mod reports;
pub mod revenue;
pub mod rollups;
pub mod settings;
pub mod write_keys;
