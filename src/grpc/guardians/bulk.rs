//! GuardianService's bulk handlers: invite and remove many, and sync one student's guardians.
//! Each answers per row; a row's failure is its own result, not the call's.

use super::convert::{invitation_to_proto, request_key, student_ref};
use crate::app::{
    App, AppError, GuardianSelector, InvitationView, PairRemoval, Removal, Replay, ResendSelection,
    RowOutcome, SyncKind, SyncOptions,
};
use crate::auth::Authorized;
use crate::domain::sync_rules::{DEFAULT_MAX_REMOVAL_PERCENT, RemoveScope};
use crate::domain::{DomainName, Email, StudentRef, UserId, ValidationError};
use crate::grpc::authorized;
use crate::grpc::convert::{instant, parse_field, stamped};
use crate::grpc::status::{error_fields, log_server_errors};
use crate::proto;
use crate::proto::bulk_delete_guardians_row::Guardian as RowGuardian;
use prost::Message;
use tonic::{Request, Response, Status};

/// The deadline the transport gave this call, as the use cases measure time.
pub(super) fn request_deadline<T>(request: &Request<T>) -> Option<std::time::Instant> {
    request
        .extensions()
        .get::<crate::grpc::deadline::RequestDeadline>()
        .map(|d| d.0.into_std())
}

fn row_ok(index: usize, invitation: Option<proto::GuardianInvitation>) -> proto::BulkRowResult {
    proto::BulkRowResult {
        row_index: index as i32,
        code: 0,
        reason: String::new(),
        message: String::new(),
        invitation,
    }
}

fn row_error(index: usize, err: AppError) -> proto::BulkRowResult {
    let (code, reason, message) = error_fields(err);
    proto::BulkRowResult {
        row_index: index as i32,
        code,
        reason,
        message,
        invitation: None,
    }
}

/// Row results from per-row outcomes, logging the server-side failures among them once.
fn row_results<T>(
    outcomes: Vec<Result<T, AppError>>,
    ok: impl Fn(usize, T) -> proto::BulkRowResult,
) -> Vec<proto::BulkRowResult> {
    log_server_errors(outcomes.iter().filter_map(|o| o.as_ref().err()));
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| match outcome {
            Ok(value) => ok(i, value),
            Err(err) => row_error(i, err),
        })
        .collect()
}

/// One (student, address) row, parsed; a bad field is the row's error, named by its index.
fn pair_row(
    who: &Authorized,
    index: usize,
    student_id: &str,
    email: &str,
) -> Result<(StudentRef, Email), ValidationError> {
    let student = student_ref(who, student_id)
        .map_err(|e| e.for_field(&format!("rows[{index}].student_id")))?;
    let field = format!("rows[{index}].invited_email_address");
    let email = parse_field(&field, email, Email::parse)?;
    Ok((student, email))
}

/// Row results of rows that each answer with an invitation (fresh, or the first answer again).
fn invitation_results(outcomes: Vec<RowOutcome<InvitationView>>) -> Vec<proto::BulkRowResult> {
    row_results(outcomes, |i, outcome| match outcome {
        Replay::Fresh(view) => row_ok(i, Some(invitation_to_proto(&view))),
        Replay::Replayed(bytes) => {
            row_ok(i, proto::GuardianInvitation::decode(bytes.as_slice()).ok())
        }
    })
}

pub(super) async fn invite(
    app: &App,
    request: Request<proto::BulkCreateGuardianInvitationsRequest>,
) -> Result<Response<proto::BulkCreateGuardianInvitationsResponse>, Status> {
    let who = authorized(&request)?;
    let deadline = request_deadline(&request);
    let req = request.into_inner();
    let proto::BulkCreateGuardianInvitationsRequest {
        rows,
        dry_run,
        request_id,
    } = &req;
    let key = request_key(&who, "BulkCreateGuardianInvitations", request_id, &req)?;
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let proto::BulkCreateGuardianInvitationsRow {
                student_id,
                invited_email_address,
            } = row;
            pair_row(&who, i, student_id, invited_email_address)
        })
        .collect();
    let encode = |v: &InvitationView| invitation_to_proto(v).encode_to_vec();
    let outcomes = app
        .bulk_invite(&who, rows, *dry_run, deadline, key.as_ref(), &encode)
        .await?;
    let results = invitation_results(outcomes);
    let response = proto::BulkCreateGuardianInvitationsResponse {
        results,
        ..Default::default()
    };
    stamped(app, Response::new(response)).await
}

/// Most students one CreateGuardianInvitation may name (`student_ids`).
pub(super) const MAX_FAMILY_STUDENTS: usize = 100;

