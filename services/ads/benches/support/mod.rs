//! What the ads benchmarks share: the service against the fake Meta, its own loops idle so that
//! only the bench drives it, and a Meta connection made through the fake's OAuth.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nexus_ads::app::App;
use nexus_proto::nexus::ads::v1 as pb;
use nexus_proto::nexus::ads::v1::ads_client::AdsClient;
use nexus_testkit::meta::{FakeMeta, TEST_APP_ID, TEST_APP_SECRET, TEST_CODE};
use nexus_testkit::service::TestService;

/// The ads service against `meta` with a pool of `pool` connections, its scheduler, expiry and
/// insights sweep idle (an hour between rounds after the first, empty one); `extra`: more
/// `NEXUS_*` settings, the later of two for one key winning. Answers its use cases too.
pub async fn start(meta: &FakeMeta, pool: usize, extra: &[(&str, String)]) -> (TestService, Arc<App>) {
    let mut env: Vec<(&str, String)> = vec![
        ("NEXUS_META__APP_ID", TEST_APP_ID.into()),
        ("NEXUS_META__APP_SECRET", TEST_APP_SECRET.into()),
        ("NEXUS_META__GRAPH_URL", meta.base_url.clone()),
        ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
        ("NEXUS_POSTS__POLL_INTERVAL", "1h".into()),
        ("NEXUS_EXPIRY__INTERVAL", "1h".into()),
        ("NEXUS_INSIGHTS__SWEEP_INTERVAL", "1h".into()),
        ("NEXUS_DATABASE__MAX_CONNECTIONS", pool.to_string()),
    ];
    env.extend(extra.iter().cloned());
    let shared = Arc::new(OnceLock::new());
    let sharing = shared.clone();
    let s = TestService::start(nexus_ads::DEF, nexus_ads::DEFAULTS, &env, |config: nexus_ads::Config| {
        nexus_ads::service_sharing(config, sharing).expect("config")
    })
    .await;
    // The service builds its use cases while it starts serving.
    for _ in 0..200 {
        if let Some(app) = shared.get() {
            return (s, Arc::clone(app));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the service did not build its use cases");
}

/// Connects Meta through the fake's OAuth; answers the connection's id.
pub async fn connect_meta(s: &TestService, admin: &nexus_testkit::identity::Caller) -> String {
    let mut client = AdsClient::new(s.channel().await);
    let req = pb::StartConnectionRequest {
        provider: "meta".into(),
        redirect_uri: "http://localhost:3000/connections/callback".into(),
    };
    let started = client.start_connection(admin.req(req)).await.unwrap().into_inner();
    let req = pb::CompleteConnectionRequest { provider: "meta".into(), code: TEST_CODE.into(), state: started.state };
    client.complete_connection(admin.req(req)).await.unwrap().into_inner().id
}
