//! "Every error code a service can answer with has a message": the codes are found in the
//! service's sources (string literals `"<service>.<name>"`), then looked up in every locale with
//! the parameters the service's errors carry, so no caller ever sees the generic fallback.

use std::collections::BTreeSet;
use std::path::Path;

use nexus_kernel::Locale;

/// Every `"<service>.<snake_case>"` literal in the `.rs` files under `dir`.
pub fn codes_in_sources(dir: &Path, service: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect(dir, &format!("\"{service}."), &mut out);
    out
}

fn collect(dir: &Path, quote: &str, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read the source folder") {
        let path = entry.expect("a source entry").path();
        if path.is_dir() {
            collect(&path, quote, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            for piece in text.split(quote).skip(1) {
                let name: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !name.is_empty() && piece[name.len()..].starts_with('"') {
                    out.insert(format!("{}{name}", &quote[1..]));
                }
            }
        }
    }
}

/// Finds the service's codes under `<crate>/src` (at least `at_least` of them, so a broken scan
/// cannot pass), skips `not_codes` (config keys and other dotted strings), and panics naming
/// every code without a message in any of the five locales, rendered with `args`.
pub fn assert_every_code_has_a_message(
    crate_dir: &str,
    service: &str,
    at_least: usize,
    not_codes: &[&str],
    args: &[(&str, &str)],
) {
    let codes = codes_in_sources(&Path::new(crate_dir).join("src"), service);
    assert!(codes.len() >= at_least, "found only {codes:?}");
    let mut missing = Vec::new();
    for code in codes.iter().filter(|c| !not_codes.contains(&c.as_str())) {
        for locale in Locale::ALL {
            if nexus_i18n::try_message(locale, &nexus_i18n::message_id(code), args).is_none() {
                missing.push(format!("{code} ({locale:?})"));
            }
        }
    }
    assert!(missing.is_empty(), "codes without a message: {missing:#?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_codes_and_names_the_ones_without_a_message() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(
            dir.path().join("src/lib.rs"),
            r#"fn f() { e("auth.unauthenticated"); g("auth.no_such_code_anywhere"); h("authx.not_this"); }"#,
        )
        .unwrap();
        let codes = codes_in_sources(&dir.path().join("src"), "auth");
        assert_eq!(codes.into_iter().collect::<Vec<_>>(), ["auth.no_such_code_anywhere", "auth.unauthenticated"]);
        let crate_dir = dir.path().to_str().unwrap().to_owned();
        let missing = std::panic::catch_unwind(|| assert_every_code_has_a_message(&crate_dir, "auth", 2, &[], &[]));
        assert!(missing.is_err(), "a code without a message must fail the check");
        assert_every_code_has_a_message(&crate_dir, "auth", 2, &["auth.no_such_code_anywhere"], &[]);
    }
}
