//! Pure rules of the guardian domain: identifiers, email addresses, the invitation state machine
//! and domain settings. Nothing here knows about protobuf, gRPC or SQL.

// A new state, event, role or reason must be decided wherever one is matched, not fall into
// a catch-all arm.
#![warn(clippy::wildcard_enum_match_arm)]

pub mod audit;
pub mod caller;
pub mod change;
pub mod clock;
pub mod email;
pub mod error;
pub mod family;
pub mod hex;
pub mod idempotency;
pub mod ids;
pub mod invitation;
pub mod invite_rules;
pub mod link;
pub mod outbox;
pub mod paging;
pub mod policy;
pub mod settings;
pub mod summary;
pub mod sync_rules;
pub mod user;

pub use audit::{AccessRecord, AuditDetails, AuditEvent, SettingChange};
pub use caller::{Caller, CallerDomains, CallerRole, Scope};
pub use change::{ChangeKind, Position};
pub use clock::{Clock, SystemClock};
pub use email::Email;
pub use error::{FieldViolation, ValidationError};
pub use family::Family;
pub use idempotency::IdempotencyRecord;
pub use ids::{CourseId, DomainName, InvitationId, StudentRef, UserId};
pub use invitation::{
    GuardianProfile, Invitation, InvitationEvent, InvitationSource, InvitationState, RemovalReason,
    TransitionError, transition,
};
pub use link::Link;
pub use outbox::{DeliveryStatus, OutboxMessage};
pub use settings::{DomainSettings, InstitutionType, Locale, SettingsPatch, WhoCanManage};
pub use user::{Course, Role, User};
