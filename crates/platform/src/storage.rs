//! Object storage shared by the services that keep files (video's renders and avatars,
//! messaging's inbound WhatsApp media): an `object_store` store, the local filesystem under
//! `storage.root` or an S3-compatible bucket (`storage.backend = "s3"`), configured per service
//! as `[storage]`. Keys are built by the caller from ids only, never from input. Files are
//! streamed into the store part by part with a size cap, never held whole in memory (a URL's
//! body through the safe outbound client, or any byte stream); reads stream ranges back out the
//! same way.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, WriteMultipart};
use serde::Deserialize;

use crate::config::{Secret, humantime_secs};
use crate::outbound::OutboundClient;

/// `[storage]` of a service that keeps files.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageConfig {
    /// `local` (a directory, `root`) or `s3` (an S3-compatible bucket, `s3.*`).
    pub backend: String,
    pub root: PathBuf,
    /// The largest file copied in (video names it after its videos, messaging after its media).
    #[serde(alias = "max_video_bytes", alias = "max_media_bytes")]
    pub max_bytes: u64,
    #[serde(with = "humantime_secs")]
    pub download_timeout: Duration,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3Config {
    pub bucket: String,
    /// Empty: Amazon S3 of `region`; else an S3-compatible endpoint (MinIO, R2, ...), path-style.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Plain `http://` endpoints (a store inside the cluster or a local one).
    pub allow_http: bool,
}

/// Bytes buffered per part while copying (one part in flight at a time): what a download costs
/// in memory. S3-compatible stores refuse parts under 5 MiB (but the last), so they get more.
const LOCAL_PART_BYTES: usize = 256 * 1024;
const S3_PART_BYTES: usize = 5 * 1024 * 1024;

pub struct Storage {
    store: Arc<dyn ObjectStore>,
    part_bytes: usize,
    pub max_bytes: u64,
    timeout: Duration,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("store", &self.store.to_string()).field("max_bytes", &self.max_bytes).finish()
    }
}

/// Why a copy failed: `permanent` when trying again cannot help (too large, refused address,
/// not found), else a passing problem.
#[derive(Debug, Clone)]
pub struct CopyError {
    pub permanent: bool,
    pub too_large: bool,
    pub reason: String,
}

impl CopyError {
    fn transient(reason: impl Into<String>) -> Self {
        Self { permanent: false, too_large: false, reason: reason.into() }
    }
    fn permanent(reason: impl Into<String>) -> Self {
        Self { permanent: true, too_large: false, reason: reason.into() }
    }
    fn too_large() -> Self {
        Self { permanent: true, too_large: true, reason: "file larger than the limit".into() }
    }
}

/// A stored file opened for reading: its total size, the inclusive range served, and the bytes.
pub struct Opened {
    pub size: u64,
    pub range: (u64, u64),
    pub body: BoxStream<'static, object_store::Result<bytes::Bytes>>,
}

/// A stored file opened for a signed link's download: whole or one byte range of it, with the
/// name and type it is served under.
pub struct Download {
    pub opened: Opened,
    pub partial: bool,
    pub filename: String,
    pub content_type: String,
}

impl Storage {
    pub fn new(cfg: &StorageConfig) -> anyhow::Result<Self> {
        let (store, part_bytes): (Arc<dyn ObjectStore>, usize) = match cfg.backend.as_str() {
            "local" => {
                std::fs::create_dir_all(&cfg.root)
                    .map_err(|e| anyhow::anyhow!("storage.root: cannot create {}: {e}", cfg.root.display()))?;
                let local = LocalFileSystem::new_with_prefix(&cfg.root)
                    .map_err(|e| anyhow::anyhow!("storage.root: {}: {e}", cfg.root.display()))?
                    .with_automatic_cleanup(true);
                (Arc::new(local), LOCAL_PART_BYTES)
            }
            "s3" => (Arc::new(Self::s3(&cfg.s3)?), S3_PART_BYTES),
            other => anyhow::bail!("storage.backend: {other:?} is not one of local, s3"),
        };
        Ok(Self { store, part_bytes, max_bytes: cfg.max_bytes, timeout: cfg.download_timeout })
    }

