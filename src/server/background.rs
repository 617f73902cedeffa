//! What runs beside the RPCs: readiness (health follows the database), upkeep, the feed
//! follower, the gauges and the mail dispatcher; started together and stopped together.

use super::SERVICES;
use crate::app::App;
use crate::config::ServeConfig;
use crate::domain::Clock;
use crate::mail::Dispatcher;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// How long the mail dispatcher may take to finish the message in hand when stopping.
const DISPATCHER_STOP: Duration = Duration::from_secs(5);

/// How often the summary scheduler looks for guardians whose send time has come: a summary
/// goes out within this long after its send hour.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// How often readiness re-checks the database.
const READINESS_INTERVAL: Duration = Duration::from_secs(1);

/// The background tasks of one server.
pub(super) struct Background {
    readiness: JoinHandle<()>,
    upkeep: JoinHandle<()>,
    summaries: Option<JoinHandle<()>>,
    feed: JoinHandle<()>,
    gauges: JoinHandle<()>,
    dispatcher: Option<JoinHandle<()>>,
    access_log: JoinHandle<()>,
    /// Stops the access log's writer: only once the RPCs are done, so that no read is left
    /// with a record in the buffer and nobody to write it.
    access_log_stop: watch::Sender<bool>,
}

impl Background {
    /// Starts every task; each stops when `stop` turns true.
    pub(super) fn start(
        config: &ServeConfig,
        app: &App,
        health: &HealthReporter,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, super::ServeError> {
        let store = app.store().clone();
        let transport = config.mail_transport().map_err(super::ServeError::Mail)?;
        let (ready_tx, ready_rx) = watch::channel(false);
        let readiness = tokio::spawn(follow_readiness(
            store.clone(),
            health.clone(),
            config.auto_migrate,
            ready_tx,
            stop.clone(),
        ));
        // The loops below read and write tables: they wait for the first readiness (the schema
        // migrated), so that a fresh database's first start logs no "no such table".
        let upkeep = tokio::spawn(once_ready(
            ready_rx.clone(),
            stop.clone(),
            run_upkeep(app.clone(), config.upkeep_interval, stop.clone()),
        ));
        let summaries = config.summary_scheduler.then(|| {
            tokio::spawn(once_ready(
                ready_rx.clone(),
                stop.clone(),
                run_summaries(app.clone(), clock.clone(), SUMMARY_INTERVAL, stop.clone()),
            ))
        });
        let feed = tokio::spawn(once_ready(
            ready_rx.clone(),
            stop.clone(),
            crate::app::freshness::follow_changes(app.clone(), stop.clone()),
        ));
        let gauges = tokio::spawn(once_ready(
            ready_rx.clone(),
            stop.clone(),
            crate::telemetry::sample_gauges(store.clone(), Duration::from_secs(15), stop.clone()),
        ));
        let dispatcher = config.mail_dispatcher.then(|| {
            let dispatcher = Dispatcher::new(store, transport, clock, config.dispatch_policy());
            tokio::spawn(once_ready(
                ready_rx,
                stop.clone(),
                dispatcher.run(config.mail_poll_interval, stop),
            ))
        });
        let (access_log_stop, stop_writing) = watch::channel(false);
        let writer = app.clone();
        let access_log = tokio::spawn(async move { writer.run_access_log(stop_writing).await });
        Ok(Self {
            readiness,
            upkeep,
            summaries,
            feed,
            gauges,
            dispatcher,
            access_log,
            access_log_stop,
        })
    }

    /// Stops every task. The dispatcher, told to stop with the others, finishes the message it
    /// is sending and gives the rest of its claim back, so other replicas need not wait out the
    /// lease; it gets [`DISPATCHER_STOP`] for that, and the access log as long to write what
    /// it holds.
    pub(super) async fn stop(self) {
        self.readiness.abort();
        self.upkeep.abort();
        if let Some(summaries) = &self.summaries {
            summaries.abort();
        }
        self.feed.abort();
        self.gauges.abort();
        if let Some(mut dispatcher) = self.dispatcher
            && tokio::time::timeout(DISPATCHER_STOP, &mut dispatcher)
                .await
                .is_err()
        {
            dispatcher.abort();
        }
        self.access_log_stop.send_replace(true);
        let mut access_log = self.access_log;
        if tokio::time::timeout(DISPATCHER_STOP, &mut access_log)
            .await
            .is_err()
        {
            tracing::warn!("the access log's last records were not written in time");
            access_log.abort();
        }
    }
}

/// Reports `status` for the whole server and each service.
pub(super) async fn set_health(health: &HealthReporter, status: ServingStatus) {
    for service in SERVICES {
        health.set_service_status(service, status).await;
    }
}

/// Runs `work` once `ready` first turns true; not at all if `stop` turns true before.
async fn once_ready(
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    work: impl std::future::Future<Output = ()>,
) {
    let became_ready = tokio::select! {
        r = ready.wait_for(|ready| *ready) => r.is_ok(),
        _ = stop.wait_for(|stop| *stop) => false,
    };
    if became_ready {
        work.await;
    }
}

/// Reports SERVING while the database answers and is migrated (migrating first when allowed),
/// NOT_SERVING otherwise, on the health service and to `ready`, until told to stop.
async fn follow_readiness(
    store: Arc<dyn Store>,
    health: HealthReporter,
    auto_migrate: bool,
    ready_tx: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last: Option<bool> = None;
    let mut last_problem: Option<String> = None;
    loop {
        let ready = check_ready(store.as_ref(), auto_migrate, &mut last_problem).await;
        if *stop.borrow() {
            return;
        }
        if last != Some(ready) {
            if ready {
                tracing::info!("database ready: SERVING");
            } else {
                tracing::warn!("database not ready: NOT_SERVING");
            }
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_health(&health, status).await;
            ready_tx.send_replace(ready);
            last = Some(ready);
        }
        tokio::select! {
            _ = tokio::time::sleep(READINESS_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Expires due invitations and purges old request ids every `interval`, until told to stop.
/// Every replica runs it; the store hands each due invitation to one of them.
async fn run_upkeep(app: App, interval: Duration, mut stop: watch::Receiver<bool>) {
    /// Invitations expired per transaction.
    const BATCH: u32 = 500;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        match app.run_upkeep(BATCH).await {
            Ok(done) => {
                metrics::counter!("guardians_upkeep_runs_total").increment(1);
                metrics::counter!("guardians_invitations_expired_total")
                    .increment(done.expired as u64);
                metrics::counter!("guardians_invitation_reminders_total")
                    .increment(done.reminded as u64);
                metrics::counter!("guardians_family_emails_total").increment(done.families as u64);
                metrics::counter!("guardians_privacy_purged_total", "what" => "ended_invitations")
                    .increment(done.anonymised as u64);
                metrics::counter!("guardians_privacy_purged_total", "what" => "audit_events")
                    .increment(done.events_purged);
                metrics::counter!("guardians_privacy_purged_total", "what" => "access_records")
                    .increment(done.access_records_purged);
                metrics::counter!("guardians_privacy_purged_total", "what" => "emails")
                    .increment(done.messages_anonymised as u64);
                let busy = [
                    done.expired,
                    done.reminded,
                    done.families,
                    done.anonymised,
                    done.messages_anonymised,
                ]
                .iter()
                .any(|n| *n > 0)
                    || done.purged > 0
                    || done.events_purged > 0
                    || done.access_records_purged > 0;
                if busy {
                    tracing::info!(
                        expired = done.expired,
                        reminded = done.reminded,
                        families = done.families,
                        anonymised = done.anonymised,
                        events_purged = done.events_purged,
                        access_records_purged = done.access_records_purged,
                        messages_anonymised = done.messages_anonymised,
                        purged = done.purged,
                        "upkeep"
                    );
                }
            }
            Err(err) => tracing::warn!(error = %err, "upkeep failed; will retry"),
        }
    }
}

/// Builds the summaries due every `interval`, until told to stop. Every replica runs it; each
/// summary's delivery record makes it exactly once.
async fn run_summaries(
    app: App,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        match app.run_due_summaries(clock.now()).await {
            Ok(run) => {
                metrics::counter!("guardians_summaries_queued_total").increment(run.queued as u64);
                metrics::counter!("guardians_summaries_skipped_empty_total")
                    .increment(run.skipped_empty as u64);
                if run.queued > 0 || run.skipped_empty > 0 {
                    tracing::info!(
                        queued = run.queued,
                        skipped_empty = run.skipped_empty,
                        "summaries built"
                    );
                }
            }
            Err(err) => tracing::warn!(error = %err, "building summaries failed; will retry"),
        }
    }
}

/// Whether the database answers and is migrated (migrating it first when allowed). A problem
/// is logged when it first appears or changes, not on every check.
async fn check_ready(
    store: &dyn Store,
    auto_migrate: bool,
    last_problem: &mut Option<String>,
) -> bool {
    let problem = match store.is_migrated().await {
        Ok(true) => None,
        Ok(false) if auto_migrate => match store.migrate().await {
            Ok(()) => None,
            Err(err) => Some(format!("migration failed: {err}")),
        },
        Ok(false) => {
            Some("the database is not migrated; run `guardian-service migrate`".to_owned())
        }
        Err(err) => Some(format!("database unreachable: {err}")),
    };
    if problem != *last_problem {
        if let Some(problem) = &problem {
            tracing::error!("{problem}");
        }
        *last_problem = problem.clone();
    }
    problem.is_none()
}

#[cfg(test)]
mod tests {
    use super::once_ready;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::sync::watch;

    fn work(ran: &Arc<AtomicBool>) -> impl std::future::Future<Output = ()> + use<> {
        let ran = ran.clone();
        async move { ran.store(true, Ordering::SeqCst) }
    }

    #[tokio::test]
    async fn background_work_waits_for_readiness_and_never_starts_after_a_stop() {
        let (ready_tx, ready_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let ran = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(once_ready(ready_rx.clone(), stop_rx.clone(), work(&ran)));
        tokio::task::yield_now().await;
        assert!(
            !ran.load(Ordering::SeqCst),
            "started before the schema was ready"
        );
        ready_tx.send_replace(true);
        task.await.unwrap();
        assert!(ran.load(Ordering::SeqCst));

        let (_never_ready, not_ready) = watch::channel(false);
        let stopped = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(once_ready(not_ready, stop_rx, work(&stopped)));
        stop_tx.send_replace(true);
        task.await.unwrap();
        assert!(
            !stopped.load(Ordering::SeqCst),
            "started although told to stop"
        );
    }
}
