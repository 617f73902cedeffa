//! What every set-based bulk call shares (invitations in `bulk_invite`, removals in
//! `bulk_remove`): rows run in chunks of one transaction each, falling back to the single path
//! row by row when the database refuses the set; the rows' students resolved in two queries,
//! each student authorized once, the students' invitations and the stored first responses read
//! in one query each; and the commit that either keeps every row's answer or turns the fresh
//! ones into UNAVAILABLE when its fate is unknown.

use super::bulk::RowOutcome;
use super::bulk_invite::CHUNK_ROWS;
use super::idempotency::{Replay, RequestKey};
use super::students::StudentContext;
use super::{App, AppError, AppResult};
use crate::domain::policy::StudentAccess;
use crate::domain::{
    Caller, Email, IdempotencyRecord, Invitation, Role, StudentRef, User, UserId, ValidationError,
};
use crate::store::Transaction;
use std::collections::HashMap;
use std::time::Instant;

/// A chunk checked and written, not yet committed.
struct Planned<T> {
    /// The chunk's open transaction.
    tx: Box<dyn Transaction>,
    /// One outcome per row, in row order.
    outcomes: Vec<RowOutcome<T>>,
    /// The students locked (and so changed): this replica's cache forgets them.
    students: Vec<UserId>,
}

/// Each row's student, as the caller may act on it: the student's context, or the row's
/// error (unknown student, not allowed).
pub(super) type Decided = Vec<AppResult<StudentContext>>;

/// How a bulk call's rows are run.
pub(super) struct ChunkRun {
    /// The transport's deadline: no chunk is started past its cut-off.
    pub deadline: Option<Instant>,
    /// Roll every chunk back.
    pub dry_run: bool,
}

/// The work of one kind of bulk row: a chunk as one set-based transaction, left open; one row
/// on the single write path, in its own.
#[async_trait::async_trait]
pub(super) trait ChunkWork: Sync {
    /// A parsed row.
    type Row: Sync;
    /// A row's answer.
    type Out: Send;
    /// Checks the rows of a chunk and writes them into `tx`: one outcome per row, in row
    /// order, and the students locked.
    async fn write_in(
        &self,
        app: &App,
        tx: &mut dyn Transaction,
        rows: &[Self::Row],
    ) -> AppResult<(Vec<RowOutcome<Self::Out>>, Vec<UserId>)>;
    /// One row, committed on its own.
    async fn one(&self, app: &App, row: &Self::Row) -> RowOutcome<Self::Out>;
}

impl App {
    /// Runs a bulk call's rows, one outcome per row in row order: a row that did not parse
    /// answers its error; the others are made into rows (with their index) and go in chunks
    /// through [`ChunkWork::write_in`], one set-based transaction each, committed together; a chunk
    /// whose set the database refuses is run row by row through [`ChunkWork::one`].
    pub(super) async fn run_chunks<S, W: ChunkWork>(
        &self,
        rows: Vec<Result<S, ValidationError>>,
        run: ChunkRun,
        make: impl Fn(usize, S) -> W::Row,
        work: &W,
    ) -> Vec<RowOutcome<W::Out>> {
        let mut outcomes: Vec<Option<RowOutcome<W::Out>>> =
            std::iter::repeat_with(|| None).take(rows.len()).collect();
        let (mut parsed, mut indices) = (Vec::new(), Vec::new());
        for (index, row) in rows.into_iter().enumerate() {
            match row {
                Ok(row) => {
                    parsed.push(make(index, row));
                    indices.push(index);
                }
                Err(invalid) => outcomes[index] = Some(Err(invalid.into())),
            }
        }
        let cut_off = self.cut_off(run.deadline);
        for (chunk, at) in parsed.chunks(CHUNK_ROWS).zip(indices.chunks(CHUNK_ROWS)) {
            let results = if self.before_cut_off(cut_off).is_err() {
                chunk.iter().map(|_| Err(AppError::NotAttempted)).collect()
            } else {
                match self.plan_chunk(work, chunk).await {
                    Ok(planned) => self.finish_chunk(planned, run.dry_run).await,
                    Err(error) => {
                        tracing::warn!(%error, rows = chunk.len(), "a bulk chunk failed as a set; running its rows one by one");
                        let mut results = Vec::with_capacity(chunk.len());
                        for row in chunk {
                            results.push(work.one(self, row).await);
                        }
                        results
                    }
                }
            };
            for (index, result) in at.iter().zip(results) {
                outcomes[*index] = Some(result);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(AppError::NotAttempted)))
            .collect()
    }

    /// One chunk checked and written in a transaction left open.
    async fn plan_chunk<W: ChunkWork>(
        &self,
        work: &W,
        rows: &[W::Row],
    ) -> AppResult<Planned<W::Out>> {
        let mut tx = self.store.begin().await?;
        let (outcomes, students) = work.write_in(self, tx.as_mut(), rows).await?;
        Ok(Planned {
            tx,
            outcomes,
            students,
        })
    }

