//! GuardianService's invitation handlers: create, read, list, cancel, resend, and the invitee's
//! accept and decline. Every request message is destructured in full, so that a field added to
//! the contract fails the build here until it is handled.

use super::convert::{
    guardian_to_proto, invitation_to_proto, optional_email, optional_user_id, request_key, respond,
    state_from_proto, student_ref, student_selector,
};
use crate::app::{Answer, App, GuardianView, InvitationQuery, InvitationRef, InvitationView};
use crate::domain::user::parse_display_name;
use crate::domain::{Email, InvitationId, ValidationError};
use crate::grpc::authorized;
use crate::grpc::convert::{consistency, parse_field, stamped};
use crate::proto;
use prost::Message;
use tonic::{Request, Response, Status};

fn invitation_id(raw: &str) -> Result<InvitationId, ValidationError> {
    parse_field("invitation_id", raw, InvitationId::parse)
}

fn etag(raw: &str) -> Option<String> {
    (!raw.trim().is_empty()).then(|| raw.to_owned())
}

pub(super) async fn create(
    app: &App,
    request: Request<proto::CreateGuardianInvitationRequest>,
) -> Result<Response<proto::CreateGuardianInvitationResponse>, Status> {
    let who = authorized(&request)?;
    let deadline = super::bulk::request_deadline(&request);
    let req = request.into_inner();
    let proto::CreateGuardianInvitationRequest {
        student_id,
        invited_email_address,
        request_id,
        student_ids,
    } = &req;
    let key = request_key(&who, "CreateGuardianInvitation", request_id, &req)?;
    if !student_ids.is_empty() {
        if !student_id.is_empty() {
            return Err(ValidationError::invalid(
                "student_ids",
                "give student_id or student_ids, not both",
            )
            .into());
        }
        let results = super::bulk::invite_students(
            app,
            &who,
            deadline,
            student_ids,
            invited_email_address,
            key.as_ref(),
        )
        .await?;
        let response = proto::CreateGuardianInvitationResponse {
            results,
            ..Default::default()
        };
        return stamped(app, Response::new(response)).await;
    }
    let student = student_ref(&who, student_id)?;
    let invited = parse_field("invited_email_address", invited_email_address, Email::parse)?;
    let build = |v: &InvitationView| proto::CreateGuardianInvitationResponse {
        invitation: Some(invitation_to_proto(v)),
        ..Default::default()
    };
    let result = app
        .create_invitation(&who, &student, &invited, key.as_ref(), &|v| {
            build(v).encode_to_vec()
        })
        .await?;
    stamped(app, respond(result, build)?).await
}

pub(super) async fn get(
    app: &App,
    request: Request<proto::GetGuardianInvitationRequest>,
) -> Result<Response<proto::GetGuardianInvitationResponse>, Status> {
    let who = authorized(&request)?;
    let proto::GetGuardianInvitationRequest {
        student_id,
        invitation_id: id,
        consistency: wanted,
    } = request.into_inner();
    let student = student_ref(&who, &student_id)?;
    // Served by the primary, which holds every committed write: any consistency is met.
    consistency(wanted)?;
    let consistency_token = app.read_token();
    let view = app
        .get_invitation(&who, &student, invitation_id(&id)?)
        .await?;
    Ok(Response::new(proto::GetGuardianInvitationResponse {
        invitation: Some(invitation_to_proto(&view)),
        consistency_token,
    }))
}

pub(super) async fn list(
    app: &App,
    request: Request<proto::ListGuardianInvitationsRequest>,
) -> Result<Response<proto::ListGuardianInvitationsResponse>, Status> {
    let who = authorized(&request)?;
    let proto::ListGuardianInvitationsRequest {
        student_id,
        invited_email_address,
        states,
        page_size,
        page_token,
        consistency: wanted,
    } = request.into_inner();
    consistency(wanted)?;
    let consistency_token = app.read_token();
    let query = InvitationQuery {
        student: student_selector(&who, &student_id)?,
        invited_email: optional_email("invited_email_address", &invited_email_address)?,
        states: states
            .iter()
            .enumerate()
            .map(|(i, s)| state_from_proto(&format!("states[{i}]"), *s))
            .collect::<Result<_, _>>()?,
        page_size,
        page_token,
    };
    let page = app.list_invitations(&who, query).await?;
    Ok(Response::new(proto::ListGuardianInvitationsResponse {
        invitations: page.items.iter().map(invitation_to_proto).collect(),
        next_page_token: page.next_page_token,
        consistency_token,
    }))
}

