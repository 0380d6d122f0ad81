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
