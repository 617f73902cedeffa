//! BulkDeleteGuardians in set-based chunks: the same answers and the same final state as the
//! rows sent one by one as DeleteGuardian, on Postgres and on SQLite; each chunk is one
//! transaction; rows by address end the link and the pending invitations in row order, a
//! later row of the same pair finding nothing, and a failing row fails alone.

use crate::bulk::{Outcome, assert_same_answers, held, outcome_of};
use crate::fixtures::{SCHOOL, invite, link, seed_school};
use crate::helpers::{TestApp, admin, spawn_app, spawn_sqlite_app};
use guardian_service::proto::bulk_delete_guardians_row::Guardian;
use guardian_service::proto::*;
use std::collections::{BTreeMap, BTreeSet};

const STUDENTS: usize = 30;
/// Rows of the equivalence run: three server chunks of 500, 500 and 200.
const ROWS: usize = 1_200;

/// Every student s1..s30 has three guardians, g{n}-0 to g{n}-2.
async fn prepare(app: &TestApp) {
    seed_school(app, STUDENTS).await;
    for n in 1..=STUDENTS {
        for j in 0..3 {
            let address = format!("g{n}-{j}@families.example");
            link(
                app,
                &format!("s{n}"),
                &address,
                &format!("g{n}-{j}"),
                &address,
            )
            .await;
        }
    }
}

/// Rows by guardian id: each third of the rows removes one of the three guardians of every
/// student (so removals fall in more than one chunk), with repeats of removed pairs, unknown
/// guardians and students, another tenant's student, and students named by address.
fn rows() -> Vec<(String, String)> {
    (0..ROWS)
        .map(|i| {
            let n = i % STUDENTS + 1;
            let j = i / 400;
            if i % 97 == 0 {
                ("nobody".to_owned(), format!("g{n}-{j}"))
            } else if i % 89 == 0 {
                ("o1".to_owned(), format!("g{n}-{j}"))
            } else if i % 7 == 0 {
                (format!("s{n}"), format!("g-unknown-{i}"))
            } else if i % 13 == 0 {
                (format!("s{n}@{SCHOOL}"), format!("g{n}-{j}"))
            } else {
                (format!("s{n}"), format!("g{n}-{j}"))
            }
        })
        .collect()
}

/// The distinct transactions that wrote the audit events of `action` (Postgres only).
async fn transactions_of(app: &TestApp, action: &str) -> i64 {
    transactions_writing(app, &format!("action = '{action}'")).await
}

/// The distinct transactions that wrote the audit events `condition` selects (Postgres only):
/// a set-based write is one.
pub(crate) async fn transactions_writing(app: &TestApp, condition: &str) -> i64 {
    let pool = sqlx::PgPool::connect(&app.database_url)
        .await
        .expect("connect");
    // The condition is the test's own text.
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(DISTINCT xmin::text) FROM guardian_events WHERE {condition}"
    )))
    .fetch_one(&pool)
    .await
    .expect("count transactions");
    pool.close().await;
    count
}

