//! The worker pool.
//!
//! Each worker loops: claim the oldest runnable job, run it, repeat; it sleeps until woken
//! (a new job) or the poll interval passes (a lease may have expired). While a job runs, a
//! heartbeat extends its lease and watches for cancellation or loss of the lease.
//!
//! Stopping has two steps. `shutdown` stops claiming and lets each requirement stop at its
//! next phase boundary; `shutdown_grace` later, running phases are interrupted. Either way the
//! job is released, and whoever claims it next resumes at the phase that did not finish.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use toolsmith_domain::ids::new_request_id;
use toolsmith_domain::time::now_ms;
use toolsmith_domain::{ErrorCode, Phase};
use toolsmith_store::{
    JobRecord, Lease, LeaseState, LogLevel, NewGenerationLog, PhaseFinished, RequirementRecord,
    Store, StoreError,
};

use crate::workflow::{PhaseContext, PhaseOutcome, RequirementError, Workflow};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Jobs run at once by this process.
    pub workers: usize,
    /// Requirements of one job run at once.
    pub requirement_concurrency: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    pub heartbeat: Duration,
    /// How often an idle worker looks for work nobody announced (expired leases).
    pub poll_interval: Duration,
    /// How long running phases may go on after shutdown before they are interrupted.
    pub shutdown_grace: Duration,
    /// Claims of one job before its unfinished requirements are failed: a job that kills or
    /// panics its worker every time must not be retried forever.
    pub max_attempts: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 4,
            requirement_concurrency: 4,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll_interval: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(10),
            max_attempts: 5,
        }
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    workflow: Arc<dyn Workflow>,
    config: EngineConfig,
    wakeup: Arc<Notify>,
    instance: String,
    /// The jobs this process is running, so a cancel received here stops them at once
    /// (cancels received by another instance arrive through the heartbeat).
    running: Mutex<HashMap<String, JobAbort>>,
}

/// How a requirement's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequirementEnd {
    Finished,
    /// Stopped before finishing (cancel, lost lease, shutdown): nothing more was written.
    Stopped,
}

/// Why a job's run was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    Cancelled,
    LeaseLost,
}

/// Stops one job's run, remembering the first reason given.
#[derive(Clone)]
struct JobAbort {
    token: CancellationToken,
    reason: Arc<Mutex<Option<Abort>>>,
}

impl JobAbort {
    fn fire(&self, why: Abort) {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(why);
        self.token.cancel();
    }

    fn reason(&self) -> Option<Abort> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Stops {
    /// Stop claiming; requirements stop at their next phase boundary.
    shutdown: CancellationToken,
    /// Interrupt running phases now.
    hard_stop: CancellationToken,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, workflow: Arc<dyn Workflow>, config: EngineConfig) -> Self {
        // Unique per process and per engine: the pid alone repeats across restarts.
        let instance = format!("{}-{}", std::process::id(), &new_request_id()[..6]);
        Engine {
            store,
            workflow,
            config,
            wakeup: Arc::new(Notify::new()),
            instance,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Stops this process's run of `job_id` now, if it has one (the store already says
    /// the job is cancelled; this only saves waiting for the next heartbeat).
    pub fn cancel_local(&self, job_id: &str) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(abort) = running.get(job_id) {
            abort.fire(Abort::Cancelled);
        }
    }

    /// Notify this to make idle workers look for work now (after a job was created).
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }

