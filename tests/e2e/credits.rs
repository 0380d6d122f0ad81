//! Credits through the real binaries: a workspace is ready when sign-up answers, and every
//! metered action is charged exactly once whatever happens to the caller's session or to the
//! subscriptions service in the middle of it (SIGTERM, SIGKILL, restart).

use std::sync::Arc;
use std::time::Duration;

use nexus_testkit::openai::{FakeOpenAi, Script, TEST_API_KEY, TEST_MODEL};
use nexus_testkit::{TestDb, TestNats};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::support::{Proc, free_port, migrate, service_env, wait_http_ok};

type Env = Vec<(&'static str, String)>;

/// Auth, subscriptions, content and the gateway, as `make run` starts them.
pub(crate) struct Fleet {
    db: TestDb,
    _nats: TestNats,
    _auth: Proc,
    subs: Option<Proc>,
    subs_env: Env,
    subs_admin: u16,
    _content: Proc,
    _gateway: Proc,
    base: String,
    http: reqwest::Client,
}

impl Fleet {
    pub(crate) async fn start(content_extra: Env) -> Fleet {
        nexus_testkit::init_tracing();
        let db = TestDb::new().await;
        let nats = TestNats::new();
        let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
        let (auth_grpc, subs_grpc, content_grpc, http) = (ports[0], ports[1], ports[2], ports[3]);
        let auth_url = format!("http://127.0.0.1:{auth_grpc}");
        let subs_url = format!("http://127.0.0.1:{subs_grpc}");

        let mut auth_env = service_env(&db, &nats, "auth", auth_grpc, ports[4]);
        auth_env.push(("NEXUS_AUTH__ARGON2_MEMORY_KIB", "4096".into()));
        let mut subs_env = service_env(&db, &nats, "subscriptions", subs_grpc, ports[5]);
        subs_env.push(("NEXUS_IDENTITY__AUTH_URL", auth_url.clone()));
        // Settlements handed to a subscriptions process that is then killed come back after the
        // ack wait; keep it short so the test stays quick.
        subs_env.push(("NEXUS_NATS__ACK_WAIT", "5s".into()));
        let mut content_env = service_env(&db, &nats, "content", content_grpc, ports[6]);
        content_env.push(("NEXUS_IDENTITY__AUTH_URL", auth_url.clone()));
        content_env.push(("NEXUS_SERVICES__SUBSCRIPTIONS", subs_url.clone()));
        content_env.extend(content_extra);
        migrate("nexus-auth", &auth_env);
        migrate("nexus-subscriptions", &subs_env);
        migrate("nexus-content", &content_env);
        let auth = Proc::spawn("nexus-auth", &auth_env);
        let subs = Proc::spawn("nexus-subscriptions", &subs_env);
        let content = Proc::spawn("nexus-content", &content_env);
        let gateway = Proc::spawn(
            "nexus-gateway",
            &[
                ("NEXUS_HTTP__ADDR", format!("127.0.0.1:{http}")),
                ("NEXUS_ADMIN__ADDR", format!("127.0.0.1:{}", ports[7])),
                ("NEXUS_SERVICES__AUTH", auth_url),
                ("NEXUS_SERVICES__SUBSCRIPTIONS", subs_url),
                ("NEXUS_SERVICES__CONTENT", format!("http://127.0.0.1:{content_grpc}")),
                // Hundreds of sign-ups from one test client.
                ("NEXUS_RATE_LIMIT__AUTH_PER_IP_PER_MINUTE", "100000".into()),
                ("NEXUS_RATE_LIMIT__PER_IP_PER_MINUTE", "100000".into()),
            ],
        );
        for admin in &ports[4..8] {
            assert!(
                wait_http_ok(&format!("http://127.0.0.1:{admin}/readyz"), Duration::from_secs(60)).await,
                "{admin} ready"
            );
        }
        Fleet {
            db,
            _nats: nats,
            _auth: auth,
            subs: Some(subs),
            subs_env,
            subs_admin: ports[5],
            _content: content,
            _gateway: gateway,
            base: format!("http://127.0.0.1:{http}"),
            http: reqwest::Client::new(),
        }
    }

    /// Signs up a new user; returns the session body.
    pub(crate) async fn signup(&self) -> Value {
        let email = format!("e2e.credits.{}@example.com", uuid::Uuid::new_v4().simple());
        let resp = self
            .http
            .post(format!("{}/v1/auth/signup", self.base))
            .json(&json!({"email": email, "password": "correct horse battery staple", "name": "Ana"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "sign-up");
        let mut session: Value = resp.json().await.unwrap();
        session["email"] = email.into();
        session
    }

    pub(crate) async fn generate(&self, token: &str, key: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/content/generations", self.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({"kind": "social_post", "platform": "x", "language": "en", "product": "Trail Runner X"}))
            .send()
            .await
            .unwrap()
    }

    /// Stops every binary and hands back the database as they left it.
    pub(crate) fn stop(self) -> TestDb {
        self.db
    }

    async fn balance(&self, token: &str) -> Value {
        let resp = self.http.get(format!("{}/v1/credits/balance", self.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 200, "balance");
        resp.json().await.unwrap()
    }

    /// The balance once no hold is left (settlements arrive through the outbox).
    pub(crate) async fn settled(&self, token: &str) -> Value {
        for _ in 0..300 {
            let b = self.balance(token).await;
            if b["reserved"] == 0 {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("holds never settled: {}", self.balance(token).await);
    }

    async fn login(&self, email: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": "correct horse battery staple"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login");
        resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    async fn ledger(&self, session: &Value, sql: &str) -> i64 {
        let ws = session["workspace"]["id"].as_str().unwrap();
        let ws = uuid::Uuid::parse_str(ws.trim_start_matches("ws_")).unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(ws)
            .fetch_one(&self.db.admin_pool().await)
            .await
            .unwrap()
    }

    async fn ledger_sum(&self, session: &Value) -> i64 {
        self.ledger(
            session,
            "SELECT coalesce(sum(amount), 0)::bigint FROM subscriptions.credit_ledger WHERE tenant_id = $1",
        )
        .await
    }

    async fn commits(&self, session: &Value) -> i64 {
        self.ledger(
            session,
            "SELECT count(*) FROM subscriptions.credit_ledger WHERE tenant_id = $1 AND kind = 'commit'",
        )
        .await
    }

    /// Stops subscriptions with `sig` and waits for it to be gone.
    async fn stop_subscriptions(&mut self, sig: &str) {
        let mut subs = self.subs.take().expect("subscriptions running");
        subs.signal(sig);
        subs.wait_exit(Duration::from_secs(30)).await.expect("subscriptions exits");
    }

    /// Starts subscriptions again on the same ports.
    async fn restart_subscriptions(&mut self) {
        self.subs = Some(Proc::spawn("nexus-subscriptions", &self.subs_env));
        assert!(
            wait_http_ok(&format!("http://127.0.0.1:{}/readyz", self.subs_admin), Duration::from_secs(60)).await,
            "subscriptions ready again"
        );
    }
}

pub(crate) fn token(session: &Value) -> String {
    session["access_token"].as_str().unwrap().to_owned()
}

/// A model reply that streams for about two seconds.
fn slow_copy() -> Script {
    let copy = json!({"variants": [{"title": "Trail Runner X", "body": "Light, breathable and ready for the weekend trail."}]});
    Script::text(copy.to_string()).pieces(20, 0).chunk_delay(Duration::from_millis(100)).completion_tokens(1200)
}

async fn with_model() -> (Fleet, FakeOpenAi) {
    let fake = FakeOpenAi::start().await;
    let fleet = Fleet::start(vec![
        ("NEXUS_LLM__PROVIDER", "openai".into()),
        ("NEXUS_LLM__BASE_URL", fake.base_url.clone()),
        ("NEXUS_LLM__API_KEY", TEST_API_KEY.into()),
        ("NEXUS_LLM__MODEL", TEST_MODEL.into()),
    ])
    .await;
    (fleet, fake)
}

#[tokio::test]
async fn two_hundred_signups_each_generate_at_once_and_are_charged() {
    let fleet = Arc::new(Fleet::start(Vec::new()).await);
    let gate = Arc::new(Semaphore::new(12));
    let mut runs = Vec::new();
    for i in 0..200 {
        let (fleet, gate) = (fleet.clone(), gate.clone());
        runs.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            let session = fleet.signup().await;
            let token = token(&session);
            let resp = fleet.generate(&token, &format!("first-{i}")).await;
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (session, status, body)
        }));
    }
    let mut done = Vec::new();
    for r in runs {
        done.push(r.await.unwrap());
    }
    let refused: Vec<_> = done.iter().filter(|(_, status, _)| *status != 201).map(|(_, s, b)| (s, b)).collect();
    assert!(refused.is_empty(), "{} of 200 first generations failed: {:?}", refused.len(), refused.first());
    for (session, _, body) in &done {
        let charge = body["credits"].as_i64().unwrap();
        assert!(charge > 0);
        let b = fleet.settled(&token(session)).await;
        assert_eq!(b["available"].as_i64().unwrap(), 50 - charge, "{b}");
    }
}

#[tokio::test]
async fn a_user_who_logs_out_mid_stream_is_charged_once() {
    let (fleet, fake) = with_model().await;
    let session = fleet.signup().await;
    fake.push(nexus_testkit::openai::Reply::Answer(slow_copy()));
    let mut stream = fleet
        .http
        .post(format!("{}/v1/content/generations", fleet.base))
        .bearer_auth(token(&session))
        .header("accept", "text/event-stream")
        .json(&json!({"kind": "ad_copy", "platform": "facebook", "language": "en", "product": "Trail Runner X", "variants": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 201);
    let mut text = String::new();
    let mut logged_out = false;
    while let Some(chunk) = stream.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !logged_out && text.contains("event: delta") {
            // The session ends while the generation is still streaming.
            let out = fleet
                .http
                .post(format!("{}/v1/auth/logout", fleet.base))
                .json(&json!({"refresh_token": session["refresh_token"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(out.status(), 204);
            logged_out = true;
        }
    }
    assert!(logged_out, "{text}");
    assert!(text.contains("event: done"), "the generation finished and was stored: {text}");
    let done = text.split("event: done\ndata: ").nth(1).unwrap().lines().next().unwrap();
    let charge = serde_json::from_str::<Value>(done).unwrap()["credits"].as_i64().unwrap();
    assert!(charge > 0);

    let again = fleet.login(session["email"].as_str().unwrap()).await;
    let b = fleet.settled(&again).await;
    assert_eq!(b["available"].as_i64().unwrap(), 50 - charge, "charged although the session ended: {b}");
    assert_eq!(fleet.commits(&session).await, 1, "charged once");
    assert_eq!(fleet.ledger_sum(&session).await, b["available"].as_i64().unwrap(), "the ledger sums to the balance");
}

/// One generation as its own task (no borrow of the fleet), answering (status, body).
fn spawn_generation(base: &str, token: &str, body: Value) -> tokio::task::JoinHandle<(u16, Value)> {
    let (url, token) = (format!("{base}/v1/content/generations"), token.to_owned());
    tokio::spawn(async move {
        let resp = reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    })
}

#[tokio::test]
async fn subscriptions_stopped_during_a_generation_then_restarted_charges_once() {
    let (mut fleet, fake) = with_model().await;
    let session = fleet.signup().await;
    let token = token(&session);
    assert_eq!(fleet.balance(&token).await["available"], 50);
    fake.push(nexus_testkit::openai::Reply::Answer(slow_copy().delay(Duration::from_secs(3))));
    let body = json!({"kind": "ad_copy", "platform": "facebook", "language": "en", "product": "Trail Runner X", "variants": 1});
    let running = spawn_generation(&fleet.base, &token, body);
    let mut held = false;
    for _ in 0..100 {
        if fleet.balance(&token).await["reserved"].as_i64().unwrap() > 0 {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "the generation held its credits");
    // Subscriptions goes away while the model is still answering.
    fleet.stop_subscriptions("TERM").await;
    let (status, body) = running.await.unwrap();
    assert_eq!(status, 201, "stored and answered without subscriptions: {body}");
    let charge = body["credits"].as_i64().unwrap();
    assert!(charge > 0);

    fleet.restart_subscriptions().await;
    let b = fleet.settled(&token).await;
    assert_eq!(b["available"].as_i64().unwrap(), 50 - charge, "charged once subscriptions is back: {b}");
    assert_eq!(fleet.commits(&session).await, 1, "charged once");
    assert_eq!(fleet.ledger_sum(&session).await, b["available"].as_i64().unwrap(), "the ledger sums to the balance");
}

#[tokio::test]
async fn subscriptions_killed_during_sixty_generations_answers_201_402_or_503_and_the_ledger_adds_up() {
    let mut fleet = Fleet::start(Vec::new()).await;
    let sessions = vec![fleet.signup().await, fleet.signup().await, fleet.signup().await];
    for s in &sessions {
        assert_eq!(fleet.balance(&token(s)).await["available"], 50);
    }
    let mut runs = Vec::new();
    for i in 0..60 {
        let session = &sessions[i % sessions.len()];
        let body =
            json!({"kind": "social_post", "platform": "x", "language": "en", "product": format!("Trail Runner {i}")});
        runs.push((i % sessions.len(), spawn_generation(&fleet.base, &token(session), body)));
        if i == 20 {
            // A third of the way in, subscriptions dies without warning.
            fleet.subs.as_ref().unwrap().signal("KILL");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut created = [0_i64; 3];
    let mut credits = [0_i64; 3];
    let mut answers = std::collections::BTreeMap::new();
    for (who, run) in runs {
        let (status, body) = run.await.unwrap();
        *answers.entry(status).or_insert(0) += 1;
        assert!(matches!(status, 201 | 402 | 503), "{status}: {body}");
        if status == 503 {
            assert_eq!(body["error"]["code"], "service.unavailable", "{body}");
        }
        if status == 201 {
            created[who] += 1;
            credits[who] += body["credits"].as_i64().unwrap();
        }
    }
    assert!(answers.contains_key(&503), "some generations met the dead service: {answers:?}");
    fleet.stop_subscriptions("KILL").await;
    fleet.restart_subscriptions().await;
    for (who, session) in sessions.iter().enumerate() {
        let token = token(session);
        // Every answered generation is charged once (its settlement was stored with it); holds
        // whose answer was lost in the crash stay held until their TTL gives them back.
        let mut charged = -1;
        for _ in 0..600 {
            charged = fleet
                .ledger(
                    session,
                    "SELECT (count(*) FILTER (WHERE kind = 'commit'))::bigint FROM subscriptions.credit_ledger WHERE tenant_id = $1",
                )
                .await;
            if charged == created[who] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(charged, created[who], "one charge per 201 ({answers:?})");
        let b = fleet.balance(&token).await;
        let (available, reserved) = (b["available"].as_i64().unwrap(), b["reserved"].as_i64().unwrap());
        assert_eq!(fleet.ledger_sum(session).await, available, "the ledger sums to the balance");
        assert_eq!(available + reserved, 50 - credits[who], "{b}");
    }
}
