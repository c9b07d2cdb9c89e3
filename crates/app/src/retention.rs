//! Retention: the scheduler removes run change lists, audit rows and events older than the
//! operator keeps them, a small batch at a time, and never while this process runs a sync.

use std::time::Duration;

use safegpt_store::Kept;
use serde_json::json;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::{App, AppResult};

/// How long things are kept, in days; `None` keeps them for ever. Operator settings
/// (`SAFEGPT_RETENTION_*_DAYS`), not the administrator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The list of each run's changes (the run and its counts stay).
    pub run_changes_days: Option<u32>,
    pub audit_days: Option<u32>,
    /// The outbox of user events.
    pub events_days: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { run_changes_days: Some(180), audit_days: Some(180), events_days: Some(30) }
    }
}

/// Rows one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub run_changes: u64,
    pub audit: u64,
    pub events: u64,
    /// Webhook delivery attempts and e-mails (kept as long as the audit log).
    pub deliveries: u64,
    /// The pass stopped early because a sync started here; the next pass goes on.
    pub yielded: bool,
}

/// Rows per batch: a few milliseconds of one transaction.
pub const PRUNE_BATCH: u32 = 1000;

/// How often the scheduler applies the retention periods.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl App {
    /// Removes what is older than the retention periods at `now`, batch by batch; stops
    /// (to go on at the next pass) as soon as this process runs a sync.
    pub async fn apply_retention(&self, now: OffsetDateTime) -> AppResult<Pruned> {
        let mut pruned = Pruned::default();
        let outcome = self.prune_all(now, &mut pruned).await;
        // What went stays on record even when a later batch failed.
        if pruned.run_changes + pruned.audit + pruned.events + pruned.deliveries > 0 {
            info!(
                run_changes = pruned.run_changes,
                audit = pruned.audit,
                events = pruned.events,
                deliveries = pruned.deliveries,
                "retention applied"
            );
            // What went, and under which periods, stays where an administrator looks.
            let kept_days = |days: Option<u32>| days.map_or(json!("for ever"), |d| json!(d));
            let details = json!({
                "removed": {"run_changes": pruned.run_changes, "audit": pruned.audit, "events": pruned.events,
                            "deliveries": pruned.deliveries},
                "kept_days": {
                    "run_changes": kept_days(self.retention.run_changes_days),
                    "audit": kept_days(self.retention.audit_days),
                    "events": kept_days(self.retention.events_days),
                },
            });
            self.store.audit("system", "retention.applied", None, &details, now).await?;
        }
        outcome.map(|()| pruned)
    }

    async fn prune_all(&self, now: OffsetDateTime, pruned: &mut Pruned) -> AppResult<()> {
        let periods = [
            (Kept::RunChanges, self.retention.run_changes_days),
            (Kept::AuditLog, self.retention.audit_days),
            (Kept::Events, self.retention.events_days),
            (Kept::Deliveries, self.retention.audit_days),
        ];
        for (kept, days) in periods {
            let Some(days) = days else { continue };
            let before = now - time::Duration::days(i64::from(days));
            loop {
                if self.runner.current_run().is_some() {
                    pruned.yielded = true;
                    return Ok(());
                }
                let batch = self.store.prune_batch(kept, before, PRUNE_BATCH, now).await?;
                match kept {
                    Kept::RunChanges => pruned.run_changes += batch.removed,
                    Kept::AuditLog => pruned.audit += batch.removed,
                    Kept::Events => pruned.events += batch.removed,
                    Kept::Deliveries => pruned.deliveries += batch.removed,
                }
                if !batch.more {
                    break;
                }
                // Let a sync that waits for the database in, between batches.
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }
}

impl crate::Platform {
    /// Applies every organisation's retention periods every [`PRUNE_EVERY`] until the task is
    /// dropped.
    pub async fn run_retention(self) {
        let mut ticker = tokio::time::interval(PRUNE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let orgs = match self.store().orgs().await {
                Ok(orgs) => orgs,
                Err(e) => {
                    warn!("retention: cannot list the organisations: {e}");
                    continue;
                }
            };
            // A disabled organisation keeps everything ("nothing is deleted").
            for org in orgs.iter().filter(|o| o.disabled_at.is_none()) {
                if let Err(e) = self.app(&org.slug).apply_retention(self.now()).await {
                    warn!(org = %org.slug, "retention: {e}");
                }
            }
        }
    }
}
