use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Proc, free_port, wait_http_ok};

struct Gateway {
    proc: Proc,
    http: u16,
    admin: u16,
}

async fn start_gateway() -> Gateway {
    nexus_testkit::init_tracing();
    let (http, admin) = (free_port(), free_port());
    let proc = Proc::spawn(
        "nexus-gateway",
        &[
            ("NEXUS_HTTP__ADDR", format!("127.0.0.1:{http}")),
            ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{admin}")),
            // No subscriptions service: webhook deliveries answer 503 after reading the body.
            ("NEXUS_SERVICES__SUBSCRIPTIONS", "http://127.0.0.1:1".into()),
        ],
    );
    assert!(
        wait_http_ok(&format!("http://127.0.0.1:{admin}/readyz"), Duration::from_secs(20)).await,
        "gateway did not become ready"
    );
    Gateway { proc, http, admin }
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let mut gw = start_gateway().await;
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", gw.http)).await.unwrap();
    let head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept-Language: es\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The request is in flight (its body half sent) when SIGTERM arrives.
    gw.proc.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gw.proc.child.try_wait().unwrap().is_none(), "exited while a request was in flight");
    // New connections are no longer accepted.
    assert!(reqwest::get(format!("http://127.0.0.1:{}/v1/locales", gw.http)).await.is_err());

    conn.write_all(&body[10..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":\"service.unavailable\""), "{text}");
    assert!(text.contains("no está disponible"), "localized: {text}");

    let status = gw.proc.wait_exit(Duration::from_secs(10)).await.expect("exits after draining");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn the_binary_serves_metrics_and_health_on_its_admin_port() {
    let gw = start_gateway().await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(client.get(format!("http://127.0.0.1:{}/v1/locales", gw.http)).send().await.unwrap().status(), 200);
    }
    assert_eq!(client.get(format!("http://127.0.0.1:{}/v1/missing", gw.http)).send().await.unwrap().status(), 404);
    assert_eq!(client.get(format!("http://127.0.0.1:{}/livez", gw.admin)).send().await.unwrap().status(), 200);
    let metrics =
        client.get(format!("http://127.0.0.1:{}/metrics", gw.admin)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("nexus_http_requests_total{route=\"/v1/locales\",method=\"GET\",status=\"200\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("nexus_http_request_duration_seconds_bucket"), "{metrics}");
}

#[tokio::test]
async fn a_bad_configuration_value_stops_start_up_naming_the_key() {
    let out = std::process::Command::new(crate::support::binary("nexus-gateway"))
        .env("NEXUS_HTTP__BODY_LIMIT", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("body_limit"), "{err}");
}
