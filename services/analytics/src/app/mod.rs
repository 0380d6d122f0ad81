//! Use cases of analytics, one file per capability, over the service state [`Analytics`]: the
//! platform's pool and small caches in front of the hot lookups (every tracked batch verifies a
//! key and needs its workspace's salt).

pub mod churn;
pub mod fleet;
pub mod ingest;
pub mod maintenance;
pub mod partitions;
pub mod reports;
pub mod revenue;
pub mod rollups;
pub mod sealed;
pub mod settings;
pub mod track;
pub mod write_keys;

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use nexus_kernel::TenantId;
use nexus_platform::crypto::Sealer;
use sqlx::PgPool;

use crate::domain::workspace::{KeyGrant, WorkspaceSettings};

/// Bound on cached keys and settings; past it the cache starts over.
const CACHE_MAX: usize = 100_000;

/// Entries that expire after a fixed time, bounded by [`CACHE_MAX`].
struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::default() }
    }

    fn get(&self, k: &K) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(k).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    fn put(&self, k: K, v: V) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(k, (v, Instant::now()));
    }

    fn remove(&self, k: &K) {
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(k);
    }
}

/// The state every use case shares.
pub struct Analytics {
    /// The platform's pool (the one `/metrics` reports).
    pub db: PgPool,
    sealer: Sealer,
    default_retention_days: u32,
    keys: TtlCache<[u8; 32], KeyGrant>,
    settings: TtlCache<TenantId, WorkspaceSettings>,
    /// Months whose partition is known to exist.
    partitions: Mutex<HashSet<NaiveDate>>,
    /// Zones Postgres is known to accept.
    zones: RwLock<HashSet<String>>,
}

impl Analytics {
    pub fn new(db: PgPool, sealer: Sealer, default_retention_days: u32, cache_ttl: Duration) -> Self {
        Self {
            db,
            sealer,
            default_retention_days,
            keys: TtlCache::new(cache_ttl),
            settings: TtlCache::new(cache_ttl),
            partitions: Mutex::default(),
            zones: RwLock::default(),
        }
    }

    pub fn default_retention_days(&self) -> u32 {
        self.default_retention_days
    }
}
