//! The gate: ONE table from RPC to the permission it needs, checked on the token before any
//! handler runs. Passing it yields [`Authorized`], the capability every handler must present to
//! the use cases; nothing else can build one.

use crate::domain::Caller;
use crate::domain::policy::{self, Denial, Permission};

/// A caller that passed the gate for one permission. Fields are private and the only
/// constructor is this module's, so a handler cannot reach a use case without it.
#[derive(Debug, Clone)]
pub struct Authorized {
    caller: Caller,
    permission: Permission,
}

impl Authorized {
    /// Who is calling.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// What the gate let them do.
    pub fn permission(&self) -> Permission {
        self.permission
    }
}

/// Every RPC of the v1 contract with the permission it needs. A method missing here is refused
/// (fail closed), and a test checks that every method of the proto is listed.
pub const METHOD_PERMISSIONS: &[(&str, Permission)] = &[
    (
        "/guardians.v1.GuardianService/CreateGuardianInvitation",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/GetGuardianInvitation",
        Permission::ReadGuardians,
    ),
    (
        "/guardians.v1.GuardianService/ListGuardianInvitations",
        Permission::ReadGuardians,
    ),
    (
        "/guardians.v1.GuardianService/CancelGuardianInvitation",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/ResendGuardianInvitation",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/AcceptGuardianInvitation",
        Permission::AnswerInvitation,
    ),
    (
        "/guardians.v1.GuardianService/DeclineGuardianInvitation",
        Permission::AnswerInvitation,
    ),
    (
        "/guardians.v1.GuardianService/GetGuardian",
        Permission::ReadGuardians,
    ),
    (
        "/guardians.v1.GuardianService/ListGuardians",
        Permission::ReadGuardians,
    ),
    (
        "/guardians.v1.GuardianService/DeleteGuardian",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/CheckGuardianship",
        Permission::ReadGuardians,
    ),
    (
        "/guardians.v1.GuardianService/CheckGuardianships",
        Permission::ReadGuardians,
    ),
    (
        "/guardians.v1.GuardianService/BulkCreateGuardianInvitations",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/SyncGuardians",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/BulkDeleteGuardians",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/ResendGuardianInvitations",
        Permission::ManageGuardians,
    ),
    (
        "/guardians.v1.GuardianService/ListGuardianEvents",
        Permission::ReadEvents,
    ),
    (
        "/guardians.v1.GuardianService/WatchGuardianChanges",
        Permission::ReadEvents,
    ),
    (
        "/guardians.v1.SettingsService/GetDomainSettings",
        Permission::ReadSettings,
    ),
    (
        "/guardians.v1.SettingsService/UpdateDomainSettings",
        Permission::WriteSettings,
    ),
    (
        "/guardians.v1.DirectoryService/UpsertUsers",
        Permission::WriteDirectory,
    ),
    (
        "/guardians.v1.DirectoryService/DeleteUsers",
        Permission::WriteDirectory,
    ),
    (
        "/guardians.v1.DirectoryService/UpsertCourse",
        Permission::WriteDirectory,
    ),
    (
        "/guardians.v1.DirectoryService/DeleteCourse",
        Permission::WriteDirectory,
    ),
    (
        "/guardians.v1.DirectoryService/GetUser",
        Permission::ReadDirectory,
    ),
    (
        "/guardians.v1.DirectoryService/ListUsers",
        Permission::ReadDirectory,
    ),
    (
        "/guardians.v1.SummaryService/PublishClassActivity",
        Permission::PublishActivity,
    ),
    (
        "/guardians.v1.SummaryService/UpdateCourseSummarySettings",
        Permission::ManageCourseSummaries,
    ),
    (
        "/guardians.v1.SummaryService/GetSummaryPreferences",
        Permission::ReadSummaries,
    ),
    (
        "/guardians.v1.SummaryService/UpdateSummaryPreferences",
        Permission::WriteSummaryPreferences,
    ),
    // A preview shows what the student's guardians get: whoever may read them may see it.
    (
        "/guardians.v1.SummaryService/PreviewGuardianSummary",
        Permission::ReadGuardians,
    ),
    (
        "/guardians.v1.SummaryService/ListSummaryDeliveries",
        Permission::ReadSummaries,
    ),
    (
        "/guardians.v1.PrivacyService/ExportPersonData",
        Permission::PrivacyAdmin,
    ),
    (
        "/guardians.v1.PrivacyService/ErasePersonData",
        Permission::PrivacyAdmin,
    ),
    (
        "/guardians.v1.PrivacyService/ListAccessRecords",
        Permission::PrivacyAdmin,
    ),
];

/// RPCs whose credential is a single-purpose token inside the request (the link in an
/// email), not a bearer token: they are served without one, and their handlers check the
/// request's token. A mail client that follows an unsubscribe link has no account.
pub const LINK_TOKEN_METHODS: &[&str] = &["/guardians.v1.SummaryService/UnsubscribeFromSummaries"];

/// Paths served without a token: health and reflection, by their service prefix.
pub const PUBLIC_PREFIXES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Whether `path` needs no bearer token.
pub fn is_public(path: &str) -> bool {
    PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p)) || LINK_TOKEN_METHODS.contains(&path)
}

/// The permission an RPC needs, if it is one of ours.
pub fn permission_for(path: &str) -> Option<Permission> {
    METHOD_PERMISSIONS
        .iter()
        .find(|(method, _)| *method == path)
        .map(|(_, permission)| *permission)
}

/// Lets `caller` through to the RPC at `path`, or says why not.
pub fn admit(caller: Caller, path: &str) -> Result<Authorized, Denial> {
    let permission = permission_for(path).ok_or(Denial::NotAllowed("unknown method"))?;
    policy::gate(&caller, permission)?;
    Ok(Authorized { caller, permission })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_rpc_of_the_proto_has_exactly_one_row() {
        let set =
            prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods = Vec::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        assert!(!methods.is_empty());
        for method in &methods {
            let rows = METHOD_PERMISSIONS
                .iter()
                .filter(|(m, _)| m == method)
                .count()
                + LINK_TOKEN_METHODS.iter().filter(|m| *m == method).count();
            assert_eq!(
                rows, 1,
                "{method} needs exactly one row in METHOD_PERMISSIONS or LINK_TOKEN_METHODS"
            );
        }
        assert_eq!(
            methods.len(),
            METHOD_PERMISSIONS.len() + LINK_TOKEN_METHODS.len(),
            "a row names no RPC of the proto"
        );
    }

    #[test]
    fn only_health_reflection_and_link_token_calls_are_public() {
        assert!(is_public("/grpc.health.v1.Health/Check"));
        assert!(is_public("/grpc.health.v1.Health/Watch"));
        assert!(is_public(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(is_public(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
        for (method, _) in METHOD_PERMISSIONS {
            assert!(!is_public(method), "{method}");
        }
        assert!(!is_public("/grpc.health.v1.HealthX/Check"));
        assert!(is_public(
            "/guardians.v1.SummaryService/UnsubscribeFromSummaries"
        ));
        assert!(!is_public(
            "/guardians.v1.SummaryService/UnsubscribeFromSummariesX"
        ));
    }
}
