//! Service identity: a service trades its credential (`identity.service_secret`, known to auth as
//! the SHA-256 in `auth.service_credentials.<service>`) for a short-lived token signed with the
//! same keys as user tokens. Its principal is a service (`kind: service`, `svc` claim), acting
//! for one workspace when asked, else for none (then only internal RPCs accept it).

use nexus_kernel::{Error, UserId, WorkspaceId};
use nexus_platform::db;
use nexus_platform::identity::{AUDIENCE, Claims, ISSUER, PrincipalKind, Role, Scope, nil_user};
use sha2::Digest;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{App, now_unix};
use crate::repo;

impl App {
    /// Returns the token and its lifetime in seconds.
    #[tracing::instrument(skip_all)]
    pub async fn exchange_service_credential(
        &self,
        service: &str,
        secret: &str,
        workspace: &str,
    ) -> Result<(String, u32), Error> {
        let invalid = || Error::unauthenticated("auth.service_credential_invalid");
        let expected = self.cfg.auth.service_credentials.get(service).ok_or_else(invalid)?;
        let expected = hex::decode(expected.trim()).map_err(|_| invalid())?;
        let presented = sha2::Sha256::digest(secret.as_bytes());
        if secret.is_empty() || !bool::from(presented.as_slice().ct_eq(&expected)) {
            tracing::warn!(service = %service.chars().take(32).collect::<String>(), "service credential refused");
            return Err(invalid());
        }
        let ws = if workspace.is_empty() {
            WorkspaceId::from_uuid(Uuid::nil())
        } else {
            let ws = WorkspaceId::parse(workspace).map_err(|_| Error::not_found("request.not_found"))?;
            let mut tx = db::system(&self.pool).await?;
            let exists = repo::workspaces::exists(&mut tx, ws.as_uuid()).await?;
            if !exists {
                return Err(Error::not_found("request.not_found"));
            }
            ws
        };
        let ttl = self.cfg.auth.service_token_ttl.as_secs();
        let now = now_unix();
        let sub: UserId = nil_user();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: sub.to_string(),
            ws: ws.to_string(),
            // What a service may do in a workspace: read and write, never manage members,
            // billing or keys.
            role: Role::Member,
            scp: vec![Scope::Read, Scope::Write],
            sid: format!("svc:{service}"),
            kind: PrincipalKind::Service,
            jti: Uuid::now_v7().to_string(),
            iat: now,
            exp: now + i64::try_from(ttl).unwrap_or(600),
            amr: vec!["svc".into()],
            loc: String::new(),
            svc: service.to_owned(),
        };
        Ok((self.keys.sign(&claims).await?, u32::try_from(ttl).unwrap_or(600)))
    }
}
