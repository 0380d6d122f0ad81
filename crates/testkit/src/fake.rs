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
