//! P9: how long a link removed through replica A goes on being reported linked by replica B's
//! cache. For each removal: B answers the link (so its cache holds it), A removes it, and B is
//! asked again and again until it says unlinked; the delay runs from A's answer to B's first
//! "unlinked". Other load on B (the `check` scenario) runs beside it from the script.

use crate::dataset::{STUDENTS, guardian_of};
use crate::load::platform_bearer;
use clap::Args;
use guardian_service::proto::{
    CheckGuardianshipRequest, DeleteGuardianRequest, check_guardianship_request,
    guardian_service_client::GuardianServiceClient,
};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// `propagation` options.
#[derive(Debug, Args)]
pub(crate) struct PropagationArgs {
    /// Replica A, which removes.
    #[arg(long)]
    server_a: String,
    /// Replica B, which is asked.
    #[arg(long)]
    server_b: String,
    /// HS256 secret of both.
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Links to remove (seeded links of distinct students; the data set loses them).
    #[arg(long, default_value_t = 1000)]
    removals: usize,
    /// The seeded scale.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Skip the first this many of the students a run picks: a second run on the same data
    /// set with `--skip 1000` removes links the first left alone.
    #[arg(long, default_value_t = 0)]
    skip: usize,
}

async fn client(server: &str) -> Result<GuardianServiceClient<Channel>, String> {
    let channel = Channel::from_shared(server.to_owned())
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    Ok(GuardianServiceClient::new(channel))
}

pub(crate) async fn run(args: PropagationArgs) -> Result<(), String> {
    let bearer = platform_bearer(&args.jwt_secret)?;
    let mut a = client(&args.server_a).await?;
    let mut b = client(&args.server_b).await?;
    let students = ((STUDENTS as f64) * args.scale) as usize;
    fn authed<T>(
        bearer: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
        message: T,
    ) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        request
    }
    let mut delays = Vec::with_capacity(args.removals);
    let mut polls = 0usize;
    for i in 0..args.removals {
        // Distinct students spread over the set; their first seeded link.
        let n = ((i + args.skip) * 7919 + 13) % students;
        let check = CheckGuardianshipRequest {
            student_id: format!("s{n}"),
            guardian: Some(check_guardianship_request::Guardian::GuardianId(
                guardian_of(n, 0),
            )),
            consistency: None,
        };
        let before = b
            .check_guardianship(authed(&bearer, check.clone()))
            .await
            .map_err(|e| format!("check on B: {e}"))?
            .into_inner();
        if !before.linked {
            return Err(format!(
                "s{n} has no link to {}: seed a fresh data set",
                guardian_of(n, 0)
            ));
        }
        a.delete_guardian(authed(
            &bearer,
            DeleteGuardianRequest {
                student_id: format!("s{n}"),
                guardian_id: guardian_of(n, 0),
                ..Default::default()
            },
        ))
        .await
        .map_err(|e| format!("remove on A: {e}"))?;
        let removed = Instant::now();
        loop {
            polls += 1;
            let answer = b
                .check_guardianship(authed(&bearer, check.clone()))
                .await
                .map_err(|e| format!("check on B: {e}"))?
                .into_inner();
            if !answer.linked {
                delays.push(removed.elapsed());
                break;
            }
            if removed.elapsed() > Duration::from_secs(10) {
                return Err(format!("B still reports s{n}'s removed link after 10 s"));
            }
        }
    }
    delays.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: f64| ms(delays[((delays.len() as f64 - 1.0) * p).round() as usize]);
    println!(
        "{{\"removals\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"checks_on_b\":{}}}",
        delays.len(),
        pct(0.5),
        pct(0.99),
        ms(*delays.last().unwrap_or(&Duration::ZERO)),
        polls
    );
    Ok(())
}