    /// Runs the workers until `shutdown` fires and every worker has stopped.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let stops = Arc::new(Stops {
            shutdown: shutdown.clone(),
            hard_stop: CancellationToken::new(),
        });
        let grace = {
            let stops = stops.clone();
            let grace = self.config.shutdown_grace;
            tokio::spawn(async move {
                stops.shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
                stops.hard_stop.cancel();
            })
        };
        let mut workers = JoinSet::new();
        for n in 0..self.config.workers {
            let engine = self.clone();
            let stops = stops.clone();
            let worker = format!("{}-{n}", self.instance);
            workers.spawn(async move { engine.worker_loop(worker, &stops).await });
        }
        while let Some(result) = workers.join_next().await {
            if let Err(err) = result {
                tracing::error!(error = %err, "a worker task panicked");
            }
        }
        grace.abort();
        tracing::info!("all workers stopped");
    }

    async fn worker_loop(&self, worker: String, stops: &Stops) {
        tracing::debug!(%worker, "worker started");
        while !stops.shutdown.is_cancelled() {
            // Register interest before looking, so a job created meanwhile is not missed.
            let woken = self.wakeup.notified();
            match self.run_next(&worker, stops).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(err) => tracing::warn!(%worker, error = %err, "could not claim a job"),
            }
            tokio::select! {
                _ = stops.shutdown.cancelled() => break,
                _ = woken => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        tracing::debug!(%worker, "worker stopped");
    }

    /// Claims one job and runs it to its end (or until stopped). `Ok(None)`: nothing to run.
    /// Tests use this to drive the queue one job at a time.
    pub async fn run_one(&self, worker: &str) -> Result<Option<String>, StoreError> {
        let stops = Stops {
            shutdown: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
        };
        self.run_next(worker, &stops).await
    }

    async fn run_next(&self, worker: &str, stops: &Stops) -> Result<Option<String>, StoreError> {
        let lease_ms = duration_ms(self.config.lease);
        let Some(job) = self
            .store
            .claim_next_job(worker, now_ms(), lease_ms)
            .await?
        else {
            return Ok(None);
        };
        let job_id = job.id.clone();
        tracing::info!(%worker, job_id = %job.id, attempt = job.attempts, "claimed job");
        self.run_job(job, worker, stops).await;
        Ok(Some(job_id))
    }

    async fn run_job(&self, job: JobRecord, worker: &str, stops: &Stops) {
        let lease = Lease {
            job_id: job.id.clone(),
            worker: worker.to_owned(),
        };
        let job_abort = JobAbort {
            token: stops.hard_stop.child_token(),
            reason: Arc::new(Mutex::new(None)),
        };
        let abort = job_abort.token.clone();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id.clone(), job_abort.clone());
        let heartbeat = AbortOnDrop(tokio::spawn(heartbeat_loop(
            self.store.clone(),
            lease.clone(),
            self.config.clone(),
            job_abort.clone(),
        )));

        let logger = JobLogger {
            store: self.store.clone(),
            job_id: job.id.clone(),
            session_id: job.session_id.clone(),
        };
        let message = if job.attempts > 1 {
            format!("job resumed by worker {worker} (attempt {})", job.attempts)
        } else {
            format!("job started by worker {worker}")
        };
        logger
            .log(None, "job", "claimed", LogLevel::Info, message)
            .await;

        if job.attempts > self.config.max_attempts {
            self.give_up(&job, &lease, &logger).await;
            return;
        }

        let permits = Arc::new(Semaphore::new(self.config.requirement_concurrency.max(1)));
        let mut running = JoinSet::new();
        for record in job.requirements.iter().filter(|r| !r.status.is_finished()) {
            let run = RequirementRun {
                store: self.store.clone(),
                workflow: self.workflow.clone(),
                lease: lease.clone(),
                job: JobFacts {
                    id: job.id.clone(),
                    session_id: job.session_id.clone(),
                    user_id: job.user_id.clone(),
                    deadline_at: job.deadline_at,
                },
                record: record.clone(),
                abort: abort.clone(),
                shutdown: stops.shutdown.clone(),
                logger: logger.clone(),
            };
            let permits = permits.clone();
            running.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return RequirementEnd::Stopped;
                };
                run.run().await
            });
        }
        let mut all_finished = true;
        while let Some(result) = running.join_next().await {
            match result {
                Ok(RequirementEnd::Finished) => {}
                Ok(RequirementEnd::Stopped) => all_finished = false,
                Err(err) => {
                    tracing::error!(job_id = %job.id, error = %err, "a requirement task panicked");
                    all_finished = false;
                }
            }
        }
        drop(heartbeat);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job.id);

        match job_abort.reason() {
            Some(Abort::Cancelled) => {
                tracing::info!(job_id = %job.id, "job cancelled");
                logger
                    .log(
                        None,
                        "job",
                        "cancelled",
                        LogLevel::Warn,
                        "job cancelled".into(),
                    )
                    .await;
            }
            Some(Abort::LeaseLost) => {
                tracing::warn!(job_id = %job.id, %worker, "lost the job's lease; another worker resumes it");
            }
            None if !all_finished && stops.shutdown.is_cancelled() => {
                tracing::info!(job_id = %job.id, "stopping: handing the job back to the queue");
                if let Err(err) = self.store.release_job(&lease, now_ms()).await {
                    tracing::warn!(job_id = %job.id, error = %err, "could not release the job; its lease will expire");
                }
            }
            None if !all_finished => {
                // A store failure or a panic. Keeping the lease until it expires is the
                // back-off, and the next claim counts as another attempt.
                tracing::warn!(job_id = %job.id, "the run ended without finishing the job; it is retried once its lease expires");
            }
            None => match self.store.finish_job(&lease, now_ms()).await {
                Ok(status) => {
                    tracing::info!(job_id = %job.id, %status, "job finished");
                    logger
                        .log(
                            None,
                            "job",
                            "finished",
                            LogLevel::Info,
                            format!("job {status}"),
                        )
                        .await;
                }
                Err(err) => {
                    tracing::warn!(job_id = %job.id, error = %err, "could not finish the job")
                }
            },
        }
    }
}

