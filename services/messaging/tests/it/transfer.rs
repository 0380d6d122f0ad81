//! CSV import and export of contacts through the use cases, against real Postgres.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use nexus_kernel::{Error, ErrorKind, Locale, PageRequest, WorkspaceId};
use nexus_messaging::app::App;
use nexus_messaging::app::transfer::{ConsentOption, ImportErrorView, ImportOptions};
use nexus_messaging::domain::contact::{ContactInput, ContactQuery};
use nexus_messaging::domain::import::{Import, ImportStatus, Limits};
use nexus_platform::identity::{Principal, Role};
use serde_json::Map;

use crate::support::{book, member};

/// The file in chunks of `size` bytes, cut anywhere (inside rows, quotes and UTF-8 sequences).
fn chunks(csv: &str, size: usize) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    let bytes = Bytes::from(csv.to_owned());
    let parts: Vec<Result<Bytes, Error>> =
        (0..bytes.len()).step_by(size).map(|at| Ok(bytes.slice(at..(at + size).min(bytes.len())))).collect();
    futures::stream::iter(parts)
}

fn mapping(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(h, t)| ((*h).to_owned(), (*t).to_owned())).collect()
}

fn with_locale(mut p: Principal, l: Locale) -> Principal {
    p.locale = Some(l);
    p
}

async fn import(app: &App, p: &Principal, options: ImportOptions, csv: &str) -> Result<Import, Error> {
    app.import_contacts(p, options, chunks(csv, 8 * 1024), Limits::default()).await
}

/// Every refused row of an import, all pages.
async fn all_errors(app: &App, p: &Principal, id: &str) -> Vec<ImportErrorView> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = app.import_errors(p, id, &PageRequest::new(Some(100), cursor).unwrap()).await.unwrap();
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// A count in `ws` as that workspace sees it (RLS applies).
async fn count(app: &App, ws: WorkspaceId, sql: &str) -> i64 {
    let mut tx = nexus_platform::db::tenant(&app.pool, ws).await.unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    n
}

async fn imported_events(app: &App, ws: WorkspaceId) -> i64 {
    let mut tx = nexus_platform::db::system(&app.pool).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE subject = 'nexus.messaging.contacts.imported' AND tenant_id = $1",
    )
    .bind(ws.as_uuid())
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn define_fields(app: &App, p: &Principal) {
    app.define_field(p, "tier", "Tier", "choice", &["Gold".into(), "Silver".into()]).await.unwrap();
    app.define_field(p, "spend", "Spend", "number", &[]).await.unwrap();
    app.define_field(p, "since", "Customer since", "date", &[]).await.unwrap();
    app.define_field(p, "notes", "Notes", "text", &[]).await.unwrap();
}

/// What kind of mistake a generated bad row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    Phone,
    Email,
    Choice,
    Duplicate,
}

/// 10,000 rows; every 200th is bad, cycling through the four mistakes. Answers the file and the
/// bad rows by line (the header is line 1).
fn ten_thousand() -> (String, Vec<(i64, Bad)>) {
    let mut csv = String::from("Full Name,Mobile,E-mail,Tier,Spend,Labels,Ignored\n");
    let mut bad = Vec::new();
    for i in 0..10_000u32 {
        let line = i64::from(i) + 2;
        let mut phone = format!("+55 11 98{i:07}");
        let mut email = format!("person{i}@example.com");
        let mut tier = if i % 3 == 0 { "Gold" } else { "Silver" };
        if i % 200 == 199 {
            let kind = [Bad::Phone, Bad::Email, Bad::Choice, Bad::Duplicate][(i as usize / 200) % 4];
            match kind {
                Bad::Phone => phone = "12345".into(),
                Bad::Email => email = "not-an-email".into(),
                Bad::Choice => tier = "Bronze",
                // The same person as the row before, written another way.
                Bad::Duplicate => {
                    phone = format!("(11) 98{:03}-{:04}", (i - 1) / 10_000, (i - 1) % 10_000);
                    email = format!("other{i}@example.com");
                }
            }
            bad.push((line, kind));
        }
        csv.push_str(&format!("\"Silva, Ana {i}\",{phone},{email},{tier},{}.5,vip; lote-{},x\n", i % 1000, i % 7));
    }
    (csv, bad)
}

fn ten_thousand_mapping() -> HashMap<String, String> {
    mapping(&[
        ("Full Name", "name"),
        ("Mobile", "phone"),
        ("E-mail", "email"),
        ("Tier", "fields.tier"),
        ("Spend", "fields.spend"),
        ("Labels", "tags"),
    ])
}

