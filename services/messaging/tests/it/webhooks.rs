//! Outbound webhooks against real Postgres and real HTTP receivers on 127.0.0.1 (allowlisted in
//! the test's outbound configuration): schedule and signatures, refusals, redirects, a crash,
//! tenancy and bad input.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use nexus_kernel::{ErrorKind, Locale, PageRequest, WorkspaceId};
use nexus_messaging::app::webhooks::{EndpointInput, Webhooks, publish};
use nexus_messaging::domain::webhooks::{Clock, SCHEDULE};
use nexus_messaging::events::deliver::{Worker, WorkerConfig};
use nexus_platform::crypto::Sealer;
use nexus_platform::db;
use nexus_platform::identity::{Principal, Role};
use nexus_platform::outbound::{OutboundClient, OutboundConfig};
use nexus_testkit::TestDb;
use serde_json::json;
use sha2::Sha256;
use sqlx::PgPool;

use crate::support::member;

/// A clock the test moves. It starts a minute ahead of the database's clock, which stamps
/// new deliveries as due: what a test publishes is due at once for the worker.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Utc::now() + chrono::Duration::seconds(60))))
    }
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += chrono::Duration::from_std(by).unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn local_outbound() -> OutboundConfig {
    OutboundConfig { allow_private_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()], ..Default::default() }
}

struct Fixture {
    db: TestDb,
    pool: PgPool,
    admin: PgPool,
    sealer: Sealer,
    /// The material of the sealer's only key (version 1), for rotation tests.
    key: String,
    clock: Arc<TestClock>,
    hooks: Webhooks,
}

impl Fixture {
    async fn new() -> Fixture {
        nexus_testkit::init_tracing();
        let db = TestDb::new().await;
        let cfg = db.config("messaging");
        db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
        let pool = db::connect("messaging", &cfg).await.unwrap();
        let admin = db.admin_pool().await;
        let key = Sealer::generate_key();
        let sealer = Sealer::new(&[(1, &key)]).unwrap();
        let clock = TestClock::new();
        let hooks = Webhooks {
            pool: pool.clone(),
            sealer: sealer.clone(),
            outbound: OutboundClient::new(&local_outbound()).unwrap(),
            allow_http: false,
            clock: clock.clone(),
        };
        Fixture { db, pool, admin, sealer, key, clock, hooks }
    }

    /// The use cases under another outbound configuration.
    fn hooks_with(&self, outbound: &OutboundConfig) -> Webhooks {
        Webhooks { outbound: OutboundClient::new(outbound).unwrap(), ..self.hooks.clone() }
    }

    fn worker_with(&self, outbound: &OutboundConfig, cfg: WorkerConfig) -> Worker {
        Worker::new(self.pool.clone(), outbound, self.sealer.clone(), self.clock.clone(), cfg).unwrap()
    }

    fn worker(&self) -> Worker {
        self.worker_with(&local_outbound(), WorkerConfig { timeout: Duration::from_secs(5), ..Default::default() })
    }

    /// Publishes an event in a transaction of its own, as a use case would in its own.
    async fn publish(&self, ws: WorkspaceId, event_type: &str, key: &str, data: serde_json::Value) -> bool {
        let mut tx = db::tenant(&self.pool, ws).await.unwrap();
        let made = publish(&mut tx, ws, event_type, key, &data).await.unwrap();
        db::commit(tx).await.unwrap();
        made.is_some()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&self.admin).await.unwrap()
    }

    /// Runs worker rounds until one claims nothing.
    async fn drain(&self, w: &Worker) -> usize {
        let mut total = 0;
        loop {
            let n = w.tick().await.unwrap();
            if n == 0 {
                return total;
            }
            total += n;
        }
    }
}

/// A request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

#[derive(Default)]
struct ReceiverState {
    /// Statuses to answer, in order; then `default`.
    script: VecDeque<u16>,
    default: u16,
    /// Hold every request open (never answer).
    hang: bool,
    got: Vec<Received>,
}

/// A webhook receiver on 127.0.0.1.
#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start(script: &[u16], default: u16) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            script: script.iter().copied().collect(),
            default,
            ..Default::default()
        }));
        let shared = state.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let state = shared.clone();
                    async move {
                        let (status, hang) = {
                            let mut s = state.lock().unwrap();
                            let headers = headers
                                .iter()
                                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                                .collect();
                            s.got.push(Received { headers, body: body.to_vec() });
                            let status = s.script.pop_front().unwrap_or(s.default);
                            (status, s.hang)
                        };
                        if hang {
                            futures::future::pending::<()>().await;
                        }
                        let mut h = HeaderMap::new();
                        h.insert("location", "/elsewhere".parse().unwrap());
                        (StatusCode::from_u16(status).unwrap(), h, format!("answer {status}")).into_response()
                    }
                }),
            )
            .route("/elsewhere", axum::routing::post(|| async { "followed" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, state }
    }

    fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    fn ids(&self) -> Vec<String> {
        self.got().iter().map(|r| r.headers["webhook-id"].clone()).collect()
    }
}

