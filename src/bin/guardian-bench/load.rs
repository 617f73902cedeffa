//! The load phase: a fixed number of requests shared by N tasks over M channels, each request
//! timed; the report gives RPS, p50/p90/p99/p999 and errors.

use crate::dataset::{STUDENTS, guardian_of};
use clap::{Args, ValueEnum};
use guardian_service::auth::issue::{TokenClaims, sign_hs256};
use guardian_service::proto::{
    CheckGuardianshipRequest, CheckGuardianshipsRequest, Consistency,
    CreateGuardianInvitationRequest, ListGuardiansRequest, check_guardianship_request, consistency,
    guardian_service_client::GuardianServiceClient,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Which RPC to drive.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// CheckGuardianship of a random (student, linked guardian), `minimize_latency` (the
    /// replica's cache once it holds the student).
    Check,
    /// The same, `fully_consistent` (the primary database every time).
    CheckConsistent,
    /// CheckGuardianships of 100 such pairs per call (pairs per second = 100 x RPS).
    CheckBatch,
    /// ListGuardians of one student, `minimize_latency` (the replica's cache once it holds the
    /// student, as the checks).
    ListByStudent,
    /// The same, `fully_consistent` (the primary database every time).
    ListByStudentConsistent,
    /// ListGuardians by guardian id (the reverse lookup).
    ListByGuardian,
    /// CreateGuardianInvitation to fresh addresses.
    Create,
}

/// Pairs per CheckGuardianships call of the `check-batch` scenario.
const CHECK_BATCH: usize = 100;

/// `run` options.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// HS256 secret to sign a platform-service token with.
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// The RPC, or a mix of them separated by commas (requests take turns).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "check")]
    scenario: Vec<Scenario>,
    /// Stop after this long instead of after `--requests` (e.g. 30s).
    #[arg(long, value_parser = guardian_service::config::parse_duration)]
    duration: Option<Duration>,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections shared by the callers.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Requests sent first and not measured.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// The seeded scale (to address existing students).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// The `authorization` value of a platform service that reads and writes guardians.
pub(crate) fn platform_bearer(
    secret: &str,
) -> Result<MetadataValue<tonic::metadata::Ascii>, String> {
    let mut claims = TokenClaims::new("bench", "service", Duration::from_secs(3600));
    claims.domain = Some("*".into());
    claims.scope = Some("guardians.read guardians.write".into());
    let token = sign_hs256(&claims, secret.as_bytes())?;
    format!("Bearer {token}")
        .parse()
        .map_err(|_| "bad token".to_string())
}

/// Simple deterministic spread over the data set (no extra dependency for randomness).
fn pick(i: usize, students: usize) -> usize {
    (i.wrapping_mul(2_654_435_761) ^ (i >> 7)) % students
}

