//! gRPC adapter: proto <-> use cases. Handlers take the caller from the verified principal the
//! platform layer put in the request; nothing in a message can name another user or workspace.
//!
//! Who may call what (checked in `app`, after the session or key is found live):
//!
//! | RPCs | caller |
//! |---|---|
//! | SignUp, Login, Refresh, Logout, VerifyEmail, password reset, OAuthCallback, GetJwks, ExchangeApiKey, ExchangeServiceCredential | anyone (their own proof inside) |
//! | OAuthStart with a token (a link) | user session re-authenticated within `auth.reauthentication_window` |
//! | UpdateProfile, ResendVerification, ChangePassword, RequestAccountDeletion, ListSessions, RevokeSession, RevokeAllSessions, ListWorkspaces, SwitchWorkspace, AcceptInvite, TransferOwnership (+ owner role), MFA, ListIdentities, UnlinkIdentity | user session only: never an API key (any scope) or a service |
//! | GetMe | user or API key (any scope) |
//! | ListMembers, ListApiKeys | `read` (role viewer+); services in their workspace |
//! | InviteMember, RemoveMember | `admin` scope and role admin+ |
//! | CreateApiKey, RevokeApiKey | `admin` scope and role admin+ (a key never mints more than it holds) |
//! | RotateSigningKey, ListLocalMail (any address) | service token for no workspace; ListLocalMail also a user, for their own address |

use std::sync::Arc;

use nexus_kernel::{Error, Locale, UserId, WorkspaceId};
use nexus_platform::RequestContext;
use nexus_platform::grpc::{from_ts, status as err, ts};
use nexus_platform::identity::{Principal, principal};
use nexus_proto::common::Locale as PbLocale;
use nexus_proto::nexus::auth::v1::{self as pb, auth_server::Auth};
use tonic::{Request, Response, Status};

use crate::app::{self, App, Client, Issued};
use crate::domain::{Membership, ProfileUpdate, User};

pub struct AuthService {
    pub app: Arc<App>,
}

type R<T> = Result<Response<T>, Status>;

fn ok<T>(v: T) -> R<T> {
    Ok(Response::new(v))
}

/// Profile changes from the wire: absent fields stay as they are.
fn profile_update(r: pb::UpdateProfileRequest) -> ProfileUpdate {
    ProfileUpdate {
        name: r.name,
        avatar_url: r.avatar_url,
        locale: r.locale,
        timezone: r.timezone,
        notifications: r.notifications.map(|n| {
            serde_json::json!({"product_updates": n.product_updates, "billing": n.billing, "security": n.security, "weekly_report": n.weekly_report})
        }),
    }
}

fn client(c: Option<pb::ClientInfo>) -> Client {
    let c = c.unwrap_or_default();
    // The gateway forwards the caller's address; fall back to the forwarded context.
    let ip = if c.ip.is_empty() {
        RequestContext::current().client_ip.map(|i| i.to_string()).unwrap_or_default()
    } else {
        c.ip
    };
    Client { ip, user_agent: c.user_agent }
}

/// The request's language: explicit, else what the gateway negotiated, else English.
fn request_locale(explicit: &str) -> Result<Locale, Status> {
    if !explicit.is_empty() {
        return explicit.parse().map_err(|_| {
            err(Error::invalid("auth.invalid_locale")
                .with_param("locale", explicit.chars().take(16).collect::<String>()))
        });
    }
    Ok(RequestContext::current().locale.and_then(|l| l.parse().ok()).unwrap_or_default())
}

fn user(u: &User) -> pb::User {
    pb::User {
        id: UserId::from_uuid(u.id).to_string(),
        email: u.email.clone(),
        email_verified: u.email_verified_at.is_some(),
        name: u.name.clone(),
        avatar_url: u.avatar_url.clone().unwrap_or_default(),
        created_at: Some(ts(u.created_at)),
        mfa_enabled: u.mfa_enabled_at.is_some(),
    }
}

fn workspace(m: &Membership) -> pb::Workspace {
    pb::Workspace {
        id: WorkspaceId::from_uuid(m.workspace_id).to_string(),
        name: m.workspace_name.clone(),
        role: m.role.clone(),
    }
}

