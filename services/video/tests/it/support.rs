//! The video service, the subscriptions service it charges and fake D-ID and ElevenLabs servers,
//! in one test database.

use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::subscriptions::v1 as spb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use nexus_proto::nexus::video::v1 as pb;
use nexus_proto::nexus::video::v1::video_client::VideoClient;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use nexus_testkit::did::FakeDid;
use nexus_testkit::elevenlabs::{FakeElevenLabs, TEST_VOICES};
use nexus_testkit::identity::{TestIssuer, authed};
use nexus_testkit::{RunningService, TestDb, TestNats};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub struct Stack {
    pub url: String,
    pub subs_url: String,
    pub db: TestDb,
    pub nats: TestNats,
    pub issuer: TestIssuer,
    pub did: FakeDid,
    pub eleven: FakeElevenLabs,
    pub store: tempfile::TempDir,
    extra: Vec<(String, String)>,
    video: Option<RunningService>,
    stop: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(v) = &self.video {
            v.shutdown.cancel();
        }
        self.stop.cancel();
    }
}

fn env(db: &TestDb, nats: &TestNats, service: &str, extra: &[(String, String)]) -> Vec<(String, String)> {
    let cfg = db.config(service);
    let mut env = vec![
        ("NEXUS_DATABASE__URL".to_owned(), cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), cfg.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL".to_owned(), nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), nats.prefix.clone()),
        // Provider fakes and their files listen on loopback.
        ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS".to_owned(), "127.0.0.0/8".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    env
}

async fn spawn_subscriptions(db: &TestDb, nats: &TestNats, issuer: &TestIssuer, stop: CancellationToken) -> String {
    let cfg: nexus_subscriptions::Config = nexus_platform::config::load_from_env(
        "subscriptions",
        nexus_subscriptions::DEFAULTS,
        None,
        env(db, nats, "subscriptions", &[]),
    )
    .expect("subscriptions config");
    nexus_platform::db::migrate("subscriptions", &cfg.common.database, Some(&nexus_subscriptions::MIGRATIONS))
        .await
        .expect("migrate subscriptions");
    let listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let url = format!("http://{}", listeners.grpc.local_addr().unwrap());
    let keys = issuer.keys();
    tokio::spawn(async move {
        nexus_subscriptions::run_with_keys(cfg, listeners, stop, Some(keys)).await.expect("subscriptions serves")
    });
    url
}

/// Both services against the fakes; `extra` are more `NEXUS_*` settings for the video service.
pub async fn start_with(extra: &[(&str, String)]) -> Stack {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let issuer = TestIssuer::new();
    let stop = CancellationToken::new();
    let did = FakeDid::start().await;
    let eleven = FakeElevenLabs::start().await;
    let store = tempfile::tempdir().unwrap();
    let subs_url = spawn_subscriptions(&db, &nats, &issuer, stop.child_token()).await;
    let mut settings: Vec<(String, String)> = vec![
        ("NEXUS_SERVICES__SUBSCRIPTIONS".into(), subs_url.clone()),
        ("NEXUS_VOICE__PROVIDER".into(), "elevenlabs".into()),
        ("NEXUS_ELEVENLABS__API_KEY".into(), nexus_testkit::elevenlabs::TEST_API_KEY.into()),
        ("NEXUS_ELEVENLABS__BASE_URL".into(), eleven.base_url.clone()),
        ("NEXUS_RENDER__PROVIDER".into(), "d-id".into()),
        ("NEXUS_DID__API_KEY".into(), nexus_testkit::did::TEST_API_KEY.into()),
        ("NEXUS_DID__BASE_URL".into(), did.base_url.clone()),
        ("NEXUS_PIPELINE__IDLE_POLL".into(), "50ms".into()),
        ("NEXUS_PIPELINE__TALK_POLL".into(), "100ms".into()),
        ("NEXUS_PIPELINE__BACKOFF".into(), "100ms".into()),
        ("NEXUS_PIPELINE__LEASE".into(), "3s".into()),
        ("NEXUS_STORAGE__ROOT".into(), store.path().display().to_string()),
    ];
    settings.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let mut stack = Stack {
        url: String::new(),
        subs_url,
        db,
        nats,
        issuer,
        did,
        eleven,
        store,
        extra: settings,
        video: None,
        stop,
    };
    stack.start_video().await;
    for _ in 0..200 {
        if stack.subs().list_plans(spb::ListPlansRequest::default()).await.is_ok() {
            return stack;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("subscriptions did not start");
}

pub async fn start() -> Stack {
    start_with(&[]).await
}

impl Stack {
    /// Starts the video service (again, on a new port) over the same database.
    pub async fn start_video(&mut self) {
        let cfg: nexus_video::Config = nexus_platform::config::load_from_env(
            "video",
            nexus_video::DEFAULTS,
            None,
            env(&self.db, &self.nats, "video", &self.extra),
        )
        .expect("video config");
        let common = cfg.common.clone();
        let build = nexus_video::service(cfg).expect("video config");
        let svc = RunningService::start_with_keys(nexus_video::DEF, common, Some(self.issuer.keys()), build).await;
        self.url = svc.grpc_url();
        self.video = Some(svc);
    }

    /// More `NEXUS_*` settings for the video service's next start.
    pub fn configure(&mut self, more: &[(&str, String)]) {
        self.extra.extend(more.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    }

    /// The content service (local generator) over the same database, charging through the same
    /// subscriptions service; answers its URL.
    pub async fn start_content(&self) -> (String, RunningService) {
        let extra = [("NEXUS_SERVICES__SUBSCRIPTIONS".to_owned(), self.subs_url.clone())];
        let cfg: nexus_content::Config = nexus_platform::config::load_from_env(
            "content",
            nexus_content::DEFAULTS,
            None,
            env(&self.db, &self.nats, "content", &extra),
        )
        .expect("content config");
        let common = cfg.common.clone();
        let build = nexus_content::service(cfg).expect("content config");
        let svc = RunningService::start_with_keys(nexus_content::DEF, common, Some(self.issuer.keys()), build).await;
        (svc.grpc_url(), svc)
    }

    /// Another replica of the video service on the same database (its own port and workers).
    pub async fn replica(&self) -> RunningService {
        let cfg: nexus_video::Config = nexus_platform::config::load_from_env(
            "video",
            nexus_video::DEFAULTS,
            None,
            env(&self.db, &self.nats, "video", &self.extra),
        )
        .expect("video config");
        let common = cfg.common.clone();
        let build = nexus_video::service(cfg).expect("video config");
        RunningService::start_with_keys(nexus_video::DEF, common, Some(self.issuer.keys()), build).await
    }

    /// Stops the video service as a crash would leave its jobs (claimed work is abandoned).
    pub async fn stop_video(&mut self) {
        if let Some(v) = self.video.take() {
            v.stop().await.expect("video stops");
        }
    }

    pub fn client(&self) -> VideoClient<Channel> {
        VideoClient::new(nexus_platform::grpc::channel(&self.url, Duration::from_secs(30)).unwrap())
    }

    pub fn webhooks(&self) -> WebhookReceiverClient<Channel> {
        WebhookReceiverClient::new(nexus_platform::grpc::channel(&self.url, Duration::from_secs(30)).unwrap())
    }

    pub fn subs(&self) -> SubscriptionsClient<Channel> {
        SubscriptionsClient::new(nexus_platform::grpc::channel(&self.subs_url, Duration::from_secs(30)).unwrap())
    }

    pub fn owner(&self, ws: WorkspaceId) -> String {
        self.issuer.user_token(ws, Role::Owner)
    }

    pub async fn balance(&self, token: &str) -> spb::Balance {
        self.subs().get_balance(authed(spb::Empty {}, token)).await.unwrap().into_inner()
    }

    /// Videos counted this month.
    pub async fn videos_used(&self, token: &str) -> i64 {
        let req = spb::EntitlementRequest { feature: "videos_per_month".into() };
        self.subs().check_entitlement(authed(req, token)).await.unwrap().into_inner().used
    }

    /// The balance once every hold is settled (settlements arrive through the outbox and NATS).
    pub async fn settled(&self, token: &str) -> spb::Balance {
        nexus_testkit::eventually(Duration::from_secs(20), || async { self.balance(token).await.reserved == 0 }).await;
        self.balance(token).await
    }

    pub async fn create(&self, token: &str, req: pb::CreateVideoRequest) -> Result<pb::VideoRecord, tonic::Status> {
        self.client().create_video(authed(req, token)).await.map(tonic::Response::into_inner)
    }

    pub async fn get(&self, token: &str, id: &str) -> pb::VideoRecord {
        self.client().get_video(authed(pb::GetByIdRequest { id: id.into() }, token)).await.unwrap().into_inner()
    }

    /// Waits until the video is in `status` (panics after 120 s: a render is ffmpeg work, slow on a
    /// busy machine).
    pub async fn wait_for(&self, token: &str, id: &str, status: &str) -> pb::VideoRecord {
        let reached = nexus_testkit::eventually(Duration::from_secs(120), || async {
            self.get(token, id).await.status == status
        })
        .await;
        let v = self.get(token, id).await;
        assert!(reached, "video never became {status}: {v:?}");
        v
    }

    pub async fn transitions(&self, token: &str, id: &str) -> Vec<String> {
        let list = self
            .client()
            .list_transitions(authed(pb::GetByIdRequest { id: id.into() }, token))
            .await
            .unwrap()
            .into_inner();
        list.items.into_iter().map(|t| t.to_status).collect()
    }

    pub async fn admin(&self) -> sqlx::PgPool {
        self.db.admin_pool().await
    }

    /// Outbox subjects the video service wrote for a workspace, in order.
    pub async fn subjects(&self, ws: WorkspaceId) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT subject FROM video.outbox WHERE tenant_id = $1 AND subject NOT LIKE '%audit%' ORDER BY seq",
        )
        .bind(ws.as_uuid())
        .fetch_all(&self.admin().await)
        .await
        .unwrap()
    }
}

pub fn code_of(s: &tonic::Status) -> String {
    nexus_kernel::Error::from_status(s).code().to_owned()
}

/// A good request.
pub fn request(script: &str) -> pb::CreateVideoRequest {
    pb::CreateVideoRequest {
        script: script.into(),
        avatar_url: "https://images.example.com/face.jpg".into(),
        voice_id: TEST_VOICES[0].0.into(),
        language: "en".into(),
        aspect_ratio: "9:16".into(),
        captions: true,
        title: "Welcome".into(),
        idempotency_key: String::new(),
        ..Default::default()
    }
}
