//! Every error code the service can answer with has a message (in all five languages: the i18n
//! crate's test holds each locale to the English ids), so no caller sees the generic fallback.

use std::path::Path;

use nexus_kernel::Locale;

/// Dotted strings in the sources that are config keys, not error codes.
const NOT_CODES: &[&str] = &["messaging.sealing_keys"];

/// Values for every parameter the service's errors carry (a message naming another is wrong).
const ARGS: &[(&str, &str)] = &[
    ("key", "k"),
    ("field", "f"),
    ("kind", "k"),
    ("channel", "c"),
    ("purpose", "p"),
    ("status", "s"),
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
];

fn codes_in(dir: &Path, out: &mut std::collections::BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            codes_in(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("\"messaging.").skip(1) {
                let name: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !name.is_empty() && piece[name.len()..].starts_with('"') {
                    out.insert(format!("messaging.{name}"));
                }
            }
        }
    }
}

#[test]
fn every_error_code_has_a_message_in_every_language() {
    let mut codes = std::collections::BTreeSet::new();
    codes_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut codes);
    assert!(codes.len() > 20, "found only {codes:?}");
    let mut missing = Vec::new();
    for code in codes.iter().filter(|c| !NOT_CODES.contains(&c.as_str())) {
        // Lookups fall back to English, and nexus-i18n's own test holds every locale to exactly
        // the English ids: an English message is a message in all five.
        if nexus_i18n::try_message(Locale::En, &nexus_i18n::message_id(code), ARGS).is_none() {
            missing.push(code.clone());
        }
    }
    assert!(missing.is_empty(), "codes without a message: {missing:#?}");
}
