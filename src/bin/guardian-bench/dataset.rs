//! The data set: spread over domains, each with teachers, students and courses; per student a
//! few accepted links, and pending, removed and expired invitations in the proportions of
//! quality.md (100,000 students, 250,000 accepted, 50,000 pending, 100,000 removed or expired at
//! scale 1). Names are deterministic so that the load phase can address them: student
//! `s{n}`, guardian `g{n}`.

use chrono::{TimeDelta, Utc};
use clap::Args;
use guardian_service::domain::{
    Course, CourseId, DomainName, Email, GuardianProfile, Invitation, InvitationId,
    InvitationState, RemovalReason, Role, User, UserId,
};
use guardian_service::store::{self, ConnectOptions};
use std::time::{Duration, Instant};

/// `seed` options.
#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// The database to fill.
    #[arg(long, env = "GUARDIANS_DATABASE_URL")]
    database_url: String,
    /// Multiplies the data set.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Parallel writers.
    #[arg(long, default_value_t = 4)]
    writers: usize,
}

/// Students at scale 1.
pub(crate) const STUDENTS: usize = 100_000;
/// Domains the students are spread over.
pub(crate) const DOMAINS: usize = 50;

/// The domain of student `n`.
pub(crate) fn domain_of(n: usize) -> String {
    format!("school{}.example", n % DOMAINS)
}

/// How many accepted links, pending, and removed-or-expired invitations student `n` has:
/// 2.5, 0.5 and 1 on average.
fn shape(n: usize) -> (usize, usize, usize) {
    let accepted = if n.is_multiple_of(2) { 2 } else { 3 };
    let pending = n % 2;
    let ended = 1;
    (accepted, pending, ended)
}

/// The guardian account of the `k`-th invitation of student `n`.
pub(crate) fn guardian_of(n: usize, k: usize) -> String {
    format!("g{}", n * 4 + k)
}

pub(crate) async fn seed(args: SeedArgs) -> Result<(), String> {
    let students = ((STUDENTS as f64) * args.scale) as usize;
    let options = ConnectOptions::plain(
        args.database_url.clone(),
        args.writers as u32 + 1,
        Duration::from_secs(60),
    );
    let store = store::connect(&options).await.map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let chunk = students.div_ceil(args.writers);
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let store = store.clone();
        let range = (w * chunk)..((w + 1) * chunk).min(students);
        writers.push(tokio::spawn(async move { write_range(store, range).await }));
    }
    let mut rows = 0usize;
    for w in writers {
        rows += w.await.map_err(|e| e.to_string())??;
    }
    println!(
        "seeded {students} students and {rows} invitations in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn write_range(
    store: std::sync::Arc<dyn store::Store>,
    range: std::ops::Range<usize>,
) -> Result<usize, String> {
    const BATCH: usize = 500;
    let now = Utc::now();
    let mut rows = 0;
    let ids: Vec<usize> = range.collect();
    for batch in ids.chunks(BATCH) {
        let mut tx = store.begin().await.map_err(|e| e.to_string())?;
        for &n in batch {
            let domain = DomainName::parse(&domain_of(n)).map_err(|e| e.to_string())?;
            let student = User {
                user_id: UserId::parse(&format!("s{n}")).map_err(|e| e.to_string())?,
                domain: domain.clone(),
                email: Email::parse(&format!("s{n}@{domain}")).map_err(|e| e.to_string())?,
                role: Role::Student,
                verified_teacher: false,
                display_name: format!("Student {n}"),
                locale: None,
            };
            tx.upsert_user(&student, now)
                .await
                .map_err(|e| e.to_string())?;
            if n.is_multiple_of(25) {
                // A verified teacher and a course per 25 students.
                let teacher = User {
                    user_id: UserId::parse(&format!("t{n}")).map_err(|e| e.to_string())?,
                    email: Email::parse(&format!("t{n}@{domain}")).map_err(|e| e.to_string())?,
                    role: Role::Teacher,
                    verified_teacher: true,
                    display_name: format!("Teacher {n}"),
                    ..student.clone()
                };
                tx.upsert_user(&teacher, now)
                    .await
                    .map_err(|e| e.to_string())?;
                let course = Course {
                    course_id: CourseId::parse(&format!("c{n}")).map_err(|e| e.to_string())?,
                    domain: domain.clone(),
                    teacher_ids: vec![teacher.user_id.clone()],
                    student_ids: (n..n + 25)
                        .map(|m| UserId::from_trusted(format!("s{m}")))
                        .collect(),
                };
                tx.upsert_course(&course, now)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let (accepted, pending, ended) = shape(n);
            let mut k = 0;
            let add = |state: InvitationState, k: usize| {
                let guardian = guardian_of(n, k);
                let email = Email::parse(&format!("{guardian}@families.example"))
                    .expect("a generated address is valid");
                Invitation {
                    id: InvitationId::generate(),
                    domain: domain.clone(),
                    student_id: student.user_id.clone(),
                    invited_email: email.clone(),
                    state,
                    inviter_id: "seed".into(),
                    guardian: (state == InvitationState::Accepted).then(|| GuardianProfile {
                        guardian_id: UserId::from_trusted(guardian.clone()),
                        email,
                        display_name: format!("Guardian {guardian}"),
                    }),
                    token_hash: uuid::Uuid::new_v4().simple().to_string(),
                    create_time: now,
                    update_time: now,
                    expire_time: now
                        + TimeDelta::days(if state == InvitationState::Expired {
                            -1
                        } else {
                            120
                        }),
                    accept_time: (state == InvitationState::Accepted).then_some(now),
                    version: 1,
                    source: guardian_service::domain::InvitationSource::Manual,
                    remind_time: None,
                    reminder_token_hash: None,
                    family_id: None,
                }
            };
            let mut planned = Vec::new();
            for _ in 0..accepted {
                planned.push(add(InvitationState::Accepted, k));
                k += 1;
            }
            for _ in 0..pending {
                planned.push(add(InvitationState::Pending, k));
                k += 1;
            }
            for e in 0..ended {
                let state = if (n + e).is_multiple_of(2) {
                    InvitationState::Removed(RemovalReason::Cancelled)
                } else {
                    InvitationState::Expired
                };
                planned.push(add(state, k));
                k += 1;
            }
            for inv in planned {
                tx.insert_invitation(&inv)
                    .await
                    .map_err(|e| e.to_string())?;
                rows += 1;
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    Ok(rows)
}
