//! DirectoryService: proto <-> domain for users and courses, and the handlers.

use super::convert::{missing, parse_field, scoped, stamped};
use crate::app::{App, UserQuery};
use crate::domain::{
    Course, CourseId, DomainName, Email, Locale, Role, User, UserId, ValidationError,
    user::parse_display_name,
};
use crate::grpc::authorized;
use crate::proto::{self, directory_service_server::DirectoryService};
use tonic::{Request, Response, Status};

/// The directory service over the use cases.
#[derive(Debug, Clone)]
pub struct DirectoryApi {
    app: App,
}

impl DirectoryApi {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl DirectoryService for DirectoryApi {
    async fn upsert_users(
        &self,
        request: Request<proto::UpsertUsersRequest>,
    ) -> Result<Response<proto::UpsertUsersResponse>, Status> {
        scoped(async move {
            let who = authorized(&request)?;
            let proto::UpsertUsersRequest { users } = request.into_inner();
            let users = users
                .into_iter()
                .enumerate()
                .map(|(i, u)| user_from_proto(&format!("users[{i}]"), u))
                .collect::<Result<Vec<_>, _>>()?;
            let stored = self.app.upsert_users(&who, users).await?;
            let response = proto::UpsertUsersResponse {
                users: stored.iter().map(user_to_proto).collect(),
                ..Default::default()
            };
            stamped(&self.app, Response::new(response)).await
        })
        .await
    }

    async fn delete_users(
        &self,
        request: Request<proto::DeleteUsersRequest>,
    ) -> Result<Response<proto::DeleteUsersResponse>, Status> {
        scoped(async move {
            let who = authorized(&request)?;
            let proto::DeleteUsersRequest { user_ids } = request.into_inner();
            let ids = user_ids
                .iter()
                .enumerate()
                .map(|(i, id)| parse_field(&format!("user_ids[{i}]"), id, UserId::parse))
                .collect::<Result<Vec<_>, _>>()?;
            let deleted = self.app.delete_users(&who, &ids).await?;
            let response = proto::DeleteUsersResponse {
                deleted_count: deleted as i32,
                ..Default::default()
            };
            stamped(&self.app, Response::new(response)).await
        })
        .await
    }

    async fn upsert_course(
        &self,
        request: Request<proto::UpsertCourseRequest>,
    ) -> Result<Response<proto::UpsertCourseResponse>, Status> {
        scoped(async move {
            let who = authorized(&request)?;
            let proto::UpsertCourseRequest { course } = request.into_inner();
            let course = course_from_proto(course.ok_or_else(|| missing("course"))?)?;
            let stored = self.app.upsert_course(&who, course).await?;
            let response = proto::UpsertCourseResponse {
                course: Some(course_to_proto(&stored)),
                ..Default::default()
            };
            stamped(&self.app, Response::new(response)).await
        })
        .await
    }

    async fn delete_course(
        &self,
        request: Request<proto::DeleteCourseRequest>,
    ) -> Result<Response<proto::DeleteCourseResponse>, Status> {
        scoped(async move {
            let who = authorized(&request)?;
            let proto::DeleteCourseRequest { course_id } = request.into_inner();
            let id = parse_field("course_id", &course_id, CourseId::parse)?;
            self.app.delete_course(&who, &id).await?;
            stamped(
                &self.app,
                Response::new(proto::DeleteCourseResponse::default()),
            )
            .await
        })
        .await
    }

    async fn get_user(
        &self,
        request: Request<proto::GetUserRequest>,
    ) -> Result<Response<proto::GetUserResponse>, Status> {
        let who = authorized(&request)?;
        let proto::GetUserRequest { user_id } = request.into_inner();
        let id = parse_field("user_id", &user_id, UserId::parse)?;
        let user = self.app.get_user(&who, &id).await?;
        Ok(Response::new(proto::GetUserResponse {
            user: Some(user_to_proto(&user)),
        }))
    }

