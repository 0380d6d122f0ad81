//! TOTP checked with an independent RFC 6238 implementation (verified against the RFC's vectors).

use hmac::{Hmac, KeyInit, Mac};
use nexus_proto::nexus::auth::v1 as pb;
use sha1::Sha1;

use crate::support::*;

pub(crate) fn base32_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|a| *a == c.to_ascii_uppercase()).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// RFC 4226 HOTP with RFC 6238 time steps, written here from the RFC, not taken from the code
/// under test.
pub(crate) fn totp(key: &[u8], unix: u64, digits: u32) -> String {
    let counter = unix / 30;
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!("{:0width$}", bin % 10u32.pow(digits), width = digits as usize)
}

#[test]
fn the_reference_implementation_matches_rfc_6238_vectors() {
    let key = b"12345678901234567890";
    for (t, expected) in [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(totp(key, t, 8), expected, "T={t}");
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn totp_login_recovery_codes_and_lockout() {
    let auth = start_auth(&[]).await;
    let email = unique_email("mfa");
    let s = auth.sign_up(&email).await;
    let mut c = auth.client();

    let enrol = c.enroll_totp(authed(pb::Empty {}, &s.access_token)).await.unwrap().into_inner();
    assert!(enrol.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(enrol.otpauth_uri.contains(&format!("secret={}", enrol.secret)));
    assert!(enrol.otpauth_uri.contains("issuer=NexusOne"));
    assert!(enrol.qr_svg.starts_with("<svg") && enrol.qr_svg.contains("<path"));
    let key = base32_decode(&enrol.secret);

    let wrong = c.confirm_totp(authed(pb::CodeRequest { code: "000000".into() }, &s.access_token)).await.unwrap_err();
    assert_eq!(code_of(&wrong), "auth.invalid_mfa_code");
    let codes = c
        .confirm_totp(authed(pb::CodeRequest { code: totp(&key, now(), 6) }, &s.access_token))
        .await
        .unwrap()
        .into_inner()
        .codes;
    assert_eq!(codes.len(), 10);
    let admin = auth.db.admin_pool().await;
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT code_hash FROM auth.recovery_codes").fetch_all(&admin).await.unwrap();
    assert!(stored.iter().all(|h| !codes.iter().any(|c| h == c.as_bytes())), "recovery codes are stored hashed");
    let secret_col: String = sqlx::query_scalar("SELECT mfa_secret_sealed FROM auth.users WHERE email = $1")
        .bind(&email)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(!secret_col.contains(&enrol.secret), "TOTP secret sealed at rest");

    // Password alone is no longer enough.
    let step_up = auth.login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(code_of(&step_up), "auth.mfa_required");
    let login = |totp_code: String, recovery: String| {
        let mut c = auth.client();
        let email = email.clone();
        async move {
            c.login(pb::LoginRequest {
                email,
                password: PASSWORD.into(),
                totp_code,
                recovery_code: recovery,
                client: None,
            })
            .await
            .map(|r| r.into_inner())
        }
    };
    // The confirming code's step is spent; the next step's code works once.
    let next = totp(&key, now() + 30, 6);
    let ok = login(next.clone(), String::new()).await.unwrap();
    assert!(!ok.access_token.is_empty());
    assert_eq!(
        code_of(&login(next, String::new()).await.unwrap_err()),
        "auth.invalid_mfa_code",
        "a code is accepted once"
    );

    // A recovery code works once.
    assert!(login(String::new(), codes[3].clone()).await.is_ok());
    assert_eq!(code_of(&login(String::new(), codes[3].clone()).await.unwrap_err()), "auth.invalid_mfa_code");
    assert!(login(String::new(), codes[4].to_uppercase()).await.is_ok(), "case and separators do not matter");

    // Five wrong codes lock the second factor.
    for i in 0..5 {
        let e = login("123456".into(), String::new()).await.unwrap_err();
        assert_eq!(code_of(&e), "auth.invalid_mfa_code", "attempt {i}");
    }
    let locked = login(totp(&key, now(), 6), String::new()).await.unwrap_err();
    assert_eq!(code_of(&locked), "auth.mfa_locked");
    assert_eq!(locked.code(), tonic::Code::ResourceExhausted);
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM auth.outbox WHERE subject IN ('nexus.auth.mfa.enabled', 'nexus.auth.user.locked')",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(events, 2);
}

#[tokio::test]
async fn disabling_mfa_needs_password_and_code() {
    let auth = start_auth(&[]).await;
    let email = unique_email("mfa-off");
    let s = auth.sign_up(&email).await;
    let mut c = auth.client();
    let enrol = c.enroll_totp(authed(pb::Empty {}, &s.access_token)).await.unwrap().into_inner();
    let key = base32_decode(&enrol.secret);
    c.confirm_totp(authed(pb::CodeRequest { code: totp(&key, now(), 6) }, &s.access_token)).await.unwrap();
    let code = totp(&key, now() + 30, 6);
    let bad = c
        .disable_mfa(authed(
            pb::DisableMfaRequest { password: "not my password".into(), code: code.clone() },
            &s.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&bad), "auth.password_incorrect");
    c.disable_mfa(authed(pb::DisableMfaRequest { password: PASSWORD.into(), code }, &s.access_token)).await.unwrap();
    assert!(auth.login(&email, PASSWORD).await.is_ok(), "password alone works again");
}
