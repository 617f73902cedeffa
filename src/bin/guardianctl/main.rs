//! `guardianctl`: the operator command line over the gRPC API: CSV invite, resend, remove and
//! sync, and OneRoster imports (with dry runs, progress and a per-row report), listings, domain
//! settings, summary previews and deliveries, and health.

mod client;
mod csv_input;
mod import;
mod oneroster;
mod privacy;
mod report;
mod summaries;
mod views;
mod watch;

use clap::{Parser, Subcommand, ValueEnum};
use client::Client;
use guardian_service::domain::sync_rules::DEFAULT_MAX_REMOVAL_PERCENT;
use guardian_service::proto::{PairRemoval, SyncRemoveScope};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "guardianctl", version, about = "Operate guardian-service")]
struct Cli {
    /// The server to talk to: host:port (plain HTTP/2), or http://host:port.
    #[arg(
        long,
        env = "GUARDIANS_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true,
        hide_env_values = true
    )]
    server: String,
    /// Bearer token (an administrator's or a service's).
    #[arg(long, env = "GUARDIANS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct CsvArgs {
    /// The CSV file: a header `Student,Guardian` (or `student_email,guardian_email`), then rows.
    #[arg(long)]
    csv: PathBuf,
    /// Check every row but change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the per-row outcome here (CSV).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Rows per request.
    #[arg(long, default_value_t = 500)]
    chunk: usize,
}

#[derive(Debug, clap::Args)]
struct ResendArgs {
    /// The CSV file of (student, guardian address) pairs whose pending invitation to resend.
    #[arg(long, required_unless_present = "pending_older_than")]
    csv: Option<PathBuf>,
    /// Instead of a file: every pending invitation last sent longer ago than this (e.g. 30d,
    /// 12h).
    #[arg(long, conflicts_with = "csv", value_parser = parse_age)]
    pending_older_than: Option<std::time::Duration>,
    /// The domain to choose in (default: the token's own).
    #[arg(long, requires = "pending_older_than")]
    domain: Option<String>,
    /// Check every invitation but change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the per-row outcome here (CSV).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Rows per request (with --csv).
    #[arg(long, default_value_t = 500)]
    chunk: usize,
}