/// CreateGuardianInvitation with `student_ids`: the one address for each student, as the rows
/// of a bulk call (each checked, limited and answered alone), so they share one family email.
pub(super) async fn invite_students(
    app: &App,
    who: &Authorized,
    deadline: Option<std::time::Instant>,
    student_ids: &[String],
    invited_email_address: &str,
    key: Option<&crate::app::RequestKey>,
) -> Result<Vec<proto::BulkRowResult>, Status> {
    if student_ids.len() > MAX_FAMILY_STUDENTS {
        return Err(ValidationError::invalid(
            "student_ids",
            format!("at most {MAX_FAMILY_STUDENTS} students a call"),
        )
        .into());
    }
    let rows = student_ids
        .iter()
        .enumerate()
        .map(|(i, student)| pair_row(who, i, student, invited_email_address))
        .collect();
    let encode = |v: &InvitationView| invitation_to_proto(v).encode_to_vec();
    let outcomes = app
        .bulk_invite(who, rows, false, deadline, key, &encode)
        .await?;
    Ok(invitation_results(outcomes))
}

pub(super) async fn resend(
    app: &App,
    request: Request<proto::ResendGuardianInvitationsRequest>,
) -> Result<Response<proto::ResendGuardianInvitationsResponse>, Status> {
    let who = authorized(&request)?;
    let deadline = request_deadline(&request);
    let req = request.into_inner();
    let proto::ResendGuardianInvitationsRequest {
        rows,
        sent_before,
        domain,
        dry_run,
        request_id,
    } = &req;
    let key = request_key(&who, "ResendGuardianInvitations", request_id, &req)?;
    let selection = match sent_before {
        Some(_) if !rows.is_empty() => {
            return Err(
                ValidationError::invalid("rows", "give rows or sent_before, not both").into(),
            );
        }
        Some(at) => {
            let before = instant("sent_before", *at)?;
            let domain = if domain.is_empty() {
                who.caller().home_domain().cloned().ok_or_else(|| {
                    ValidationError::invalid("domain", "name the domain to choose in")
                })?
            } else {
                parse_field("domain", domain, DomainName::parse)?
            };
            ResendSelection::SentBefore(domain, before)
        }
        None => ResendSelection::Pairs(
            rows.iter()
                .enumerate()
                .map(|(i, row)| {
                    let proto::ResendGuardianInvitationsRow {
                        student_id,
                        invited_email_address,
                    } = row;
                    pair_row(&who, i, student_id, invited_email_address)
                })
                .collect(),
        ),
    };
    let encode = |v: &InvitationView| invitation_to_proto(v).encode_to_vec();
    let outcome = app
        .bulk_resend(&who, selection, *dry_run, deadline, key.as_ref(), &encode)
        .await?;
    let mut results = invitation_results(outcome.rows);
    // A chosen invitation that failed is still named, by its ids.
    for (result, (student, id)) in results.iter_mut().zip(&outcome.chosen) {
        if result.invitation.is_none() {
            result.invitation = Some(proto::GuardianInvitation {
                invitation_id: id.to_text(),
                student_id: student.to_string(),
                ..Default::default()
            });
        }
    }
    let response = proto::ResendGuardianInvitationsResponse {
        results,
        more: outcome.more,
        ..Default::default()
    };
    stamped(app, Response::new(response)).await
}

pub(super) async fn remove(
    app: &App,
    request: Request<proto::BulkDeleteGuardiansRequest>,
) -> Result<Response<proto::BulkDeleteGuardiansResponse>, Status> {
    let who = authorized(&request)?;
    let deadline = request_deadline(&request);
    let req = request.into_inner();
    let proto::BulkDeleteGuardiansRequest {
        rows,
        dry_run,
        request_id,
        removal,
    } = &req;
    let key = request_key(&who, "BulkDeleteGuardians", request_id, &req)?;
    let how = Removal {
        allow_missing: false,
        dry_run: *dry_run,
        what: pair_removal_from_proto(*removal)?,
    };
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let proto::BulkDeleteGuardiansRow {
                student_id,
                guardian,
            } = row;
            let student = student_ref(&who, student_id)
                .map_err(|e| e.for_field(&format!("rows[{i}].student_id")))?;
            let guardian = match guardian {
                Some(RowGuardian::GuardianId(id)) => {
                    let field = format!("rows[{i}].guardian_id");
                    GuardianSelector::Id(parse_field(&field, id, UserId::parse)?)
                }
                Some(RowGuardian::GuardianEmail(email)) => {
                    let field = format!("rows[{i}].guardian_email");
                    GuardianSelector::Email(parse_field(&field, email, Email::parse)?)
                }
                None => {
                    let field = format!("rows[{i}].guardian");
                    let why = "give guardian_id or guardian_email";
                    return Err(ValidationError::invalid(&field, why));
                }
            };
            Ok((student, guardian))
        })
        .collect();
    let outcomes = app
        .bulk_remove(&who, rows, how, deadline, key.as_ref(), &|_| Vec::new())
        .await?;
    let results = row_results(outcomes, |i, _| row_ok(i, None));
    let response = proto::BulkDeleteGuardiansResponse {
        results,
        ..Default::default()
    };
    stamped(app, Response::new(response)).await
}