    async fn list_users(
        &self,
        request: Request<proto::ListUsersRequest>,
    ) -> Result<Response<proto::ListUsersResponse>, Status> {
        let who = authorized(&request)?;
        let proto::ListUsersRequest {
            domain,
            role,
            page_size,
            page_token,
        } = request.into_inner();
        let domain = parse_field("domain", &domain, DomainName::parse)?;
        // Unspecified (0) means "every role" in a listing.
        let role = match role {
            0 => None,
            given => Some(role_from_proto("role", given)?),
        };
        let page = self
            .app
            .list_users(
                &who,
                UserQuery {
                    domain,
                    role,
                    page_size,
                    page_token,
                },
            )
            .await?;
        Ok(Response::new(proto::ListUsersResponse {
            users: page.users.iter().map(user_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

/// A role field: STUDENT, TEACHER or ADMIN; anything else is refused with the field's name.
fn role_from_proto(field: &str, raw: i32) -> Result<Role, ValidationError> {
    match proto::UserRole::try_from(raw) {
        Ok(proto::UserRole::Student) => Ok(Role::Student),
        Ok(proto::UserRole::Teacher) => Ok(Role::Teacher),
        Ok(proto::UserRole::Admin) => Ok(Role::Admin),
        Ok(proto::UserRole::Unspecified) | Err(_) => Err(ValidationError::invalid(
            field,
            "role must be STUDENT, TEACHER or ADMIN",
        )),
    }
}

fn user_from_proto(prefix: &str, u: proto::User) -> Result<User, ValidationError> {
    let proto::User {
        user_id,
        domain,
        email,
        role,
        verified_teacher,
        display_name,
        locale,
    } = u;
    let role = role_from_proto(&format!("{prefix}.role"), role)?;
    let display_name = parse_field(
        &format!("{prefix}.display_name"),
        &display_name,
        parse_display_name,
    )?;
    Ok(User {
        user_id: parse_field(&format!("{prefix}.user_id"), &user_id, UserId::parse)?,
        domain: parse_field(&format!("{prefix}.domain"), &domain, DomainName::parse)?,
        email: parse_field(&format!("{prefix}.email"), &email, Email::parse)?,
        role,
        verified_teacher: verified_teacher && role == Role::Teacher,
        display_name,
        locale: if locale.trim().is_empty() {
            None
        } else {
            Some(parse_field(
                &format!("{prefix}.locale"),
                &locale,
                Locale::parse,
            )?)
        },
    })
}

/// The proto form of a user.
pub(super) fn user_to_proto(u: &User) -> proto::User {
    proto::User {
        user_id: u.user_id.to_string(),
        domain: u.domain.to_string(),
        email: u.email.to_string(),
        role: match u.role {
            Role::Student => proto::UserRole::Student,
            Role::Teacher => proto::UserRole::Teacher,
            Role::Admin => proto::UserRole::Admin,
        } as i32,
        verified_teacher: u.verified_teacher,
        display_name: u.display_name.clone(),
        locale: u.locale.map(|l| l.as_str().to_owned()).unwrap_or_default(),
    }
}

fn course_from_proto(c: proto::Course) -> Result<Course, ValidationError> {
    let proto::Course {
        course_id,
        domain,
        teacher_ids,
        student_ids,
    } = c;
    let ids = |field: &str, raw: &[String]| {
        raw.iter()
            .enumerate()
            .map(|(i, id)| parse_field(&format!("course.{field}[{i}]"), id, UserId::parse))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Course {
        course_id: parse_field("course.course_id", &course_id, CourseId::parse)?,
        domain: parse_field("course.domain", &domain, DomainName::parse)?,
        teacher_ids: ids("teacher_ids", &teacher_ids)?,
        student_ids: ids("student_ids", &student_ids)?,
    })
}

fn course_to_proto(c: &Course) -> proto::Course {
    proto::Course {
        course_id: c.course_id.to_string(),
        domain: c.domain.to_string(),
        teacher_ids: c.teacher_ids.iter().map(ToString::to_string).collect(),
        student_ids: c.student_ids.iter().map(ToString::to_string).collect(),
    }
}
