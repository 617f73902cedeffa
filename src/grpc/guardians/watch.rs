//! WatchGuardianChanges: the change feed as a server stream. A task per watcher steps through
//! the feed from the watcher's position, woken when this replica's follower sees the watermark
//! advance, and sends into a small bounded channel: a slow consumer holds the task back (it
//! reads nothing more meanwhile), and one that takes nothing for too long is cut with
//! RESOURCE_EXHAUSTED and may resume from its last token.

use super::convert::{invitation_to_proto, optional_user_id};
use crate::app::{App, AppError, FeedChange, OpenWatch, WatchQuery};
use crate::domain::{Caller, ChangeKind, DomainName, Position};
use crate::grpc::authorized;
use crate::grpc::convert::{change_token, parse_field, timestamp};
use crate::proto;
use crate::proto::guardian_change::Kind;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

/// Messages a watcher's stream holds ready: the bound on what waits for a slow consumer.
const BUFFER: usize = 32;

/// How long a consumer may take nothing while messages wait before it is cut.
const SLOW_CONSUMER: Duration = Duration::from_secs(30);

/// How soon to look again while changes wait behind a transaction still running.
const HELD_BACK_RETRY: Duration = Duration::from_millis(10);

/// How soon to read again when the database could not be reached.
const UNAVAILABLE_RETRY: Duration = Duration::from_millis(500);

type Item = Result<proto::WatchGuardianChangesResponse, Status>;

/// The stream of one WatchGuardianChanges call.
pub struct ChangeStream {
    messages: mpsc::Receiver<Item>,
    /// A status that ends the stream at once, ahead of whatever waits (a cut consumer).
    cut: Option<oneshot::Receiver<Status>>,
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream").finish_non_exhaustive()
    }
}

impl Stream for ChangeStream {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        if let Some(cut) = self.cut.as_mut()
            && let Poll::Ready(outcome) = Pin::new(cut).poll(cx)
        {
            self.cut = None;
            if let Ok(status) = outcome {
                self.messages.close();
                return Poll::Ready(Some(Err(status)));
            }
        }
        self.messages.poll_recv(cx)
    }
}

pub(super) async fn watch(
    app: &App,
    request: Request<proto::WatchGuardianChangesRequest>,
) -> Result<Response<ChangeStream>, Status> {
    let who = authorized(&request)?;
    let proto::WatchGuardianChangesRequest {
        domain,
        student_id,
        start_token,
    } = request.into_inner();
    let domain = match domain.trim() {
        "*" => None,
        name => Some(parse_field("domain", name, DomainName::parse)?),
    };
    let query = WatchQuery {
        domain,
        student: optional_user_id("student_id", &student_id)?,
        start: match start_token.trim() {
            "" => None,
            token => Some(change_token("start_token", token)?),
        },
    };
    let opened = app.open_watch(&who, query).await?;
    let (messages, receiver) = mpsc::channel(BUFFER);
    let (cut, cut_receiver) = oneshot::channel();
    tokio::spawn(follow(
        app.clone(),
        who.caller().clone(),
        opened,
        Sender { messages, cut },
    ));
    Ok(Response::new(ChangeStream {
        messages: receiver,
        cut: Some(cut_receiver),
    }))
}

struct Sender {
    messages: mpsc::Sender<Item>,
    cut: oneshot::Sender<Status>,
}

/// Feeds one watcher until it goes away, is cut, or the feed fails.
async fn follow(app: App, caller: Caller, opened: OpenWatch, sender: Sender) {
    let Sender { messages, cut } = sender;
    let heartbeat = app.freshness().config().heartbeat;
    let mut advanced = app.freshness().subscribe();
    let mut at = opened.at;
    let mut last_sent = Instant::now();
    loop {
        let step = match app.next_changes(&caller, &opened, at).await {
            Ok(step) => step,
            // The database is away for a moment: the watcher keeps its place and looks again,
            // so a dropped connection costs its consumer nothing but the wait.
            Err(AppError::Unavailable(cause)) => {
                tracing::warn!(%cause, "the change feed could not be read; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(UNAVAILABLE_RETRY) => continue,
                    _ = messages.closed() => return,
                }
            }
            Err(e) => {
                let _ = messages.send(Err(e.into())).await;
                return;
            }
        };
        for change in step.changes {
            match send(&messages, change_to_proto(change)).await {
                Sent::Yes => last_sent = Instant::now(),
                Sent::Gone => return,
                Sent::TooSlow => {
                    let _ = cut.send(Status::resource_exhausted(
                        "the watcher took nothing for too long; resume from its last token",
                    ));
                    return;
                }
            }
        }
        at = step.at;
        if step.more {
            continue;
        }
        if last_sent.elapsed() >= heartbeat {
            if !matches!(send(&messages, heartbeat_of(at)).await, Sent::Yes) {
                return;
            }
            last_sent = Instant::now();
        }
        let wait = if step.held_back {
            HELD_BACK_RETRY
        } else {
            heartbeat.saturating_sub(last_sent.elapsed())
        };
        tokio::select! {
            changed = advanced.changed() => {
                if changed.is_err() {
                    // No follower any more (the server is stopping): the heartbeat timer goes on.
                    tokio::time::sleep(wait).await;
                }
            }
            _ = tokio::time::sleep(wait) => {}
            _ = messages.closed() => return,
        }
    }
}

enum Sent {
    Yes,
    Gone,
    TooSlow,
}

async fn send(messages: &mpsc::Sender<Item>, change: proto::GuardianChange) -> Sent {
    let message = proto::WatchGuardianChangesResponse {
        change: Some(change),
    };
    match tokio::time::timeout(SLOW_CONSUMER, messages.send(Ok(message))).await {
        Ok(Ok(())) => Sent::Yes,
        Ok(Err(_)) => Sent::Gone,
        Err(_) => Sent::TooSlow,
    }
}

fn heartbeat_of(at: Position) -> proto::GuardianChange {
    proto::GuardianChange {
        consistency_token: at.to_token(),
        kind: Kind::Unspecified as i32,
        ..Default::default()
    }
}

fn change_to_proto(change: FeedChange) -> proto::GuardianChange {
    let kind = match change.kind {
        ChangeKind::LinkAdded => Kind::LinkAdded,
        ChangeKind::LinkRemoved => Kind::LinkRemoved,
        ChangeKind::InvitationChanged => Kind::InvitationChanged,
        ChangeKind::StudentRemoved => Kind::StudentRemoved,
        ChangeKind::SettingsChanged => Kind::SettingsChanged,
    };
    let guardian_id = change
        .invitation
        .as_ref()
        .and_then(|v| v.invitation.guardian.as_ref())
        .filter(|_| matches!(change.kind, ChangeKind::LinkAdded | ChangeKind::LinkRemoved))
        .map(|g| g.guardian_id.to_string())
        .unwrap_or_default();
    proto::GuardianChange {
        consistency_token: change.position.to_token(),
        commit_time: Some(timestamp(change.event.create_time)),
        kind: kind as i32,
        domain: change.event.domain.to_string(),
        student_id: change
            .event
            .student_id
            .map(|s| s.to_string())
            .unwrap_or_default(),
        guardian_id,
        invitation: change.invitation.as_ref().map(invitation_to_proto),
        action: change.event.action,
    }
}
