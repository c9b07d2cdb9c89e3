//! Syncs: the connection test, previews, starting a sync, runs, and the decision about a run
//! the deletion threshold held.

use safegpt_store::{RunChange, RunRecord, RunStatus};
use safegpt_sync::{SyncOutcome, SyncRequest};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::views::{ChangeView, CheckView, ProgressView, RunDetailView, RunView, TestResultView};
use crate::{App, AppError, AppResult, Principal, Trigger};

/// A sync run to its end in the caller's process (`safegpt sync`).
#[derive(Debug, Clone, Copy)]
pub struct SyncNow {
    pub trigger: Trigger,
    /// Plan and record, change nothing.
    pub dry_run: bool,
    /// Apply even when the deletion threshold would hold the run.
    pub confirm_mass_changes: bool,
    /// Read every user and group instead of the changes since the last run.
    pub full_read: bool,
    /// The time the rules see (default: the clock), e.g. to replay a removal deadline.
    pub at: Option<OffsetDateTime>,
}

impl App {
    /// Token, read users, read each group: changes nothing in the directory; the result is
    /// audited.
    pub async fn test_connection(&self, by: &Principal) -> AppResult<TestResultView> {
        let checks = safegpt_sync::test_connection(&self.store, self.retry.clone()).await?;
        let ok = checks.iter().all(|c| c.ok);
        let details = json!({"ok": ok, "checks": checks});
        self.store.audit(&by.actor(), "azure.tested", Some("azure_user_sync"), &details, self.now()).await?;
        Ok(TestResultView { ok, checks: checks.iter().map(CheckView::from).collect() })
    }

    /// A dry run to its end: the plan, user by user. It counts as a run (one at a time).
    pub async fn preview(&self, trigger: Trigger) -> AppResult<RunDetailView> {
        let request = SyncRequest { dry_run: true, ..SyncRequest::new(trigger.as_str(), self.now()) };
        let outcome = self.runner.run_to_end(request).await?;
        self.run_detail(outcome.run_id).await
    }

    /// Starts a sync in the background and returns its id; `full_read` reads every user and
    /// group instead of the changes since the last run.
    pub async fn start_sync(&self, trigger: Trigger, full_read: bool) -> AppResult<Uuid> {
        let request = SyncRequest { full_read, ..SyncRequest::new(trigger.as_str(), self.now()) };
        Ok(self.runner.start(request).await?)
    }

    /// Runs a sync to its end and returns what it did (or, held or dry, would do).
    pub async fn sync_now(&self, sync: SyncNow) -> AppResult<SyncOutcome> {
        let request = SyncRequest {
            dry_run: sync.dry_run,
            confirm_mass_changes: sync.confirm_mass_changes,
            full_read: sync.full_read,
            ..SyncRequest::new(sync.trigger.as_str(), sync.at.unwrap_or_else(|| self.now()))
        };
        Ok(self.runner.run_to_end(request).await?)
    }

    /// Runs, newest first.
    pub async fn runs(&self, limit: u32) -> AppResult<Vec<RunRecord>> {
        Ok(self.store.runs(limit).await?)
    }

    /// A run and every change it made (or would make), by the id a caller typed.
    pub async fn run(&self, id: &str) -> AppResult<(RunRecord, Vec<RunChange>)> {
        Ok(self.store.run(id).await?)
    }

    /// A run with its changes and, while this process runs it, its live progress.
    pub async fn run_detail(&self, run_id: Uuid) -> AppResult<RunDetailView> {
        let (run, changes) = self.store.run(&run_id.to_string()).await?;
        Ok(RunDetailView {
            run: RunView::from(&run),
            changes: changes.iter().map(ChangeView::from).collect(),
            progress: self.runner.progress(run_id).as_ref().map(ProgressView::from),
        })
    }

    async fn held_run(&self, run_id: Uuid) -> AppResult<()> {
        let (run, _) = self.store.run(&run_id.to_string()).await?;
        if run.status != RunStatus::Held {
            return Err(AppError::Conflict {
                field: None,
                message: format!(
                    "run {run_id} is {}; only a held run can be confirmed or cancelled",
                    run.status.as_str()
                ),
            });
        }
        Ok(())
    }

    /// Confirms a held run: a fresh sync (the directory may have changed since) that applies
    /// even above the deletion threshold. Returns the id of that run.
    pub async fn confirm_held(&self, by: &Principal, run_id: Uuid, trigger: Trigger) -> AppResult<Uuid> {
        self.held_run(run_id).await?;
        let request = SyncRequest { confirm_mass_changes: true, ..SyncRequest::new(trigger.as_str(), self.now()) };
        let follow_up = self.runner.start(request).await?;
        self.store.resolve_held(run_id, RunStatus::Confirmed, &by.actor(), Some(follow_up), self.now()).await?;
        Ok(follow_up)
    }

    /// Cancels a held run; nothing is applied.
    pub async fn cancel_held(&self, by: &Principal, run_id: Uuid) -> AppResult<RunView> {
        self.held_run(run_id).await?;
        self.store.resolve_held(run_id, RunStatus::Cancelled, &by.actor(), None, self.now()).await?;
        Ok(self.run_detail(run_id).await?.run)
    }
}
