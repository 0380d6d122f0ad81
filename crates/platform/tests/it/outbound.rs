//! The safe outbound client against real sockets: a local HTTP server plays the outside world.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use nexus_platform::outbound::{Limits, OutboundClient, OutboundConfig, OutboundError};

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

/// Serves on `ip`:0: `/ok`, `/big` (2 MiB with a length), `/stream` (2 MiB chunked), `/slow`,
/// `/redirect?to=URL` and `/loop`.
async fn world(ip: &str) -> SocketAddr {
    let big = vec![b'x'; 2 * 1024 * 1024];
    let app = Router::new()
        .route("/ok", get(|| async { ([(header::CONTENT_TYPE, "image/png")], "hello") }))
        .route("/big", get(move || async move { big.clone() }))
        .route(
            "/stream",
            get(|| async {
                let chunks = futures::stream::iter(
                    (0..32).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 64 * 1024]))),
                );
                axum::body::Body::from_stream(chunks)
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/redirect", get(|Query(q): Query<To>| async move { redirect(&q.to) }))
        .route("/loop", get(|| async { redirect("/loop") }))
        .route("/echo", axum::routing::post(|body: bytes::Bytes| async move { body }));
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

fn client(allow: &[&str]) -> OutboundClient {
    OutboundClient::new(&OutboundConfig {
        allow_private_cidrs: allow.iter().map(|s| (*s).to_owned()).collect(),
        timeout: Duration::from_secs(3),
        ..Default::default()
    })
    .unwrap()
}

fn blocked(r: Result<nexus_platform::outbound::Fetched, OutboundError>, what: &str) {
    match r {
        Err(OutboundError::Blocked(_)) => {}
        other => panic!("{what}: expected Blocked, got {other:?}"),
    }
}

#[tokio::test]
async fn refuses_internal_destinations_by_literal_and_by_name() {
    let addr = world("127.0.0.1").await;
    let port = addr.port();
    let c = client(&[]);
    // A server really listens on 127.0.0.1:port, so only the check stands between us.
    for url in [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://LocalHost:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://0x7f000001:{port}/ok"),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://[fd00::1]/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://0.0.0.0/".to_owned(),
    ] {
        blocked(c.get(&url).await, &url);
    }
    // The raw reqwest client handed to provider clients refuses names that resolve inward too.
    let err = c.http().get(format!("http://localhost:{port}/ok")).send().await.unwrap_err();
    assert!(matches!(nexus_platform::outbound::classify(err), OutboundError::Blocked(_)));
}

#[tokio::test]
async fn allowlist_reaches_a_fake_and_nothing_else() {
    let addr = world("127.0.0.1").await;
    let c = client(&["127.0.0.1/32"]);
    let got = c.get(&format!("http://{addr}/ok")).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type(), "image/png");
    assert_eq!(&got.body[..], b"hello");
    // The exception is exactly the listed network.
    blocked(c.get("http://10.0.0.1/").await, "10.0.0.1");
    blocked(c.get("http://169.254.169.254/").await, "metadata");

    // By hostname.
    let by_host =
        OutboundClient::new(&OutboundConfig { allow_hosts: vec!["localhost".into()], ..Default::default() }).unwrap();
    let got = by_host.get(&format!("http://localhost:{}/ok", addr.port())).await.unwrap();
    assert_eq!(&got.body[..], b"hello");
    blocked(by_host.get(&format!("http://127.0.0.1:{}/ok", addr.port())).await, "literal not allowlisted");
}

#[tokio::test]
async fn every_redirect_is_checked() {
    // The "outside" server sits on 127.0.0.2, the only address the client may reach.
    let outside = world("127.0.0.2").await;
    let inside = world("127.0.0.1").await;
    let c = client(&["127.0.0.2/32"]);
    let port = inside.port();
    for target in [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let url = format!("http://{outside}/redirect?to={}", urlencode(&target));
        blocked(c.get(&url).await, &target);
    }
    // A redirect that stays outside is followed.
    let ok = format!("http://{outside}/ok");
    let got = c.get(&format!("http://{outside}/redirect?to={}", urlencode(&ok))).await.unwrap();
    assert_eq!(&got.body[..], b"hello");
    // Bounded hops.
    let r = c.get(&format!("http://{outside}/loop")).await;
    assert!(matches!(r, Err(OutboundError::TooManyRedirects(5))), "{r:?}");
}

#[tokio::test]
async fn size_and_time_are_capped() {
    let addr = world("127.0.0.1").await;
    let c = client(&["127.0.0.1/32"]);
    let small = Limits { max_bytes: 1024 * 1024, timeout: Duration::from_secs(3) };
    for path in ["big", "stream"] {
        let r = c.get_with(&format!("http://{addr}/{path}"), small).await;
        assert_eq!(r.unwrap_err(), OutboundError::TooLarge { limit: 1024 * 1024 }, "{path}");
    }
    let roomy = Limits { max_bytes: 4 * 1024 * 1024, timeout: Duration::from_secs(3) };
    assert_eq!(c.get_with(&format!("http://{addr}/stream"), roomy).await.unwrap().body.len(), 2 * 1024 * 1024);

    let started = std::time::Instant::now();
    let quick = Limits { max_bytes: 1024, timeout: Duration::from_millis(300) };
    let r = c.get_with(&format!("http://{addr}/slow"), quick).await;
    assert_eq!(r.unwrap_err(), OutboundError::Timeout(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(2));
    // The configured total time applies without per-call limits too.
    let cfg_quick = OutboundClient::new(&OutboundConfig {
        allow_private_cidrs: vec!["127.0.0.1/32".into()],
        timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(cfg_quick.get(&format!("http://{addr}/slow")).await, Err(OutboundError::Timeout(_))));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn requests_built_on_the_client_are_checked_and_capped_too() {
    let addr = world("127.0.0.1").await;
    let limits = Limits { max_bytes: 64, timeout: Duration::from_secs(3) };
    let strict = client(&[]);
    let r = strict.send(strict.http().post(format!("http://{addr}/echo")).body("hello"), limits).await;
    blocked(r, "POST to loopback");
    let r = strict.send(strict.http().post("http://169.254.169.254/latest/api/token").body("x"), limits).await;
    blocked(r, "POST to metadata");

    let allowed = client(&["127.0.0.1/32"]);
    let got = allowed.send(allowed.http().post(format!("http://{addr}/echo")).body("hello"), limits).await.unwrap();
    assert_eq!((got.status.as_u16(), &got.body[..]), (200, &b"hello"[..]));
    let r = allowed.send(allowed.http().post(format!("http://{addr}/echo")).body(vec![b'z'; 65]), limits).await;
    assert_eq!(r.unwrap_err(), OutboundError::TooLarge { limit: 64 });
}