#[tokio::test]
async fn ten_thousand_rows_with_fifty_bad_ones_import_and_every_bad_row_is_named() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let owner = with_locale(member(ws, Role::Owner), Locale::Es);
    b.app.set_default_region(&owner, "BR").await.unwrap();
    define_fields(&b.app, &owner).await;
    let (csv, bad) = ten_thousand();
    assert_eq!(bad.len(), 50);

    // The dry run reports what would happen and writes no contact.
    let options = ImportOptions { mapping: ten_thousand_mapping(), dry_run: true, ..Default::default() };
    let dry = import(&b.app, &owner, options, &csv).await.unwrap();
    assert_eq!(
        (dry.status, dry.dry_run, dry.total_rows, dry.created, dry.updated, dry.failed),
        (ImportStatus::Succeeded, true, 10_000, 9_950, 0, 50)
    );
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 0);
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contact_identities").await, 0);
    assert_eq!(imported_events(&b.app, ws).await, 0);
    let dry_errors = all_errors(&b.app, &owner, &dry.id.to_string()).await;

    let options = ImportOptions { mapping: ten_thousand_mapping(), ..Default::default() };
    let started = Instant::now();
    let done = import(&b.app, &owner, options, &csv).await.unwrap();
    let elapsed = started.elapsed();
    eprintln!("10,000-row import took {elapsed:?}");
    assert_eq!(
        (done.status, done.dry_run, done.total_rows, done.created, done.updated, done.failed),
        (ImportStatus::Succeeded, false, 10_000, 9_950, 0, 50)
    );
    assert!(done.finished_at.is_some());
    assert!(elapsed < Duration::from_secs(30), "10,000 rows took {elapsed:?}");
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 9_950);
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts WHERE source = 'import'").await, 9_950);
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts WHERE tags @> '{vip}'").await, 9_950);
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts WHERE fields->>'spend' = '12.5'").await, 10);
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contact_identities WHERE kind = 'email'").await, 9_950);
    // One summary event, not one per row.
    assert_eq!(imported_events(&b.app, ws).await, 1);

    // Every bad row, by line, field and reason in the user's language (Spanish here).
    let errors = all_errors(&b.app, &owner, &done.id.to_string()).await;
    let got: Vec<(i64, &str, &str)> = errors.iter().map(|e| (e.line, e.field.as_str(), e.code.as_str())).collect();
    let want: Vec<(i64, &str, &str)> = bad
        .iter()
        .map(|(line, kind)| match kind {
            Bad::Phone => (*line, "phone", "messaging.invalid_phone"),
            Bad::Email => (*line, "email", "messaging.invalid_email"),
            Bad::Choice => (*line, "fields.tier", "messaging.invalid_field_value"),
            Bad::Duplicate => (*line, "phone", "messaging.duplicate_row"),
        })
        .collect();
    assert_eq!(got, want);
    let phone = errors.iter().find(|e| e.code == "messaging.invalid_phone").unwrap();
    assert_eq!(
        phone.message,
        "Este número de teléfono no es válido. Incluye el código de país o define la región predeterminada."
    );
    let choice = errors.iter().find(|e| e.code == "messaging.invalid_field_value").unwrap();
    assert_eq!(choice.message, "Este valor no corresponde al tipo del campo personalizado.");
    // The dry run named the same rows.
    let dry_got: Vec<(i64, &str, &str)> =
        dry_errors.iter().map(|e| (e.line, e.field.as_str(), e.code.as_str())).collect();
    assert_eq!(dry_got, want);

    // In Arabic for an Arabic-speaking user; the duplicate names the earlier line.
    let ar = with_locale(member(ws, Role::Viewer), Locale::Ar);
    let errors = all_errors(&b.app, &ar, &done.id.to_string()).await;
    let dup = errors.iter().find(|e| e.code == "messaging.duplicate_row").unwrap();
    assert_eq!(dup.message, format!("هذا الصف هو الشخص نفسه في السطر {} من الملف.", dup.line - 1));
    let email = errors.iter().find(|e| e.code == "messaging.invalid_email").unwrap();
    assert_eq!(email.message, "عنوان البريد الإلكتروني غير صالح.");
}