fn session(i: Issued) -> pb::AuthSession {
    pb::AuthSession {
        user: Some(user(&i.user)),
        workspace: Some(workspace(&i.workspace)),
        access_token: i.access_token,
        refresh_token: i.refresh_token,
        expires_in: i.expires_in,
        session_id: i.session_id.to_string(),
    }
}

fn pb_locale(l: &str) -> i32 {
    (match l {
        "es" => PbLocale::Es,
        "pt" => PbLocale::Pt,
        "he" => PbLocale::He,
        "ar" => PbLocale::Ar,
        _ => PbLocale::En,
    }) as i32
}

fn me(v: app::MeView, p: &Principal) -> pb::Me {
    let n = &v.settings.notifications;
    let flag = |k: &str| n.get(k).and_then(serde_json::Value::as_bool).unwrap_or(true);
    pb::Me {
        user: Some(user(&v.user)),
        settings: Some(pb::Settings {
            locale: pb_locale(&v.settings.locale),
            timezone: v.settings.timezone.clone(),
            notifications: Some(pb::NotificationPreferences {
                product_updates: flag("product_updates"),
                billing: flag("billing"),
                security: flag("security"),
                weekly_report: flag("weekly_report"),
            }),
        }),
        workspace: Some(workspace(&v.workspace)),
        scopes: p.scopes.as_ref().map(|s| s.iter().map(|s| s.as_str().to_owned()).collect()).unwrap_or_default(),
    }
}

fn api_key(k: app::ApiKeyView) -> pb::ApiKey {
    pb::ApiKey {
        id: format!("key_{}", k.id.simple()),
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes,
        created_at: Some(ts(k.created_at)),
        expires_at: k.expires_at.map(ts),
        last_used_at: k.last_used_at.map(ts),
        revoked_at: k.revoked_at.map(ts),
    }
}

