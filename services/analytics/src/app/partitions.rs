//! Monthly partitions of the events table, created on demand for the months events fall in.

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use std::collections::HashSet;

use super::Analytics;
use crate::domain::workspace::month_of;
use crate::repo;

impl Analytics {
    /// Makes sure the monthly partitions of these instants exist (cached once created).
    pub async fn ensure_partitions(&self, instants: impl IntoIterator<Item = DateTime<Utc>>) -> Result<(), Error> {
        let months: HashSet<NaiveDate> = instants.into_iter().filter_map(month_of).collect();
        let missing: Vec<NaiveDate> = {
            let known = self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut conn = self.db.acquire().await.db()?;
        for month in missing {
            repo::partitions::ensure(&mut conn, month).await?;
            self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(month);
        }
        Ok(())
    }

    /// Forgets which partitions exist (after retention dropped some).
    pub fn forget_partitions(&self) {
        self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}
