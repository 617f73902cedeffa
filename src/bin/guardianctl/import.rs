//! `invite`, `resend`, `remove` and `sync` from a CSV file (and `resend` by age): chunked into
//! bulk requests sent a few at a time, each with a request id derived from the file's content and the chunk, so running the
//! same file again is safe (finished rows replay, the rest are done).

use crate::client::{Client, describe};
use crate::csv_input::{Input, Row};
use crate::report::{Entry, Progress};
use futures_util::StreamExt;
use guardian_service::domain::sync_rules::check_removals;
use guardian_service::proto::{
    BulkCreateGuardianInvitationsRequest, BulkCreateGuardianInvitationsRow,
    BulkDeleteGuardiansRequest, BulkDeleteGuardiansRow, BulkRowResult, PairRemoval,
    ResendGuardianInvitationsRequest, ResendGuardianInvitationsRow, SyncGuardiansRequest,
    SyncRemoveScope, bulk_delete_guardians_row, sync_action,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Chunks in flight at once.
const IN_FLIGHT: usize = 6;

/// A request id for one part of one file's import.
fn request_id(input: &Input, command: &str, part: &str) -> String {
    stable_id(&input.digest, command, part)
}

/// A UUID derived from `seed`, `command` and `part`: the same run of the same work gets the
/// same ids, so the server replays what it already did.
fn stable_id(seed: &[u8], command: &str, part: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update(command.as_bytes());
    hasher.update([0]);
    hasher.update(part.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn refused(input: &Input) -> Vec<Entry> {
    input
        .bad
        .iter()
        .map(|b| Entry {
            line: Some(b.line),
            student: String::new(),
            guardian: String::new(),
            outcome: "FAILED".into(),
            reason: format!("malformed: {}", b.reason),
        })
        .collect()
}

/// What a row's outcome is when the whole request failed with `status`: FAILED only when the
/// server certainly refused the request before doing anything; otherwise (a deadline, a lost
/// connection, a crash) some rows may have been applied, and only a re-run can tell.
fn whole_request_outcome(status: &tonic::Status) -> (&'static str, String) {
    use tonic::Code as C;
    let why = describe(status);
    match status.code() {
        C::InvalidArgument
        | C::PermissionDenied
        | C::Unauthenticated
        | C::NotFound
        | C::FailedPrecondition
        | C::ResourceExhausted
        | C::Unimplemented
        | C::AlreadyExists
        | C::OutOfRange => ("FAILED", why),
        C::Ok
        | C::Cancelled
        | C::Unknown
        | C::DeadlineExceeded
        | C::Aborted
        | C::Internal
        | C::Unavailable
        | C::DataLoss => (
            "UNKNOWN",
            format!("{why} (the row may or may not be applied: re-run the same file)"),
        ),
    }
}

/// A server message in the file's terms: the row is the report's line, not `rows[i]` of a
/// chunk, so `rows[3].invited_email_address: ...` reads `invited_email_address: ...`.
fn without_row_index(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("rows[") {
        let after = &rest[at + "rows[".len()..];
        match after.find(']') {
            Some(end) if after[..end].chars().all(|c| c.is_ascii_digit()) => {
                out.push_str(&rest[..at]);
                let tail = &after[end + 1..];
                rest = tail.strip_prefix('.').unwrap_or(tail);
                if tail.starts_with(':') || tail.is_empty() {
                    out.push_str("the row");
                }
            }
            _ => {
                out.push_str(&rest[..at + "rows[".len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a row that succeeded is called: OK, or PLANNED in a dry run (nothing was changed).
fn success(dry_run: bool) -> &'static str {
    if dry_run { "PLANNED" } else { "OK" }
}

fn entry(
    row: &Row,
    result: Option<&BulkRowResult>,
    failure: Option<&tonic::Status>,
    dry_run: bool,
) -> Entry {
    let (outcome, reason) = match (result, failure) {
        (_, Some(status)) => {
            let (outcome, why) = whole_request_outcome(status);
            (outcome.to_string(), why)
        }
        (Some(r), None) if r.code == 0 => (success(dry_run).to_string(), String::new()),
        (Some(r), None) if r.reason == "ROW_NOT_ATTEMPTED" => (
            "NOT_ATTEMPTED".to_string(),
            "not attempted before the call's deadline: re-run the same file".into(),
        ),
        (Some(r), None) => (
            "FAILED".to_string(),
            format!("{}: {}", r.reason, without_row_index(&r.message)),
        ),
        (None, None) => (
            "UNKNOWN".to_string(),
            "no result for this row (re-run the same file)".into(),
        ),
    };
    Entry {
        line: Some(row.line),
        student: row.student.clone(),
        guardian: row.guardian.clone(),
        outcome,
        reason,
    }
}

/// Sends the rows in chunks, a few at a time, with `send` (chunk number, rows) returning the
/// per-row results of one bulk request, and reports every row.
async fn chunked<F, Fut>(
    input: &Input,
    what: &str,
    chunk: usize,
    dry_run: bool,
    send: F,
) -> Vec<Entry>
where
    F: Fn(usize, &[Row]) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<BulkRowResult>, tonic::Status>>,
{
    let mut entries = refused(input);
    let mut progress = Progress::new(input.rows.len() as u64, what);
    let chunks: Vec<(usize, &[Row])> = input.rows.chunks(chunk.max(1)).enumerate().collect();
    let mut replies = futures_util::stream::iter(chunks)
        .map(|(n, rows)| {
            let reply = send(n, rows);
            async move { (rows, reply.await) }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((rows, reply)) = replies.next().await {
        match reply {
            Ok(results) => {
                for (i, row) in rows.iter().enumerate() {
                    let result = results.iter().find(|r| r.row_index as usize == i);
                    entries.push(entry(row, result, None, dry_run));
                }
            }
            Err(status) => {
                entries.extend(
                    rows.iter()
                        .map(|row| entry(row, None, Some(&status), dry_run)),
                );
            }
        }
        progress.advance(rows.len() as u64);
    }
    progress.finish();
    entries
}

/// Invites every row.
pub(crate) async fn invite(
    client: &Client,
    input: &Input,
    chunk: usize,
    dry_run: bool,
) -> Vec<Entry> {
    chunked(input, "invite", chunk, dry_run, |n, rows| {
        let mut guardians = client.guardians();
        let request = BulkCreateGuardianInvitationsRequest {
            rows: rows
                .iter()
                .map(|r| BulkCreateGuardianInvitationsRow {
                    student_id: r.student.clone(),
                    invited_email_address: r.guardian.clone(),
                })
                .collect(),
            dry_run,
            request_id: if dry_run {
                String::new()
            } else {
                request_id(input, "invite", &n.to_string())
            },
        };
        async move {
            guardians
                .bulk_create_guardian_invitations(request)
                .await
                .map(|reply| reply.into_inner().results)
        }
    })
    .await
}

/// Sends the pending invitation of every row again.
pub(crate) async fn resend(
    client: &Client,
    input: &Input,
    chunk: usize,
    dry_run: bool,
) -> Vec<Entry> {
    chunked(input, "resend", chunk, dry_run, |n, rows| {
        let mut guardians = client.guardians();
        let request = ResendGuardianInvitationsRequest {
            rows: rows
                .iter()
                .map(|r| ResendGuardianInvitationsRow {
                    student_id: r.student.clone(),
                    invited_email_address: r.guardian.clone(),
                })
                .collect(),
            dry_run,
            request_id: if dry_run {
                String::new()
            } else {
                request_id(input, "resend", &n.to_string())
            },
            ..Default::default()
        };
        async move {
            guardians
                .resend_guardian_invitations(request)
                .await
                .map(|reply| reply.into_inner().results)
        }
    })
    .await
}

/// Sends again every pending invitation of a domain last sent before `before`, a call's worth
/// at a time (each call's invitations are no longer "sent before" once resent, so the next
/// call goes on with the rest). Stops when a call resends none: what is left keeps failing.
pub(crate) async fn resend_sent_before(
    client: &Client,
    before: std::time::SystemTime,
    domain: &str,
    dry_run: bool,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    let at = prost_types::Timestamp::from(before);
    let mut guardians = client.guardians();
    for call in 0_u32.. {
        let request = ResendGuardianInvitationsRequest {
            sent_before: Some(at),
            domain: domain.to_owned(),
            dry_run,
            request_id: if dry_run {
                String::new()
            } else {
                let seed = format!("{at}\u{0}{domain}");
                stable_id(seed.as_bytes(), "resend-sent-before", &call.to_string())
            },
            ..Default::default()
        };
        let reply = match guardians.resend_guardian_invitations(request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) => {
                let (outcome, reason) = whole_request_outcome(&status);
                entries.push(Entry {
                    line: None,
                    student: String::new(),
                    guardian: String::new(),
                    outcome: outcome.into(),
                    reason,
                });
                break;
            }
        };
        let resent = reply.results.iter().filter(|r| r.code == 0).count();
        for result in reply.results {
            let invitation = result.invitation.clone().unwrap_or_default();
            let row = Row {
                line: 0,
                student: invitation.student_id,
                guardian: invitation.invited_email_address,
            };
            let mut entry = entry(&row, Some(&result), None, dry_run);
            entry.line = None;
            if entry.guardian.is_empty() {
                entry.guardian = invitation.invitation_id;
            }
            entries.push(entry);
        }
        // A dry run changes nothing, so the next call would choose the same invitations.
        if reply.more && dry_run {
            eprintln!(
                "more invitations match than one call takes: the dry run shows the first {}",
                entries.len()
            );
        }
        if !reply.more || dry_run || resent == 0 {
            break;
        }
    }
    entries
}

/// Removes every row's guardian (by email, or by account id when it has no `@`).
/// Removes each row's guardian: by default the link and any pending invitation of the pair (so
/// nothing is left waiting for a guardian the school removed), or only one of them.
pub(crate) async fn remove(
    client: &Client,
    input: &Input,
    chunk: usize,
    dry_run: bool,
    removal: PairRemoval,
) -> Vec<Entry> {
    // The chunk's request id tells removals of different reach apart.
    let command = format!("remove/{}", removal.as_str_name());
    chunked(input, "remove", chunk, dry_run, |n, rows| {
        let mut guardians = client.guardians();
        let request = BulkDeleteGuardiansRequest {
            rows: rows
                .iter()
                .map(|r| BulkDeleteGuardiansRow {
                    student_id: r.student.clone(),
                    guardian: Some(if r.guardian.contains('@') {
                        bulk_delete_guardians_row::Guardian::GuardianEmail(r.guardian.clone())
                    } else {
                        bulk_delete_guardians_row::Guardian::GuardianId(r.guardian.clone())
                    }),
                })
                .collect(),
            dry_run,
            request_id: if dry_run {
                String::new()
            } else {
                request_id(input, &command, &n.to_string())
            },
            removal: removal as i32,
        };
        async move {
            guardians
                .bulk_delete_guardians(request)
                .await
                .map(|reply| reply.into_inner().results)
        }
    })
    .await
}

/// How a sync run treats what the file does not list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncRun {
    /// Plan only.
    pub dry_run: bool,
    /// What may be removed.
    pub scope: SyncRemoveScope,
    /// The safety limit, in percent of a domain's links.
    pub max_removal_percent: u32,
    /// Delete beyond the safety limit.
    pub force: bool,
    /// A student listed with no guardian loses (within `scope`) those they have: right for an
    /// export that lists every student, wrong for a file that lists only some rows.
    pub allow_remove_all: bool,
}

/// Makes each student's guardians those the file lists for them; students absent from the
/// file are left alone. The whole file is planned first (dry runs) and its deletions are held,
/// per domain, to the safety limit the server holds each call to: a broken export that would
/// unlink many families is refused before anything changes, unless `force`.
pub(crate) async fn sync(
    client: &Client,
    input: &Input,
    run: SyncRun,
) -> Result<Vec<Entry>, String> {
    let mut students: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in &input.rows {
        match students
            .iter_mut()
            .find(|(s, _)| s.eq_ignore_ascii_case(&row.student))
        {
            Some((_, rows)) => rows.push(row),
            None => students.push((row.student.clone(), vec![row])),
        }
    }
    let plan = sync_pass(client, input, &students, run, Pass::Plan).await;
    if let Some(refusal) = over_limit(&plan, run) {
        return Err(refusal);
    }
    if run.dry_run {
        return Ok(plan.entries);
    }
    Ok(sync_pass(client, input, &students, run, Pass::Apply)
        .await
        .entries)
}

/// Students and the rows that list their guardians (none: the student has none).
pub(crate) type Groups<'a> = [(String, Vec<&'a Row>)];

/// The planning pass (every student as a dry run, the limit left to the run as a whole) or the
/// applying one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Plan,
    Apply,
}

/// What one pass over the file produced.
pub(crate) struct PassResult {
    pub(crate) entries: Vec<Entry>,
    /// Per domain: links before the run, and deletions planned or made.
    deletions: BTreeMap<String, (i64, i64)>,
}

pub(crate) async fn sync_pass(
    client: &Client,
    input: &Input,
    students: &Groups<'_>,
    run: SyncRun,
    pass: Pass,
) -> PassResult {
    let dry_run = pass == Pass::Plan;
    let mut entries = refused(input);
    let mut deletions = BTreeMap::new();
    let label = if pass == Pass::Plan && !run.dry_run {
        "sync (plan)"
    } else {
        "sync"
    };
    let mut progress = Progress::new(input.rows.len() as u64, label);
    let mut results = futures_util::stream::iter(students.iter())
        .map(|(student, rows)| {
            let mut guardians = client.guardians();
            let request = SyncGuardiansRequest {
                student_id: student.clone(),
                guardian_email_addresses: rows.iter().map(|r| r.guardian.clone()).collect(),
                dry_run,
                allow_remove_all: run.allow_remove_all,
                request_id: if dry_run {
                    String::new()
                } else {
                    let part = format!(
                        "{student}\u{0}{}\u{0}{}\u{0}{}",
                        run.scope.as_str_name(),
                        run.max_removal_percent,
                        run.force
                    );
                    request_id(input, "sync", &part)
                },
                remove_scope: run.scope as i32,
                max_removal_percent: i32::try_from(run.max_removal_percent).unwrap_or(i32::MAX),
                // The plan is held to the limit as a whole, below; each applied call is held
                // to it by the server as well.
                force: dry_run || run.force,
            };
            async move { (student, rows, guardians.sync_guardians(request).await) }
        })
        .buffer_unordered(IN_FLIGHT * 2);
    while let Some((student, rows, reply)) = results.next().await {
        match reply {
            Ok(reply) => {
                let reply = reply.into_inner();
                let deleted = reply
                    .actions
                    .iter()
                    .filter(|a| a.kind == sync_action::Kind::DeleteGuardian as i32)
                    .count() as i64;
                if deleted > 0 {
                    let counted = deletions.entry(reply.domain.clone()).or_insert((0, 0));
                    counted.0 = counted.0.max(reply.domain_link_count);
                    counted.1 += deleted;
                }
                for action in reply.actions {
                    let kind = sync_action::Kind::try_from(action.kind)
                        .map(|k| k.as_str_name().to_owned())
                        .unwrap_or_default();
                    let line = rows
                        .iter()
                        .find(|r| r.guardian.eq_ignore_ascii_case(&action.email_address))
                        .map(|r| r.line);
                    let failed = action.code != 0;
                    let how = if failed { "FAILED" } else { success(dry_run) };
                    entries.push(Entry {
                        line,
                        student: student.clone(),
                        guardian: action.email_address,
                        outcome: format!("{kind} {how}"),
                        reason: action.reason,
                    });
                }
            }
            Err(status) => {
                entries.extend(
                    rows.iter()
                        .map(|row| entry(row, None, Some(&status), dry_run)),
                );
            }
        }
        progress.advance(rows.len() as u64);
    }
    progress.finish();
    PassResult { entries, deletions }
}

/// Why the planned run may not go ahead: the domains whose deletions exceed the safety limit.
pub(crate) fn over_limit(plan: &PassResult, run: SyncRun) -> Option<String> {
    let over: Vec<String> = plan
        .deletions
        .iter()
        .filter_map(|(domain, &(links, planned))| {
            check_removals(planned, links, run.max_removal_percent, run.force)
                .err()
                .map(|e| {
                    format!(
                        "{domain}: {planned} of {links} links (the limit is {}, {}%)",
                        e.limit, run.max_removal_percent
                    )
                })
        })
        .collect();
    (!over.is_empty()).then(|| {
        format!(
            "the sync would delete more links than its safety limit allows, so nothing was \
             changed: {}. Check the file (a missing guardian column or a partial export looks \
             like this); to go ahead anyway, pass --force",
            over.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::without_row_index;

    #[test]
    fn server_messages_lose_the_chunks_row_index() {
        assert_eq!(
            without_row_index("rows[3].invited_email_address: no @"),
            "invited_email_address: no @"
        );
        assert_eq!(
            without_row_index("rows[12]: give a guardian"),
            "the row: give a guardian"
        );
        assert_eq!(without_row_index("no index here"), "no index here");
        assert_eq!(without_row_index("rows[x] stays"), "rows[x] stays");
    }
}
