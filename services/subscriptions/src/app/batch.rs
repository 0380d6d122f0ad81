//! Reservations of one busy workspace go to Postgres together. Each reservation of a workspace
//! waits for its balance row, which the previous one holds locked until its commit; callers that
//! arrive while their workspace's statement runs are gathered and sent as the next statement
//! (`reserve_credits_many`, migration 0007): one round trip, one commit and one wait for the row
//! for all of them, each item still exactly a `reserve_credits`. A caller alone is sent at once,
//! alone, so a quiet workspace waits for nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::domain::Reservation;
use crate::repo::credits::{self, Hold};

/// Most reservations in one statement. Each item runs in a subtransaction, and a transaction with
/// more than 64 of them makes every reader of its rows look them up in `pg_subtrans`.
const MAX_BATCH: usize = 32;

/// A reservation and its balance; `None`: too few credits (or no balance row yet).
pub(super) type Answer = Result<Option<(Reservation, i64)>, Error>;

struct Waiting {
    hold: Hold,
    done: oneshot::Sender<Answer>,
}

/// Per workspace, the reservations waiting for the statement after the running one. A workspace
/// is in the map exactly while a task is sending its reservations.
#[derive(Default)]
pub(super) struct Batches {
    queues: Mutex<HashMap<TenantId, Vec<Waiting>>>,
}

impl Batches {
    /// Reserves `hold` in `workspace`, together with whatever else arrives for it meanwhile.
    pub(super) async fn reserve(self: &Arc<Self>, db: &PgPool, workspace: TenantId, hold: Hold) -> Answer {
        let (done, answer) = oneshot::channel();
        let start = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            match queues.get_mut(&workspace) {
                Some(waiting) => {
                    waiting.push(Waiting { hold, done });
                    false
                }
                None => {
                    queues.insert(workspace, vec![Waiting { hold, done }]);
                    true
                }
            }
        };
        if start {
            // A task of its own: a caller that goes away (a cancelled request) must not strand
            // the others waiting behind it.
            tokio::spawn(self.clone().send(db.clone(), workspace));
        }
        answer.await.unwrap_or_else(|_| Err(Error::unavailable("service.unavailable")))
    }

    /// Sends the workspace's waiting reservations, a statement at a time, until none is left.
    async fn send(self: Arc<Self>, db: PgPool, workspace: TenantId) {
        // Should a statement panic, the workspace leaves the map (its waiters get `unavailable`)
        // so the next caller starts afresh.
        let mut guard = Leave { batches: &self, workspace, armed: true };
        loop {
            let batch: Vec<Waiting> = {
                let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(waiting) = queues.get_mut(&workspace) else { break };
                if waiting.is_empty() {
                    queues.remove(&workspace);
                    guard.armed = false;
                    break;
                }
                let n = waiting.len().min(MAX_BATCH);
                waiting.drain(..n).collect()
            };
            run(&db, workspace, batch).await;
        }
    }
}

struct Leave<'a> {
    batches: &'a Batches,
    workspace: TenantId,
    armed: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.batches.queues.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.workspace);
        }
    }
}

async fn run(db: &PgPool, workspace: TenantId, mut batch: Vec<Waiting>) {
    if batch.len() > 1 {
        let holds: Vec<&Hold> = batch.iter().map(|w| &w.hold).collect();
        let answers = match db.acquire().await.db() {
            Ok(mut conn) => credits::reserve_many(&mut conn, workspace, &holds).await,
            Err(e) => Err(e),
        };
        match answers {
            Ok(answers) => {
                for (w, a) in batch.into_iter().zip(answers) {
                    let _ = w.done.send(Ok(a));
                }
                return;
            }
            Err(e) => {
                // Every item then answers for itself, one statement each, so no caller gets an
                // error that belongs to another's reservation.
                tracing::warn!(error = %e, items = batch.len(), "batched reservations failed; reserving one by one");
            }
        }
    }
    for w in batch.drain(..) {
        let answer = match db.acquire().await.db() {
            Ok(mut conn) => credits::reserve(&mut conn, workspace, &w.hold).await,
            Err(e) => Err(e),
        };
        let _ = w.done.send(answer);
    }
}
