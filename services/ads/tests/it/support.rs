//! The ads service running on port 0 against a fresh database and NATS prefix, with a token
//! issuer whose tokens it accepts.

use nexus_proto::nexus::ads::v1 as pb;
use nexus_proto::nexus::ads::v1::ads_client::AdsClient;
use nexus_testkit::service::TestService;
use tonic::transport::Channel;

pub const REDIRECT: &str = "http://localhost:3000/connections/callback";

pub struct Service {
    pub under: TestService,
    /// The running service's use cases.
    pub app: std::sync::Arc<nexus_ads::app::App>,
    pub meta: nexus_testkit::meta::FakeMeta,
    pub tiktok: nexus_testkit::tiktok::FakeTikTok,
    pub youtube: nexus_testkit::youtube::FakeYouTube,
    /// The service's storage root (uploaded media), removed with the service.
    pub store: tempfile::TempDir,
}

/// The access token the fake Google hands out and YouTube accepts.
pub const YOUTUBE_TOKEN: &str = "ya29.fake-youtube-token";

/// The harness's database, issuer and callers.
impl std::ops::Deref for Service {
    type Target = TestService;
    fn deref(&self) -> &TestService {
        &self.under
    }
}

pub use nexus_testkit::identity::Caller;

impl Service {
    pub async fn start() -> Service {
        Self::start_with(&[]).await
    }

    /// `extra`: more `NEXUS_*` settings.
    pub async fn start_with(extra: &[(&str, String)]) -> Service {
        Self::start_with_media(extra, nexus_ads::MediaServices::default()).await
    }

    /// [`Service::start_with`], with stand-ins for the video and content services.
    pub async fn start_with_media(extra: &[(&str, String)], media: nexus_ads::MediaServices) -> Service {
        let meta = nexus_testkit::meta::FakeMeta::start().await;
        let tiktok = nexus_testkit::tiktok::FakeTikTok::start().await;
        let youtube = nexus_testkit::youtube::FakeYouTube::start(YOUTUBE_TOKEN).await;
        let store = tempfile::tempdir().expect("storage root");
        let mut env: Vec<(&str, String)> = vec![
            ("NEXUS_STORAGE__ROOT", store.path().display().to_string()),
            ("NEXUS_META__APP_ID", nexus_testkit::meta::TEST_APP_ID.into()),
            ("NEXUS_META__APP_SECRET", nexus_testkit::meta::TEST_APP_SECRET.into()),
            ("NEXUS_META__GRAPH_URL", meta.base_url.clone()),
            ("NEXUS_TIKTOK__APP_ID", nexus_testkit::tiktok::TEST_APP_ID.into()),
            ("NEXUS_TIKTOK__SECRET", nexus_testkit::tiktok::TEST_SECRET.into()),
            ("NEXUS_TIKTOK__BASE_URL", tiktok.base_url.clone()),
            ("NEXUS_TIKTOK__CONTENT_URL", tiktok.base_url.clone()),
            ("NEXUS_TIKTOK__CLIENT_KEY", nexus_testkit::tiktok_login::TEST_CLIENT_KEY.into()),
            ("NEXUS_TIKTOK__CLIENT_SECRET", nexus_testkit::tiktok_login::TEST_CLIENT_SECRET.into()),
            ("NEXUS_GOOGLE__CLIENT_ID", nexus_testkit::youtube::TEST_CLIENT_ID.into()),
            ("NEXUS_GOOGLE__CLIENT_SECRET", nexus_testkit::youtube::TEST_CLIENT_SECRET.into()),
            ("NEXUS_GOOGLE__TOKEN_URL", format!("{}/token", youtube.base_url)),
            ("NEXUS_GOOGLE__REVOKE_URL", format!("{}/revoke", youtube.base_url)),
            ("NEXUS_GOOGLE__API_URL", youtube.base_url.clone()),
            ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
            ("NEXUS_PROVIDERS__ATTEMPTS", "2".into()),
            // No contact book unless a test starts one (`ContactBook::env`).
            ("NEXUS_SERVICES__MESSAGING", String::new()),
            ("NEXUS_EXPIRY__INTERVAL", "1h".into()),
            // Tests run the sweep's rounds themselves.
            ("NEXUS_INSIGHTS__SWEEP_INTERVAL", "1h".into()),
            ("NEXUS_INSIGHTS__POLL_INTERVAL", "50ms".into()),
        ];
        // A setting given here replaces the default above.
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        env.extend(extra.iter().cloned());
        let shared = std::sync::Arc::new(std::sync::OnceLock::new());
        let sharing = shared.clone();
        let under = TestService::start(nexus_ads::DEF, nexus_ads::DEFAULTS, &env, |config: nexus_ads::Config| {
            nexus_ads::service_with(config, sharing, media).expect("config")
        })
        .await;
        // The service builds its use cases while it starts serving.
        let mut waited = 0;
        let app = loop {
            if let Some(app) = shared.get() {
                break app.clone();
            }
            assert!(waited < 200, "the service did not build its use cases");
            waited += 1;
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        };
        Service { under, app, meta, tiktok, youtube, store }
    }

