//! No raw email, phone number or full IP is ever stored.

use chrono::Utc;
use nexus_kernel::WorkspaceId;
use nexus_proto::events as ev;
use nexus_proto::nexus::analytics::v1 as pb;
use prost::{Message, Name};

use crate::support::*;

const EMAIL: &str = "maria.souza@example.com";
const PHONE_DIGITS: &str = "5511987654321";
const IP: &str = "198.51.100.77";
const IPV6: &str = "2001:db8:85a3:8d3:1319:8a2e:370:7348";

#[tokio::test]
async fn stored_rows_hold_no_raw_email_phone_or_full_ip() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let key = svc.write_key(ws).await;
    let now = Utc::now();
    let mut e1 = event("lead.captured", "p-1", now, "anon-p");
    e1.user_id = EMAIL.to_uppercase();
    e1.properties_json = serde_json::json!({
        "email": EMAIL,
        "contact": {"whatsapp_phone": "+55 (11) 98765-4321", "notes": format!("write to {EMAIL} or call +55 11 98765-4321")},
        "ip": IPV6,
        "server": IP,
        "list": [EMAIL, "ok"],
        "plan": "pro"
    })
    .to_string();
    e1.page_url = format!("https://shop.example.com/thanks?email={}&ref=ad", EMAIL.replace('@', "%40"));
    e1.referrer = format!("https://mail.example.com/u/{EMAIL}/inbox");
    let mut e2 = event("phone.entered", "p-2", now, "+5511987654321");
    e2.utm = Some(pb::Utm { source: "newsletter".into(), campaign: EMAIL.into(), ..Default::default() });
    let mut req = tonic::Request::new(batch(&key, vec![e1, e2]));
    // The gateway forwards the caller's address like this.
    req.metadata_mut().insert("x-nexus-client-ip", IP.parse().unwrap());
    let r = svc.client().track_batch(req).await.unwrap().into_inner();
    assert_eq!(r.accepted, 2, "{:?}", r.results);

    // Personal data arriving through a domain event and an audit record too.
    let bus = svc.bus().await;
    bus.ensure_service_stream("auth").await.unwrap();
    let signed = ev::UserSignedUp {
        user_id: "usr_1".into(),
        workspace_id: ws.to_string(),
        email: EMAIL.into(),
        locale: "es".into(),
    };
    let audit = ev::AuditRecorded {
        schema: "auth".into(),
        table: "memberships".into(),
        operation: "UPDATE".into(),
        row_id: "m1".into(),
        actor_id: "usr_1".into(),
        request_id: "req_1".into(),
        client_ip: IP.into(),
        before_json: serde_json::json!({"email": EMAIL, "phone": "+55 11 98765-4321"}).to_string(),
        after_json: serde_json::json!({"email": EMAIL, "role": "admin"}).to_string(),
    };
    bus.ensure_service_stream("content").await.unwrap();
    let lead = ev::PageLeadCaptured {
        workspace_id: ws.to_string(),
        page_id: "pg_1".into(),
        lead_id: "ld_1".into(),
        slug: "promo".into(),
        language: "pt".into(),
        name: "Maria Souza".into(),
        email: EMAIL.into(),
        phone: "+55 11 98765-4321".into(),
        message: "Me liga no fim de semana".into(),
        consent: true,
    };
    for (subject, env) in [
        ("nexus.auth.user.signed_up", envelope(ws, &signed)),
        ("nexus.auth.audit.recorded", envelope(ws, &audit)),
        ("nexus.content.page.lead_captured", envelope(ws, &lead)),
    ] {
        bus.js.publish(bus.subject(subject), env.encode_to_vec().into()).await.unwrap().await.unwrap();
    }
    svc.wait_for_events(ws, 4, 30).await;
    let admin = svc.admin().await;
    let ok = nexus_testkit::eventually(std::time::Duration::from_secs(20), || {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM analytics.system_logs WHERE tenant_id = $1 AND service = 'auth'",
            )
            .bind(ws.as_uuid())
            .fetch_one(&admin)
            .await
            .unwrap()
                == 1
        }
    })
    .await;
    assert!(ok, "audit entry stored");

    // Every column of every stored row, as text.
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT t::text FROM analytics.analytics_events t WHERE tenant_id = $1 \
         UNION ALL SELECT l::text FROM analytics.system_logs l WHERE tenant_id = $1",
    )
    .bind(ws.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    // Four events, the auth audit entry, and the audit of this workspace's own analytics settings.
    assert!(rows.len() >= 5, "{rows:?}");
    let all = rows.join("\n").to_lowercase();
    for raw in [
        EMAIL,
        "maria.souza%40example.com",
        "maria.souza",
        "Maria Souza",
        "fim de semana",
        PHONE_DIGITS,
        "98765-4321",
        IP,
        IPV6,
        "8a2e:370:7348",
    ] {
        assert!(!all.contains(&raw.to_lowercase()), "raw {raw:?} stored: {all}");
    }
    // What is kept instead: truncated addresses and salted hashes that still group equal values.
    let ips: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT host(ip) FROM analytics.analytics_events WHERE tenant_id = $1 AND source = 'track' ORDER BY client_event_id",
    )
    .bind(ws.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(ips, vec![Some("198.51.100.0".to_owned()), Some("198.51.100.0".to_owned())]);
    let (user, props): (String, serde_json::Value) = sqlx::query_as(
        "SELECT user_id, properties FROM analytics.analytics_events WHERE tenant_id = $1 AND client_event_id = 'p-1'",
    )
    .bind(ws.as_uuid())
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(user, props["email"].as_str().unwrap(), "the same address hashes alike wherever it appears");
    assert_eq!(props["ip"], "2001:db8:85a3::");
    assert_eq!(props["plan"], "pro");
    let (log_ip,): (Option<String>,) =
        sqlx::query_as("SELECT host(ip) FROM analytics.system_logs WHERE tenant_id = $1 AND service = 'auth'")
            .bind(ws.as_uuid())
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(log_ip.as_deref(), Some("198.51.100.0"));
}

fn envelope<M: Message + Name>(ws: WorkspaceId, msg: &M) -> ev::Envelope {
    ev::Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: ws.as_uuid().to_string(),
        event_type: M::full_name(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        schema_version: 1,
        source: "auth".into(),
        actor_id: "usr_1".into(),
        payload: msg.encode_to_vec(),
        ..Default::default()
    }
}