#[tokio::test]
async fn rows_matching_the_book_update_it_and_options_apply_to_every_contact() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let m = member(ws, Role::Member);
    define_fields(&b.app, &m).await;
    let tags = vec!["old".to_owned()];
    let existing = ContactInput {
        name: Some("Ana"),
        phone: Some("+5511987654321"),
        tags: Some(&tags),
        stage: Some("customer"),
        ..Default::default()
    };
    let ana = b.app.create_contact(&m, &existing, &Map::new(), "").await.unwrap();
    let lead = ContactInput { name: Some("Bruno"), email: Some("bruno@example.com"), ..Default::default() };
    let bruno = b.app.create_contact(&m, &lead, &Map::new(), "").await.unwrap();
    let dora = ContactInput { name: Some("Dora"), phone: Some("+5511955554444"), ..Default::default() };
    b.app.create_contact(&m, &dora, &Map::new(), "").await.unwrap();
    let eva = ContactInput { name: Some("Eva"), email: Some("eva@example.com"), ..Default::default() };
    b.app.create_contact(&m, &eva, &Map::new(), "").await.unwrap();

    let csv = "name,phone,email,tier\n\
               Ana Silva,+55 11 98765-4321,ana@example.com,Gold\n\
               ,,BRUNO@example.com,Silver\n\
               Carla,+5511912345678,carla@example.com,\n\
               Mixed,+5511955554444,eva@example.com,\n";
    let options = ImportOptions {
        mapping: mapping(&[("name", "name"), ("phone", "phone"), ("email", "email"), ("tier", "fields.tier")]),
        tags: vec!["Spring Fair".into()],
        consent: Some(ConsentOption {
            channel: "whatsapp".into(),
            purpose: "marketing".into(),
            proof: "Signed up at the spring fair".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let done = import(&b.app, &m, options, csv).await.unwrap();
    assert_eq!((done.total_rows, done.created, done.updated, done.failed), (4, 1, 2, 1));
    let errors = all_errors(&b.app, &m, &done.id.to_string()).await;
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].code.as_str()), (5, "messaging.import_conflict"));
    assert_eq!(
        errors[0].message,
        "The phone number and the email address of this row belong to two different contacts; merge them first."
    );

    let ana = b.app.contact(&m, &ana.id.to_string()).await.unwrap();
    assert_eq!(ana.name, "Ana Silva");
    assert_eq!(ana.email.as_deref(), Some("ana@example.com"));
    assert_eq!(ana.tags, vec!["old", "spring fair"], "tags are added, not replaced");
    assert_eq!(ana.stage.as_str(), "customer", "an absent cell keeps the stored value");
    assert_eq!(ana.fields.get("tier"), Some(&serde_json::json!("Gold")));
    let bruno = b.app.contact(&m, &bruno.id.to_string()).await.unwrap();
    assert_eq!((bruno.name.as_str(), bruno.fields.get("tier")), ("Bruno", Some(&serde_json::json!("Silver"))));
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 5);
    assert_eq!(
        count(
            &b.app,
            ws,
            "SELECT count(*) FROM consents WHERE channel = 'whatsapp' AND status = 'granted' AND source = 'import'"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn a_bad_mapping_is_refused_before_any_row() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let m = member(ws, Role::Member);
    define_fields(&b.app, &m).await;
    for (pairs, code) in [
        (vec![("Name", "name"), ("Colour", "fields.colour")], "messaging.unknown_field"),
        (vec![("Name", "name"), ("Colour", "favourite_colour")], "messaging.unknown_mapping_target"),
        (vec![("Name", "name"), ("Other", "name")], "messaging.duplicate_mapping"),
        (vec![("Tier", "fields.tier")], "messaging.mapping_needs_identity"),
    ] {
        let polled = Arc::new(AtomicBool::new(false));
        let seen = polled.clone();
        let data = futures::stream::poll_fn(move |_| {
            seen.store(true, Ordering::SeqCst);
            std::task::Poll::Ready(Some(Ok(Bytes::from_static(b"Name,Colour\nAna,red\n"))))
        });
        let options = ImportOptions { mapping: mapping(&pairs), ..Default::default() };
        let e = b.app.import_contacts(&m, options, data, Limits::default()).await.unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::InvalidArgument, code), "{pairs:?}");
        assert!(!polled.load(Ordering::SeqCst), "{pairs:?}: the file was read");
    }
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM imports").await, 0);

    // A mapped header the file lacks: refused after the header, before any row is taken.
    let options = ImportOptions { mapping: mapping(&[("Phone Number", "phone")]), ..Default::default() };
    let e = import(&b.app, &m, options, "name,phone\nAna,+5511987654321\n").await.unwrap_err();
    assert_eq!((e.code(), e.param("header")), ("messaging.mapping_header_missing", Some("Phone Number")));
    let failed = b.app.import(&m, e.param("import_id").unwrap()).await.unwrap();
    assert_eq!(
        (failed.status, failed.error_code.as_deref()),
        (ImportStatus::Failed, Some("messaging.mapping_header_missing"))
    );
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 0);

    // Viewers cannot import.
    let viewer = member(ws, Role::Viewer);
    let e = import(&b.app, &viewer, ImportOptions::default(), "name\nAna\n").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn oversized_input_is_refused_and_nothing_is_written() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let m = member(ws, Role::Member);
    let mut csv = String::from("name,email\n");
    for i in 0..2_000 {
        csv.push_str(&format!("Person {i},p{i}@example.com\n"));
    }
    // More bytes than allowed: the first batches were written, and are rolled back.
    let small = Limits { max_bytes: 40_000, ..Limits::default() };
    let e = b.app.import_contacts(&m, ImportOptions::default(), chunks(&csv, 1024), small).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.code(), e.param("max")),
        (ErrorKind::PayloadTooLarge, "messaging.import_too_large", Some("40000"))
    );
    let failed = b.app.import(&m, e.param("import_id").unwrap()).await.unwrap();
    assert_eq!(
        (failed.status, failed.created, failed.error_code.as_deref()),
        (ImportStatus::Failed, 0, Some("messaging.import_too_large"))
    );
    assert!(failed.finished_at.is_some());
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 0);

    // More rows than allowed.
    let few = Limits { max_rows: 1_500, ..Limits::default() };
    let e = b.app.import_contacts(&m, ImportOptions::default(), chunks(&csv, 4096), few).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::PayloadTooLarge, "messaging.import_too_many_rows"));
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 0);
    assert_eq!(imported_events(&b.app, ws).await, 0);

    // An upload cut off half-way.
    let cut =
        chunks(&csv, 4096).take(3).chain(futures::stream::iter([Err(Error::invalid("messaging.import_interrupted"))]));
    let e = b.app.import_contacts(&m, ImportOptions::default(), cut, Limits::default()).await.unwrap_err();
    assert_eq!(e.code(), "messaging.import_interrupted");
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 0);

    // No header at all.
    let e = import(&b.app, &m, ImportOptions::default(), "").await.unwrap_err();
    assert_eq!(e.code(), "messaging.import_empty");
}

