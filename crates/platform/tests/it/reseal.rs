//! The re-seal runner against the fixture's `notes.secret`, rows in several workspaces under RLS.

use nexus_kernel::TenantId;
use nexus_platform::crypto::Sealer;
use nexus_platform::db::{begin_system, begin_tenant};
use nexus_platform::reseal::{ResealOptions, SealedColumn, by_uuid, reseal};
use nexus_testkit::TestDb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::fixture::migrated;

fn context(id: Uuid) -> String {
    format!("notes.secret:{id}")
}

const NOTES: &[SealedColumn] = &[SealedColumn {
    table: "notes",
    key: "id",
    column: "secret",
    context_from: "id",
    context: |v| by_uuid(v, context),
}];

/// `n` notes per tenant, each secret sealed by `sealer` the way a service would (in its tenant's
/// transaction), plus one note without a secret. Returns (id, tenant, plaintext).
async fn seed(pool: &PgPool, sealer: &Sealer, tenants: &[TenantId], n: usize) -> Vec<(Uuid, TenantId, String)> {
    let mut rows = Vec::new();
    for &tenant in tenants {
        let mut tx = begin_tenant(pool, tenant).await.unwrap();
        for i in 0..n {
            let id = Uuid::now_v7();
            let plain = format!("secret-{i}-{id}");
            sqlx::query("INSERT INTO notes (id, tenant_id, body, secret) VALUES ($1, $2, 'n', $3)")
                .bind(id)
                .bind(tenant.as_uuid())
                .bind(sealer.seal(plain.as_bytes(), &context(id)))
                .execute(&mut *tx)
                .await
                .unwrap();
            rows.push((id, tenant, plain));
        }
        sqlx::query("INSERT INTO notes (tenant_id, body) VALUES ($1, 'no secret')")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    rows
}

/// Every stored secret, read back through each tenant's own transaction.
async fn stored(pool: &PgPool, rows: &[(Uuid, TenantId, String)]) -> Vec<(Uuid, String)> {
    let mut out = Vec::new();
    for (id, tenant, _) in rows {
        let mut tx = begin_tenant(pool, *tenant).await.unwrap();
        let v: String =
            sqlx::query_scalar("SELECT secret FROM notes WHERE id = $1").bind(id).fetch_one(&mut *tx).await.unwrap();
        out.push((*id, v));
    }
    out
}

fn keys() -> (Sealer, Sealer, Sealer) {
    let (k1, k2) = (Sealer::generate_key(), Sealer::generate_key());
    (Sealer::new(&[(1, &k1)]).unwrap(), Sealer::new(&[(1, &k1), (2, &k2)]).unwrap(), Sealer::new(&[(2, &k2)]).unwrap())
}

#[tokio::test]
async fn every_secret_in_every_workspace_is_resealed_under_the_new_key_and_still_opens() {
    let db = TestDb::new().await;
    let (_, pool) = migrated(&db).await;
    let (old, rotated, only_new) = keys();
    let rows = seed(&pool, &old, &[TenantId::new(), TenantId::new(), TenantId::new()], 4).await;

    let report = reseal(&pool, &rotated, NOTES, ResealOptions { batch_size: 5, max_batches: None }).await.unwrap();
    let c = &report.columns[0];
    assert_eq!((c.pending, c.resealed, c.failed.len(), c.interrupted), (12, 12, 0, false), "{report:?}");

    for ((id, sealed), (_, _, plain)) in stored(&pool, &rows).await.iter().zip(&rows) {
        assert!(sealed.starts_with("v2."), "{sealed}");
        assert_eq!(only_new.open(sealed, &context(*id)).unwrap(), plain.as_bytes(), "opens with key 2 alone");
    }
    // Rows without a secret stay without one.
    let mut tx = begin_system(&pool).await.unwrap();
    let empty: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notes WHERE secret IS NULL").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(empty, 3);
    drop(tx);

    // Idempotent: a second run finds nothing to do and changes nothing.
    let before = stored(&pool, &rows).await;
    let again = reseal(&pool, &rotated, NOTES, ResealOptions::default()).await.unwrap();
    assert_eq!((again.columns[0].pending, again.resealed(), again.failed()), (0, 0, 0));
    assert_eq!(stored(&pool, &rows).await, before);
}

#[tokio::test]
async fn an_interrupted_run_resumes_where_it_stopped() {
    let db = TestDb::new().await;
    let (_, pool) = migrated(&db).await;
    let (old, rotated, only_new) = keys();
    let rows = seed(&pool, &old, &[TenantId::new(), TenantId::new()], 5).await;

    let first = reseal(&pool, &rotated, NOTES, ResealOptions { batch_size: 3, max_batches: Some(2) }).await.unwrap();
    let c = &first.columns[0];
    assert_eq!((c.pending, c.resealed, c.interrupted), (10, 6, true), "{first:?}");
    let under_v2 = stored(&pool, &rows).await.iter().filter(|(_, v)| v.starts_with("v2.")).count();
    assert_eq!(under_v2, 6);

    // The rerun sees only what is left.
    let second = reseal(&pool, &rotated, NOTES, ResealOptions { batch_size: 3, max_batches: None }).await.unwrap();
    let c = &second.columns[0];
    assert_eq!((c.pending, c.resealed, c.interrupted), (4, 4, false), "{second:?}");
    for ((id, sealed), (_, _, plain)) in stored(&pool, &rows).await.iter().zip(&rows) {
        assert_eq!(only_new.open(sealed, &context(*id)).unwrap(), plain.as_bytes());
    }
}

#[tokio::test]
async fn values_no_key_opens_are_reported_by_row_and_the_rest_still_resealed() {
    let db = TestDb::new().await;
    let (_, pool) = migrated(&db).await;
    let (old, rotated, _) = keys();
    let tenant = TenantId::new();
    let rows = seed(&pool, &old, &[tenant], 4).await;
    // One value sealed under a key nobody configured, one copied from another row (wrong context).
    let stranger = Sealer::new(&[(7, &Sealer::generate_key())]).unwrap();
    let (unknown, copied) = (rows[1].0, rows[2].0);
    let mut tx = begin_tenant(&pool, tenant).await.unwrap();
    sqlx::query("UPDATE notes SET secret = $2 WHERE id = $1")
        .bind(unknown)
        .bind(stranger.seal(b"lost", &context(unknown)))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE notes SET secret = (SELECT secret FROM notes WHERE id = $2) WHERE id = $1")
        .bind(copied)
        .bind(rows[3].0)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let report = reseal(&pool, &rotated, NOTES, ResealOptions { batch_size: 2, max_batches: None }).await.unwrap();
    let c = &report.columns[0];
    assert_eq!((c.pending, c.resealed), (4, 2), "{report:?}");
    let mut failed = c.failed.clone();
    failed.sort();
    let mut expected = vec![unknown.to_string(), copied.to_string()];
    expected.sort();
    assert_eq!(failed, expected);
    assert_eq!(report.failed(), 2);
    let after = stored(&pool, &rows).await;
    for (id, sealed) in &after {
        let is_bad = *id == unknown || *id == copied;
        assert_eq!(sealed.starts_with("v2."), !is_bad, "{id}: {sealed}");
    }
    assert!(after.iter().any(|(id, v)| *id == unknown && v.starts_with("v7.")), "left untouched");

    // A rerun does not loop on them: it reports the same two and re-seals nothing more.
    let again = reseal(&pool, &rotated, NOTES, ResealOptions { batch_size: 1, max_batches: None }).await.unwrap();
    assert_eq!((again.resealed(), again.failed()), (0, 2));
}

#[tokio::test]
async fn a_declared_column_that_does_not_exist_is_an_error() {
    let db = TestDb::new().await;
    let (_, pool) = migrated(&db).await;
    let (_, rotated, _) = keys();
    for bad in
        [SealedColumn { column: "nope", ..NOTES[0] }, SealedColumn { table: "notes; DROP TABLE notes", ..NOTES[0] }]
    {
        assert!(reseal(&pool, &rotated, &[bad], ResealOptions::default()).await.is_err());
    }
}
