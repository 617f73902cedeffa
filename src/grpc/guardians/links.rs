//! GuardianService's link handlers: read, list and remove guardians, the hot-path
//! CheckGuardianship, and the audit trail of a domain.

use super::convert::{
    event_to_proto, guardian_ref, guardian_to_proto, optional_email, optional_user_id, request_key,
    respond, student_ref, student_selector,
};
use crate::app::{App, CheckSubject, EventQuery, GuardianQuery};
use crate::domain::error::ValidationReason;
use crate::domain::{DomainName, Email, UserId, ValidationError};
use crate::grpc::authorized;
use crate::grpc::convert::{change_token, consistency, parse_field, stamped};
use crate::grpc::status::{error_fields, log_server_errors};
use crate::proto;
use crate::proto::check_guardianship_request::Guardian as CheckedGuardian;
use prost::Message;
use tonic::{Request, Response, Status};

pub(super) async fn get(
    app: &App,
    request: Request<proto::GetGuardianRequest>,
) -> Result<Response<proto::GetGuardianResponse>, Status> {
    let who = authorized(&request)?;
    let proto::GetGuardianRequest {
        student_id,
        guardian_id,
        consistency: wanted,
    } = request.into_inner();
    let student = student_ref(&who, &student_id)?;
    // Served by the primary, which holds every committed write: any consistency is met.
    consistency(wanted)?;
    let consistency_token = app.read_token();
    let view = app
        .get_guardian(&who, &student, &guardian_ref(&guardian_id)?)
        .await?;
    Ok(Response::new(proto::GetGuardianResponse {
        guardian: Some(guardian_to_proto(&view)),
        consistency_token,
    }))
}

pub(super) async fn list(
    app: &App,
    request: Request<proto::ListGuardiansRequest>,
) -> Result<Response<proto::ListGuardiansResponse>, Status> {
    let who = authorized(&request)?;
    let proto::ListGuardiansRequest {
        student_id,
        invited_email_address,
        guardian_id,
        page_size,
        page_token,
        consistency: wanted,
    } = request.into_inner();
    let query = GuardianQuery {
        student: student_selector(&who, &student_id)?,
        invited_email: optional_email("invited_email_address", &invited_email_address)?,
        guardian: if guardian_id.trim().is_empty() {
            None
        } else {
            Some(guardian_ref(&guardian_id)?)
        },
        page_size,
        page_token,
        consistency: consistency(wanted)?,
    };
    let answered = app.list_guardians(&who, query).await?;
    let page = answered.answer;
    Ok(Response::new(proto::ListGuardiansResponse {
        guardians: page.items.iter().map(guardian_to_proto).collect(),
        next_page_token: page.next_page_token,
        consistency_token: token_of(answered.at),
    }))
}

pub(super) async fn delete(
    app: &App,
    request: Request<proto::DeleteGuardianRequest>,
) -> Result<Response<proto::DeleteGuardianResponse>, Status> {
    let who = authorized(&request)?;
    let req = request.into_inner();
    let proto::DeleteGuardianRequest {
        student_id,
        guardian_id,
        allow_missing,
        request_id,
    } = &req;
    let key = request_key(&who, "DeleteGuardian", request_id, &req)?;
    let student = student_ref(&who, student_id)?;
    let guardian = guardian_ref(guardian_id)?;
    let build = |_: &()| proto::DeleteGuardianResponse::default();
    let result = app
        .delete_guardian(
            &who,
            &student,
            &guardian,
            *allow_missing,
            key.as_ref(),
            &|v| build(v).encode_to_vec(),
        )
        .await?;
    stamped(app, respond(result, build)?).await
}

pub(super) async fn check(
    app: &App,
    request: Request<proto::CheckGuardianshipRequest>,
) -> Result<Response<proto::CheckGuardianshipResponse>, Status> {
    let who = authorized(&request)?;
    let mut check = request.into_inner();
    let wanted = consistency(check.consistency.take())?;
    let (student, subject) = question("", check)?;
    let answered = app
        .check_guardianship(&who, &student, &subject, wanted)
        .await?;
    Ok(Response::new(proto::CheckGuardianshipResponse {
        linked: answered.answer.linked,
        guardian_access_enabled: answered.answer.guardian_access_enabled,
        consistency_token: token_of(answered.at),
    }))
}

