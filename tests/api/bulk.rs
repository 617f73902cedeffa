//! BulkCreateGuardianInvitations in set-based chunks: the same answers and the same final state
//! as the rows sent one by one as CreateGuardianInvitation, on Postgres and on SQLite; a row
//! that breaks a rule fails alone; the limits hold when bulk calls race.

use crate::fixtures::{SCHOOL, link, seed_school, token_of};
use crate::helpers::{TestApp, admin, guardian, reason, spawn_app, spawn_sqlite_app};
use guardian_service::proto::*;
use std::collections::BTreeMap;

const STUDENTS: usize = 200;
const LINKED: &str = "linked@families.example";
const DECLINER: &str = "decliner@families.example";
const POPULAR: &str = "popular@families.example";

/// The same history on a fresh server: a linked guardian of s1 and an address that declined
/// s2 three times.
async fn prepare(app: &TestApp) {
    seed_school(app, STUDENTS).await;
    link(app, "s1", LINKED, "g-linked", LINKED).await;
    for _ in 0..3 {
        let invitation = crate::fixtures::invite(app, "s2", DECLINER).await;
        let token = token_of(app, &invitation.invitation_id).await;
        app.guardians_as(&guardian("g-decliner", DECLINER))
            .decline_guardian_invitation(DeclineGuardianInvitationRequest {
                token,
                ..Default::default()
            })
            .await
            .expect("decline");
    }
}

/// 10,000 rows that meet every rule of api.md's table: new addresses until each student's
/// limit, repeats, unknown and foreign students, the student's own address, a linked guardian,
/// an address that declined three times, one address for more students than it may have,
/// students named by address.
fn rows() -> Vec<BulkCreateGuardianInvitationsRow> {
    let mut rows: Vec<BulkCreateGuardianInvitationsRow> = Vec::with_capacity(10_000);
    for i in 0..10_000usize {
        let n = i % STUDENTS + 1;
        let (student, email) = if i % 97 == 0 {
            ("nobody".to_owned(), format!("g{i}@families.example"))
        } else if i % 89 == 0 {
            ("o1".to_owned(), format!("g{i}@families.example"))
        } else if i % 83 == 0 {
            (format!("s{n}"), format!("s{n}@{SCHOOL}"))
        } else if i % 79 == 0 {
            let previous = rows.last().expect("a row before").clone();
            (previous.student_id, previous.invited_email_address)
        } else if i % 71 == 0 {
            ("s1".to_owned(), LINKED.to_owned())
        } else if i % 67 == 0 {
            ("s2".to_owned(), DECLINER.to_owned())
        } else if i % 61 == 0 {
            (format!("s{n}"), POPULAR.to_owned())
        } else if i % 13 == 0 {
            (format!("s{n}@{SCHOOL}"), format!("g{i}@families.example"))
        } else {
            (format!("s{n}"), format!("g{i}@families.example"))
        };
        rows.push(BulkCreateGuardianInvitationsRow {
            student_id: student,
            invited_email_address: email,
        });
    }
    rows
}

/// A row's answer: the code and the reason.
pub(crate) type Outcome = (i32, String);

/// A single call's answer as a bulk row's: the code and the reason.
pub(crate) fn outcome_of<T>(result: Result<T, tonic::Status>) -> Outcome {
    match result {
        Ok(_) => (0, String::new()),
        Err(status) => (status.code() as i32, reason(&status)),
    }
}

/// Each row answered alike by the chunked call and one by one.
pub(crate) fn assert_same_answers<R: std::fmt::Debug>(
    chunked: &[Outcome],
    one_by_one: &[Outcome],
    rows: &[R],
) {
    assert_eq!(chunked.len(), one_by_one.len());
    for (i, (a, b)) in chunked.iter().zip(one_by_one).enumerate() {
        assert_eq!(a, b, "row {i} ({:?}): chunked vs one by one", rows[i]);
    }
}

/// What a server holds after the import, ids aside: every invitation (student, address,
/// state), the audit actions and the queued emails per recipient.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub invitations: Vec<(String, String, String, Option<String>)>,
    pub actions: BTreeMap<String, i64>,
    pub mail: BTreeMap<String, i64>,
}

pub(crate) async fn held(app: &TestApp) -> Held {
    const INVITATIONS: &str = "SELECT student_id, invited_email, state, removal_reason \
        FROM invitations ORDER BY student_id, invited_email, state, removal_reason";
    const ACTIONS: &str = "SELECT action, COUNT(*) FROM guardian_events GROUP BY action";
    const MAIL: &str = "SELECT recipient, COUNT(*) FROM outbox GROUP BY recipient";
    let url = &app.database_url;
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        let held = Held {
            invitations: sqlx::query_as(INVITATIONS).fetch_all(&pool).await.unwrap(),
            actions: sqlx::query_as(ACTIONS)
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect(),
            mail: sqlx::query_as(MAIL)
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect(),
        };
        pool.close().await;
        held
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let held = Held {
            invitations: sqlx::query_as(INVITATIONS).fetch_all(&pool).await.unwrap(),
            actions: sqlx::query_as(ACTIONS)
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect(),
            mail: sqlx::query_as(MAIL)
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect(),
        };
        pool.close().await;
        held
    }
}

