//! Consent per channel and purpose, and the reply keywords that withdraw or give it.

use nexus_kernel::Locale;
use unicode_normalization::UnicodeNormalization;

nexus_kernel::word_enum! {
    /// A way of reaching a contact. `ads` is the ad platforms (the contact hashed into a custom
    /// audience): withdrawn, it is the contact's "do not sell or share" (CCPA).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Channel: invalid "messaging.invalid_channel", param "channel" {
        Whatsapp = "whatsapp",
        Email = "email",
        Sms = "sms",
        Ads = "ads",
    }
}

nexus_kernel::word_enum! {
    /// Why we message: marketing needs opt-in; transactional messages answer what the person did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Purpose: invalid "messaging.invalid_purpose", param "purpose" {
        Marketing = "marketing",
        Transactional = "transactional",
    }
}

nexus_kernel::word_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum ConsentStatus: invalid "messaging.invalid_consent", param "status" {
        Granted = "granted",
        Withdrawn = "withdrawn",
    }
}

/// The current consent of a contact for one channel and purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    pub channel: Channel,
    pub purpose: Purpose,
    pub status: ConsentStatus,
    /// form, import, keyword, api, …
    pub source: String,
    /// The wording agreed to, or the reply that withdrew consent.
    pub proof: String,
    pub changed_at: chrono::DateTime<chrono::Utc>,
}

/// Longest proof text kept with a consent change (the checkbox wording, the message replied to).
pub const PROOF_MAX: usize = 2_000;

/// What a reply keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordAction {
    OptOut,
    OptIn,
}

/// Opt-out words people send, per language, written as they are compared (see [`fold`]).
const OPT_OUT: &[(Locale, &[&str])] = &[
    (Locale::En, &["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "opt out", "optout"]),
    (Locale::Es, &["baja", "darme de baja", "alto", "parar", "detener", "cancelar", "no mas", "stop"]),
    (Locale::Pt, &["parar", "sair", "cancelar", "descadastrar", "remover", "nao quero", "stop"]),
    (Locale::He, &["הסר", "הסרה", "עצור", "הפסק", "ביטול", "בטל"]),
    (Locale::Ar, &["الغاء", "الغاء الاشتراك", "توقف", "ايقاف", "قف", "stop"]),
];

/// Words that give consent back after an opt-out.
const OPT_IN: &[(Locale, &[&str])] = &[
    (Locale::En, &["start", "unstop", "subscribe", "yes"]),
    (Locale::Es, &["alta", "suscribir", "si"]),
    (Locale::Pt, &["voltar", "inscrever", "sim"]),
    (Locale::He, &["הרשם", "הצטרף", "כן"]),
    (Locale::Ar, &["اشتراك", "ابدا", "نعم"]),
];

/// A reply reduced to what keyword matching compares: compatibility-normalized, lower-case,
/// accents and Hebrew/Arabic vowel marks removed, Arabic alef and yeh forms unified, tatweel and
/// punctuation dropped, whitespace collapsed. "¡BAJA!", "Baja." and "baja" compare equal, as do
/// "إلغاء" and "الغاء".
pub fn fold(text: &str) -> String {
    let decomposed: String = text.nfkd().collect();
    let mut out = String::with_capacity(decomposed.len());
    for c in decomposed.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ى' => 'ي',
            'ة' => 'ه',
            c => c,
        };
        let mark = matches!(c, '\u{0300}'..='\u{036F}' | '\u{0591}'..='\u{05C7}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}');
        if mark {
            continue;
        }
        if c.is_alphanumeric() {
            out.push(c);
        } else if (c.is_whitespace() || c == '-' || c == '_') && !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

/// Whether a whole reply is an opt-out or opt-in keyword, and in which language it was said.
/// Only the whole message counts ("stop" opts out; "don't stop the offers" does not).
pub fn keyword(text: &str) -> Option<(KeywordAction, Locale)> {
    if text.chars().count() > 40 {
        return None;
    }
    let folded = fold(text);
    let find = |table: &[(Locale, &[&str])]| {
        table.iter().find_map(|(l, words)| words.iter().any(|w| fold(w) == folded).then_some(*l))
    };
    find(OPT_OUT).map(|l| (KeywordAction::OptOut, l)).or_else(|| find(OPT_IN).map(|l| (KeywordAction::OptIn, l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_words_in_every_language() {
        for (text, locale) in [
            ("STOP", Locale::En),
            ("  Unsubscribe. ", Locale::En),
            ("¡BAJA!", Locale::Es),
            ("No más", Locale::Es),
            ("PARAR", Locale::Es),
            ("Descadastrar", Locale::Pt),
            ("não quero", Locale::Pt),
            ("הסר", Locale::He),
            ("הֲסֵר", Locale::He),
            ("إلغاء", Locale::Ar),
            ("الغاء", Locale::Ar),
            ("إلغاء الاشتراك", Locale::Ar),
            ("تـوقـف", Locale::Ar),
        ] {
            assert_eq!(keyword(text), Some((KeywordAction::OptOut, locale)), "{text}");
        }
    }

    #[test]
    fn opt_in_words_and_ordinary_messages() {
        assert_eq!(keyword("START"), Some((KeywordAction::OptIn, Locale::En)));
        assert_eq!(keyword("Sí"), Some((KeywordAction::OptIn, Locale::Es)));
        assert_eq!(keyword("نعم"), Some((KeywordAction::OptIn, Locale::Ar)));
        for text in ["don't stop the offers", "stopped", "hello", "", "stop stop stop stop stop stop stop stop stop"] {
            assert_eq!(keyword(text), None, "{text}");
        }
    }

    #[test]
    fn every_language_has_opt_out_words() {
        for l in Locale::ALL {
            assert!(OPT_OUT.iter().any(|(x, w)| *x == l && !w.is_empty()), "{l}");
            assert!(OPT_IN.iter().any(|(x, w)| *x == l && !w.is_empty()), "{l}");
        }
    }
}
