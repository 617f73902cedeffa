//! GuardianService: the invitation workflow, guardian links and bulk changes. The trait impl
//! only routes; each handler (in the module of its resource) takes the gate's
//! [`crate::auth::Authorized`], parses its request once, calls one use case and converts the
//! result.

mod bulk;
pub(super) mod convert;
mod invitations;
mod links;
pub(super) mod watch;

use crate::app::App;
use crate::proto::{self, guardian_service_server::GuardianService};
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

/// One line a method: `method(Request) -> Response => handler;`.
macro_rules! route {
    ($($method:ident($req:ident) -> $res:ident => $handler:path;)*) => {
        #[tonic::async_trait]
        impl GuardianService for GuardiansApi {
            type WatchGuardianChangesStream = watch::ChangeStream;

            async fn watch_guardian_changes(
                &self,
                request: Request<proto::WatchGuardianChangesRequest>,
            ) -> Result<Response<Self::WatchGuardianChangesStream>, Status> {
                watch::watch(&self.app, request).await
            }

            $(
                async fn $method(
                    &self,
                    request: Request<proto::$req>,
                ) -> Result<Response<proto::$res>, Status> {
                    crate::grpc::convert::scoped($handler(&self.app, request)).await
                }
            )*
        }
    };
}

route! {
    create_guardian_invitation(CreateGuardianInvitationRequest)
        -> CreateGuardianInvitationResponse => invitations::create;
    get_guardian_invitation(GetGuardianInvitationRequest)
        -> GetGuardianInvitationResponse => invitations::get;
    list_guardian_invitations(ListGuardianInvitationsRequest)
        -> ListGuardianInvitationsResponse => invitations::list;
    cancel_guardian_invitation(CancelGuardianInvitationRequest)
        -> CancelGuardianInvitationResponse => invitations::cancel;
    resend_guardian_invitation(ResendGuardianInvitationRequest)
        -> ResendGuardianInvitationResponse => invitations::resend;
    accept_guardian_invitation(AcceptGuardianInvitationRequest)
        -> AcceptGuardianInvitationResponse => invitations::accept;
    decline_guardian_invitation(DeclineGuardianInvitationRequest)
        -> DeclineGuardianInvitationResponse => invitations::decline;
    get_guardian(GetGuardianRequest) -> GetGuardianResponse => links::get;
    list_guardians(ListGuardiansRequest) -> ListGuardiansResponse => links::list;
    delete_guardian(DeleteGuardianRequest) -> DeleteGuardianResponse => links::delete;
    check_guardianship(CheckGuardianshipRequest)
        -> CheckGuardianshipResponse => links::check;
    check_guardianships(CheckGuardianshipsRequest)
        -> CheckGuardianshipsResponse => links::check_many;
    list_guardian_events(ListGuardianEventsRequest)
        -> ListGuardianEventsResponse => links::events;
    bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest)
        -> BulkCreateGuardianInvitationsResponse => bulk::invite;
    bulk_delete_guardians(BulkDeleteGuardiansRequest)
        -> BulkDeleteGuardiansResponse => bulk::remove;
    resend_guardian_invitations(ResendGuardianInvitationsRequest)
        -> ResendGuardianInvitationsResponse => bulk::resend;
    sync_guardians(SyncGuardiansRequest) -> SyncGuardiansResponse => bulk::sync;
}
