//! Every error code the service can answer with has a message (in all five languages: the i18n
//! crate's test holds each locale to the English ids), so no caller sees the generic fallback.

/// Dotted strings in the sources that are config keys or sealing contexts, not error codes.
const NOT_CODES: &[&str] =
    &["ads.sealing_keys", "ads.oauth_states", "ads.connections", "ads.connection", "ads.campaign"];

const ARGS: &[(&str, &str)] = &[
    ("field", "f"),
    ("provider", "meta"),
    ("account", "act_1"),
    ("currency", "USD"),
    ("minimum", "1.00"),
    ("step", "ad"),
    ("goal", "APP_INSTALLS"),
    ("objective", "OUTCOME_TRAFFIC"),
    ("category", "HOUSING"),
    ("max", "255"),
    ("cap", "100.00"),
    ("status", "failed"),
    ("platform", "instagram"),
    ("format", "carousel"),
    ("min", "2"),
    ("max_mb", "8"),
    ("options", "SELF_ONLY"),
    ("column", "colour"),
    ("slot", "1"),
    ("max_days", "400"),
    ("size", "1000"),
    ("country", "XX"),
];

#[test]
fn every_error_code_has_a_message_in_every_language() {
    nexus_testkit::messages::assert_every_code_has_a_message(env!("CARGO_MANIFEST_DIR"), "ads", 10, NOT_CODES, ARGS);
}

#[test]
fn refusals_read_in_spanish_and_arabic() {
    use nexus_kernel::Locale;
    let params = vec![("field".to_owned(), "budget_minor".to_owned())];
    let es = nexus_i18n::error_message(Locale::Es, "ads.campaign_invalid", &params, 400);
    let ar = nexus_i18n::error_message(Locale::Ar, "ads.campaign_invalid", &params, 400);
    assert!(es.contains("budget_minor") && es.contains("no es válido"), "{es}");
    assert!(ar.contains("budget_minor") && ar.contains("غير صالح"), "{ar}");
}
