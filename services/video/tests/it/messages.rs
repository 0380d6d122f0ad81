//! Every error code the service can answer with has a message (in all five languages: the i18n
//! crate's test holds each locale to the English ids), so no caller sees the generic fallback.

use nexus_kernel::Locale;

/// Dotted strings in the sources that are price-table actions, not error codes.
const NOT_CODES: &[&str] = &["video.render_minute"];

/// Values for every parameter the service's errors carry (a message naming another is wrong).
const ARGS: &[(&str, &str)] = &[
    ("field", "f"),
    ("max", "1"),
    ("language", "fr"),
    ("aspect_ratio", "4:3"),
    ("status", "done"),
    ("size", "10"),
    ("min", "1"),
    ("music", "jazz"),
];

#[test]
fn every_error_code_has_a_message_in_every_language() {
    nexus_testkit::messages::assert_every_code_has_a_message(env!("CARGO_MANIFEST_DIR"), "video", 13, NOT_CODES, ARGS);
    // Failure codes from the providers the pipeline records are messages too.
    for code in ["provider.quota_exceeded", "provider.rate_limited", "provider.unavailable", "provider.invalid_request"]
    {
        assert!(nexus_i18n::try_message(Locale::Ar, &nexus_i18n::message_id(code), ARGS).is_some(), "{code}");
    }
}
