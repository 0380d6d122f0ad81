//! Translating short store texts (product titles and descriptions): what a request may ask for.

use nexus_kernel::{Error, Locale};

/// Texts per request, and characters per text.
pub const MAX_TEXTS: usize = 20;
pub const MAX_CHARS: usize = 20_000;

/// A checked request: texts in `source`, to be had in every one of `targets`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TranslationInput {
    pub texts: Vec<String>,
    pub source: Locale,
    pub targets: Vec<Locale>,
}

fn invalid(field: &str) -> Error {
    Error::invalid("content.translation_invalid").with_param("field", field).with_violation(field, "invalid")
}

impl TranslationInput {
    pub fn parse(texts: &[String], source: &str, targets: &[String]) -> Result<Self, Error> {
        if texts.is_empty() || texts.len() > MAX_TEXTS || texts.iter().any(|t| t.chars().count() > MAX_CHARS) {
            return Err(invalid("texts"));
        }
        let source: Locale = source.parse().map_err(|_| invalid("source_language"))?;
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            let l: Locale = t.parse().map_err(|_| invalid("target_languages"))?;
            if l == source || out.contains(&l) {
                return Err(invalid("target_languages"));
            }
            out.push(l);
        }
        if out.is_empty() {
            return Err(invalid("target_languages"));
        }
        Ok(Self { texts: texts.to_vec(), source, targets: out })
    }
}

impl TranslationInput {
    /// Tokens a model may write for this: every text in every language, with room for scripts
    /// that take more tokens than the source, at least `floor`, at most 16,000. The credit hold
    /// covers this much, so what a model writes is always paid for.
    pub fn output_tokens(&self, floor: u32) -> u32 {
        let chars: usize = self.texts.iter().map(|t| t.chars().count()).sum();
        let room = u32::try_from(chars * self.targets.len()).unwrap_or(u32::MAX).saturating_mul(2) / 3 + 200;
        room.clamp(floor.min(16_000), 16_000)
    }
}

/// One target language's texts, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub language: Locale,
    pub texts: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn only_the_five_languages_each_once_and_never_the_source() {
        let ok = TranslationInput::parse(&s(&["Mug"]), "en", &s(&["es", "ar"])).unwrap();
        assert_eq!(ok.targets, vec![Locale::Es, Locale::Ar]);
        for (texts, source, targets, field) in [
            (s(&[]), "en", s(&["es"]), "texts"),
            (s(&["Mug"]), "fr", s(&["es"]), "source_language"),
            (s(&["Mug"]), "en", s(&["fr"]), "target_languages"),
            (s(&["Mug"]), "en", s(&["es-ES"]), "target_languages"),
            (s(&["Mug"]), "en", s(&["en"]), "target_languages"),
            (s(&["Mug"]), "en", s(&["es", "es"]), "target_languages"),
            (s(&["Mug"]), "en", s(&[]), "target_languages"),
            (vec!["x".repeat(MAX_CHARS + 1)], "en", s(&["es"]), "texts"),
            (vec!["x".to_owned(); MAX_TEXTS + 1], "en", s(&["es"]), "texts"),
        ] {
            let e = TranslationInput::parse(&texts, source, &targets).unwrap_err();
            assert_eq!(e.code(), "content.translation_invalid");
            assert_eq!(e.params().iter().find(|(k, _)| k == "field").map(|(_, v)| v.as_str()), Some(field));
        }
    }
}