#[tokio::test]
async fn header_only_files_and_quoted_cells_with_commas_and_newlines() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let m = member(ws, Role::Member);
    define_fields(&b.app, &m).await;

    let empty = import(&b.app, &m, ImportOptions::default(), "name,phone,email\r\n").await.unwrap();
    assert_eq!((empty.status, empty.total_rows, empty.created, empty.failed), (ImportStatus::Succeeded, 0, 0, 0));

    // A UTF-8 BOM, CRLF line ends, quoted commas, quotes and line breaks, a blank line; line
    // numbers count physical lines, so the bad row after a two-line cell and a blank line is line 5.
    let csv = "\u{feff}name,phone,email,fields.notes\r\n\
               \"Silva, Ana\",+5511987654321,ana@example.com,\"first line\nsecond, line\"\r\n\
               \r\n\
               Bob,12,bob@example.com,x\r\n\
               \"Quote \"\"Q\"\" Person\",,q@example.com,\r\n\
               Zoë Quill,,zoe@example.com,\"שלום, عالم\"\r\n";
    let done = import(&b.app, &m, ImportOptions::default(), csv).await.unwrap();
    assert_eq!((done.total_rows, done.created, done.failed), (4, 3, 1));
    let errors = all_errors(&b.app, &m, &done.id.to_string()).await;
    assert_eq!(
        errors.iter().map(|e| (e.line, e.field.as_str(), e.code.as_str())).collect::<Vec<_>>(),
        vec![(5, "phone", "messaging.invalid_phone")]
    );
    let found = b
        .app
        .search_contacts(&m, ContactQuery::new("silva", &[], "").unwrap(), &Map::new(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].name, "Silva, Ana");
    assert_eq!(found.items[0].fields.get("notes"), Some(&serde_json::json!("first line\nsecond, line")));
    let q = b
        .app
        .search_contacts(&m, ContactQuery::new("q@example", &[], "").unwrap(), &Map::new(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(q.items[0].name, "Quote \"Q\" Person");
}

#[tokio::test]
async fn progress_shows_while_an_import_runs() {
    let b = book().await;
    let ws = WorkspaceId::new();
    let m = member(ws, Role::Member);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Error>>(4);
    let app = b.app.clone();
    let p = m.clone();
    let running = tokio::spawn(async move {
        app.import_contacts(
            &p,
            ImportOptions::default(),
            tokio_stream::wrappers::ReceiverStream::new(rx),
            Limits::default(),
        )
        .await
    });
    let mut first = String::from("name,email\n");
    for i in 0..700 {
        first.push_str(&format!("P{i},p{i}@example.com\n"));
    }
    tx.send(Ok(Bytes::from(first))).await.unwrap();
    // The first batch of 500 is counted while the upload is still open.
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let id: Option<uuid::Uuid> = {
            let mut c = nexus_platform::db::tenant(&b.app.pool, ws).await.unwrap();
            let id = sqlx::query_scalar("SELECT id FROM imports").fetch_optional(&mut *c).await.unwrap();
            c.commit().await.unwrap();
            id
        };
        if let Some(id) = id {
            let now = b.app.import(&m, &id.to_string()).await.unwrap();
            if now.total_rows >= 500 {
                break now;
            }
        }
        assert!(Instant::now() < deadline, "no progress shown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((seen.status, seen.total_rows, seen.created), (ImportStatus::Running, 500, 500));
    // Not committed yet: the book does not show them until the import succeeds.
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 0);
    tx.send(Ok(Bytes::from_static(b"Last,last@example.com\n"))).await.unwrap();
    drop(tx);
    let done = running.await.unwrap().unwrap();
    assert_eq!((done.status, done.total_rows, done.created), (ImportStatus::Succeeded, 701, 701));
    assert_eq!(count(&b.app, ws, "SELECT count(*) FROM contacts").await, 701);
}

#[tokio::test]
async fn another_workspace_cannot_read_an_import() {
    let b = book().await;
    let a = member(WorkspaceId::new(), Role::Owner);
    let done = import(&b.app, &a, ImportOptions::default(), "name,phone\nAna,12\nBea,+5511987654321\n").await.unwrap();
    assert_eq!((done.created, done.failed), (1, 1));
    let other = member(WorkspaceId::new(), Role::Owner);
    let id = done.id.to_string();
    let e = b.app.import(&other, &id).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.import_not_found"));
    let e = b.app.import_errors(&other, &id, &PageRequest::default()).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.import_not_found"));
    assert_eq!(b.app.import(&other, "not-an-id").await.unwrap_err().code(), "messaging.import_not_found");
    assert_eq!(count(&b.app, other.workspace_id, "SELECT count(*) FROM import_errors").await, 0);
    assert_eq!(count(&b.app, other.workspace_id, "SELECT count(*) FROM contacts").await, 0);
    // Its export holds only the header.
    let out = export(&b.app, &other).await;
    assert_eq!(out.lines().count(), 1);
    assert_eq!(all_errors(&b.app, &a, &id).await.len(), 1);
}

async fn export(app: &App, p: &Principal) -> String {
    let stream = app.export_contacts(p, ContactQuery::default()).await.unwrap();
    let parts: Vec<Bytes> = stream.map(Result::unwrap).collect().await;
    assert!(parts.iter().all(|p| p.len() < 1024 * 1024), "chunks stay small");
    String::from_utf8(parts.concat()).unwrap()
}

/// A contact's attributes that an export carries, for comparing two books.
fn essence(c: &nexus_messaging::domain::contact::Contact) -> String {
    format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{}|{}|{:?}|{}",
        c.name,
        c.phone,
        c.email,
        c.language,
        c.tags,
        c.stage.as_str(),
        c.source,
        c.owner_id,
        serde_json::Value::Object(c.fields.clone())
    )
}

