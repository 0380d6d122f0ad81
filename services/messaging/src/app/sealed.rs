//! Every column messaging seals, with the context each row's value is sealed under (the same
//! functions the sealing code calls), for `nexus-messaging reseal`.

use nexus_platform::reseal::{SealedColumn, by_uuid};

use super::webhooks::secret_context;
use super::whatsapp::token_context;

pub const COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "webhook_endpoints",
        key: "id",
        column: "secret_sealed",
        context_from: "id",
        context: |v| by_uuid(v, |id| secret_context("secret", id)),
    },
    SealedColumn {
        table: "webhook_endpoints",
        key: "id",
        column: "previous_secret_sealed",
        context_from: "id",
        context: |v| by_uuid(v, |id| secret_context("previous_secret", id)),
    },
    // Local sandbox numbers keep an empty token: nothing sealed, skipped.
    SealedColumn {
        table: "wa_numbers",
        key: "id",
        column: "token_sealed",
        context_from: "id",
        context: |v| by_uuid(v, token_context),
    },
];
