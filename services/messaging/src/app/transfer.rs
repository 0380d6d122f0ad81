//! Contacts in and out as CSV.
//!
//! An import reads the caller's chunks as they arrive: a blocking task parses them with the `csv`
//! crate and checks each row (the CPU work, off the async workers), handing batches of checked
//! rows back through a small channel, so memory holds a few chunks and a few batches whatever the
//! file's size. Batches are written in ONE transaction, so an import that fails half-way (too
//! large, cut off, a database failure) leaves the book as it was; a dry run does exactly the same
//! work and rolls it back, so it reports the counts and errors the real run would. Progress and
//! row errors are committed per batch on short transactions of their own, so `GetImport` shows
//! the counts move while the import runs.

use std::collections::{HashMap, VecDeque};
use std::io::Read;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use nexus_kernel::{Error, Page, PageRequest, TenantId};
use nexus_platform::RequestContext;
use nexus_platform::db::{self, DbResultExt};
use nexus_platform::identity::{Action, Principal};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{App, parse_id};
use crate::domain::contact::{Contact, ContactQuery, Stage};
use crate::domain::fields::FieldDef;
use crate::domain::import::{
    Counts, Import, ImportConsent, ImportRow, Limits, Mapping, RowError, STANDARD, Seen, Target, escape_cell,
    option_tags,
};
use crate::repo;

const NOT_FOUND: &str = "messaging.import_not_found";
/// Rows written per statement.
const BATCH: usize = 500;
/// Contacts read per export chunk.
const EXPORT_PAGE: i64 = 500;
/// `source` of contacts an import creates without one.
const IMPORT_SOURCE: &str = "import";

/// What the first message of an import says.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// CSV header → `name`, `phone`, `email`, `language`, `tags`, `stage`, `source`, `owner_id`
    /// or `fields.<key>`. Empty: headers that name a target are taken as they are.
    pub mapping: HashMap<String, String>,
    pub dry_run: bool,
    /// Added to every imported contact.
    pub tags: Vec<String>,
    /// Recorded for every imported contact.
    pub consent: Option<ConsentOption>,
}

/// Consent as the caller wrote it (checked by [`ImportConsent::new`]).
#[derive(Debug, Clone, Default)]
pub struct ConsentOption {
    pub channel: String,
    pub purpose: String,
    pub status: String,
    pub source: String,
    pub proof: String,
}

/// One refused row, its reason in the caller's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportErrorView {
    pub line: i64,
    pub field: String,
    pub code: String,
    pub message: String,
}

use nexus_platform::identity::caller_locale;

impl App {
    /// Imports contacts from CSV `data`. The options are checked (the mapping against the
    /// workspace's fields) before any byte is read; then the import is recorded as running and
    /// the rows are read, checked, matched and written batch by batch. Answers the finished
    /// import; an import that could not finish answers its error (with `import_id`), and its
    /// record says `failed` with the rows written so far rolled back.
    #[tracing::instrument(skip_all, fields(dry_run = options.dry_run))]
    pub async fn import_contacts<S>(
        &self,
        p: &Principal,
        options: ImportOptions,
        data: S,
        limits: Limits,
    ) -> Result<Import, Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        p.require(Action::Write)?;
        let tags = option_tags(&options.tags)?;
        let consent = match &options.consent {
            Some(c) => ImportConsent::new(&c.channel, &c.purpose, &c.status, &c.source, &c.proof)?,
            None => None,
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let region = repo::book::default_region(&mut tx).await?;
        let defs = repo::book::fields(&mut tx).await?;
        let mapping = Mapping::new(&options.mapping, &defs)?;
        let id = Uuid::now_v7();
        let mapping_json: serde_json::Map<String, Value> =
            mapping.entries().iter().map(|(h, t)| (h.clone(), Value::String(t.column()))).collect();
        let options_json = json!({
            "tags": tags,
            "consent": consent.as_ref().map(|c| json!({
                "channel": c.channel.as_str(), "purpose": c.purpose.as_str(), "status": c.status.as_str(),
                "source": c.source, "proof": c.proof,
            })),
        });
        repo::imports::insert(
            &mut tx,
            p.workspace_id,
            id,
            options.dry_run,
            &Value::Object(mapping_json),
            &options_json,
            &p.actor(),
        )
        .await?;
        db::commit(tx).await?;
        tracing::info!(import = %id, "import started");

        let job = Job {
            app: self.clone(),
            tenant: p.workspace_id,
            actor: p.actor(),
            caller: super::members::caller(p),
            id,
            dry_run: options.dry_run,
            consent,
            parse: ParseSetup { region, defs, mapping, tags, limits },
        };
        // On its own task: the import ends as succeeded or failed even if the caller goes away.
        let run = tokio::spawn(RequestContext::current().scope(job.run(data)));
        run.await.map_err(Error::internal)?
    }