async fn everyone(app: &App, p: &Principal) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .search_contacts(p, ContactQuery::default(), &Map::new(), &PageRequest::new(Some(100), cursor).unwrap())
            .await
            .unwrap();
        out.extend(page.items.iter().map(essence));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn export_then_import_into_a_fresh_workspace_gives_the_same_contacts() {
    let b = book().await;
    let a = member(WorkspaceId::new(), Role::Owner);
    define_fields(&b.app, &a).await;
    // The contacts' owner is a member of both workspaces (an owner must be a current member).
    let owner = member(a.workspace_id, Role::Member);
    b.join(&owner).await;
    let owner_id = owner.user_id.as_uuid();
    // Cells a spreadsheet would run as formulas, and enough rows for several export chunks.
    let mut csv = String::from(
        "name,phone,email,language,tags,stage,source,owner_id,fields.tier,fields.spend,fields.since,fields.notes\n",
    );
    csv.push_str(&format!(
        "\"=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")\",+5511987654321,eq@example.com,pt,vip; black friday,customer,page:spring,{owner_id},Gold,1200.50,2026-02-28,\"-2+3\"\n"
    ));
    // A value that really starts with a quote before `=` is written with the quote doubled.
    csv.push_str("@SUM(A1),,at@example.com,ar,,lead,,,,-5,,''=already quoted\n");
    csv.push_str("+plus,,plus@example.com,he,,qualified,,,Silver,,,\"\ttabbed\"\n");
    for i in 0..1_200 {
        csv.push_str(&format!("Person {i},+55 11 97{i:07},p{i}@example.com,es,t{},lead,fair,,,{i},,\n", i % 5));
    }
    let done = import(&b.app, &a, ImportOptions::default(), &csv).await.unwrap();
    assert_eq!((done.created, done.failed), (1_203, 0), "{:?}", all_errors(&b.app, &a, &done.id.to_string()).await);

    let out = export(&b.app, &a).await;
    assert_eq!(
        out.lines().next().unwrap(),
        "name,phone,email,language,tags,stage,source,owner_id,fields.tier,fields.spend,fields.since,fields.notes"
    );
    assert!(out.contains("\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")\""), "formulas are escaped");
    assert!(
        out.contains("'@SUM(A1)") && out.contains("'+plus") && out.contains(",'-5,") && out.contains("'+5511987654321")
    );
    assert!(out.contains("''=already quoted"), "a quote before a formula is kept through the round trip");
    // Every cell as read back by a CSV reader starts safely.
    let mut reader = csv::ReaderBuilder::new().from_reader(out.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "unsafe cell {cell:?}");
        }
    }

    let fresh = member(WorkspaceId::new(), Role::Owner);
    define_fields(&b.app, &fresh).await;
    b.join(&Principal { workspace_id: fresh.workspace_id, ..owner.clone() }).await;
    let again = import(&b.app, &fresh, ImportOptions::default(), &out).await.unwrap();
    assert_eq!((again.created, again.updated, again.failed), (1_203, 0, 0));
    let (left, right) = (everyone(&b.app, &a).await, everyone(&b.app, &fresh).await);
    assert_eq!(left.len(), 1_203);
    assert_eq!(left, right);
    assert!(left.iter().any(|c| c.starts_with("=HYPERLINK(") && c.contains("page:spring")));
    assert!(left.iter().any(|c| c.starts_with("@SUM(A1)|") && c.contains("'=already quoted")));
}

