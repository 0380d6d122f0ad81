//! Custom audiences made from a saved segment of the contact book: the real messaging service
//! runs beside the ads service, which reads the segment page by page as itself for the
//! workspace. The upload at the fake platform holds exactly the hashes of the segment's
//! consenting contacts, computed independently here.

use std::collections::BTreeSet;

use nexus_proto::nexus::ads::v1 as pb;
use nexus_proto::nexus::messaging::v1 as mpb;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{Caller, ContactBook, Service, code};

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

async fn with_book() -> (Service, ContactBook) {
    let book = ContactBook::start().await;
    let s = Service::start_with(&book.env()).await;
    (s, book)
}

/// A connection of `provider` with `account` chosen; its id.
async fn connected(s: &Service, admin: &Caller, provider: &str, code: &str, account: &str) -> String {
    let started = s.begin(admin, provider).await;
    let c = s.complete(admin, provider, code, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec![account.into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    c.id
}

async fn meta_account(s: &Service, admin: &Caller) -> String {
    connected(s, admin, "meta", nexus_testkit::meta::TEST_CODE, "act_111").await
}

fn from_segment(connection: &str, account: &str, segment: &str) -> pb::CreateAudienceRequest {
    pb::CreateAudienceRequest {
        connection_id: connection.into(),
        ad_account: account.into(),
        name: "VIP customers".into(),
        segment_id: segment.into(),
        ..Default::default()
    }
}

/// Fills the workspace's book: VIPs with and without marketing consent, an erased VIP, and
/// consenting contacts outside the segment. The hashes a VIP audience must hold (emails,
/// phones) and how many VIPs are left out for want of consent.
async fn fill(
    book: &ContactBook,
    ws: nexus_kernel::WorkspaceId,
    vips: usize,
) -> (BTreeSet<String>, BTreeSet<String>, usize) {
    let (mut emails, mut phones, mut excluded) = (BTreeSet::new(), BTreeSet::new(), 0);
    for i in 0..vips {
        // Mixed case and spaces: the hash is of the normalized address.
        let email = if i % 3 == 2 { String::new() } else { format!(" Vip{i}@Example.COM") };
        let phone = if i % 4 == 1 && !email.is_empty() {
            String::new()
        } else {
            format!("+34 600 {:03} {:03}", i / 1000, i % 1000)
        };
        let consents: &[(&str, &str)] = match i % 5 {
            0 => &[],
            1 => &[("email", "granted"), ("whatsapp", "withdrawn")],
            _ => &[("email", "granted")],
        };
        let input = mpb::ContactInput {
            name: format!("Vip {i}"),
            email: email.clone(),
            phone: phone.clone(),
            tags: vec!["vip".into()],
            ..Default::default()
        };
        book.contact(ws, input, consents).await;
        if i % 5 <= 1 {
            excluded += 1;
            continue;
        }
        if !email.is_empty() {
            emails.insert(sha(&format!("vip{i}@example.com")));
        }
        if !phone.is_empty() {
            phones.insert(sha(&format!("34600{:03}{:03}", i / 1000, i % 1000)));
        }
    }
    // Erased: out of the segment altogether.
    let erased = mpb::ContactInput {
        name: "Gone".into(),
        email: "gone@example.com".into(),
        tags: vec!["vip".into()],
        ..Default::default()
    };
    let gone = book.contact(ws, erased, &[("email", "granted")]).await;
    book.anonymize(ws, &gone).await;
    // Consenting, but not VIPs.
    for i in 0..3 {
        let other = mpb::ContactInput {
            name: format!("Other {i}"),
            email: format!("other{i}@example.com"),
            ..Default::default()
        };
        book.contact(ws, other, &[("email", "granted")]).await;
    }
    (emails, phones, excluded)
}

#[tokio::test]
async fn a_segment_audience_holds_exactly_the_hashes_of_its_consenting_contacts() {
    let (s, book) = with_book().await;
    let admin = s.admin();
    let conn = meta_account(&s, &admin).await;
    // More than one page of the contact search (100).
    let (want_emails, want_phones, excluded) = fill(&book, admin.ws, 130).await;
    let segment = book.segment(admin.ws, json!({"tag": "vip"})).await;

    let a = s.client().await.create_audience(admin.req(from_segment(&conn, "act_111", &segment))).await.unwrap();
    let a = a.into_inner();
    assert_eq!(a.segment_id, segment);
    assert_eq!(a.members as usize, want_emails.len() + want_phones.len());
    assert_eq!((a.excluded as usize, a.dropped), (excluded, 0));
    assert_eq!(a.refresh_status, "ready");
    assert!(a.refreshed_at.is_some());

    let rows = s.meta.audience_rows();
    assert!(rows.iter().all(|r| r.0 == a.platform_id));
    let of =
        |schema: &str| -> Vec<String> { rows.iter().filter(|r| r.1 == schema).flat_map(|r| r.2.clone()).collect() };
    let (emails, phones) = (of("EMAIL"), of("PHONE"));
    // Each hash once, and exactly the consenting VIPs'.
    assert_eq!(emails.len(), want_emails.len());
    assert_eq!(emails.into_iter().collect::<BTreeSet<_>>(), want_emails);
    assert_eq!(phones.len(), want_phones.len());
    assert_eq!(phones.into_iter().collect::<BTreeSet<_>>(), want_phones);
    // One session per kind, its only batch the last.
    let sessions = s.meta.audience_sessions();
    assert_eq!(sessions.len(), 2);
    for (_, session) in &sessions {
        assert_eq!((session["batch_seq"].as_u64(), session["last_batch_flag"].as_bool()), (Some(1), Some(true)));
    }
    assert_ne!(sessions[0].1["session_id"], sessions[1].1["session_id"]);
    // Messaging was called as the ads service, for this workspace only.
    let seen = book.auth.seen();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|(svc, ws)| svc == "ads" && *ws == Some(admin.ws)), "{seen:?}");

    // Listed and read back.
    let list = s.client().await.list_audiences(admin.req(pb::ListRequest::default())).await.unwrap().into_inner();
    assert_eq!(list.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [a.id.as_str()]);
    let got = s.client().await.get_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    assert_eq!(got.into_inner().members, a.members);
}

