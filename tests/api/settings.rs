//! SettingsService over gRPC on Postgres.

use crate::helpers::{reason, spawn_app};
use guardian_service::proto::{
    DomainSettings, GetDomainSettingsRequest, InstitutionType, UpdateDomainSettingsRequest,
    WhoCanManage,
};
use prost_types::FieldMask;
use tonic::Code;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn update(settings: DomainSettings, paths: &[&str]) -> UpdateDomainSettingsRequest {
    UpdateDomainSettingsRequest {
        settings: Some(settings),
        update_mask: mask(paths),
        etag: String::new(),
    }
}

fn for_domain(domain: &str) -> DomainSettings {
    DomainSettings {
        domain: domain.into(),
        ..Default::default()
    }
}

async fn get(app: &crate::helpers::TestApp, domain: &str) -> DomainSettings {
    app.settings()
        .get_domain_settings(GetDomainSettingsRequest {
            domain: domain.into(),
        })
        .await
        .expect("get settings")
        .into_inner()
        .settings
        .expect("settings")
}

#[tokio::test]
async fn an_unknown_domain_gets_the_defaults() {
    let app = spawn_app().await;
    let s = get(&app, "Lincoln.K12.Example").await;
    assert_eq!(s.domain, "lincoln.k12.example");
    assert_eq!(s.institution_type, InstitutionType::PrimarySecondary as i32);
    assert!(s.guardian_access_enabled);
    assert_eq!(s.who_can_manage, WhoCanManage::VerifiedTeachers as i32);
    assert_eq!(
        (
            s.invitation_ttl_days,
            s.max_guardians_per_student,
            s.max_students_per_guardian
        ),
        (120, 20, 20)
    );
    assert_eq!(s.default_locale, "en");
    assert!(s.update_time.is_none());
}

#[tokio::test]
async fn an_update_changes_only_the_fields_in_the_mask() {
    let app = spawn_app().await;
    let wanted = DomainSettings {
        who_can_manage: WhoCanManage::DomainAdminsOnly as i32,
        invitation_ttl_days: 30,
        default_locale: "nl".into(),
        allowlisted_domains: vec!["Partner.Example".into()],
        ..for_domain("school.example")
    };
    let s = app
        .settings()
        .update_domain_settings(update(
            wanted,
            &["who_can_manage", "default_locale", "allowlisted_domains"],
        ))
        .await
        .expect("update")
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(s.who_can_manage, WhoCanManage::DomainAdminsOnly as i32);
    assert_eq!(s.default_locale, "nl");
    assert_eq!(s.allowlisted_domains, vec!["partner.example".to_string()]);
    assert_eq!(s.invitation_ttl_days, 120, "not in the mask, so unchanged");
    assert!(s.update_time.is_some());
    assert_eq!(get(&app, "school.example").await, s);
}

#[tokio::test]
async fn changing_institution_type_moves_access_to_the_new_default_unless_set() {
    let app = spawn_app().await;
    let higher = DomainSettings {
        institution_type: InstitutionType::HigherEducation as i32,
        ..for_domain("uni.example")
    };
    let s = app
        .settings()
        .update_domain_settings(update(higher.clone(), &["institution_type"]))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(
        !s.guardian_access_enabled,
        "higher education defaults to off"
    );
    let explicit = DomainSettings {
        guardian_access_enabled: true,
        ..higher
    };
    let s = app
        .settings()
        .update_domain_settings(update(
            explicit,
            &["institution_type", "guardian_access_enabled"],
        ))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(s.guardian_access_enabled, "an explicit value wins");
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_changes_nothing() {
    let app = spawn_app().await;
    let first = app
        .settings()
        .update_domain_settings(update(
            DomainSettings {
                invitation_ttl_days: 10,
                ..for_domain("school.example")
            },
            &["invitation_ttl_days"],
        ))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let mut with_etag = update(
        DomainSettings {
            invitation_ttl_days: 20,
            ..for_domain("school.example")
        },
        &["invitation_ttl_days"],
    );
    with_etag.etag = first.etag.clone();
    let second = app
        .settings()
        .update_domain_settings(with_etag.clone())
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(second.invitation_ttl_days, 20);
    assert_ne!(second.etag, first.etag);
    with_etag.settings.as_mut().unwrap().invitation_ttl_days = 30;
    let err = app
        .settings()
        .update_domain_settings(with_etag)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "ETAG_MISMATCH");
    assert_eq!(get(&app, "school.example").await.invitation_ttl_days, 20);
}

