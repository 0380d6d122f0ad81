use std::time::{Duration, Instant};

use nexus_proto::nexus::auth::v1 as pb;

use crate::support::*;

#[tokio::test]
async fn refresh_rotation_and_reuse_kills_the_whole_family() {
    let auth = start_auth(&[]).await;
    let email = unique_email("ana");
    let signed = auth.sign_up(&email).await;
    assert!(signed.user.as_ref().unwrap().id.starts_with("usr_"));
    assert_eq!(signed.workspace.as_ref().unwrap().role, "owner");

    let login = auth.login(&email, PASSWORD).await.unwrap();
    let mut c = auth.client();
    let first = c
        .refresh(pb::RefreshRequest { refresh_token: login.refresh_token.clone(), client: None })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(first.refresh_token, login.refresh_token, "rotated on every use");
    assert_eq!(first.session_id, login.session_id, "same family");
    // The new access token works.
    assert!(c.get_me(authed(pb::Empty {}, &first.access_token)).await.is_ok());

    // The spent token comes back after the reuse grace (10 s; inside it, the same successor is
    // given again): 401, and the family is dead.
    let admin = auth.db.admin_pool().await;
    sqlx::query(
        "UPDATE auth.sessions SET replaced_at = replaced_at - interval '11 seconds' WHERE replaced_at IS NOT NULL",
    )
    .execute(&admin)
    .await
    .unwrap();
    let reuse =
        c.refresh(pb::RefreshRequest { refresh_token: login.refresh_token.clone(), client: None }).await.unwrap_err();
    assert_eq!(reuse.code(), tonic::Code::Unauthenticated);
    assert_eq!(code_of(&reuse), "auth.invalid_refresh_token");
    let newest =
        c.refresh(pb::RefreshRequest { refresh_token: first.refresh_token.clone(), client: None }).await.unwrap_err();
    assert_eq!(newest.code(), tonic::Code::Unauthenticated, "the newest refresh token died with its family");
    let me = c.get_me(authed(pb::Empty {}, &first.access_token)).await.unwrap_err();
    assert_eq!(me.code(), tonic::Code::Unauthenticated, "access tokens of the family are dead too");
    let me = c.get_me(authed(pb::Empty {}, &login.access_token)).await.unwrap_err();
    assert_eq!(me.code(), tonic::Code::Unauthenticated);

    // Another sign-in (another family) is unaffected.
    let other = auth.login(&email, PASSWORD).await.unwrap();
    assert!(c.get_me(authed(pb::Empty {}, &other.access_token)).await.is_ok());
    assert!(
        c.get_me(authed(pb::Empty {}, &signed.access_token)).await.is_ok(),
        "the sign-up session is its own family"
    );

    // The revocation went out as an event for the other services.
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.outbox WHERE subject = 'nexus.auth.session.revoked'")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn twenty_wrong_passwords_lock_and_unknown_emails_look_the_same() {
    let auth = start_auth(&[]).await;
    let email = unique_email("lock");
    auth.sign_up(&email).await;
    let unknown = unique_email("nobody");

    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        let a = auth.login(&email, "wrong password here").await.unwrap_err();
        known_times.push(t.elapsed());
        let t = Instant::now();
        let b = auth.login(&unknown, "wrong password here").await.unwrap_err();
        unknown_times.push(t.elapsed());
        assert_eq!(
            (a.code(), code_of(&a)),
            (b.code(), code_of(&b)),
            "attempt {i}: same answer for known and unknown email"
        );
        assert_eq!(a.message(), b.message());
        assert_eq!(code_of(&a), "auth.invalid_credentials");
    }
    // Both now locked, alike; even the right password is refused during the lock.
    let locked = auth.login(&email, PASSWORD).await.unwrap_err();
    let locked_unknown = auth.login(&unknown, PASSWORD).await.unwrap_err();
    assert_eq!(locked.code(), tonic::Code::ResourceExhausted);
    assert_eq!(code_of(&locked), "auth.account_locked");
    assert_eq!(code_of(&locked_unknown), "auth.account_locked");
    let e = nexus_kernel::Error::from_status(&locked);
    assert_eq!(e.param("minutes"), Some("15"));

    // Argon2 runs on a dummy hash for unknown emails: no timing gap that matters.
    known_times.sort();
    unknown_times.sort();
    let (k, u) = (known_times[10].as_secs_f64(), unknown_times[10].as_secs_f64());
    assert!((k - u).abs() < k.max(u) * 0.5 + 0.005, "median known {k:.4}s vs unknown {u:.4}s");

    // The owner was told by mail, in their language (pt).
    let mail = auth.last_mail(&email).await;
    assert_eq!(mail.locale, "pt");
    assert!(mail.body.contains("15"));

    // A password reset lifts the lock.
    auth.client().request_password_reset(pb::EmailRequest { email: email.clone() }).await.unwrap();
    let token = token_in(&auth.last_mail(&email).await);
    auth.client()
        .reset_password(pb::ResetPasswordRequest {
            token: token.clone(),
            new_password: "a brand new passphrase".into(),
        })
        .await
        .unwrap();
    assert!(auth.login(&email, "a brand new passphrase").await.is_ok());
    let again = auth
        .client()
        .reset_password(pb::ResetPasswordRequest { token, new_password: "yet another passphrase".into() })
        .await
        .unwrap_err();
    assert_eq!(code_of(&again), "auth.invalid_token", "reset links are single-use");
}

