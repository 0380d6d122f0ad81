//! With SMTP configured, queued mail is delivered by a real SMTP client in the user's language.

use std::time::Duration;

use nexus_testkit::eventually;
use nexus_testkit::smtp::FakeSmtp;

use crate::support::*;

#[tokio::test]
async fn mail_goes_out_over_smtp_in_the_recipient_s_language() {
    let smtp = FakeSmtp::start().await;
    let url = smtp.url();
    let auth = start_auth(&[
        ("NEXUS_MAIL__MODE", "smtp"),
        ("NEXUS_MAIL__SMTP_URL", &url),
        ("NEXUS_MAIL__FROM", "NexusOne <no-reply@nexus.test>"),
    ])
    .await;
    let email = unique_email("smtp");
    auth.sign_up(&email).await; // locale pt

    let delivered = eventually(Duration::from_secs(15), || {
        let n = smtp.received().len();
        async move { n >= 1 }
    })
    .await;
    assert!(delivered, "no mail reached the SMTP server");
    let mail = smtp.received().remove(0);
    assert!(mail.to.iter().any(|t| t.contains(&email)), "{:?}", mail.to);
    assert!(mail.from.contains("no-reply@nexus.test"));
    assert!(mail.data.contains("token="), "the verification link is in the body");
    let pt_subject = nexus_i18n::try_message(nexus_kernel::Locale::Pt, "mail-verify_email-subject", &[]).unwrap();
    let subject_line = mail
        .data
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .expect("subject header")
        .trim_start_matches("Subject:")
        .trim()
        .to_owned();
    assert_eq!(decode_header(&subject_line), pt_subject, "subject in Portuguese");
    let admin = auth.db.admin_pool().await;
    let sent = eventually(Duration::from_secs(5), || {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM auth.mail_outbox WHERE sent_at IS NOT NULL")
                .fetch_one(&admin)
                .await
                .unwrap()
                == 1
        }
    })
    .await;
    assert!(sent, "the row is marked sent");
    // In SMTP mode mail is not readable through the API.
    let refused = auth
        .client()
        .list_local_mail(nexus_proto::nexus::auth::v1::ListLocalMailRequest { to: email, limit: 1 })
        .await
        .unwrap_err();
    assert_eq!(code_of(&refused), "auth.local_mail_disabled");
}

/// Decodes RFC 2047 `=?utf-8?b?…?=` words (what lettre sends for non-ASCII); white space between
/// two encoded words is dropped, elsewhere kept.
fn decode_header(v: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    let mut prev_encoded = false;
    for w in v.split_whitespace() {
        let encoded =
            w.strip_prefix("=?utf-8?b?").or_else(|| w.strip_prefix("=?UTF-8?B?")).and_then(|r| r.strip_suffix("?="));
        if !(out.is_empty() || prev_encoded && encoded.is_some()) {
            out.push(' ');
        }
        match encoded {
            Some(b) => {
                out.push_str(&String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap())
            }
            None => out.push_str(w),
        }
        prev_encoded = encoded.is_some();
    }
    out
}
