//! Audited reads: each read of guardians' addresses by an administrator or a service (the
//! invitation and guardian reads that show invited addresses, and exports) leaves an access
//! record per student read, which the domain's administrators can list. Reads must not wait
//! for a write: records go into a bounded buffer that one task per replica writes in batches
//! (a full buffer makes readers wait, so nothing is dropped); without that task (tools,
//! tests of the use cases) each record is written at once.

use super::access::{require, require_domain};
use super::{App, AppError, AppResult};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::{AccessRecord, Caller, CallerRole, DomainName, UserId, paging};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Records the buffer holds before readers wait.
const BUFFER: usize = 10_000;

/// Most records written in one statement.
const BATCH: usize = 1_000;

/// How long a batch is retried while the database cannot be reached before it is given up
/// (and counted in `guardians_access_records_lost_total`).
const RETRY_FOR: Duration = Duration::from_secs(60);

enum Entry {
    Record(AccessRecord),
    /// Answered once everything sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// This replica's buffer of access records.
pub struct AccessLog {
    sender: mpsc::Sender<Entry>,
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Entry>>>,
    writer_running: AtomicBool,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

impl AccessLog {
    pub(super) fn new() -> Self {
        let (sender, receiver) = mpsc::channel(BUFFER);
        Self {
            sender,
            receiver: std::sync::Mutex::new(Some(receiver)),
            writer_running: AtomicBool::new(false),
        }
    }
}

/// A page request of access records.
#[derive(Debug, Clone)]
pub struct AccessQuery {
    /// Whose records.
    pub domain: DomainName,
    /// Only reads of this student.
    pub student: Option<UserId>,
    /// The raw requested page size.
    pub page_size: i32,
    /// The previous page's token, or empty.
    pub page_token: String,
}

/// A page of access records, newest first.
#[derive(Debug, Clone)]
pub struct AccessPage {
    /// The records.
    pub records: Vec<AccessRecord>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}

/// The metric label of a caller: a service by its name (a handful), administrators together
/// (a label per person would grow without bound, and their ids are in the records).
fn caller_label(caller: &Caller) -> String {
    match caller.role {
        CallerRole::Service => caller.subject.clone(),
        _ => "admin".to_owned(),
    }
}

impl App {
    /// Notes that `caller` read guardians' addresses through `method`: one record per student
    /// of `rows` (each a row's domain and student), with the rows of that student. Only
    /// administrators and services are recorded: other callers never see invited addresses.
    pub(crate) async fn note_address_reads<'a>(
        &self,
        caller: &Caller,
        method: &'static str,
        rows: impl IntoIterator<Item = (&'a DomainName, &'a UserId)>,
    ) -> AppResult<()> {
        if !matches!(caller.role, CallerRole::Admin | CallerRole::Service) {
            return Ok(());
        }
        let mut per_student: BTreeMap<(&DomainName, &UserId), i64> = BTreeMap::new();
        for key in rows {
            *per_student.entry(key).or_default() += 1;
        }
        if per_student.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut read = 0;
        let records: Vec<AccessRecord> = per_student
            .into_iter()
            .map(|((domain, student), rows)| {
                read += rows;
                AccessRecord {
                    record_id: 0,
                    domain: domain.clone(),
                    caller: caller.subject.clone(),
                    caller_role: caller.role,
                    method: method.to_owned(),
                    student_id: Some(student.clone()),
                    rows,
                    create_time: now,
                }
            })
            .collect();
        metrics::counter!(
            "guardians_addresses_read_total",
            "caller" => caller_label(caller),
            "method" => method
        )
        .increment(u64::try_from(read).unwrap_or(0));
        let log = &self.access_log;
        if !log.writer_running.load(Ordering::Acquire) {
            let mut session = self.store.session().await?;
            session.insert_access_records(&records).await?;
            return Ok(());
        }
        for record in records {
            log.sender
                .send(Entry::Record(record))
                .await
                .map_err(|_| AppError::Internal("the access log's writer stopped".into()))?;
        }
        Ok(())
    }

    /// Writes buffered access records until `stop` turns true, then writes what is left. One
    /// writer per replica: a second call returns at once. Stop it once no read is running, or a
    /// read that saw it running may leave a record behind.
    pub async fn run_access_log(&self, mut stop: watch::Receiver<bool>) {
        let Some(mut receiver) = self
            .access_log
            .receiver
            .lock()
            .expect("the access log's lock is never poisoned")
            .take()
        else {
            return;
        };
        self.access_log
            .writer_running
            .store(true, Ordering::Release);
        let mut entries = Vec::with_capacity(BATCH);
        loop {
            let received = tokio::select! {
                n = receiver.recv_many(&mut entries, BATCH) => n,
                _ = stop.wait_for(|stop| *stop) => 0,
            };
            if received == 0 {
                // Stopping: what is buffered still goes. Readers that arrive later write
                // their records themselves.
                self.access_log
                    .writer_running
                    .store(false, Ordering::Release);
                while let Ok(entry) = receiver.try_recv() {
                    entries.push(entry);
                }
                self.write_entries(&mut entries, false).await;
                return;
            }
            self.write_entries(&mut entries, true).await;
        }
    }

    async fn write_entries(&self, entries: &mut Vec<Entry>, retry: bool) {
        let mut records = Vec::new();
        let mut flushes = Vec::new();
        for entry in entries.drain(..) {
            match entry {
                Entry::Record(record) => records.push(record),
                Entry::Flush(done) => flushes.push(done),
            }
        }
        let started = tokio::time::Instant::now();
        while !records.is_empty() {
            let written = match self.store.session().await {
                Ok(mut session) => session.insert_access_records(&records).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => break,
                Err(e) if retry && started.elapsed() < RETRY_FOR => {
                    tracing::warn!(error = %e, "cannot write access records yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, lost = records.len(), "access records lost");
                    metrics::counter!("guardians_access_records_lost_total")
                        .increment(records.len() as u64);
                    break;
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }

    /// Waits until every access record this replica noted so far is written.
    pub async fn flush_access_log(&self) {
        if !self.access_log.writer_running.load(Ordering::Acquire) {
            return;
        }
        let (done, written) = oneshot::channel();
        if self
            .access_log
            .sender
            .send(Entry::Flush(done))
            .await
            .is_ok()
        {
            let _ = written.await;
        }
    }

    /// ListAccessRecords: a domain's records, newest first. This replica's buffered records are
    /// written first; other replicas' may follow within a moment.
    pub async fn list_access_records(
        &self,
        who: &Authorized,
        query: AccessQuery,
    ) -> AppResult<AccessPage> {
        require_domain(require(who, Permission::PrivacyAdmin)?, &query.domain)?;
        let size = paging::page_size(query.page_size)?;
        let student = query.student.as_ref().map(UserId::as_str).unwrap_or("");
        let filters = [query.domain.as_str(), student];
        let before = self
            .page_tokens
            .decode(&query.page_token, &filters)?
            .map(|k| k.parse::<i64>().map_err(|_| AppError::InvalidPageToken))
            .transpose()?;
        self.flush_access_log().await;
        let mut session = self.store.session().await?;
        let mut records = session
            .list_access_records(&query.domain, query.student.as_ref(), before, size + 1)
            .await?;
        let next_page_token = self.page_tokens.cut(
            &mut records,
            size,
            |last| last.record_id.to_string(),
            &filters,
        );
        Ok(AccessPage {
            records,
            next_page_token,
        })
    }
}