    /// Marks imports that have been `running` longer than `deadline` as failed
    /// (`messaging.import_abandoned`): the process running one died, which left its record
    /// behind (its rows went with its transaction). Answers how many.
    pub async fn fail_stalled_imports(&self, deadline: std::time::Duration) -> Result<u64, Error> {
        let mut tx = db::system(&self.pool).await?;
        let n = repo::imports::fail_stalled(&mut tx, deadline, ABANDONED).await?;
        db::commit(tx).await?;
        Ok(n)
    }

    #[tracing::instrument(skip_all, fields(import = %id))]
    pub async fn import(&self, p: &Principal, id: &str) -> Result<Import, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found = repo::imports::get(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        db::commit(tx).await?;
        Ok(found)
    }

    /// The rows an import refused, in line order, each reason in the caller's language.
    #[tracing::instrument(skip_all, fields(import = %id))]
    pub async fn import_errors(
        &self,
        p: &Principal,
        id: &str,
        page: &PageRequest,
    ) -> Result<Page<ImportErrorView>, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, NOT_FOUND)?;
        let after: Option<(i64, String)> = page.decode_cursor::<ErrorCursor>()?.map(|c| (c.line, c.field));
        let limit = if page.limit == 0 { PageRequest::DEFAULT_LIMIT } else { page.limit };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::imports::get(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        let rows = repo::imports::errors(&mut tx, id, after.as_ref(), i64::from(limit) + 1).await?;
        db::commit(tx).await?;
        let locale = caller_locale(Some(p));
        let views = rows
            .into_iter()
            .map(|e| ImportErrorView {
                message: nexus_i18n::error_message(locale, &e.code, &e.params, 400),
                line: e.line,
                field: e.field,
                code: e.code,
            })
            .collect();
        Ok(Page::from_overfetch(views, limit, |e: &ImportErrorView| ErrorCursor {
            line: e.line,
            field: e.field.clone(),
        }))
    }

    /// The contacts matching `query` (a saved segment by `segment_id`, or any search) as CSV
    /// chunks: a header row, then one chunk per page of contacts read by keyset (never the whole
    /// book in memory). Custom fields are columns `fields.<key>`; cells that a spreadsheet would
    /// run as formulas are escaped.
    #[tracing::instrument(skip_all)]
    pub async fn export_contacts(
        &self,
        p: &Principal,
        mut query: ContactQuery,
    ) -> Result<impl Stream<Item = Result<Bytes, Error>> + Send + 'static, Error> {
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let defs = repo::book::fields(&mut tx).await?;
        // The segment is read once: an export is of the filter as it was when it began.
        query.segment = match query.segment_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => Some(super::segments::filter_of(&mut tx, parse_id(raw, super::segments::NOT_FOUND)?).await?),
            None => None,
        };
        db::commit(tx).await?;
        let mut columns: Vec<Target> = STANDARD.to_vec();
        columns.extend(defs.iter().map(|d| Target::Field(d.key.clone())));
        let state = Export {
            pool: self.pool.clone(),
            tenant: p.workspace_id,
            ctx: RequestContext::current(),
            query,
            columns,
            after: None,
            first: true,
            done: false,
        };
        Ok(futures::stream::try_unfold(state, |mut s| async move {
            if s.done {
                return Ok(None);
            }
            let ctx = s.ctx.clone();
            let chunk = ctx.scope(s.next_chunk()).await?;
            Ok(Some((chunk, s)))
        }))
    }
}

struct Export {
    pool: sqlx::PgPool,
    tenant: TenantId,
    ctx: RequestContext,
    query: ContactQuery,
    columns: Vec<Target>,
    after: Option<(DateTime<Utc>, Uuid)>,
    first: bool,
    done: bool,
}

