//! Who may do what (api.md, "Who may do what"), as pure functions: the per-RPC gate on role and
//! scope, and the per-student decision that needs facts from the directory and settings.

use super::caller::{Caller, CallerRole, Scope};
use super::ids::{DomainName, UserId};
use super::settings::{DomainSettings, WhoCanManage};
use super::user::User;

/// What an RPC needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read a student's guardians and invitations (and CheckGuardianship).
    ReadGuardians,
    /// Create, resend or cancel invitations, delete guardians, bulk and sync calls.
    ManageGuardians,
    /// Accept or decline an invitation with its token.
    AnswerInvitation,
    /// Read a domain's audit trail.
    ReadEvents,
    /// Read a domain's settings.
    ReadSettings,
    /// Change a domain's settings.
    WriteSettings,
    /// Read the directory.
    ReadDirectory,
    /// Change the directory.
    WriteDirectory,
    /// Publish class activity for summaries.
    PublishActivity,
    /// Leave a class out of summaries, or put it back.
    ManageCourseSummaries,
    /// Read a guardian's summary preferences and deliveries.
    ReadSummaries,
    /// Change a guardian's summary preferences.
    WriteSummaryPreferences,
    /// Export or erase a person's records.
    PrivacyAdmin,
}

/// Why a caller is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// `PERMISSION_DENIED` / `NOT_ALLOWED_TO_MANAGE`, with a reason safe to show.
    NotAllowed(&'static str),
    /// `NOT_FOUND` / `STUDENT_NOT_FOUND`: only admins and services are told, and a student of
    /// another domain is "not found" to them, so nothing leaks across tenants.
    StudentNotFound,
    /// `FAILED_PRECONDITION` / `GUARDIAN_ACCESS_DISABLED`.
    AccessDisabled,
}

/// The gate: may this caller call an RPC that needs `permission` at all? Decided on the
/// token alone (role and scopes); the domain and student are checked afterwards.
pub fn gate(caller: &Caller, permission: Permission) -> Result<(), Denial> {
    use CallerRole as R;
    use Permission as P;
    let scope = |s: Scope| caller.has_scope(s);
    let allowed = match (permission, caller.role) {
        (P::ReadGuardians, R::Admin | R::Teacher | R::Student | R::Guardian) => true,
        (P::ReadGuardians, R::Service) => {
            scope(Scope::GuardiansRead) || scope(Scope::GuardiansWrite)
        }
        (P::ManageGuardians, R::Admin | R::Teacher | R::Guardian) => true,
        (P::ManageGuardians, R::Student) => false,
        (P::ManageGuardians, R::Service) => scope(Scope::GuardiansWrite),
        (P::AnswerInvitation, R::Guardian) => true,
        (P::AnswerInvitation, R::Admin | R::Teacher | R::Student) => false,
        (P::AnswerInvitation, R::Service) => scope(Scope::InvitationsAccept),
        (P::ReadEvents, R::Admin) => true,
        (P::ReadEvents, R::Teacher | R::Student | R::Guardian) => false,
        (P::ReadEvents, R::Service) => scope(Scope::GuardiansRead),
        (P::ReadSettings, R::Admin | R::Teacher) => true,
        (P::ReadSettings, R::Student | R::Guardian) => false,
        (P::ReadSettings, R::Service) => scope(Scope::SettingsRead) || scope(Scope::SettingsWrite),
        (P::WriteSettings, R::Admin) => true,
        (P::WriteSettings, R::Teacher | R::Student | R::Guardian) => false,
        (P::WriteSettings, R::Service) => scope(Scope::SettingsWrite),
        (P::ReadDirectory | P::WriteDirectory, R::Admin) => true,
        (P::ReadDirectory | P::WriteDirectory, R::Teacher | R::Student | R::Guardian) => false,
        (P::ReadDirectory | P::WriteDirectory, R::Service) => scope(Scope::DirectoryWrite),
        (P::PublishActivity, R::Admin) => true,
        (P::PublishActivity, R::Teacher | R::Student | R::Guardian) => false,
        (P::PublishActivity, R::Service) => scope(Scope::ActivityWrite),
        // A teacher's own choice about their class, whatever who_can_manage says.
        (P::ManageCourseSummaries, R::Admin | R::Teacher) => true,
        (P::ManageCourseSummaries, R::Student | R::Guardian) => false,
        (P::ManageCourseSummaries, R::Service) => scope(Scope::DirectoryWrite),
        (P::ReadSummaries, R::Admin | R::Guardian) => true,
        (P::ReadSummaries, R::Teacher | R::Student) => false,
        (P::ReadSummaries, R::Service) => {
            scope(Scope::GuardiansRead) || scope(Scope::GuardiansWrite)
        }
        (P::WriteSummaryPreferences, R::Admin | R::Guardian) => true,
        (P::WriteSummaryPreferences, R::Teacher | R::Student) => false,
        (P::WriteSummaryPreferences, R::Service) => scope(Scope::GuardiansWrite),
        (P::PrivacyAdmin, R::Admin) => true,
        (P::PrivacyAdmin, R::Teacher | R::Student | R::Guardian) => false,
        (P::PrivacyAdmin, R::Service) => scope(Scope::PrivacyAdmin),
    };
    if allowed {
        Ok(())
    } else if caller.role == R::Service {
        Err(Denial::NotAllowed(
            "the service token lacks the scope this call needs",
        ))
    } else {
        Err(Denial::NotAllowed(
            "the caller's role may not make this call",
        ))
    }
}

