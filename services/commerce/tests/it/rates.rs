//! The ECB-style daily feed: fetched at start into `exchange_rates`, then used (and recorded) for
//! every conversion.

use nexus_proto::nexus::commerce::v1 as pb;

use crate::support::Service;

#[tokio::test]
async fn prices_convert_with_the_fetched_daily_rates() {
    let today = chrono::Utc::now().date_naive().to_string();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" \
         xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\"><Cube><Cube time='{today}'>\
         <Cube currency='USD' rate='1.2500'/><Cube currency='BRL' rate='6.0000'/><Cube currency='GBP' rate='0.8000'/></Cube></Cube></gesmes:Envelope>"
    );
    let router = axum::Router::new().route("/daily.xml", axum::routing::get(move || async move { xml }));
    let feed = nexus_testkit::FakeServer::start(router).await;
    let s = Service::start_with(&[
        ("NEXUS_RATES__PROVIDER", "ecb".into()),
        ("NEXUS_RATES__ECB_URL", format!("{}/daily.xml", feed.base_url)),
    ])
    .await;
    assert!(
        nexus_testkit::eventually(std::time::Duration::from_secs(10), || async {
            s.scalar("SELECT count(*) FROM commerce.exchange_rates").await == 3
        })
        .await,
        "the feed was stored"
    );
    let admin = s.admin();
    let supplier = s.connect_local(&admin, "supplier").await;
    // LOC0002 costs are in euros.
    let p = s
        .client()
        .await
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: supplier.id.clone(),
            supplier_product_id: "LOC0002".into(),
            currency: "USD".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let v = &p.variants[0];
    assert_eq!(v.cost.as_ref().unwrap().currency, "EUR");
    assert_eq!((v.rate.as_str(), v.rate_day.as_str(), v.rate_source.as_str()), ("1.25", today.as_str(), "ecb"));
}