impl Export {
    async fn next_chunk(&mut self) -> Result<Bytes, Error> {
        let mut tx = db::tenant(&self.pool, self.tenant).await?;
        let page = repo::contacts::export_page(&mut tx, self.tenant, &self.query, self.after, EXPORT_PAGE).await?;
        db::commit(tx).await?;
        self.done = i64::try_from(page.len()).unwrap_or(i64::MAX) < EXPORT_PAGE;
        self.after = page.last().map(|c| (c.created_at, c.id)).or(self.after);
        let mut w = csv::WriterBuilder::new().from_writer(Vec::with_capacity(page.len() * 128 + 256));
        if std::mem::take(&mut self.first) {
            w.write_record(self.columns.iter().map(Target::column)).map_err(Error::internal)?;
        }
        for c in &page {
            let cells: Vec<String> = self.columns.iter().map(|t| cell(c, t)).collect();
            w.write_record(cells.iter().map(|v| escape_cell(v).into_owned())).map_err(Error::internal)?;
        }
        let bytes = w.into_inner().map_err(|e| Error::internal(e.to_string()))?;
        Ok(Bytes::from(bytes))
    }
}

/// A contact's value of one export column.
fn cell(c: &Contact, t: &Target) -> String {
    match t {
        Target::Name => c.name.clone(),
        Target::Phone => c.phone.clone().unwrap_or_default(),
        Target::Email => c.email.clone().unwrap_or_default(),
        Target::Language => c.language.map(|l| l.code().to_owned()).unwrap_or_default(),
        Target::Tags => c.tags.join("; "),
        Target::Stage => c.stage.as_str().to_owned(),
        Target::Source => c.source.clone(),
        Target::OwnerId => c.owner_id.map(|o| o.to_string()).unwrap_or_default(),
        Target::Field(k) => match c.fields.get(k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        },
    }
}

/// What the parser needs to check rows.
struct ParseSetup {
    region: Option<String>,
    defs: Vec<FieldDef>,
    mapping: Mapping,
    tags: Vec<String>,
    limits: Limits,
}

/// Why an import stopped that no process was running any more.
pub const ABANDONED: &str = "messaging.import_abandoned";

