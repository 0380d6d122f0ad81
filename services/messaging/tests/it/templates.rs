//! Template text written by content: a body that breaks the template rules is asked for once
//! more (a new generation), and refused when the second breaks them too; nothing is stored.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_kernel::{Error, ErrorKind, TenantId, WorkspaceId};
use nexus_messaging::app::bots::{AgentReply, BotAgent, TextAsk, Written};
use nexus_messaging::app::templates::TextBrief;
use nexus_messaging::app::whatsapp::WhatsApp;
use nexus_messaging::domain::templates::Category;
use nexus_platform::credits::Hold;
use nexus_platform::crypto::Sealer;
use nexus_platform::identity::Role;
use nexus_providers::whatsapp::LocalWhatsApp;
use uuid::Uuid;

use crate::support::{book, member};

/// Content's writer, answering the texts it was given in turn and keeping the keys it was
/// asked with.
#[derive(Default)]
struct Writer {
    texts: Mutex<VecDeque<&'static str>>,
    keys: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl BotAgent for Writer {
    async fn reply(&self, _: TenantId, _: &str, _: Uuid, _: &str, _: &str) -> Result<AgentReply, Error> {
        Err(Error::unavailable("test.no_agents"))
    }

    async fn as_service(
        &self,
        _: TenantId,
        call: futures::future::BoxFuture<'_, Result<Hold, Error>>,
    ) -> Result<Hold, Error> {
        call.await
    }

    async fn write_template(&self, _: TenantId, _: &TextAsk<'_>, key: &str) -> Result<Written, Error> {
        let mut keys = self.keys.lock().unwrap();
        keys.push(key.to_owned());
        let text = self.texts.lock().unwrap().pop_front().expect("asked more often than expected");
        Ok(Written {
            text: text.to_owned(),
            generation_id: format!("gen-{}", keys.len()),
            credits: 2,
            provider: "fake".into(),
        })
    }
}

/// The WhatsApp use cases over the book's database with `writer` as content, and a number of
/// the workspace to write for.
async fn whatsapp(pool: sqlx::PgPool, ws: WorkspaceId, writer: Arc<Writer>) -> (WhatsApp, Uuid) {
    let storage: nexus_platform::storage::StorageConfig = serde_json::from_value(serde_json::json!({
        "backend": "local", "root": std::env::temp_dir().join("nexus-templates-it"), "max_bytes": 1024,
        "download_timeout": "5s",
        "s3": {"bucket": "", "endpoint": "", "region": "", "access_key_id": "", "secret_access_key": "", "allow_http": false},
    }))
    .unwrap();
    let number = Uuid::now_v7();
    let mut tx = nexus_platform::db::tenant(&pool, TenantId::from_uuid(ws.as_uuid())).await.unwrap();
    sqlx::query(
        "INSERT INTO wa_numbers (id, tenant_id, waba_id, phone_number_id, display_phone_number, provider, token_sealed) \
         VALUES ($1, $2, '102290129340398', $3, '+1 555 078 3881', 'local', '')",
    )
    .bind(number)
    .bind(ws.as_uuid())
    // A connected phone number belongs to one workspace.
    .bind((number.as_u128() % 1_000_000_000_000_000).to_string())
    .execute(&mut *tx)
    .await
    .unwrap();
    nexus_platform::db::commit(tx).await.unwrap();
    let wa = WhatsApp {
        pool,
        sealer: Sealer::new(&[(1, &Sealer::generate_key())]).unwrap(),
        credits: Arc::new(
            nexus_platform::credits::GrpcCredits::new("http://127.0.0.1:1", Duration::from_secs(1)).unwrap(),
        ),
        meta: None,
        local: Arc::new(LocalWhatsApp::new()),
        allow_local: true,
        app_secret: String::new(),
        verify_token: String::new(),
        bus: None,
        stopping: tokio_util::sync::CancellationToken::new(),
        agents: Some(writer),
        storage: Arc::new(nexus_platform::storage::Storage::new(&storage).unwrap()),
    };
    (wa, number)
}

const BRIEF: TextBrief<'static> = TextBrief {
    purpose: "Tell customers their order shipped",
    category: Category::Utility,
    language: "en_US",
    idempotency_key: "",
};

/// Breaks the rules: content was asked for the name only, not a second placeholder.
const UNUSABLE: &str = "Hi {{1}}, order {{2}} shipped.";
const USABLE: &str = "  Hi {{1}}! Your order is on its way. ";

async fn stored_templates(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messaging.wa_templates").fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn an_unusable_text_is_asked_for_once_more_then_refused_and_nothing_is_stored() {
    let b = book().await;
    let admin = b.admin_pool().await;

    // Unusable, then usable: the second generation is the answer.
    let ws = WorkspaceId::new();
    let writer = Arc::new(Writer::default());
    writer.texts.lock().unwrap().extend([UNUSABLE, USABLE]);
    let (wa, number) = whatsapp(b.app.pool.clone(), ws, writer.clone()).await;
    let p = member(ws, Role::Owner);
    let written = wa.draft_template_text(&p, &number.to_string(), &BRIEF).await.unwrap();
    assert_eq!(written.body, "Hi {{1}}! Your order is on its way.");
    assert_eq!(written.body_examples.len(), 1);
    assert_eq!((written.generation_id.as_str(), written.provider.as_str()), ("gen-2", "fake"));
    let keys = writer.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].starts_with("whatsapp.template_text:"), "{keys:?}");
    assert_eq!(keys[1], format!("{}:again", keys[0]), "the second ask is a new generation");

    // Unusable twice: refused after the second ask, no third.
    let ws = WorkspaceId::new();
    let writer = Arc::new(Writer::default());
    writer.texts.lock().unwrap().extend([UNUSABLE, UNUSABLE, USABLE]);
    let (wa, number) = whatsapp(b.app.pool.clone(), ws, writer.clone()).await;
    let err = wa.draft_template_text(&member(ws, Role::Owner), &number.to_string(), &BRIEF).await.unwrap_err();
    assert_eq!((err.kind(), err.code()), (ErrorKind::Unavailable, "messaging.whatsapp_template_text_unusable"));
    assert_eq!(writer.keys.lock().unwrap().len(), 2);
    assert_eq!(writer.texts.lock().unwrap().len(), 1, "not asked a third time");

    // Drafting text stores nothing either way.
    assert_eq!(stored_templates(&admin).await, 0);
}
