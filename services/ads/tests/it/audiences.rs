//! A custom audience upload at the fake Meta carries only normalized SHA-256 hashes, checked
//! against hashes computed independently here.

use nexus_proto::nexus::ads::v1 as pb;
use sha2::{Digest, Sha256};

use crate::support::{Service, code};

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn an_audience_upload_contains_only_normalized_sha256_hashes() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "meta").await;
    let c = s.complete(&admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_111".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    let req = pb::CreateAudienceRequest {
        connection_id: c.id.clone(),
        ad_account: "act_111".into(),
        name: "Newsletter buyers".into(),
        emails: vec![
            " Ana.Perez@Example.com".into(),
            "ana.perez@example.com".into(),
            "luis@example.org".into(),
            "nope".into(),
        ],
        phones: vec!["+52 1 55 1234 5678".into(), "0034 600 111 222".into(), "600111222".into()],
        ..Default::default()
    };
    let a = s.client().await.create_audience(admin.req(req)).await.unwrap().into_inner();
    assert_eq!((a.members, a.dropped), (4, 2));
    let uploads = s.meta.audience_rows();
    let mut emails: Vec<String> = uploads.iter().filter(|u| u.1 == "EMAIL").flat_map(|u| u.2.clone()).collect();
    let mut phones: Vec<String> = uploads.iter().filter(|u| u.1 == "PHONE").flat_map(|u| u.2.clone()).collect();
    emails.sort();
    phones.sort();
    let mut want_emails = vec![sha("ana.perez@example.com"), sha("luis@example.org")];
    let mut want_phones = vec![sha("5215512345678"), sha("34600111222")];
    want_emails.sort();
    want_phones.sort();
    assert_eq!(emails, want_emails);
    assert_eq!(phones, want_phones);
    // Nothing in clear reached Meta.
    for (_, _, rows) in &uploads {
        assert!(rows.iter().all(|r| r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit())), "{rows:?}");
    }
    assert!(uploads.iter().all(|u| u.0 == a.platform_id));

    // Nothing usable: refused before any call.
    let before = s.meta.log().len();
    let req = pb::CreateAudienceRequest {
        connection_id: c.id,
        ad_account: "act_111".into(),
        name: "Empty".into(),
        emails: vec!["x".into()],
        phones: vec![],
        ..Default::default()
    };
    let e = s.client().await.create_audience(admin.req(req)).await.unwrap_err();
    assert_eq!(code(&e), "ads.audience_empty");
    assert_eq!(s.meta.log().len(), before);
}