    fn s3(cfg: &S3Config) -> anyhow::Result<object_store::aws::AmazonS3> {
        for (key, value) in [
            ("bucket", cfg.bucket.as_str()),
            ("region", cfg.region.as_str()),
            ("access_key_id", cfg.access_key_id.as_str()),
            ("secret_access_key", cfg.secret_access_key.expose()),
        ] {
            anyhow::ensure!(!value.trim().is_empty(), "storage.s3.{key}: required when storage.backend = s3");
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(cfg.secret_access_key.expose())
            .with_allow_http(cfg.allow_http);
        if !cfg.endpoint.is_empty() {
            let url = url::Url::parse(&cfg.endpoint)
                .map_err(|e| anyhow::anyhow!("storage.s3.endpoint: {:?} is not a URL: {e}", cfg.endpoint))?;
            anyhow::ensure!(
                url.scheme() == "https" || (url.scheme() == "http" && cfg.allow_http),
                "storage.s3.endpoint: must be https:// (http:// only with storage.s3.allow_http = true)"
            );
            // S3-compatible stores rarely serve bucket subdomains: address the bucket in the path.
            builder = builder.with_endpoint(&cfg.endpoint).with_virtual_hosted_style_request(false);
        }
        builder.build().map_err(|e| anyhow::anyhow!("storage.s3: {e}"))
    }

    fn path(key: &str) -> Result<Path, object_store::path::Error> {
        Path::parse(key)
    }

    /// Copies `url` into `key`, streaming; answers the bytes written.
    pub async fn copy_from(&self, outbound: &OutboundClient, url: &str, key: &str) -> Result<u64, CopyError> {
        let checked = outbound.check_url(url).map_err(|e| CopyError::permanent(format!("refused URL: {e}")))?;
        let work = async {
            let resp = outbound.http().get(checked).send().await.map_err(|e| match crate::outbound::classify(e) {
                crate::outbound::OutboundError::Blocked(why) => CopyError::permanent(why),
                other => CopyError::transient(other.to_string()),
            })?;
            let status = resp.status();
            if !status.is_success() {
                let permanent = status.is_client_error() && status.as_u16() != 429;
                return Err(CopyError { permanent, too_large: false, reason: format!("download answered {status}") });
            }
            if resp.content_length().is_some_and(|n| n > self.max_bytes) {
                return Err(CopyError::too_large());
            }
            let body = resp
                .bytes_stream()
                .map(|chunk| chunk.map_err(|e| format!("download cut: {}", crate::outbound::classify(e))));
            self.write_stream(key, body, self.max_bytes).await
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(CopyError::transient("download timed out")),
        }
    }

    /// Writes `body` into `key` part by part (bounded memory), refusing more than `max_bytes`:
    /// answers the bytes written. Nothing is left under `key` when it fails. A chunk error is a
    /// passing problem (the source may answer next time).
    pub async fn put_stream<S, E>(&self, key: &str, body: S, max_bytes: u64) -> Result<u64, CopyError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        match tokio::time::timeout(self.timeout, self.write_stream(key, body, max_bytes)).await {
            Ok(r) => r,
            Err(_) => Err(CopyError::transient("download timed out")),
        }
    }

