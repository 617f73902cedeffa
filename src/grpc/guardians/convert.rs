//! GuardianService's proto <-> domain conversion: request fields parsed once, views turned
//! into messages with the caller's visibility applied, request ids and replayed responses.

use crate::app::{
    GuardianRef, GuardianView, InvitationView, Replay, RequestKey, StudentLabel, StudentSelector,
};
use crate::auth::Authorized;
use crate::domain::error::ValidationReason;
use crate::domain::{
    CallerRole, DeliveryStatus, Email, InvitationSource, InvitationState, RemovalReason,
    StudentRef, UserId, ValidationError,
};
use crate::grpc::convert::{parse_field, timestamp};
use crate::proto;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Response, Status};

/// `student_id` of a single-student RPC: a user id, an email, or `me` for a student caller.
pub(super) fn student_ref(who: &Authorized, raw: &str) -> Result<StudentRef, ValidationError> {
    let caller = who.caller();
    match raw.trim() {
        "me" if caller.role == CallerRole::Student => UserId::parse(&caller.subject)
            .map(StudentRef::Id)
            .map_err(|e| e.for_field("student_id")),
        "-" | "me" => Err(ValidationError::new(
            ValidationReason::InvalidStudentId,
            "student_id",
            "this call names one student",
        )),
        other => StudentRef::parse(other),
    }
}

/// `student_id` of a listing: one student or `-`.
pub(super) fn student_selector(
    who: &Authorized,
    raw: &str,
) -> Result<StudentSelector, ValidationError> {
    if raw.trim() == "-" {
        Ok(StudentSelector::All)
    } else {
        student_ref(who, raw).map(StudentSelector::One)
    }
}

/// An optional email field: empty means "not given".
pub(super) fn optional_email(field: &str, raw: &str) -> Result<Option<Email>, ValidationError> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_field(field, raw, Email::parse).map(Some)
    }
}

/// An optional account id field: empty means "not given".
pub(super) fn optional_user_id(field: &str, raw: &str) -> Result<Option<UserId>, ValidationError> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_field(field, raw, UserId::parse).map(Some)
    }
}

/// `guardian_id`: an account id or `me`.
pub(crate) fn guardian_ref(raw: &str) -> Result<GuardianRef, ValidationError> {
    match raw.trim() {
        "me" => Ok(GuardianRef::Me),
        other => parse_field("guardian_id", other, UserId::parse).map(GuardianRef::Id),
    }
}

/// The optional `request_id` (a UUID) with a digest of the whole request.
pub(in crate::grpc) fn request_key(
    who: &Authorized,
    method: &'static str,
    request_id: &str,
    request: &impl Message,
) -> Result<Option<RequestKey>, ValidationError> {
    let request_id = request_id.trim();
    if request_id.is_empty() {
        return Ok(None);
    }
    let id = uuid::Uuid::try_parse(request_id)
        .map_err(|_| ValidationError::invalid("request_id", "request_id must be a UUID"))?;
    let caller = who.caller();
    Ok(Some(RequestKey {
        principal: caller.principal_key(),
        request_id: id.hyphenated().to_string(),
        method,
        request_hash: crate::domain::hex::hex(&Sha256::digest(request.encode_to_vec())),
    }))
}

/// A response from a use case's result, or the replayed first response.
pub(in crate::grpc) fn respond<T, M: Message + Default>(
    result: Replay<T>,
    build: impl Fn(&T) -> M,
) -> Result<Response<M>, Status> {
    match result {
        Replay::Fresh(value) => Ok(Response::new(build(&value))),
        Replay::Replayed(bytes) => M::decode(bytes.as_slice())
            .map(Response::new)
            .map_err(|_| Status::internal("internal error")),
    }
}

/// A state filter entry.
pub(super) fn state_from_proto(field: &str, raw: i32) -> Result<InvitationState, ValidationError> {
    match proto::InvitationState::try_from(raw) {
        Ok(proto::InvitationState::Pending) => Ok(InvitationState::Pending),
        Ok(proto::InvitationState::Accepted) => Ok(InvitationState::Accepted),
        Ok(proto::InvitationState::Expired) => Ok(InvitationState::Expired),
        // Any reason: the filter matches REMOVED as a whole.
        Ok(proto::InvitationState::Removed) => {
            Ok(InvitationState::Removed(RemovalReason::Cancelled))
        }
        Ok(proto::InvitationState::Unspecified) | Err(_) => Err(ValidationError::invalid(
            field,
            "states must be PENDING, ACCEPTED, EXPIRED or REMOVED",
        )),
    }
}

