//! Every error code the service can answer with has a message (in all five languages: the i18n
//! crate's test holds each locale to the English ids), so no caller sees the generic fallback.

/// Dotted strings in the sources that are config keys, not error codes.
const NOT_CODES: &[&str] = &[
    "commerce.sealing_keys",
    "commerce.reporting_currency",
    "commerce.connection",
    "commerce.product",
    "commerce.price",
    "commerce.stock",
    "commerce.order",
    "commerce.sale",
    "commerce.commission",
];

const ARGS: &[(&str, &str)] = &[
    ("field", "f"),
    ("provider", "cj"),
    ("detail", "d"),
    ("expected", "USD"),
    ("currency", "EUR"),
    ("from", "USD"),
    ("to", "EUR"),
    ("day", "2026-11-02"),
    ("status", "s"),
    ("sku", "k"),
    ("remaining", "4.98"),
    ("languages", "en, es"),
];

#[test]
fn every_error_code_has_a_message_in_every_language() {
    nexus_testkit::messages::assert_every_code_has_a_message(
        env!("CARGO_MANIFEST_DIR"),
        "commerce",
        31,
        NOT_CODES,
        ARGS,
    );
}