/// A Standard Webhooks verifier written from the specification, not from our provider crate:
/// HMAC-SHA256 keyed by the base64 after `whsec_`, over `{id}.{timestamp}.{body}`, compared
/// with each space-separated `v1,<base64>` entry of `webhook-signature`.
fn independently_verified(secret: &str, r: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let signed = format!(
        "{}.{}.{}",
        r.headers["webhook-id"],
        r.headers["webhook-timestamp"],
        std::str::from_utf8(&r.body).unwrap()
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    r.headers["webhook-signature"].split(' ').any(|entry| entry.strip_prefix("v1,") == Some(expected.as_str()))
}

fn input(url: &str, types: &[&str]) -> EndpointInput {
    EndpointInput {
        url: url.to_owned(),
        description: "CRM sync".into(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        rate_limit: None,
    }
}

fn contact(n: usize) -> serde_json::Value {
    json!({"id": uuid::Uuid::now_v7(), "name": format!("Contact {n}"), "tags": [], "stage": "lead"})
}

fn owner() -> (WorkspaceId, Principal) {
    let ws = WorkspaceId::new();
    (ws, member(ws, Role::Owner))
}

#[tokio::test]
async fn four_failures_then_success_follow_the_schedule_and_the_signature_verifies_with_old_and_new_secret() {
    let f = Fixture::new().await;
    let rx = Receiver::start(&[500, 500, 503, 500], 200).await;
    let (ws, p) = owner();
    let (endpoint, old_secret) = f.hooks.create_endpoint(&p, &input(&rx.url, &["contact.*"])).await.unwrap();
    assert!(old_secret.starts_with("whsec_"));
    assert!(f.publish(ws, "contact.created", "evt-1", contact(1)).await);
    // A page event is not what this endpoint subscribed to.
    assert!(f.publish(ws, "page.published", "evt-2", json!({"page_id": "pg_1", "slug": "s", "version": 1})).await);
    let w = f.worker();
    let id = endpoint.id.to_string();

    assert_eq!(w.tick().await.unwrap(), 1, "the first attempt goes at once");
    let mut new_secret = String::new();
    for (n, gap) in SCHEDULE[1..5].iter().enumerate() {
        // Not a moment early.
        f.clock.advance(*gap - Duration::from_secs(1));
        assert_eq!(w.tick().await.unwrap(), 0, "attempt {} is not due yet", n + 2);
        if n == 3 {
            // Rotated before the last attempt: for 24 hours both secrets sign.
            let (_, s) = f.hooks.rotate_secret(&p, &id).await.unwrap();
            new_secret = s;
        }
        f.clock.advance(Duration::from_secs(1));
        assert_eq!(w.tick().await.unwrap(), 1, "attempt {} is due", n + 2);
    }
    f.clock.advance(Duration::from_secs(86_000));
    assert_eq!(f.drain(&w).await, 0, "a delivered message is never sent again");

    let got = rx.got();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| r.headers["webhook-id"] == got[0].headers["webhook-id"]), "one webhook-id");
    let last = got.last().unwrap();
    assert_eq!(last.headers["webhook-signature"].split(' ').count(), 2);
    assert!(independently_verified(&old_secret, last), "the old secret verifies during the overlap");
    assert!(independently_verified(&new_secret, last), "the new secret verifies");
    assert!(!independently_verified(&f.hooks.rotate_secret(&p, &id).await.unwrap().1, last), "another does not");
    assert!(independently_verified(&old_secret, &got[0]) && !independently_verified(&new_secret, &got[0]));
    let body: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["name"].as_str()), (Some("contact.created"), Some("Contact 1")));

    // The attempts log: five attempts at the scheduled gaps, newest first.
    let attempts = f.hooks.attempts(&p, &id, "", &PageRequest::default()).await.unwrap().items;
    let outcomes: Vec<(&str, Option<i32>)> =
        attempts.iter().rev().map(|a| (a.outcome.as_str(), a.status_code)).collect();
    assert_eq!(
        outcomes,
        vec![
            ("status", Some(500)),
            ("status", Some(500)),
            ("status", Some(503)),
            ("status", Some(500)),
            ("delivered", Some(200))
        ]
    );
    let gaps: Vec<i64> = attempts.windows(2).rev().map(|w| (w[0].started_at - w[1].started_at).num_seconds()).collect();
    assert_eq!(gaps, vec![5, 300, 1_800, 7_200]);
    assert!(attempts.iter().all(|a| a.request_sha256.len() == 64 && a.response_body.starts_with("answer")));
    assert_eq!(attempts[0].request_headers["webhook-id"], json!(got[0].headers["webhook-id"]));
    let page = f.hooks.attempts(&p, &id, "", &PageRequest::new(Some(2), None).unwrap()).await.unwrap();
    let rest = f.hooks.attempts(&p, &id, "", &PageRequest::new(Some(10), page.next_cursor).unwrap()).await.unwrap();
    assert_eq!((page.items.len(), rest.items.len(), rest.next_cursor), (2, 3, None));

    // After the overlap only the newest secret signs.
    f.clock.advance(Duration::from_secs(25 * 3600));
    let newest = f.hooks.rotate_secret(&p, &id).await.unwrap().1;
    f.clock.advance(Duration::from_secs(25 * 3600));
    f.hooks.send_test(&p, &id, "contact.updated").await.unwrap();
    assert_eq!(f.drain(&w).await, 1);
    let test = rx.got().pop().unwrap();
    assert_eq!(test.headers["webhook-signature"].split(' ').count(), 1);
    assert!(independently_verified(&newest, &test));
    let body: serde_json::Value = serde_json::from_slice(&test.body).unwrap();
    assert_eq!(body["type"], "contact.updated");
    assert_eq!(body["data"]["stage"], "customer", "the catalogue's example");

    // Attempts are kept 30 days.
    f.clock.advance(Duration::from_secs(31 * 86_400));
    assert_eq!(w.sweep().await.unwrap(), 6);
    assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_attempts").await, 0);
    assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_messages").await, 0, "messages too");
}