fn state_to_proto(state: InvitationState) -> (proto::InvitationState, proto::RemovalReason) {
    let reason = match state.removal_reason() {
        None => proto::RemovalReason::Unspecified,
        Some(RemovalReason::Cancelled) => proto::RemovalReason::Cancelled,
        Some(RemovalReason::Declined) => proto::RemovalReason::Declined,
        Some(RemovalReason::GuardianRemoved) => proto::RemovalReason::GuardianRemoved,
        Some(RemovalReason::StudentRemoved) => proto::RemovalReason::StudentRemoved,
        Some(RemovalReason::GuardianErased) => proto::RemovalReason::GuardianErased,
    };
    let state = match state {
        InvitationState::Pending => proto::InvitationState::Pending,
        InvitationState::Accepted => proto::InvitationState::Accepted,
        InvitationState::Expired => proto::InvitationState::Expired,
        InvitationState::Removed(_) => proto::InvitationState::Removed,
    };
    (state, reason)
}

/// The proto form of an invitation as the caller may see it.
pub(super) fn invitation_to_proto(view: &InvitationView) -> proto::GuardianInvitation {
    let inv = &view.invitation;
    let (state, removal_reason) = state_to_proto(view.observed_state);
    proto::GuardianInvitation {
        invitation_id: inv.id.to_text(),
        student_id: inv.student_id.to_string(),
        invited_email_address: if view.show_invited_email {
            inv.invited_email.to_string()
        } else {
            String::new()
        },
        state: state as i32,
        removal_reason: removal_reason as i32,
        inviter_id: inv.inviter_id.clone(),
        guardian_id: inv
            .guardian
            .as_ref()
            .map(|g| g.guardian_id.to_string())
            .unwrap_or_default(),
        create_time: Some(timestamp(inv.create_time)),
        update_time: Some(timestamp(inv.update_time)),
        expire_time: Some(timestamp(inv.expire_time)),
        etag: inv.etag(),
        delivery_status: match view.delivery {
            None => proto::DeliveryStatus::Unspecified,
            Some(DeliveryStatus::Queued) => proto::DeliveryStatus::Queued,
            Some(DeliveryStatus::Sent) => proto::DeliveryStatus::Sent,
            Some(DeliveryStatus::Failed) => proto::DeliveryStatus::Failed,
        } as i32,
        source: source_to_proto(inv.source) as i32,
        student_email_address: student_email(view.student.as_ref()),
        student_display_name: student_name(view.student.as_ref()),
        family_id: inv.family_id.clone().unwrap_or_default(),
    }
}

fn student_email(label: Option<&StudentLabel>) -> String {
    label.map(|l| l.email.to_string()).unwrap_or_default()
}

fn student_name(label: Option<&StudentLabel>) -> String {
    label.map(|l| l.display_name.clone()).unwrap_or_default()
}

fn source_to_proto(source: InvitationSource) -> proto::InvitationSource {
    match source {
        InvitationSource::Manual => proto::InvitationSource::Manual,
        InvitationSource::Sync => proto::InvitationSource::Sync,
    }
}

/// The proto form of a guardian link as the caller may see it.
pub(super) fn guardian_to_proto(view: &GuardianView) -> proto::Guardian {
    let link = &view.link;
    proto::Guardian {
        student_id: view.student_id.to_string(),
        guardian_id: link.guardian.guardian_id.to_string(),
        guardian_profile: Some(proto::GuardianProfile {
            email_address: link.guardian.email.to_string(),
            display_name: link.guardian.display_name.clone(),
        }),
        invited_email_address: if view.show_invited_email {
            link.invited_email.to_string()
        } else {
            String::new()
        },
        invitation_id: link.invitation_id.to_text(),
        create_time: Some(timestamp(link.linked_time)),
        source: source_to_proto(link.source) as i32,
        student_email_address: student_email(view.student.as_ref()),
        student_display_name: student_name(view.student.as_ref()),
    }
}

/// The proto form of an audit event.
pub(super) fn event_to_proto(event: &crate::domain::AuditEvent) -> proto::GuardianEvent {
    proto::GuardianEvent {
        event_id: event.event_id.to_string(),
        domain: event.domain.to_string(),
        student_id: event
            .student_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        invitation_id: event
            .invitation_id
            .map(|id| id.to_text())
            .unwrap_or_default(),
        action: event.action.clone(),
        actor_id: event.actor_id.clone(),
        request_id: event.request_id.clone().unwrap_or_default(),
        create_time: Some(timestamp(event.create_time)),
        setting_changes: event
            .details
            .setting_changes
            .iter()
            .map(|c| proto::SettingChange {
                field: c.field.clone(),
                old_value: c.old_value.clone(),
                new_value: c.new_value.clone(),
            })
            .collect(),
        counts: event
            .details
            .counts
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    }
}