#[tokio::test]
async fn out_of_range_and_malformed_settings_are_invalid_argument() {
    let app = spawn_app().await;
    let cases = [
        (
            DomainSettings {
                invitation_ttl_days: 121,
                ..for_domain("school.example")
            },
            vec!["invitation_ttl_days"],
        ),
        (
            DomainSettings {
                max_guardians_per_student: 21,
                ..for_domain("school.example")
            },
            vec!["max_guardians_per_student"],
        ),
        (
            DomainSettings {
                max_students_per_guardian: 0,
                ..for_domain("school.example")
            },
            vec!["max_students_per_guardian"],
        ),
        (
            DomainSettings {
                default_locale: "fr".into(),
                ..for_domain("school.example")
            },
            vec!["default_locale"],
        ),
        (for_domain("school.example"), vec!["who_can_manage"]),
        (for_domain("school.example"), vec!["etag"]),
        (for_domain("school.example"), vec!["no_such_field"]),
        (
            DomainSettings {
                allowlisted_domains: vec!["not a domain".into()],
                ..for_domain("school.example")
            },
            vec!["allowlisted_domains"],
        ),
        (for_domain("bad domain"), vec!["invitation_ttl_days"]),
    ];
    for (settings, paths) in cases {
        let err = app
            .settings()
            .update_domain_settings(update(settings, &paths))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{paths:?}");
        assert_eq!(reason(&err), "INVALID_ARGUMENT", "{paths:?}");
    }
    let err = app
        .settings()
        .update_domain_settings(UpdateDomainSettingsRequest {
            settings: None,
            update_mask: None,
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        get(&app, "school.example").await.update_time.is_none(),
        "nothing was written"
    );
}

#[tokio::test]
async fn concurrent_updates_of_different_fields_all_apply() {
    let app = spawn_app().await;
    let fields: [(&str, DomainSettings); 4] = [
        (
            "invitation_ttl_days",
            DomainSettings {
                invitation_ttl_days: 7,
                ..for_domain("school.example")
            },
        ),
        (
            "max_guardians_per_student",
            DomainSettings {
                max_guardians_per_student: 3,
                ..for_domain("school.example")
            },
        ),
        (
            "max_students_per_guardian",
            DomainSettings {
                max_students_per_guardian: 4,
                ..for_domain("school.example")
            },
        ),
        (
            "default_locale",
            DomainSettings {
                default_locale: "nl".into(),
                ..for_domain("school.example")
            },
        ),
    ];
    let mut tasks = Vec::new();
    for (path, settings) in fields {
        let mut client = app.settings();
        tasks.push(tokio::spawn(async move {
            client
                .update_domain_settings(update(settings, &[path]))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every update applies");
    }
    let s = get(&app, "school.example").await;
    assert_eq!(
        (
            s.invitation_ttl_days,
            s.max_guardians_per_student,
            s.max_students_per_guardian
        ),
        (7, 3, 4)
    );
    assert_eq!(s.default_locale, "nl");
    assert_eq!(s.etag, "\"4\"");
}

#[tokio::test]
async fn settings_changes_and_directory_summaries_are_in_the_audit_trail() {
    use crate::fixtures::{SCHOOL, seed_school};
    use crate::helpers::admin;
    use guardian_service::proto::{DeleteUsersRequest, ListGuardianEventsRequest};
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    app.settings_as(&admin(SCHOOL))
        .update_domain_settings(update(
            DomainSettings {
                guardian_access_enabled: false,
                invitation_ttl_days: 30,
                ..for_domain(SCHOOL)
            },
            &["guardian_access_enabled", "invitation_ttl_days"],
        ))
        .await
        .expect("update");
    app.directory()
        .delete_users(DeleteUsersRequest {
            user_ids: vec!["s2".into(), "nobody".into()],
        })
        .await
        .expect("delete");

    let events = app
        .guardians_as(&admin(SCHOOL))
        .list_guardian_events(ListGuardianEventsRequest {
            domain: SCHOOL.into(),
            ..Default::default()
        })
        .await
        .expect("events")
        .into_inner()
        .events;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "settings.updated",
            "directory.users_upserted",
            "directory.course_upserted",
            "settings.updated",
            "directory.users_deleted",
        ]
    );
    let allowlisting = &events[0];
    assert_eq!(allowlisting.student_id, "");
    assert_eq!(allowlisting.actor_id, "platform");
    let fields = changes_of(allowlisting);
    assert_eq!(
        fields,
        [("allowlisted_domains", "", "lone.example,partner.example")]
    );
    let switched_off = &events[3];
    assert_eq!(switched_off.actor_id, format!("admin@{SCHOOL}"));
    let fields = changes_of(switched_off);
    assert_eq!(
        fields,
        [
            ("guardian_access_enabled", "true", "false"),
            ("invitation_ttl_days", "120", "30"),
        ]
    );
    // Seeded into SCHOOL: an admin, two teachers, two students (PARTNER's and OTHER's users
    // are in their own domains' trails).
    let count = |i: usize, key: &str| events[i].counts.get(key).copied();
    assert_eq!(count(1, "created"), Some(5));
    assert_eq!(count(1, "replaced"), Some(0));
    assert_eq!(
        (count(2, "teachers"), count(2, "students")),
        (Some(2), Some(4))
    );
    assert_eq!(count(4, "users"), Some(1));
    assert_eq!(count(4, "invitations_removed"), Some(0));
    // Counts only: no address or name of anyone seeded is in the trail.
    let trail = format!("{events:?}");
    for seeded in ["s1@", "s2@", "t-verified@", "a1@", "Name of"] {
        assert!(!trail.contains(seeded), "{seeded} in the audit trail");
    }
}

/// An event's settings changes as (field, old, new).
fn changes_of(event: &guardian_service::proto::GuardianEvent) -> Vec<(&str, &str, &str)> {
    event
        .setting_changes
        .iter()
        .map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str()))
        .collect()
}

