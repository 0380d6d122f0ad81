//! Outgoing mail. Messages are rendered in the recipient's language and written to `mail_outbox`
//! in the same transaction as the change they announce; a sender delivers them over SMTP, or, in
//! local mode, they stay readable through `ListLocalMail` so the product works offline.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use nexus_kernel::{Error, ErrorKind, Locale};
use nexus_platform::db::{self, DbResultExt};
use nexus_platform::identity::Principal;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::App;
use crate::config::{MailConfig, MailMode};
use crate::domain::mail::{StoredMail, render};
use crate::repo;

/// Renders `mail-<kind>-subject` and `mail-<kind>-body` (plus the footer) and queues the message.
pub async fn enqueue(
    conn: &mut PgConnection,
    to: &str,
    locale: Locale,
    kind: &str,
    args: &[(&str, &str)],
) -> Result<(), Error> {
    let (subject, body) = render(locale, kind, args)?;
    repo::mail::insert(conn, to, locale.code(), kind, &subject, &body).await
}

impl App {
    /// Local mail is readable only in local mode (else it goes out over SMTP).
    pub fn require_local_mail(&self) -> Result<(), Error> {
        if self.cfg.mail.mode == MailMode::Local {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::FailedPrecondition, "auth.local_mail_disabled"))
        }
    }

    /// Local mail (local mode only): a service reads anyone's, a signed-in user only their own.
    #[tracing::instrument(skip_all)]
    pub async fn list_local_mail(&self, p: &Principal, to: &str, limit: u32) -> Result<Vec<StoredMail>, Error> {
        self.require_local_mail()?;
        let requested = to.trim().to_lowercase();
        let to = if p.require_internal().is_ok() {
            requested
        } else {
            let own = self.own_email(p).await?;
            if !requested.is_empty() && requested != own {
                return Err(Error::forbidden("auth.permission_denied"));
            }
            own
        };
        let limit = if limit == 0 { 20 } else { limit.min(100) };
        let mut conn = self.pool.acquire().await.db()?;
        repo::mail::list(&mut conn, &to, i64::from(limit)).await
    }
}

/// Delivers queued mail over SMTP until `stop`; does nothing in local mode.
pub async fn run_sender(pool: PgPool, cfg: MailConfig, stop: CancellationToken) {
    if cfg.mode == MailMode::Local {
        return;
    }
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(cfg.smtp_url.expose()) {
        Ok(b) => b.timeout(Some(Duration::from_secs(20))).build(),
        Err(e) => {
            tracing::error!(error = %e, "mail.smtp_url is not a valid SMTP URL; mail will not be sent");
            return;
        }
    };
    let from: Mailbox = match cfg.from.parse() {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "mail.from is not a valid mailbox");
            return;
        }
    };
    loop {
        if let Err(e) = send_batch(&pool, &transport, &from).await {
            tracing::warn!(error = %e, "mail batch failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn send_batch(
    pool: &PgPool,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> Result<(), Error> {
    let mut tx = pool.begin().await.db()?;
    for m in repo::mail::due(&mut tx).await? {
        let result = async {
            let to: Mailbox = m.to_email.parse().map_err(|e| format!("recipient: {e}"))?;
            let msg = Message::builder()
                .from(from.clone())
                .to(to)
                .subject(m.subject.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(m.body.clone())
                .map_err(|e| e.to_string())?;
            transport.send(msg).await.map(|_| ()).map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = &result {
            tracing::warn!(mail_id = %m.id, error = %e, "mail not sent");
        }
        repo::mail::record_attempt(&mut tx, m.id, result.err()).await?;
    }
    db::commit(tx).await
}

/// Blanks the bodies (which hold single-use links) of mail created more than `retention` ago
/// that is done with: sent, given up on, or (in local mode) any. Recipient, subject and times
/// stay. Returns how many were blanked.
pub async fn purge_bodies(pool: &PgPool, retention: Duration, local: bool) -> Result<u64, Error> {
    let mut conn = pool.acquire().await.db()?;
    repo::mail::purge_bodies(&mut conn, retention, local).await
}

/// Runs [`purge_bodies`] at start and then periodically (a quarter of the retention, between one
/// second and one hour) until `stop`.
pub async fn run_purger(pool: PgPool, cfg: MailConfig, stop: CancellationToken) {
    let every = (cfg.body_retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        match purge_bodies(&pool, cfg.body_retention, cfg.mode == MailMode::Local).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old mail bodies blanked"),
            Err(e) => tracing::warn!(error = %e, "mail body purge failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