    pub async fn client(&self) -> AdsClient<Channel> {
        AdsClient::new(self.channel().await)
    }

    /// Starts a connection and follows the returned address back with its code and state.
    pub async fn connect_local(&self, c: &Caller) -> pb::Connection {
        let started = self.begin(c, "local").await;
        let (code, state) = code_and_state(&started.authorize_url);
        assert_eq!(state, started.state);
        self.complete(c, "local", &code, &state).await.unwrap()
    }

    /// Starts connecting `provider` (admins).
    pub async fn begin(&self, c: &Caller, provider: &str) -> pb::StartConnectionResponse {
        let req = pb::StartConnectionRequest { provider: provider.into(), redirect_uri: REDIRECT.into() };
        self.client().await.start_connection(c.req(req)).await.unwrap().into_inner()
    }

    /// The callback with the platform's code and the state.
    pub async fn complete(
        &self,
        c: &Caller,
        provider: &str,
        code: &str,
        state: &str,
    ) -> Result<pb::Connection, tonic::Status> {
        let req = pb::CompleteConnectionRequest { provider: provider.into(), code: code.into(), state: state.into() };
        self.client().await.complete_connection(c.req(req)).await.map(tonic::Response::into_inner)
    }

    /// The caller's principal with `role`, for calling the use cases directly (as a process
    /// about to be killed would).
    pub fn principal(&self, c: &Caller, role: nexus_platform::identity::Role) -> nexus_platform::identity::Principal {
        nexus_platform::identity::Principal {
            user_id: nexus_kernel::UserId::new(),
            workspace_id: c.ws,
            role,
            scopes: None,
            session_id: "s".into(),
            kind: nexus_platform::identity::PrincipalKind::User,
            token_id: "t".into(),
            expires_at: i64::MAX,
            locale: None,
            service: None,
        }
    }

