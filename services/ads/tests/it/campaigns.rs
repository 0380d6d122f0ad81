//! The campaign umbrella: create, read, list, edit, archive; refusals change nothing.

use nexus_platform::identity::Role;
use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Service, code};

fn input(name: &str, budget: i64) -> pb::CampaignInput {
    pb::CampaignInput {
        name: name.into(),
        goal: "leads".into(),
        budget_minor: budget,
        currency: "EUR".into(),
        start_date: "2026-12-01".into(),
        end_date: "2026-12-31".into(),
        description: "Winter leads".into(),
    }
}

#[tokio::test]
async fn a_campaign_is_created_read_listed_edited_and_archived() {
    let s = Service::start().await;
    let member = s.caller(Role::Member);
    let mut client = s.client().await;
    let c = client.create_campaign(member.req(input("Winter", 250_000))).await.unwrap().into_inner();
    assert!(c.id.starts_with("cmp_"));
    assert_eq!((c.budget_minor, c.currency.as_str(), c.status.as_str()), (250_000, "EUR", "draft"));
    assert_eq!((c.start_date.as_str(), c.end_date.as_str()), ("2026-12-01", "2026-12-31"));
    let got = client.get_campaign(member.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(got, c);

    let second = client.create_campaign(member.req(input("Spring", 0))).await.unwrap().into_inner();
    let list = client
        .list_campaigns(member.req(pb::ListRequest {
            page: Some(nexus_proto::common::PageRequest { page_size: 1, cursor: String::new() }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.campaigns.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [second.id.as_str()]);
    let cursor = list.page.unwrap().next_cursor;
    assert!(!cursor.is_empty());
    let rest = client
        .list_campaigns(
            member.req(pb::ListRequest { page: Some(nexus_proto::common::PageRequest { page_size: 1, cursor }) }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.campaigns[0].id, c.id);

    let mut edit = input("Winter sale", 300_000);
    edit.goal = "sales".into();
    let edited = client
        .update_campaign(member.req(pb::UpdateCampaignRequest { id: c.id.clone(), campaign: Some(edit.clone()) }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((edited.name.as_str(), edited.goal.as_str(), edited.budget_minor), ("Winter sale", "sales", 300_000));

    let archived =
        client.archive_campaign(member.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(archived.status, "archived");
    let e = client
        .update_campaign(member.req(pb::UpdateCampaignRequest { id: c.id.clone(), campaign: Some(edit) }))
        .await
        .unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::FailedPrecondition, "ads.campaign_archived".to_owned()));
}

#[tokio::test]
async fn bad_campaigns_are_refused_naming_the_field_and_nothing_is_stored() {
    let s = Service::start().await;
    let member = s.caller(Role::Member);
    let mut client = s.client().await;
    let cases: Vec<(pb::CampaignInput, &str)> = vec![
        (input("", 1), "name"),
        (pb::CampaignInput { goal: "fame".into(), ..input("a", 1) }, "goal"),
        (input("a", -5), "budget_minor"),
        (pb::CampaignInput { currency: "XXX".into(), ..input("a", 1) }, "currency"),
        (pb::CampaignInput { start_date: "tomorrow".into(), ..input("a", 1) }, "start_date"),
        (pb::CampaignInput { end_date: "2026-11-01".into(), ..input("a", 1) }, "end_date"),
    ];
    for (bad, field) in cases {
        let e = client.create_campaign(member.req(bad)).await.unwrap_err();
        assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, "ads.campaign_invalid".to_owned()), "{field}");
        let details = nexus_kernel::Error::from_status(&e);
        assert_eq!(details.violations().first().map(|v| v.field.as_str()), Some(field));
    }
    assert_eq!(s.scalar("SELECT count(*) FROM ads.campaigns").await, 0);

    // Viewers read; they do not create.
    let viewer = s.as_role(&member, Role::Viewer);
    let e = client.create_campaign(viewer.req(input("a", 1))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn another_workspaces_campaign_is_not_found() {
    let s = Service::start().await;
    let mine = s.caller(Role::Member);
    let theirs = s.caller(Role::Admin);
    let mut client = s.client().await;
    let c = client.create_campaign(mine.req(input("Mine", 100))).await.unwrap().into_inner();
    let id = pb::GetByIdRequest { id: c.id.clone() };
    let e = client.get_campaign(theirs.req(id.clone())).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::NotFound, "ads.campaign_not_found".to_owned()));
    let e = client
        .update_campaign(theirs.req(pb::UpdateCampaignRequest { id: c.id.clone(), campaign: Some(input("Theirs", 1)) }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = client.archive_campaign(theirs.req(id)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let still = client.get_campaign(mine.req(pb::GetByIdRequest { id: c.id })).await.unwrap().into_inner();
    assert_eq!((still.name.as_str(), still.status.as_str()), ("Mine", "draft"));
}