/// Aborts the task when dropped: a job's heartbeat must end with the job's run, even when
/// that run is itself aborted (a dropped `JoinHandle` alone would leave it renewing the lease).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Engine {
    /// Fails every unfinished requirement of a job claimed too often, and ends the job.
    async fn give_up(&self, job: &JobRecord, lease: &Lease, logger: &JobLogger) {
        let message = format!(
            "gave up after {} attempts: every run of this job ended without finishing it (worker crash or panic)",
            job.attempts - 1
        );
        tracing::error!(job_id = %job.id, attempts = job.attempts, "giving up on job");
        for record in job.requirements.iter().filter(|r| !r.status.is_finished()) {
            if let Err(err) = self
                .store
                .fail_requirement(
                    lease,
                    record.index,
                    ErrorCode::InternalError,
                    &message,
                    now_ms(),
                )
                .await
            {
                tracing::warn!(job_id = %job.id, error = %err, "could not fail a requirement");
                return;
            }
        }
        logger
            .log(None, "job", "abandoned", LogLevel::Error, message)
            .await;
        if let Err(err) = self.store.finish_job(lease, now_ms()).await {
            tracing::warn!(job_id = %job.id, error = %err, "could not finish the job");
        }
    }
}

async fn heartbeat_loop(
    store: Arc<dyn Store>,
    lease: Lease,
    config: EngineConfig,
    abort: JobAbort,
) {
    let lease_ms = duration_ms(config.lease);
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(config.heartbeat).await;
        let state = match store.heartbeat(&lease, now_ms(), lease_ms).await {
            Ok(state) => state,
            // Past the lease without a renewal, another worker may have the job: stop.
            Err(err) if last_renewed.elapsed() >= config.lease => {
                tracing::error!(job_id = %lease.job_id, error = %err, "could not renew the lease in time; stopping");
                LeaseState::Lost
            }
            Err(err) => {
                tracing::warn!(job_id = %lease.job_id, error = %err, "heartbeat failed; retrying");
                continue;
            }
        };
        let why = match state {
            LeaseState::Held => {
                last_renewed = Instant::now();
                continue;
            }
            LeaseState::Cancelled => Abort::Cancelled,
            LeaseState::Lost => Abort::LeaseLost,
        };
        abort.fire(why);
        return;
    }
}

#[derive(Clone)]
struct JobFacts {
    id: String,
    session_id: String,
    user_id: String,
    deadline_at: i64,
}

#[derive(Clone)]
struct JobLogger {
    store: Arc<dyn Store>,
    job_id: String,
    session_id: String,
}

impl JobLogger {
    async fn log(
        &self,
        index: Option<u32>,
        phase: &str,
        step: &str,
        level: LogLevel,
        message: String,
    ) {
        let entry = NewGenerationLog {
            session_id: self.session_id.clone(),
            job_id: self.job_id.clone(),
            requirement_index: index,
            phase: phase.to_owned(),
            step: Some(step.to_owned()),
            level,
            message,
            created_at: now_ms(),
            ..NewGenerationLog::default()
        };
        if let Err(err) = self.store.append_log(entry).await {
            tracing::warn!(job_id = %self.job_id, error = %err, "could not write a generation log");
        }
    }
}

struct RequirementRun {
    store: Arc<dyn Store>,
    workflow: Arc<dyn Workflow>,
    lease: Lease,
    job: JobFacts,
    record: RequirementRecord,
    abort: CancellationToken,
    shutdown: CancellationToken,
    logger: JobLogger,
}

impl RequirementRun {
    async fn run(self) -> RequirementEnd {
        match self.run_phases().await {
            Ok(end) => end,
            Err(StoreError::LeaseLost { .. }) => RequirementEnd::Stopped,
            Err(err) => {
                tracing::error!(job_id = %self.job.id, index = self.record.index, error = %err,
                    "store failure while running a requirement; the job will be retried");
                RequirementEnd::Stopped
            }
        }
    }

