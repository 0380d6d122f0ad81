//! NATS JetStream: connection with endless reconnect, stream provisioning, subject naming.
//!
//! Subjects are `nexus.<service>.<entity>.<verb>`; each producing service has one stream
//! `NEXUS_<SERVICE>` over `nexus.<service>.>`. Dead letters go to `nexus.dlq.<consumer>` in the
//! `NEXUS_DLQ` stream. A configured prefix (tests) is put in front of every subject and stream.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::config::NatsConfig;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats connect: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("jetstream stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("nats credentials: {0}")]
    Credentials(std::io::Error),
}

#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    cfg: NatsConfig,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("url", &self.cfg.url).field("prefix", &self.cfg.prefix).finish()
    }
}

/// `nats://user:pw@host:4222` → (`nats://host:4222`, Some((user, pw))), percent-decoded.
fn split_user_info(raw: &str) -> (String, Option<(String, String)>) {
    let Ok(mut url) = url::Url::parse(raw) else { return (raw.to_owned(), None) };
    if url.username().is_empty() {
        return (raw.to_owned(), None);
    }
    let decode = |s: &str| percent_decode(s);
    let user = decode(url.username());
    let password = decode(url.password().unwrap_or(""));
    let _ = url.set_username("");
    let _ = url.set_password(None);
    (url.to_string(), Some((user, password)))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

impl Bus {
    /// Connects in the background: returns at once and keeps retrying, so a process can start
    /// (not ready) before NATS is up and recovers by itself when NATS comes back.
    pub async fn connect(service: &str, cfg: &NatsConfig) -> Result<Bus, BusError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("nexus-{service}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .ping_interval(Duration::from_secs(10))
            // Quick first retries, capped: an operator restarting NATS should not wait long.
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(2))
            });
        if !cfg.credentials.is_empty() {
            opts = opts.credentials(cfg.credentials.expose()).map_err(BusError::Credentials)?;
        }
        // `nats://user:password@host`: each service's own NATS user (see k8s/base/nats). The
        // client does not read the URL's user info once options are given, so it is passed here
        // and taken out of the address.
        let (url, user) = split_user_info(&cfg.url);
        if let Some((user, password)) = user {
            opts = opts.user_and_password(user, password);
        }
        let client = opts.connect(url.as_str()).await?;
        let js = jetstream::new(client.clone());
        Ok(Bus { client, js, cfg: cfg.clone() })
    }

    pub fn config(&self) -> &NatsConfig {
        &self.cfg
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// `nexus.auth.user.signed_up` -> `<prefix>nexus.auth.user.signed_up`.
    pub fn subject(&self, subject: &str) -> String {
        format!("{}{subject}", self.cfg.prefix)
    }

    /// Removes the prefix from a received subject.
    pub fn strip_prefix<'a>(&self, subject: &'a str) -> &'a str {
        subject.strip_prefix(self.cfg.prefix.as_str()).unwrap_or(subject)
    }

    /// Stream names cannot hold dots: `t1.` + `auth` -> `T1_NEXUS_AUTH`.
    pub fn stream_name(&self, producer: &str) -> String {
        let prefix: String = self
            .cfg
            .prefix
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
            .collect();
        format!("{prefix}NEXUS_{}", producer.to_ascii_uppercase())
    }

    pub fn dlq_subject(&self, consumer: &str) -> String {
        self.subject(&format!("nexus.dlq.{consumer}"))
    }

    /// Creates (or finds) the stream of a producing service.
    pub async fn ensure_service_stream(&self, service: &str) -> Result<stream::Stream, BusError> {
        self.ensure_stream(&self.stream_name(service), vec![self.subject(&format!("nexus.{service}.>"))]).await
    }

    /// Creates (or finds) the dead-letter stream. Dead letters are kept longer than events.
    pub async fn ensure_dlq_stream(&self) -> Result<stream::Stream, BusError> {
        self.ensure_stream(&self.stream_name("dlq"), vec![self.subject("nexus.dlq.>")]).await
    }

    async fn ensure_stream(&self, name: &str, subjects: Vec<String>) -> Result<stream::Stream, BusError> {
        let config = stream::Config {
            name: name.to_owned(),
            subjects,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: self.cfg.stream_max_age,
            duplicate_window: self.cfg.duplicate_window,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(|e| BusError::Stream { stream: name.to_owned(), message: e.to_string() })
    }

    /// Deletes every stream whose name starts with this bus's prefix (test clean-up).
    pub async fn delete_prefixed_streams(&self) {
        use futures::StreamExt;
        if self.cfg.prefix.is_empty() {
            return;
        }
        let marker = self.stream_name("");
        let mut names = self.js.stream_names();
        let mut doomed = Vec::new();
        while let Some(Ok(name)) = names.next().await {
            if name.starts_with(&marker) {
                doomed.push(name);
            }
        }
        for name in doomed {
            let _ = self.js.delete_stream(&name).await;
        }
    }
}

#[cfg(test)]
mod user_info_tests {
    use super::split_user_info;

    #[test]
    fn user_info_is_taken_out_of_the_address() {
        assert_eq!(split_user_info("nats://127.0.0.1:4222"), ("nats://127.0.0.1:4222".to_owned(), None));
        let (url, user) = split_user_info("nats://nexus_auth:p%40ss+w@nats.nats.svc:4222");
        assert_eq!(url, "nats://nats.nats.svc:4222");
        assert_eq!(user, Some(("nexus_auth".to_owned(), "p@ss+w".to_owned())));
    }
}