/// Sends the rows as bulk calls of 1,000 (two and a bit server chunks each) to `chunked` and
/// one by one, in row order, to `single`; both must answer every row alike and end alike.
async fn chunked_equals_single(chunked: &TestApp, single: &TestApp) {
    prepare(chunked).await;
    prepare(single).await;
    let rows = rows();
    let token = admin(SCHOOL);
    let mut bulk: Vec<Outcome> = Vec::with_capacity(rows.len());
    for part in rows.chunks(1_000) {
        let results = chunked
            .guardians_as(&token)
            .bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest {
                rows: part.to_vec(),
                dry_run: false,
                request_id: uuid::Uuid::new_v4().to_string(),
            })
            .await
            .expect("bulk call")
            .into_inner()
            .results;
        assert_eq!(results.len(), part.len());
        bulk.extend(results.into_iter().map(|r| (r.code, r.reason)));
    }
    let mut client = single.guardians_as(&token);
    let mut one_by_one: Vec<Outcome> = Vec::with_capacity(rows.len());
    for row in &rows {
        let outcome = client
            .create_guardian_invitation(CreateGuardianInvitationRequest {
                student_id: row.student_id.clone(),
                invited_email_address: row.invited_email_address.clone(),
                request_id: String::new(),
                student_ids: Vec::new(),
            })
            .await;
        one_by_one.push(outcome_of(outcome));
    }
    assert_same_answers(&bulk, &one_by_one, &rows);
    // Every rule was met by some row, so the comparison covers them all.
    let reasons: std::collections::BTreeSet<&str> = bulk.iter().map(|(_, r)| r.as_str()).collect();
    for expected in [
        "",
        "STUDENT_NOT_FOUND",
        "GUARDIAN_EMAIL_IS_STUDENT",
        "INVITATION_ALREADY_PENDING",
        "GUARDIAN_ALREADY_LINKED",
        "TOO_MANY_DECLINES",
        "STUDENT_GUARDIAN_LIMIT_REACHED",
        "GUARDIAN_STUDENT_LIMIT_REACHED",
    ] {
        assert!(
            reasons.contains(expected),
            "no row answered {expected:?}: {reasons:?}"
        );
    }
    let (a, b) = (held(chunked).await, held(single).await);
    assert_eq!(a, b, "the same final state");
    assert_eq!(
        a.actions.get("invitation.created").copied(),
        Some(bulk.iter().filter(|(code, _)| *code == 0).count() as i64 + 4),
        "one event per OK row (and the four of the history)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_import_equals_the_rows_one_by_one_on_postgres() {
    chunked_equals_single(&spawn_app().await, &spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_import_equals_the_rows_one_by_one_on_sqlite() {
    chunked_equals_single(&spawn_sqlite_app().await, &spawn_sqlite_app().await).await;
}

/// A row that breaks a rule in the middle of a chunk fails alone: the rows around it are
/// written with their events and emails, it writes nothing.
#[tokio::test]
async fn a_failing_row_in_the_middle_of_a_chunk_fails_alone() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    let row = |student: &str, email: &str| BulkCreateGuardianInvitationsRow {
        student_id: student.into(),
        invited_email_address: email.into(),
    };
    let results = app
        .guardians_as(&admin(SCHOOL))
        .bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest {
            rows: vec![
                row("s1", "a@families.example"),
                row("s2", "b@families.example"),
                row("s1", "a@families.example"),
                row("o1", "c@families.example"),
                row("s2", "d@families.example"),
            ],
            dry_run: false,
            request_id: String::new(),
        })
        .await
        .expect("bulk call")
        .into_inner()
        .results;
    let reasons: Vec<&str> = results.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "",
            "",
            "INVITATION_ALREADY_PENDING",
            "STUDENT_NOT_FOUND",
            ""
        ]
    );
    let held = held(&app).await;
    let invited: Vec<(&str, &str)> = held
        .invitations
        .iter()
        .map(|(s, e, _, _)| (s.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        invited,
        [
            ("s1", "a@families.example"),
            ("s2", "b@families.example"),
            ("s2", "d@families.example")
        ]
    );
    assert_eq!(held.actions.get("invitation.created"), Some(&3));
    assert_eq!(held.mail.values().sum::<i64>(), 3);
}

/// R1 on the set-based path: four bulk calls racing over the same three students, 15 new
/// addresses each per student, leave each student exactly at the limit of 20, and every row
/// beyond it is refused with STUDENT_GUARDIAN_LIMIT_REACHED.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_bulk_calls_stop_exactly_at_the_students_limit() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    let calls = (0..4).map(|call| {
        let mut client = app.guardians_as(&admin(SCHOOL));
        async move {
            let rows = (0..45)
                .map(|i| BulkCreateGuardianInvitationsRow {
                    student_id: format!("s{}", i % 3 + 1),
                    invited_email_address: format!("c{call}-{i}@families.example"),
                })
                .collect();
            client
                .bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest {
                    rows,
                    dry_run: false,
                    request_id: String::new(),
                })
                .await
                .expect("bulk call")
                .into_inner()
                .results
        }
    });
    let results: Vec<BulkRowResult> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    let ok = results.iter().filter(|r| r.code == 0).count();
    assert_eq!(ok, 60, "20 for each of three students");
    assert!(
        results
            .iter()
            .filter(|r| r.code != 0)
            .all(|r| r.reason == "STUDENT_GUARDIAN_LIMIT_REACHED"),
        "every other row is refused for the limit"
    );
    let held = held(&app).await;
    let mut per_student: BTreeMap<&str, usize> = BTreeMap::new();
    for (student, _, state, _) in &held.invitations {
        assert_eq!(state, "PENDING");
        *per_student.entry(student.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_student,
        BTreeMap::from([("s1", 20), ("s2", 20), ("s3", 20)])
    );
}
