//! Outgoing mail. Messages are rendered in the recipient's language and written to `mail_outbox`
//! in the same transaction as the change they announce; a sender delivers them over SMTP, or, in
//! local mode, they stay readable through `ListLocalMail` so the product works offline.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use nexus_kernel::{Error, Locale};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::config::{MailConfig, MailMode};

/// Renders `mail-<kind>-subject` and `mail-<kind>-body` (plus the footer) and queues the message.
pub async fn enqueue(
    conn: &mut PgConnection,
    to: &str,
    locale: Locale,
    kind: &str,
    args: &[(&str, &str)],
) -> Result<(), Error> {
    let render = |id: String| {
        nexus_i18n::try_message(locale, &id, args).ok_or_else(|| Error::internal(format!("mail template {id} missing")))
    };
    let subject = render(format!("mail-{kind}-subject"))?;
    let body = format!("{}\n\n--\n{}", render(format!("mail-{kind}-body"))?, render("mail-footer".into())?);
    sqlx::query("INSERT INTO mail_outbox (to_email, locale, kind, subject, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(to)
        .bind(locale.code())
        .bind(kind)
        .bind(subject)
        .bind(body)
        .execute(conn)
        .await
        .map_err(Error::internal)?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredMail {
    pub id: uuid::Uuid,
    pub to_email: String,
    pub locale: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub async fn list(pool: &PgPool, to: &str, limit: i64) -> Result<Vec<StoredMail>, Error> {
    sqlx::query_as(
        "SELECT id, to_email, locale, subject, body, created_at FROM mail_outbox \
         WHERE ($1 = '' OR to_email = $1) ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(to)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(Error::internal)
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
    let mut tx = pool.begin().await.map_err(Error::internal)?;
    let rows: Vec<StoredMail> = sqlx::query_as(
        "SELECT id, to_email, locale, subject, body, created_at FROM mail_outbox \
         WHERE sent_at IS NULL AND attempts < 10 ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::internal)?;
    for m in rows {
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
        match result {
            Ok(()) => {
                sqlx::query("UPDATE mail_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = $1").bind(m.id)
            }
            Err(e) => {
                tracing::warn!(mail_id = %m.id, error = %e, "mail not sent");
                sqlx::query("UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                    .bind(m.id)
                    .bind(e)
            }
        }
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
    }
    tx.commit().await.map_err(Error::internal)
}

/// Blanks the bodies (which hold single-use links) of mail created more than `retention` ago
/// that is done with: sent, given up on, or (in local mode) any. Recipient, subject and times
/// stay. Returns how many were blanked.
pub async fn purge_bodies(pool: &PgPool, retention: Duration, local: bool) -> Result<u64, Error> {
    let purged = sqlx::query(
        "UPDATE mail_outbox SET body = '', body_purged_at = now() \
         WHERE body_purged_at IS NULL AND created_at < now() - make_interval(secs => $1) \
           AND ($2 OR sent_at IS NOT NULL OR attempts >= 10)",
    )
    .bind(retention.as_secs_f64())
    .bind(local)
    .execute(pool)
    .await
    .map_err(Error::internal)?
    .rows_affected();
    Ok(purged)
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
