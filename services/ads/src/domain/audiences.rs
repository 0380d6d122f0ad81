//! Custom audience members, normalized and SHA-256 hashed as Meta and TikTok require: never
//! sent in clear. Emails: trimmed and lower-cased. Phones: digits only with the country code,
//! no leading zeros or `+` (a number without a country code cannot be matched and is refused).

use nexus_kernel::Error;
use sha2::{Digest, Sha256};

/// The most members one audience upload takes.
pub const MAX_MEMBERS: usize = 100_000;

pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && !e.chars().any(char::is_whitespace)).then_some(e)
}

/// `+52 1 55 1234 5678` -> `5215512345678`; `0034 600 111 222` -> `34600111222`.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let t = raw.trim();
    // An international prefix is what tells us the country code is there.
    if !(t.starts_with('+') || t.starts_with("00")) {
        return None;
    }
    if t.chars().any(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))) {
        return None;
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_start_matches('0').to_owned();
    (8..=15).contains(&digits.len()).then_some(digits)
}

pub fn sha256_hex(normalized: &str) -> String {
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

/// Hashes of the members, deduplicated; how many inputs were dropped as unusable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashed {
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub dropped: usize,
}

pub fn hash_members(emails: &[String], phones: &[String]) -> Result<Hashed, Error> {
    if emails.len() + phones.len() > MAX_MEMBERS {
        return Err(Error::invalid("ads.audience_too_large")
            .with_param("max", MAX_MEMBERS.to_string())
            .with_violation("members", "too_many"));
    }
    let mut out = Hashed::default();
    for e in emails {
        match normalize_email(e) {
            Some(n) => out.emails.push(sha256_hex(&n)),
            None => out.dropped += 1,
        }
    }
    for p in phones {
        match normalize_phone(p) {
            Some(n) => out.phones.push(sha256_hex(&n)),
            None => out.dropped += 1,
        }
    }
    out.emails.sort();
    out.emails.dedup();
    out.phones.sort();
    out.phones.dedup();
    if out.emails.is_empty() && out.phones.is_empty() {
        return Err(Error::invalid("ads.audience_empty").with_violation("members", "empty"));
    }
    Ok(out)
}

/// ISO 3166-1 alpha-2 country codes (officially assigned).
const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

/// The smallest and largest lookalike ratio, in % of a country's population.
pub const LOOKALIKE_RATIO: std::ops::RangeInclusive<i32> = 1..=10;
/// The most countries one lookalike spans.
pub const MAX_LOOKALIKE_COUNTRIES: usize = 25;

/// A lookalike as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookalikeSpec {
    pub name: String,
    /// Upper-case ISO codes, sorted, each once.
    pub countries: Vec<String>,
    pub ratio_percent: i32,
}

/// Checks a lookalike request of the audience named `source` before any platform call.
pub fn lookalike_spec(
    source: &str,
    name: &str,
    countries: &[String],
    ratio_percent: i32,
) -> Result<LookalikeSpec, Error> {
    if !LOOKALIKE_RATIO.contains(&ratio_percent) {
        return Err(Error::invalid("ads.lookalike_ratio_invalid")
            .with_param("min", LOOKALIKE_RATIO.start().to_string())
            .with_param("max", LOOKALIKE_RATIO.end().to_string())
            .with_violation("ratio_percent", "range"));
    }
    let mut codes: Vec<String> = countries.iter().map(|c| c.trim().to_ascii_uppercase()).collect();
    codes.sort();
    codes.dedup();
    if codes.is_empty() || codes.len() > MAX_LOOKALIKE_COUNTRIES {
        return Err(Error::invalid("ads.lookalike_countries_invalid")
            .with_param("max", MAX_LOOKALIKE_COUNTRIES.to_string())
            .with_violation("countries", "count"));
    }
    if let Some(bad) = codes.iter().find(|c| !COUNTRIES.contains(&c.as_str())) {
        return Err(Error::invalid("ads.lookalike_country_unknown")
            .with_param("country", bad.chars().take(12).collect::<String>())
            .with_violation("countries", "unknown"));
    }
    let name = match name.trim() {
        "" => format!("{} lookalike {ratio_percent} %", source.chars().take(170).collect::<String>()),
        n => n.to_owned(),
    };
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::invalid("ads.audience_invalid")
            .with_param("field", "name")
            .with_violation("name", "length"));
    }
    Ok(LookalikeSpec { name, countries: codes, ratio_percent })
}

/// A contact of a contact-book segment, as an audience reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentContact {
    pub email: String,
    pub phone: String,
    pub anonymized: bool,
    pub consents: Vec<ConsentMark>,
}

/// One of a contact's consents (any channel): its purpose and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentMark {
    pub purpose: String,
    pub status: String,
}

