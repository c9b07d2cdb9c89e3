//! Syncs: the connection test, previews, starting a sync, runs, and the decision about a run
//! the deletion threshold held.

use safegpt_store::{RunChange, RunRecord, RunStatus};
use safegpt_sync::{Approval, SyncOutcome, SyncRequest};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::views::{ChangeView, CheckView, ProgressView, RunDetailView, RunView, TestResultView};
use crate::{App, AppError, AppResult, Principal, TokenScope, Trigger};

/// A sync run to its end in the caller's process (`safegpt sync`).
#[derive(Debug, Clone, Copy)]
pub struct SyncNow {
    pub trigger: Trigger,
    /// Plan and record, change nothing.
    pub dry_run: bool,
    /// Confirm this held run (see [`App::pending_approval`]): apply what it listed even
    /// above the deletion threshold.
    pub confirm: Option<Uuid>,
    /// Read every user and group instead of the changes since the last run.
    pub full_read: bool,
    /// The time the rules see (default: the clock), e.g. to replay a removal deadline.
    pub at: Option<OffsetDateTime>,
}

impl App {
    /// Token, read users, read each group: changes nothing in the directory; the result is
    /// audited.
    pub async fn test_connection(&self, by: &Principal) -> AppResult<TestResultView> {
        by.require(TokenScope::Sync)?;
        let checks = safegpt_sync::test_connection(&self.store, self.retry.clone()).await?;
        let ok = checks.iter().all(|c| c.ok);
        let details = json!({"ok": ok, "checks": checks});
        self.store.audit(&by.actor(), "azure.tested", Some("azure_user_sync"), &details, self.now()).await?;
        Ok(TestResultView { ok, checks: checks.iter().map(CheckView::from).collect() })
    }

    /// A dry run to its end: the plan, user by user. It counts as a run (one at a time).
    pub async fn preview(&self, by: &Principal, trigger: Trigger) -> AppResult<RunDetailView> {
        by.require(TokenScope::Sync)?;
        let request = SyncRequest { dry_run: true, ..SyncRequest::new(trigger.as_str(), self.now()) };
        let outcome = self.runner.run_to_end(request).await?;
        self.run_detail(outcome.run_id).await
    }

    /// Starts a sync in the background and returns its id; `full_read` reads every user and
    /// group instead of the changes since the last run.
    pub async fn start_sync(&self, by: &Principal, trigger: Trigger, full_read: bool) -> AppResult<Uuid> {
        by.require(TokenScope::Sync)?;
        let request = SyncRequest { full_read, ..SyncRequest::new(trigger.as_str(), self.now()) };
        Ok(self.runner.start(request).await?)
    }

    /// Runs a sync to its end and returns what it did (or, held or dry, would do).
    pub async fn sync_now(&self, by: &Principal, sync: SyncNow) -> AppResult<SyncOutcome> {
        by.require(TokenScope::Sync)?;
        if sync.dry_run && sync.confirm.is_some() {
            // A dry run applies nothing, so it would spend the decision on nothing.
            return Err(AppError::invalid(
                "confirm",
                "a dry run cannot confirm a held run; drop --dry-run to apply what the held run listed",
            ));
        }
        let approval = match sync.confirm {
            Some(held) => Some(self.claim_held(by, held).await?),
            None => None,
        };
        let request = SyncRequest {
            dry_run: sync.dry_run,
            approval,
            full_read: sync.full_read,
            ..SyncRequest::new(sync.trigger.as_str(), sync.at.unwrap_or_else(|| self.now()))
        };
        let started = match self.runner.begin_run(request).await {
            Ok(started) => started,
            Err(e) => {
                // Only a follow-up that never started gives the decision back.
                let e = AppError::from(e);
                if let Some(held) = sync.confirm {
                    self.store.reopen_held(held, &e.to_string(), self.now()).await?;
                }
                return Err(e);
            }
        };
        let noted = match sync.confirm {
            Some(held) => self.store.record_follow_up(held, started.run_id()).await,
            None => Ok(()),
        };
        // The run ends either way, so that it never stays `running`.
        let outcome = started.finish().await?;
        noted?;
        Ok(outcome)
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

    /// Confirms a held run: one conditional update decides it (a cancel at the same instant
    /// loses, or wins and this fails), then a fresh sync starts that may apply the disables
    /// and removals the held run listed, and anything under the threshold; if it would
    /// disable others above the threshold, it is held again. Returns the id of that run.
    pub async fn confirm_held(&self, by: &Principal, run_id: Uuid, trigger: Trigger) -> AppResult<Uuid> {
        by.require(TokenScope::Sync)?;
        let approval = self.claim_held(by, run_id).await?;
        let request = SyncRequest { approval: Some(approval), ..SyncRequest::new(trigger.as_str(), self.now()) };
        match self.runner.start(request).await {
            Ok(follow_up) => {
                self.store.record_follow_up(run_id, follow_up).await?;
                Ok(follow_up)
            }
            Err(e) => {
                let e = AppError::from(e);
                self.store.reopen_held(run_id, &e.to_string(), self.now()).await?;
                Err(e)
            }
        }
    }

    /// Decides `run_id` as confirmed (only one decision wins) and returns what it approves.
    async fn claim_held(&self, by: &Principal, run_id: Uuid) -> AppResult<Approval> {
        self.store.decide_held(run_id, RunStatus::Confirmed, &by.actor(), self.now()).await?;
        let targets = self.store.held_run_targets(run_id).await?;
        let users = targets.iter().filter_map(|c| Uuid::parse_str(&c.user_id).ok()).collect();
        Ok(Approval { held_run: run_id, users })
    }

    /// What confirming the newest held run would approve (`safegpt sync
    /// --confirm-mass-changes` shows it before it acts).
    pub async fn pending_approval(&self) -> AppResult<(RunRecord, Vec<RunChange>)> {
        let Some(held) = self.store.latest_held_run().await? else {
            return Err(AppError::Conflict {
                field: None,
                message: "no held run is waiting for a decision; run `safegpt sync` first and review what it \
                          would disable"
                    .into(),
            });
        };
        let targets = self.store.held_run_targets(held.id).await?;
        Ok((held, targets))
    }

    /// Cancels a held run; nothing is applied.
    pub async fn cancel_held(&self, by: &Principal, run_id: Uuid) -> AppResult<RunView> {
        by.require(TokenScope::Sync)?;
        self.store.decide_held(run_id, RunStatus::Cancelled, &by.actor(), self.now()).await?;
        Ok(self.run_detail(run_id).await?.run)
    }
}
