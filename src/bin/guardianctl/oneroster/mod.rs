//! `guardianctl import oneroster PATH`: mirrors a school's student information system, read
//! from a OneRoster 1.1 or 1.2 CSV export (a folder or a .zip), into the service. The directory
//! first (students, teachers, administrators; classes with their teachers and students), then
//! each student's guardians by SyncGuardians, as source SYNC, and last who and what left (see
//! `leavers`). A dry run is the default: it reads and checks the whole export, asks the server
//! what the guardians' sync would do, and prints the plan per school; `--apply` does it.

mod export;
mod leavers;
mod roster;

use crate::client::Client;
use crate::csv_input::{Input, Row};
use crate::import::{self, Pass, SyncRun};
use crate::report::{Entry, Progress};
use futures_util::StreamExt;
use guardian_service::proto::{SyncRemoveScope, UpsertCourseRequest, UpsertUsersRequest, UserRole};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Users per UpsertUsers call (the server's limit).
const USERS_PER_CALL: usize = 1000;
/// UpsertCourse calls in flight.
const COURSES_IN_FLIGHT: usize = 4;

/// `import oneroster` options.
#[derive(Debug, clap::Args)]
pub(crate) struct OneRosterArgs {
    /// The export: a folder or a .zip holding manifest.csv, orgs.csv, users.csv, classes.csv
    /// and enrollments.csv (and roles.csv for OneRoster 1.2).
    pub path: PathBuf,
    /// The domain (tenant) the export's people and classes belong to.
    #[arg(long)]
    pub domain: String,
    /// Make the changes; without it, print the plan and change nothing.
    #[arg(long)]
    pub apply: bool,
    /// Mark the export's teachers verified (they may then manage their students' guardians,
    /// where the domain lets verified teachers do so).
    #[arg(long)]
    pub teachers_verified: bool,
    /// Write the per-action outcome of the guardians' sync here (CSV).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// What the sync may remove: only what a sync made, or also guardians people invited.
    #[arg(long, value_enum, default_value = "synced-only")]
    pub remove_scope: crate::RemoveScopeArg,
    /// The safety limit: refuse when the run would delete more than this share of the
    /// domain's links (percent).
    #[arg(long, default_value_t = guardian_service::domain::sync_rules::DEFAULT_MAX_REMOVAL_PERCENT,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_removal_percent: u32,
    /// Go ahead beyond the safety limit.
    #[arg(long)]
    pub force: bool,
    /// Also remove from the directory the domain's students and teachers that this export
    /// (a whole, bulk users.csv) does not list: for an export that covers the whole domain.
    /// Users marked `tobedeleted` leave in any case.
    #[arg(long)]
    pub remove_unlisted: bool,
}

/// Counts of one school's plan.
#[derive(Debug, Default)]
struct SchoolPlan {
    students: usize,
    teachers: usize,
    admins: usize,
    classes: usize,
    invite: usize,
    cancel: usize,
    remove: usize,
    keep: usize,
    failed: usize,
}

/// Runs the import; the plan (and with `--apply` the outcome) goes to stdout.
pub(crate) async fn import(client: &Client, args: OneRosterArgs) -> Result<ExitCode, String> {
    let started = std::time::Instant::now();
    let export = export::Export::read(&args.path)?;
    let roster = roster::read(&export, &args.domain, args.teachers_verified).map_err(|errors| {
        format!(
            "the export was not read, nothing was changed:\n  {}",
            errors.join("\n  ")
        )
    })?;
    // The guardians' rows, one per (student, address); a student without any is listed too.
    let rows: Vec<Row> = roster
        .guardians
        .iter()
        .flat_map(|(student, addresses)| {
            addresses.iter().map(|address| Row {
                line: 0,
                student: student.clone(),
                guardian: address.clone(),
            })
        })
        .collect();
    let input = Input {
        rows,
        bad: Vec::new(),
        digest: export.digest,
    };
    let mut listed: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in &input.rows {
        listed.entry(row.student.as_str()).or_default().push(row);
    }
    let groups: Vec<(String, Vec<&Row>)> = roster
        .guardians
        .keys()
        .map(|student| {
            let rows = listed.remove(student.as_str()).unwrap_or_default();
            (student.clone(), rows)
        })
        .collect();
    let run = SyncRun {
        dry_run: !args.apply,
        scope: match args.remove_scope {
            crate::RemoveScopeArg::SyncedOnly => SyncRemoveScope::SyncedOnly,
            crate::RemoveScopeArg::All => SyncRemoveScope::All,
        },
        max_removal_percent: args.max_removal_percent,
        force: args.force,
        allow_remove_all: true,
    };
    let plan = import::sync_pass(client, &input, &groups, run, Pass::Plan).await;
    print_plan(&roster, &plan.entries);
    let leavers =
        leavers::Leavers::find(client, &roster, &args.domain, args.remove_unlisted).await?;
    println!("{}", leavers.describe());
    if let Some(refusal) = import::over_limit(&plan, run) {
        return Err(refusal);
    }
    if let Some(refusal) = leavers.over_limit(args.max_removal_percent, args.force) {
        return Err(refusal);
    }
    if !args.apply {
        println!("dry run: nothing was changed; run again with --apply to make these changes");
        return finish(&plan.entries, args.report.as_deref(), started);
    }
    push_directory(client, &roster).await?;
    let applied = import::sync_pass(client, &input, &groups, run, Pass::Apply).await;
    let invited = count(&applied.entries, "INVITE OK");
    let cancelled = count(&applied.entries, "CANCEL_INVITATION OK");
    let removed = count(&applied.entries, "DELETE_GUARDIAN OK");
    leavers.remove(client).await?;
    println!(
        "applied: {} users and {} classes upserted; {invited} invitations sent, {cancelled} \
         cancelled, {removed} links removed; {} users and {} classes removed from the directory",
        roster.users.len(),
        roster.courses.len(),
        leavers.users.len(),
        leavers.classes.len()
    );
    finish(&applied.entries, args.report.as_deref(), started)
}

fn count(entries: &[Entry], outcome: &str) -> usize {
    entries.iter().filter(|e| e.outcome == outcome).count()
}

/// Sends the directory: users in calls of a thousand, then each class.
async fn push_directory(client: &Client, roster: &roster::Roster) -> Result<(), String> {
    let total = (roster.users.len() + roster.courses.len()) as u64;
    let mut progress = Progress::new(total, "directory");
    for chunk in roster.users.chunks(USERS_PER_CALL) {
        client
            .directory()
            .upsert_users(UpsertUsersRequest {
                users: chunk.to_vec(),
            })
            .await
            .map_err(|s| {
                format!(
                    "the directory was not updated: {}",
                    crate::client::describe(&s)
                )
            })?;
        progress.advance(chunk.len() as u64);
    }
    let mut calls = futures_util::stream::iter(roster.courses.iter().cloned())
        .map(|course| {
            let mut directory = client.directory();
            async move {
                let id = course.course_id.clone();
                directory
                    .upsert_course(UpsertCourseRequest {
                        course: Some(course),
                    })
                    .await
                    .map_err(|s| format!("class {id}: {}", crate::client::describe(&s)))
            }
        })
        .buffer_unordered(COURSES_IN_FLIGHT);
    while let Some(done) = calls.next().await {
        done?;
        progress.advance(1);
    }
    progress.finish();
    Ok(())
}

/// The plan, per school: the directory's people and classes, and what the guardians' sync
/// would do (a student the service does not know yet: every guardian invited).
fn print_plan(roster: &roster::Roster, entries: &[Entry]) {
    let mut schools: BTreeMap<String, SchoolPlan> = BTreeMap::new();
    let school = |id: &str| {
        roster
            .school_of
            .get(id)
            .cloned()
            .unwrap_or_else(|| "(no school)".into())
    };
    for user in &roster.users {
        let plan = schools.entry(school(&user.user_id)).or_default();
        match UserRole::try_from(user.role) {
            Ok(UserRole::Student) => plan.students += 1,
            Ok(UserRole::Teacher) => plan.teachers += 1,
            _ => plan.admins += 1,
        }
    }
    for course in &roster.courses {
        schools
            .entry(school(&course.course_id))
            .or_default()
            .classes += 1;
    }
    for entry in entries {
        let plan = schools.entry(school(&entry.student)).or_default();
        if entry.reason.contains("STUDENT_NOT_FOUND") {
            // Not in the directory yet: the import adds them, and invites each guardian.
            plan.invite += 1;
            continue;
        }
        match entry.outcome.as_str() {
            "INVITE PLANNED" => plan.invite += 1,
            "CANCEL_INVITATION PLANNED" => plan.cancel += 1,
            "DELETE_GUARDIAN PLANNED" => plan.remove += 1,
            "KEEP PLANNED" => plan.keep += 1,
            _ => plan.failed += 1,
        }
    }
    println!(
        "OneRoster {} export: {} users, {} classes, {} students with {} guardian addresses",
        roster.version,
        roster.users.len(),
        roster.courses.len(),
        roster.guardians.len(),
        roster.guardians.values().map(|g| g.len()).sum::<usize>()
    );
    println!(
        "{:<30} {:>8} {:>8} {:>6} {:>7} | {:>6} {:>6} {:>6} {:>6} {:>6}",
        "school",
        "students",
        "teachers",
        "admins",
        "classes",
        "invite",
        "cancel",
        "remove",
        "keep",
        "failed"
    );
    for (name, p) in &schools {
        println!(
            "{:<30} {:>8} {:>8} {:>6} {:>7} | {:>6} {:>6} {:>6} {:>6} {:>6}",
            name,
            p.students,
            p.teachers,
            p.admins,
            p.classes,
            p.invite,
            p.cancel,
            p.remove,
            p.keep,
            p.failed
        );
    }
    for note in &roster.notes {
        println!("note: {note}");
    }
}

/// Writes the report and gives the exit code: non-zero when any guardian action failed (a
/// student the directory does not hold yet is no failure of a dry run).
fn finish(
    entries: &[Entry],
    report: Option<&std::path::Path>,
    started: std::time::Instant,
) -> Result<ExitCode, String> {
    if let Some(path) = report {
        crate::report::write(path, entries)?;
    }
    let failed: Vec<&Entry> = entries
        .iter()
        .filter(|e| (e.failed() || e.unsettled()) && !e.reason.contains("STUDENT_NOT_FOUND"))
        .collect();
    for e in failed.iter().take(10) {
        eprintln!("{e}");
    }
    println!("done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
