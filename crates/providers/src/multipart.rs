//! A `multipart/form-data` body of text fields and one file, for the platforms' media uploads.
//! The file is streamed from disk (a video is never held in memory) and its body can be made
//! again for a second attempt; its length is known, so the request carries `Content-Length`.

use std::path::PathBuf;

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};

/// Where the file part's bytes come from.
#[derive(Debug, Clone)]
pub enum FileBody {
    /// Small files (pictures), already in memory.
    Bytes(Bytes),
    /// A file on disk of `len` bytes, read as it is sent.
    Path { path: PathBuf, len: u64 },
}

impl FileBody {
    pub fn len(&self) -> u64 {
        match self {
            FileBody::Bytes(b) => b.len() as u64,
            FileBody::Path { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One form: text fields first, then the file.
#[derive(Debug, Clone)]
pub struct Form {
    boundary: String,
    head: Bytes,
    tail: Bytes,
    file: FileBody,
}

/// A header value of a part, quotes and line breaks taken out.
fn quoted(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\')).collect()
}

impl Form {
    /// `fields`, then the file as part `field` named `filename`.
    pub fn new(fields: &[(&str, String)], field: &str, filename: &str, content_type: &str, file: FileBody) -> Form {
        let boundary = format!("nexus-{}", uuid::Uuid::new_v4().simple());
        let mut head = String::new();
        for (name, value) in fields {
            head.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
                quoted(name)
            ));
        }
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            quoted(field),
            quoted(filename),
            quoted(content_type)
        ));
        let tail = format!("\r\n--{boundary}--\r\n");
        Form { boundary, head: Bytes::from(head), tail: Bytes::from(tail), file }
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The whole body's length in bytes.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.file.len() + self.tail.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// A call's timeout for sending this body: a large file takes longer than one API call, so
    /// `base` grows by a second per MB (a 1 MB/s floor).
    pub fn timeout(&self, base: std::time::Duration) -> std::time::Duration {
        base + std::time::Duration::from_secs(self.len() / 1_000_000)
    }

    /// A fresh body (a file is opened again).
    pub fn body(&self) -> reqwest::Body {
        let head = futures::stream::iter([Ok::<Bytes, std::io::Error>(self.head.clone())]);
        let tail = futures::stream::iter([Ok::<Bytes, std::io::Error>(self.tail.clone())]);
        let file = match &self.file {
            FileBody::Bytes(b) => futures::stream::iter([Ok(b.clone())]).boxed(),
            FileBody::Path { path, .. } => {
                let path = path.clone();
                futures::stream::once(async move {
                    tokio::fs::File::open(path).await.map(|f| tokio_util::io::ReaderStream::with_capacity(f, 64 * 1024))
                })
                .try_flatten()
                .boxed()
            }
        };
        reqwest::Body::wrap_stream(head.chain(file).chain(tail))
    }

    /// The request with this body and its headers.
    pub fn attach(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header(reqwest::header::CONTENT_TYPE, self.content_type())
            .header(reqwest::header::CONTENT_LENGTH, self.len())
            .body(self.body())
    }
}

/// Hex MD5 of a file on disk, read in chunks (TikTok's upload signature).
pub async fn md5_of_file(path: &std::path::Path) -> std::io::Result<String> {
    use md5::Digest as _;
    use tokio::io::AsyncReadExt as _;
    let mut f = tokio::fs::File::open(path).await?;
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Hex MD5 of bytes.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}
