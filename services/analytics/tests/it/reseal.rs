//! Key rotation: write keys (active and revoked) and hashing salts sealed by the service are
//! re-sealed under a new key by analytics' declared columns and read back by the service with
//! only the new key; a dump shows no write key.

use std::time::Duration;

use nexus_analytics::app::Analytics;
use nexus_kernel::TenantId;
use nexus_platform::crypto::Sealer;
use nexus_platform::reseal::{ResealOptions, reseal};

use crate::support::start;

#[tokio::test]
async fn write_keys_and_salts_resealed_under_a_new_key_open_with_it_alone() {
    let svc = start().await;
    let before = svc.app().await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let tenant = TenantId::new();
        let first = before.write_key(tenant).await.unwrap().key;
        let current = before.rotate_write_key(tenant, &[]).await.unwrap().key;
        let salt = before.settings(tenant).await.unwrap().salt.0;
        seen.push((tenant, first, current, salt));
    }
    let admin = svc.admin().await;
    let count = |sql: &'static str| {
        let admin = admin.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&admin).await.unwrap() }
    };
    let old_sql = "SELECT (SELECT count(*) FROM analytics.write_keys WHERE key_sealed LIKE 'v1.%') \
                        + (SELECT count(*) FROM analytics.workspace_settings WHERE salt_sealed LIKE 'v1.%')";
    // Four write keys (two revoked) and two salts, and whatever the service sealed for itself.
    let old = count(old_sql).await;
    assert!(old >= 6, "{old}");

    let k2 = Sealer::generate_key();
    let keys = format!("{},2:{k2}", svc.config.analytics.sealing_keys.expose());
    let rotated = Sealer::from_config(&keys).unwrap();
    let pool = nexus_platform::db::connect("analytics", &svc.config.common.database).await.unwrap();
    let report =
        reseal(&pool, &rotated, nexus_analytics::DEF.sealed, ResealOptions { batch_size: 3, max_batches: None })
            .await
            .unwrap();
    assert_eq!((report.resealed(), report.failed()), (u64::try_from(old).unwrap(), 0), "{report:?}");
    assert_eq!(count(old_sql).await, 0, "nothing left under the old key");

    // A fresh service state (no caches) holding only key 2 reads every key and salt back.
    let only_new = Sealer::new(&[(2, &k2)]).unwrap();
    let after = Analytics::new(pool, only_new, 30, Duration::from_secs(30));
    for (tenant, _, current, salt) in &seen {
        assert_eq!(&after.write_key(*tenant).await.unwrap().key, current);
        assert_eq!(&after.settings(*tenant).await.unwrap().salt.0, salt);
    }
    let keys: Vec<&str> = seen.iter().flat_map(|(_, first, current, _)| [first.as_str(), current.as_str()]).collect();
    assert!(svc.db.assert_dump_hides(&keys) > 0);
}
