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
#[derive(Debug, Clone, PartialEq, Eq)]
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
mod tests {
    use super::*;
    use crate::domain::caller::CallerDomains;
    use crate::domain::{Email, Role};

    fn d(name: &str) -> DomainName {
        DomainName::parse(name).unwrap()
    }

    fn caller(role: CallerRole, sub: &str, domain: Option<&str>, scopes: &[Scope]) -> Caller {
        Caller {
            subject: sub.into(),
            role,
            domains: CallerDomains::Only(domain.map(d).into_iter().collect()),
            email: None,
            scopes: scopes.to_vec(),
        }
    }

    fn user(id: &str, domain: &str, role: Role, verified: bool) -> User {
        User {
            user_id: UserId::parse(id).unwrap(),
            domain: d(domain),
            email: Email::parse(&format!("{id}@{domain}")).unwrap(),
            role,
            verified_teacher: verified,
            display_name: String::new(),
            locale: None,
        }
    }

    fn settings(domain: &str, who: WhoCanManage, access: bool, allow: &[&str]) -> DomainSettings {
        DomainSettings {
            who_can_manage: who,
            guardian_access_enabled: access,
            allowlisted_domains: allow.iter().map(|a| d(a)).collect(),
            ..DomainSettings::defaults(d(domain))
        }
    }

    #[test]
    fn the_gate_follows_roles_and_scopes() {
        let admin = caller(CallerRole::Admin, "a", Some("s.example"), &[]);
        let student = caller(CallerRole::Student, "s", Some("s.example"), &[]);
        let reader = caller(
            CallerRole::Service,
            "svc",
            Some("s.example"),
            &[Scope::GuardiansRead],
        );
        assert!(gate(&admin, Permission::WriteSettings).is_ok());
        assert!(gate(&student, Permission::ManageGuardians).is_err());
        assert!(gate(&student, Permission::ReadGuardians).is_ok());
        assert!(gate(&reader, Permission::ReadGuardians).is_ok());
        assert!(gate(&reader, Permission::ManageGuardians).is_err());
        assert!(gate(&admin, Permission::AnswerInvitation).is_err());
    }

    #[test]
    fn a_verified_teacher_manages_taught_students_only_when_the_domain_lets_teachers() {
        let t = caller(CallerRole::Teacher, "t1", Some("s.example"), &[]);
        let verified = user("t1", "s.example", Role::Teacher, true);
        let unverified = user("t1", "s.example", Role::Teacher, false);
        let kid = user("k1", "s.example", Role::Student, false);
        let open = settings("s.example", WhoCanManage::VerifiedTeachers, true, &[]);
        let closed = settings("s.example", WhoCanManage::DomainAdminsOnly, true, &[]);
        let taught = [d("s.example")];
        let run =
            |access: StudentAccess, record: &User, s: &DomainSettings, courses: &[DomainName]| {
                decide(
                    &t,
                    &access,
                    &StudentFacts {
                        student: Some(&kid),
                        student_settings: Some(s),
                        caller_settings: Some(s),
                        caller_record: Some(record),
                        teaching_course_domains: courses,
                        caller_is_guardian: false,
                    },
                )
            };
        assert_eq!(
            run(StudentAccess::Manage, &verified, &open, &taught),
            Ok(Grant { may_manage: true })
        );
        assert!(run(StudentAccess::Manage, &verified, &closed, &taught).is_err());
        assert_eq!(
            run(StudentAccess::Read, &verified, &closed, &taught),
            Ok(Grant { may_manage: false })
        );
        assert!(
            run(StudentAccess::Read, &verified, &open, &[]).is_err(),
            "not taught"
        );
        // The token cannot make a teacher verified: only the directory record does.
        assert!(run(StudentAccess::Manage, &unverified, &open, &taught).is_err());
    }

