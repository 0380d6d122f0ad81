//! Every column commerce seals, with the context each row's value is sealed under (the same
//! function the sealing code calls), for `nexus-commerce reseal`.

use nexus_platform::reseal::{SealedColumn, by_uuid};

pub const COLUMNS: &[SealedColumn] = &[SealedColumn {
    table: "connections",
    key: "id",
    column: "credentials",
    context_from: "id",
    context: |v| by_uuid(v, super::suppliers::context),
}];
