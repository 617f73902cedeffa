//! CheckGuardianships: many questions in one call, each answered as CheckGuardianship answers
//! it, in request order, failing alone.

use crate::fixtures::{SCHOOL, assert_status, link, seed_school};
use crate::helpers::{admin, spawn_app, teacher};
use guardian_service::proto::check_guardianship_request::Guardian;
use guardian_service::proto::*;
use tonic::Code;

fn ask(student: &str, guardian: Guardian) -> CheckGuardianshipRequest {
    CheckGuardianshipRequest {
        student_id: student.into(),
        guardian: Some(guardian),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_question_is_answered_in_order_as_the_single_check_answers_it() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    link(&app, "s1", "invited@example.org", "g1", "own@example.org").await;
    link(
        &app,
        "o1",
        "o-parent@example.org",
        "g-o",
        "o-parent@example.org",
    )
    .await;
    let id = |g: &str| Guardian::GuardianId(g.into());
    let address = |e: &str| Guardian::GuardianEmail(e.into());
    let checks = vec![
        ask("s1", id("g1")),
        ask("s1", address("own@example.org")),
        ask("s1", address("invited@example.org")),
        ask("s2", id("g1")),
        // Another tenant's student is as unknown as a missing one.
        ask("o1", id("g-o")),
        ask("nobody", id("g1")),
        ask("", id("g1")),
        CheckGuardianshipRequest {
            student_id: "s1".into(),
            guardian: None,
            ..Default::default()
        },
        ask("s1", address("not an address")),
    ];
    let token = admin(SCHOOL);
    let results = app
        .guardians_as(&token)
        .check_guardianships(CheckGuardianshipsRequest {
            checks: checks.clone(),
            ..Default::default()
        })
        .await
        .expect("check")
        .into_inner()
        .results;
    let got: Vec<(i32, &str, bool)> = results
        .iter()
        .map(|r| (r.index, r.reason.as_str(), r.linked))
        .collect();
    assert_eq!(
        got,
        [
            (0, "", true),
            (1, "", true),
            (2, "", true),
            (3, "", false),
            (4, "STUDENT_NOT_FOUND", false),
            (5, "STUDENT_NOT_FOUND", false),
            (6, "INVALID_STUDENT_ID", false),
            (7, "INVALID_ARGUMENT", false),
            (8, "INVALID_EMAIL", false),
        ]
    );
    assert!(
        results[7].message.contains("checks[7].guardian"),
        "{}",
        results[7].message
    );
    // The same questions one by one get the same answers.
    for (check, result) in checks.into_iter().zip(&results) {
        match app.guardians_as(&token).check_guardianship(check).await {
            Ok(single) => {
                let single = single.into_inner();
                assert_eq!(
                    (result.code, result.linked, result.guardian_access_enabled),
                    (0, single.linked, single.guardian_access_enabled)
                );
            }
            Err(status) => assert_eq!(result.code, status.code() as i32, "{status:?}"),
        }
    }
    // A teacher is answered question by question, by the per-student rules.
    let by_teacher = app
        .guardians_as(&teacher("t-verified", SCHOOL))
        .check_guardianships(CheckGuardianshipsRequest {
            checks: vec![ask("s1", id("g1")), ask("o1", id("g-o"))],
            ..Default::default()
        })
        .await
        .expect("check")
        .into_inner()
        .results;
    assert_eq!(
        (by_teacher[0].linked, by_teacher[1].reason.as_str()),
        (true, "NOT_ALLOWED_TO_MANAGE")
    );
    assert_status(
        app.guardians()
            .check_guardianships(CheckGuardianshipsRequest {
                checks: vec![ask("s1", id("g1")); 1001],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
}

/// Fully consistent checks asked at once share their reads of the primary: 256 questions over
/// 16 students from 64 concurrent callers (two channels), with a removal made just before them,
/// each get exactly the answer its own read would give, an unknown student failing alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fully_consistent_checks_each_get_their_own_answer() {
    let app = spawn_app().await;
    seed_school(&app, 16).await;
    for n in (1..=16).filter(|n| n % 2 == 1) {
        let address = format!("g{n}@example.org");
        link(&app, &format!("s{n}"), &address, &format!("g{n}"), &address).await;
    }
    // Removed just before the checks: no check may still see it.
    app.guardians_as(&admin(SCHOOL))
        .delete_guardian(DeleteGuardianRequest {
            student_id: "s1".into(),
            guardian_id: "g1".into(),
            ..Default::default()
        })
        .await
        .expect("remove");
    let token = admin(SCHOOL);
    let channels = [app.guardians_as(&token), app.guardians_as(&token)];
    let callers = (0..64usize).map(|caller| {
        let mut client = channels[caller % 2].clone();
        async move {
            let mut answers = Vec::new();
            for k in 0..4usize {
                let n = (caller * 4 + k) % 17 + 1;
                // Student 17 does not exist; guardian g{n} is linked to s{n} for odd n but 1.
                let mut ask = ask(&format!("s{n}"), Guardian::GuardianId(format!("g{n}")));
                ask.consistency = Some(Consistency {
                    requirement: Some(consistency::Requirement::FullyConsistent(true)),
                });
                let answer = client.check_guardianship(ask).await;
                answers.push((
                    n,
                    answer.map(|a| a.into_inner().linked).map_err(|s| s.code()),
                ));
            }
            answers
        }
    });
    let answers: Vec<(usize, Result<bool, Code>)> = futures_util::future::join_all(callers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(answers.len(), 256);
    for (n, answer) in answers {
        let expected = match n {
            17 => Err(Code::NotFound),
            1 => Ok(false),
            n => Ok(n % 2 == 1),
        };
        assert_eq!(answer, expected, "student s{n}");
    }
}
