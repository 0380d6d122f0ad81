//! The commerce service running on port 0 against a fresh database and NATS prefix, with fake
//! CJ, AliExpress and Shopify servers and a token issuer whose tokens it accepts.

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::commerce::v1 as pb;
use nexus_proto::nexus::commerce::v1::commerce_client::CommerceClient;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use nexus_testkit::TestDb;
use nexus_testkit::aliexpress::FakeAliExpress;
use nexus_testkit::cj::FakeCj;
use nexus_testkit::identity::TestIssuer;
use nexus_testkit::shopify::FakeShopify;
use tonic::transport::Channel;

pub struct Service {
    pub running: nexus_testkit::RunningService,
    pub issuer: TestIssuer,
    pub admin_pool: sqlx::PgPool,
    pub cj: FakeCj,
    pub shopify: FakeShopify,
    pub aliexpress: FakeAliExpress,
    _nats: nexus_testkit::TestNats,
    _db: TestDb,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
    }
}

pub use nexus_testkit::identity::Caller;

impl Service {
    pub async fn start() -> Service {
        Self::start_with(&[]).await
    }

    /// `extra`: more `NEXUS_*` settings.
    pub async fn start_with(extra: &[(&str, String)]) -> Service {
        nexus_testkit::init_tracing();
        let db = TestDb::new().await;
        let nats = nexus_testkit::TestNats::new();
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
        let config: nexus_commerce::Config =
            nexus_testkit::service::service_config("commerce", nexus_commerce::DEFAULTS, &db, &nats, &env);
        let issuer = TestIssuer::new();
        let running = nexus_testkit::RunningService::start_with_keys(
            nexus_commerce::DEF,
            config.common.clone(),
            Some(issuer.keys()),
            nexus_commerce::service(config).expect("config"),
        )
        .await;
        let admin_pool = db.admin_pool().await;
        Service { running, issuer, admin_pool, cj, shopify, aliexpress, _nats: nats, _db: db }
    }

    async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(self.running.grpc_url()).unwrap().connect().await.unwrap()
    }

    pub async fn client(&self) -> CommerceClient<Channel> {
        CommerceClient::new(self.channel().await)
    }

    pub async fn webhooks(&self) -> WebhookReceiverClient<Channel> {
        WebhookReceiverClient::new(self.channel().await)
    }

    /// A token of a new workspace's member with `role`.
    pub fn token(&self, role: Role) -> (WorkspaceId, String) {
        let ws = WorkspaceId::new();
        (ws, self.issuer.user_token(ws, role))
    }

    /// An admin of a new workspace.
    pub fn admin(&self) -> Caller {
        let (ws, token) = self.token(Role::Admin);
        Caller { ws, token }
    }

    /// The same workspace, another role.
    pub fn as_role(&self, c: &Caller, role: Role) -> Caller {
        Caller { ws: c.ws, token: self.issuer.user_token(c.ws, role) }
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

    /// A scalar over the commerce schema as the database owner (RLS does not apply).
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&self.admin_pool).await.unwrap()
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