pub(crate) async fn run(args: RunArgs) -> Result<(), String> {
    let students = ((STUDENTS as f64) * args.scale) as usize;
    let bearer = platform_bearer(&args.jwt_secret)?;
    let mut channels = Vec::new();
    for _ in 0..args.channels.max(1) {
        let channel = Channel::from_shared(args.server.clone())
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", args.server))?;
        channels.push(channel);
    }
    // Warm-up: connections, prepared statements, caches.
    drive(&args, &channels, &bearer, students, args.warmup, 0, None).await;
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let total = if deadline.is_some() {
        usize::MAX
    } else {
        args.requests
    };
    let (mut latencies, codes) = drive(
        &args,
        &channels,
        &bearer,
        students,
        total,
        args.warmup,
        deadline,
    )
    .await;
    let elapsed = started.elapsed();
    // Throughput and latency are of the calls answered OK; every other answer is listed.
    let done = latencies.len();
    let answered: usize = codes.values().sum();
    let errors = answered - done;
    let by_code = codes
        .iter()
        .filter(|(code, _)| **code != "OK")
        .map(|(code, n)| format!("{code} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[idx] as f64 / 1000.0
    };
    let rps = done as f64 / elapsed.as_secs_f64();
    let scenario = args
        .scenario
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join("+");
    if args.json {
        println!(
            "{{\"scenario\":\"{}\",\"requests\":{},\"concurrency\":{},\"channels\":{},\"seconds\":{:.3},\"rps\":{:.0},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"errors\":{},\"error_codes\":\"{}\"}}",
            scenario,
            done,
            args.concurrency,
            args.channels,
            elapsed.as_secs_f64(),
            rps,
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(0.999),
            errors,
            by_code
        );
    } else {
        println!(
            "{}: {} requests answered OK, {} callers on {} channels, {:.2}s: {:.0} RPS; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; {} errors{}",
            scenario,
            done,
            args.concurrency,
            args.channels,
            elapsed.as_secs_f64(),
            rps,
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(0.999),
            errors,
            if by_code.is_empty() {
                String::new()
            } else {
                format!(" ({by_code})")
            }
        );
    }
    Ok(())
}

/// Answers by gRPC code name (`OK`, `ALREADY_EXISTS`, ...), counted.
type Codes = std::collections::BTreeMap<&'static str, usize>;

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Sends `total` requests from `concurrency` tasks; returns the latencies (µs) of the calls
/// answered OK and how many calls got each code. Only OK is a success: a refusal (a limit, an
/// address already invited) did not do the work being measured.
async fn drive(
    args: &RunArgs,
    channels: &[Channel],
    bearer: &MetadataValue<tonic::metadata::Ascii>,
    students: usize,
    total: usize,
    offset: usize,
    deadline: Option<Instant>,
) -> (Vec<u32>, Codes) {
    let next = Arc::new(AtomicUsize::new(0));
    // Addresses no earlier run used, so that a second run measures invitations, not refusals.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut tasks = Vec::new();
    for t in 0..args.concurrency {
        let channel = channels[t % channels.len()].clone();
        let bearer = bearer.clone();
        let next = next.clone();
        let scenarios = args.scenario.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = GuardianServiceClient::new(channel);
            let mut latencies = Vec::with_capacity(total.min(1 << 20) / 64 + 1);
            let mut codes = Codes::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let scenario = scenarios[i % scenarios.len().max(1)];
                let n = pick(i + offset, students);
                let started = Instant::now();
                let answer: Result<(), tonic::Status> = match scenario {
                    Scenario::Check | Scenario::CheckConsistent => {
                        let consistency =
                            (scenario == Scenario::CheckConsistent).then_some(Consistency {
                                requirement: Some(consistency::Requirement::FullyConsistent(true)),
                            });
                        let mut req = tonic::Request::new(CheckGuardianshipRequest {
                            student_id: format!("s{n}"),
                            guardian: Some(check_guardianship_request::Guardian::GuardianId(
                                guardian_of(n, 0),
                            )),
                            consistency,
                        });
                        req.metadata_mut().insert("authorization", bearer.clone());
                        client.check_guardianship(req).await.map(drop)
                    }
                    Scenario::CheckBatch => {
                        let checks = (0..CHECK_BATCH)
                            .map(|j| {
                                let m = pick((i + offset) * CHECK_BATCH + j, students);
                                CheckGuardianshipRequest {
                                    student_id: format!("s{m}"),
                                    guardian: Some(
                                        check_guardianship_request::Guardian::GuardianId(
                                            guardian_of(m, 0),
                                        ),
                                    ),
                                    consistency: None,
                                }
                            })
                            .collect();
                        let mut req = tonic::Request::new(CheckGuardianshipsRequest {
                            checks,
                            consistency: None,
                        });
                        req.metadata_mut().insert("authorization", bearer.clone());
                        // A call counts as done only when every pair was answered.
                        client.check_guardianships(req).await.and_then(|r| {
                            match r.into_inner().results.iter().find(|r| r.code != 0) {
                                Some(failed) => Err(tonic::Status::new(
                                    tonic::Code::from_i32(failed.code),
                                    failed.reason.clone(),
                                )),
                                None => Ok(()),
                            }
                        })
                    }
                    Scenario::ListByStudent
                    | Scenario::ListByStudentConsistent
                    | Scenario::ListByGuardian => {
                        let body = if scenario == Scenario::ListByGuardian {
                            ListGuardiansRequest {
                                student_id: "-".into(),
                                guardian_id: guardian_of(n, 0),
                                ..Default::default()
                            }
                        } else {
                            ListGuardiansRequest {
                                student_id: format!("s{n}"),
                                consistency: (scenario == Scenario::ListByStudentConsistent)
                                    .then_some(Consistency {
                                        requirement: Some(
                                            consistency::Requirement::FullyConsistent(true),
                                        ),
                                    }),
                                ..Default::default()
                            }
                        };
                        let mut req = tonic::Request::new(body);
                        req.metadata_mut().insert("authorization", bearer.clone());
                        client.list_guardians(req).await.map(drop)
                    }
                    Scenario::Create => {
                        let mut req = tonic::Request::new(CreateGuardianInvitationRequest {
                            student_id: format!("s{n}"),
                            invited_email_address: format!(
                                "load{run}-{offset}-{i}@families.example"
                            ),
                            request_id: String::new(),
                            student_ids: Vec::new(),
                        });
                        req.metadata_mut().insert("authorization", bearer.clone());
                        client.create_guardian_invitation(req).await.map(drop)
                    }
                };
                let code = answer.map_or_else(|status| status.code(), |()| tonic::Code::Ok);
                *codes.entry(code_name(code)).or_default() += 1;
                if code != tonic::Code::Ok {
                    continue;
                }
                latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            (latencies, codes)
        }));
    }
    let mut all = Vec::with_capacity(total.min(1 << 22));
    let mut codes = Codes::new();
    for task in tasks {
        if let Ok((l, c)) = task.await {
            all.extend(l);
            for (code, n) in c {
                *codes.entry(code).or_default() += n;
            }
        }
    }
    (all, codes)
}
