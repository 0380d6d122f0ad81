//! The commerce service running on port 0 against a fresh database and NATS prefix, with fake
//! CJ, AliExpress and Shopify servers and a token issuer whose tokens it accepts.

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::commerce::v1 as pb;
use nexus_proto::nexus::commerce::v1::commerce_client::CommerceClient;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use nexus_testkit::aliexpress::FakeAliExpress;
use nexus_testkit::cj::FakeCj;
use nexus_testkit::service::TestService;
use nexus_testkit::shopify::FakeShopify;
use tonic::transport::Channel;

pub struct Service {
    pub under: TestService,
    pub cj: FakeCj,
    pub shopify: FakeShopify,
    pub aliexpress: FakeAliExpress,
}

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
        let cj = FakeCj::start().await;
        let shopify = FakeShopify::start().await;
        let aliexpress = FakeAliExpress::start().await;
        let mut env: Vec<(&str, String)> = vec![
            ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
            ("NEXUS_CJ__BASE_URL", cj.base_url.clone()),
            ("NEXUS_SHOPIFY__BASE_URL", shopify.base_url.clone()),
            ("NEXUS_ALIEXPRESS__BASE_URL", aliexpress.base_url.clone()),
            ("NEXUS_MONITORING__ENABLED", "false".into()),
            ("NEXUS_PROVIDERS__ATTEMPTS", "2".into()),
        ];
        env.extend(extra.iter().cloned());
        let under = TestService::start(nexus_commerce::DEF, nexus_commerce::DEFAULTS, &env, |config| {
            nexus_commerce::service(config).expect("config")
        })
        .await;
        Service { under, cj, shopify, aliexpress }
    }

    pub async fn client(&self) -> CommerceClient<Channel> {
        CommerceClient::new(self.channel().await)
    }

    pub async fn webhooks(&self) -> WebhookReceiverClient<Channel> {
        WebhookReceiverClient::new(self.channel().await)
    }

    /// A token of a new workspace's member with `role`.
    pub fn token(&self, role: Role) -> (WorkspaceId, String) {
        let c = self.caller(role);
        (c.ws, c.token)
    }

    pub async fn connect(&self, c: &Caller, r: pb::ConnectRequest) -> pb::Connection {
        self.client().await.create_connection(c.req(r)).await.unwrap().into_inner()
    }

    pub async fn connect_local(&self, c: &Caller, role: &str) -> pb::Connection {
        self.connect(c, pb::ConnectRequest { provider: "local".into(), role: role.into(), ..Default::default() }).await
    }

    pub async fn connect_cj(&self, c: &Caller) -> pb::Connection {
        let r = pb::ConnectRequest {
            provider: "cj".into(),
            api_key: nexus_testkit::cj::TEST_API_KEY.into(),
            ..Default::default()
        };
        self.connect(c, r).await
    }

    pub async fn connect_shopify(&self, c: &Caller) -> pb::Connection {
        let r = pb::ConnectRequest {
            provider: "shopify".into(),
            shop_domain: nexus_testkit::shopify::TEST_SHOP.into(),
            access_token: nexus_testkit::shopify::TEST_ACCESS_TOKEN.into(),
            ..Default::default()
        };
        self.connect(c, r).await
    }

    /// Rows of the outbox with this subject.
    pub async fn events(&self, subject: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM commerce.outbox WHERE subject LIKE '%' || $1")
            .bind(subject)
            .fetch_one(&self.admin_pool)
            .await
            .unwrap()
    }
}

/// The error code an answer carries (the status message is the code).
pub fn code(s: &tonic::Status) -> String {
    s.message().to_owned()
}

/// The content service (no model: local, labelled translations) charging a subscriptions
/// service, both on a database of their own and trusting the commerce harness's tokens; they
/// stop when this is dropped.
pub struct Content {
    stop: tokio_util::sync::CancellationToken,
    _db: nexus_testkit::TestDb,
}

impl Drop for Content {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The commerce service with `services.content` pointing at a running content service.
pub async fn start_with_content() -> (Service, Content) {
    use nexus_testkit::service::service_config;
    let content_listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let content_url = format!("http://{}", content_listeners.grpc.local_addr().unwrap());
    let s = Service::start_with(&[("NEXUS_SERVICES__CONTENT", content_url.clone())]).await;
    let db = nexus_testkit::TestDb::new().await;
    let nats = nexus_testkit::TestNats::new();
    let stop = tokio_util::sync::CancellationToken::new();

    let subs: nexus_subscriptions::Config =
        service_config("subscriptions", nexus_subscriptions::DEFAULTS, &db, &nats, &[]);
    nexus_platform::db::migrate("subscriptions", &subs.common.database, Some(&nexus_subscriptions::MIGRATIONS))
        .await
        .unwrap();
    let subs_listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let subs_url = format!("http://{}", subs_listeners.grpc.local_addr().unwrap());
    let (keys, token) = (s.issuer.keys(), stop.clone());
    tokio::spawn(async move { nexus_subscriptions::run_with_keys(subs, subs_listeners, token, Some(keys)).await });

    let cfg: nexus_content::Config =
        service_config("content", nexus_content::DEFAULTS, &db, &nats, &[("NEXUS_SERVICES__SUBSCRIPTIONS", subs_url)]);
    nexus_platform::db::migrate("content", &cfg.common.database, nexus_content::DEF.migrations).await.unwrap();
    let (keys, token, common) = (s.issuer.keys(), stop.clone(), cfg.common.clone());
    let build = nexus_content::service(cfg).unwrap();
    tokio::spawn(async move {
        nexus_platform::app::serve_with_keys(nexus_content::DEF, common, content_listeners, token, Some(keys), build)
            .await
    });
    let channel = nexus_platform::grpc::channel(&content_url, std::time::Duration::from_secs(10)).unwrap();
    let mut content = nexus_proto::nexus::content::v1::content_client::ContentClient::new(channel);
    for _ in 0..200 {
        let answer =
            content.get_published_page(nexus_proto::nexus::content::v1::GetPublishedPageRequest::default()).await;
        if !matches!(&answer, Err(e) if e.code() == tonic::Code::Unavailable) {
            return (s, Content { stop, _db: db });
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the content service did not start");
}
