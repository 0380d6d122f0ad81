//! Fake third-party HTTP servers: an axum router on port 0, for providers whose contract needs
//! state (async job flows, rate limits) that a request matcher cannot express. Plain
//! request/response fakes can use `wiremock`, re-exported here.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use wiremock;

pub struct FakeServer {
    pub base_url: String,
    stop: CancellationToken,
}

impl FakeServer {
    pub async fn start(router: axum::Router) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake server");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).with_graceful_shutdown(token.cancelled_owned()).await;
        });
        FakeServer { base_url: format!("http://{addr}"), stop }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The state of a fake, even after a handler panicked while holding it (the test reports that).
pub fn lock<T>(state: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// One part of a `multipart/form-data` body a fake received.
#[derive(Debug, Clone)]
pub struct FormPart {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

impl FormPart {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The parts of a `multipart/form-data` body (`content_type` carries the boundary); `None` when
/// it is not one or does not parse.
pub fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<FormPart>> {
    let boundary = content_type
        .strip_prefix("multipart/form-data")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
    };
    let mut parts = Vec::new();
    let mut at = find(body, &delimiter, 0)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        at += 2; // CRLF after the delimiter
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = String::from_utf8_lossy(&body[at..head_end]).into_owned();
        let head = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition")).unwrap_or("");
        let next = find(body, &delimiter, head_end + 4)?;
        // The part's data ends before the CRLF that precedes the next delimiter.
        let data = body.get(head_end + 4..next.checked_sub(2)?)?.to_vec();
        let param = |key: &str| {
            head.split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=\"")).map(|v| v.trim_end_matches('"').to_owned()))
        };
        parts.push(FormPart { name: param("name")?, filename: param("filename"), data });
        at = next + delimiter.len();
    }
}

/// Hex MD5 of `data` (the signature TikTok's uploads carry, Meta's picture hash).
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}
