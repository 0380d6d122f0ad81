//! The five locales NexusOne speaks, their text direction, and `Accept-Language` negotiation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Es,
    Pt,
    He,
    Ar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextDirection {
    Ltr,
    Rtl,
}

impl TextDirection {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ltr => "ltr",
            Self::Rtl => "rtl",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported locale {0:?}; use one of en, es, pt, he, ar")]
pub struct UnsupportedLocale(pub String);

impl Locale {
    pub const ALL: [Locale; 5] = [Self::En, Self::Es, Self::Pt, Self::He, Self::Ar];

    pub const fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
            Self::Pt => "pt",
            Self::He => "he",
            Self::Ar => "ar",
        }
    }

    pub const fn direction(self) -> TextDirection {
        match self {
            Self::He | Self::Ar => TextDirection::Rtl,
            _ => TextDirection::Ltr,
        }
    }

    /// Matches a BCP-47 tag by its primary language: `pt-BR` is Portuguese, `iw` is the legacy
    /// code for Hebrew.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Self::En),
            "es" => Some(Self::Es),
            "pt" => Some(Self::Pt),
            "he" | "iw" => Some(Self::He),
            "ar" => Some(Self::Ar),
            _ => None,
        }
    }

    /// Picks the locale for a response: the user's saved setting wins, then the best supported
    /// entry of `Accept-Language` by q-value (ties keep header order), then English.
    pub fn negotiate(user_setting: Option<Locale>, accept_language: Option<&str>) -> Locale {
        if let Some(l) = user_setting {
            return l;
        }
        accept_language.and_then(Self::best_from_accept_language).unwrap_or_default()
    }

    fn best_from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(u16, Locale)> = None;
        // A hostile header can be long; we only look at the first few dozen entries.
        for part in header.split(',').take(32) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=")).map(parse_q).unwrap_or(Some(1000));
            let (Some(q), Some(locale)) = (q, Self::from_tag(tag)) else {
                continue;
            };
            if q > 0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, l)| l)
    }
}

/// q-values as thousandths, so no floats are compared.
fn parse_q(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().chain(std::iter::repeat(b'0')).take(3).enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    let q = int * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

impl FromStr for Locale {
    type Err = UnsupportedLocale;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "en" => Ok(Self::En),
            "es" => Ok(Self::Es),
            "pt" => Ok(Self::Pt),
            "he" => Ok(Self::He),
            "ar" => Ok(Self::Ar),
            other => Err(UnsupportedLocale(other.to_owned())),
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_is_rtl_for_hebrew_and_arabic_only() {
        for l in Locale::ALL {
            let rtl = matches!(l, Locale::He | Locale::Ar);
            assert_eq!(l.direction() == TextDirection::Rtl, rtl, "{l}");
        }
    }

    #[test]
    fn negotiation_prefers_user_setting_then_header_then_english() {
        assert_eq!(Locale::negotiate(Some(Locale::He), Some("es")), Locale::He);
        assert_eq!(Locale::negotiate(None, Some("fr-FR, pt-BR;q=0.8, es;q=0.5")), Locale::Pt);
        assert_eq!(Locale::negotiate(None, Some("es;q=0.2, ar;q=0.9")), Locale::Ar);
        assert_eq!(Locale::negotiate(None, Some("ar;q=0, es;q=0.1")), Locale::Es);
        assert_eq!(Locale::negotiate(None, Some("fr, de")), Locale::En);
        assert_eq!(Locale::negotiate(None, Some("iw")), Locale::He);
        assert_eq!(Locale::negotiate(None, Some("es;q=abc, pt")), Locale::Pt);
        assert_eq!(Locale::negotiate(None, Some("")), Locale::En);
        assert_eq!(Locale::negotiate(None, None), Locale::En);
    }

    #[test]
    fn q_values_parse_strictly() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("2"), None);
    }

    #[test]
    fn parses_only_supported_codes() {
        assert_eq!("ar".parse::<Locale>().unwrap(), Locale::Ar);
        assert!("fr".parse::<Locale>().is_err());
        assert!("EN".parse::<Locale>().is_err());
    }
}
