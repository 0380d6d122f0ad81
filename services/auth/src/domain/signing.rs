//! Token-signing key material: Ed25519 pairs, their private halves as PKCS#8 for sealing, and
//! the public halves as JWKs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_kernel::Error;

/// PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// A freshly generated key: its id, public half and private half (PKCS#8 DER).
pub struct NewKey {
    pub kid: String,
    pub public: Vec<u8>,
    pub pkcs8: Vec<u8>,
}

pub fn generate() -> Result<NewKey, Error> {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|e| Error::internal(format!("ed25519: {e}")))?;
    let public = ring::signature::KeyPair::public_key(&pair).as_ref().to_vec();
    let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
    pkcs8.extend_from_slice(&seed);
    let kid = format!("k{}", &uuid::Uuid::now_v7().simple().to_string()[..20]);
    Ok(NewKey { kid, public, pkcs8 })
}

/// Sealing context of a key's private half.
pub fn context(kid: &str) -> String {
    format!("auth.signing_keys:{kid}")
}

/// The JWKS document of `(kid, public key)` pairs.
pub fn jwks(keys: &[(String, Vec<u8>)]) -> String {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|(kid, public)| {
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public), "kid": kid, "alg": "EdDSA", "use": "sig"})
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}
