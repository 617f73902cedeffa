//! DirectoryService over gRPC on Postgres.

use crate::helpers::{reason, spawn_app};
use guardian_service::proto::{
    Course, DeleteCourseRequest, DeleteUsersRequest, GetUserRequest, ListUsersRequest,
    UpsertCourseRequest, UpsertUsersRequest, User, UserRole,
};
use tonic::Code;

fn user(id: &str, role: UserRole) -> User {
    User {
        user_id: id.into(),
        domain: "school.example".into(),
        email: format!("{id}@School.Example"),
        role: role as i32,
        verified_teacher: role == UserRole::Teacher,
        display_name: format!("User {id}"),
        locale: String::new(),
    }
}

#[tokio::test]
async fn users_are_upserted_read_and_listed_in_pages() {
    let app = spawn_app().await;
    let mut users: Vec<User> = (0..5)
        .map(|i| user(&format!("s{i}"), UserRole::Student))
        .collect();
    users.push(user("t1", UserRole::Teacher));
    let stored = app
        .directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(stored.len(), 6);
    assert_eq!(
        stored[0].email, "s0@school.example",
        "addresses are normalised"
    );

    let got = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "t1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(got.verified_teacher);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .directory()
            .list_users(ListUsersRequest {
                domain: "school.example".into(),
                role: UserRole::Student as i32,
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.users.len() <= 2);
        seen.extend(page.users.into_iter().map(|u| u.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, vec!["s0", "s1", "s2", "s3", "s4"]);
}

#[tokio::test]
async fn a_page_token_is_bound_to_its_filters() {
    let app = spawn_app().await;
    let users = (0..3)
        .map(|i| user(&format!("s{i}"), UserRole::Student))
        .collect();
    app.directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap();
    let request = |role: UserRole, token: &str, size: i32| ListUsersRequest {
        domain: "school.example".into(),
        role: role as i32,
        page_size: size,
        page_token: token.into(),
    };
    let first = app
        .directory()
        .list_users(request(UserRole::Student, "", 1))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let err = app
        .directory()
        .list_users(request(UserRole::Teacher, &first.next_page_token, 1))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "INVALID_PAGE_TOKEN")
    );
    let err = app
        .directory()
        .list_users(request(UserRole::Student, "garbage", 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "INVALID_PAGE_TOKEN");
    let err = app
        .directory()
        .list_users(request(UserRole::Student, "", -1))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "INVALID_ARGUMENT")
    );
}

#[tokio::test]
async fn a_malformed_user_rejects_the_whole_batch_naming_the_field() {
    let app = spawn_app().await;
    let mut bad = user("s2", UserRole::Student);
    bad.email = "not-an-address".into();
    let users = vec![
        user("s0", UserRole::Student),
        user("s1", UserRole::Student),
        bad,
    ];
    let err = app
        .directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "INVALID_EMAIL")
    );
    use tonic_types::StatusExt;
    let violations = err.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations[0].field, "users[2].email");
    assert!(
        !err.message().contains("not-an-address"),
        "the value is not echoed"
    );
    let err = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "s0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::NotFound, "USER_NOT_FOUND")
    );

    let mut no_role = user("s3", UserRole::Student);
    no_role.role = UserRole::Unspecified as i32;
    let err = app
        .directory()
        .upsert_users(UpsertUsersRequest {
            users: vec![no_role],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_email_taken_by_another_user_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    app.directory()
        .upsert_users(UpsertUsersRequest {
            users: vec![user("s0", UserRole::Student)],
        })
        .await
        .unwrap();
    let mut clash = user("s9", UserRole::Student);
    clash.email = "s0@school.example".into();
    let users = vec![user("s1", UserRole::Student), clash];
    let err = app
        .directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    use tonic_types::StatusExt;
    assert_eq!(
        err.get_details_bad_request().unwrap().field_violations[0].field,
        "users[1].email"
    );
    let err = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "s1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "the batch is all or nothing");
}

#[tokio::test]
async fn more_than_a_thousand_users_is_invalid_argument() {
    let app = spawn_app().await;
    let users = (0..1001)
        .map(|i| user(&format!("s{i}"), UserRole::Student))
        .collect();
    let err = app
        .directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "INVALID_ARGUMENT")
    );
}

#[tokio::test]
async fn deleted_users_are_gone_and_counted() {
    let app = spawn_app().await;
    let users = vec![user("s0", UserRole::Student), user("t0", UserRole::Teacher)];
    app.directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap();
    let deleted = app
        .directory()
        .delete_users(DeleteUsersRequest {
            user_ids: vec!["s0".into(), "t0".into(), "nobody".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .deleted_count;
    assert_eq!(deleted, 2);
    let err = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "t0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .directory()
        .delete_users(DeleteUsersRequest {
            user_ids: vec!["bad id".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn courses_are_upserted_and_deleted() {
    let app = spawn_app().await;
    let course = Course {
        course_id: "math-7a".into(),
        domain: "school.example".into(),
        teacher_ids: vec!["t0".into()],
        student_ids: vec!["s0".into(), "s1".into()],
    };
    let stored = app
        .directory()
        .upsert_course(UpsertCourseRequest {
            course: Some(course.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    assert_eq!(stored, course);
    app.directory()
        .delete_course(DeleteCourseRequest {
            course_id: "math-7a".into(),
        })
        .await
        .unwrap();
    let bad = Course {
        student_ids: vec!["a b".into()],
        ..course
    };
    let err = app
        .directory()
        .upsert_course(UpsertCourseRequest { course: Some(bad) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = app
        .directory()
        .upsert_course(UpsertCourseRequest { course: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