#[tokio::test]
async fn another_workspaces_segment_or_audience_is_not_found_and_changes_nothing() {
    let (s, book) = with_book().await;
    let (admin, other) = (s.admin(), s.admin());
    let conn = meta_account(&s, &admin).await;
    let other_conn = meta_account(&s, &other).await;
    fill(&book, other.ws, 5).await;
    let theirs = book.segment(other.ws, json!({"tag": "vip"})).await;

    // Their segment, through our connection: messaging does not know it for us.
    let e = s.client().await.create_audience(admin.req(from_segment(&conn, "act_111", &theirs))).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::NotFound, "messaging.segment_not_found"));
    assert_eq!(s.meta.created("customaudiences"), 0);
    // A segment and members at once: refused before anything is read.
    let both =
        pb::CreateAudienceRequest { emails: vec!["ana@example.com".into()], ..from_segment(&conn, "act_111", &theirs) };
    let e = s.client().await.create_audience(admin.req(both)).await.unwrap_err();
    assert_eq!(code(&e), "ads.audience_invalid");

    // Their audience: not found for us, and still there after our delete.
    let a = s.client().await.create_audience(other.req(from_segment(&other_conn, "act_111", &theirs))).await;
    let a = a.unwrap().into_inner();
    let get = s.client().await.get_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap_err();
    assert_eq!((get.code(), code(&get).as_str()), (tonic::Code::NotFound, "ads.audience_not_found"));
    let del = s.client().await.delete_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap_err();
    assert_eq!(code(&del), "ads.audience_not_found");
    assert_eq!(s.meta.live("customaudiences").len(), 1);
    let list = s.client().await.list_audiences(admin.req(pb::ListRequest::default())).await.unwrap().into_inner();
    assert!(list.items.is_empty());
    // A viewer of theirs may read but not delete.
    let viewer = s.as_role(&other, nexus_platform::identity::Role::Viewer);
    s.client().await.get_audience(viewer.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    let e = s.client().await.delete_audience(viewer.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // Their admin deletes it: gone at Meta and here.
    s.client().await.delete_audience(other.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    assert!(s.meta.live("customaudiences").is_empty());
    let e = s.client().await.get_audience(other.req(pb::GetByIdRequest { id: a.id })).await.unwrap_err();
    assert_eq!(code(&e), "ads.audience_not_found");
}

#[tokio::test]
async fn a_segment_without_consenting_contacts_creates_nothing() {
    let (s, book) = with_book().await;
    let admin = s.admin();
    let conn = meta_account(&s, &admin).await;
    for i in 0..3 {
        let input = mpb::ContactInput {
            name: format!("No {i}"),
            email: format!("no{i}@example.com"),
            tags: vec!["cold".into()],
            ..Default::default()
        };
        book.contact(admin.ws, input, &[("email", "withdrawn")]).await;
    }
    let segment = book.segment(admin.ws, json!({"tag": "cold"})).await;
    let e = s.client().await.create_audience(admin.req(from_segment(&conn, "act_111", &segment))).await.unwrap_err();
    assert_eq!(code(&e), "ads.audience_empty");
    assert_eq!(s.meta.created("customaudiences"), 0);
    assert!(s.meta.audience_rows().is_empty());
}

/// TikTok's segment API cannot replace an audience's members: a refresh sends the difference,
/// and a failed call is repaired by the next refresh.
#[tokio::test]
async fn a_tiktok_segment_audience_is_refreshed_by_difference_and_repaired_after_a_failure() {
    let (s, book) = with_book().await;
    let admin = s.admin();
    let ws = admin.ws;
    let conn = connected(&s, &admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, "7002").await;
    let (want_emails, want_phones, _) = fill(&book, ws, 12).await;
    let ana = book.contact(ws, vip("Ana", "ana@example.com", ""), &[("email", "granted")]).await;
    let segment = book.segment(ws, json!({"tag": "vip"})).await;
    let a = s.client().await.create_audience(admin.req(from_segment(&conn, "7002", &segment))).await.unwrap();
    let a = a.into_inner();
    let mut want: BTreeSet<(String, String)> =
        want_emails.into_iter().map(|h| ("EMAIL_SHA256".to_owned(), h)).collect();
    want.extend(want_phones.into_iter().map(|h| ("PHONE_SHA256".to_owned(), h)));
    want.insert(("EMAIL_SHA256".into(), sha("ana@example.com")));
    let holds = || s.tiktok.audience_members(&a.platform_id);
    assert_eq!(holds(), want);
    assert_eq!(s.tiktok.audiences(), std::slice::from_ref(&a.platform_id));
    let stored = "SELECT count(*) FROM ads.audience_members WHERE held";
    assert_eq!(s.scalar(stored).await, want.len() as i64);
    // Scheduled like any segment audience.
    assert_eq!(s.scalar("SELECT count(*) FROM ads.audiences WHERE next_refresh_at IS NOT NULL").await, 1);
    let refresh =
        || async { s.client().await.refresh_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await };

    // Nothing changed: nothing is sent.
    let adds = s.tiktok.audience_rows().len();
    assert_eq!(refresh().await.unwrap().into_inner().members, want.len() as i32);
    assert_eq!((s.tiktok.audience_rows().len(), s.tiktok.audience_removals().len()), (adds, 0));

    // Ana withdraws and Rui joins: only they are sent.
    book.consent(ws, &ana, "email", "withdrawn").await;
    let rui = book.contact(ws, vip("Rui", "rui@example.com", "+351 912 000 004"), &[("whatsapp", "granted")]).await;
    refresh().await.unwrap();
    let removals = s.tiktok.audience_removals();
    assert_eq!(removals, [(a.platform_id.clone(), "EMAIL_SHA256".to_owned(), vec![sha("ana@example.com")])]);
    let sent: BTreeSet<(String, String)> =
        s.tiktok.audience_rows()[adds..].iter().flat_map(|r| r.2.iter().map(|h| (r.1.clone(), h.clone()))).collect();
    let joined = BTreeSet::from([
        ("EMAIL_SHA256".to_owned(), sha("rui@example.com")),
        ("PHONE_SHA256".to_owned(), sha("351912000004")),
    ]);
    assert_eq!(sent, joined);
    want.remove(&("EMAIL_SHA256".into(), sha("ana@example.com")));
    want.extend(joined.iter().cloned());
    assert_eq!(holds(), want);

    // An add TikTok fails: the refresh fails and TikTok lacks Eva; the next refresh sends her.
    let eva = book.contact(ws, vip("Eva", "eva@example.com", ""), &[("email", "granted")]).await;
    s.tiktok.fail_mapping(Some(("add", 0)));
    assert!(refresh().await.is_err());
    let got = s.client().await.get_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    assert_eq!(got.into_inner().refresh_status, "failed");
    assert!(!holds().contains(&("EMAIL_SHA256".into(), sha("eva@example.com"))));
    s.tiktok.fail_mapping(None);
    refresh().await.unwrap();
    want.insert(("EMAIL_SHA256".into(), sha("eva@example.com")));
    assert_eq!(holds(), want);

    // A removal TikTok fails: Rui and Eva stay until the next refresh removes them.
    book.consent(ws, &rui, "whatsapp", "withdrawn").await;
    book.consent(ws, &eva, "email", "withdrawn").await;
    s.tiktok.fail_mapping(Some(("delete", 1)));
    assert!(refresh().await.is_err());
    s.tiktok.fail_mapping(None);
    let got = refresh().await.unwrap().into_inner();
    for gone in joined.iter().chain([&("EMAIL_SHA256".to_owned(), sha("eva@example.com"))]) {
        want.remove(gone);
    }
    assert_eq!(holds(), want);
    assert_eq!((got.members, got.refresh_status.as_str()), (want.len() as i32, "ready"));
    assert_eq!(s.scalar(stored).await, want.len() as i64);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.audience_members").await, want.len() as i64);

    // Deleted: at TikTok, and its hashes are forgotten.
    s.client().await.delete_audience(admin.req(pb::GetByIdRequest { id: a.id })).await.unwrap();
    assert!(s.tiktok.audiences().is_empty());
    assert_eq!(s.scalar("SELECT count(*) FROM ads.audience_members").await, 0);
}

/// A custom audience of members sent by the client.
async fn members_audience(s: &Service, c: &Caller, conn: &str, account: &str) -> pb::Audience {
    let req = pb::CreateAudienceRequest {
        connection_id: conn.into(),
        ad_account: account.into(),
        name: "Buyers".into(),
        emails: vec!["ana@example.com".into(), "luis@example.org".into()],
        ..Default::default()
    };
    s.client().await.create_audience(c.req(req)).await.unwrap().into_inner()
}

fn lookalike(id: &str, countries: &[&str], ratio: i32) -> pb::CreateLookalikeRequest {
    pb::CreateLookalikeRequest {
        id: id.into(),
        name: String::new(),
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        ratio_percent: ratio,
    }
}

#[tokio::test]
async fn a_meta_lookalike_names_its_origin_ratio_and_countries_and_bad_asks_reach_no_platform() {
    let s = Service::start().await;
    let (admin, other) = (s.admin(), s.admin());
    let conn = meta_account(&s, &admin).await;
    let source = members_audience(&s, &admin, &conn, "act_111").await;

    let one = s.client().await.create_lookalike(admin.req(lookalike(&source.id, &["us"], 5))).await.unwrap();
    let one = one.into_inner();
    assert_eq!((one.kind.as_str(), one.origin_id.as_str()), ("lookalike", source.id.as_str()));
    assert_eq!(
        (one.countries.clone(), one.ratio_percent, one.name.as_str()),
        (vec!["US".to_owned()], 5, "Buyers lookalike 5 %")
    );
    let many = s.client().await.create_lookalike(admin.req(lookalike(&source.id, &["US", "mx", "US"], 1))).await;
    let many = many.unwrap().into_inner();
    let at_meta = |id: &str| s.meta.live("customaudiences").into_iter().find(|o| o.id == id).unwrap();
    let spec = |id: &str| serde_json::from_str::<serde_json::Value>(&at_meta(id).fields["lookalike_spec"]).unwrap();
    for id in [&one.platform_id, &many.platform_id] {
        let o = at_meta(id);
        assert_eq!((o.fields["subtype"].as_str(), o.account.as_str()), ("LOOKALIKE", "act_111"));
        assert_eq!(o.fields["origin_audience_id"], source.platform_id);
    }
    assert_eq!(spec(&one.platform_id), json!({"ratio": 0.05, "country": "US"}));
    assert_eq!(
        spec(&many.platform_id),
        json!({"ratio": 0.01, "location_spec": {"geo_locations": {"countries": ["MX", "US"]}}})
    );

    // Refused before any call: the ratio, the countries, a lookalike as the source.
    let calls = s.meta.log().len();
    for (ask, want) in [
        (lookalike(&source.id, &["US"], 0), "ads.lookalike_ratio_invalid"),
        (lookalike(&source.id, &["US"], 11), "ads.lookalike_ratio_invalid"),
        (lookalike(&source.id, &["XX"], 2), "ads.lookalike_country_unknown"),
        (lookalike(&source.id, &["USA"], 2), "ads.lookalike_country_unknown"),
        (lookalike(&source.id, &[], 2), "ads.lookalike_countries_invalid"),
        (lookalike(&one.id, &["US"], 2), "ads.audience_invalid"),
    ] {
        let e = s.client().await.create_lookalike(admin.req(ask)).await.unwrap_err();
        assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::InvalidArgument, want));
    }
    // Another workspace's source: not found.
    let e = s.client().await.create_lookalike(other.req(lookalike(&source.id, &["US"], 2))).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::NotFound, "ads.audience_not_found"));
    assert_eq!(s.meta.log().len(), calls);
    let all = s.client().await.list_audiences(admin.req(pb::ListRequest::default())).await.unwrap().into_inner();
    assert_eq!(all.items.len(), 3);
}

