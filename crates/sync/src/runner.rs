//! Runs in the background of a server, one at a time.
//!
//! The rocket button, the API and (later) the scheduler share one `Runner`: a second start
//! while a run is in progress is refused with the id of the run in progress, and its live
//! progress can be read by anyone. Across processes, the database lease of the scheduler
//! adds the same guarantee; within one process this is the guard.

use std::sync::{Arc, Mutex};

use safegpt_graph::RetryPolicy;
use safegpt_store::Store;
use tokio::sync::watch;
use tracing::error;
use uuid::Uuid;

use crate::{
    LeaseSettings, Phase, PreparedRun, Progress, ProgressSender, SliceSize, SyncError, SyncOutcome, SyncRequest,
    prepare_run,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a sync is already running (run {0}); wait for it to finish")]
    AlreadyRunning(Uuid),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

struct Current {
    run_id: Uuid,
    progress: watch::Receiver<Progress>,
}

pub struct Runner {
    store: Arc<Store>,
    retry: RetryPolicy,
    lease: LeaseSettings,
    slice: SliceSize,
    /// The run in progress. A std mutex: it is never held across an await.
    current: Mutex<Option<Current>>,
    /// Serialises starts, so that two presses cannot both pass the check.
    starting: tokio::sync::Mutex<()>,
}

/// A run that is recorded and holds the runner's slot until [`StartedRun::finish`].
pub struct StartedRun {
    runner: Arc<Runner>,
    prepared: PreparedRun,
    tx: ProgressSender,
}

impl StartedRun {
    pub fn run_id(&self) -> Uuid {
        self.prepared.run_id
    }

    /// Runs it to the end.
    pub async fn finish(self) -> Result<SyncOutcome, StartError> {
        let result = self.prepared.execute(&self.runner.store, &self.tx).await;
        self.tx.send_modify(|p| p.phase = Phase::Finished);
        Ok(result?)
    }
}

impl Runner {
    pub fn new(store: Arc<Store>, retry: RetryPolicy, lease: LeaseSettings, slice: SliceSize) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            retry,
            lease,
            slice,
            current: Mutex::new(None),
            starting: tokio::sync::Mutex::new(()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn running(&self) -> Option<Uuid> {
        let current = self.current.lock().expect("runner lock");
        current.as_ref().filter(|c| c.progress.borrow().phase != Phase::Finished).map(|c| c.run_id)
    }

    /// The id of the run in progress, if any.
    pub fn current_run(&self) -> Option<Uuid> {
        self.running()
    }

    /// Live progress of `run_id` while this process runs it.
    pub fn progress(&self, run_id: Uuid) -> Option<Progress> {
        let current = self.current.lock().expect("runner lock");
        current.as_ref().filter(|c| c.run_id == run_id).map(|c| c.progress.borrow().clone())
    }

    /// Starts a run in the background and returns its id once it is recorded.
    pub async fn start(self: &Arc<Self>, request: SyncRequest) -> Result<Uuid, StartError> {
        let (prepared, tx) = self.begin(&request).await?;
        let run_id = prepared.run_id;
        let runner = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = prepared.execute(&runner.store, &tx).await {
                // `execute` recorded the run as failed with this cause.
                error!(%run_id, "sync ended with an error: {e}");
            }
            tx.send_modify(|p| p.phase = Phase::Finished);
        });
        Ok(run_id)
    }

    /// Runs to the end and returns the outcome (previews); still one run at a time.
    pub async fn run_to_end(self: &Arc<Self>, request: SyncRequest) -> Result<SyncOutcome, StartError> {
        self.begin_run(request).await?.finish().await
    }

    /// Records the run (or fails without one), for a caller that must act between the
    /// start and the end, such as noting which run a confirmation started.
    pub async fn begin_run(self: &Arc<Self>, request: SyncRequest) -> Result<StartedRun, StartError> {
        let (prepared, tx) = self.begin(&request).await?;
        Ok(StartedRun { runner: Arc::clone(self), prepared, tx })
    }

    async fn begin(&self, request: &SyncRequest) -> Result<(PreparedRun, ProgressSender), StartError> {
        let _guard = self.starting.lock().await;
        if let Some(run_id) = self.running() {
            return Err(StartError::AlreadyRunning(run_id));
        }
        let request = SyncRequest { lease: self.lease, slice: self.slice, ..request.clone() };
        let prepared = prepare_run(&self.store, &request, self.retry.clone()).await?;
        let run_id = prepared.run_id;
        let (tx, rx) = watch::channel(Progress { run_id: Some(run_id), ..Progress::default() });
        *self.current.lock().expect("runner lock") = Some(Current { run_id, progress: rx });
        Ok((prepared, tx))
    }
}
