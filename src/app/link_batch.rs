//! Coalesced primary reads of students' links, for the hot path's fully consistent checks:
//! concurrent questions share one statement. A question queues its students; each of a few
//! readers, when free, takes everything queued (up to [`MAX_BATCH_STUDENTS`]) and reads it on
//! the primary in one statement. An idle service reads a question at once, alone; a busy one
//! answers many questions per round trip, and so spends far less of the database, the pool and
//! its own per-statement work on each. A batch's read starts after every question in it
//! arrived, so it sees at least what a read of the question's own would have seen.

use super::freshness::Freshness;
use super::{AppError, AppResult};
use crate::domain::{Position, UserId};
use crate::store::{Store, StudentLinks};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most students one batch reads (an IN list of this many ids).
pub(crate) const MAX_BATCH_STUDENTS: usize = 256;
/// Readers, each holding one pool connection while it reads.
const READERS: usize = 2;
/// Questions waiting for a reader; beyond it, askers wait to queue (back-pressure).
const QUEUE: usize = 4096;

/// What a batched read gives one question.
pub(crate) struct BatchedRead {
    /// The question's students that exist, with their links.
    pub links: Vec<Arc<StudentLinks>>,
    /// The feed position the follower had applied before the read (to fill the cache with).
    pub applied: i64,
}

/// One question waiting for a reader.
struct Question {
    students: Vec<UserId>,
    reply: oneshot::Sender<Result<BatchedRead, String>>,
}

/// The queue and its readers (started on the first question, so that building an `App` needs
/// no runtime).
pub(crate) struct LinkBatcher {
    store: Arc<dyn Store>,
    freshness: Arc<Freshness>,
    queue: OnceLock<mpsc::Sender<Question>>,
}

impl std::fmt::Debug for LinkBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkBatcher")
            .field("started", &self.queue.get().is_some())
            .finish()
    }
}

impl LinkBatcher {
    /// Batches reads of `store`; `freshness` tells the follower's position.
    pub(crate) fn new(store: Arc<dyn Store>, freshness: Arc<Freshness>) -> Self {
        Self {
            store,
            freshness,
            queue: OnceLock::new(),
        }
    }

    /// The links of `students` (at most [`MAX_BATCH_STUDENTS`]), read on the primary with
    /// whatever other questions are waiting.
    pub(crate) async fn read(&self, students: Vec<UserId>) -> AppResult<BatchedRead> {
        let (reply, answer) = oneshot::channel();
        self.queue()
            .send(Question { students, reply })
            .await
            .map_err(|_| AppError::Unavailable("the link readers stopped".into()))?;
        answer
            .await
            .map_err(|_| AppError::Unavailable("a link reader stopped".into()))?
            .map_err(AppError::Unavailable)
    }

    fn queue(&self) -> &mpsc::Sender<Question> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..READERS {
                let reader = Reader {
                    store: self.store.clone(),
                    freshness: self.freshness.clone(),
                    receiver: receiver.clone(),
                };
                tokio::spawn(reader.run());
            }
            sender
        })
    }
}

/// One reader: takes what is queued, reads it, answers each question.
struct Reader {
    store: Arc<dyn Store>,
    freshness: Arc<Freshness>,
    receiver: Arc<Mutex<mpsc::Receiver<Question>>>,
}

impl Reader {
    /// Runs until every sender is gone (the `App` dropped).
    async fn run(self) {
        loop {
            let batch = {
                let mut receiver = self.receiver.lock().await;
                let Some(first) = receiver.recv().await else {
                    return;
                };
                let mut count = first.students.len();
                let mut batch = vec![first];
                while count < MAX_BATCH_STUDENTS {
                    match receiver.try_recv() {
                        Ok(next) => {
                            count += next.students.len();
                            batch.push(next);
                        }
                        Err(_) => break,
                    }
                }
                batch
            };
            self.answer(batch).await;
        }
    }

    async fn answer(&self, batch: Vec<Question>) {
        let mut students: Vec<UserId> = batch
            .iter()
            .flat_map(|q| q.students.iter().cloned())
            .collect();
        students.sort();
        students.dedup();
        // Taken before the read: what the read may be missing is what comes after.
        let applied = self.freshness.applied();
        let read = match self.store.session().await {
            Ok(mut session) => session.student_links(&students).await,
            Err(error) => Err(error),
        };
        let found: HashMap<UserId, Arc<StudentLinks>> = match read {
            Ok(rows) => rows
                .into_iter()
                .map(|links| (links.id().clone(), Arc::new(links)))
                .collect(),
            Err(error) => {
                let text = format!("reading links failed: {error}");
                for question in batch {
                    let _ = question.reply.send(Err(text.clone()));
                }
                return;
            }
        };
        for question in batch {
            let links = question
                .students
                .iter()
                .filter_map(|s| found.get(s).cloned())
                .collect();
            // An asker that gave up (its call was cancelled) is no reader's concern.
            let _ = question.reply.send(Ok(BatchedRead { links, applied }));
        }
    }
}

/// The position a primary read taken after `applied` includes.
pub(crate) fn position_after(applied: i64) -> Option<Position> {
    match applied {
        i64::MIN => None,
        watermark => Some(Position::below(watermark)),
    }
}