fn invitation(i: app::InvitationView) -> pb::Invitation {
    pb::Invitation {
        id: format!("inv_{}", i.id.simple()),
        email: i.email,
        role: i.role,
        expires_at: Some(ts(i.expires_at)),
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn sign_up(&self, req: Request<pb::SignUpRequest>) -> R<pb::AuthSession> {
        let r = req.into_inner();
        let locale = request_locale(&r.locale)?;
        ok(session(self.app.sign_up(&r.email, &r.password, &r.name, locale, &client(r.client)).await.map_err(err)?))
    }

    async fn login(&self, req: Request<pb::LoginRequest>) -> R<pb::AuthSession> {
        let r = req.into_inner();
        ok(session(
            self.app
                .login(&r.email, &r.password, &r.totp_code, &r.recovery_code, &client(r.client))
                .await
                .map_err(err)?,
        ))
    }

    async fn refresh(&self, req: Request<pb::RefreshRequest>) -> R<pb::AuthSession> {
        let r = req.into_inner();
        ok(session(self.app.refresh(&r.refresh_token, &client(r.client)).await.map_err(err)?))
    }

    async fn logout(&self, req: Request<pb::LogoutRequest>) -> R<pb::Empty> {
        self.app.logout(&req.into_inner().refresh_token).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn verify_email(&self, req: Request<pb::TokenRequest>) -> R<pb::Empty> {
        self.app.verify_email(&req.into_inner().token).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn request_password_reset(&self, req: Request<pb::EmailRequest>) -> R<pb::Empty> {
        self.app.request_password_reset(&req.into_inner().email, &client(None)).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn reset_password(&self, req: Request<pb::ResetPasswordRequest>) -> R<pb::Empty> {
        let r = req.into_inner();
        self.app.reset_password(&r.token, &r.new_password).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn get_me(&self, req: Request<pb::Empty>) -> R<pb::Me> {
        let p = principal(&req)?;
        ok(me(self.app.me(&p).await.map_err(err)?, &p))
    }

    async fn update_profile(&self, req: Request<pb::UpdateProfileRequest>) -> R<pb::Me> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let update = profile_update(r);
        ok(me(self.app.update_profile(&p, update).await.map_err(err)?, &p))
    }

    async fn resend_verification(&self, req: Request<pb::Empty>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.resend_verification(&p).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn change_password(&self, req: Request<pb::ChangePasswordRequest>) -> R<pb::AuthSession> {
        let p = principal(&req)?;
        let r = req.into_inner();
        ok(session(
            self.app.change_password(&p, &r.current_password, &r.new_password, &client(r.client)).await.map_err(err)?,
        ))
    }

    async fn request_account_deletion(&self, req: Request<pb::PasswordRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.request_account_deletion(&p, &req.into_inner().password).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn list_sessions(&self, req: Request<pb::Empty>) -> R<pb::SessionList> {
        let p = principal(&req)?;
        let items = self
            .app
            .list_sessions(&p)
            .await
            .map_err(err)?
            .into_iter()
            .map(|s| pb::Session {
                current: s.id.to_string() == p.session_id,
                id: s.id.to_string(),
                ip: s.ip,
                user_agent: s.user_agent,
                device: s.device,
                created_at: Some(ts(s.created_at)),
                last_used_at: Some(ts(s.last_used_at)),
            })
            .collect();
        ok(pb::SessionList { items })
    }

    async fn revoke_session(&self, req: Request<pb::IdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.revoke_session(&p, &req.into_inner().id).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn revoke_all_sessions(&self, req: Request<pb::Empty>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.revoke_all_sessions(&p).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn list_workspaces(&self, req: Request<pb::Empty>) -> R<pb::WorkspaceList> {
        let p = principal(&req)?;
        ok(pb::WorkspaceList {
            items: self.app.list_workspaces(&p).await.map_err(err)?.iter().map(workspace).collect(),
        })
    }

    async fn switch_workspace(&self, req: Request<pb::IdRequest>) -> R<pb::AuthSession> {
        let p = principal(&req)?;
        ok(session(self.app.switch_workspace(&p, &req.into_inner().id, &client(None)).await.map_err(err)?))
    }

    async fn list_members(&self, req: Request<pb::Empty>) -> R<pb::MemberList> {
        let p = principal(&req)?;
        let (members, invitations) = self.app.list_members(&p).await.map_err(err)?;
        ok(pb::MemberList {
            items: members
                .into_iter()
                .map(|m| pb::Member {
                    user_id: UserId::from_uuid(m.user_id).to_string(),
                    email: m.email,
                    name: m.name,
                    role: m.role,
                    joined_at: Some(ts(m.joined_at)),
                })
                .collect(),
            pending_invitations: invitations.into_iter().map(invitation).collect(),
        })
    }

    async fn invite_member(&self, req: Request<pb::InviteMemberRequest>) -> R<pb::Invitation> {
        let p = principal(&req)?;
        let r = req.into_inner();
        ok(invitation(self.app.invite_member(&p, &r.email, &r.role, request_locale("")?).await.map_err(err)?))
    }

    async fn accept_invite(&self, req: Request<pb::TokenRequest>) -> R<pb::AuthSession> {
        let p = principal(&req)?;
        ok(session(self.app.accept_invite(&p, &req.into_inner().token, &client(None)).await.map_err(err)?))
    }

    async fn remove_member(&self, req: Request<pb::IdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.remove_member(&p, &req.into_inner().id).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn transfer_ownership(&self, req: Request<pb::IdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.transfer_ownership(&p, &req.into_inner().id).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn enroll_totp(&self, req: Request<pb::Empty>) -> R<pb::TotpEnrollment> {
        let p = principal(&req)?;
        let e = self.app.enroll_totp(&p).await.map_err(err)?;
        ok(pb::TotpEnrollment { secret: e.secret, otpauth_uri: e.otpauth_uri, qr_svg: e.qr_svg })
    }

    async fn confirm_totp(&self, req: Request<pb::CodeRequest>) -> R<pb::RecoveryCodes> {
        let p = principal(&req)?;
        ok(pb::RecoveryCodes { codes: self.app.confirm_totp(&p, &req.into_inner().code).await.map_err(err)? })
    }

    async fn disable_mfa(&self, req: Request<pb::DisableMfaRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        let r = req.into_inner();
        self.app.disable_mfa(&p, &r.password, &r.code).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn o_auth_start(&self, req: Request<pb::OAuthStartRequest>) -> R<pb::OAuthStartResponse> {
        let p = principal(&req).ok();
        let r = req.into_inner();
        let (authorization_url, state) =
            self.app.oauth_start(p.as_ref(), &r.provider, &r.redirect_uri).await.map_err(err)?;
        ok(pb::OAuthStartResponse { authorization_url, state })
    }

    async fn o_auth_callback(&self, req: Request<pb::OAuthCallbackRequest>) -> R<pb::AuthSession> {
        let r = req.into_inner();
        let factor = app::SecondFactor { totp: r.totp_code, recovery: r.recovery_code };
        ok(session(
            self.app
                .oauth_callback(&r.provider, &r.code, &r.state, &factor, request_locale("")?, &client(r.client))
                .await
                .map_err(err)?,
        ))
    }

    async fn list_identities(&self, req: Request<pb::Empty>) -> R<pb::IdentityList> {
        let p = principal(&req)?;
        let (items, has_password) = self.app.list_identities(&p).await.map_err(err)?;
        ok(pb::IdentityList {
            items: items
                .into_iter()
                .map(|i| pb::LinkedIdentity {
                    id: format!("idn_{}", i.id.simple()),
                    provider: i.provider,
                    email: i.email.unwrap_or_default(),
                    created_at: Some(ts(i.created_at)),
                })
                .collect(),
            has_password,
        })
    }

    async fn unlink_identity(&self, req: Request<pb::IdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.unlink_identity(&p, &req.into_inner().id).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn exchange_service_credential(
        &self,
        req: Request<pb::ExchangeServiceCredentialRequest>,
    ) -> R<pb::ExchangedToken> {
        let r = req.into_inner();
        let (access_token, expires_in) =
            self.app.exchange_service_credential(&r.service, &r.secret, &r.workspace_id).await.map_err(err)?;
        ok(pb::ExchangedToken { access_token, expires_in, key_id: String::new() })
    }

    async fn create_api_key(&self, req: Request<pb::CreateApiKeyRequest>) -> R<pb::CreatedApiKey> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let expires = r
            .expires_at
            .as_ref()
            .map(|t| {
                from_ts(t).ok_or_else(|| err(Error::invalid("request.invalid").with_violation("expires_at", "invalid")))
            })
            .transpose()?;
        let created = self.app.create_api_key(&p, &r.name, &r.scopes, expires).await.map_err(err)?;
        ok(pb::CreatedApiKey { key: Some(api_key(created.key)), secret: created.secret })
    }

    async fn list_api_keys(&self, req: Request<pb::Empty>) -> R<pb::ApiKeyList> {
        let p = principal(&req)?;
        ok(pb::ApiKeyList { items: self.app.list_api_keys(&p).await.map_err(err)?.into_iter().map(api_key).collect() })
    }

    async fn revoke_api_key(&self, req: Request<pb::IdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.revoke_api_key(&p, &req.into_inner().id).await.map_err(err)?;
        ok(pb::Empty {})
    }

    async fn exchange_api_key(&self, req: Request<pb::ExchangeApiKeyRequest>) -> R<pb::ExchangedToken> {
        let (access_token, expires_in, id) = self.app.exchange_api_key(&req.into_inner().secret).await.map_err(err)?;
        ok(pb::ExchangedToken { access_token, expires_in, key_id: format!("key_{}", id.simple()) })
    }

    async fn get_jwks(&self, _req: Request<pb::Empty>) -> R<pb::Jwks> {
        ok(pb::Jwks { json: self.app.keys.jwks().await.map_err(err)? })
    }

    async fn rotate_signing_key(&self, req: Request<pb::Empty>) -> R<pb::Jwks> {
        principal(&req)?.require_internal().map_err(err)?;
        self.app.keys.rotate().await.map_err(err)?;
        ok(pb::Jwks { json: self.app.keys.jwks().await.map_err(err)? })
    }

    async fn list_local_mail(&self, req: Request<pb::ListLocalMailRequest>) -> R<pb::LocalMailList> {
        // Refused in SMTP mode before the caller is even looked at.
        self.app.require_local_mail().map_err(err)?;
        let p = principal(&req)?;
        let r = req.into_inner();
        let items = self
            .app
            .list_local_mail(&p, &r.to, r.limit)
            .await
            .map_err(err)?
            .into_iter()
            .map(|m| pb::LocalMail {
                id: m.id.to_string(),
                to: m.to_email,
                subject: m.subject,
                body: m.body,
                locale: m.locale,
                created_at: Some(ts(m.created_at)),
            })
            .collect();
        ok(pb::LocalMailList { items })
    }
}