/// The gRPC adapter: options first, then the bytes; the reasons in the request's language;
/// export as a stream of chunks.
#[tokio::test]
async fn import_and_export_over_grpc() {
    use nexus_proto::nexus::messaging::v1 as pb;
    use nexus_proto::nexus::messaging::v1::contact_transfer_client::ContactTransferClient;
    use nexus_testkit::identity::authed;

    let svc = crate::support::Service::start().await;
    let ws = WorkspaceId::new();
    let token = svc.issuer.user_token(ws, Role::Member);
    let channel = tonic::transport::Endpoint::from_shared(svc.running.grpc_url()).unwrap().connect().await.unwrap();
    let mut client = ContactTransferClient::new(channel);

    let csv = "Nome,Telefone\nAna,+5511987654321\nBia,12\n";
    let (head, tail) = csv.split_at(20);
    let chunks = vec![
        pb::ImportChunk {
            part: Some(pb::import_chunk::Part::Options(pb::ImportOptions {
                mapping: [("Nome".to_owned(), "name".to_owned()), ("Telefone".to_owned(), "phone".to_owned())].into(),
                tags: vec!["feira".into()],
                ..Default::default()
            })),
        },
        pb::ImportChunk { part: Some(pb::import_chunk::Part::Data(head.as_bytes().to_vec())) },
        pb::ImportChunk { part: Some(pb::import_chunk::Part::Data(tail.as_bytes().to_vec())) },
    ];
    // Without the end marker the upload is taken as cut off: nothing is imported.
    let cut = client.import_contacts(authed(futures::stream::iter(chunks.clone()), &token)).await.unwrap_err();
    assert_eq!(cut.code(), tonic::Code::InvalidArgument, "{cut:?}");
    let mut chunks = chunks;
    chunks.push(pb::ImportChunk { part: Some(pb::import_chunk::Part::End(true)) });
    let done = client.import_contacts(authed(futures::stream::iter(chunks), &token)).await.unwrap().into_inner();
    assert_eq!((done.status.as_str(), done.total_rows, done.created, done.failed), ("succeeded", 2, 1, 1));
    let got = client.get_import(authed(pb::GetByIdRequest { id: done.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(got, done);

    let mut req = authed(pb::ListImportErrorsRequest { import_id: done.id.clone(), page: None }, &token);
    req.metadata_mut().insert("x-nexus-locale", "pt".parse().unwrap());
    let errors = client.list_import_errors(req).await.unwrap().into_inner();
    assert_eq!(errors.items.len(), 1);
    let e = &errors.items[0];
    assert_eq!((e.line, e.field.as_str(), e.code.as_str()), (3, "phone", "messaging.invalid_phone"));
    assert_eq!(e.message, nexus_i18n::error_message(Locale::Pt, "messaging.invalid_phone", &[], 400));
    assert_ne!(e.message, nexus_i18n::error_message(Locale::En, "messaging.invalid_phone", &[], 400));

    // Data before the options is refused.
    let data_first = vec![pb::ImportChunk { part: Some(pb::import_chunk::Part::Data(b"name\nAna\n".to_vec())) }];
    let status = client.import_contacts(authed(futures::stream::iter(data_first), &token)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Another workspace's token does not reach this import.
    let other = svc.issuer.user_token(WorkspaceId::new(), Role::Owner);
    let status = client.get_import(authed(pb::GetByIdRequest { id: done.id.clone() }, &other)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    let mut stream = client.export_contacts(authed(pb::ExportRequest::default(), &token)).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        out.extend(chunk.data);
    }
    let out = String::from_utf8(out).unwrap();
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("name,phone,email,language,tags,stage,source,owner_id"));
    assert_eq!(lines.next().unwrap(), "Ana,'+5511987654321,,,feira,lead,import,");
    assert_eq!(lines.next(), None);
}

#[tokio::test]
async fn a_segment_exports_only_its_contacts() {
    let b = book().await;
    let p = member(WorkspaceId::new(), Role::Member);
    let mut csv = String::from("name,email,tags,stage\n");
    for i in 0..1_100 {
        let tags = if i % 2 == 0 { "vip" } else { "" };
        let stage = if i % 4 == 0 { "customer" } else { "lead" };
        csv.push_str(&format!("P{i},p{i}@example.com,{tags},{stage}\n"));
    }
    let done = import(&b.app, &p, ImportOptions::default(), &csv).await.unwrap();
    assert_eq!(done.created, 1_100);
    let seg = b.app.save_segment(&p, "", "VIP", &serde_json::json!({"tag": "vip"}).to_string()).await.unwrap();
    let by_segment = |q: ContactQuery| {
        let app = b.app.clone();
        let p = p.clone();
        async move {
            let stream = app.export_contacts(&p, q).await.unwrap();
            let parts: Vec<Bytes> = stream.map(Result::unwrap).collect().await;
            String::from_utf8(parts.concat()).unwrap()
        }
    };
    // Over several chunks (pages of 500), every row a VIP, none missing.
    let out = by_segment(ContactQuery { segment_id: Some(seg.id.to_string()), ..Default::default() }).await;
    assert_eq!(out.lines().count(), 1 + 550);
    assert!(out.lines().skip(1).all(|l| l.contains(",vip,")), "{out}");
    // A segment and a search narrow together.
    let q = ContactQuery { segment_id: Some(seg.id.to_string()), ..ContactQuery::new("", &[], "customer").unwrap() };
    assert_eq!(by_segment(q).await.lines().count(), 1 + 275);
    // A segment of another workspace, or no segment, is not found.
    let other = member(WorkspaceId::new(), Role::Owner);
    let q = ContactQuery { segment_id: Some(seg.id.to_string()), ..Default::default() };
    let e = b.app.export_contacts(&other, q).await.err().unwrap();
    assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "messaging.segment_not_found"));
}

#[tokio::test]
async fn imported_owners_must_be_current_members() {
    let b = book().await;
    let a = member(WorkspaceId::new(), Role::Member);
    let bia = member(a.workspace_id, Role::Member);
    b.join(&bia).await;
    // A member of another workspace only.
    let carl = member(WorkspaceId::new(), Role::Member);
    b.join(&carl).await;
    let stranger = uuid::Uuid::now_v7();
    let csv = format!(
        "name,owner_id\nMine,{}\nBia's,{}\nCarl's,{}\nNobody's,{stranger}\nUnowned,\n",
        a.user_id.as_uuid(),
        bia.user_id.as_uuid(),
        carl.user_id.as_uuid()
    );
    let done = import(&b.app, &a, ImportOptions::default(), &csv).await.unwrap();
    assert_eq!((done.total_rows, done.created, done.failed), (5, 3, 2));
    let errors = all_errors(&b.app, &a, &done.id.to_string()).await;
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.field.as_str(), e.code.as_str())).collect();
    assert_eq!(got, vec![(4, "owner_id", "messaging.not_a_member"), (5, "owner_id", "messaging.not_a_member")]);
    assert!(!errors[0].message.is_empty() && !errors[0].message.contains("messaging"), "{:?}", errors[0]);
}

