//! Syncs: the connection test, previews, starting a sync, runs, and the decision about a run
//! the deletion threshold held.

use safegpt_core::{Action, ChangeReason};
use safegpt_store::{ChangeFilter, RunChange, RunRecord, RunStatus};
use safegpt_sync::{Approval, SyncOutcome, SyncRequest};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::views::{ChangePageView, ChangeView, CheckView, ProgressView, RunDetailView, RunView, TestResultView};
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

    /// A run, by the id a caller typed; its changes come a page at a time
    /// ([`App::run_changes`]).
    pub async fn run(&self, id: &str) -> AppResult<RunRecord> {
        Ok(self.store.run(id).await?)
    }

    /// A page of a run's changes, in the order the run made them, filtered.
    pub async fn run_changes(&self, run_id: Uuid, query: &ChangeQuery) -> AppResult<ChangePageView> {
        let (filter, after, limit) = query.parse()?;
        // An unknown run is a 404, a removed list a 410, not an empty list.
        let run = self.store.run(&run_id.to_string()).await?;
        if let Some(at) = run.changes_removed_at {
            let at = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            return Err(AppError::Gone(format!(
                "the list of changes of run {run_id} was removed on {at} by the retention period; its counts by \
                 action and reason remain (the run's breakdown)"
            )));
        }
        self.changes_page(&run, &filter, after, limit).await
    }

    /// A run with the first page of its changes and, while this process runs it, its live
    /// progress.
    pub async fn run_detail(&self, run_id: Uuid) -> AppResult<RunDetailView> {
        self.run_detail_filtered(run_id, &ChangeQuery::default()).await
    }

    /// A run with one page of its changes as `query` selects them (none once the retention
    /// period removed its list) and its live progress: the run page.
    pub async fn run_detail_filtered(&self, run_id: Uuid, query: &ChangeQuery) -> AppResult<RunDetailView> {
        let (filter, after, limit) = query.parse()?;
        let run = self.store.run(&run_id.to_string()).await?;
        let page = self.changes_page(&run, &filter, after, limit).await?;
        Ok(RunDetailView {
            run: RunView::from(&run),
            changes: page.changes,
            changes_next_cursor: page.next_cursor,
            progress: self.runner.progress(run_id).as_ref().map(ProgressView::from),
        })
    }

    async fn changes_page(
        &self,
        run: &RunRecord,
        filter: &ChangeFilter,
        after: i64,
        limit: u32,
    ) -> AppResult<ChangePageView> {
        if run.changes_removed_at.is_some() {
            return Ok(ChangePageView { changes: Vec::new(), next_cursor: None });
        }
        let page = self.store.run_changes(run.id, filter, after, limit).await?;
        Ok(ChangePageView {
            changes: page.changes.iter().map(ChangeView::from).collect(),
            next_cursor: page.next_after.map(|seq| seq.to_string()),
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

/// Which changes of a run to list, as a caller typed it (`GET /api/v1/runs/{id}/changes`, the
/// run page, `safegpt runs show`). Empty values mean "any".
#[derive(Debug, Clone, Default)]
pub struct ChangeQuery {
    /// `create`, `update`, `enable`, `disable` or `remove`.
    pub action: Option<String>,
    /// A reason code, e.g. `out_of_scope` (a run's `breakdown` lists those it has).
    pub reason: Option<String>,
    /// Part of an e-mail address, or a whole user or Entra object id.
    pub q: Option<String>,
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ChangeQuery {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;

    /// The store's filter, the `seq` to start after, and the page size.
    fn parse(&self) -> AppResult<(ChangeFilter, i64, u32)> {
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let one_of = |field: &'static str, value: Option<String>, allowed: &[&str]| match value {
            Some(v) if !allowed.contains(&v.as_str()) => {
                let shown: String = v.chars().take(40).collect();
                Err(AppError::invalid(field, format!("'{shown}' is not one of {}", allowed.join(", "))))
            }
            v => Ok(v),
        };
        let action = one_of("action", given(&self.action), &Action::NAMES)?;
        let reason_code = one_of("reason", given(&self.reason), &ChangeReason::CODES)?;
        let text = given(&self.q);
        if text.as_ref().is_some_and(|q| q.chars().count() > 256) {
            return Err(AppError::invalid("q", "is longer than 256 characters; search for part of an address"));
        }
        let after = match given(&self.cursor) {
            None => -1,
            Some(cursor) => cursor.parse::<i64>().ok().filter(|seq| *seq >= 0).ok_or_else(|| {
                AppError::invalid(
                    "cursor",
                    "is not a cursor of this list; pass back the next_cursor of the previous page",
                )
            })?,
        };
        let limit = App::limit(self.limit, Self::DEFAULT_LIMIT, Self::MAX_LIMIT)?;
        Ok((ChangeFilter { action, reason_code, text }, after, limit))
    }
}