    /// Runs a build through the use cases and stops it, as a killed process would be, once
    /// `reached()` holds (the platform created `step`'s object); the step stays `started`.
    pub async fn build_killed_at(
        &self,
        c: &Caller,
        req: nexus_ads::app::builder::BuildRequest,
        step: &str,
        reached: impl Fn() -> bool,
    ) {
        let (app, principal) = (self.app.clone(), self.principal(c, nexus_platform::identity::Role::Admin));
        let running = tokio::spawn(async move { app.build_ad_campaign(&principal, req).await });
        for _ in 0..200 {
            if reached() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(reached(), "the platform never created the {step}");
        running.abort();
        let _ = running.await;
        let sql = format!("SELECT count(*) FROM ads.ad_build_steps WHERE step = '{step}' AND status = 'started'");
        assert_eq!(self.scalar(&sql).await, 1);
    }

    /// Syncs a build's insights over the default days.
    pub async fn sync(&self, c: &Caller, build: &str) -> pb::InsightsReport {
        let req = pb::SyncInsightsRequest { id: build.to_owned(), days: 0 };
        self.client().await.sync_insights(c.req(req)).await.unwrap().into_inner()
    }

    /// Rows of the outbox with this subject.
    pub async fn events(&self, subject: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM ads.outbox WHERE subject = $1")
            .bind(subject)
            .fetch_one(&self.admin_pool)
            .await
            .unwrap()
    }
}

/// `code` and `state` of an authorization address's (or a redirect's) query.
/// The use case's request for a gRPC one (to run a build in process and kill it).
pub fn in_process(r: &pb::BuildAdCampaignRequest) -> nexus_ads::app::builder::BuildRequest {
    nexus_ads::app::builder::BuildRequest {
        request_key: r.request_key.clone(),
        connection_id: r.connection_id.clone(),
        ad_account: r.ad_account.clone(),
        campaign_id: String::new(),
        input: nexus_ads::domain::builder::BuildInput {
            name: r.name.clone(),
            objective: r.objective.clone(),
            optimization_goal: r.optimization_goal.clone(),
            daily_budget: r.daily_budget,
            countries: r.countries.clone(),
            age_min: r.age_min,
            age_max: r.age_max,
            page_id: r.page_id.clone(),
            link: r.link.clone(),
            primary_text: r.primary_text.clone(),
            headline: r.headline.clone(),
            image_url: r.image_url.clone(),
            image_id: r.image_id.clone(),
            media_id: r.media_id.clone(),
            video_id: r.video_id.clone(),
            ..Default::default()
        },
    }
}

pub fn code_and_state(url: &str) -> (String, String) {
    let u = reqwest::Url::parse(url).unwrap();
    let get = |k: &str| u.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned()).unwrap_or_default();
    (get("code"), get("state"))
}

/// The error code an answer carries (the status message is the code).
pub fn code(s: &tonic::Status) -> String {
    s.message().to_owned()
}

/// Decimal text to cents, independently of the service's parser.
pub fn cents(s: &str) -> i64 {
    let (w, f) = s.split_once('.').unwrap_or((s, "0"));
    w.parse::<i64>().unwrap() * 100 + format!("{f:0<2}")[..2].parse::<i64>().unwrap()
}

/// A traffic campaign's build request in `account` of `connection`, speaking as `page`.
pub fn traffic_build(connection: &str, account: &str, page: &str, key: &str) -> pb::BuildAdCampaignRequest {
    pb::BuildAdCampaignRequest {
        request_key: key.into(),
        connection_id: connection.into(),
        ad_account: account.into(),
        name: format!("Traffic {key}"),
        objective: "OUTCOME_TRAFFIC".into(),
        optimization_goal: "LINK_CLICKS".into(),
        daily_budget: 2500,
        countries: vec!["US".into()],
        page_id: page.into(),
        link: "https://shop.example.com/".into(),
        primary_text: "Sale".into(),
        ..Default::default()
    }
}

/// The messaging service (the contact book audiences read) on its own database, and auth's
/// service-credential exchange signing with the issuer messaging trusts, so the ads service
/// under test calls it as itself, acting for the workspace.
pub struct ContactBook {
    pub messaging: TestService,
    pub auth: nexus_testkit::service_auth::FakeServiceAuth,
}

impl ContactBook {
    pub async fn start() -> ContactBook {
        let messaging = TestService::start(
            nexus_messaging::DEF,
            nexus_messaging::DEFAULTS,
            &[],
            |config: nexus_messaging::Config| nexus_messaging::service(config).expect("messaging config"),
        )
        .await;
        let auth = nexus_testkit::service_auth::FakeServiceAuth::start(messaging.issuer.clone()).await;
        ContactBook { messaging, auth }
    }