/// Whether the caller acts in `domain` (for settings, directory and events of a domain).
pub fn in_domain(caller: &Caller, domain: &DomainName) -> Result<(), Denial> {
    if caller.acts_in(domain) {
        Ok(())
    } else {
        Err(Denial::NotAllowed("the caller does not act in this domain"))
    }
}

const PARTNER_REFUSED: &str =
    "the teacher's domain and the student's domain do not both allowlist each other";

/// Whether a course of one domain may hold a student of another, and so whether that domain's
/// teachers may act on the student at all: both domains must list each other (api.md, "Consent
/// is mutual"). One side's list alone is never enough, or a domain could claim any student by
/// listing their school.
pub fn partners_consent(
    course_domain: &DomainSettings,
    student_domain: &DomainSettings,
) -> Result<(), Denial> {
    let listed_by_course = course_domain
        .allowlisted_domains
        .contains(&student_domain.domain);
    let listed_by_student = student_domain
        .allowlisted_domains
        .contains(&course_domain.domain);
    if listed_by_course && listed_by_student {
        Ok(())
    } else {
        Err(Denial::NotAllowed(PARTNER_REFUSED))
    }
}

/// What a caller wants to do with one student's guardians.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StudentAccess {
    /// See guardians and invitations.
    Read,
    /// Create, resend, cancel, delete, bulk, sync.
    Manage,
    /// Delete the link of this guardian (a guardian may delete their own).
    DeleteLink(UserId),
}

/// Facts gathered before deciding.
#[derive(Debug, Clone, Copy)]
pub struct StudentFacts<'a> {
    /// The student as the directory has it; `None` when unknown.
    pub student: Option<&'a User>,
    /// Settings of the student's domain.
    pub student_settings: Option<&'a DomainSettings>,
    /// Settings of the caller's home domain (people).
    pub caller_settings: Option<&'a DomainSettings>,
    /// The caller's directory record (teachers: verification lives there, never in the token).
    pub caller_record: Option<&'a User>,
    /// Domains of the courses in which the caller teaches the student.
    pub teaching_course_domains: &'a [DomainName],
    /// The caller is an ACCEPTED guardian of the student.
    pub caller_is_guardian: bool,
}

