//! Every column auth seals, with the context each row's value is sealed under (the same
//! functions the sealing code calls), for `nexus-auth reseal`.

use nexus_platform::reseal::{SealedColumn, by_uuid};

use super::mfa::mfa_context;
use crate::domain::{oauth, sessions, signing};

pub const COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "users",
        key: "id",
        column: "mfa_secret_sealed",
        context_from: "id",
        context: |v| by_uuid(v, mfa_context),
    },
    // A pending secret is moved to `mfa_secret_sealed` as is on confirmation: same context.
    SealedColumn {
        table: "users",
        key: "id",
        column: "mfa_pending_sealed",
        context_from: "id",
        context: |v| by_uuid(v, mfa_context),
    },
    SealedColumn {
        table: "signing_keys",
        key: "kid",
        column: "private_key_sealed",
        context_from: "kid",
        context: |v| Some(signing::context(v)),
    },
    SealedColumn {
        table: "sessions",
        key: "id",
        column: "successor_sealed",
        context_from: "id",
        context: |v| by_uuid(v, sessions::successor_context),
    },
    SealedColumn {
        table: "oauth_states",
        key: "state_hash",
        column: "verifier_sealed",
        context_from: "state_hash",
        context: |v| hex::decode(v).ok().map(|h| oauth::verifier_context(&h)),
    },
];
