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
