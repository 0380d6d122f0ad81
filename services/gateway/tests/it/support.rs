use axum::Router;
use nexus_gateway::config::{DEFAULTS, GatewayConfig};
use tokio::net::TcpListener;

pub fn config() -> GatewayConfig {
    let env = vec![("NEXUS_ENVIRONMENT".to_owned(), "development".to_owned())];
    nexus_platform::config::load_from_env("gateway", DEFAULTS, None, env).expect("defaults load")
}

/// Serves `router` on port 0 (with client addresses) and returns its base URL.
pub async fn serve(router: Router) -> String {
    nexus_testkit::init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    format!("http://{addr}")
}

pub fn client() -> reqwest::Client {
    nexus_platform::install_crypto_provider();
    reqwest::Client::builder().no_gzip().build().unwrap()
}

pub async fn json(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, headers, value)
}

/// Asserts the error envelope shape and returns (code, message).
pub fn envelope(v: &serde_json::Value) -> (String, String) {
    let err = v.get("error").unwrap_or_else(|| panic!("no error envelope: {v}"));
    let code = err["code"].as_str().expect("code").to_owned();
    let message = err["message"].as_str().expect("message").to_owned();
    assert!(err["request_id"].as_str().is_some_and(|r| !r.is_empty()), "request_id: {v}");
    assert!(!message.is_empty());
    (code, message)
}