/// What a permitted caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The caller could manage the student's guardians, so sees `invited_email_address`.
    pub may_manage: bool,
}

/// The per-student decision.
pub fn decide(
    caller: &Caller,
    access: &StudentAccess,
    facts: &StudentFacts<'_>,
) -> Result<Grant, Denial> {
    let manages = !matches!(access, StudentAccess::Read);
    let Some(student) = facts.student else {
        return match caller.role {
            CallerRole::Admin | CallerRole::Service => Err(Denial::StudentNotFound),
            CallerRole::Teacher | CallerRole::Student | CallerRole::Guardian => Err(
                Denial::NotAllowed("the student is not visible to the caller"),
            ),
        };
    };
    match caller.role {
        CallerRole::Admin | CallerRole::Service => {
            if !caller.acts_in(&student.domain) {
                return Err(Denial::StudentNotFound);
            }
            if caller.role == CallerRole::Service
                && manages
                && !caller.has_scope(Scope::GuardiansWrite)
            {
                return Err(Denial::NotAllowed(
                    "the service token lacks guardians.write",
                ));
            }
            Ok(Grant { may_manage: true })
        }
        CallerRole::Teacher => decide_teacher(caller, manages, student, facts),
        CallerRole::Student => {
            if manages {
                Err(Denial::NotAllowed("students may not manage guardians"))
            } else if caller.subject == student.user_id.as_str() {
                Ok(Grant { may_manage: false })
            } else {
                Err(Denial::NotAllowed(
                    "students may only see their own guardians",
                ))
            }
        }
        CallerRole::Guardian => {
            if !facts.caller_is_guardian {
                return Err(Denial::NotAllowed(
                    "the caller is not a guardian of this student",
                ));
            }
            match access {
                StudentAccess::Read => Ok(Grant { may_manage: false }),
                StudentAccess::DeleteLink(guardian) if guardian.as_str() == caller.subject => {
                    Ok(Grant { may_manage: false })
                }
                StudentAccess::DeleteLink(_) | StudentAccess::Manage => Err(Denial::NotAllowed(
                    "guardians may only remove their own link",
                )),
            }
        }
    }
}

fn decide_teacher(
    caller: &Caller,
    manages: bool,
    student: &User,
    facts: &StudentFacts<'_>,
) -> Result<Grant, Denial> {
    let Some(home) = caller.home_domain() else {
        return Err(Denial::NotAllowed("a teacher token must name one domain"));
    };
    if !facts.teaching_course_domains.contains(home) {
        return Err(Denial::NotAllowed(
            "teachers may only see students they teach",
        ));
    }
    let home_settings = facts.caller_settings;
    let partner = &student.domain != home;
    if partner {
        let (Some(home_settings), Some(student_settings)) = (home_settings, facts.student_settings)
        else {
            return Err(Denial::NotAllowed(PARTNER_REFUSED));
        };
        partners_consent(home_settings, student_settings)?;
    }
    // Verification comes from the directory, never from the token.
    let verified = facts.caller_record.is_some_and(|t| {
        t.verified_teacher && &t.domain == home && t.user_id.as_str() == caller.subject
    });
    let policy_allows =
        home_settings.is_some_and(|s| s.who_can_manage == WhoCanManage::VerifiedTeachers);
    let may_manage = verified && policy_allows;
    if !manages {
        return Ok(Grant { may_manage });
    }
    if !policy_allows {
        return Err(Denial::NotAllowed(
            "the domain lets only administrators manage guardians",
        ));
    }
    if !verified {
        return Err(Denial::NotAllowed(
            "only verified teachers may manage guardians",
        ));
    }
    if partner {
        let on = |s: Option<&DomainSettings>| s.is_some_and(|s| s.guardian_access_enabled);
        if !(on(home_settings) && on(facts.student_settings)) {
            return Err(Denial::AccessDisabled);
        }
    }
    Ok(Grant { may_manage: true })
}

#[cfg(test)]
mod tests;
