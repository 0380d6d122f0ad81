//! Service identity: credentials exchanged for service tokens, internal-only RPCs (key rotation,
//! dead letters, local mail) that refuse end users, and workspace-bound service tokens.

use nexus_proto::nexus::auth::v1 as pb;
use nexus_proto::ops::ListDeadLettersRequest;
use nexus_proto::ops::dead_letters_client::DeadLettersClient;

use crate::support::*;

fn exchange(service: &str, secret: &str, workspace: &str) -> pb::ExchangeServiceCredentialRequest {
    pb::ExchangeServiceCredentialRequest {
        service: service.into(),
        secret: secret.into(),
        workspace_id: workspace.into(),
    }
}

#[tokio::test]
async fn internal_rpcs_refuse_end_users_and_accept_service_tokens() {
    let auth = start_auth(&[]).await;
    let s = auth.sign_up(&unique_email("enduser")).await;
    let key = auth.key_token(&s.access_token, &["read", "write", "admin"]).await;
    let ops = auth.ops_token().await;
    let ws = s.workspace.as_ref().unwrap().id.clone();
    let bound =
        auth.service_tokens("messaging").token(Some(nexus_kernel::WorkspaceId::parse(&ws).unwrap())).await.unwrap();
    let mut dlq =
        DeadLettersClient::new(nexus_platform::grpc::channel(&auth.url, std::time::Duration::from_secs(10)).unwrap());
    let mut c = auth.client();

    for (who, token) in
        [("user", s.access_token.as_str()), ("api key", key.as_str()), ("workspace service", bound.expose())]
    {
        let err =
            dlq.list(authed(ListDeadLettersRequest { consumer: String::new(), limit: 10 }, token)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "dead letters, {who}");
        assert_eq!(code_of(&err), "auth.service_only");
        let err = c.rotate_signing_key(authed(pb::Empty {}, token)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "key rotation, {who}");
    }
    let err = dlq.list(ListDeadLettersRequest { consumer: String::new(), limit: 10 }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "anonymous");
    assert_eq!(c.rotate_signing_key(pb::Empty {}).await.unwrap_err().code(), tonic::Code::Unauthenticated);

    let before: serde_json::Value =
        serde_json::from_str(&c.get_jwks(pb::Empty {}).await.unwrap().into_inner().json).unwrap();
    dlq.list(authed(ListDeadLettersRequest { consumer: String::new(), limit: 10 }, &ops)).await.unwrap();
    let after: serde_json::Value =
        serde_json::from_str(&c.rotate_signing_key(authed(pb::Empty {}, &ops)).await.unwrap().into_inner().json)
            .unwrap();
    assert_eq!(after["keys"].as_array().unwrap().len(), before["keys"].as_array().unwrap().len() + 1, "rotated");
    // The user's token keeps working after the rotation.
    c.get_me(authed(pb::Empty {}, &s.access_token)).await.unwrap();
}