#[tokio::test]
async fn private_targets_are_refused_at_creation_and_at_delivery() {
    let f = Fixture::new().await;
    let (ws, p) = owner();
    let strict = f.hooks_with(&OutboundConfig::default());
    for url in ["https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://localhost:8443/hook", "http://[::1]/x"] {
        let e = strict.create_endpoint(&p, &input(url, &[])).await.unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Unprocessable, "messaging.webhook_url_refused"), "{url}");
    }
    let e = strict.create_endpoint(&p, &input("http://8.8.8.8/hook", &[])).await.unwrap_err();
    assert_eq!(e.code(), "messaging.webhook_https_required");
    assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_endpoints").await, 0);

    // Allowed when created (the allowlist was there), refused when the worker's rules say no.
    let rx = Receiver::start(&[], 200).await;
    f.hooks.create_endpoint(&p, &input(&rx.url, &[])).await.unwrap();
    // An update to a private address is refused too.
    let (e2, _) = f.hooks.create_endpoint(&p, &input(&rx.url, &[])).await.unwrap();
    let e = strict
        .update_endpoint(&p, &e2.id.to_string(), Some(&input("https://10.0.0.1/x", &[])), &["url".into()], false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "messaging.webhook_url_refused");
    f.hooks.delete_endpoint(&p, &e2.id.to_string()).await.unwrap();

    assert!(f.publish(ws, "contact.created", "evt-1", contact(1)).await);
    let w = f.worker_with(&OutboundConfig::default(), WorkerConfig::default());
    assert_eq!(w.tick().await.unwrap(), 1);
    assert!(rx.got().is_empty(), "nothing reached the private address");
    let (outcome, status): (String, Option<i32>) =
        sqlx::query_as("SELECT outcome, status_code FROM messaging.webhook_attempts")
            .fetch_one(&f.admin)
            .await
            .unwrap();
    assert_eq!((outcome.as_str(), status), ("refused", None));
}

#[tokio::test]
async fn a_redirect_is_recorded_as_a_failure_and_not_followed() {
    let f = Fixture::new().await;
    let rx = Receiver::start(&[302], 200).await;
    let (ws, p) = owner();
    let (endpoint, _) = f.hooks.create_endpoint(&p, &input(&rx.url, &["contact.created"])).await.unwrap();
    assert!(f.publish(ws, "contact.created", "evt-1", contact(1)).await);
    let w = f.worker();
    assert_eq!(w.tick().await.unwrap(), 1);
    let attempts = f.hooks.attempts(&p, &endpoint.id.to_string(), "", &PageRequest::default()).await.unwrap().items;
    assert_eq!((attempts[0].outcome.as_str(), attempts[0].status_code), ("redirect", Some(302)));
    assert_eq!(rx.got().len(), 1, "the new location was not fetched");
    let status: String =
        sqlx::query_scalar("SELECT status FROM messaging.webhook_deliveries").fetch_one(&f.admin).await.unwrap();
    assert_eq!(status, "pending", "retried on the schedule");
    // The retry succeeds; the message is delivered once.
    f.clock.advance(SCHEDULE[1]);
    assert_eq!(f.drain(&w).await, 1);
    let status: String =
        sqlx::query_scalar("SELECT status FROM messaging.webhook_deliveries").fetch_one(&f.admin).await.unwrap();
    assert_eq!(status, "succeeded");
}