    /// The ads settings that reach this contact book.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("NEXUS_SERVICES__MESSAGING", self.messaging.running.grpc_url()),
            ("NEXUS_IDENTITY__AUTH_URL", self.auth.url.clone()),
        ]
    }

    fn token(&self, ws: nexus_kernel::WorkspaceId) -> String {
        self.messaging.issuer.user_token(ws, nexus_platform::identity::Role::Admin)
    }

    /// A contact of the workspace with marketing consent on `consents` (channel, status) in order.
    pub async fn contact(
        &self,
        ws: nexus_kernel::WorkspaceId,
        input: nexus_proto::nexus::messaging::v1::ContactInput,
        consents: &[(&str, &str)],
    ) -> String {
        use nexus_proto::nexus::messaging::v1 as mpb;
        let mut client = mpb::contacts_client::ContactsClient::new(self.messaging.channel().await);
        let token = self.token(ws);
        let c =
            client.create_contact(nexus_testkit::identity::authed(input, &token)).await.expect("contact").into_inner();
        for (channel, status) in consents {
            let req = mpb::SetConsentRequest {
                contact_id: c.id.clone(),
                channel: (*channel).into(),
                purpose: "marketing".into(),
                status: (*status).into(),
                source: "form".into(),
                proof: "Yes, send me offers".into(),
            };
            client.set_consent(nexus_testkit::identity::authed(req, &token)).await.expect("consent");
        }
        c.id
    }

    /// Erases a contact's personal fields.
    pub async fn anonymize(&self, ws: nexus_kernel::WorkspaceId, id: &str) {
        use nexus_proto::nexus::messaging::v1 as mpb;
        let mut client = mpb::contacts_client::ContactsClient::new(self.messaging.channel().await);
        let req = mpb::GetByIdRequest { id: id.to_owned() };
        client.anonymize_contact(nexus_testkit::identity::authed(req, &self.token(ws))).await.expect("anonymize");
    }

    /// A saved segment of the workspace's contacts.
    pub async fn segment(&self, ws: nexus_kernel::WorkspaceId, filter: serde_json::Value) -> String {
        use nexus_proto::nexus::messaging::v1 as mpb;
        let mut client = mpb::crm_client::CrmClient::new(self.messaging.channel().await);
        let req = mpb::SegmentInput { id: String::new(), name: "Segment".into(), filter_json: filter.to_string() };
        client
            .save_segment(nexus_testkit::identity::authed(req, &self.token(ws)))
            .await
            .expect("segment")
            .into_inner()
            .id
    }
}

impl ContactBook {
    /// Turns the workspace's "do not sell or share" on or off.
    pub async fn do_not_sell(&self, ws: nexus_kernel::WorkspaceId, on: bool) {
        use nexus_proto::nexus::messaging::v1 as mpb;
        let mut client = mpb::contacts_client::ContactsClient::new(self.messaging.channel().await);
        let req = mpb::BookSettings { do_not_sell: Some(on), ..Default::default() };
        let set =
            client.update_settings(nexus_testkit::identity::authed(req, &self.token(ws))).await.expect("settings");
        assert_eq!(set.into_inner().do_not_sell, Some(on));
    }

    /// Records a contact's marketing consent on `channel` (granted or withdrawn).
    pub async fn consent(&self, ws: nexus_kernel::WorkspaceId, id: &str, channel: &str, status: &str) {
        use nexus_proto::nexus::messaging::v1 as mpb;
        let mut client = mpb::contacts_client::ContactsClient::new(self.messaging.channel().await);
        let req = mpb::SetConsentRequest {
            contact_id: id.to_owned(),
            channel: channel.into(),
            purpose: "marketing".into(),
            status: status.into(),
            source: "form".into(),
            proof: String::new(),
        };
        client.set_consent(nexus_testkit::identity::authed(req, &self.token(ws))).await.expect("consent");
    }
}
