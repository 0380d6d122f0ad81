//! Every column analytics seals, with the context each row's value is sealed under (the same
//! functions the sealing code calls), for `nexus-analytics reseal`.

use nexus_kernel::TenantId;
use nexus_platform::reseal::{SealedColumn, by_uuid};

use crate::domain::workspace::{key_context, salt_context};

pub const COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "workspace_settings",
        key: "tenant_id",
        column: "salt_sealed",
        context_from: "tenant_id",
        context: |v| by_uuid(v, |t| salt_context(TenantId::from_uuid(t))),
    },
    // A write key's context is its workspace, not its row.
    SealedColumn {
        table: "write_keys",
        key: "id",
        column: "key_sealed",
        context_from: "tenant_id",
        context: |v| by_uuid(v, |t| key_context(TenantId::from_uuid(t))),
    },
];