#[test]
fn a_worker_killed_mid_delivery_loses_nothing_and_resends_nothing_delivered() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let f = Fixture::new().await;
        let fast = Receiver::start(&[], 200).await;
        let slow = Receiver::start(&[], 200).await;
        slow.state.lock().unwrap().hang = true;
        let (ws, p) = owner();
        f.hooks.create_endpoint(&p, &input(&fast.url, &[])).await.unwrap();
        f.hooks.create_endpoint(&p, &input(&slow.url, &[])).await.unwrap();
        for i in 0..5 {
            assert!(f.publish(ws, "contact.created", &format!("evt-{i}"), contact(i)).await);
        }

        // The first process: its own runtime on its own thread, with its own pool.
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let (cfg, sealer, clock) = (f.db.config("messaging"), f.sealer.clone(), f.clock.clone());
        let process = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(async move {
                let pool = db::connect("messaging", &cfg).await.unwrap();
                let w = Worker::new(pool, &local_outbound(), sealer, clock, WorkerConfig::default()).unwrap();
                tokio::select! {
                    () = w.run(tokio_util::sync::CancellationToken::new()) => {}
                    _ = killed => {}
                }
            });
            // Dies: every task dropped where it stands, nothing drained.
            rt.shutdown_background();
        });
        let delivered = "SELECT count(*) FROM messaging.webhook_deliveries d JOIN messaging.webhook_endpoints e \
                         ON e.id = d.endpoint_id WHERE d.status = 'succeeded'";
        let ready = nexus_testkit::eventually(Duration::from_secs(20), || async {
            f.count(delivered).await == 5 && slow.got().len() == 5
        })
        .await;
        assert!(ready, "the fast endpoint answered all five and the slow one holds five requests");
        kill.send(()).unwrap();
        process.join().unwrap();
        assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_deliveries WHERE status = 'pending'").await, 5);

        // The restart: once the dead worker's leases run out, the held deliveries are due again.
        slow.state.lock().unwrap().hang = false;
        let w = f.worker();
        assert_eq!(f.drain(&w).await, 0, "still leased");
        f.clock.advance(Duration::from_secs(61));
        assert_eq!(f.drain(&w).await, 5);
        assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_deliveries WHERE status = 'succeeded'").await, 10);

        let mut fast_ids = fast.ids();
        fast_ids.sort();
        fast_ids.dedup();
        assert_eq!((fast.got().len(), fast_ids.len()), (5, 5), "the endpoint that answered 2xx got each message once");
        let mut slow_ids = slow.ids();
        slow_ids.sort();
        slow_ids.dedup();
        assert_eq!(slow_ids, fast_ids, "every message reached the endpoint that was cut off");
    });
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_with_an_event() {
    let f = Fixture::new().await;
    let rx = Receiver::start(&[], 500).await;
    let (ws, p) = owner();
    let (endpoint, _) = f.hooks.create_endpoint(&p, &input(&rx.url, &[])).await.unwrap();
    assert!(f.publish(ws, "contact.created", "evt-1", contact(1)).await);
    let w = f.worker();
    assert_eq!(w.tick().await.unwrap(), 1);
    for gap in &SCHEDULE[1..] {
        f.clock.advance(*gap);
        assert_eq!(w.tick().await.unwrap(), 1);
    }
    f.clock.advance(Duration::from_secs(36_000));
    assert_eq!(f.drain(&w).await, 0, "the schedule is spent");
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM messaging.webhook_deliveries").fetch_one(&f.admin).await.unwrap();
    assert_eq!((status.as_str(), attempts), ("failed", 8));
    let e = f.hooks.endpoint(&p, &endpoint.id.to_string()).await.unwrap();
    assert_eq!(e.status.as_str(), "enabled", "failing for about a day only");
    assert!(e.failing_since.is_some());

    // Five days after the first failure, the next failure disables it.
    f.clock.advance(Duration::from_secs(4 * 86_400));
    assert!(f.publish(ws, "contact.created", "evt-2", contact(2)).await);
    assert!(f.publish(ws, "contact.created", "evt-3", contact(3)).await);
    f.drain(&w).await;
    let e = f.hooks.endpoint(&p, &endpoint.id.to_string()).await.unwrap();
    assert_eq!((e.status.as_str(), e.disabled_reason.as_str()), ("disabled", "failing"));
    assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_deliveries WHERE status = 'pending'").await, 0);
    assert_eq!(
        f.count("SELECT count(*) FROM messaging.outbox WHERE subject = 'nexus.messaging.webhook_endpoint.disabled'")
            .await,
        1
    );
    // Disabled endpoints get nothing new, and cannot be replayed to until enabled.
    assert!(f.publish(ws, "contact.created", "evt-4", contact(4)).await);
    assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_deliveries WHERE status = 'pending'").await, 0);
    let e = f.hooks.replay(&p, &endpoint.id.to_string(), "", Some(f.clock.now())).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::FailedPrecondition, "messaging.webhook_endpoint_disabled"));
    let e = f.hooks.update_endpoint(&p, &endpoint.id.to_string(), None, &[], true).await.unwrap();
    assert!(e.status.as_str() == "enabled" && e.failing_since.is_none());
}

#[tokio::test]
async fn replays_send_again_and_publishing_is_idempotent_and_rate_limited() {
    let f = Fixture::new().await;
    let rx = Receiver::start(&[], 200).await;
    let (ws, p) = owner();
    let mut slow = input(&rx.url, &[]);
    slow.rate_limit = Some(1);
    let (endpoint, _) = f.hooks.create_endpoint(&p, &slow).await.unwrap();
    let id = endpoint.id.to_string();
    assert!(f.publish(ws, "contact.created", "evt-1", contact(1)).await);
    assert!(!f.publish(ws, "contact.created", "evt-1", contact(1)).await, "the same event makes one message");
    assert!(f.publish(ws, "contact.updated", "evt-2", contact(2)).await);
    assert!(f.publish(ws, "contact.updated", "evt-3", contact(3)).await);
    assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_deliveries").await, 3);

    // One per second: the first goes, the others are put back without counting as attempts.
    let w = f.worker_with(
        &local_outbound(),
        WorkerConfig { max_rate_wait: Duration::from_millis(100), ..Default::default() },
    );
    assert_eq!(w.tick().await.unwrap(), 3);
    assert_eq!(rx.got().len(), 1);
    assert_eq!(
        f.count("SELECT count(*) FROM messaging.webhook_deliveries WHERE status = 'pending' AND attempts = 0").await,
        2
    );
    f.hooks.update_endpoint(&p, &id, Some(&input(&rx.url, &[])), &["rate_limit".into()], false).await.unwrap();
    let w = f.worker();
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(f.drain(&w).await, 2);
    assert_eq!(rx.got().len(), 3);

    // Replay of one message, then of everything since a time.
    let messages = f.hooks.messages(&p, "", &PageRequest::default()).await.unwrap().items;
    assert_eq!(messages.len(), 3);
    let updated = f.hooks.messages(&p, "contact.updated", &PageRequest::default()).await.unwrap().items;
    assert_eq!(updated.len(), 2);
    let first = messages.last().unwrap();
    assert_eq!(f.hooks.replay(&p, &id, &first.id.to_string(), None).await.unwrap(), 1);
    assert_eq!(f.drain(&w).await, 1);
    let since = f.clock.now() - chrono::Duration::hours(1);
    assert_eq!(f.hooks.replay(&p, &id, "", Some(since)).await.unwrap(), 3);
    assert_eq!(f.drain(&w).await, 3);
    let ids = rx.ids();
    assert_eq!(ids.len(), 7);
    assert_eq!(ids.iter().filter(|i| **i == ids[0]).count(), 3, "a replay keeps the webhook-id");
    let e = f.hooks.replay(&p, &id, "", Some(f.clock.now() - chrono::Duration::days(31))).await.unwrap_err();
    assert_eq!(e.code(), "messaging.webhook_replay_since_invalid");
    let e = f.hooks.replay(&p, &id, "", None).await.unwrap_err();
    assert_eq!(e.code(), "messaging.webhook_replay_since_invalid");
}

