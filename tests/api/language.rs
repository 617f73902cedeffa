//! Each person's language (issue 16, item 2): mail to a guardian is in the language they chose
//! for their summaries, on every path (single and bulk invitation, removal notice, welcome);
//! mail to a student is in their directory language; anyone else gets the domain's.

use crate::fixtures::{SCHOOL, accept_as, invite, link, seed_school, set_settings, subjects_to};
use crate::helpers::{guardian, spawn_app};
use guardian_service::proto::*;

fn last(subjects: Vec<String>) -> String {
    subjects.last().cloned().expect("a message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_is_written_to_in_their_own_language() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    set_settings(
        &app,
        DomainSettings {
            default_locale: "nl".into(),
            ..Default::default()
        },
        &["default_locale"],
    )
    .await;
    // s2 reads English, whatever the school's language.
    app.directory()
        .upsert_users(UpsertUsersRequest {
            users: vec![User {
                user_id: "s2".into(),
                domain: SCHOOL.into(),
                email: "s2@school.example".into(),
                role: UserRole::Student as i32,
                display_name: "Name of s2".into(),
                locale: "en".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();

    // A mother who chose English for her summaries, linked to s1.
    link(&app, "s1", "mum@example.org", "g-mum", "mum@example.org").await;
    app.summaries_as(&guardian("g-mum", "mum@example.org"))
        .update_summary_preferences(UpdateSummaryPreferencesRequest {
            preferences: Some(SummaryPreferences {
                guardian_id: "me".into(),
                locale: "en".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["locale".into()],
            }),
        })
        .await
        .unwrap();

    // Her invitation for a second child is in English, one call or in bulk; a stranger's is
    // in the school's Dutch.
    invite(&app, "s3", "mum@example.org").await;
    assert!(last(subjects_to(&app, "mum@example.org").await).starts_with("Invitation:"));
    app.guardians()
        .bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest {
            rows: vec![
                BulkCreateGuardianInvitationsRow {
                    student_id: "s2".into(),
                    invited_email_address: "mum@example.org".into(),
                },
                BulkCreateGuardianInvitationsRow {
                    student_id: "s2".into(),
                    invited_email_address: "dad@example.org".into(),
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    // Before she chose, her first invitation and welcome were in Dutch.
    let to_mum = subjects_to(&app, "mum@example.org").await;
    assert_eq!(to_mum.len(), 4, "{to_mum:?}");
    assert!(to_mum[0].starts_with("Uitnodiging:"), "{to_mum:?}");
    assert!(to_mum[3].starts_with("Invitation:"), "{to_mum:?}");
    assert!(
        last(subjects_to(&app, "dad@example.org").await).starts_with("Uitnodiging:"),
        "a stranger gets the school's language"
    );

    // The father accepts: s2 is told in English (their own), he is welcomed in Dutch (he chose
    // nothing).
    let dads = app
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "s2".into(),
            invited_email_address: "dad@example.org".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    accept_as(&app, &dads[0], "g-dad", "dad@example.org").await;
    let to_student = last(subjects_to(&app, "s2@school.example").await);
    assert!(
        to_student.contains("now receives summaries"),
        "{to_student}"
    );
    let welcome = last(subjects_to(&app, "dad@example.org").await);
    assert!(
        welcome.starts_with("U bent nu ouder/verzorger"),
        "{welcome}"
    );
    // s1, whose language the directory does not give, was told of the mother in Dutch.
    let s1_told = last(subjects_to(&app, "s1@school.example").await);
    assert!(s1_told.contains("ontvangt nu"), "{s1_told}");

    // Her removal notice is in English too.
    app.guardians()
        .delete_guardian(DeleteGuardianRequest {
            student_id: "s1".into(),
            guardian_id: "g-mum".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let removal = last(subjects_to(&app, "mum@example.org").await);
    assert!(
        removal.starts_with("You no longer receive summaries"),
        "{removal}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inviter_learns_of_a_decline_without_the_address() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    // A teacher in the directory invites for s1; the platform service (nobody's inbox) for s2.
    let by_teacher = app
        .guardians_as(&crate::helpers::teacher("t-verified", SCHOOL))
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_id: "s1".into(),
            invited_email_address: "stranger@example.org".into(),
            request_id: String::new(),
            student_ids: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let by_service = invite(&app, "s2", "other@example.org").await;
    for (invitation, address) in [
        (&by_teacher, "stranger@example.org"),
        (&by_service, "other@example.org"),
    ] {
        let token = crate::fixtures::token_of(&app, &invitation.invitation_id).await;
        app.guardians_as(&guardian("g-x", address))
            .decline_guardian_invitation(DeclineGuardianInvitationRequest {
                token,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let notices: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT recipient, subject, body_text FROM outbox \
         WHERE recipient NOT IN ('stranger@example.org', 'other@example.org')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(notices.len(), 1, "only the teacher is told: {notices:?}");
    let (to, subject, body) = &notices[0];
    assert_eq!(to, "t-verified@school.example");
    assert!(subject.contains("Name of s1"), "{subject}");
    assert!(body.contains("Hello Name of t-verified,"), "{body}");
    assert!(
        !body.contains("stranger"),
        "the address is never repeated: {body}"
    );
}