#[tokio::test]
async fn bad_sign_up_input_is_refused_and_changes_nothing() {
    let auth = start_auth(&[]).await;
    let taken = unique_email("taken");
    auth.sign_up(&taken).await;
    let mut c = auth.client();
    let cases = [
        ("not-an-email", PASSWORD, "Ana", "auth.invalid_email"),
        ("ok@example.com", "short", "Ana", "auth.password_too_short"),
        ("ok@example.com", "password123", "Ana", "auth.password_too_common"),
        ("okay.person@example.com", "okay.person rules 1", "Ana", "auth.password_contains_email"),
        ("ok@example.com", &"x".repeat(200), "Ana", "auth.password_too_long"),
        ("ok@example.com", PASSWORD, "   ", "auth.name_required"),
        ("ok@example.com", PASSWORD, &"n".repeat(101), "auth.field_too_long"),
        (taken.as_str(), PASSWORD, "Ana", "auth.email_taken"),
    ];
    let admin = auth.db.admin_pool().await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&admin).await.unwrap();
    for (email, password, name, code) in cases {
        let e = c
            .sign_up(pb::SignUpRequest {
                email: email.into(),
                password: password.into(),
                name: name.into(),
                locale: "es".into(),
                client: None,
            })
            .await
            .unwrap_err();
        assert_eq!(code_of(&e), code, "{email} / {name}");
        assert!(matches!(e.code(), tonic::Code::InvalidArgument | tonic::Code::AlreadyExists), "{e:?}");
    }
    let bad_locale = c
        .sign_up(pb::SignUpRequest {
            email: unique_email("x"),
            password: PASSWORD.into(),
            name: "Ana".into(),
            locale: "fr".into(),
            client: None,
        })
        .await
        .unwrap_err();
    assert_eq!(code_of(&bad_locale), "auth.invalid_locale");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&admin).await.unwrap();
    assert_eq!(before, after, "nothing was created");
}

#[tokio::test]
async fn email_verification_password_change_and_profile() {
    let auth = start_auth(&[]).await;
    let email = unique_email("verify");
    let s = auth.sign_up(&email).await;
    assert!(!s.user.as_ref().unwrap().email_verified);
    let mail = auth.last_mail(&email).await;
    assert_eq!(mail.locale, "pt", "mail in the user's language");
    let mut c = auth.client();
    c.verify_email(pb::TokenRequest { token: token_in(&mail) }).await.unwrap();
    let me = c.get_me(authed(pb::Empty {}, &s.access_token)).await.unwrap().into_inner();
    assert!(me.user.unwrap().email_verified);
    assert_eq!(
        code_of(&c.verify_email(pb::TokenRequest { token: "nxv_forged".into() }).await.unwrap_err()),
        "auth.invalid_token"
    );

    // Profile and settings, with validation.
    let updated = c
        .update_profile(authed(
            pb::UpdateProfileRequest {
                name: Some("Ana S.".into()),
                locale: Some("ar".into()),
                timezone: Some("Asia/Dubai".into()),
                ..Default::default()
            },
            &s.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.user.unwrap().name, "Ana S.");
    assert_eq!(updated.settings.as_ref().unwrap().timezone, "Asia/Dubai");
    for (req, code) in [
        (
            pb::UpdateProfileRequest { timezone: Some("Mars/Base".into()), ..Default::default() },
            "auth.invalid_timezone",
        ),
        (pb::UpdateProfileRequest { locale: Some("xx".into()), ..Default::default() }, "auth.invalid_locale"),
        (
            pb::UpdateProfileRequest { avatar_url: Some("javascript:alert(1)".into()), ..Default::default() },
            "auth.invalid_url",
        ),
    ] {
        assert_eq!(code_of(&c.update_profile(authed(req, &s.access_token)).await.unwrap_err()), code);
    }

    // Changing the password ends the other sessions and returns a fresh one.
    let other = auth.login(&email, PASSWORD).await.unwrap();
    let wrong = c
        .change_password(authed(
            pb::ChangePasswordRequest {
                current_password: "nope nope nope".into(),
                new_password: "another good passphrase".into(),
                client: None,
            },
            &s.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&wrong), "auth.password_incorrect");
    let fresh = c
        .change_password(authed(
            pb::ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: "another good passphrase".into(),
                client: None,
            },
            &s.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(c.get_me(authed(pb::Empty {}, &other.access_token)).await.is_err());
    assert!(c.get_me(authed(pb::Empty {}, &fresh.access_token)).await.is_ok());
    assert_eq!(code_of(&auth.login(&email, PASSWORD).await.unwrap_err()), "auth.invalid_credentials");
    let arabic = auth.last_mail(&email).await;
    assert_eq!(arabic.locale, "ar", "the new language drives mail");

    // Sessions: listed with device, revocable one by one.
    let listed = c.list_sessions(authed(pb::Empty {}, &fresh.access_token)).await.unwrap().into_inner().items;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].current);
    let third = auth.login(&email, "another good passphrase").await.unwrap();
    let listed = c.list_sessions(authed(pb::Empty {}, &fresh.access_token)).await.unwrap().into_inner().items;
    assert_eq!(listed.len(), 2);
    let other_row = listed.iter().find(|s| !s.current).unwrap();
    assert_eq!(other_row.device, "Firefox on Linux");
    c.revoke_session(authed(pb::IdRequest { id: other_row.id.clone() }, &fresh.access_token)).await.unwrap();
    assert!(c.get_me(authed(pb::Empty {}, &third.access_token)).await.is_err());
    tokio::time::sleep(Duration::from_millis(1)).await;
}
