//! Mail content: messages rendered in the recipient's language.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Locale};
use uuid::Uuid;

/// A queued message.
#[derive(Debug, Clone)]
pub struct StoredMail {
    pub id: Uuid,
    pub to_email: String,
    pub locale: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// Someone a mail goes to, in their language.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub email: String,
    pub name: String,
    pub locale: Locale,
}

/// Why a webhook endpoint was disabled, in `locale`: the text of a reason code messaging sends
/// (`failing`), or the code itself when it is one this version does not know yet.
pub fn webhook_disabled_reason(locale: Locale, reason: &str) -> String {
    nexus_i18n::try_message(locale, &format!("mail-webhook_disabled-reason-{reason}"), &[])
        .unwrap_or_else(|| reason.to_owned())
}

/// Subject and body of `mail-<kind>-subject` and `mail-<kind>-body` (plus the footer).
pub fn render(locale: Locale, kind: &str, args: &[(&str, &str)]) -> Result<(String, String), Error> {
    let render = |id: String| {
        nexus_i18n::try_message(locale, &id, args).ok_or_else(|| Error::internal(format!("mail template {id} missing")))
    };
    let subject = render(format!("mail-{kind}-subject"))?;
    let body = format!("{}\n\n--\n{}", render(format!("mail-{kind}-body"))?, render("mail-footer".into())?);
    Ok((subject, body))
}

/// The name a mail gives a platform or provider the ads service reports by code (`instagram`,
/// `meta`); a code this version does not know is quoted as it came.
pub fn platform_name(code: &str) -> String {
    let known = match code {
        "instagram" => "Instagram",
        "facebook" => "Facebook",
        "tiktok" => "TikTok",
        "youtube" => "YouTube",
        "meta" => "Meta",
        "google" => "Google",
        _ => return quoted(code, NAME_MAX),
    };
    known.to_owned()
}

/// The most characters a mail quotes of a name another party chose (an account, a platform).
pub const NAME_MAX: usize = 100;

/// The most characters a mail quotes of a platform's own message.
pub const REASON_MAX: usize = 500;

/// Text another party wrote (a platform's error message, an account name), made safe to quote in
/// a mail: one line (line breaks and other controls become spaces, so it can neither start a
/// header of its own nor fake a paragraph), no direction overrides (which could reorder the
/// mail's text around it), no angle brackets (a client that renders the text as HTML finds no
/// markup in it), at most `max` characters.
pub fn quoted(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let one_line = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_stays_one_line_without_markup_or_direction_overrides() {
        let q = quoted("Bad token\r\nBcc: victim@example.com\n<script>alert(1)</script>", REASON_MAX);
        assert_eq!(q, "Bad token Bcc: victim@example.com ‹script›alert(1)‹/script›");
        assert_eq!(quoted("a\u{202e}b\u{2028}c\u{0}d\t", 50), "a b c d");
        assert_eq!(quoted("  ", 50), "");
    }

    #[test]
    fn quoted_text_is_cut_at_the_bound() {
        let q = quoted(&"é".repeat(30), 10);
        assert_eq!(q.chars().count(), 10);
        assert!(q.ends_with('…'));
        assert_eq!(quoted("exactly ten", 11), "exactly ten");
    }

    #[test]
    fn platforms_are_named_and_unknown_codes_quoted() {
        assert_eq!(platform_name("tiktok"), "TikTok");
        assert_eq!(platform_name("mastodon"), "mastodon");
        assert_eq!(platform_name("x\n<b>"), "x ‹b›");
    }
}