    async fn write_stream<S, E>(&self, key: &str, body: S, max_bytes: u64) -> Result<u64, CopyError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let path = Self::path(key).map_err(|e| CopyError::permanent(e.to_string()))?;
        let upload = self.store.put_multipart(&path).await.map_err(|e| CopyError::transient(e.to_string()))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_bytes);
        let mut written: u64 = 0;
        let mut body = std::pin::pin!(body);
        let copied = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| CopyError::transient(e.to_string()))?;
                written += chunk.len() as u64;
                if written > max_bytes {
                    return Err(CopyError::too_large());
                }
                // At most one part uploading while the next fills: memory stays bounded.
                writer.wait_for_capacity(1).await.map_err(|e| CopyError::transient(e.to_string()))?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match copied {
            Ok(()) => {
                writer.finish().await.map_err(|e| CopyError::transient(e.to_string()))?;
                Ok(written)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Stores a small object whole (an uploaded avatar, at most a few MiB).
    pub async fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<u64, object_store::Error> {
        let path =
            Self::path(key).map_err(|e| object_store::Error::Generic { store: "storage", source: Box::new(e) })?;
        let n = data.len() as u64;
        self.store.put(&path, object_store::PutPayload::from(data)).await?;
        Ok(n)
    }

    /// Reads a small object whole (an avatar for the local renderer).
    pub async fn read_all(&self, key: &str) -> Result<bytes::Bytes, object_store::Error> {
        let path =
            Self::path(key).map_err(|e| object_store::Error::Generic { store: "storage", source: Box::new(e) })?;
        self.store.get(&path).await?.bytes().await
    }

    /// Copies a stored object into a local file (ffprobe reads it there), streaming.
    pub async fn download_to(&self, key: &str, file: &std::path::Path) -> Result<u64, object_store::Error> {
        use tokio::io::AsyncWriteExt as _;
        let generic =
            |e: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic { store: "storage", source: e };
        let path = Self::path(key).map_err(|e| generic(Box::new(e)))?;
        let mut body = self.store.get(&path).await?.into_stream();
        let mut out = tokio::fs::File::create(file).await.map_err(|e| generic(Box::new(e)))?;
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| generic(Box::new(e)))?;
        }
        out.flush().await.map_err(|e| generic(Box::new(e)))?;
        Ok(written)
    }

    /// Stores a file made here (the local renderer's), read and written part by part.
    pub async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<u64, object_store::Error> {
        use tokio::io::AsyncReadExt as _;
        let generic =
            |e: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic { store: "storage", source: e };
        let path = Self::path(key).map_err(|e| generic(Box::new(e)))?;
        let mut f = tokio::fs::File::open(file).await.map_err(|e| generic(Box::new(e)))?;
        let mut writer = WriteMultipart::new_with_chunk_size(self.store.put_multipart(&path).await?, self.part_bytes);
        let mut buf = vec![0u8; 256 * 1024];
        let mut written = 0u64;
        loop {
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(generic(Box::new(e)));
                }
            };
            if n == 0 {
                break;
            }
            written += n as u64;
            writer.wait_for_capacity(1).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(written)
    }

    /// Opens `key` for reading the inclusive range `range` resolves for the file's size
    /// (`None`: all of it). `Ok(Err(size))` when the range cannot be served for that size.
    pub async fn open<R>(&self, key: &str, range: Option<R>) -> Result<Result<Opened, u64>, object_store::Error>
    where
        R: FnOnce(u64) -> Option<(u64, u64)>,
    {
        let path =
            Self::path(key).map_err(|e| object_store::Error::Generic { store: "storage", source: Box::new(e) })?;
        let size = self.store.head(&path).await?.size;
        let (start, end) = match range {
            None if size == 0 => (0, 0),
            None => (0, size - 1),
            Some(resolve) => match resolve(size) {
                Some(r) => r,
                None => return Ok(Err(size)),
            },
        };
        let body = if size == 0 {
            futures::stream::empty().boxed()
        } else {
            let bounded: Range<u64> = start..end + 1;
            let options = GetOptions { range: Some(GetRange::Bounded(bounded)), ..Default::default() };
            self.store.get_opts(&path, options).await?.into_stream()
        };
        Ok(Ok(Opened { size, range: (start, end), body }))
    }

    /// [`Storage::open`] for a download a signed link asked for: a file that is gone answers
    /// `gone()` (the link's own refusal, so a deleted file looks like a dead link), a range past
    /// its end `range_code` naming the size, anything else 503.
    pub async fn open_download(
        &self,
        key: &str,
        range: Option<crate::links::ByteRange>,
        gone: fn() -> nexus_kernel::Error,
        range_code: &'static str,
    ) -> Result<Opened, nexus_kernel::Error> {
        self.open(key, range.map(|r| move |size| r.resolve(size)))
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => gone(),
                other => nexus_kernel::Error::unavailable("service.unavailable").with_source(other),
            })?
            .map_err(|size| {
                nexus_kernel::Error::invalid(range_code)
                    .with_param("size", size.to_string())
                    .with_violation("range", "not_satisfiable")
            })
    }

    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        let path =
            Self::path(key).map_err(|e| object_store::Error::Generic { store: "storage", source: Box::new(e) })?;
        match self.store.delete(&path).await {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
