use std::time::Duration;

use nexus_proto::nexus::auth::v1 as pb;
use nexus_proto::nexus::auth::v1::auth_client::AuthClient;
use nexus_testkit::{RunningService, TestDb, TestNats};
use tonic::transport::Channel;

pub struct Auth {
    pub url: String,
    pub db: TestDb,
    pub _nats: TestNats,
    pub service: RunningService,
    pub config: nexus_auth::Config,
}

impl Drop for Auth {
    fn drop(&mut self) {
        self.service.shutdown.cancel();
    }
}

pub fn env_for(db: &TestDb, nats: &TestNats, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let cfg = db.config("auth");
    let mut env = vec![
        ("NEXUS_DATABASE__URL".to_owned(), cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), cfg.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL".to_owned(), nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), nats.prefix.clone()),
        ("NEXUS_GRPC__ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("NEXUS_ADMIN__ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        // Cheap hashing keeps the suite fast; the benchmark measures the production cost.
        ("NEXUS_AUTH__ARGON2_MEMORY_KIB".to_owned(), "1024".to_owned()),
        ("NEXUS_AUTH__ARGON2_ITERATIONS".to_owned(), "1".to_owned()),
        // The fake OIDC providers listen on loopback, which the outbound client otherwise refuses.
        ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS".to_owned(), "127.0.0.0/8".to_owned()),
        ("NEXUS_ENVIRONMENT".to_owned(), "development".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

pub async fn start_auth(extra: &[(&str, &str)]) -> Auth {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let config: nexus_auth::Config =
        nexus_platform::config::load_from_env("auth", nexus_auth::DEFAULTS, None, env_for(&db, &nats, extra))
            .expect("config");
    let nexus_auth::Service { keys, build } = nexus_auth::service(config.clone()).expect("auth builds");
    let service = RunningService::start_with_keys(nexus_auth::DEF, config.common.clone(), Some(keys), build).await;
    let auth = Auth { url: service.grpc_url(), db, _nats: nats, service, config };
    // Up once the health service answers.
    let mut ok = false;
    for _ in 0..100 {
        if auth.client().get_jwks(pb::Empty {}).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "auth did not start");
    auth
}

impl Auth {
    pub fn client(&self) -> AuthClient<Channel> {
        AuthClient::new(nexus_platform::grpc::channel(&self.url, Duration::from_secs(10)).unwrap())
    }

    pub async fn sign_up(&self, email: &str) -> pb::AuthSession {
        self.client()
            .sign_up(pb::SignUpRequest {
                email: email.into(),
                password: PASSWORD.into(),
                name: "Ana Silva".into(),
                locale: "pt".into(),
                client: None,
            })
            .await
            .expect("sign up")
            .into_inner()
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<pb::AuthSession, tonic::Status> {
        self.client()
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
                client: Some(client_info()),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// A service's own tokens against this auth service, with the development credential.
    pub fn service_tokens(&self, service: &str) -> nexus_platform::identity::ServiceTokens {
        nexus_platform::identity::ServiceTokens::new(
            service,
            nexus_platform::config::Secret::new(nexus_platform::identity::dev_service_secret(service)),
            &self.url,
        )
        .unwrap()
    }

    /// A service token acting for no workspace (what the internal RPCs accept).
    pub async fn ops_token(&self) -> String {
        self.service_tokens("gateway").token(None).await.unwrap().expose().to_owned()
    }

    /// The newest local mail to `to`, read as a service would.
    pub async fn last_mail(&self, to: &str) -> pb::LocalMail {
        self.client()
            .list_local_mail(authed(pb::ListLocalMailRequest { to: to.into(), limit: 1 }, &self.ops_token().await))
            .await
            .unwrap()
            .into_inner()
            .items
            .remove(0)
    }

    /// The email of the holder of `access`.
    pub async fn me_email(&self, access: &str) -> String {
        self.client().get_me(authed(pb::Empty {}, access)).await.unwrap().into_inner().user.unwrap().email
    }

    /// Confirms `email` with the link from its verification mail.
    pub async fn verify(&self, email: &str) {
        let token = token_in(&self.last_mail(email).await);
        self.client().verify_email(pb::TokenRequest { token }).await.expect("verify email");
    }

    /// An API key with `scopes`, created by the holder of `access`, exchanged for its token.
    pub async fn key_token(&self, access: &str, scopes: &[&str]) -> String {
        let mut c = self.client();
        let created = c
            .create_api_key(authed(
                pb::CreateApiKeyRequest {
                    name: "test key".into(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    expires_at: None,
                },
                access,
            ))
            .await
            .expect("create key")
            .into_inner();
        c.exchange_api_key(pb::ExchangeApiKeyRequest { secret: created.secret })
            .await
            .expect("exchange")
            .into_inner()
            .access_token
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

pub fn client_info() -> pb::ClientInfo {
    pb::ClientInfo { ip: "198.51.100.7".into(), user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into() }
}

/// A request carrying `token` as its bearer.
pub fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

pub fn code_of(s: &tonic::Status) -> String {
    nexus_kernel::Error::from_status(s).code().to_owned()
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}.{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The token in a mail's link (`…?token=…`).
pub fn token_in(mail: &pb::LocalMail) -> String {
    let at = mail.body.find("token=").expect("link with token");
    mail.body[at + 6..].split(|c: char| c.is_whitespace()).next().unwrap().to_owned()
}
