use sqlx::PgPool;
use sqlx::migrate::Migrator;

use nexus_platform::ServiceDef;
use nexus_platform::config::DatabaseConfig;
use nexus_testkit::TestDb;

pub static MIGRATIONS: Migrator = sqlx::migrate!("./tests/fixtures/migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "fixture",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.ops.v1.DeadLetters"],
    sealed: &[],
};

/// A migrated fixture schema and a pool connected as its service role.
pub async fn migrated(db: &TestDb) -> (DatabaseConfig, PgPool) {
    nexus_testkit::init_tracing();
    let cfg = db.config("fixture");
    nexus_platform::db::migrate("fixture", &cfg, Some(&MIGRATIONS)).await.expect("migrate");
    let pool = nexus_platform::db::connect("fixture", &cfg).await.expect("pool");
    (cfg, pool)
}
