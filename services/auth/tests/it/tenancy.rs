//! Workspaces: roles, invitations, and 404 (not 403) for another workspace's resources.

use nexus_proto::nexus::auth::v1 as pb;
use nexus_testkit::db::assert_tenant_tables_protected;

use crate::support::*;

#[tokio::test]
async fn another_workspace_s_resources_are_not_found_and_roles_are_enforced() {
    let auth = start_auth(&[]).await;
    let mut c = auth.client();
    let a = auth.sign_up(&unique_email("a")).await;
    let b = auth.sign_up(&unique_email("b")).await;
    let (ta, tb) = (a.access_token.clone(), b.access_token.clone());

    let key_b = c
        .create_api_key(authed(
            pb::CreateApiKeyRequest { name: "B's key".into(), scopes: vec!["read".into()], expires_at: None },
            &tb,
        ))
        .await
        .unwrap()
        .into_inner();
    let b_user = b.user.as_ref().unwrap().id.clone();
    let b_ws = b.workspace.as_ref().unwrap().id.clone();

    // Every kind of B's resource, named by id from A's workspace: 404.
    let not_found = [
        c.revoke_api_key(authed(pb::IdRequest { id: key_b.key.as_ref().unwrap().id.clone() }, &ta)).await.unwrap_err(),
        c.remove_member(authed(pb::IdRequest { id: b_user.clone() }, &ta)).await.unwrap_err(),
        c.revoke_session(authed(pb::IdRequest { id: b.session_id.clone() }, &ta)).await.unwrap_err(),
        c.switch_workspace(authed(pb::IdRequest { id: b_ws.clone() }, &ta)).await.unwrap_err(),
        c.transfer_ownership(authed(pb::IdRequest { id: b_user.clone() }, &ta)).await.unwrap_err(),
    ];
    for e in &not_found {
        assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
        assert_eq!(code_of(e), "request.not_found");
    }
    // B's key still works: nothing changed.
    assert!(c.exchange_api_key(pb::ExchangeApiKeyRequest { secret: key_b.secret.clone() }).await.is_ok());
    let a_members = c.list_members(authed(pb::Empty {}, &ta)).await.unwrap().into_inner().items;
    assert_eq!(a_members.len(), 1);
    let a_keys = c.list_api_keys(authed(pb::Empty {}, &ta)).await.unwrap().into_inner().items;
    assert!(a_keys.is_empty(), "B's key is invisible to A");

    // Invite a viewer; they accept with the invited address.
    let viewer_email = unique_email("viewer");
    let inv = c
        .invite_member(authed(pb::InviteMemberRequest { email: viewer_email.clone(), role: "viewer".into() }, &ta))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inv.role, "viewer");
    let mail = auth.last_mail(&viewer_email).await;
    assert!(mail.subject.contains("Ana Silva"), "{}", mail.subject);
    let token = token_in(&mail);
    let outsider = auth.sign_up(&unique_email("outsider")).await;
    let mismatch =
        c.accept_invite(authed(pb::TokenRequest { token: token.clone() }, &outsider.access_token)).await.unwrap_err();
    assert_eq!(code_of(&mismatch), "auth.invite_email_mismatch");
    let v = auth.sign_up(&viewer_email).await;
    let joined =
        c.accept_invite(authed(pb::TokenRequest { token: token.clone() }, &v.access_token)).await.unwrap().into_inner();
    assert_eq!(joined.workspace.as_ref().unwrap().id, a.workspace.as_ref().unwrap().id);
    assert_eq!(joined.workspace.as_ref().unwrap().role, "viewer");
    assert_eq!(
        code_of(&c.accept_invite(authed(pb::TokenRequest { token }, &v.access_token)).await.unwrap_err()),
        "auth.invite_invalid"
    );

    // A viewer can read but not invite or create keys.
    assert_eq!(c.list_members(authed(pb::Empty {}, &joined.access_token)).await.unwrap().into_inner().items.len(), 2);
    let denied = c
        .invite_member(authed(
            pb::InviteMemberRequest { email: unique_email("x"), role: "member".into() },
            &joined.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(code_of(&denied), "auth.role_insufficient");
    let denied = c
        .create_api_key(authed(
            pb::CreateApiKeyRequest { name: "k".into(), scopes: vec!["read".into()], expires_at: None },
            &joined.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    // The owner cannot be removed; a removed member's session in the workspace dies.
    let owner_id = a.user.as_ref().unwrap().id.clone();
    assert_eq!(
        code_of(&c.remove_member(authed(pb::IdRequest { id: owner_id }, &ta)).await.unwrap_err()),
        "auth.cannot_remove_owner"
    );
    let viewer_id = v.user.as_ref().unwrap().id.clone();
    c.remove_member(authed(pb::IdRequest { id: viewer_id }, &ta)).await.unwrap();
    assert_eq!(
        c.get_me(authed(pb::Empty {}, &joined.access_token)).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert!(c.get_me(authed(pb::Empty {}, &v.access_token)).await.is_ok(), "their own workspace session is unaffected");

    let workspaces = c.list_workspaces(authed(pb::Empty {}, &ta)).await.unwrap().into_inner().items;
    assert_eq!(workspaces.len(), 1);

    let admin = auth.db.admin_pool().await;
    let tables = assert_tenant_tables_protected(&admin, "auth").await;
    assert_eq!(tables, vec!["api_keys", "invitations", "memberships", "workspaces"]);
}
