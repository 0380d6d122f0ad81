//! Every column ads seals, with the context each row's value is sealed under (the same functions
//! the sealing code calls), for `nexus-ads reseal`.

use nexus_platform::reseal::{SealedColumn, by_uuid};

use super::connections::{tokens_context, verifier_context};

pub const COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "connections",
        key: "id",
        column: "credentials",
        context_from: "id",
        context: |v| by_uuid(v, tokens_context),
    },
    SealedColumn {
        table: "oauth_states",
        key: "state_hash",
        column: "verifier_sealed",
        context_from: "state_hash",
        context: |v| hex::decode(v).ok().map(|h| verifier_context(&h)),
    },
];