/// An age such as `30d`, `12h` or `90m`.
fn parse_age(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("give a unit: d (days), h (hours) or m (minutes), e.g. 30d")?;
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a number followed by d, h or m"))?;
    let seconds = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        _ => return Err(format!("unknown unit {unit:?}: use d, h or m")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

#[derive(Debug, clap::Args)]
struct RemoveArgs {
    #[command(flatten)]
    csv: CsvArgs,
    /// Only cancel the pending invitations of each row (leave an accepted guardian linked).
    #[arg(long, conflicts_with = "accepted_only")]
    pending_only: bool,
    /// Only remove each row's accepted guardian (leave pending invitations waiting).
    #[arg(long)]
    accepted_only: bool,
}

#[derive(Debug, clap::Args)]
struct SyncArgs {
    #[command(flatten)]
    csv: CsvArgs,
    /// What the sync may remove of what the file does not list: only what a sync made, or
    /// also the guardians people invited.
    #[arg(long, value_enum, default_value = "synced-only")]
    remove_scope: RemoveScopeArg,
    /// The safety limit: refuse a run that would delete more than this share of a domain's
    /// links (percent; at least one link may always go).
    #[arg(long, default_value_t = DEFAULT_MAX_REMOVAL_PERCENT,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    max_removal_percent: u32,
    /// Go ahead beyond the safety limit.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RemoveScopeArg {
    SyncedOnly,
    All,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the server's health (SERVING or NOT_SERVING); exit non-zero unless SERVING.
    Health,
    /// Invite the guardian of each row.
    Invite(CsvArgs),
    /// Remove the guardian of each row (by email, or account id): the link and the pending
    /// invitations of the pair.
    Remove(RemoveArgs),
    /// Make each listed student's guardians exactly those the file lists for them.
    Sync(SyncArgs),
    /// Send pending invitations again (a new link and 120 more days): those of a file's rows,
    /// or every one waiting longer than an age.
    Resend(ResendArgs),
    /// Mirror a student information system's export into the service (a dry run unless
    /// --apply).
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// List guardians or invitations, paging through all of them.
    List {
        /// What to list.
        what: Listing,
        /// A student id or email, or `-` for every student you may see.
        #[arg(long, default_value = "-")]
        student: String,
        /// Invitation states (default: pending).
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: views::Format,
    },
    /// Read or change a domain's settings.
    Settings {
        #[command(subcommand)]
        action: views::SettingsAction,
    },
    /// Print a domain's changes as they happen (the change feed); Ctrl-C prints the token to
    /// resume from.
    Watch {
        /// The domain, or `*` for every domain (platform services).
        #[arg(long)]
        domain: String,
        /// Only this student's changes.
        #[arg(long)]
        student: Option<String>,
        /// Resume after this token (from an earlier watch, or a write's consistency token).
        #[arg(long)]
        from: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: watch::WatchFormat,
    },
    /// Preview a guardian's email summary, or list what was built for them.
    Summaries {
        #[command(subcommand)]
        action: summaries::SummariesAction,
    },
    /// A person's records: export them, or erase them (a school's answer to an access or
    /// erasure request).
    Privacy {
        #[command(subcommand)]
        action: privacy::PrivacyAction,
    },
}

#[derive(Debug, Subcommand)]
enum ImportSource {
    /// A OneRoster 1.1 or 1.2 CSV export (a folder or a .zip): the directory, then each
    /// student's guardians (parents, guardians, relatives with an address).
    Oneroster(oneroster::OneRosterArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Listing {
    Guardians,
    Invitations,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("guardianctl: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    // Health needs no token; every other command connects with one.
    let connect = || async {
        let token = cli
            .token
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .ok_or(
                "no token: set GUARDIANS_TOKEN or pass --token (an administrator's or a \
             service's; for a development server: guardian-service token --sub admin-1 \
             --role admin --domain your.school)",
            )?;
        Client::connect(&cli.server, token).await
    };
    match cli.command {
        Command::Health => views::health(&cli.server).await,
        Command::Invite(args) => import_file(&connect().await?, Job::Invite, args).await,
        Command::Remove(args) => {
            let removal = if args.pending_only {
                PairRemoval::PendingOnly
            } else if args.accepted_only {
                PairRemoval::LinkOnly
            } else {
                PairRemoval::LinkAndPending
            };
            import_file(&connect().await?, Job::Remove(removal), args.csv).await
        }
        Command::Resend(args) => resend(&connect().await?, args).await,
        Command::Import {
            source: ImportSource::Oneroster(args),
        } => oneroster::import(&connect().await?, args).await,
        Command::Sync(args) => {
            let run = import::SyncRun {
                dry_run: args.csv.dry_run,
                scope: match args.remove_scope {
                    RemoveScopeArg::SyncedOnly => SyncRemoveScope::SyncedOnly,
                    RemoveScopeArg::All => SyncRemoveScope::All,
                },
                max_removal_percent: args.max_removal_percent,
                force: args.force,
                allow_remove_all: false,
            };
            import_file(&connect().await?, Job::Sync(run), args.csv).await
        }
        Command::List {
            what,
            student,
            state,
            format,
        } => {
            let client = connect().await?;
            match what {
                Listing::Guardians => views::list_guardians(&client, &student, format).await,
                Listing::Invitations => {
                    views::list_invitations(&client, &student, &state, format).await
                }
            }
        }
        Command::Settings { action } => views::settings(&connect().await?, action).await,
        Command::Summaries { action } => summaries::summaries(&connect().await?, action).await,
        Command::Privacy { action } => privacy::privacy(&connect().await?, action).await,
        Command::Watch {
            domain,
            student,
            from,
            format,
        } => watch::watch(&connect().await?, domain, student, from, format).await,
    }
}

async fn resend(client: &Client, args: ResendArgs) -> Result<ExitCode, String> {
    match (args.csv, args.pending_older_than) {
        (Some(csv), _) => {
            let csv = CsvArgs {
                csv,
                dry_run: args.dry_run,
                report: args.report,
                chunk: args.chunk,
            };
            import_file(client, Job::Resend, csv).await
        }
        (None, Some(age)) => {
            let before = std::time::SystemTime::now()
                .checked_sub(age)
                .ok_or("the age reaches before 1970")?;
            let domain = args.domain.unwrap_or_default();
            let started = std::time::Instant::now();
            let entries = import::resend_sent_before(client, before, &domain, args.dry_run).await;
            let chosen = entries.len();
            finish(
                "resend",
                args.dry_run,
                chosen,
                &entries,
                started,
                args.report.as_deref(),
            )
        }
        (None, None) => Err("give --csv FILE or --pending-older-than AGE".into()),
    }
}

/// What a CSV file is for.
enum Job {
    Invite,
    Resend,
    Remove(PairRemoval),
    Sync(import::SyncRun),
}

async fn import_file(client: &Client, job: Job, args: CsvArgs) -> Result<ExitCode, String> {
    let input = csv_input::read(&args.csv)?;
    let started = std::time::Instant::now();
    let (command, entries) = match job {
        Job::Invite => (
            "invite",
            import::invite(client, &input, args.chunk, args.dry_run).await,
        ),
        Job::Resend => (
            "resend",
            import::resend(client, &input, args.chunk, args.dry_run).await,
        ),
        Job::Remove(removal) => (
            "remove",
            import::remove(client, &input, args.chunk, args.dry_run, removal).await,
        ),
        Job::Sync(run) => ("sync", import::sync(client, &input, run).await?),
    };
    let rows = input.rows.len() + input.bad.len();
    finish(
        command,
        args.dry_run,
        rows,
        &entries,
        started,
        args.report.as_deref(),
    )
}

/// Writes the report, prints the summary and the first failures, and gives the exit code:
/// non-zero when any row failed or is unsettled.
fn finish(
    command: &str,
    dry_run: bool,
    rows: usize,
    entries: &[report::Entry],
    started: std::time::Instant,
    report_path: Option<&std::path::Path>,
) -> Result<ExitCode, String> {
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(path) = report_path {
        report::write(path, entries)?;
    }
    let failed = entries.iter().filter(|e| e.failed()).count();
    let unsettled = entries.iter().filter(|e| e.unsettled()).count();
    let counts = Counts {
        rows,
        entries: entries.len(),
        failed,
        unsettled,
    };
    println!("{}", summary(command, dry_run, &counts, elapsed));
    for e in entries
        .iter()
        .filter(|e| e.failed() || e.unsettled())
        .take(10)
    {
        eprintln!("{e}");
    }
    if unsettled > 0 {
        eprintln!(
            "{unsettled} rows are unknown or not attempted: run the same command on the same \
             file again; rows already done are not done twice"
        );
    }
    Ok(if failed + unsettled > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What an import did, counted once.
struct Counts {
    /// Lines of the file (good and refused).
    rows: usize,
    /// Report entries: one a row, or one an action for a sync.
    entries: usize,
    failed: usize,
    unsettled: usize,
}

/// The one-line summary: rows read, and (a sync turning rows into actions) the actions taken;
/// a dry run says what would happen.
fn summary(command: &str, dry_run: bool, counts: &Counts, elapsed: f64) -> String {
    let Counts {
        rows,
        entries,
        failed,
        unsettled,
    } = *counts;
    let ok = entries - failed - unsettled;
    let (title, ok_word, failed_word) = if dry_run {
        (
            format!("{command} (dry run, nothing changed)"),
            "planned",
            "would fail",
        )
    } else {
        (command.to_owned(), "ok", "failed")
    };
    let counted = if command == "sync" {
        format!("{rows} rows, {entries} actions: ")
    } else {
        format!("{rows} rows, ")
    };
    format!(
        "{title}: {counted}{ok} {ok_word}, {failed} {failed_word}, {unsettled} unknown, in \
         {elapsed:.1}s ({:.0} rows/s)",
        rows as f64 / elapsed.max(0.001),
    )
}
