//! A migrated messaging schema in a fresh database, and principals to act as.

use nexus_kernel::{UserId, WorkspaceId};
use nexus_messaging::app::App;
use nexus_platform::identity::{Principal, PrincipalKind, Role};
use nexus_testkit::TestDb;

pub struct Book {
    pub app: App,
    _db: TestDb,
}

pub async fn book() -> Book {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let cfg = db.config("messaging");
    nexus_platform::db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
    let pool = nexus_platform::db::connect("messaging", &cfg).await.unwrap();
    Book { app: App { pool }, _db: db }
}

/// A signed-in member of `workspace` with `role`.
pub fn member(workspace: WorkspaceId, role: Role) -> Principal {
    Principal {
        user_id: UserId::new(),
        workspace_id: workspace,
        role,
        scopes: None,
        session_id: "test-session".into(),
        kind: PrincipalKind::User,
        token_id: "test-token".into(),
        expires_at: i64::MAX,
        locale: None,
        service: None,
    }
}
