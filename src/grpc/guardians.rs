//! GuardianService: the invitation workflow and guardian links. Each handler takes the gate's
//! [`crate::auth::Authorized`], parses its request once, calls one use case and converts the
//! result; bulk calls answer per row.

use super::convert::parse_field;
use super::guardians_convert::{
    event_to_proto, guardian_ref, guardian_to_proto, invitation_to_proto, request_key, respond,
    state_from_proto, student_ref, student_selector,
};
use super::status::to_status;
use crate::app::{
    Answer, App, CheckSubject, EventQuery, GuardianQuery, GuardianSelector, InvitationQuery,
    InvitationRef, Replay, SyncKind,
};
use crate::auth::authorized;
use crate::domain::user::parse_display_name;
use crate::domain::{DomainName, Email, InvitationId, UserId, ValidationError};
use crate::proto::{self, guardian_service_server::GuardianService};
use prost::Message;
use tonic::{Request, Response, Status};

/// The guardian service over the use cases.
#[derive(Debug, Clone)]
pub struct GuardiansApi {
    app: App,
}

impl GuardiansApi {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

fn optional_email(field: &str, raw: &str) -> Result<Option<Email>, ValidationError> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_field(field, raw, Email::parse).map(Some)
    }
}

fn invitation_id(raw: &str) -> Result<InvitationId, ValidationError> {
    parse_field("invitation_id", raw, InvitationId::parse)
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

fn row_error(index: usize, err: crate::app::AppError) -> proto::BulkRowResult {
    let status = to_status(err);
    proto::BulkRowResult {
        row_index: index as i32,
        code: status.code() as i32,
        reason: error_reason(&status),
        message: status.message().to_owned(),
        invitation: None,
    }
}

fn error_reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn etag(raw: String) -> Option<String> {
    (!raw.trim().is_empty()).then_some(raw)
}

#[tonic::async_trait]
impl GuardianService for GuardiansApi {
    async fn create_guardian_invitation(
        &self,
        request: Request<proto::CreateGuardianInvitationRequest>,
    ) -> Result<Response<proto::CreateGuardianInvitationResponse>, Status> {
        let who = authorized(&request)?;
        let req = request.into_inner();
        let key = request_key(&who, "CreateGuardianInvitation", &req.request_id, &req)?;
        let student = student_ref(&who, &req.student_id)?;
        let invited = parse_field(
            "invited_email_address",
            &req.invited_email_address,
            Email::parse,
        )?;
        let build = |v: &crate::app::InvitationView| proto::CreateGuardianInvitationResponse {
            invitation: Some(invitation_to_proto(v)),
        };
        let result = self
            .app
            .create_invitation(&who, &student, &invited, key.as_ref(), &|v| {
                build(v).encode_to_vec()
            })
            .await?;
        respond(result, build)
    }

    async fn get_guardian_invitation(
        &self,
        request: Request<proto::GetGuardianInvitationRequest>,
    ) -> Result<Response<proto::GetGuardianInvitationResponse>, Status> {
        let who = authorized(&request)?;
        let proto::GetGuardianInvitationRequest {
            student_id,
            invitation_id: id,
        } = request.into_inner();
        let student = student_ref(&who, &student_id)?;
        let view = self
            .app
            .get_invitation(&who, &student, invitation_id(&id)?)
            .await?;
        Ok(Response::new(proto::GetGuardianInvitationResponse {
            invitation: Some(invitation_to_proto(&view)),
        }))
    }

    async fn list_guardian_invitations(
        &self,
        request: Request<proto::ListGuardianInvitationsRequest>,
    ) -> Result<Response<proto::ListGuardianInvitationsResponse>, Status> {
        let who = authorized(&request)?;
        let proto::ListGuardianInvitationsRequest {
            student_id,
            invited_email_address,
            states,
            page_size,
            page_token,
        } = request.into_inner();
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
        let page = self.app.list_invitations(&who, query).await?;
        Ok(Response::new(proto::ListGuardianInvitationsResponse {
            invitations: page.items.iter().map(invitation_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn cancel_guardian_invitation(
        &self,
        request: Request<proto::CancelGuardianInvitationRequest>,
    ) -> Result<Response<proto::CancelGuardianInvitationResponse>, Status> {
        let who = authorized(&request)?;
        let req = request.into_inner();
        let key = request_key(&who, "CancelGuardianInvitation", &req.request_id, &req)?;
        let target = InvitationRef {
            student: student_ref(&who, &req.student_id)?,
            invitation_id: invitation_id(&req.invitation_id)?,
            etag: etag(req.etag),
        };
        let build = |v: &crate::app::InvitationView| proto::CancelGuardianInvitationResponse {
            invitation: Some(invitation_to_proto(v)),
        };
        let result = self
            .app
            .cancel_invitation(&who, &target, key.as_ref(), &|v| build(v).encode_to_vec())
            .await?;
        respond(result, build)
    }

    async fn resend_guardian_invitation(
        &self,
        request: Request<proto::ResendGuardianInvitationRequest>,
    ) -> Result<Response<proto::ResendGuardianInvitationResponse>, Status> {
        let who = authorized(&request)?;
        let req = request.into_inner();
        let key = request_key(&who, "ResendGuardianInvitation", &req.request_id, &req)?;
        let target = InvitationRef {
            student: student_ref(&who, &req.student_id)?,
            invitation_id: invitation_id(&req.invitation_id)?,
            etag: etag(req.etag),
        };
        let build = |v: &crate::app::InvitationView| proto::ResendGuardianInvitationResponse {
            invitation: Some(invitation_to_proto(v)),
        };
        let result = self
            .app
            .resend_invitation(&who, &target, key.as_ref(), &|v| build(v).encode_to_vec())
            .await?;
        respond(result, build)
    }

    async fn accept_guardian_invitation(
        &self,
        request: Request<proto::AcceptGuardianInvitationRequest>,
    ) -> Result<Response<proto::AcceptGuardianInvitationResponse>, Status> {
        let who = authorized(&request)?;
        let req = request.into_inner();
        let key = request_key(&who, "AcceptGuardianInvitation", &req.request_id, &req)?;
        let answer = Answer {
            token: req.token.clone(),
            guardian_id: if req.guardian_id.trim().is_empty() {
                None
            } else {
                Some(parse_field("guardian_id", &req.guardian_id, UserId::parse)?)
            },
            email: optional_email("email", &req.email)?,
            display_name: parse_field("display_name", &req.display_name, parse_display_name)?,
        };
        let build = |v: &crate::app::GuardianView| proto::AcceptGuardianInvitationResponse {
            guardian: Some(guardian_to_proto(v)),
        };
        let result = self
            .app
            .accept_invitation(&who, &answer, key.as_ref(), &|v| build(v).encode_to_vec())
            .await?;
        respond(result, build)
    }

    async fn decline_guardian_invitation(
        &self,
        request: Request<proto::DeclineGuardianInvitationRequest>,
    ) -> Result<Response<proto::DeclineGuardianInvitationResponse>, Status> {
        let who = authorized(&request)?;
        let req = request.into_inner();
        let key = request_key(&who, "DeclineGuardianInvitation", &req.request_id, &req)?;
        let answer = Answer {
            token: req.token.clone(),
            guardian_id: None,
            email: optional_email("email", &req.email)?,
            display_name: String::new(),
        };
        let build = |v: &crate::app::InvitationView| proto::DeclineGuardianInvitationResponse {
            invitation: Some(invitation_to_proto(v)),
        };
        let result = self
            .app
            .decline_invitation(&who, &answer, key.as_ref(), &|v| build(v).encode_to_vec())
            .await?;
        respond(result, build)
    }

    async fn get_guardian(
        &self,
        request: Request<proto::GetGuardianRequest>,
    ) -> Result<Response<proto::GetGuardianResponse>, Status> {
        let who = authorized(&request)?;
        let proto::GetGuardianRequest {
            student_id,
            guardian_id,
        } = request.into_inner();
        let student = student_ref(&who, &student_id)?;
        let view = self
            .app
            .get_guardian(&who, &student, &guardian_ref(&guardian_id)?)
            .await?;
        Ok(Response::new(proto::GetGuardianResponse {
            guardian: Some(guardian_to_proto(&view)),
        }))
    }

    async fn list_guardians(
        &self,
        request: Request<proto::ListGuardiansRequest>,
    ) -> Result<Response<proto::ListGuardiansResponse>, Status> {
        let who = authorized(&request)?;
        let proto::ListGuardiansRequest {
            student_id,
            invited_email_address,
            guardian_id,
            page_size,
            page_token,
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
        };
        let page = self.app.list_guardians(&who, query).await?;
        Ok(Response::new(proto::ListGuardiansResponse {
            guardians: page.items.iter().map(guardian_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_guardian(
        &self,
        request: Request<proto::DeleteGuardianRequest>,
    ) -> Result<Response<proto::DeleteGuardianResponse>, Status> {
        let who = authorized(&request)?;
        let req = request.into_inner();
        let key = request_key(&who, "DeleteGuardian", &req.request_id, &req)?;
        let student = student_ref(&who, &req.student_id)?;
        let guardian = guardian_ref(&req.guardian_id)?;
        let build = |_: &()| proto::DeleteGuardianResponse {};
        let result = self
            .app
            .delete_guardian(
                &who,
                &student,
                &guardian,
                req.allow_missing,
                key.as_ref(),
                &|v| build(v).encode_to_vec(),
            )
            .await?;
        respond(result, build)
    }

    async fn check_guardianship(
        &self,
        request: Request<proto::CheckGuardianshipRequest>,
    ) -> Result<Response<proto::CheckGuardianshipResponse>, Status> {
        let who = authorized(&request)?;
        let proto::CheckGuardianshipRequest {
            student_id,
            guardian,
        } = request.into_inner();
        let student = UserId::parse(&student_id).map_err(|_| {
            ValidationError::new(
                crate::domain::error::ValidationReason::InvalidStudentId,
                "student_id",
                "student_id must be the student's user id",
            )
        })?;
        let subject = match guardian {
            Some(proto::check_guardianship_request::Guardian::GuardianId(id)) => {
                CheckSubject::Id(parse_field("guardian_id", &id, UserId::parse)?)
            }
            Some(proto::check_guardianship_request::Guardian::GuardianEmail(email)) => {
                CheckSubject::Email(parse_field("guardian_email", &email, Email::parse)?)
            }
            None => {
                return Err(ValidationError::invalid(
                    "guardian",
                    "give guardian_id or guardian_email",
                )
                .into());
            }
        };
        let answer = self
            .app
            .check_guardianship(&who, &student, &subject)
            .await?;
        Ok(Response::new(proto::CheckGuardianshipResponse {
            linked: answer.linked,
            guardian_access_enabled: answer.guardian_access_enabled,
        }))
    }

    async fn bulk_create_guardian_invitations(
        &self,
        request: Request<proto::BulkCreateGuardianInvitationsRequest>,
    ) -> Result<Response<proto::BulkCreateGuardianInvitationsResponse>, Status> {
        let who = authorized(&request)?;
        let deadline = request_deadline(&request);
        let req = request.into_inner();
        let key = request_key(&who, "BulkCreateGuardianInvitations", &req.request_id, &req)?;
        let rows = req
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let student = student_ref(&who, &row.student_id)
                    .map_err(|e| e.for_field(&format!("rows[{i}].student_id")))?;
                let email = parse_field(
                    &format!("rows[{i}].invited_email_address"),
                    &row.invited_email_address,
                    Email::parse,
                )?;
                Ok((student, email))
            })
            .collect();
        let encode = |v: &crate::app::InvitationView| invitation_to_proto(v).encode_to_vec();
        let outcomes = self
            .app
            .bulk_invite(&who, rows, req.dry_run, deadline, key.as_ref(), &encode)
            .await?;
        let results = outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| match outcome {
                Ok(Replay::Fresh(view)) => row_ok(i, Some(invitation_to_proto(&view))),
                Ok(Replay::Replayed(bytes)) => {
                    row_ok(i, proto::GuardianInvitation::decode(bytes.as_slice()).ok())
                }
                Err(err) => row_error(i, err),
            })
            .collect();
        Ok(Response::new(
            proto::BulkCreateGuardianInvitationsResponse { results },
        ))
    }

    async fn sync_guardians(
        &self,
        request: Request<proto::SyncGuardiansRequest>,
    ) -> Result<Response<proto::SyncGuardiansResponse>, Status> {
        let who = authorized(&request)?;
        let req = request.into_inner();
        let key = request_key(&who, "SyncGuardians", &req.request_id, &req)?;
        let student = student_ref(&who, &req.student_id)?;
        let desired = req
            .guardian_email_addresses
            .iter()
            .enumerate()
            .map(|(i, e)| parse_field(&format!("guardian_email_addresses[{i}]"), e, Email::parse))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = self
            .app
            .sync_guardians(
                &who,
                &student,
                desired,
                req.dry_run,
                req.allow_remove_all,
                key.as_ref(),
            )
            .await?;
        let actions = plan
            .into_iter()
            .map(|a| {
                let (code, reason) = match a.outcome {
                    None | Some(Ok(())) => (0, String::new()),
                    Some(Err(err)) => {
                        let status = to_status(err);
                        (status.code() as i32, error_reason(&status))
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
        Ok(Response::new(proto::SyncGuardiansResponse {
            actions,
            applied: !req.dry_run,
        }))
    }

    async fn bulk_delete_guardians(
        &self,
        request: Request<proto::BulkDeleteGuardiansRequest>,
    ) -> Result<Response<proto::BulkDeleteGuardiansResponse>, Status> {
        let who = authorized(&request)?;
        let deadline = request_deadline(&request);
        let req = request.into_inner();
        let key = request_key(&who, "BulkDeleteGuardians", &req.request_id, &req)?;
        let rows = req
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let student = student_ref(&who, &row.student_id)
                    .map_err(|e| e.for_field(&format!("rows[{i}].student_id")))?;
                let guardian = match &row.guardian {
                    Some(proto::bulk_delete_guardians_row::Guardian::GuardianId(id)) => {
                        GuardianSelector::Id(parse_field(
                            &format!("rows[{i}].guardian_id"),
                            id,
                            UserId::parse,
                        )?)
                    }
                    Some(proto::bulk_delete_guardians_row::Guardian::GuardianEmail(email)) => {
                        GuardianSelector::Email(parse_field(
                            &format!("rows[{i}].guardian_email"),
                            email,
                            Email::parse,
                        )?)
                    }
                    None => {
                        return Err(ValidationError::invalid(
                            &format!("rows[{i}].guardian"),
                            "give guardian_id or guardian_email",
                        ));
                    }
                };
                Ok((student, guardian))
            })
            .collect();
        let outcomes = self
            .app
            .bulk_remove(&who, rows, req.dry_run, deadline, key.as_ref(), &|_| {
                Vec::new()
            })
            .await?;
        let results = outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| match outcome {
                Ok(_) => row_ok(i, None),
                Err(err) => row_error(i, err),
            })
            .collect();
        Ok(Response::new(proto::BulkDeleteGuardiansResponse {
            results,
        }))
    }

    async fn list_guardian_events(
        &self,
        request: Request<proto::ListGuardianEventsRequest>,
    ) -> Result<Response<proto::ListGuardianEventsResponse>, Status> {
        let who = authorized(&request)?;
        let proto::ListGuardianEventsRequest {
            domain,
            student_id,
            page_size,
            page_token,
        } = request.into_inner();
        let query = EventQuery {
            domain: parse_field("domain", &domain, DomainName::parse)?,
            student: if student_id.trim().is_empty() {
                None
            } else {
                Some(parse_field("student_id", &student_id, UserId::parse)?)
            },
            page_size,
            page_token,
        };
        let page = self.app.list_events(&who, query).await?;
        Ok(Response::new(proto::ListGuardianEventsResponse {
            events: page.items.iter().map(event_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

/// The deadline the transport gave this call, as the use cases measure time.
fn request_deadline<T>(request: &Request<T>) -> Option<std::time::Instant> {
    request
        .extensions()
        .get::<super::deadline::RequestDeadline>()
        .map(|d| d.0.into_std())
}