#[tokio::test]
async fn summary_defaults_are_settable_and_an_unknown_zone_is_refused_by_field() {
    use guardian_service::proto::SummaryFrequency;
    let app = spawn_app().await;
    let defaults = get(&app, "school.example").await;
    assert_eq!(defaults.summary_time_zone, "UTC");
    assert_eq!(defaults.summary_send_hour, Some(17));
    assert_eq!(
        defaults.default_summary_frequency,
        SummaryFrequency::Weekly as i32
    );
    let s = app
        .settings()
        .update_domain_settings(update(
            DomainSettings {
                summary_time_zone: "Europe/Amsterdam".into(),
                summary_send_hour: Some(0),
                default_summary_frequency: SummaryFrequency::Daily as i32,
                ..for_domain("school.example")
            },
            &[
                "summary_time_zone",
                "summary_send_hour",
                "default_summary_frequency",
            ],
        ))
        .await
        .expect("update")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(
        (s.summary_time_zone.as_str(), s.summary_send_hour),
        ("Europe/Amsterdam", Some(0))
    );
    assert_eq!(s.default_summary_frequency, SummaryFrequency::Daily as i32);
    for (field, settings) in [
        (
            "settings.summary_time_zone",
            DomainSettings {
                summary_time_zone: "Europe/Atlantis".into(),
                ..for_domain("school.example")
            },
        ),
        (
            "settings.summary_send_hour",
            DomainSettings {
                summary_send_hour: Some(24),
                ..for_domain("school.example")
            },
        ),
    ] {
        let path = field.trim_start_matches("settings.");
        let err = app
            .settings()
            .update_domain_settings(update(settings, &[path]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(reason(&err), "INVALID_ARGUMENT");
        assert!(err.message().contains(path), "{}", err.message());
    }
    assert_eq!(
        get(&app, "school.example").await.summary_time_zone,
        "Europe/Amsterdam"
    );
}

#[tokio::test]
async fn the_school_identity_and_reminders_are_settable_and_bad_values_refused_by_field() {
    let app = spawn_app().await;
    let defaults = get(&app, "school.example").await;
    assert_eq!(defaults.invitation_reminder_days, Some(7));
    assert_eq!(
        (
            defaults.school_name.as_str(),
            defaults.reply_to_address.as_str()
        ),
        ("", "")
    );
    let s = app
        .settings()
        .update_domain_settings(update(
            DomainSettings {
                school_name: " Lincoln High ".into(),
                mail_from_name: "Lincoln office".into(),
                reply_to_address: "Office@School.example".into(),
                invitation_reminder_days: Some(0),
                ..for_domain("school.example")
            },
            &[
                "school_name",
                "mail_from_name",
                "reply_to_address",
                "invitation_reminder_days",
            ],
        ))
        .await
        .expect("update")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(s.school_name, "Lincoln High");
    assert_eq!(s.mail_from_name, "Lincoln office");
    assert_eq!(s.reply_to_address, "office@school.example");
    assert_eq!(s.invitation_reminder_days, Some(0));
    for (path, settings) in [
        (
            "school_name",
            DomainSettings {
                school_name: "Lincoln\r\nBcc: x@example.org".into(),
                ..for_domain("school.example")
            },
        ),
        (
            "mail_from_name",
            DomainSettings {
                mail_from_name: "x".repeat(101),
                ..for_domain("school.example")
            },
        ),
        (
            "reply_to_address",
            DomainSettings {
                reply_to_address: "office at school".into(),
                ..for_domain("school.example")
            },
        ),
        (
            "invitation_reminder_days",
            DomainSettings {
                invitation_reminder_days: Some(61),
                ..for_domain("school.example")
            },
        ),
        ("invitation_reminder_days", for_domain("school.example")),
    ] {
        let err = app
            .settings()
            .update_domain_settings(update(settings, &[path]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{path}");
        assert_eq!(reason(&err), "INVALID_ARGUMENT");
        assert!(err.message().contains(path), "{}", err.message());
    }
    let kept = get(&app, "school.example").await;
    assert_eq!(
        (kept.school_name.as_str(), kept.invitation_reminder_days),
        ("Lincoln High", Some(0)),
        "a refused update changes nothing"
    );
}