    /// Resolves and authorizes the student of each row, asking the directory once per distinct
    /// student and deciding once per distinct (student, access), as the single call would.
    pub(super) async fn decide_rows(
        &self,
        tx: &mut dyn Transaction,
        caller: &Caller,
        rows: &[(&StudentRef, StudentAccess)],
    ) -> AppResult<Decided> {
        let students = resolve_students(tx, rows.iter().map(|(s, _)| *s)).await?;
        let mut decided: HashMap<(UserId, StudentAccess), StudentContext> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for (student, (_, access)) in students.into_iter().zip(rows) {
            let known = student
                .as_ref()
                .and_then(|s| decided.get(&(s.user_id.clone(), access.clone())))
                .cloned();
            let result = match known {
                Some(ctx) => Ok(ctx),
                None => self.decide_for(tx, caller, student, access.clone()).await,
            };
            if let Ok(ctx) = &result {
                decided.insert((ctx.student.user_id.clone(), access.clone()), ctx.clone());
            }
            out.push(result);
        }
        Ok(out)
    }

    /// Commits a planned chunk (or drops it, rolling back, for a dry run), and tells this
    /// replica's cache which students changed.
    async fn finish_chunk<T>(&self, planned: Planned<T>, dry_run: bool) -> Vec<RowOutcome<T>> {
        let Planned {
            tx,
            outcomes,
            students,
        } = planned;
        if dry_run {
            return outcomes;
        }
        match tx.commit().await {
            Ok(()) => {
                for student in &students {
                    self.freshness.forget_student(student);
                }
                outcomes
            }
            // The commit's fate is unknown: a retry with the same request id replays what
            // did commit and does the rest.
            Err(error) => {
                let text = format!("the chunk's commit failed ({error}); retry the request");
                outcomes
                    .into_iter()
                    .map(|outcome| match outcome {
                        Ok(Replay::Fresh(_)) => Err(AppError::Unavailable(text.clone())),
                        other => other,
                    })
                    .collect()
            }
        }
    }
}

/// The students locked for a chunk: every one some row may act on, in id order (the order
/// every writer takes locks in).
pub(super) fn students_to_lock(decided: &Decided) -> Vec<UserId> {
    let mut ids: Vec<UserId> = decided
        .iter()
        .filter_map(|d| d.as_ref().ok().map(|ctx| ctx.student.user_id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Where a row stands before its rules: its student's context, or its answer already (the
/// student was refused, or the row's request was answered before).
pub(super) fn row_context<T>(
    decided: AppResult<StudentContext>,
    stored: &HashMap<String, IdempotencyRecord>,
    key: Option<&RequestKey>,
) -> Result<StudentContext, RowOutcome<T>> {
    let ctx = decided.map_err(Err)?;
    match replay_of(stored, key) {
        Some(answered) => Err(answered),
        None => Ok(ctx),
    }
}

/// Every invitation of the locked students, by student.
pub(super) async fn invitations_by_student(
    tx: &mut dyn Transaction,
    students: &[UserId],
) -> AppResult<HashMap<UserId, Vec<Invitation>>> {
    let mut records: HashMap<UserId, Vec<Invitation>> = HashMap::new();
    for invitation in tx.invitations_of_students(students).await? {
        records
            .entry(invitation.student_id.clone())
            .or_default()
            .push(invitation);
    }
    Ok(records)
}

/// The stored answer to a row's key, when one is stored: replayed when the request is the same,
/// REQUEST_ID_REUSED when the id came with another request.
fn replay_of<T>(
    stored: &HashMap<String, IdempotencyRecord>,
    key: Option<&RequestKey>,
) -> Option<RowOutcome<T>> {
    let key = key?;
    let record = stored.get(&key.request_id)?;
    Some(
        if record.method == key.method && record.request_hash == key.request_hash {
            Ok(Replay::Replayed(record.response.clone()))
        } else {
            Err(AppError::RequestIdReused)
        },
    )
}

/// Each row's student (`None`: unknown, or not a student), in two queries.
async fn resolve_students<'a>(
    tx: &mut dyn Transaction,
    rows: impl Iterator<Item = &'a StudentRef> + Clone,
) -> AppResult<Vec<Option<User>>> {
    let mut ids = Vec::new();
    let mut emails = Vec::new();
    for student in rows.clone() {
        match student {
            StudentRef::Id(id) => ids.push(id.clone()),
            StudentRef::Email(email) => emails.push(email.clone()),
        }
    }
    // A chunk names each student several times (one row per guardian): ask once.
    ids.sort();
    ids.dedup();
    emails.sort();
    emails.dedup();
    let by_id: HashMap<UserId, User> = tx
        .users_by_id(&ids)
        .await?
        .into_iter()
        .map(|u| (u.user_id.clone(), u))
        .collect();
    let by_email: HashMap<Email, User> = tx
        .users_by_email(&emails)
        .await?
        .into_iter()
        .map(|u| (u.email.clone(), u))
        .collect();
    Ok(rows
        .map(|student| match student {
            StudentRef::Id(id) => by_id.get(id).cloned(),
            StudentRef::Email(email) => by_email.get(email).cloned(),
        })
        .map(|user| user.filter(|u| u.role == Role::Student))
        .collect())
}

/// The stored first responses of the rows' request keys, by request id.
pub(super) async fn stored_responses<'a>(
    tx: &mut dyn Transaction,
    keys: impl Iterator<Item = Option<&'a RequestKey>>,
) -> AppResult<HashMap<String, IdempotencyRecord>> {
    let keys: Vec<&RequestKey> = keys.flatten().collect();
    let Some(first) = keys.first() else {
        return Ok(HashMap::new());
    };
    let ids: Vec<String> = keys.iter().map(|k| k.request_id.clone()).collect();
    Ok(tx
        .get_idempotency_many(&first.principal, &ids)
        .await?
        .into_iter()
        .map(|r| (r.request_id.clone(), r))
        .collect())
}
