//! Inbound WhatsApp media copied into object storage at once: downloaded from the fake Cloud
//! API (metadata, then bytes, both with the number's token), checked against Meta's SHA-256 and
//! the size cap, stored per workspace, and served only to the message's workspace.

use std::path::PathBuf;

use futures::StreamExt as _;
use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::messaging::v1 as pb;
use nexus_testkit::identity::authed;
use nexus_testkit::whatsapp::{TEST_PHONE_NUMBER_ID, TEST_TOKEN};
use serde_json::json;
use tonic::Code;

use crate::whatsapp::{Stack, start_with};

/// A fresh storage root per test.
fn store_root() -> PathBuf {
    std::env::temp_dir().join(format!("nexus-wa-media-{}", uuid::Uuid::new_v4().simple()))
}

async fn stack(root: &std::path::Path, max_bytes: Option<&str>) -> Stack {
    let root = root.display().to_string();
    let mut env = vec![
        // The fake serves media on 127.0.0.1, which the outbound client refuses unless allowed.
        ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.1/32"),
        ("NEXUS_STORAGE__ROOT", root.as_str()),
    ];
    if let Some(max) = max_bytes {
        env.push(("NEXUS_STORAGE__MAX_MEDIA_BYTES", max));
    }
    start_with(&env).await
}

fn image_body(wamid: &str, media_id: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": TEST_PHONE_NUMBER_ID},
                  "contacts": [{"profile": {"name": "Ana"}, "wa_id": "34612341111"}],
                  "messages": [{"from": "34612341111", "id": wamid, "timestamp": "1750857384", "type": "image",
                                "image": {"id": media_id, "mime_type": "image/jpeg", "caption": "the blue one"}}]}}]}]})
    .to_string()
    .into_bytes()
}

fn sign(body: &[u8]) -> String {
    nexus_providers::whatsapp::signature("nexus-development-whatsapp-app-secret", body)
}

/// Connects the fake's number and delivers an image message naming `media_id`; answers the
/// stored message's id.
async fn receive_image(s: &Stack, token: &str, media_id: &str) -> String {
    s.connect(token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap();
    let body = image_body(&format!("wamid.{}", uuid::Uuid::new_v4().simple()), media_id);
    assert_eq!(s.post(&body, &sign(&body)).await.status, 200);
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM messaging.wa_messages WHERE kind = 'image'")
        .fetch_one(&s.admin)
        .await
        .unwrap();
    id.to_string()
}

/// Waits until the media is no longer pending; answers (status, error).
async fn settled(s: &Stack, id: &str) -> (String, Option<String>) {
    for _ in 0..300 {
        let row: (Option<String>, Option<String>) =
            sqlx::query_as("SELECT media_status, media_error FROM messaging.wa_messages WHERE id = $1")
                .bind(uuid::Uuid::parse_str(id).unwrap())
                .fetch_one(&s.admin)
                .await
                .unwrap();
        if row.0.as_deref() != Some("pending") {
            return (row.0.unwrap_or_default(), row.1);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("media still pending after 15 s");
}

/// The media as the API serves it: (content type, bytes).
async fn open(s: &Stack, token: &str, id: &str) -> Result<(String, Vec<u8>), tonic::Status> {
    let mut stream = s.wa().open_message_media(authed(pb::GetByIdRequest { id: id.into() }, token)).await?.into_inner();
    let head = stream.message().await?.and_then(|m| m.head).expect("a head first");
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk?.data);
    }
    assert_eq!(head.size, data.len() as u64);
    Ok((head.content_type, data))
}

fn files_under(root: &std::path::Path) -> usize {
    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
            .unwrap_or(0)
    }
    walk(root)
}

