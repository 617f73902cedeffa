//! Resolving the student a request names and deciding, with the facts the policy needs, what
//! the caller may do with that student's guardians.

use super::{App, AppResult};
use crate::domain::policy::{self, Grant, StudentAccess, StudentFacts};
use crate::domain::{Caller, CallerRole, DomainSettings, Role, StudentRef, User, UserId};
use crate::store::Session;

/// A student the caller was allowed to act on.
#[derive(Debug, Clone)]
pub(crate) struct StudentContext {
    /// The student's directory record.
    pub student: User,
    /// Settings of the student's domain.
    pub settings: DomainSettings,
    /// What the caller may see.
    pub grant: Grant,
}

impl App {
    /// Looks the student up and decides `access` for `caller`. Unknown students are
    /// NOT_FOUND to admins and services and PERMISSION_DENIED to everyone else.
    pub(crate) async fn authorize_student(
        &self,
        caller: &Caller,
        student_ref: &StudentRef,
        access: StudentAccess,
    ) -> AppResult<StudentContext> {
        let mut session = self.store.session().await?;
        self.authorize_in(session.as_mut(), caller, student_ref, access)
            .await
    }

    /// [`App::authorize_student`] on a session already open: a write's own transaction.
    pub(crate) async fn authorize_in(
        &self,
        session: &mut dyn Session,
        caller: &Caller,
        student_ref: &StudentRef,
        access: StudentAccess,
    ) -> AppResult<StudentContext> {
        let student = match student_ref {
            StudentRef::Id(id) => session.get_user(id).await?,
            StudentRef::Email(email) => session.get_user_by_email(email).await?,
        }
        .filter(|u| u.role == Role::Student);
        self.decide_for(session, caller, student, access).await
    }

    /// Decides for a student already looked up (`None`: unknown).
    pub(crate) async fn decide_for(
        &self,
        session: &mut dyn Session,
        caller: &Caller,
        student: Option<User>,
        access: StudentAccess,
    ) -> AppResult<StudentContext> {
        let student_settings = match &student {
            Some(s) => Some(self.settings_via(session, &s.domain).await?),
            None => None,
        };
        let subject = UserId::parse(&caller.subject).ok();
        let mut caller_settings = None;
        let mut caller_record = None;
        let mut courses = Vec::new();
        let mut caller_is_guardian = false;
        if let (Some(student), Some(subject)) = (&student, &subject) {
            match caller.role {
                CallerRole::Teacher => {
                    if let Some(home) = caller.home_domain() {
                        caller_settings = Some(self.settings_via(session, home).await?);
                    }
                    caller_record = session.get_user(subject).await?;
                    courses = session
                        .courses_teaching(subject, &student.user_id)
                        .await?
                        .into_iter()
                        .map(|(_, domain)| domain)
                        .collect();
                }
                CallerRole::Guardian => {
                    caller_is_guardian = session.is_linked_by_id(&student.user_id, subject).await?;
                }
                CallerRole::Admin | CallerRole::Student | CallerRole::Service => {}
            }
        }
        let facts = StudentFacts {
            student: student.as_ref(),
            student_settings: student_settings.as_ref(),
            caller_settings: caller_settings.as_ref(),
            caller_record: caller_record.as_ref(),
            teaching_course_domains: &courses,
            caller_is_guardian,
        };
        let grant = policy::decide(caller, &access, &facts)?;
        context(student, student_settings, grant)
    }

    /// [`App::decide_for`] for an administrator or a service, whose decision needs only the
    /// student and their domain's settings: from the settings cache, `session` opened only on
    /// a miss.
    pub(crate) async fn decide_as_manager(
        &self,
        caller: &Caller,
        student: Option<User>,
        session: &mut Option<Box<dyn Session>>,
        access: StudentAccess,
    ) -> AppResult<StudentContext> {
        debug_assert!(matches!(
            caller.role,
            CallerRole::Admin | CallerRole::Service
        ));
        let student_settings = match &student {
            Some(s) => Some(self.cached_settings(&s.domain, session).await?),
            None => None,
        };
        let facts = StudentFacts {
            student: student.as_ref(),
            student_settings: student_settings.as_ref(),
            caller_settings: None,
            caller_record: None,
            teaching_course_domains: &[],
            caller_is_guardian: false,
        };
        let grant = policy::decide(caller, &access, &facts)?;
        context(student, student_settings, grant)
    }
}

/// The context of a student the policy allowed.
fn context(
    student: Option<User>,
    settings: Option<DomainSettings>,
    grant: Grant,
) -> AppResult<StudentContext> {
    match (student, settings) {
        (Some(student), Some(settings)) => Ok(StudentContext {
            student,
            settings,
            grant,
        }),
        // decide() refuses unknown students, so this is unreachable in practice.
        _ => Err(super::AppError::NotFound(super::Missing::Student)),
    }
}
