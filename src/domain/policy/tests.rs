//! The policy decided for every kind of caller, student and setting.

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
    let run = |access: StudentAccess, record: &User, s: &DomainSettings, courses: &[DomainName]| {
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
    let partner_not_consenting = settings("p.example", WhoCanManage::VerifiedTeachers, true, &[]);
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
