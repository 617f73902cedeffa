//! Tenancy of settings and directory: each caller reaches only its own domain, and nothing
//! about another domain leaks.

use crate::helpers::{admin, guardian, reason, service, spawn_app, student, teacher};
use guardian_service::proto::{
    DomainSettings, GetDomainSettingsRequest, GetUserRequest, UpdateDomainSettingsRequest,
    UpsertUsersRequest, User, UserRole,
};
use tonic::Code;

fn denied(err: tonic::Status, case: &str) {
    assert_eq!(err.code(), Code::PermissionDenied, "{case}: {err:?}");
    assert_eq!(reason(&err), "NOT_ALLOWED_TO_MANAGE", "{case}");
}

fn get(domain: &str) -> GetDomainSettingsRequest {
    GetDomainSettingsRequest {
        domain: domain.into(),
    }
}

fn update(domain: &str) -> UpdateDomainSettingsRequest {
    UpdateDomainSettingsRequest {
        settings: Some(DomainSettings {
            domain: domain.into(),
            invitation_ttl_days: 30,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["invitation_ttl_days".into()],
        }),
        etag: String::new(),
    }
}

#[tokio::test]
async fn settings_are_read_by_admins_teachers_and_scoped_services_of_the_domain() {
    let app = spawn_app().await;
    let d = "school.example";
    assert!(
        app.settings_as(&admin(d))
            .get_domain_settings(get(d))
            .await
            .is_ok()
    );
    assert!(
        app.settings_as(&teacher("t1", d))
            .get_domain_settings(get(d))
            .await
            .is_ok()
    );
    assert!(
        app.settings_as(&service("sis", d, &["settings.read"]))
            .get_domain_settings(get(d))
            .await
            .is_ok()
    );
    denied(
        app.settings_as(&admin("other.example"))
            .get_domain_settings(get(d))
            .await
            .unwrap_err(),
        "admin of another domain",
    );
    denied(
        app.settings_as(&student("s1", d))
            .get_domain_settings(get(d))
            .await
            .unwrap_err(),
        "student",
    );
    denied(
        app.settings_as(&guardian("g1", "g1@example.org"))
            .get_domain_settings(get(d))
            .await
            .unwrap_err(),
        "guardian",
    );
    denied(
        app.settings_as(&service("sis", d, &["guardians.read"]))
            .get_domain_settings(get(d))
            .await
            .unwrap_err(),
        "service without scope",
    );
    denied(
        app.settings_as(&service("sis", "other.example", &["settings.read"]))
            .get_domain_settings(get(d))
            .await
            .unwrap_err(),
        "service of another domain",
    );
}

#[tokio::test]
async fn settings_are_changed_only_by_admins_and_settings_writers_of_the_domain() {
    let app = spawn_app().await;
    let d = "school.example";
    assert!(
        app.settings_as(&admin(d))
            .update_domain_settings(update(d))
            .await
            .is_ok()
    );
    assert!(
        app.settings_as(&service("ops", d, &["settings.write"]))
            .update_domain_settings(update(d))
            .await
            .is_ok()
    );
    denied(
        app.settings_as(&teacher("t1", d))
            .update_domain_settings(update(d))
            .await
            .unwrap_err(),
        "teacher",
    );
    denied(
        app.settings_as(&admin("other.example"))
            .update_domain_settings(update(d))
            .await
            .unwrap_err(),
        "admin of another domain",
    );
    denied(
        app.settings_as(&service("ops", d, &["settings.read"]))
            .update_domain_settings(update(d))
            .await
            .unwrap_err(),
        "read-only service",
    );
}

fn user(id: &str, domain: &str) -> User {
    User {
        user_id: id.into(),
        domain: domain.into(),
        email: format!("{id}@{domain}"),
        role: UserRole::Student as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_directory_of_a_domain_belongs_to_its_admins_and_directory_writers() {
    let app = spawn_app().await;
    let d = "school.example";
    app.directory_as(&admin(d))
        .upsert_users(UpsertUsersRequest {
            users: vec![user("s1", d)],
        })
        .await
        .unwrap();
    app.directory_as(&service("sis", d, &["directory.write"]))
        .upsert_users(UpsertUsersRequest {
            users: vec![user("s2", d)],
        })
        .await
        .unwrap();

    let err = app
        .directory_as(&admin(d))
        .upsert_users(UpsertUsersRequest {
            users: vec![user("x1", "other.example")],
        })
        .await
        .unwrap_err();
    denied(err, "admin writing another domain");
    let err = app
        .directory_as(&teacher("t1", d))
        .upsert_users(UpsertUsersRequest {
            users: vec![user("s3", d)],
        })
        .await
        .unwrap_err();
    denied(err, "teacher");
    // Taking over a user id of another domain is refused.
    let err = app
        .directory_as(&admin("other.example"))
        .upsert_users(UpsertUsersRequest {
            users: vec![user("s1", "other.example")],
        })
        .await
        .unwrap_err();
    denied(err, "hijacking another domain's user id");

    // Another domain's user is simply not found: its existence does not leak.
    let err = app
        .directory_as(&admin("other.example"))
        .get_user(GetUserRequest {
            user_id: "s1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::NotFound, "USER_NOT_FOUND")
    );
    let err = app
        .directory_as(&admin("other.example"))
        .get_user(GetUserRequest {
            user_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::NotFound, "USER_NOT_FOUND")
    );
    assert!(
        app.directory_as(&admin(d))
            .get_user(GetUserRequest {
                user_id: "s1".into()
            })
            .await
            .is_ok()
    );
}