#[tokio::test]
async fn tiktok_and_sandbox_lookalikes_are_recorded() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "tiktok").await;
    let c = s.complete(&admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, &started.state).await.unwrap();
    let req = pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["7002".into()] };
    s.client().await.choose_accounts(admin.req(req)).await.unwrap();
    let source = members_audience(&s, &admin, &c.id, "7002").await;
    let lk = s.client().await.create_lookalike(admin.req(lookalike(&source.id, &["ES"], 7))).await.unwrap();
    let lk = lk.into_inner();
    let bodies = s.tiktok.lookalikes();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["advertiser_id"], "7002");
    assert_eq!(bodies[0]["custom_audience_name"], "Buyers lookalike 7 %");
    assert_eq!(bodies[0]["lookalike_spec"]["source_audience_id"], source.platform_id.as_str());
    assert_eq!(bodies[0]["lookalike_spec"]["audience_size"], "BROAD");
    assert_eq!(bodies[0]["lookalike_spec"]["location_ids"], json!(["ES"]));
    assert!(s.tiktok.audiences().contains(&lk.platform_id));

    // The sandbox records them as well (nothing leaves the service).
    let local = s.connect_local(&admin).await;
    let source = members_audience(&s, &admin, &local.id, "act_local_1").await;
    let lk = s.client().await.create_lookalike(admin.req(lookalike(&source.id, &["FR", "DE"], 2))).await.unwrap();
    let lk = lk.into_inner();
    assert!(lk.platform_id.starts_with("local_lookalike_"), "{lk:?}");
    let got = s.client().await.get_audience(admin.req(pb::GetByIdRequest { id: lk.id })).await.unwrap().into_inner();
    assert_eq!(
        (got.countries, got.ratio_percent, got.origin_id),
        (vec!["DE".to_owned(), "FR".to_owned()], 2, source.id)
    );
}

