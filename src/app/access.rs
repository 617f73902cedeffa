//! The use cases' side of access control: every use case starts from the gate's
//! [`Authorized`] and applies the domain rules of `domain::policy`.

use super::{AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::{self, Denial, Permission};
use crate::domain::{Caller, DomainName};

impl From<Denial> for AppError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::NotAllowed(why) => Self::NotAllowed(why.into()),
            Denial::StudentNotFound => Self::NotFound(Missing::Student),
            Denial::AccessDisabled => Self::GuardianAccessDisabled,
        }
    }
}

/// The caller, provided the gate admitted them for `permission`. A mismatch is a wiring bug
/// (a handler calling a use case its RPC's row does not cover), so it fails closed.
pub(crate) fn require(who: &Authorized, permission: Permission) -> AppResult<&Caller> {
    if who.permission() == permission {
        Ok(who.caller())
    } else {
        Err(AppError::Internal(format!(
            "use case needs {permission:?} but the gate admitted {:?}",
            who.permission()
        )))
    }
}

/// The caller acts in `domain`, or PERMISSION_DENIED.
pub(crate) fn require_domain(caller: &Caller, domain: &DomainName) -> AppResult<()> {
    Ok(policy::in_domain(caller, domain)?)
}