#[tokio::test]
async fn content_page_events_become_messages_once() {
    use nexus_platform::consumer::{Event, EventHandler};
    use prost::Message as _;
    let f = Fixture::new().await;
    let rx = Receiver::start(&[], 200).await;
    let (ws, p) = owner();
    f.hooks.create_endpoint(&p, &input(&rx.url, &["page.lead_captured"])).await.unwrap();
    let lead = nexus_proto::events::PageLeadCaptured {
        workspace_id: ws.to_string(),
        page_id: "pg_1".into(),
        lead_id: "lead_1".into(),
        slug: "spring".into(),
        language: "es".into(),
        name: "Lucía".into(),
        email: "lucia@example.com".into(),
        ..Default::default()
    };
    let event_id = uuid::Uuid::now_v7();
    let event = Event {
        subject: "nexus.content.page.lead_captured".into(),
        envelope: nexus_proto::events::Envelope {
            event_id: event_id.to_string(),
            tenant_id: ws.to_string(),
            event_type: <nexus_proto::events::PageLeadCaptured as prost::Name>::full_name(),
            payload: lead.encode_to_vec(),
            ..Default::default()
        },
        event_id,
        tenant: Some(ws),
    };
    for _ in 0..2 {
        let mut tx = db::system(&f.pool).await.unwrap();
        nexus_messaging::events::fanout::ContentFanout.handle(&mut tx, &event).await.unwrap();
        db::commit(tx).await.unwrap();
    }
    let messages = f.hooks.messages(&p, "", &PageRequest::default()).await.unwrap().items;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].payload["email"], "lucia@example.com");
    assert_eq!(f.drain(&f.worker()).await, 1);
    assert_eq!(rx.got().len(), 1);
}

#[tokio::test]
async fn the_schedulers_post_events_become_messages_once() {
    use nexus_platform::consumer::{Event, EventHandler};
    use prost::Message as _;
    let f = Fixture::new().await;
    let rx = Receiver::start(&[], 200).await;
    let (ws, p) = owner();
    f.hooks.create_endpoint(&p, &input(&rx.url, &["post.*"])).await.unwrap();
    let published = nexus_proto::events::AdsPostPublished {
        workspace_id: ws.to_string(),
        post_id: "post_1".into(),
        target_id: "pubn_1".into(),
        provider: "meta".into(),
        platform: "instagram".into(),
        account: "1784".into(),
        platform_post_id: "17895695668004550".into(),
        permalink: "https://www.instagram.com/p/abc/".into(),
        published_at: Some(nexus_platform::grpc::ts(chrono::Utc::now())),
        ..Default::default()
    };
    let paused = nexus_proto::events::AdsAccountPaused {
        workspace_id: ws.to_string(),
        connection_id: "conn_1".into(),
        provider: "meta".into(),
        reason: "token refused".into(),
    };
    let event = |subject: &str, event_type: String, payload: Vec<u8>| {
        let event_id = uuid::Uuid::now_v7();
        Event {
            subject: subject.into(),
            envelope: nexus_proto::events::Envelope {
                event_id: event_id.to_string(),
                tenant_id: ws.to_string(),
                event_type,
                payload,
                ..Default::default()
            },
            event_id,
            tenant: Some(ws),
        }
    };
    let events = [
        event(
            "nexus.ads.post.published",
            <nexus_proto::events::AdsPostPublished as prost::Name>::full_name(),
            published.encode_to_vec(),
        ),
        event(
            "nexus.ads.account.paused",
            <nexus_proto::events::AdsAccountPaused as prost::Name>::full_name(),
            paused.encode_to_vec(),
        ),
    ];
    for e in events.iter().chain(events.iter()) {
        let mut tx = db::system(&f.pool).await.unwrap();
        nexus_messaging::events::fanout::AdsFanout.handle(&mut tx, e).await.unwrap();
        db::commit(tx).await.unwrap();
    }
    let messages = f.hooks.messages(&p, "", &PageRequest::default()).await.unwrap().items;
    assert_eq!(messages.len(), 2, "each event once");
    let post = messages.iter().find(|m| m.payload["permalink"] == "https://www.instagram.com/p/abc/").unwrap();
    assert_eq!(post.payload["platform"], "instagram");
    // The endpoint subscribed to post.* only: the paused notice is not sent to it.
    assert_eq!(f.drain(&f.worker()).await, 1);
    assert_eq!(rx.got().len(), 1);
}

