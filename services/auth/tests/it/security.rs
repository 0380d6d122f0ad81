//! Account-safety rules: API-key scopes on every RPC, ownership transfer, refresh-token reuse
//! grace and family lifetime, invitation budgets and the purge of old mail bodies.

use std::time::Duration;

use nexus_proto::nexus::auth::v1 as pb;

use crate::support::*;

#[tokio::test]
async fn a_read_key_cannot_touch_sessions_other_workspaces_or_verification() {
    let auth = start_auth(&[]).await;
    let email = unique_email("scopes");
    let s = auth.sign_up(&email).await;
    let mut c = auth.client();
    for scopes in [&["read"][..], &["read", "write", "admin"][..]] {
        let key = auth.key_token(&s.access_token, scopes).await;
        let denied = [
            ("list sessions", c.list_sessions(authed(pb::Empty {}, &key)).await.map(|_| ())),
            (
                "revoke session",
                c.revoke_session(authed(pb::IdRequest { id: s.session_id.clone() }, &key)).await.map(|_| ()),
            ),
            ("revoke all sessions", c.revoke_all_sessions(authed(pb::Empty {}, &key)).await.map(|_| ())),
            ("list workspaces", c.list_workspaces(authed(pb::Empty {}, &key)).await.map(|_| ())),
            ("resend verification", c.resend_verification(authed(pb::Empty {}, &key)).await.map(|_| ())),
            (
                "transfer ownership",
                c.transfer_ownership(authed(pb::IdRequest { id: "usr_x".into() }, &key)).await.map(|_| ()),
            ),
        ];
        for (what, result) in denied {
            let err = result.expect_err(what);
            assert_eq!(err.code(), tonic::Code::PermissionDenied, "{what} with {scopes:?}");
            assert_eq!(code_of(&err), "auth.user_session_required", "{what}");
        }
        // What a key may do within its workspace still works.
        c.get_me(authed(pb::Empty {}, &key)).await.unwrap();
        c.list_members(authed(pb::Empty {}, &key)).await.unwrap();
    }
    // A read key cannot manage keys or members either.
    let read = auth.key_token(&s.access_token, &["read"]).await;
    let err = c
        .invite_member(authed(pb::InviteMemberRequest { email: unique_email("x"), role: "member".into() }, &read))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = c
        .create_api_key(authed(
            pb::CreateApiKeyRequest { name: "k".into(), scopes: vec!["read".into()], expires_at: None },
            &read,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    // Nothing was revoked: the session still refreshes.
    auth.client().refresh(pb::RefreshRequest { refresh_token: s.refresh_token, client: None }).await.unwrap();
    assert_eq!(c.list_sessions(authed(pb::Empty {}, &s.access_token)).await.unwrap().into_inner().items.len(), 1);
}

async fn owners(auth: &Auth, workspace: &str) -> Vec<String> {
    let admin = auth.db.admin_pool().await;
    let ws = nexus_kernel::WorkspaceId::parse(workspace).unwrap().as_uuid();
    let rows: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT user_id FROM auth.memberships WHERE tenant_id = $1 AND role = 'owner'")
            .bind(ws)
            .fetch_all(&admin)
            .await
            .unwrap();
    rows.into_iter().map(|u| nexus_kernel::UserId::from_uuid(u).to_string()).collect()
}

/// A workspace owned by a new user, with `n` other members (their sessions in it).
async fn team(auth: &Auth, n: usize) -> (pb::AuthSession, Vec<pb::AuthSession>) {
    let owner = auth.sign_up(&unique_email("owner")).await;
    let mut members = Vec::new();
    for i in 0..n {
        let email = unique_email(&format!("member{i}"));
        let me = auth.sign_up(&email).await;
        auth.client()
            .invite_member(authed(
                pb::InviteMemberRequest { email: email.clone(), role: "member".into() },
                &owner.access_token,
            ))
            .await
            .unwrap();
        let token = token_in(&auth.last_mail(&email).await);
        let joined = auth
            .client()
            .accept_invite(authed(pb::TokenRequest { token }, &me.access_token))
            .await
            .unwrap()
            .into_inner();
        members.push(joined);
    }
    (owner, members)
}

fn uid(s: &pb::AuthSession) -> String {
    s.user.as_ref().unwrap().id.clone()
}

#[tokio::test]
async fn ownership_transfer_demotes_at_once_and_never_leaves_two_owners() {
    let auth = start_auth(&[]).await;
    let (a, members) = team(&auth, 2).await;
    let (b, c_) = (&members[0], &members[1]);
    let ws = a.workspace.as_ref().unwrap().id.clone();
    let mut c = auth.client();

    c.transfer_ownership(authed(pb::IdRequest { id: uid(b) }, &a.access_token)).await.unwrap();
    assert_eq!(owners(&auth, &ws).await, vec![uid(b)]);
    // A's old token (still saying "owner") cannot transfer again, nor do anything else here.
    let err = c.transfer_ownership(authed(pb::IdRequest { id: uid(c_) }, &a.access_token)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "A's session in the workspace ended");
    assert_eq!(owners(&auth, &ws).await, vec![uid(b)], "exactly one owner");
    assert_eq!(c.get_me(authed(pb::Empty {}, &a.access_token)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    // The revocation is announced, so every service drops A's token too.
    let admin = auth.db.admin_pool().await;
    let revoked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM auth.outbox WHERE subject = 'nexus.auth.session.revoked' AND position($1 in encode(payload, 'escape')) > 0",
    )
    .bind(&a.session_id)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(revoked, 1);
    // A is an admin now.
    let role: String = sqlx::query_scalar("SELECT role FROM auth.memberships WHERE user_id = $1")
        .bind(nexus_kernel::UserId::parse(&uid(&a)).unwrap().as_uuid())
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(role, "admin");
    // A member (not owner) cannot transfer; nor to someone outside the workspace.
    let err = c.transfer_ownership(authed(pb::IdRequest { id: uid(&a) }, &c_.access_token)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let stranger = auth.sign_up(&unique_email("stranger")).await;
    // B's role in its token changes at the next refresh.
    let b = c
        .refresh(pb::RefreshRequest { refresh_token: b.refresh_token.clone(), client: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.workspace.as_ref().unwrap().role, "owner");
    let err = c.transfer_ownership(authed(pb::IdRequest { id: uid(&stranger) }, &b.access_token)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(owners(&auth, &ws).await, vec![uid(&b)]);
}

#[tokio::test]
async fn concurrent_transfers_leave_exactly_one_owner() {
    let auth = start_auth(&[]).await;
    for _ in 0..3 {
        let (a, members) = team(&auth, 2).await;
        let ws = a.workspace.as_ref().unwrap().id.clone();
        // Two sessions of A, racing to give the workspace to two different members.
        let email = auth.me_email(&a.access_token).await;
        let a2 = auth.login(&email, PASSWORD).await.unwrap();
        let a2 = auth
            .client()
            .switch_workspace(authed(pb::IdRequest { id: ws.clone() }, &a2.access_token))
            .await
            .unwrap()
            .into_inner();
        let go = |token: String, to: String| {
            let mut c = auth.client();
            async move { c.transfer_ownership(authed(pb::IdRequest { id: to }, &token)).await }
        };
        let (r1, r2) =
            tokio::join!(go(a.access_token.clone(), uid(&members[0])), go(a2.access_token.clone(), uid(&members[1])));
        assert_eq!([r1.is_ok(), r2.is_ok()].iter().filter(|ok| **ok).count(), 1, "{r1:?} {r2:?}");
        let owners = owners(&auth, &ws).await;
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert!(owners[0] == uid(&members[0]) || owners[0] == uid(&members[1]));
    }
}

#[tokio::test]
async fn refresh_reuse_within_the_grace_returns_the_same_successor() {
    let auth = start_auth(&[]).await;
    let s = auth.sign_up(&unique_email("grace")).await;
    let refresh = |t: String| {
        let mut c = auth.client();
        async move {
            c.refresh(pb::RefreshRequest { refresh_token: t, client: Some(client_info()) })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let first = refresh(s.refresh_token.clone()).await.unwrap();
    // The response was lost; the client sends the same token again.
    let again = refresh(s.refresh_token.clone()).await.unwrap();
    assert_eq!(again.refresh_token, first.refresh_token, "the same successor");
    assert_eq!(again.session_id, first.session_id);
    assert!(!again.access_token.is_empty());
    auth.client().get_me(authed(pb::Empty {}, &again.access_token)).await.unwrap();
    // Concurrent retries agree too.
    let (x, y) = tokio::join!(refresh(s.refresh_token.clone()), refresh(s.refresh_token.clone()));
    assert_eq!(x.unwrap().refresh_token, first.refresh_token);
    assert_eq!(y.unwrap().refresh_token, first.refresh_token);
    // The successor is stored sealed, never in plaintext.
    let admin = auth.db.admin_pool().await;
    let sealed: Vec<Option<String>> =
        sqlx::query_scalar("SELECT successor_sealed FROM auth.sessions WHERE family_id = $1::uuid")
            .bind(&s.session_id)
            .fetch_all(&admin)
            .await
            .unwrap();
    assert!(sealed.iter().flatten().all(|v| !v.contains(&first.refresh_token)));
    assert_eq!(sealed.iter().flatten().count(), 1);

    // The family goes on from the successor.
    let second = refresh(first.refresh_token.clone()).await.unwrap();
    // The first token's successor has moved on: its reuse is theft even inside the grace.
    let err = refresh(s.refresh_token.clone()).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.invalid_refresh_token");
    assert_eq!(
        code_of(&refresh(second.refresh_token).await.unwrap_err()),
        "auth.invalid_refresh_token",
        "family revoked"
    );
}

#[tokio::test]
async fn refresh_reuse_after_the_grace_revokes_the_family_and_families_end() {
    let auth = start_auth(&[]).await;
    let s = auth.sign_up(&unique_email("late")).await;
    let admin = auth.db.admin_pool().await;
    let refresh = |t: String| {
        let mut c = auth.client();
        async move {
            c.refresh(pb::RefreshRequest { refresh_token: t, client: None }).await.map(tonic::Response::into_inner)
        }
    };
    // Sign-in sets the family's end from auth.refresh_family_lifetime (90 days).
    let end: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT family_expires_at FROM auth.sessions WHERE family_id = $1::uuid")
            .bind(&s.session_id)
            .fetch_one(&admin)
            .await
            .unwrap();
    let days = (end - chrono::Utc::now()).num_hours();
    assert!((89 * 24..=90 * 24).contains(&days), "{days} hours");

    let first = refresh(s.refresh_token.clone()).await.unwrap();
    sqlx::query("UPDATE auth.sessions SET replaced_at = now() - interval '11 seconds' WHERE replaced_at IS NOT NULL AND family_id = $1::uuid")
        .bind(&s.session_id)
        .execute(&admin)
        .await
        .unwrap();
    let err = refresh(s.refresh_token.clone()).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.invalid_refresh_token");
    assert_eq!(code_of(&refresh(first.refresh_token).await.unwrap_err()), "auth.invalid_refresh_token");
    assert_eq!(
        auth.client().get_me(authed(pb::Empty {}, &first.access_token)).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    // A family past its absolute end cannot refresh, however fresh its last token.
    let t = auth.sign_up(&unique_email("old")).await;
    let next = refresh(t.refresh_token.clone()).await.unwrap();
    sqlx::query("UPDATE auth.sessions SET family_expires_at = now() - interval '1 second' WHERE family_id = $1::uuid")
        .bind(&t.session_id)
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(code_of(&refresh(next.refresh_token).await.unwrap_err()), "auth.invalid_refresh_token");
}

#[tokio::test]
async fn a_short_family_lifetime_from_config_caps_refresh() {
    let auth = start_auth(&[("NEXUS_AUTH__REFRESH_FAMILY_LIFETIME", "2s")]).await;
    let s = auth.sign_up(&unique_email("short")).await;
    let mut c = auth.client();
    let next =
        c.refresh(pb::RefreshRequest { refresh_token: s.refresh_token, client: None }).await.unwrap().into_inner();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = c.refresh(pb::RefreshRequest { refresh_token: next.refresh_token, client: None }).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.invalid_refresh_token");
}

#[tokio::test]
async fn invitations_are_limited_per_inviter_and_per_workspace() {
    let auth = start_auth(&[
        ("NEXUS_AUTH__INVITATIONS_PER_INVITER_PER_HOUR", "2"),
        ("NEXUS_AUTH__INVITATIONS_PER_WORKSPACE_PER_DAY", "3"),
    ])
    .await;
    let owner = auth.sign_up(&unique_email("inviter")).await;
    let invite = |token: String, email: String, role: &'static str| {
        let mut c = auth.client();
        async move { c.invite_member(authed(pb::InviteMemberRequest { email, role: role.into() }, &token)).await }
    };
    // The owner invites an admin, who joins.
    let admin_email = unique_email("admin");
    let x = auth.sign_up(&admin_email).await;
    invite(owner.access_token.clone(), admin_email.clone(), "admin").await.unwrap();
    let token = token_in(&auth.last_mail(&admin_email).await);
    let x =
        auth.client().accept_invite(authed(pb::TokenRequest { token }, &x.access_token)).await.unwrap().into_inner();
    invite(owner.access_token.clone(), unique_email("y"), "member").await.unwrap();
    // The owner's hourly budget (2) is spent.
    let err = invite(owner.access_token.clone(), unique_email("z"), "member").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert_eq!(code_of(&err), "auth.invitations_rate_limited");
    let retry: i64 = nexus_kernel::Error::from_status(&err).param("retry_after").unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "{retry}");
    // The admin still may, until the workspace's daily budget (3) is spent.
    invite(x.access_token.clone(), unique_email("w"), "member").await.unwrap();
    let err = invite(x.access_token.clone(), unique_email("v"), "member").await.unwrap_err();
    assert_eq!(code_of(&err), "auth.invitations_rate_limited");
    let retry: i64 = nexus_kernel::Error::from_status(&err).param("retry_after").unwrap().parse().unwrap();
    assert!(retry > 3600, "{retry}");
    // Refused invitations leave nothing behind: no row, no mail.
    let admin = auth.db.admin_pool().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.invitations").fetch_one(&admin).await.unwrap();
    assert_eq!(rows, 3);
    let mails: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.mail_outbox WHERE kind = 'invite'")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(mails, 3);
}

#[tokio::test]
async fn old_mail_bodies_are_blanked_and_metadata_kept() {
    let auth = start_auth(&[("NEXUS_MAIL__BODY_RETENTION", "3s")]).await;
    let email = unique_email("purge");
    auth.sign_up(&email).await;
    let fresh = auth.last_mail(&email).await;
    assert!(fresh.body.contains("token="), "a new mail keeps its link");
    let purged = nexus_testkit::eventually(Duration::from_secs(15), || async {
        let m = auth.last_mail(&email).await;
        m.body.is_empty() && m.subject == fresh.subject && m.to == email
    })
    .await;
    assert!(purged, "the body is blanked after the retention, subject and recipient stay");
    let admin = auth.db.admin_pool().await;
    let (body, purged_at): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT body, body_purged_at FROM auth.mail_outbox WHERE to_email = $1")
            .bind(&email)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert!(body.is_empty() && purged_at.is_some());
    // The link in it no longer matters: the token stays single-use and hashed.
    let newer = unique_email("newer");
    auth.sign_up(&newer).await;
    assert!(!auth.last_mail(&newer).await.body.is_empty());
}

#[tokio::test]
async fn default_mail_retention_spares_recent_mail() {
    let auth = start_auth(&[]).await;
    assert_eq!(auth.config.mail.body_retention, Duration::from_secs(7 * 86_400));
    let email = unique_email("keep");
    auth.sign_up(&email).await;
    let pool = auth.db.admin_pool().await;
    // Only mail older than the retention goes.
    sqlx::query("UPDATE auth.mail_outbox SET created_at = now() - interval '8 days' WHERE to_email = $1")
        .bind(&email)
        .execute(&pool)
        .await
        .unwrap();
    let other = unique_email("recent");
    auth.sign_up(&other).await;
    let cfg = auth.db.config("auth");
    let service_pool = nexus_platform::db::connect("auth", &cfg).await.unwrap();
    let n = nexus_auth::app::mail::purge_bodies(&service_pool, auth.config.mail.body_retention, true).await.unwrap();
    assert_eq!(n, 1);
    assert!(auth.last_mail(&email).await.body.is_empty());
    assert!(!auth.last_mail(&other).await.body.is_empty());
}