fn vip(name: &str, email: &str, phone: &str) -> mpb::ContactInput {
    mpb::ContactInput {
        name: name.into(),
        email: email.into(),
        phone: phone.into(),
        tags: vec!["vip".into()],
        ..Default::default()
    }
}

fn hashed(members: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    members.iter().map(|(schema, v)| ((*schema).to_owned(), sha(v))).collect()
}

#[tokio::test]
async fn a_refresh_replaces_the_members_once_across_sweeps_and_records_failures() {
    let (s, book) = with_book().await;
    let (admin, other) = (s.admin(), s.admin());
    let conn = meta_account(&s, &admin).await;
    let ws = admin.ws;
    let c1 = book.contact(ws, vip("Ana", "ana@example.com", ""), &[("email", "granted")]).await;
    let c2 = book.contact(ws, vip("Luis", "", "+34 600 000 002"), &[("sms", "granted")]).await;
    let c3 = book.contact(ws, vip("Eva", "eva@example.com", ""), &[("email", "granted")]).await;
    let segment = book.segment(ws, json!({"tag": "vip"})).await;
    let a = s.client().await.create_audience(admin.req(from_segment(&conn, "act_111", &segment))).await.unwrap();
    let a = a.into_inner();
    let members = |id: &str| s.meta.audience_members(id);
    assert_eq!(
        members(&a.platform_id),
        hashed(&[("EMAIL", "ana@example.com"), ("PHONE", "34600000002"), ("EMAIL", "eva@example.com")])
    );
    // Not due yet: nothing to do.
    assert_eq!(s.app.sweep_audiences().await.unwrap(), 0);

    // Eva withdraws, Rui joins; the refresh is due.
    book.consent(ws, &c3, "email", "withdrawn").await;
    let c4 = book.contact(ws, vip("Rui", "rui@example.com", "+351 912 000 004"), &[("whatsapp", "granted")]).await;
    s.exec("UPDATE ads.audiences SET next_refresh_at = now() - interval '1 second'").await;
    let (one, two) = tokio::join!(s.app.sweep_audiences(), s.app.sweep_audiences());
    assert_eq!(one.unwrap() + two.unwrap(), 1, "refreshed once");
    let want = hashed(&[
        ("EMAIL", "ana@example.com"),
        ("PHONE", "34600000002"),
        ("EMAIL", "rui@example.com"),
        ("PHONE", "351912000004"),
    ]);
    assert_eq!(members(&a.platform_id), want);
    // One replacement session, its last batch the last call.
    let sessions = s.meta.replace_sessions();
    assert!(sessions.iter().all(|(id, _)| *id == a.platform_id));
    let ids: BTreeSet<u64> = sessions.iter().map(|(_, x)| x["session_id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 1);
    let lasts: Vec<bool> = sessions.iter().map(|(_, x)| x["last_batch_flag"].as_bool().unwrap()).collect();
    assert_eq!(lasts, [false, true]);
    let seqs: Vec<u64> = sessions.iter().map(|(_, x)| x["batch_seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    let got = s.client().await.get_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    let got = got.into_inner();
    assert_eq!((got.members, got.excluded, got.refresh_status.as_str()), (4, 1, "ready"));
    assert!(got.refreshed_at.unwrap().seconds >= a.refreshed_at.unwrap().seconds);
    assert_eq!(
        s.scalar("SELECT count(*) FROM ads.audiences WHERE next_refresh_at > now() + interval '23 hours'").await,
        1
    );
    assert_eq!(s.events("nexus.ads.audience.refreshed").await, 1);
    assert_eq!(s.app.sweep_audiences().await.unwrap(), 0);

    // Asked for now: refreshed at once; another workspace's caller finds nothing.
    book.consent(ws, &c4, "whatsapp", "withdrawn").await;
    let e = s.client().await.refresh_audience(other.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::NotFound, "ads.audience_not_found"));
    assert_eq!(s.meta.replace_sessions().len(), 2);
    let now = s.client().await.refresh_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    assert_eq!(now.into_inner().members, 2);
    assert_eq!(members(&a.platform_id), hashed(&[("EMAIL", "ana@example.com"), ("PHONE", "34600000002")]));
    // Held by a refresh under way: refused.
    s.exec("UPDATE ads.audiences SET lease_until = now() + interval '1 hour'").await;
    let e = s.client().await.refresh_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::AlreadyExists, "ads.audience_refreshing"));
    s.exec("UPDATE ads.audiences SET lease_until = NULL").await;

    // Nobody consents any more: the refresh fails, the platform keeps the old members, and it
    // is tried again at the next round.
    book.consent(ws, &c1, "email", "withdrawn").await;
    book.consent(ws, &c2, "sms", "withdrawn").await;
    s.exec("UPDATE ads.audiences SET next_refresh_at = now() - interval '1 second'").await;
    assert_eq!(s.app.sweep_audiences().await.unwrap(), 0);
    let got = s.client().await.get_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    let got = got.into_inner();
    assert_eq!(
        (got.refresh_status.as_str(), got.refresh_error.as_str(), got.members),
        ("failed", "ads.audience_empty", 2)
    );
    assert_eq!(members(&a.platform_id).len(), 2);
    assert_eq!(s.events("nexus.ads.audience.refresh_failed").await, 1);
    assert_eq!(
        s.scalar("SELECT count(*) FROM ads.audiences WHERE next_refresh_at < now() + interval '1 hour'").await,
        1
    );

    // An audience of members sent by a client has no segment to read.
    let plain = members_audience(&s, &admin, &conn, "act_111").await;
    let e = s.client().await.refresh_audience(admin.req(pb::GetByIdRequest { id: plain.id })).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::InvalidArgument, "ads.audience_not_refreshable"));
}