#[tokio::test]
async fn service_credentials_are_checked_and_tokens_are_cached() {
    let auth = start_auth(&[]).await;
    let mut c = auth.client();
    let dev = nexus_platform::identity::dev_service_secret("content");
    let ok = c.exchange_service_credential(exchange("content", &dev, "")).await.unwrap().into_inner();
    assert_eq!(ok.expires_in, 600);
    for (what, req) in [
        ("wrong secret", exchange("content", "nexus-dev-service-secret:messaging", "")),
        ("empty secret", exchange("content", "", "")),
        ("unknown service", exchange("printer", &nexus_platform::identity::dev_service_secret("printer"), "")),
        ("no service", exchange("", &dev, "")),
    ] {
        let err = c.exchange_service_credential(req).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{what}");
        assert_eq!(code_of(&err), "auth.service_credential_invalid", "{what}");
    }
    let err = c.exchange_service_credential(exchange("content", &dev, "ws_nope")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let unknown = nexus_kernel::WorkspaceId::new().to_string();
    assert_eq!(
        c.exchange_service_credential(exchange("content", &dev, &unknown)).await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    // A configured credential (its SHA-256) replaces the development one.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"a real secret for content"));
    let auth2 = start_auth(&[("NEXUS_AUTH__SERVICE_CREDENTIALS__CONTENT", hash.as_str())]).await;
    assert!(!auth2.config.dev_service_credentials().contains(&"auth.service_credentials.content".to_owned()));
    assert!(auth.config.dev_service_credentials().contains(&"auth.service_credentials.content".to_owned()));
    let mut c2 = auth2.client();
    assert!(c2.exchange_service_credential(exchange("content", &dev, "")).await.is_err());
    c2.exchange_service_credential(exchange("content", "a real secret for content", "")).await.unwrap();

    // ServiceTokens asks once and reuses the token until shortly before it expires.
    let tokens = auth.service_tokens("analytics");
    let t1 = tokens.token(None).await.unwrap();
    let t2 = tokens.token(None).await.unwrap();
    assert_eq!(t1.expose(), t2.expose());
    let bad = nexus_platform::identity::ServiceTokens::new(
        "analytics",
        nexus_platform::config::Secret::new("guess"),
        &auth.url,
    )
    .unwrap();
    assert_eq!(bad.token(None).await.unwrap_err().code(), "auth.service_credential_invalid");
}

#[tokio::test]
async fn a_service_token_for_one_workspace_cannot_act_in_another() {
    let auth = start_auth(&[]).await;
    let w = auth.sign_up(&unique_email("w")).await;
    let x = auth.sign_up(&unique_email("x")).await;
    let ws_w = nexus_kernel::WorkspaceId::parse(&w.workspace.as_ref().unwrap().id).unwrap();
    let ws_x = x.workspace.as_ref().unwrap().id.clone();
    let tokens = auth.service_tokens("messaging");
    let for_w = tokens.token(Some(ws_w)).await.unwrap();
    let mut c = auth.client();

    // It sees W's members, and only W's.
    let members = c.list_members(authed(pb::Empty {}, for_w.expose())).await.unwrap().into_inner().items;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, w.user.as_ref().unwrap().id);
    // It cannot move to X, act as a person, or manage W.
    let err = c.switch_workspace(authed(pb::IdRequest { id: ws_x }, for_w.expose())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(c.get_me(authed(pb::Empty {}, for_w.expose())).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let err = c
        .invite_member(authed(
            pb::InviteMemberRequest { email: unique_email("i"), role: "member".into() },
            for_w.expose(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    // The verified principal says what it is.
    let verifier = nexus_platform::identity::Verifier::new(std::sync::Arc::new(JwksOf(auth.url.clone())));
    let p = verifier.verify(for_w.expose()).await.unwrap();
    assert!(p.is_service());
    assert_eq!(p.service.as_deref(), Some("messaging"));
    assert_eq!(p.service_workspace(), Some(ws_w));
    assert_eq!(p.actor(), "svc:messaging");
    assert!(p.require_workspace(ws_w).is_ok());
    let other = nexus_kernel::WorkspaceId::parse(&x.workspace.as_ref().unwrap().id).unwrap();
    assert_eq!(p.require_workspace(other).unwrap_err().code(), "auth.not_member");
    assert!(p.require_internal().is_err());
    let user = verifier.verify(&w.access_token).await.unwrap();
    assert!(!user.is_service());
    let ops = verifier.verify(tokens.token(None).await.unwrap().expose()).await.unwrap();
    assert!(ops.require_internal().is_ok());
    assert_eq!(ops.service_workspace(), None);
    // A service token for no workspace reaches no tenant's data.
    let none = c.list_members(authed(pb::Empty {}, tokens.token(None).await.unwrap().expose())).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::PermissionDenied);
    assert_eq!(ops.require(nexus_platform::identity::Action::Read).unwrap_err().code(), "auth.permission_denied");
    assert!(p.require(nexus_platform::identity::Action::Write).is_ok());
    assert_eq!(
        p.require(nexus_platform::identity::Action::ManageMembers).unwrap_err().code(),
        "auth.role_insufficient"
    );

    // A forged "service" token (right claims, foreign key) is refused.
    let forged = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("forged".into());
        let der = {
            let mut d =
                vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
            d.extend_from_slice(&[9u8; 32]);
            d
        };
        let now = chrono::Utc::now().timestamp();
        let claims = nexus_platform::identity::Claims {
            iss: nexus_platform::identity::ISSUER.into(),
            aud: nexus_platform::identity::AUDIENCE.into(),
            sub: nexus_platform::identity::nil_user().to_string(),
            ws: nexus_kernel::WorkspaceId::from_uuid(uuid::Uuid::nil()).to_string(),
            role: nexus_platform::identity::Role::Member,
            scp: vec![],
            sid: "svc:content".into(),
            kind: nexus_platform::identity::PrincipalKind::Service,
            jti: "j".into(),
            iat: now,
            exp: now + 600,
            amr: vec![],
            loc: String::new(),
            svc: "content".into(),
        };
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(&der)).unwrap()
    };
    assert_eq!(
        c.rotate_signing_key(authed(pb::Empty {}, &forged)).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
}

struct JwksOf(String);

#[async_trait::async_trait]
impl nexus_platform::identity::KeySource for JwksOf {
    async fn jwks(&self) -> Result<String, nexus_kernel::Error> {
        let mut c = nexus_proto::nexus::auth::v1::auth_client::AuthClient::new(
            nexus_platform::grpc::channel(&self.0, std::time::Duration::from_secs(5)).unwrap(),
        );
        Ok(c.get_jwks(pb::Empty {}).await.map_err(|s| nexus_kernel::Error::from_status(&s))?.into_inner().json)
    }
}

#[tokio::test]
async fn local_mail_is_for_services_and_for_a_user_s_own_mail() {
    let auth = start_auth(&[]).await;
    let ana_email = unique_email("ana");
    let ana = auth.sign_up(&ana_email).await;
    let bob_email = unique_email("bob");
    let bob = auth.sign_up(&bob_email).await;
    let mut c = auth.client();
    let list = |to: &str| pb::ListLocalMailRequest { to: to.into(), limit: 10 };

    // Anonymous: nothing, with or without an address.
    for to in ["", bob_email.as_str()] {
        assert_eq!(c.list_local_mail(list(to)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    }
    // A user reads their own mail, with or without naming the address.
    let own = c.list_local_mail(authed(list(""), &ana.access_token)).await.unwrap().into_inner().items;
    assert!(!own.is_empty() && own.iter().all(|m| m.to == ana_email), "{own:?}");
    let named = c.list_local_mail(authed(list(&ana_email.to_uppercase()), &ana.access_token)).await.unwrap();
    assert_eq!(named.into_inner().items.len(), own.len());
    // Never someone else's.
    let err = c.list_local_mail(authed(list(&bob_email), &ana.access_token)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    // Not through an API key, nor a workspace-bound service token.
    let key = auth.key_token(&ana.access_token, &["read", "write", "admin"]).await;
    assert_eq!(c.list_local_mail(authed(list(""), &key)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let ws = nexus_kernel::WorkspaceId::parse(&bob.workspace.as_ref().unwrap().id).unwrap();
    let bound = auth.service_tokens("gateway").token(Some(ws)).await.unwrap();
    assert_eq!(
        c.list_local_mail(authed(list(&bob_email), bound.expose())).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    // A service (the admin listener's local-mail route) reads anyone's, or everyone's.
    let ops = auth.ops_token().await;
    let bobs = c.list_local_mail(authed(list(&bob_email), &ops)).await.unwrap().into_inner().items;
    assert!(!bobs.is_empty() && bobs.iter().all(|m| m.to == bob_email));
    let all = c.list_local_mail(authed(list(""), &ops)).await.unwrap().into_inner().items;
    assert!(all.iter().any(|m| m.to == ana_email) && all.iter().any(|m| m.to == bob_email));
}
