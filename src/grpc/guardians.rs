//! GuardianService: the invitation workflow and guardian links. Each handler takes the gate's
//! [`crate::auth::Authorized`], parses its request once, calls one use case and converts the
//! result. Bulk RPCs answer UNIMPLEMENTED until the bulk operations are built.

use super::convert::parse_field;
use super::guardians_convert::{
    event_to_proto, guardian_ref, guardian_to_proto, invitation_to_proto, request_key, respond,
    state_from_proto, student_ref, student_selector,
};
use super::status::unimplemented;
use crate::app::{
    Answer, App, CheckSubject, EventQuery, GuardianQuery, InvitationQuery, InvitationRef,
};
use crate::auth::authorized;
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
            display_name: req.display_name.clone(),
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
        _request: Request<proto::BulkCreateGuardianInvitationsRequest>,
    ) -> Result<Response<proto::BulkCreateGuardianInvitationsResponse>, Status> {
        Err(unimplemented("bulk operations"))
    }

    async fn sync_guardians(
        &self,
        _request: Request<proto::SyncGuardiansRequest>,
    ) -> Result<Response<proto::SyncGuardiansResponse>, Status> {
        Err(unimplemented("bulk operations"))
    }

    async fn bulk_delete_guardians(
        &self,
        _request: Request<proto::BulkDeleteGuardiansRequest>,
    ) -> Result<Response<proto::BulkDeleteGuardiansResponse>, Status> {
        Err(unimplemented("bulk operations"))
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
