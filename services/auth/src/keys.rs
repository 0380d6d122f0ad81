//! Token-signing keys: Ed25519, private halves sealed at rest, published as a JWKS.
//!
//! The newest unretired key signs. Rotation adds a key and retires the previous one, which stays
//! in the JWKS until every token it signed has expired, so rotation never logs anyone out.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nexus_kernel::Error;
use nexus_platform::crypto::Sealer;
use nexus_platform::identity::{Claims, KeySource};
use sqlx::PgPool;

/// PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// Refresh the cached signing key this often, so a rotation on one replica reaches the others.
const CACHE_FOR: Duration = Duration::from_secs(60);

struct Active {
    kid: String,
    key: EncodingKey,
    loaded: Instant,
}

pub struct SigningKeys {
    pool: PgPool,
    sealer: Sealer,
    /// Retired keys stay published this long (access-token lifetime plus margin).
    publish_retired_for: Duration,
    active: RwLock<Option<Active>>,
}

fn db(e: sqlx::Error) -> Error {
    Error::internal(e)
}

impl SigningKeys {
    pub fn new(pool: PgPool, sealer: Sealer, access_ttl: Duration) -> Self {
        Self { pool, sealer, publish_retired_for: access_ttl + Duration::from_secs(300), active: RwLock::new(None) }
    }

    fn context(kid: &str) -> String {
        format!("auth.signing_keys:{kid}")
    }

    /// Creates a key unless one is active; with `rotate`, always creates one and retires the rest.
    async fn create(&self, rotate: bool) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Replicas starting together must not each mint a key.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('nexus.auth.signing_keys'))")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if !rotate {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
            if exists {
                return Ok(());
            }
        }
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| Error::internal(format!("ed25519: {e}")))?;
        let public = ring::signature::KeyPair::public_key(&pair).as_ref().to_vec();
        let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        let kid = format!("k{}", &uuid::Uuid::now_v7().simple().to_string()[..20]);
        sqlx::query("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO signing_keys (kid, public_key, private_key_sealed) VALUES ($1, $2, $3)")
            .bind(&kid)
            .bind(&public)
            .bind(self.sealer.seal(&pkcs8, &Self::context(&kid)))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        tracing::info!(%kid, rotate, "signing key created");
        Ok(())
    }

    pub async fn ensure(&self) -> Result<(), Error> {
        self.create(false).await
    }

    pub async fn rotate(&self) -> Result<(), Error> {
        self.create(true).await
    }

    async fn load_active(&self) -> Result<(String, EncodingKey), Error> {
        if let Some(a) = self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && a.loaded.elapsed() < CACHE_FOR
        {
            return Ok((a.kid.clone(), a.key.clone()));
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT kid, private_key_sealed FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let (kid, sealed) = match row {
            Some(r) => r,
            None => {
                self.ensure().await?;
                return Box::pin(self.load_active()).await;
            }
        };
        let pkcs8 = self
            .sealer
            .open(&sealed, &Self::context(&kid))
            .map_err(|e| Error::internal(format!("signing key {kid}: {e}")))?;
        let key = EncodingKey::from_ed_der(&pkcs8);
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Active { kid: kid.clone(), key: key.clone(), loaded: Instant::now() });
        Ok((kid, key))
    }

    pub async fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let (kid, key) = self.load_active().await?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| Error::internal(format!("sign: {e}")))
    }

    /// Every key a valid token may have been signed with.
    pub async fn jwks(&self) -> Result<String, Error> {
        self.ensure().await?;
        let horizon = Utc::now() - chrono::Duration::from_std(self.publish_retired_for).unwrap_or_default();
        let rows: Vec<(String, Vec<u8>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT kid, public_key, retired_at FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC",
        )
        .bind(horizon)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let keys: Vec<serde_json::Value> = rows
            .into_iter()
            .map(|(kid, public, _)| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public), "kid": kid, "alg": "EdDSA", "use": "sig"})
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }).to_string())
    }
}

/// The auth service verifies its own tokens from its own keys.
pub struct LocalKeys(pub Arc<SigningKeys>);

#[async_trait::async_trait]
impl KeySource for LocalKeys {
    async fn jwks(&self) -> Result<String, Error> {
        self.0.jwks().await
    }
}