#[tokio::test]
async fn imports_left_running_past_their_deadline_are_marked_failed_as_interrupted() {
    let b = book().await;
    let a = member(WorkspaceId::new(), Role::Member);
    let other = member(WorkspaceId::new(), Role::Member);
    // Three records a process left `running`: two long ago (in two workspaces), one just now.
    let mut ids = Vec::new();
    for p in [&a, &other, &a] {
        let mut tx = nexus_platform::db::tenant(&b.app.pool, p.workspace_id).await.unwrap();
        let id = uuid::Uuid::now_v7();
        let empty = serde_json::json!({});
        nexus_messaging::repo::imports::insert(&mut tx, p.workspace_id, id, false, &empty, &empty, &p.actor())
            .await
            .unwrap();
        nexus_platform::db::commit(tx).await.unwrap();
        ids.push(id);
    }
    let admin = b.admin_pool().await;
    sqlx::query("UPDATE messaging.imports SET created_at = now() - interval '2 hours' WHERE id = ANY($1)")
        .bind(&ids[..2])
        .execute(&admin)
        .await
        .unwrap();

    let deadline = Duration::from_secs(30 * 60);
    assert_eq!(b.app.fail_stalled_imports(deadline).await.unwrap(), 2);
    // Nothing left to do the second time.
    assert_eq!(b.app.fail_stalled_imports(deadline).await.unwrap(), 0);

    for (p, id) in [(&a, ids[0]), (&other, ids[1])] {
        let got = b.app.import(p, &id.to_string()).await.unwrap();
        assert_eq!(got.status, ImportStatus::Failed);
        assert_eq!(got.error_code.as_deref(), Some("messaging.import_abandoned"));
        assert!(got.finished_at.is_some());
    }
    let recent = b.app.import(&a, &ids[2].to_string()).await.unwrap();
    assert_eq!((recent.status, recent.error_code), (ImportStatus::Running, None));
    // The reason reads as a sentence in the caller's language.
    let text = nexus_i18n::error_message(Locale::Es, "messaging.import_abandoned", &[], 409);
    assert!(text.contains("interrumpió"), "{text}");
}