pub(super) async fn cancel(
    app: &App,
    request: Request<proto::CancelGuardianInvitationRequest>,
) -> Result<Response<proto::CancelGuardianInvitationResponse>, Status> {
    let who = authorized(&request)?;
    let req = request.into_inner();
    let proto::CancelGuardianInvitationRequest {
        student_id,
        invitation_id: id,
        etag: given,
        request_id,
    } = &req;
    let key = request_key(&who, "CancelGuardianInvitation", request_id, &req)?;
    let target = InvitationRef {
        student: student_ref(&who, student_id)?,
        invitation_id: invitation_id(id)?,
        etag: etag(given),
    };
    let build = |v: &InvitationView| proto::CancelGuardianInvitationResponse {
        invitation: Some(invitation_to_proto(v)),
        ..Default::default()
    };
    let result = app
        .cancel_invitation(&who, &target, key.as_ref(), &|v| build(v).encode_to_vec())
        .await?;
    stamped(app, respond(result, build)?).await
}

pub(super) async fn resend(
    app: &App,
    request: Request<proto::ResendGuardianInvitationRequest>,
) -> Result<Response<proto::ResendGuardianInvitationResponse>, Status> {
    let who = authorized(&request)?;
    let req = request.into_inner();
    let proto::ResendGuardianInvitationRequest {
        student_id,
        invitation_id: id,
        etag: given,
        request_id,
    } = &req;
    let key = request_key(&who, "ResendGuardianInvitation", request_id, &req)?;
    let target = InvitationRef {
        student: student_ref(&who, student_id)?,
        invitation_id: invitation_id(id)?,
        etag: etag(given),
    };
    let build = |v: &InvitationView| proto::ResendGuardianInvitationResponse {
        invitation: Some(invitation_to_proto(v)),
        ..Default::default()
    };
    let result = app
        .resend_invitation(&who, &target, key.as_ref(), &|v| build(v).encode_to_vec())
        .await?;
    stamped(app, respond(result, build)?).await
}

pub(super) async fn accept(
    app: &App,
    request: Request<proto::AcceptGuardianInvitationRequest>,
) -> Result<Response<proto::AcceptGuardianInvitationResponse>, Status> {
    let who = authorized(&request)?;
    let req = request.into_inner();
    let proto::AcceptGuardianInvitationRequest {
        token,
        guardian_id,
        email,
        display_name,
        request_id,
    } = &req;
    let key = request_key(&who, "AcceptGuardianInvitation", request_id, &req)?;
    let answer = Answer {
        token: token.clone(),
        guardian_id: optional_user_id("guardian_id", guardian_id)?,
        email: optional_email("email", email)?,
        display_name: parse_field("display_name", display_name, parse_display_name)?,
    };
    let build = |v: &GuardianView| proto::AcceptGuardianInvitationResponse {
        guardian: Some(guardian_to_proto(v)),
        ..Default::default()
    };
    let accepted = app
        .accept_invitation(&who, &answer, key.as_ref(), &|v| build(v).encode_to_vec())
        .await?;
    let mut response = respond(accepted.first, build)?;
    response.get_mut().family_guardians = accepted.family.iter().map(guardian_to_proto).collect();
    stamped(app, response).await
}

pub(super) async fn decline(
    app: &App,
    request: Request<proto::DeclineGuardianInvitationRequest>,
) -> Result<Response<proto::DeclineGuardianInvitationResponse>, Status> {
    let who = authorized(&request)?;
    let req = request.into_inner();
    let proto::DeclineGuardianInvitationRequest {
        token,
        guardian_id,
        email,
        request_id,
    } = &req;
    let key = request_key(&who, "DeclineGuardianInvitation", request_id, &req)?;
    let answer = Answer {
        token: token.clone(),
        guardian_id: optional_user_id("guardian_id", guardian_id)?,
        email: optional_email("email", email)?,
        display_name: String::new(),
    };
    let build = |v: &InvitationView| proto::DeclineGuardianInvitationResponse {
        invitation: Some(invitation_to_proto(v)),
        ..Default::default()
    };
    let result = app
        .decline_invitation(&who, &answer, key.as_ref(), &|v| build(v).encode_to_vec())
        .await?;
    stamped(app, respond(result, build)?).await
}