/// Sends the rows as one bulk call to `chunked` and one by one as DeleteGuardian, in row
/// order, to `single`; both must answer every row alike and end alike. Returns the answers.
async fn chunked_equals_single(chunked: &TestApp, single: &TestApp) -> Vec<Outcome> {
    prepare(chunked).await;
    prepare(single).await;
    let rows = rows();
    let token = admin(SCHOOL);
    let results = chunked
        .guardians_as(&token)
        .bulk_delete_guardians(BulkDeleteGuardiansRequest {
            rows: rows
                .iter()
                .map(|(student, guardian)| BulkDeleteGuardiansRow {
                    student_id: student.clone(),
                    guardian: Some(Guardian::GuardianId(guardian.clone())),
                })
                .collect(),
            dry_run: false,
            request_id: uuid::Uuid::new_v4().to_string(),
            removal: PairRemoval::LinkOnly as i32,
        })
        .await
        .expect("bulk call")
        .into_inner()
        .results;
    assert_eq!(results.len(), rows.len());
    let bulk: Vec<Outcome> = results.into_iter().map(|r| (r.code, r.reason)).collect();
    let mut client = single.guardians_as(&token);
    let mut one_by_one: Vec<Outcome> = Vec::with_capacity(rows.len());
    for (student, guardian) in &rows {
        let outcome = client
            .delete_guardian(DeleteGuardianRequest {
                student_id: student.clone(),
                guardian_id: guardian.clone(),
                allow_missing: false,
                request_id: String::new(),
            })
            .await;
        one_by_one.push(outcome_of(outcome));
    }
    assert_same_answers(&bulk, &one_by_one, &rows);
    let reasons: BTreeSet<&str> = bulk.iter().map(|(_, r)| r.as_str()).collect();
    for expected in ["", "STUDENT_NOT_FOUND", "GUARDIAN_NOT_FOUND"] {
        assert!(
            reasons.contains(expected),
            "no row answered {expected:?}: {reasons:?}"
        );
    }
    let removed = bulk.iter().filter(|(code, _)| *code == 0).count();
    assert_eq!(removed, STUDENTS * 3, "every link removed once");
    let (a, b) = (held(chunked).await, held(single).await);
    assert_eq!(a, b, "the same final state");
    assert_eq!(
        a.actions.get("guardian.removed").copied(),
        Some(removed as i64)
    );
    bulk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_removal_equals_deleting_one_by_one_on_postgres() {
    let chunked = spawn_app().await;
    let bulk = chunked_equals_single(&chunked, &spawn_app().await).await;
    // One transaction per chunk that removed anything, not one per row.
    let chunks: BTreeSet<usize> = bulk
        .iter()
        .enumerate()
        .filter(|(_, (code, _))| *code == 0)
        .map(|(i, _)| i / 500)
        .collect();
    assert!(chunks.len() >= 2, "removals in several chunks: {chunks:?}");
    assert_eq!(
        transactions_of(&chunked, "guardian.removed").await,
        chunks.len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_removal_equals_deleting_one_by_one_on_sqlite() {
    chunked_equals_single(&spawn_sqlite_app().await, &spawn_sqlite_app().await).await;
}

/// Rows by address with LINK_AND_PENDING, in one chunk: a guardian found by their own
/// address, a pending invitation, a link by id; a second row for a pair already ended and an
/// unknown student fail alone; the emails go to whom each end concerns.
async fn removals_by_address_go_in_row_order(app: &TestApp) {
    seed_school(app, 3).await;
    link(
        app,
        "s1",
        "a@families.example",
        "g-a",
        "a-own@families.example",
    )
    .await;
    invite(app, "s1", "b@families.example").await;
    link(app, "s2", "c@families.example", "g-c", "c@families.example").await;
    invite(app, "s2", "c2@families.example").await;
    invite(app, "s3", "d@families.example").await;
    let before = held(app).await;
    let by_address = |student: &str, address: &str| BulkDeleteGuardiansRow {
        student_id: student.into(),
        guardian: Some(Guardian::GuardianEmail(address.into())),
    };
    let results = app
        .guardians_as(&admin(SCHOOL))
        .bulk_delete_guardians(BulkDeleteGuardiansRequest {
            rows: vec![
                by_address("s1", "a-own@families.example"),
                by_address("s1", "a@families.example"),
                by_address("s1", "b@families.example"),
                by_address("nobody", "x@families.example"),
                BulkDeleteGuardiansRow {
                    student_id: "s2".into(),
                    guardian: Some(Guardian::GuardianId("g-c".into())),
                },
                by_address("s2", "c2@families.example"),
                by_address("s3", "d@families.example"),
                by_address("s3", "d@families.example"),
            ],
            dry_run: false,
            request_id: String::new(),
            removal: PairRemoval::LinkAndPending as i32,
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
            "GUARDIAN_NOT_FOUND",
            "",
            "STUDENT_NOT_FOUND",
            "",
            "",
            "",
            "GUARDIAN_NOT_FOUND"
        ]
    );
    let after = held(app).await;
    let states: BTreeMap<(String, String), (String, Option<String>)> = after
        .invitations
        .iter()
        .map(|(s, e, state, why)| ((s.clone(), e.clone()), (state.clone(), why.clone())))
        .collect();
    let ended = |why: &str| ("REMOVED".to_owned(), Some(why.to_owned()));
    let at = |s: &str, e: &str| states[&(s.to_owned(), e.to_owned())].clone();
    assert_eq!(at("s1", "a@families.example"), ended("GUARDIAN_REMOVED"));
    assert_eq!(at("s1", "b@families.example"), ended("CANCELLED"));
    assert_eq!(at("s2", "c@families.example"), ended("GUARDIAN_REMOVED"));
    assert_eq!(at("s2", "c2@families.example"), ended("CANCELLED"));
    assert_eq!(at("s3", "d@families.example"), ended("CANCELLED"));
    let added = |map: &BTreeMap<String, i64>, old: &BTreeMap<String, i64>| {
        map.iter()
            .map(|(k, v)| (k.clone(), v - old.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v != 0)
            .collect::<BTreeMap<String, i64>>()
    };
    assert_eq!(
        added(&after.actions, &before.actions),
        BTreeMap::from([
            ("guardian.removed".to_owned(), 2),
            ("invitation.cancelled".to_owned(), 3)
        ])
    );
    // The removal notice goes to the guardian's own address; a cancellation to the invitee.
    assert_eq!(
        added(&after.mail, &before.mail),
        BTreeMap::from([
            ("a-own@families.example".to_owned(), 1),
            ("b@families.example".to_owned(), 1),
            ("c@families.example".to_owned(), 1),
            ("c2@families.example".to_owned(), 1),
            ("d@families.example".to_owned(), 1),
        ])
    );
}

#[tokio::test]
async fn removals_by_address_go_in_row_order_on_postgres() {
    let app = spawn_app().await;
    removals_by_address_go_in_row_order(&app).await;
    assert_eq!(transactions_of(&app, "invitation.cancelled").await, 1);
}

#[tokio::test]
async fn removals_by_address_go_in_row_order_on_sqlite() {
    removals_by_address_go_in_row_order(&spawn_sqlite_app().await).await;
}

/// A dry run answers every row as the real run would and changes nothing.
#[tokio::test]
async fn a_dry_run_removal_answers_and_changes_nothing() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    link(
        &app,
        "s1",
        "a@families.example",
        "g-a",
        "a@families.example",
    )
    .await;
    let before = held(&app).await;
    let request = |dry_run| BulkDeleteGuardiansRequest {
        rows: vec![
            BulkDeleteGuardiansRow {
                student_id: "s1".into(),
                guardian: Some(Guardian::GuardianId("g-a".into())),
            },
            BulkDeleteGuardiansRow {
                student_id: "s2".into(),
                guardian: Some(Guardian::GuardianId("g-a".into())),
            },
        ],
        dry_run,
        request_id: String::new(),
        removal: PairRemoval::LinkOnly as i32,
    };
    let mut client = app.guardians_as(&admin(SCHOOL));
    let dry = client
        .bulk_delete_guardians(request(true))
        .await
        .expect("dry run")
        .into_inner()
        .results;
    assert_eq!(held(&app).await, before, "a dry run changes nothing");
    let real = client
        .bulk_delete_guardians(request(false))
        .await
        .expect("real run")
        .into_inner()
        .results;
    let answers = |r: &[BulkRowResult]| -> Vec<Outcome> {
        r.iter().map(|r| (r.code, r.reason.clone())).collect()
    };
    assert_eq!(answers(&dry), answers(&real));
    assert_eq!(answers(&real)[1].1, "GUARDIAN_NOT_FOUND");
    assert_ne!(held(&app).await, before, "the real run removed the link");
}