/// `contact.created` events in the outbox for `ws`, with their decoded payloads.
async fn created_events(app: &App, ws: WorkspaceId) -> Vec<nexus_proto::events::ContactCreated> {
    use prost::Message;
    let mut tx = nexus_platform::db::system(&app.pool).await.unwrap();
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE subject = 'nexus.messaging.contact.created' AND tenant_id = $1 ORDER BY seq",
    )
    .bind(ws.as_uuid())
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows.iter().map(|p| nexus_proto::events::ContactCreated::decode(p.as_slice()).unwrap()).collect()
}

#[tokio::test]
async fn each_imported_contact_is_announced_as_created_and_a_dry_run_announces_none() {
    let b = book().await;
    let a = member(WorkspaceId::new(), Role::Member);
    let mut csv = String::from("name,email,stage\n");
    for i in 0..100 {
        csv.push_str(&format!("Person {i},p{i}@example.com,{}\n", if i % 2 == 0 { "customer" } else { "" }));
    }
    // Two endpoints of the workspace: one takes contact events, the other only deals.
    let admin = b.admin_pool().await;
    let endpoints = [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()];
    for (id, types) in endpoints.iter().zip(["{contact.*}", "{deal.created}"]) {
        sqlx::query(
            "INSERT INTO messaging.webhook_endpoints (id, tenant_id, url, event_types, secret_sealed) \
             VALUES ($1, $2, 'https://hooks.example.com/in', $3::text[], 'sealed')",
        )
        .bind(id)
        .bind(a.workspace_id.as_uuid())
        .bind(types)
        .execute(&admin)
        .await
        .unwrap();
    }
    let messages = |sql: &'static str| {
        let admin = admin.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).bind(a.workspace_id.as_uuid()).fetch_one(&admin).await.unwrap() }
    };
    const MESSAGES: &str =
        "SELECT count(*) FROM messaging.webhook_messages WHERE tenant_id = $1 AND event_type = 'contact.created'";
    const DELIVERIES: &str = "SELECT count(*) FROM messaging.webhook_deliveries WHERE tenant_id = $1";

    let dry = import(&b.app, &a, ImportOptions { dry_run: true, ..Default::default() }, &csv).await.unwrap();
    assert_eq!(dry.created, 100);
    assert!(created_events(&b.app, a.workspace_id).await.is_empty(), "a dry run announces nothing");
    assert_eq!((messages(MESSAGES).await, messages(DELIVERIES).await), (0, 0));

    let done = import(&b.app, &a, ImportOptions::default(), &csv).await.unwrap();
    assert_eq!(done.created, 100);
    let events = created_events(&b.app, a.workspace_id).await;
    assert_eq!(events.len(), 100);
    let contacts = everyone(&b.app, &a).await;
    assert_eq!(contacts.len(), 100);
    let mut ids: Vec<&str> = events.iter().map(|e| e.contact_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "one event per contact");
    assert!(events.iter().all(|e| e.source == "import" && e.workspace_id == a.workspace_id.to_string()));
    assert_eq!(events.iter().filter(|e| e.stage == "customer").count(), 50);
    assert_eq!(events.iter().filter(|e| e.stage == "lead").count(), 50);
    // A webhook message per contact, keyed by its event, to the endpoint that takes contacts.
    assert_eq!((messages(MESSAGES).await, messages(DELIVERIES).await), (100, 100));
    let mut keys: Vec<String> = sqlx::query_scalar(
        "SELECT m.event_key FROM messaging.webhook_messages m JOIN messaging.contacts c ON c.id::text = m.payload->>'id' \
         WHERE m.tenant_id = $1",
    )
    .bind(a.workspace_id.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    let event_ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM messaging.outbox WHERE tenant_id = $1 AND subject = 'nexus.messaging.contact.created'",
    )
    .bind(a.workspace_id.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    let mut expected: Vec<String> =
        event_ids.into_iter().map(|id| format!("event:{}", nexus_kernel::ids::EventId::from_uuid(id))).collect();
    keys.sort();
    expected.sort();
    assert_eq!((keys.len(), keys), (100, expected), "one message per contact, keyed by its event");
    let on_deals: i64 = sqlx::query_scalar("SELECT count(*) FROM messaging.webhook_deliveries WHERE endpoint_id = $1")
        .bind(endpoints[1])
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(on_deals, 0);
    // The message says what a contact created on its own says.
    let input = ContactInput { name: Some("One by one"), ..Default::default() };
    b.app.create_contact(&a, &input, &Map::new(), "").await.unwrap();
    let shapes: Vec<Vec<String>> = sqlx::query_scalar(
        "SELECT DISTINCT array(SELECT jsonb_object_keys(payload) ORDER BY 1) FROM messaging.webhook_messages \
         WHERE tenant_id = $1 AND event_type = 'contact.created'",
    )
    .bind(a.workspace_id.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(shapes.len(), 1, "{shapes:?}");

    // Importing the same file again updates them: nothing more is announced as created.
    let again = import(&b.app, &a, ImportOptions::default(), &csv).await.unwrap();
    assert_eq!((again.created, again.updated), (0, 100));
    assert_eq!(created_events(&b.app, a.workspace_id).await.len(), 101);
}