#[tokio::test]
async fn workspaces_see_only_their_own_webhooks_and_bad_input_changes_nothing() {
    let f = Fixture::new().await;
    let rx_a = Receiver::start(&[], 200).await;
    let rx_b = Receiver::start(&[], 200).await;
    let (ws_a, a) = owner();
    let (ws_b, b) = owner();
    let (endpoint, _) = f.hooks.create_endpoint(&a, &input(&rx_a.url, &[])).await.unwrap();
    f.hooks.create_endpoint(&b, &input(&rx_b.url, &[])).await.unwrap();
    assert!(f.publish(ws_a, "contact.created", "evt-1", contact(1)).await);
    // The same event key in another workspace is another message.
    assert!(f.publish(ws_b, "contact.created", "evt-1", contact(2)).await);
    f.drain(&f.worker()).await;
    assert_eq!((rx_a.got().len(), rx_b.got().len()), (1, 1), "each workspace's event reached only its endpoint");
    let message_a = f.hooks.messages(&a, "", &PageRequest::default()).await.unwrap().items.remove(0);

    let id = endpoint.id.to_string();
    let mid = message_a.id.to_string();
    let not_found = |e: nexus_kernel::Error| (e.kind(), e.code().to_owned());
    let nf = (ErrorKind::NotFound, "messaging.webhook_endpoint_not_found".to_owned());
    assert_eq!(not_found(f.hooks.endpoint(&b, &id).await.unwrap_err()), nf);
    assert_eq!(not_found(f.hooks.update_endpoint(&b, &id, None, &[], true).await.unwrap_err()), nf);
    assert_eq!(not_found(f.hooks.rotate_secret(&b, &id).await.unwrap_err()), nf);
    assert_eq!(not_found(f.hooks.send_test(&b, &id, "contact.created").await.unwrap_err()), nf);
    assert_eq!(not_found(f.hooks.replay(&b, &id, &mid, None).await.unwrap_err()), nf);
    assert_eq!(not_found(f.hooks.attempts(&b, &id, "", &PageRequest::default()).await.unwrap_err()), nf);
    assert_eq!(not_found(f.hooks.delete_endpoint(&b, &id).await.unwrap_err()), nf);
    // B's own endpoint cannot be handed A's message either.
    let b_endpoint = f.hooks.endpoints(&b, &PageRequest::default()).await.unwrap().items.remove(0);
    let e = f.hooks.replay(&b, &b_endpoint.id.to_string(), &mid, None).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.webhook_message_not_found"));
    let b_messages = f.hooks.messages(&b, "", &PageRequest::default()).await.unwrap().items;
    assert!(b_messages.iter().all(|m| m.id != message_a.id) && b_messages.len() == 1);
    assert_eq!(f.hooks.endpoints(&b, &PageRequest::default()).await.unwrap().items.len(), 1);
    // A's endpoint is untouched.
    assert_eq!(f.hooks.endpoint(&a, &id).await.unwrap().status.as_str(), "enabled");

    // Bad input: a clear 4xx, nothing written.
    let endpoints_before = f.count("SELECT count(*) FROM messaging.webhook_endpoints").await;
    let outbox_before = f.count("SELECT count(*) FROM messaging.outbox").await;
    let mut cases: Vec<(EndpointInput, &str)> = vec![
        (input("not a url", &[]), "messaging.webhook_url_invalid"),
        (input("ftp://example.com/x", &[]), "messaging.webhook_url_invalid"),
        (input("https://user:pw@8.8.8.8/x", &[]), "messaging.webhook_url_invalid"),
        (input("", &[]), "messaging.webhook_url_invalid"),
        (input(&format!("https://8.8.8.8/{}", "a".repeat(2100)), &[]), "messaging.webhook_url_invalid"),
        (input(&rx_a.url, &["order.created"]), "messaging.unknown_event_type"),
        (input(&rx_a.url, &["contact"]), "messaging.unknown_event_type"),
    ];
    for limit in [0, 1001] {
        let mut i = input(&rx_a.url, &[]);
        i.rate_limit = Some(limit);
        cases.push((i, "messaging.webhook_rate_limit_invalid"));
    }
    let mut long = input(&rx_a.url, &[]);
    long.description = "d".repeat(501);
    cases.push((long, "messaging.webhook_description_invalid"));
    for (bad, code) in &cases {
        let e = f.hooks.create_endpoint(&a, bad).await.unwrap_err();
        assert_eq!(e.code(), *code, "{bad:?}");
        assert!((400..500).contains(&e.http_status()), "{bad:?}: {}", e.http_status());
    }
    let e =
        f.hooks.update_endpoint(&a, &id, Some(&input(&rx_a.url, &[])), &["secret".into()], false).await.unwrap_err();
    assert_eq!(e.code(), "messaging.webhook_update_mask_invalid");
    let mut zero = input(&rx_a.url, &[]);
    zero.rate_limit = Some(0);
    let e = f.hooks.update_endpoint(&a, &id, Some(&zero), &["rate_limit".into()], false).await.unwrap_err();
    assert_eq!(e.code(), "messaging.webhook_rate_limit_invalid");
    for malformed in ["nope", "", "123", "ep_0193"] {
        assert_eq!(not_found(f.hooks.endpoint(&a, malformed).await.unwrap_err()), nf);
        assert_eq!(not_found(f.hooks.delete_endpoint(&a, malformed).await.unwrap_err()), nf);
    }
    let e = f.hooks.replay(&a, &id, "nope", None).await.unwrap_err();
    assert_eq!(e.code(), "messaging.webhook_message_not_found");
    let e = f.hooks.send_test(&a, &id, "order.created").await.unwrap_err();
    assert_eq!(e.code(), "messaging.unknown_event_type");
    // Viewers read but do not change endpoints.
    let viewer = member(ws_a, Role::Viewer);
    assert_eq!(f.hooks.endpoints(&viewer, &PageRequest::default()).await.unwrap().items.len(), 1);
    let e = f.hooks.create_endpoint(&viewer, &input(&rx_a.url, &[])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(f.count("SELECT count(*) FROM messaging.webhook_endpoints").await, endpoints_before);
    assert_eq!(f.count("SELECT count(*) FROM messaging.outbox").await, outbox_before, "no change was audited");
    let unchanged = f.hooks.endpoint(&a, &id).await.unwrap();
    assert_eq!((unchanged.rate_limit, unchanged.url.as_str()), (10, rx_a.url.as_str()));

    // Changes are audited, secrets never in the record.
    f.hooks
        .update_endpoint(&a, &id, Some(&input(&rx_a.url, &["contact.*"])), &["event_types".into()], false)
        .await
        .unwrap();
    f.hooks.rotate_secret(&a, &id).await.unwrap();
    let audits: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT audit FROM messaging.outbox WHERE audit->>'table' = 'webhook_endpoints' AND audit->>'row_id' = $1",
    )
    .bind(&id)
    .fetch_all(&f.admin)
    .await
    .unwrap();
    assert!(audits.len() >= 3, "create, update and rotation are audited: {}", audits.len());
    let text = serde_json::to_string(&audits).unwrap();
    assert!(!text.contains("secret_sealed") && !text.contains("whsec_"));
    // And no plaintext secret sits in the table.
    let sealed: String = sqlx::query_scalar("SELECT secret_sealed FROM messaging.webhook_endpoints WHERE id = $1")
        .bind(endpoint.id)
        .fetch_one(&f.admin)
        .await
        .unwrap();
    assert!(sealed.starts_with("v1.") && !sealed.contains("whsec_"));
}