/// Every `every`, fails imports still running after `deadline` (see
/// [`App::fail_stalled_imports`]) until `stop`.
pub async fn run_import_sweeper(
    app: App,
    deadline: std::time::Duration,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        match app.fail_stalled_imports(deadline).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(imports = n, "imports left running by a stopped process marked failed"),
            Err(e) => tracing::warn!(error = ?e, "import sweep failed; will retry"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// What the parser hands to the writer.
enum Parsed {
    Batch(Vec<Result<ImportRow, Vec<RowError>>>),
    /// The file ended; this many bytes were read.
    Done(u64),
    Failed(Error, u64),
}

/// A running import.
struct Job {
    app: App,
    tenant: TenantId,
    actor: String,
    /// The importing user, who may name themselves as owner.
    caller: Option<Uuid>,
    id: Uuid,
    dry_run: bool,
    consent: Option<ImportConsent>,
    parse: ParseSetup,
}

impl Job {
    async fn run<S>(self, data: S) -> Result<Import, Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let (chunk_tx, chunk_rx) = mpsc::channel::<Result<Bytes, Error>>(4);
        let (batch_tx, mut batch_rx) = mpsc::channel::<Parsed>(2);
        let pump = tokio::spawn(async move {
            let mut data = std::pin::pin!(data);
            while let Some(chunk) = data.next().await {
                let stop = chunk.is_err();
                // The parser stops reading when it has refused the file.
                if chunk_tx.send(chunk).await.is_err() || stop {
                    break;
                }
            }
        });
        let Job { app, tenant, actor, caller, id, dry_run, consent, parse } = self;
        let parser = tokio::task::spawn_blocking(move || parse_csv(chunk_rx, &batch_tx, parse));
        let writer = Writer { pool: app.pool.clone(), tenant, actor, caller, id, consent, counts: Counts::default() };
        let outcome = writer.write_all(&mut batch_rx, dry_run).await;
        drop(batch_rx);
        pump.abort();
        let _ = parser.await;
        match outcome {
            Ok(import) => {
                tracing::info!(
                    import = %id, rows = import.total_rows, created = import.created, updated = import.updated,
                    failed = import.failed, elapsed_ms = started.elapsed().as_millis() as u64, "import finished"
                );
                Ok(import)
            }
            Err((e, counts, bytes)) => {
                tracing::info!(import = %id, code = %e.code(), "import failed");
                // Nothing was written: the counts of what would have been created go too.
                let counts = Counts { created: 0, updated: 0, ..counts };
                let mut tx = db::tenant(&app.pool, tenant).await?;
                repo::imports::finish(&mut tx, id, counts, bytes, Some(&e)).await?;
                db::commit(tx).await?;
                Err(e.with_param("import_id", id.to_string()))
            }
        }
    }
}

/// Writes batches in one transaction; progress goes out on short transactions of its own.
struct Writer {
    pool: sqlx::PgPool,
    tenant: TenantId,
    actor: String,
    caller: Option<Uuid>,
    id: Uuid,
    consent: Option<ImportConsent>,
    counts: Counts,
}

type Failure = (Error, Counts, u64);

impl Writer {
    async fn write_all(mut self, batches: &mut mpsc::Receiver<Parsed>, dry_run: bool) -> Result<Import, Failure> {
        let mut tx = match db::tenant(&self.pool, self.tenant).await {
            Ok(tx) => tx,
            Err(e) => return Err((e, self.counts, 0)),
        };
        if let Err(e) = repo::imports::plan_each_statement(&mut tx).await {
            return Err((e, self.counts, 0));
        }
        let mut matched = Seen::default();
        let bytes = loop {
            match batches.recv().await {
                Some(Parsed::Batch(rows)) => {
                    let errors = match self.write_batch(&mut tx, rows, &mut matched).await {
                        Ok(errors) => errors,
                        Err(e) => return Err((e, self.counts, 0)),
                    };
                    if let Err(e) = self.progress(&errors).await {
                        return Err((e, self.counts, 0));
                    }
                }
                Some(Parsed::Done(bytes)) => break bytes,
                Some(Parsed::Failed(e, bytes)) => return Err((e, self.counts, bytes)),
                None => return Err((Error::internal("the CSV parser stopped without a word"), self.counts, 0)),
            }
        };
        let done = async {
            if dry_run {
                // Same work, none of it kept.
                tx.rollback().await.db()?;
                let mut tx = db::tenant(&self.pool, self.tenant).await?;
                let import = repo::imports::finish(&mut tx, self.id, self.counts, bytes, None).await?;
                db::commit(tx).await?;
                Ok(import)
            } else {
                let c = self.counts;
                crate::events::contacts_imported(&mut tx, self.tenant, self.id, c).await?;
                let import = repo::imports::finish(&mut tx, self.id, c, bytes, None).await?;
                db::commit(tx).await?;
                Ok(import)
            }
        };
        done.await.map_err(|e: Error| (e, self.counts, bytes))
    }

    /// Matches a batch's rows against the book and writes them; answers the rows' errors.
    async fn write_batch(
        &mut self,
        tx: &mut db::Tx,
        rows: Vec<Result<ImportRow, Vec<RowError>>>,
        matched: &mut Seen,
    ) -> Result<Vec<RowError>, Error> {
        let mut errors: Vec<RowError> = Vec::new();
        let mut ok: Vec<ImportRow> = Vec::with_capacity(rows.len());
        for r in rows {
            self.counts.total_rows += 1;
            match r {
                Ok(r) => ok.push(r),
                Err(e) => {
                    self.counts.failed += 1;
                    errors.extend(e);
                }
            }
        }
        // An owner must be a current member, as when contacts are created one by one.
        let owners: Vec<Uuid> = ok.iter().filter_map(|r| r.owner_id).collect();
        let strangers = super::members::not_members(tx, self.caller, &owners).await?;
        if !strangers.is_empty() {
            ok.retain(|r| match r.owner_id {
                Some(o) if strangers.contains(&o) => {
                    self.counts.failed += 1;
                    errors.push(RowError {
                        line: r.line,
                        field: "owner_id".into(),
                        code: super::members::NOT_A_MEMBER.into(),
                        params: Vec::new(),
                    });
                    false
                }
                _ => true,
            });
        }
        let phones: Vec<String> =
            ok.iter().filter_map(|r| r.draft.phone.as_ref().map(|p| p.as_str().to_owned())).collect();
        let emails: Vec<String> =
            ok.iter().filter_map(|r| r.draft.email.as_ref().map(|e| e.as_str().to_owned())).collect();
        let mut found: HashMap<String, Vec<Uuid>> = HashMap::new();
        for (key, contact) in repo::imports::matches(tx, self.tenant, &phones, &emails).await? {
            found.entry(key).or_default().push(contact);
        }
        let mut creates: Vec<(Uuid, &ImportRow)> = Vec::new();
        let mut updates: Vec<(Uuid, &ImportRow)> = Vec::new();
        for r in &ok {
            let mut ids: Vec<Uuid> = r.keys().iter().filter_map(|k| found.get(k)).flatten().copied().collect();
            ids.sort_unstable();
            ids.dedup();
            match ids.as_slice() {
                [] => creates.push((Uuid::now_v7(), r)),
                [one] => match matched.admit_contact(r, *one) {
                    Ok(()) => updates.push((*one, r)),
                    Err(e) => {
                        self.counts.failed += 1;
                        errors.push(e);
                    }
                },
                _ => {
                    self.counts.failed += 1;
                    errors.push(RowError {
                        line: r.line,
                        field: String::new(),
                        code: "messaging.import_conflict".into(),
                        params: Vec::new(),
                    });
                }
            }
        }
        repo::imports::insert_contacts(tx, self.tenant, &creates, IMPORT_SOURCE).await?;
        let created: Vec<(Uuid, Stage)> =
            creates.iter().map(|(id, r)| (*id, r.draft.stage.unwrap_or_default())).collect();
        crate::events::contacts_created(tx, self.tenant, &created, IMPORT_SOURCE).await?;
        repo::imports::update_contacts(tx, &updates).await?;
        let written = || creates.iter().chain(updates.iter());
        let identities: Vec<(Uuid, String)> =
            written().filter_map(|(id, r)| r.draft.email.as_ref().map(|e| (*id, e.as_str().to_owned()))).collect();
        repo::imports::add_email_identities(tx, self.tenant, &identities).await?;
        if let Some(consent) = &self.consent {
            let ids: Vec<Uuid> = written().map(|(id, _)| *id).collect();
            repo::imports::set_consents(tx, self.tenant, &ids, consent, &self.actor).await?;
        }
        self.counts.created += i64::try_from(creates.len()).unwrap_or(0);
        self.counts.updated += i64::try_from(updates.len()).unwrap_or(0);
        Ok(errors)
    }

    /// Commits a batch's errors and the counts so far where `GetImport` sees them.
    async fn progress(&self, errors: &[RowError]) -> Result<(), Error> {
        let mut tx = db::tenant(&self.pool, self.tenant).await?;
        repo::imports::add_errors(&mut tx, self.tenant, self.id, errors).await?;
        repo::imports::progress(&mut tx, self.id, self.counts).await?;
        db::commit(tx).await
    }
}

/// Chunks from the caller as a byte reader for the `csv` crate, counting bytes against the limit
/// and noting where lines break, so a record's line is the file's physical line (the `csv`
/// crate's own count lags on CRLF ends and blank lines).
struct ChunkReader {
    chunks: mpsc::Receiver<Result<Bytes, Error>>,
    current: Bytes,
    read: u64,
    max: u64,
    /// Why reading stopped, when the input failed or went over the limit.
    failure: Option<Error>,
    limits: Limits,
    /// Bytes handed to the parser so far.
    handed: u64,
    /// Offsets of `\r` and `\n` bytes handed out but not yet behind a record (is it `\n`?).
    breaks: VecDeque<(u64, bool)>,
    /// `\n` bytes before the oldest offset in `breaks`.
    lfs_before: u64,
}

impl ChunkReader {
    /// The 1-based line of the record whose read began at byte `start`: line breaks right at
    /// `start` (blank lines, the `\n` of a CRLF) come before the record.
    fn line_at(&mut self, start: u64) -> u64 {
        while let Some(&(at, lf)) = self.breaks.front() {
            if at >= start {
                break;
            }
            self.lfs_before += u64::from(lf);
            self.breaks.pop_front();
        }
        let (mut next, mut lfs) = (start, self.lfs_before);
        for &(at, lf) in &self.breaks {
            if at != next {
                break;
            }
            lfs += u64::from(lf);
            next += 1;
        }
        lfs + 1
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => {
                    self.failure = Some(e);
                    return Err(std::io::Error::other("import input failed"));
                }
                Some(Ok(chunk)) => {
                    self.read += chunk.len() as u64;
                    if self.read > self.max {
                        self.failure = Some(self.limits.too_large());
                        return Err(std::io::Error::other("import input too large"));
                    }
                    self.current = chunk;
                }
            }
        }
        let n = buf.len().min(self.current.len());
        let part = self.current.split_to(n);
        for (i, b) in part.iter().enumerate() {
            if matches!(b, b'\r' | b'\n') {
                self.breaks.push_back((self.handed + i as u64, *b == b'\n'));
            }
        }
        self.handed += n as u64;
        buf[..n].copy_from_slice(&part);
        Ok(n)
    }
}

