//! Every error code the service can answer with has a message (in all five languages: the i18n
//! crate's test holds each locale to the English ids), so no caller sees the generic fallback.

/// Dotted strings in the sources that are config keys, not error codes.
const NOT_CODES: &[&str] = &["messaging.sealing_keys", "messaging.whatsapp_send"];

/// Values for every parameter the service's errors carry (a message naming another is wrong).
const ARGS: &[(&str, &str)] = &[
    ("key", "k"),
    ("field", "f"),
    ("kind", "k"),
    ("channel", "c"),
    ("purpose", "p"),
    ("status", "s"),
    ("filter", "f"),
    ("stage", "s"),
    ("tag", "t"),
    ("type", "t"),
    ("max", "1"),
    ("min", "1"),
    ("limit", "1"),
    ("days", "30"),
    ("detail", "d"),
    ("op", "o"),
    ("name", "n"),
    ("outcome", "o"),
    ("line", "2"),
    ("target", "t"),
    ("header", "h"),
    ("templates", "t"),
    ("language", "fr"),
    ("category", "c"),
    ("code", "131047"),
    ("reason", "sha256_mismatch"),
];

#[test]
fn every_error_code_has_a_message_in_every_language() {
    nexus_testkit::messages::assert_every_code_has_a_message(
        env!("CARGO_MANIFEST_DIR"),
        "messaging",
        21,
        NOT_CODES,
        ARGS,
    );
}
