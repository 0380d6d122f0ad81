//! The hashes a TikTok audience was last given, diffed against its segment by each refresh.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

/// The audience's next refresh generation (its rows found in the segment are stamped with it).
pub async fn next_generation(conn: &mut PgConnection, audience: Uuid) -> Result<Option<i64>, Error> {
    sqlx::query_scalar(
        "UPDATE audiences SET member_generation = member_generation + 1 WHERE id = $1 RETURNING member_generation",
    )
    .bind(audience)
    .fetch_optional(conn)
    .await
    .db()
}

/// Stamps `hashes` (distinct) as found in the segment by `generation`, adding the new ones;
/// the hashes the platform is not known to hold, which must be sent.
pub async fn mark_found(
    conn: &mut PgConnection,
    tenant: TenantId,
    audience: Uuid,
    kind: i16,
    generation: i64,
    hashes: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, Error> {
    sqlx::query_scalar(
        "INSERT INTO audience_members AS m (tenant_id, audience_id, kind, hash, generation) \
         SELECT $1, $2, $3, h, $4 FROM unnest($5::bytea[]) AS h \
         ON CONFLICT (audience_id, kind, hash) DO UPDATE SET generation = EXCLUDED.generation \
         RETURNING CASE WHEN m.held THEN NULL ELSE m.hash END",
    )
    .bind(tenant.as_uuid())
    .bind(audience)
    .bind(kind)
    .bind(generation)
    .bind(hashes)
    .fetch_all(conn)
    .await
    .db()
    .map(|rows: Vec<Option<Vec<u8>>>| rows.into_iter().flatten().collect())
}

/// Records whether the platform holds `hashes` (after an add succeeded, or before a removal is
/// sent).
pub async fn set_held(
    conn: &mut PgConnection,
    audience: Uuid,
    kind: i16,
    hashes: &[Vec<u8>],
    held: bool,
) -> Result<(), Error> {
    sqlx::query("UPDATE audience_members SET held = $4 WHERE audience_id = $1 AND kind = $2 AND hash = ANY($3)")
        .bind(audience)
        .bind(kind)
        .bind(hashes)
        .bind(held)
        .execute(conn)
        .await
        .db()
        .map(|_| ())
}

/// Up to `limit` hashes after `after` that the refresh `generation` did not find.
pub async fn stale_page(
    conn: &mut PgConnection,
    audience: Uuid,
    kind: i16,
    generation: i64,
    after: &[u8],
    limit: i64,
) -> Result<Vec<Vec<u8>>, Error> {
    sqlx::query_scalar(
        "SELECT hash FROM audience_members \
         WHERE audience_id = $1 AND kind = $2 AND hash > $3 AND generation < $4 ORDER BY hash LIMIT $5",
    )
    .bind(audience)
    .bind(kind)
    .bind(after)
    .bind(generation)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// Forgets hashes the platform no longer holds (unless a later refresh found them again).
pub async fn forget(
    conn: &mut PgConnection,
    audience: Uuid,
    kind: i16,
    generation: i64,
    hashes: &[Vec<u8>],
) -> Result<(), Error> {
    sqlx::query(
        "DELETE FROM audience_members WHERE audience_id = $1 AND kind = $2 AND hash = ANY($3) AND generation < $4",
    )
    .bind(audience)
    .bind(kind)
    .bind(hashes)
    .bind(generation)
    .execute(conn)
    .await
    .db()
    .map(|_| ())
}

/// Forgets every hash of an audience (deleted, or its first upload failed).
pub async fn forget_all(conn: &mut PgConnection, audience: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM audience_members WHERE audience_id = $1")
        .bind(audience)
        .execute(conn)
        .await
        .db()
        .map(|_| ())
}