pub(super) async fn check_many(
    app: &App,
    request: Request<proto::CheckGuardianshipsRequest>,
) -> Result<Response<proto::CheckGuardianshipsResponse>, Status> {
    let who = authorized(&request)?;
    let proto::CheckGuardianshipsRequest {
        checks,
        consistency: wanted,
    } = request.into_inner();
    let wanted = consistency(wanted)?;
    let questions = checks
        .into_iter()
        .enumerate()
        .map(|(i, check)| question(&format!("checks[{i}]."), check))
        .collect();
    let answered = app.check_guardianships(&who, questions, wanted).await?;
    let consistency_token = token_of(answered.at);
    let answers = answered.answer;
    log_server_errors(answers.iter().filter_map(|a| a.as_ref().err()));
    let results = answers
        .into_iter()
        .enumerate()
        .map(|(i, answer)| match answer {
            Ok(answer) => proto::GuardianshipResult {
                index: i as i32,
                linked: answer.linked,
                guardian_access_enabled: answer.guardian_access_enabled,
                ..Default::default()
            },
            Err(err) => {
                let (code, reason, message) = error_fields(err);
                proto::GuardianshipResult {
                    index: i as i32,
                    code,
                    reason,
                    message,
                    ..Default::default()
                }
            }
        })
        .collect();
    Ok(Response::new(proto::CheckGuardianshipsResponse {
        results,
        consistency_token,
    }))
}

/// One question of CheckGuardianship(s); `at` prefixes the field names (`checks[2].`).
fn question(
    at: &str,
    check: proto::CheckGuardianshipRequest,
) -> Result<(UserId, CheckSubject), ValidationError> {
    let proto::CheckGuardianshipRequest {
        student_id,
        guardian,
        consistency,
    } = check;
    if consistency.is_some() {
        // A batch has one consistency for the call (the single check took its own out).
        let why = "set consistency on the CheckGuardianships request, not on each check";
        return Err(ValidationError::invalid(&format!("{at}consistency"), why));
    }
    let student = UserId::parse(&student_id).map_err(|_| {
        ValidationError::new(
            ValidationReason::InvalidStudentId,
            &format!("{at}student_id"),
            "student_id must be the student's user id",
        )
    })?;
    let subject = match guardian {
        Some(CheckedGuardian::GuardianId(id)) => CheckSubject::Id(parse_field(
            &format!("{at}guardian_id"),
            &id,
            UserId::parse,
        )?),
        Some(CheckedGuardian::GuardianEmail(email)) => CheckSubject::Email(parse_field(
            &format!("{at}guardian_email"),
            &email,
            Email::parse,
        )?),
        None => {
            let why = "give guardian_id or guardian_email";
            return Err(ValidationError::invalid(&format!("{at}guardian"), why));
        }
    };
    Ok((student, subject))
}

pub(super) async fn events(
    app: &App,
    request: Request<proto::ListGuardianEventsRequest>,
) -> Result<Response<proto::ListGuardianEventsResponse>, Status> {
    let who = authorized(&request)?;
    let proto::ListGuardianEventsRequest {
        domain,
        student_id,
        page_size,
        page_token,
        start_token,
    } = request.into_inner();
    let query = EventQuery {
        domain: parse_field("domain", &domain, DomainName::parse)?,
        student: optional_user_id("student_id", &student_id)?,
        page_size,
        page_token,
        start: if start_token.trim().is_empty() {
            None
        } else {
            Some(change_token("start_token", &start_token)?)
        },
    };
    let page = app.list_events(&who, query).await?;
    Ok(Response::new(proto::ListGuardianEventsResponse {
        events: page.events.iter().map(event_to_proto).collect(),
        next_page_token: page.next_page_token,
        resume_token: page.resume_token,
    }))
}

/// The token of an answer's position; empty when the replica cannot say yet.
fn token_of(at: Option<crate::domain::Position>) -> String {
    at.map(crate::domain::Position::to_token)
        .unwrap_or_default()
}
