//! P8: class activity for the seeded data set (every student's class with 10 work items and 3
//! announcements a week over three weeks, a mix of missing, turned-in and upcoming work), every
//! guardian due at once, and the time the scheduler's run takes to build all their summaries
//! into the outbox, with the process's peak resident memory.

use chrono::{DateTime, Utc};
use clap::Args;
use guardian_service::app::{App, AppConfig};
use guardian_service::domain::SystemClock;
use guardian_service::store::{self, ConnectOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `summaries` options.
#[derive(Debug, Args)]
pub(crate) struct SummariesArgs {
    /// The seeded database (Postgres).
    #[arg(long, env = "GUARDIANS_DATABASE_URL")]
    database_url: String,
    /// The scale it was seeded at.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// The instant every guardian is due: a Friday at 17:00 UTC (the default schedule).
    #[arg(long, default_value = "2026-11-27T17:00:00Z")]
    at: DateTime<Utc>,
    /// Build everything this many times (summary records and the outbox, which holds nothing
    /// else in a bench database, are emptied before each).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

/// Work items per class (three weeks of ten) and announcements per class (three a week).
const WORK_ITEMS: i32 = 30;
const ANNOUNCEMENTS: i32 = 9;

pub(crate) async fn run(args: SummariesArgs) -> Result<(), String> {
    if !args.database_url.starts_with("postgres") {
        return Err(
            "the summaries benchmark seeds with Postgres SQL: give a postgres:// URL".into(),
        );
    }
    let students = ((crate::dataset::STUDENTS as f64) * args.scale) as i64;
    let pool = sqlx::PgPool::connect(&args.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let seeded = Instant::now();
    seed_activity(&pool, students, args.at).await?;
    println!(
        "activity for {students} students seeded in {:.1}s",
        seeded.elapsed().as_secs_f64()
    );
    let store = store::connect(&ConnectOptions::plain(
        args.database_url.clone(),
        4,
        Duration::from_secs(60),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let app = App::new(store.clone(), Arc::new(SystemClock), AppConfig::default());
    for round in 1..=args.repeat {
        // Each round starts as a new deployment's first run: no summary records or emails.
        // TRUNCATE rather than DELETE: after DELETE and VACUUM, Postgres believes the table
        // empty while the run fills it, and scanned it whole for every page (717 summaries/s).
        for sql in ["TRUNCATE summary_deliveries, outbox"] {
            sqlx::query(sql)
                .execute(&pool)
                .await
                .map_err(|e| e.to_string())?;
        }
        let started = Instant::now();
        let built = app
            .run_due_summaries(args.at)
            .await
            .map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        let summaries = built.queued + built.skipped_empty;
        let rate = summaries as f64 / seconds.max(1e-9);
        let peak_mib = peak_rss_kib().unwrap_or(0) / 1024;
        println!(
            "round {round}: {} guardians, {} summaries queued, {} empty, in {seconds:.1}s: \
             {rate:.0} summaries/s; peak RSS {peak_mib} MiB",
            built.guardians, built.queued, built.skipped_empty
        );
        println!(
            "{}",
            serde_json::json!({
                "scenario": "P8 summaries",
                "round": round,
                "guardians": built.guardians,
                "queued": built.queued,
                "skipped_empty": built.skipped_empty,
                "seconds": seconds,
                "summaries_per_second": rate,
                "peak_rss_mib": peak_mib,
            })
        );
    }
    store.close().await;
    pool.close().await;
    Ok(())
}

/// Class activity for courses `c0`, `c25`, ... (each with students `s{n}`..`s{n+24}`), written
/// by set-based SQL; a second call leaves what is there.
async fn seed_activity(
    pool: &sqlx::PgPool,
    students: i64,
    at: DateTime<Utc>,
) -> Result<(), String> {
    // Work due from two weeks before `at` to a week after: the first two thirds past (missing,
    // turned in, returned or excused), the rest upcoming; each published five days before due.
    let work = "INSERT INTO course_work (course_id, course_work_id, title, due_time, state, \
         update_time, publish_time) \
         SELECT 'c' || c, 'w' || w, 'Assignment ' || w || ': chapter ' || (w % 12 + 1) || \
         ' exercises and a short reflection', due, 'PUBLISHED', due - interval '5 days', \
         due - interval '5 days' \
         FROM generate_series(0, $2 - 1, 25) c, generate_series(0, $3 - 1) w, \
         LATERAL (SELECT $1::timestamptz - interval '14 days' + w * interval '16 hours 48 minutes' AS due) d \
         ON CONFLICT DO NOTHING";
    let announcements = "INSERT INTO announcements (course_id, announcement_id, text, state, \
         update_time, publish_time) \
         SELECT 'c' || c, 'a' || a, 'Reminder ' || a || ': the class trip form is due on Friday; \
         bring your gym clothes and a packed lunch.', 'PUBLISHED', t, t \
         FROM generate_series(0, $2 - 1, 25) c, generate_series(0, $3 - 1) a, \
         LATERAL (SELECT $1::timestamptz - interval '21 days' + a * interval '56 hours' AS t) d \
         ON CONFLICT DO NOTHING";
    // A realistic mix per student and item: 8% missing, 2% excused, 10% returned, the rest
    // turned in; upcoming work a fifth turned in already.
    let submissions = "INSERT INTO submissions (course_id, student_id, course_work_id, state, \
         update_time) \
         SELECT 'c' || c, 's' || (c + k), 'w' || w, \
         CASE WHEN w >= $3 * 2 / 3 THEN \
              CASE WHEN (c + k + w) % 5 = 0 THEN 'TURNED_IN' ELSE 'ASSIGNED' END \
         ELSE CASE WHEN m < 4 THEN 'ASSIGNED' WHEN m < 5 THEN 'EXCUSED' \
              WHEN m < 10 THEN 'RETURNED' ELSE 'TURNED_IN' END END, \
         $1::timestamptz - interval '1 day' \
         FROM generate_series(0, $2 - 1, 25) c, generate_series(0, 24) k, \
         generate_series(0, $3 - 1) w, LATERAL (SELECT (c + k * 7 + w * 13) % 50 AS m) h \
         WHERE c + k < $2 \
         ON CONFLICT DO NOTHING";
    for (sql, per_class) in [
        (work, WORK_ITEMS),
        (announcements, ANNOUNCEMENTS),
        (submissions, WORK_ITEMS),
    ] {
        sqlx::query(sql)
            .bind(at)
            .bind(students)
            .bind(per_class)
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    sqlx::query("ANALYZE course_work, announcements, submissions")
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