pub(super) async fn sync(
    app: &App,
    request: Request<proto::SyncGuardiansRequest>,
) -> Result<Response<proto::SyncGuardiansResponse>, Status> {
    let who = authorized(&request)?;
    let req = request.into_inner();
    let proto::SyncGuardiansRequest {
        student_id,
        guardian_email_addresses,
        dry_run,
        allow_remove_all,
        request_id,
        remove_scope,
        max_removal_percent,
        force,
    } = &req;
    let key = request_key(&who, "SyncGuardians", request_id, &req)?;
    let student = student_ref(&who, student_id)?;
    let how = SyncOptions {
        dry_run: *dry_run,
        allow_remove_all: *allow_remove_all,
        scope: remove_scope_from_proto(*remove_scope)?,
        max_removal_percent: match *max_removal_percent {
            0 => DEFAULT_MAX_REMOVAL_PERCENT,
            // Out of range (negative included) is refused by the use case.
            other => u32::try_from(other).unwrap_or(0),
        },
        force: *force,
    };
    let desired = guardian_email_addresses
        .iter()
        .enumerate()
        .map(|(i, e)| parse_field(&format!("guardian_email_addresses[{i}]"), e, Email::parse))
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = app
        .sync_guardians(&who, &student, desired, how, key.as_ref())
        .await?;
    log_server_errors(
        outcome
            .actions
            .iter()
            .filter_map(|a| a.outcome.as_ref()?.as_ref().err()),
    );
    let actions = outcome
        .actions
        .into_iter()
        .map(|a| {
            let (code, reason) = match a.outcome {
                None | Some(Ok(())) => (0, String::new()),
                Some(Err(err)) => {
                    let (code, reason, _) = error_fields(err);
                    (code, reason)
                }
            };
            proto::SyncAction {
                kind: match a.kind {
                    SyncKind::Invite => proto::sync_action::Kind::Invite,
                    SyncKind::CancelInvitation => proto::sync_action::Kind::CancelInvitation,
                    SyncKind::DeleteGuardian => proto::sync_action::Kind::DeleteGuardian,
                    SyncKind::Keep => proto::sync_action::Kind::Keep,
                } as i32,
                email_address: a.email.to_string(),
                guardian_id: a.guardian_id.map(|g| g.to_string()).unwrap_or_default(),
                invitation_id: a.invitation_id.map(|i| i.to_text()).unwrap_or_default(),
                code,
                reason,
            }
        })
        .collect();
    let response = proto::SyncGuardiansResponse {
        actions,
        applied: !*dry_run,
        domain: outcome.domain.to_string(),
        domain_link_count: outcome.domain_link_count,
        ..Default::default()
    };
    stamped(app, Response::new(response)).await
}

/// A sync's removal scope; unset is SYNCED_ONLY.
fn remove_scope_from_proto(raw: i32) -> Result<RemoveScope, ValidationError> {
    match proto::SyncRemoveScope::try_from(raw) {
        Ok(proto::SyncRemoveScope::Unspecified | proto::SyncRemoveScope::SyncedOnly) => {
            Ok(RemoveScope::SyncedOnly)
        }
        Ok(proto::SyncRemoveScope::All) => Ok(RemoveScope::All),
        Err(_) => Err(ValidationError::invalid(
            "remove_scope",
            "remove_scope must be SYNCED_ONLY or ALL",
        )),
    }
}

/// What a bulk removal row ends; unset is LINK_ONLY.
fn pair_removal_from_proto(raw: i32) -> Result<PairRemoval, ValidationError> {
    use proto::PairRemoval as P;
    match P::try_from(raw) {
        Ok(P::Unspecified | P::LinkOnly) => Ok(PairRemoval::LinkOnly),
        Ok(P::PendingOnly) => Ok(PairRemoval::PendingOnly),
        Ok(P::LinkAndPending) => Ok(PairRemoval::LinkAndPending),
        Err(_) => Err(ValidationError::invalid(
            "removal",
            "removal must be LINK_ONLY, PENDING_ONLY or LINK_AND_PENDING",
        )),
    }
}
