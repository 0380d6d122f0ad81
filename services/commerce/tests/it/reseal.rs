//! Key rotation: supplier and store credentials sealed by `connect` are re-sealed under a new key
//! by the service's declared columns, still open where the service reads them (a connection
//! check) with only the new key, and never appear in a database dump.

use nexus_platform::crypto::Sealer;
use nexus_platform::reseal::{ResealOptions, reseal};
use nexus_proto::nexus::commerce::v1 as pb;
use nexus_proto::nexus::commerce::v1::commerce_client::CommerceClient;

use crate::support::Service;

#[tokio::test]
async fn credentials_resealed_under_a_new_key_still_open_with_it_alone_and_never_show_in_a_dump() {
    let (k1, k2) = (Sealer::generate_key(), Sealer::generate_key());
    let s = Service::start_with(&[("NEXUS_COMMERCE__SEALING_KEYS", format!("1:{k1}"))]).await;
    // Two workspaces with a CJ supplier and a local one each; the test shop joins the first (a
    // store belongs to one workspace).
    let callers = [s.admin(), s.admin()];
    let mut connections = Vec::new();
    for c in &callers {
        connections.push((c, s.connect_cj(c).await.id));
        connections.push((c, s.connect_local(c, "supplier").await.id));
    }
    connections.push((&callers[0], s.connect_shopify(&callers[0]).await.id));
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.connections WHERE credentials LIKE 'v1.%'").await, 5);

    let pool = nexus_platform::db::connect("commerce", &s.db.config("commerce")).await.unwrap();
    let rotated = Sealer::from_config(&format!("1:{k1},2:{k2}")).unwrap();
    let report =
        reseal(&pool, &rotated, nexus_commerce::DEF.sealed, ResealOptions { batch_size: 4, max_batches: None })
            .await
            .unwrap();
    assert_eq!((report.resealed(), report.failed()), (5, 0), "{report:?}");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.connections WHERE credentials LIKE 'v1.%'").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.connections WHERE credentials LIKE 'v2.%'").await, 5);

    // The service under the new key alone opens every credential to check its connection.
    let after = s
        .another(
            nexus_commerce::DEF,
            nexus_commerce::DEFAULTS,
            &[
                ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
                ("NEXUS_CJ__BASE_URL", s.cj.base_url.clone()),
                ("NEXUS_SHOPIFY__BASE_URL", s.shopify.base_url.clone()),
                ("NEXUS_MONITORING__ENABLED", "false".into()),
                ("NEXUS_COMMERCE__SEALING_KEYS", format!("2:{k2}")),
            ],
            |config| nexus_commerce::service(config).expect("config"),
        )
        .await;
    let channel = tonic::transport::Endpoint::from_shared(after.grpc_url()).unwrap().connect().await.unwrap();
    let mut client = CommerceClient::new(channel);
    for (caller, id) in &connections {
        let checked =
            client.check_connection(caller.req(pb::GetByIdRequest { id: id.clone() })).await.unwrap().into_inner();
        assert_eq!((checked.status.as_str(), checked.last_error.as_str()), ("active", ""), "{id}");
    }
    after.shutdown.cancel();

    // A dump shows neither the CJ key nor the Shopify token, in clear or encoded.
    assert!(s.db.assert_dump_hides(&[nexus_testkit::cj::TEST_API_KEY, nexus_testkit::shopify::TEST_ACCESS_TOKEN]) > 0);
}