#[tokio::test]
async fn the_catalogue_lists_every_public_event_with_schema_and_example() {
    let f = Fixture::new().await;
    let (_, p) = owner();
    let types = f.hooks.event_types(&member(p.workspace_id, Role::Viewer)).unwrap();
    let names: Vec<&str> = types.iter().map(|t| t.name).collect();
    for expected in ["contact.created", "contact.updated", "page.lead_captured"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    for t in types {
        let schema: serde_json::Value = serde_json::from_str(t.schema).unwrap();
        assert_eq!(schema["type"], "object", "{}", t.name);
        serde_json::from_str::<serde_json::Value>(t.example).unwrap();
    }
}

#[test]
fn every_webhook_error_code_has_a_message_in_every_locale() {
    let codes = [
        "messaging.unknown_event_type",
        "messaging.webhook_description_invalid",
        "messaging.webhook_endpoint_disabled",
        "messaging.webhook_endpoint_not_found",
        "messaging.webhook_endpoint_status_invalid",
        "messaging.webhook_https_required",
        "messaging.webhook_message_not_found",
        "messaging.webhook_payload_too_large",
        "messaging.webhook_rate_limit_invalid",
        "messaging.webhook_replay_since_invalid",
        "messaging.webhook_update_mask_invalid",
        "messaging.webhook_url_invalid",
        "messaging.webhook_url_refused",
        "messaging.webhook_url_unresolvable",
    ];
    let args = [
        ("type", "order.created"),
        ("max", "10"),
        ("min", "1"),
        ("status", "x"),
        ("limit", "5"),
        ("days", "30"),
        ("field", "secret"),
    ];
    for l in Locale::ALL {
        for code in codes {
            let id = nexus_i18n::message_id(code);
            let text = nexus_i18n::try_message(l, &id, &args).unwrap_or_else(|| panic!("{l} lacks {id}"));
            assert!(!text.contains("{ $"), "{l} {id}: {text}");
            if l != Locale::En {
                assert_ne!(Some(text), nexus_i18n::try_message(Locale::En, &id, &args), "{l} {id} is untranslated");
            }
        }
    }
}

#[tokio::test]
async fn the_grpc_service_manages_endpoints_and_answers_bad_input_with_4xx_statuses() {
    use nexus_proto::nexus::messaging::v1::{self as pb, webhooks_client::WebhooksClient};
    use nexus_testkit::identity::authed;
    let svc = crate::support::Service::start_with(&[("NEXUS_WEBHOOKS__DELIVER", "false".into())]).await;
    let channel = tonic::transport::Endpoint::from_shared(svc.running.grpc_url()).unwrap().connect().await.unwrap();
    let mut client = WebhooksClient::new(channel);
    let ws = WorkspaceId::new();
    let admin = svc.issuer.user_token(ws, Role::Admin);
    let types = client.list_event_types(authed(pb::Empty {}, &admin)).await.unwrap().into_inner();
    assert!(types.items.iter().any(|t| t.name == "page.lead_captured" && !t.schema_json.is_empty()));

    let input = pb::EndpointInput {
        url: "https://8.8.8.8/hooks".into(),
        description: "ERP".into(),
        event_types: vec!["contact.*".into()],
        rate_limit: Some(50),
    };
    let made = client.create_endpoint(authed(input.clone(), &admin)).await.unwrap().into_inner();
    assert!(made.secret.starts_with("whsec_"));
    let id = made.endpoint.unwrap().id;
    let got = client.get_endpoint(authed(pb::GetByIdRequest { id: id.clone() }, &admin)).await.unwrap().into_inner();
    assert_eq!((got.rate_limit, got.status.as_str(), got.event_types), (50, "enabled", vec!["contact.*".to_owned()]));
    let rotated = client.rotate_secret(authed(pb::GetByIdRequest { id: id.clone() }, &admin)).await.unwrap();
    assert_ne!(rotated.into_inner().secret, made.secret);
    let page = client.list_endpoints(authed(pb::ListRequest { page: None }, &admin)).await.unwrap().into_inner();
    assert_eq!(page.items.len(), 1);

    // Every refusal is INVALID_ARGUMENT (the gateway's 400 or 422 by the error's kind).
    for bad in [
        pb::EndpointInput { rate_limit: Some(0), ..input.clone() },
        pb::EndpointInput { rate_limit: Some(1001), ..input.clone() },
        pb::EndpointInput { url: "https://10.0.0.1/x".into(), ..input.clone() },
        pb::EndpointInput { event_types: vec!["nope.*".into()], ..input.clone() },
    ] {
        let status = client.create_endpoint(authed(bad.clone(), &admin)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad:?}: {status:?}");
    }
    let page = client.list_endpoints(authed(pb::ListRequest { page: None }, &admin)).await.unwrap().into_inner();
    assert_eq!(page.items.len(), 1, "nothing written");
    let member = svc.issuer.user_token(ws, Role::Member);
    let status = client.create_endpoint(authed(input.clone(), &member)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let other = svc.issuer.user_token(WorkspaceId::new(), Role::Owner);
    let status = client.get_endpoint(authed(pb::GetByIdRequest { id: id.clone() }, &other)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    client.delete_endpoint(authed(pb::GetByIdRequest { id: id.clone() }, &admin)).await.unwrap();
    let status = client.get_endpoint(authed(pb::GetByIdRequest { id }, &admin)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn after_a_reseal_every_endpoint_secret_signs_under_the_new_key_alone() {
    let f = Fixture::new().await;
    let rx = Receiver::start(&[], 200).await;
    // Two workspaces, each endpoint with a current and a previous (rotated) secret, all under key 1.
    let mut endpoints = Vec::new();
    for _ in 0..2 {
        let (ws, p) = owner();
        let (e, first) = f.hooks.create_endpoint(&p, &input(&rx.url, &["contact.*"])).await.unwrap();
        let (_, second) = f.hooks.rotate_secret(&p, &e.id.to_string()).await.unwrap();
        endpoints.push((ws, p, e.id.to_string(), first, second));
    }
    let k2 = Sealer::generate_key();
    let rotated = Sealer::new(&[(1, &f.key), (2, &k2)]).unwrap();
    let options = nexus_platform::reseal::ResealOptions { batch_size: 1, max_batches: None };
    let report = nexus_platform::reseal::reseal(&f.pool, &rotated, nexus_messaging::DEF.sealed, options).await.unwrap();
    assert_eq!((report.resealed(), report.failed()), (4, 0), "{report:?}");
    assert_eq!(
        f.count("SELECT count(*) FROM messaging.webhook_endpoints WHERE secret_sealed LIKE 'v1.%' OR previous_secret_sealed LIKE 'v1.%'").await,
        0,
        "nothing left under the old key"
    );
    assert_eq!(
        f.count("SELECT count(*) FROM messaging.webhook_endpoints WHERE secret_sealed LIKE 'v2.%' AND previous_secret_sealed LIKE 'v2.%'").await,
        2
    );

    // The delivery worker signs with both secrets through a sealer that has only the new key.
    let only_new = Sealer::new(&[(2, &k2)]).unwrap();
    let cfg = WorkerConfig { timeout: Duration::from_secs(5), ..Default::default() };
    let w = Worker::new(f.pool.clone(), &local_outbound(), only_new.clone(), f.clock.clone(), cfg).unwrap();
    for (n, (ws, ..)) in endpoints.iter().enumerate() {
        assert!(f.publish(*ws, "contact.created", &format!("evt-{n}"), contact(n)).await);
    }
    assert_eq!(f.drain(&w).await, 2);
    let got = rx.got();
    assert_eq!(got.len(), 2);
    for (_, _, _, first, second) in &endpoints {
        let signed = got.iter().filter(|r| independently_verified(first, r) && independently_verified(second, r));
        assert_eq!(signed.count(), 1, "each endpoint's request carries both of its secrets' signatures");
    }
    // Rotating again opens the current secret with the new key alone.
    let hooks = Webhooks { sealer: only_new, ..f.hooks.clone() };
    let mut secrets = Vec::new();
    for (_, p, id, first, second) in &endpoints {
        let third = hooks.rotate_secret(p, id).await.unwrap().1;
        secrets.extend([first.clone(), second.clone(), third]);
    }
    // No endpoint secret, current or previous, shows in a dump of the database.
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert!(f.db.assert_dump_hides(&secrets) > 0);
}