#[tokio::test]
async fn an_inbound_image_is_copied_into_storage_and_served_to_its_workspace_only() {
    let root = store_root();
    let s = stack(&root, None).await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let media_id = s.fake.add_media("image/jpeg", &bytes);
    let id = receive_image(&s, &token, &media_id).await;

    assert_eq!(settled(&s, &id).await, ("stored".to_owned(), None));
    let (ct, data) = open(&s, &token, &id).await.unwrap();
    assert_eq!((ct.as_str(), data.len()), ("image/jpeg", bytes.len()));
    assert_eq!(data, bytes);
    // Kept under the workspace's own prefix.
    let key: String = sqlx::query_scalar("SELECT media_key FROM messaging.wa_messages WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&id).unwrap())
        .fetch_one(&s.admin)
        .await
        .unwrap();
    assert!(key.starts_with(&format!("whatsapp/{}/", ws.as_uuid().simple())), "{key}");
    assert_eq!(files_under(&root), 1);

    // A viewer reads it; the list shows where the file stands.
    let viewer = s.issuer.user_token(ws, Role::Viewer);
    assert_eq!(open(&s, &viewer, &id).await.unwrap().1, bytes);
    let contact: uuid::Uuid = sqlx::query_scalar("SELECT contact_id FROM messaging.wa_messages WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&id).unwrap())
        .fetch_one(&s.admin)
        .await
        .unwrap();
    let req = pb::ListWhatsAppMessagesRequest { contact_id: contact.to_string(), page: None };
    let list = s.wa().list_whats_app_messages(authed(req, &token)).await.unwrap().into_inner();
    let m = list.messages.iter().find(|m| m.id == id).unwrap();
    assert_eq!((m.media_status.as_str(), m.media_mime_type.as_str()), ("stored", "image/jpeg"));
    assert_eq!(m.media_size, bytes.len() as i64);

    // Another workspace's member, a malformed id, an unknown id: not found, nothing told.
    let other = s.owner(WorkspaceId::new());
    for (t, i) in [(&other, id.as_str()), (&token, "not-an-id"), (&token, "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1")] {
        let err = open(&s, t, i).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{i}");
        assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_message_not_found");
    }
    // While a copy is pending the file is not there yet: 409, and it says so.
    sqlx::query("UPDATE messaging.wa_messages SET media_status = 'pending' WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&id).unwrap())
        .execute(&s.admin)
        .await
        .unwrap();
    let err = open(&s, &token, &id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_media_pending");
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_sha256_mismatch_fails_the_media_and_keeps_no_file() {
    let root = store_root();
    let s = stack(&root, None).await;
    let token = s.owner(WorkspaceId::new());
    let media_id = s.fake.add_media_claiming("image/jpeg", b"not what was described", &"ab".repeat(32));
    let id = receive_image(&s, &token, &media_id).await;
    assert_eq!(settled(&s, &id).await, ("failed".to_owned(), Some("sha256_mismatch".to_owned())));
    assert_eq!(files_under(&root), 0);
    let err = open(&s, &token, &id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let e = nexus_kernel::Error::from_status(&err);
    assert_eq!((e.code(), e.param("reason")), ("messaging.whatsapp_media_failed", Some("sha256_mismatch")));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn media_above_the_size_cap_fails_without_being_stored() {
    let root = store_root();
    let s = stack(&root, Some("4096")).await;
    let token = s.owner(WorkspaceId::new());
    let media_id = s.fake.add_media("video/mp4", &vec![7u8; 10_000]);
    let id = receive_image(&s, &token, &media_id).await;
    assert_eq!(settled(&s, &id).await, ("failed".to_owned(), Some("too_large".to_owned())));
    assert_eq!(s.fake.media_downloads(), 0, "refused on Meta's announced size, before any byte");
    assert_eq!(files_under(&root), 0);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_redelivered_webhook_stores_one_message_and_downloads_once() {
    let root = store_root();
    let s = stack(&root, None).await;
    let token = s.owner(WorkspaceId::new());
    s.connect(&token, TEST_PHONE_NUMBER_ID, TEST_TOKEN).await.unwrap();
    let media_id = s.fake.add_media("image/jpeg", b"\xff\xd8\xff\xe0 a tiny jpeg");
    let body = image_body("wamid.redelivered", &media_id);
    for _ in 0..3 {
        assert_eq!(s.post(&body, &sign(&body)).await.status, 200);
    }
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM messaging.wa_messages").fetch_one(&s.admin).await.unwrap();
    assert_eq!(settled(&s, &id.to_string()).await.0, "stored");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(s.fake.media_downloads(), 1);
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_messages").await, 1);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn meta_failing_with_5xx_and_then_answering_is_retried_until_stored() {
    let root = store_root();
    let s = stack(&root, None).await;
    let token = s.owner(WorkspaceId::new());
    let bytes = b"%PDF-1.7 an invoice".to_vec();
    let media_id = s.fake.add_media("application/pdf", &bytes);
    // More failures than the client's own attempts: the job's retry carries it through.
    s.fake.fail_next_media(4, 503);
    let id = receive_image(&s, &token, &media_id).await;
    assert_eq!(settled(&s, &id).await, ("stored".to_owned(), None));
    let (ct, data) = open(&s, &token, &id).await.unwrap();
    assert_eq!((ct.as_str(), data), ("application/pdf", bytes));
    assert_eq!(s.fake.media_downloads(), 1);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn media_meta_no_longer_knows_fails_for_good() {
    let root = store_root();
    let s = stack(&root, None).await;
    let token = s.owner(WorkspaceId::new());
    let id = receive_image(&s, &token, "123456789").await;
    assert_eq!(settled(&s, &id).await, ("failed".to_owned(), Some("media_gone".to_owned())));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn the_simulator_attaches_media_that_is_stored_end_to_end() {
    let root = store_root();
    let s = stack(&root, None).await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let req = pb::ConnectNumberRequest {
        waba_id: "102290129340398".into(),
        phone_number_id: "900000000000001".into(),
        display_phone_number: "+1 555 000 0001".into(),
        access_token: String::new(),
    };
    let number = s.wa().connect_number(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!(number.provider, "local");
    let png = b"\x89PNG\r\n\x1a\n a very small picture".to_vec();
    let inbound = |data: Vec<u8>, kind: &str, mime: &str| pb::SimulatedInbound {
        from: "5511987654321".into(),
        name: "Ana".into(),
        text: "look".into(),
        media: Some(pb::SimulatedMedia { kind: kind.into(), mime_type: mime.into(), data }),
        ..Default::default()
    };
    let simulate = |i: pb::SimulatedInbound, t: String| {
        let req =
            pb::SimulateRequest { number_id: number.id.clone(), event: Some(pb::simulate_request::Event::Inbound(i)) };
        let mut wa = s.wa();
        async move { wa.simulate(authed(req, &t)).await }
    };
    // Bad attachments: unknown kind, a type that is not type/subtype, empty, above 1 MiB.
    for bad in [
        inbound(png.clone(), "gif", "image/png"),
        inbound(png.clone(), "image", "png"),
        inbound(Vec::new(), "image", "image/png"),
        inbound(vec![0; 1024 * 1024 + 1], "image", "image/png"),
    ] {
        let err = simulate(bad, token.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(nexus_kernel::Error::from_status(&err).code(), "messaging.whatsapp_simulated_media_invalid");
    }
    assert_eq!(s.count("SELECT count(*) FROM messaging.wa_messages").await, 0);
    // A viewer cannot play deliveries.
    let viewer = s.issuer.user_token(ws, Role::Viewer);
    assert_eq!(
        simulate(inbound(png.clone(), "image", "image/png"), viewer).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let r = simulate(inbound(png.clone(), "image", "image/png"), token.clone()).await.unwrap().into_inner();
    assert_eq!(r.http_status, 200);
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM messaging.wa_messages WHERE wamid = $1")
        .bind(&r.message_id)
        .fetch_one(&s.admin)
        .await
        .unwrap();
    assert_eq!(settled(&s, &id.to_string()).await, ("stored".to_owned(), None));
    assert_eq!(open(&s, &token, &id.to_string()).await.unwrap(), ("image/png".to_owned(), png));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_media_url_inside_our_network_is_refused_by_the_outbound_client() {
    let root = store_root();
    let root_s = root.display().to_string();
    // No allowance for 127.0.0.1: the fake's media URL is what an attacker-chosen URL would be.
    let s = start_with(&[("NEXUS_STORAGE__ROOT", root_s.as_str())]).await;
    let token = s.owner(WorkspaceId::new());
    let media_id = s.fake.add_media("image/jpeg", b"\xff\xd8\xff\xe0 private");
    let id = receive_image(&s, &token, &media_id).await;
    assert_eq!(settled(&s, &id).await, ("failed".to_owned(), Some("media_gone".to_owned())));
    assert_eq!(s.fake.media_downloads(), 0);
    assert_eq!(files_under(&root), 0);
    let _ = std::fs::remove_dir_all(&root);
}