    async fn run_phases(&self) -> Result<RequirementEnd, StoreError> {
        let index = self.record.index;
        let deadline = deadline_instant(self.job.deadline_at);
        let mut ctx = PhaseContext {
            job_id: self.job.id.clone(),
            session_id: self.job.session_id.clone(),
            user_id: self.job.user_id.clone(),
            index,
            requirement: self.record.requirement.clone(),
            checkpoint: self.record.checkpoint.clone(),
            tool_name: self.record.tool_name.clone(),
            outcome: None,
            cancel: self.abort.clone(),
            store: self.store.clone(),
        };
        let mut phase = self.record.next_phase;
        if self.record.current_phase.is_some() {
            self.logger
                .log(
                    Some(index),
                    phase.as_str(),
                    "resumed",
                    LogLevel::Info,
                    format!("resuming at {phase} after an interrupted run"),
                )
                .await;
        }
        loop {
            if self.abort.is_cancelled() || self.shutdown.is_cancelled() {
                return Ok(RequirementEnd::Stopped);
            }
            if tokio::time::Instant::now() >= deadline {
                return self.fail(phase, timeout_error(phase)).await;
            }
            self.store
                .phase_started(&self.lease, index, phase, now_ms())
                .await?;
            self.logger
                .log(
                    Some(index),
                    phase.as_str(),
                    "started",
                    LogLevel::Info,
                    format!("{phase} started"),
                )
                .await;
            let started = std::time::Instant::now();
            let result = tokio::select! {
                biased;
                _ = self.abort.cancelled() => return Ok(RequirementEnd::Stopped),
                _ = tokio::time::sleep_until(deadline) => Err(timeout_error(phase)),
                result = self.workflow.run_phase(phase, &mut ctx) => result,
            };
            let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(err) => return self.fail(phase, err).await,
            };
            if phase == Phase::Registration {
                let Some(tool) = ctx.outcome.take() else {
                    let err = RequirementError::new(
                        ErrorCode::InternalError,
                        "the workflow finished without producing a tool",
                    );
                    return self.fail(phase, err).await;
                };
                let tool_id = self
                    .store
                    .complete_requirement(&self.lease, index, tool, now_ms())
                    .await?;
                self.log_finished(phase, elapsed, format!("registered tool {tool_id}"))
                    .await;
                return Ok(RequirementEnd::Finished);
            }
            let next = match outcome {
                PhaseOutcome::Next => phase.next().unwrap_or(Phase::Registration),
                PhaseOutcome::SkipTo(target) if target.index() > phase.index() => target,
                PhaseOutcome::SkipTo(target) => {
                    let err = RequirementError::new(
                        ErrorCode::InternalError,
                        format!("the workflow asked to go back from {phase} to {target}"),
                    );
                    return self.fail(phase, err).await;
                }
            };
            self.store
                .phase_finished(
                    &self.lease,
                    PhaseFinished {
                        index,
                        phase,
                        next_phase: Some(next),
                        checkpoint: ctx.checkpoint.clone(),
                        tool_name: ctx.tool_name.clone(),
                    },
                    now_ms(),
                )
                .await?;
            self.log_finished(phase, elapsed, format!("{phase} finished"))
                .await;
            phase = next;
        }
    }

    async fn log_finished(&self, phase: Phase, elapsed_ms: i64, message: String) {
        let entry = NewGenerationLog {
            session_id: self.job.session_id.clone(),
            job_id: self.job.id.clone(),
            requirement_index: Some(self.record.index),
            phase: phase.as_str().to_owned(),
            step: Some("finished".to_owned()),
            message,
            execution_time_ms: Some(elapsed_ms),
            created_at: now_ms(),
            ..NewGenerationLog::default()
        };
        if let Err(err) = self.store.append_log(entry).await {
            tracing::warn!(job_id = %self.job.id, error = %err, "could not write a generation log");
        }
    }

    async fn fail(
        &self,
        phase: Phase,
        err: RequirementError,
    ) -> Result<RequirementEnd, StoreError> {
        let index = self.record.index;
        tracing::info!(job_id = %self.job.id, index, %phase, code = %err.code, message = %err.message, "requirement failed");
        self.store
            .fail_requirement(&self.lease, index, err.code, &err.message, now_ms())
            .await?;
        self.logger
            .log(
                Some(index),
                phase.as_str(),
                "failed",
                LogLevel::Error,
                err.to_string(),
            )
            .await;
        Ok(RequirementEnd::Finished)
    }
}

fn timeout_error(phase: Phase) -> RequirementError {
    RequirementError::new(
        ErrorCode::GenerationTimeout,
        format!("the job's deadline passed during {phase}"),
    )
}

fn deadline_instant(deadline_at_ms: i64) -> tokio::time::Instant {
    let remaining = u64::try_from(deadline_at_ms - now_ms()).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_millis(remaining)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
