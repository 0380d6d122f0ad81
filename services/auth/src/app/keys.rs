//! Token-signing keys: Ed25519, private halves sealed at rest, published as a JWKS.
//!
//! The newest unretired key signs. Rotation adds a key and retires the previous one, which stays
//! in the JWKS until every token it signed has expired, so rotation never logs anyone out.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nexus_kernel::Error;
use nexus_platform::crypto::Sealer;
use nexus_platform::db::{self, DbResultExt};
use nexus_platform::identity::{Claims, KeySource};
use sqlx::PgPool;

use crate::domain::signing;
use crate::repo::signing_keys;

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

impl SigningKeys {
    pub fn new(pool: PgPool, sealer: Sealer, access_ttl: Duration) -> Self {
        Self { pool, sealer, publish_retired_for: access_ttl + Duration::from_secs(300), active: RwLock::new(None) }
    }

    /// Creates a key unless one is active; with `rotate`, always creates one and retires the rest.
    async fn create(&self, rotate: bool) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.db()?;
        signing_keys::lock_creation(&mut tx).await?;
        if !rotate && signing_keys::any_active(&mut tx).await? {
            return Ok(());
        }
        let key = signing::generate()?;
        signing_keys::retire_all(&mut tx).await?;
        let sealed = self.sealer.seal(&key.pkcs8, &signing::context(&key.kid));
        signing_keys::insert(&mut tx, &key.kid, &key.public, &sealed).await?;
        db::commit(tx).await?;
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        tracing::info!(kid = %key.kid, rotate, "signing key created");
        Ok(())
    }

    pub async fn ensure(&self) -> Result<(), Error> {
        self.create(false).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn rotate(&self) -> Result<(), Error> {
        self.create(true).await
    }

    async fn load_active(&self) -> Result<(String, EncodingKey), Error> {
        if let Some(a) = self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && a.loaded.elapsed() < CACHE_FOR
        {
            return Ok((a.kid.clone(), a.key.clone()));
        }
        let mut conn = self.pool.acquire().await.db()?;
        let row = signing_keys::newest_active(&mut conn).await?;
        drop(conn);
        let (kid, sealed) = match row {
            Some(r) => r,
            None => {
                self.ensure().await?;
                return Box::pin(self.load_active()).await;
            }
        };
        let pkcs8 = self
            .sealer
            .open(&sealed, &signing::context(&kid))
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
        let mut conn = self.pool.acquire().await.db()?;
        Ok(signing::jwks(&signing_keys::published(&mut conn, horizon).await?))
    }
}

/// The auth service verifies its own tokens from its own keys. The verifier is made before the
/// platform's pool exists, so the keys are attached once it does (before the first RPC).
#[derive(Default)]
pub struct LocalKeys(OnceLock<Arc<SigningKeys>>);

impl LocalKeys {
    pub fn attach(&self, keys: Arc<SigningKeys>) {
        let _ = self.0.set(keys);
    }
}

#[async_trait::async_trait]
impl KeySource for LocalKeys {
    async fn jwks(&self) -> Result<String, Error> {
        match self.0.get() {
            Some(keys) => keys.jwks().await,
            None => Err(Error::unavailable("service.unavailable")),
        }
    }
}