/// "Do not sell or share" (CCPA): a contact who withdrew the channel `ads` is left out of every
/// audience; a workspace that opted out as a whole sends nobody to a platform (refused before
/// any call), and its audiences' refreshes fail, leaving the platform as it was.
#[tokio::test]
async fn do_not_sell_keeps_contacts_out_of_the_ad_platforms() {
    let (s, book) = with_book().await;
    let admin = s.admin();
    let ws = admin.ws;
    let conn = meta_account(&s, &admin).await;
    let ana = book.contact(ws, vip("Ana", "ana@example.com", ""), &[("email", "granted")]).await;
    book.contact(ws, vip("Eva", "eva@example.com", ""), &[("email", "granted")]).await;
    book.consent(ws, &ana, "ads", "withdrawn").await;
    let segment = book.segment(ws, json!({"tag": "vip"})).await;
    let a = s.client().await.create_audience(admin.req(from_segment(&conn, "act_111", &segment))).await.unwrap();
    let a = a.into_inner();
    assert_eq!(s.meta.audience_members(&a.platform_id), hashed(&[("EMAIL", "eva@example.com")]));
    assert_eq!((a.members, a.excluded), (1, 1));

    // The whole workspace opts out: nothing is created, nothing refreshed.
    book.do_not_sell(ws, true).await;
    let calls = s.meta.log().len();
    let e = s.client().await.create_audience(admin.req(from_segment(&conn, "act_111", &segment))).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::FailedPrecondition, "ads.do_not_sell"));
    let listed = pb::CreateAudienceRequest {
        connection_id: conn.clone(),
        ad_account: "act_111".into(),
        name: "Typed in".into(),
        emails: vec!["rui@example.com".into()],
        ..Default::default()
    };
    let e = s.client().await.create_audience(admin.req(listed)).await.unwrap_err();
    assert_eq!(code(&e), "ads.do_not_sell");
    let e = s.client().await.refresh_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap_err();
    assert_eq!(code(&e), "ads.do_not_sell");
    assert_eq!(s.meta.log().len(), calls, "no platform call: {:?}", &s.meta.log()[calls..]);
    let got = s.client().await.get_audience(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap();
    let got = got.into_inner();
    assert_eq!((got.refresh_status.as_str(), got.refresh_error.as_str()), ("failed", "ads.do_not_sell"));
    assert_eq!(s.meta.audience_members(&a.platform_id).len(), 1);
    use nexus_kernel::Locale;
    let es = nexus_i18n::error_message(Locale::Es, "ads.do_not_sell", &[], 409);
    assert!(es.contains("no vender ni compartir"), "{es}");
    let ar = nexus_i18n::error_message(Locale::Ar, "ads.do_not_sell", &[], 409);
    assert!(ar.contains("عدم البيع أو المشاركة"), "{ar}");

    // Turned off again: the refresh goes through.
    book.do_not_sell(ws, false).await;
    let now = s.client().await.refresh_audience(admin.req(pb::GetByIdRequest { id: a.id })).await.unwrap();
    assert_eq!(now.into_inner().refresh_status, "ready");
}
