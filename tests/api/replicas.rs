//! Read replicas (`GUARDIANS_READ_DATABASE_URL`): a real streaming standby serves the link
//! reads it has replayed far enough for, the primary the rest; a replica that is down is
//! skipped and the service stays SERVING.

use crate::fixtures::{guardians_of_s1, link, seed_school};
use crate::helpers::{TestApp, spawn_with, test_config};
use guardian_service::domain::Position;
use guardian_service::proto::check_guardianship_request::Guardian;
use guardian_service::proto::consistency::Requirement;
use guardian_service::proto::*;
use guardian_service::testing::TestDatabase;
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// How long a condition the replica reaches by itself (replay, a probe) may take to hold.
const PATIENCE: Duration = Duration::from_secs(20);

fn fresh_as(token: &str) -> Option<Consistency> {
    Some(Consistency {
        requirement: Some(Requirement::AtLeastAsFresh(token.into())),
    })
}

fn fully() -> Option<Consistency> {
    Some(Consistency {
        requirement: Some(Requirement::FullyConsistent(true)),
    })
}

/// Is g1 a guardian of s1, under `consistency`; and the token of the answer.
async fn g1_of_s1(app: &TestApp, consistency: Option<Consistency>) -> (bool, String) {
    let answer = app
        .guardians()
        .check_guardianship(CheckGuardianshipRequest {
            student_id: "s1".into(),
            guardian: Some(Guardian::GuardianId("g1".into())),
            consistency,
        })
        .await
        .expect("check")
        .into_inner();
    (answer.linked, answer.consistency_token)
}

async fn serving(app: &TestApp) -> bool {
    let status = app
        .health()
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    status == ServingStatus::Serving as i32
}

/// The newest write's token: the one DeleteGuardian returns.
async fn remove_g1(app: &TestApp) -> String {
    app.guardians()
        .delete_guardian(DeleteGuardianRequest {
            student_id: "s1".into(),
            guardian_id: "g1".into(),
            ..Default::default()
        })
        .await
        .expect("delete")
        .into_inner()
        .consistency_token
}

fn revision(token: &str) -> i64 {
    Position::from_token(token).expect("a token").revision
}

/// Polls `condition` until it holds; panics with `what` if it never does.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the standby with `sql` until its one value satisfies `until`.
async fn poll_standby<T>(replica: &mut PgConnection, sql: &'static str, until: impl Fn(&T) -> bool)
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value: T = sqlx::query_scalar(sql)
            .fetch_one(&mut *replica)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if until(&value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never answered as wanted: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_is_down_is_skipped_and_the_service_stays_serving() {
    let db = TestDatabase::create_migrated().await;
    let mut config = test_config(&db.url);
    // Nothing listens on port 1: every connection to the replica is refused.
    config.read_database_url = vec!["postgres://postgres@127.0.0.1:1/guardians".into()];
    config.cache_capacity = 0;
    let app = spawn_with(config).await;
    seed_school(&app, 2).await;
    link(&app, "s1", "parent@example.org", "g1", "parent@example.org").await;
    let (linked, token) = g1_of_s1(&app, None).await;
    assert!(linked, "minimize_latency, from the primary");
    assert!(
        g1_of_s1(&app, fresh_as(&token)).await.0,
        "at_least_as_fresh"
    );
    assert!(g1_of_s1(&app, fully()).await.0, "fully_consistent");
    assert_eq!(guardians_of_s1(&app, fresh_as(&token)).await, ["g1"]);
    let removed = remove_g1(&app).await;
    assert!(!g1_of_s1(&app, fresh_as(&removed)).await.0);
    assert!(guardians_of_s1(&app, fresh_as(&removed)).await.is_empty());
    assert!(serving(&app).await, "health is the primary's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_serves_what_it_has_replayed_and_the_primary_the_rest() {
    let (Ok(primary), Ok(standby)) = (
        std::env::var("GUARDIANS_TEST_PRIMARY_URL"),
        std::env::var("GUARDIANS_TEST_STANDBY_URL"),
    ) else {
        assert!(
            std::env::var_os("GUARDIANS_REQUIRE_STANDBY").is_none(),
            "scripts/test.sh started a standby but its URLs did not arrive"
        );
        eprintln!("not run: needs a primary and its standby (scripts/test.sh starts them)");
        return;
    };
    let db = TestDatabase::create_on(&primary).await;
    let replica_url = db.url_on(&standby);
    // The database reaches the standby by replay: wait until it can be opened there.
    eventually("the test database on the standby", || async {
        PgConnection::connect(&replica_url).await.is_ok()
    })
    .await;
    let mut config = test_config(&db.url);
    config.read_database_url = vec![replica_url.clone()];
    // Without the link cache every read goes to a database: the routing is what is tested.
    config.cache_capacity = 0;
    let app = spawn_with(config).await;
    seed_school(&app, 2).await;
    link(&app, "s1", "parent@example.org", "g1", "parent@example.org").await;
    let (linked, linked_token) = g1_of_s1(&app, fully()).await;
    assert!(linked);

    // Let the standby replay the link, then hold its replay: what it serves from now on is
    // the state with g1 linked.
    let mut replica = PgConnection::connect(&replica_url).await.expect("standby");
    let needed = revision(&linked_token) + 1;
    poll_standby(
        &mut replica,
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        |replayed: &i64| *replayed >= needed,
    )
    .await;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut replica)
        .await
        .expect("pause replay");
    poll_standby(
        &mut replica,
        "SELECT pg_get_wal_replay_pause_state()",
        |state: &String| state == "paused",
    )
    .await;
    let removed_token = remove_g1(&app).await;
    assert!(revision(&removed_token) > revision(&linked_token));

    // A read that needs only the link may come from the standby, which still shows it (once
    // its prober has seen how far it replayed): proof that reads go there.
    eventually("a read served by the standby", || async {
        g1_of_s1(&app, fresh_as(&linked_token)).await.0
    })
    .await;
    let (_, served_at) = g1_of_s1(&app, fresh_as(&linked_token)).await;
    assert!(
        revision(&served_at) < revision(&removed_token),
        "the standby's answer does not claim to include the removal"
    );
    eventually("ListGuardians served by the standby", || async {
        guardians_of_s1(&app, fresh_as(&linked_token)).await == ["g1"]
    })
    .await;

    // Reads that need the removal never come from the standby, which has not replayed it.
    for _ in 0..20 {
        assert!(!g1_of_s1(&app, fresh_as(&removed_token)).await.0);
        assert!(!g1_of_s1(&app, fully()).await.0);
        assert!(
            guardians_of_s1(&app, fresh_as(&removed_token))
                .await
                .is_empty()
        );
    }
    // Once this replica's follower has seen the removal, minimize_latency needs it too.
    eventually("minimize_latency reports the removal", || async {
        !g1_of_s1(&app, None).await.0
    })
    .await;
    for _ in 0..20 {
        assert!(
            !g1_of_s1(&app, None).await.0,
            "a removed link is never reported again while the standby lags"
        );
    }
    assert!(serving(&app).await);

    // Replay resumes: the standby catches up and serves the removal.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut replica)
        .await
        .expect("resume replay");
    eventually("the standby serves the removal", || async {
        let (linked, at) = g1_of_s1(&app, fresh_as(&removed_token)).await;
        !linked && revision(&at) >= revision(&removed_token)
    })
    .await;
    drop(app);
}
