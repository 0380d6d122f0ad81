//! The content binary with auth, subscriptions and the gateway, as `make run` starts them:
//! copy streamed over SSE, a page published and served at /p/{slug}, a lead sent to it.

use std::time::Duration;

use nexus_testkit::{TestDb, TestNats};
use serde_json::{Value, json};

use crate::support::{Proc, free_port, migrate, service_env, wait_http_ok};

#[tokio::test]
async fn copy_streams_and_a_published_page_serves_through_the_real_binaries() {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
    let (auth_grpc, subs_grpc, content_grpc, http) = (ports[0], ports[1], ports[2], ports[3]);
    let auth_url = format!("http://127.0.0.1:{auth_grpc}");

    let mut auth_env = service_env(&db, &nats, "auth", auth_grpc, ports[4]);
    auth_env.push(("NEXUS_AUTH__ARGON2_MEMORY_KIB", "4096".into()));
    let mut subs_env = service_env(&db, &nats, "subscriptions", subs_grpc, ports[5]);
    subs_env.push(("NEXUS_IDENTITY__AUTH_URL", auth_url.clone()));
    let mut content_env = service_env(&db, &nats, "content", content_grpc, ports[6]);
    content_env.push(("NEXUS_IDENTITY__AUTH_URL", auth_url.clone()));
    content_env.push(("NEXUS_SERVICES__SUBSCRIPTIONS", format!("http://127.0.0.1:{subs_grpc}")));
    migrate("nexus-auth", &auth_env);
    migrate("nexus-subscriptions", &subs_env);
    migrate("nexus-content", &content_env);
    let _auth = Proc::spawn("nexus-auth", &auth_env);
    let _subs = Proc::spawn("nexus-subscriptions", &subs_env);
    let mut content = Proc::spawn("nexus-content", &content_env);
    let _gateway = Proc::spawn(
        "nexus-gateway",
        &[
            ("NEXUS_HTTP__ADDR", format!("127.0.0.1:{http}")),
            ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{}", ports[7])),
            ("NEXUS_SERVICES__AUTH", auth_url.clone()),
            ("NEXUS_SERVICES__SUBSCRIPTIONS", format!("http://127.0.0.1:{subs_grpc}")),
            ("NEXUS_SERVICES__CONTENT", format!("http://127.0.0.1:{content_grpc}")),
        ],
    );
    // Four debug binaries starting beside the rest of the suite on two cores: a generous bound.
    for (name, admin) in ["auth", "subscriptions", "content", "gateway"].iter().zip(&ports[4..8]) {
        assert!(
            wait_http_ok(&format!("http://127.0.0.1:{admin}/readyz"), Duration::from_secs(60)).await,
            "{name} (admin {admin}) ready"
        );
    }

    let c = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}");
    let email = format!("e2e.content.{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let resp = c
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": email, "password": "correct horse battery staple", "name": "Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let token = resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();

    let stream = c
        .post(format!("{base}/v1/content/generations"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .json(&json!({"kind": "whatsapp_template", "language": "he", "product": "Trail Runner X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 201);
    let text = stream.text().await.unwrap();
    assert!(text.contains("event: delta") && text.contains("event: done"), "{text}");
    assert!(text.contains("\"provider\":\"local\""));

    let page: Value = c
        .post(format!("{base}/v1/pages"))
        .bearer_auth(&token)
        .json(&json!({"language": "ar", "product": "Trail Runner X"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = page["id"].as_str().expect("page id");
    let slug = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let published = c
        .post(format!("{base}/v1/pages/{id}/publish"))
        .bearer_auth(&token)
        .json(&json!({"slug": slug}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200);
    let html = c.get(format!("{base}/p/{slug}")).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(html.text().await.unwrap().contains("<html lang=\"ar\" dir=\"rtl\">"));
    let lead = c
        .post(format!("{base}/p/{slug}/leads"))
        .json(&json!({"email": "lead@example.com", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(lead.status(), 202);

    content.signal("TERM");
    let status = content.wait_exit(Duration::from_secs(30)).await.expect("content exits on SIGTERM");
    assert!(status.success(), "{status:?}");
}
