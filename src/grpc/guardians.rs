//! GuardianService. The invitation workflow is not built yet: every RPC answers UNIMPLEMENTED
//! and names what is missing.

use super::status::unimplemented;
use crate::app::App;
use crate::proto::{self, guardian_service_server::GuardianService};
use tonic::{Request, Response, Status};

/// The guardian service over the use cases.
#[derive(Debug, Clone)]
pub struct GuardiansApi {
    #[allow(dead_code)]
    app: App,
}

impl GuardiansApi {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

macro_rules! not_yet {
    ($($method:ident($req:ident) -> $resp:ident: $what:literal;)*) => {
        #[tonic::async_trait]
        impl GuardianService for GuardiansApi {
            $(
                async fn $method(
                    &self,
                    _request: Request<proto::$req>,
                ) -> Result<Response<proto::$resp>, Status> {
                    Err(unimplemented($what))
                }
            )*
        }
    };
}

not_yet! {
    create_guardian_invitation(CreateGuardianInvitationRequest) -> CreateGuardianInvitationResponse: "the invitation workflow";
    get_guardian_invitation(GetGuardianInvitationRequest) -> GetGuardianInvitationResponse: "the invitation workflow";
    list_guardian_invitations(ListGuardianInvitationsRequest) -> ListGuardianInvitationsResponse: "the invitation workflow";
    cancel_guardian_invitation(CancelGuardianInvitationRequest) -> CancelGuardianInvitationResponse: "the invitation workflow";
    resend_guardian_invitation(ResendGuardianInvitationRequest) -> ResendGuardianInvitationResponse: "the invitation workflow";
    accept_guardian_invitation(AcceptGuardianInvitationRequest) -> AcceptGuardianInvitationResponse: "the invitation workflow";
    decline_guardian_invitation(DeclineGuardianInvitationRequest) -> DeclineGuardianInvitationResponse: "the invitation workflow";
    get_guardian(GetGuardianRequest) -> GetGuardianResponse: "the invitation workflow";
    list_guardians(ListGuardiansRequest) -> ListGuardiansResponse: "the invitation workflow";
    delete_guardian(DeleteGuardianRequest) -> DeleteGuardianResponse: "the invitation workflow";
    check_guardianship(CheckGuardianshipRequest) -> CheckGuardianshipResponse: "the invitation workflow";
    bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest) -> BulkCreateGuardianInvitationsResponse: "bulk operations";
    sync_guardians(SyncGuardiansRequest) -> SyncGuardiansResponse: "bulk operations";
    bulk_delete_guardians(BulkDeleteGuardiansRequest) -> BulkDeleteGuardiansResponse: "bulk operations";
    list_guardian_events(ListGuardianEventsRequest) -> ListGuardianEventsResponse: "the invitation workflow";
}