/// Reads the CSV: the header resolves the mapping, then each row is checked and deduplicated
/// within the file, and batches go to the writer. Runs on a blocking thread.
fn parse_csv(chunks: mpsc::Receiver<Result<Bytes, Error>>, out: &mpsc::Sender<Parsed>, setup: ParseSetup) {
    let limits = setup.limits;
    let reader = ChunkReader {
        chunks,
        current: Bytes::new(),
        read: 0,
        max: limits.max_bytes,
        failure: None,
        limits,
        handed: 0,
        breaks: VecDeque::new(),
        lfs_before: 0,
    };
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let fail = |csv: &mut csv::Reader<ChunkReader>, e: Option<csv::Error>| {
        let inner = csv.get_mut();
        let bytes = inner.read;
        let err = inner.failure.take().unwrap_or_else(|| {
            Error::invalid("messaging.invalid_csv")
                .with_source(e.map_or_else(|| "no header".to_owned(), |e| e.to_string()))
        });
        let _ = out.blocking_send(Parsed::Failed(err, bytes));
    };
    let mut record = csv::ByteRecord::new();
    match csv.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            let bytes = csv.get_ref().read;
            let _ = out.blocking_send(Parsed::Failed(Error::invalid("messaging.import_empty"), bytes));
            return;
        }
        Err(e) => return fail(&mut csv, Some(e)),
    }
    let Ok(header) = record.iter().map(std::str::from_utf8).collect::<Result<Vec<&str>, _>>() else {
        let bytes = csv.get_ref().read;
        let _ = out.blocking_send(Parsed::Failed(Error::invalid("messaging.invalid_encoding"), bytes));
        return;
    };
    let columns = match setup.mapping.resolve(&header, &setup.defs) {
        Ok(c) => c,
        Err(e) => {
            let bytes = csv.get_ref().read;
            let _ = out.blocking_send(Parsed::Failed(e, bytes));
            return;
        }
    };
    let mut seen = Seen::default();
    let mut rows: u64 = 0;
    let mut batch: Vec<Result<ImportRow, Vec<RowError>>> = Vec::with_capacity(BATCH);
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return fail(&mut csv, Some(e)),
        }
        rows += 1;
        if rows > limits.max_rows {
            let bytes = csv.get_ref().read;
            let _ = out.blocking_send(Parsed::Failed(limits.too_many_rows(), bytes));
            return;
        }
        let start = record.position().map_or(0, csv::Position::byte);
        let line = csv.get_mut().line_at(start);
        let checked = match record.iter().map(std::str::from_utf8).collect::<Result<Vec<&str>, _>>() {
            Err(_) => Err(vec![RowError {
                line,
                field: String::new(),
                code: "messaging.invalid_encoding".into(),
                params: Vec::new(),
            }]),
            Ok(cells) => columns
                .row(line, &cells, setup.region.as_deref(), &setup.defs, &setup.tags)
                .and_then(|r| seen.admit(&r).map(|()| r).map_err(|e| vec![e])),
        };
        batch.push(checked);
        if batch.len() == BATCH && out.blocking_send(Parsed::Batch(std::mem::take(&mut batch))).is_err() {
            return;
        }
    }
    if !batch.is_empty() && out.blocking_send(Parsed::Batch(batch)).is_err() {
        return;
    }
    let bytes = csv.get_ref().read;
    let _ = out.blocking_send(Parsed::Done(bytes));
}

/// Where a page of an import's errors ends (they are listed by line, then field). Named fields,
/// like every cursor of the platform, rather than a tuple.
#[derive(serde::Serialize, serde::Deserialize)]
struct ErrorCursor {
    line: i64,
    field: String,
}