    #[test]
    fn partner_students_need_the_allowlist_and_access_in_both_domains() {
        let t = caller(CallerRole::Teacher, "t1", Some("s.example"), &[]);
        let record = user("t1", "s.example", Role::Teacher, true);
        let kid = user("p1", "p.example", Role::Student, false);
        let home_on = settings(
            "s.example",
            WhoCanManage::VerifiedTeachers,
            true,
            &["p.example"],
        );
        let home_not_listed = settings("s.example", WhoCanManage::VerifiedTeachers, true, &[]);
        let partner_on = settings(
            "p.example",
            WhoCanManage::VerifiedTeachers,
            true,
            &["s.example"],
        );
        let partner_off = settings(
            "p.example",
            WhoCanManage::VerifiedTeachers,
            false,
            &["s.example"],
        );
        let partner_not_consenting =
            settings("p.example", WhoCanManage::VerifiedTeachers, true, &[]);
        let taught = [d("s.example")];
        let facts = |home: &DomainSettings, partner: &DomainSettings| -> Result<Grant, Denial> {
            decide(
                &t,
                &StudentAccess::Manage,
                &StudentFacts {
                    student: Some(&kid),
                    student_settings: Some(partner),
                    caller_settings: Some(home),
                    caller_record: Some(&record),
                    teaching_course_domains: &taught,
                    caller_is_guardian: false,
                },
            )
        };
        assert!(facts(&home_on, &partner_on).is_ok());
        assert_eq!(facts(&home_on, &partner_off), Err(Denial::AccessDisabled));
        assert!(matches!(
            facts(&home_not_listed, &partner_on),
            Err(Denial::NotAllowed(_))
        ));
        // One-sided: the teacher's domain lists the partner, the partner never agreed.
        assert!(matches!(
            facts(&home_on, &partner_not_consenting),
            Err(Denial::NotAllowed(_))
        ));
        let read = decide(
            &t,
            &StudentAccess::Read,
            &StudentFacts {
                student: Some(&kid),
                student_settings: Some(&partner_not_consenting),
                caller_settings: Some(&home_on),
                caller_record: Some(&record),
                teaching_course_domains: &taught,
                caller_is_guardian: false,
            },
        );
        assert!(
            matches!(read, Err(Denial::NotAllowed(_))),
            "no reading either"
        );
    }

    #[test]
    fn admins_and_services_are_told_not_found_others_are_denied() {
        let none = StudentFacts {
            student: None,
            student_settings: None,
            caller_settings: None,
            caller_record: None,
            teaching_course_domains: &[],
            caller_is_guardian: false,
        };
        let admin = caller(CallerRole::Admin, "a", Some("s.example"), &[]);
        let teacher = caller(CallerRole::Teacher, "t", Some("s.example"), &[]);
        assert_eq!(
            decide(&admin, &StudentAccess::Read, &none),
            Err(Denial::StudentNotFound)
        );
        assert!(matches!(
            decide(&teacher, &StudentAccess::Read, &none),
            Err(Denial::NotAllowed(_))
        ));
        let elsewhere = user("k", "other.example", Role::Student, false);
        let other = StudentFacts {
            student: Some(&elsewhere),
            ..none
        };
        assert_eq!(
            decide(&admin, &StudentAccess::Manage, &other),
            Err(Denial::StudentNotFound),
            "no cross-tenant leak"
        );
    }

    #[test]
    fn a_guardian_may_remove_only_their_own_link() {
        let g = caller(CallerRole::Guardian, "g1", None, &[]);
        let kid = user("k", "s.example", Role::Student, false);
        let facts = StudentFacts {
            student: Some(&kid),
            student_settings: None,
            caller_settings: None,
            caller_record: None,
            teaching_course_domains: &[],
            caller_is_guardian: true,
        };
        assert!(
            decide(
                &g,
                &StudentAccess::DeleteLink(UserId::parse("g1").unwrap()),
                &facts
            )
            .is_ok()
        );
        assert!(
            decide(
                &g,
                &StudentAccess::DeleteLink(UserId::parse("g2").unwrap()),
                &facts
            )
            .is_err()
        );
        assert!(decide(&g, &StudentAccess::Manage, &facts).is_err());
        let stranger = StudentFacts {
            caller_is_guardian: false,
            ..facts
        };
        assert!(decide(&g, &StudentAccess::Read, &stranger).is_err());
    }
}