/// Whether a contact may be put in an ad audience. Advertising to someone is marketing, so the
/// contact must have granted marketing consent on some channel and withdrawn it on none (a
/// withdrawal anywhere is taken as "no marketing"; withdrawn on the channel `ads` it is the
/// contact's "do not sell or share"); an anonymized (erased) contact never is.
pub fn may_target(c: &SegmentContact) -> bool {
    let marketing = |status: &str| c.consents.iter().any(|k| k.purpose == "marketing" && k.status == status);
    !c.anonymized && marketing("granted") && !marketing("withdrawn")
}

/// Hashes gathered into platform batches while a segment is read: a full batch is handed out
/// only when one more hash arrives, so the last batch is always known to be the last (Meta's
/// session wants `last_batch_flag`) and at most one batch is held.
#[derive(Debug)]
pub struct Batcher {
    size: usize,
    held: Vec<String>,
}

impl Batcher {
    pub fn new(size: usize) -> Self {
        Batcher { size: size.max(1), held: Vec::new() }
    }

    /// Adds a hash; a full batch that is not the last, when there is one to send.
    pub fn push(&mut self, hash: String) -> Option<Vec<String>> {
        let full = (self.held.len() >= self.size).then(|| std::mem::take(&mut self.held));
        self.held.push(hash);
        full
    }

    /// The last batch (None when nothing is held).
    pub fn finish(&mut self) -> Option<Vec<String>> {
        (!self.held.is_empty()).then(|| std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_contacts_with_marketing_consent_are_targeted() {
        let mark = |purpose: &str, status: &str| ConsentMark { purpose: purpose.into(), status: status.into() };
        let with = |consents: Vec<ConsentMark>| SegmentContact { consents, ..SegmentContact::default() };
        assert!(may_target(&with(vec![mark("marketing", "granted")])));
        assert!(!may_target(&with(vec![])));
        assert!(!may_target(&with(vec![mark("transactional", "granted")])));
        assert!(!may_target(&with(vec![mark("marketing", "granted"), mark("marketing", "withdrawn")])));
        let erased = SegmentContact { anonymized: true, ..with(vec![mark("marketing", "granted")]) };
        assert!(!may_target(&erased));
    }

    #[test]
    fn lookalikes_are_checked_before_any_call() {
        assert_eq!(COUNTRIES.len(), 249);
        let ok = lookalike_spec("VIPs", "", &[" us".into(), "MX".into(), "US".into()], 3).unwrap();
        assert_eq!(ok.name, "VIPs lookalike 3 %");
        assert_eq!((ok.countries, ok.ratio_percent), (vec!["MX".to_owned(), "US".to_owned()], 3));
        for ratio in [0, 11, -1] {
            let e = lookalike_spec("a", "", &["US".into()], ratio).unwrap_err();
            assert_eq!(e.code(), "ads.lookalike_ratio_invalid");
        }
        assert_eq!(lookalike_spec("a", "", &[], 1).unwrap_err().code(), "ads.lookalike_countries_invalid");
        for bad in ["XX", "USA", "U", "EU"] {
            let e = lookalike_spec("a", "", &[bad.into()], 1).unwrap_err();
            assert_eq!(e.code(), "ads.lookalike_country_unknown", "{bad}");
        }
    }

    #[test]
    fn batches_are_full_until_the_last() {
        let mut b = Batcher::new(3);
        let sent: Vec<Vec<String>> = (0..7).filter_map(|i| b.push(i.to_string())).collect();
        assert_eq!(sent, [vec!["0", "1", "2"], vec!["3", "4", "5"]]);
        assert_eq!(b.finish(), Some(vec!["6".to_owned()]));
        assert_eq!(b.finish(), None);
        // Exactly one batch's worth: it is sent as the last.
        let mut b = Batcher::new(2);
        assert_eq!((b.push("a".into()), b.push("b".into())), (None, None));
        assert_eq!(b.finish(), Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn members_are_normalized_before_hashing() {
        assert_eq!(normalize_email("  Ana.Perez@Example.COM ").as_deref(), Some("ana.perez@example.com"));
        assert_eq!(normalize_email("not-an-email"), None);
        assert_eq!(normalize_phone("+52 1 55 1234 5678").as_deref(), Some("5215512345678"));
        assert_eq!(normalize_phone("0034 600-111-222").as_deref(), Some("34600111222"));
        // Without a country code the number cannot be matched.
        assert_eq!(normalize_phone("600 111 222"), None);
        // Independently computed (Python hashlib) SHA-256 of the normalized values.
        assert_eq!(
            sha256_hex("ana.perez@example.com"),
            "3c6c5c25f4b64020ae299c05c0e540df807d9aed7457b04b118cc234a6a58c6a"
        );
        let h =
            hash_members(&["ANA.PEREZ@example.com".into(), "ana.perez@example.com".into(), "x".into()], &[]).unwrap();
        assert_eq!((h.emails.len(), h.dropped), (1, 1));
    }
}
