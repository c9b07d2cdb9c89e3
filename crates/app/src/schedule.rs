//! The scheduler of `safegpt serve`, for every organisation of the deployment: while an
//! organisation's integration is active, a sync every *interval* (with a little jitter, so
//! that many organisations do not hit Graph in step), backing off while it keeps failing.
//!
//! The schedule lives in the database, so every instance on one database sees the same
//! one. Each turn an instance claims as many due syncs as it has free slots
//! (`SAFEGPT_MAX_CONCURRENT_SYNCS`), with one statement that no other instance can claim
//! the same through; each claimed sync runs in its own task, so a tenant that throttles or
//! hangs holds only its own slot. The sync lease keeps each organisation to one run at a
//! time together with manual runs.

use std::time::Duration;

use safegpt_store::RunStatus;
use safegpt_sync::SyncRequest;
use time::OffsetDateTime;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::{App, AppError, AppResult, Platform, Trigger};

/// How often the scheduler looks for due syncs.
const TICK: Duration = Duration::from_secs(2);
/// How many ticks between two plannings (every organisation's settings read again).
const PLAN_EVERY: u32 = 5;
/// How long a claimed sync stays claimed should this instance die before planning its next
/// run: then it is due again.
const CLAIM_HOLD: time::Duration = time::Duration::minutes(5);

/// Up to 10 % of the interval, at most a minute.
fn jitter(interval_secs: u32) -> time::Duration {
    let max_ms = (u64::from(interval_secs) * 100).clamp(1, 60_000);
    let roll = (Uuid::new_v4().as_u128() % u128::from(max_ms)) as i64;
    time::Duration::milliseconds(roll)
}

/// The wait before the next scheduled run: the interval; after `failures` failed runs in a
/// row, doubled for each, at most eight times the interval.
pub(crate) fn delay_after(interval_secs: u32, failures: u32) -> time::Duration {
    time::Duration::seconds(i64::from(interval_secs) << failures.min(3))
}

/// What one turn of the scheduler did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Turn {
    /// The organisations whose due sync this instance claimed and started.
    pub claimed: Vec<String>,
    /// Syncs that were newly planned (first activation, a shortened interval).
    pub planned: usize,
}

impl Platform {
    /// Plans every enabled organisation at `now`: an active one without a next run, or with
    /// one further off than its interval (and back-off) allows, gets one; one switched off
    /// loses it, so that switching it on plans from then. Returns how many it planned.
    pub async fn plan_schedules(&self, now: OffsetDateTime) -> AppResult<usize> {
        let mut planned = 0;
        for org in self.store().schedules().await? {
            let store = self.store().for_org(&org.org);
            let interval = org.settings.sync_interval_secs;
            let latest_sensible = now + delay_after(interval, org.failures) + time::Duration::minutes(1);
            match (org.settings.active, org.next_run_at) {
                (false, Some(_)) => store.unschedule().await?,
                (true, None) => {
                    store.schedule_next(now + delay_after(interval, 0) + jitter(interval), 0).await?;
                    planned += 1;
                }
                (true, Some(at)) if at > latest_sensible.max(now + CLAIM_HOLD) => {
                    store.schedule_next(now + delay_after(interval, 0) + jitter(interval), org.failures).await?;
                    planned += 1;
                }
                _ => {}
            }
        }
        Ok(planned)
    }

    /// One turn at `now`: plans (when `plan`), then claims as many due syncs as this
    /// instance has free slots and runs each in its own task, holding a slot until it ends.
    pub async fn scheduler_turn(&self, now: OffsetDateTime, plan: bool) -> AppResult<Turn> {
        let planned = if plan { self.plan_schedules(now).await? } else { 0 };
        let free = self.slots.available_permits();
        let claimed = self.store().claim_due(now, free as u32, now + CLAIM_HOLD).await?;
        let mut turn = Turn { claimed: Vec::with_capacity(claimed.len()), planned };
        for (org, failures) in claimed {
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                // Taken meanwhile (cannot happen with one scheduler per process): due again
                // once the claim's hold ends.
                warn!(%org, "scheduler: no free slot for a claimed sync");
                continue;
            };
            let app = self.app(&org);
            let freed = std::sync::Arc::clone(&self.slot_freed);
            tokio::spawn(async move {
                app.run_scheduled(now, failures).await;
                drop(slot);
                freed.notify_one();
            });
            turn.claimed.push(org);
        }
        Ok(turn)
    }

    /// Runs the scheduler until the task is dropped, reading the clock each turn: a turn
    /// every tick, and one as soon as a sync ends, so that a freed slot takes the next due
    /// sync at once rather than at the next tick (syncs with nothing to do take milliseconds).
    pub async fn run_scheduler(self) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u32 = 0;
        loop {
            let plan = tokio::select! {
                _ = ticker.tick() => {
                    // The first tick (at once) plans, then every PLAN_EVERY-th.
                    let plan = ticks.is_multiple_of(PLAN_EVERY);
                    ticks = ticks.wrapping_add(1);
                    plan
                }
                () = self.slot_freed.notified() => false,
            };
            let started = std::time::Instant::now();
            match self.scheduler_turn(self.now(), plan).await {
                Ok(turn) => debug!(
                    claimed = turn.claimed.len(),
                    planned = turn.planned,
                    took_ms = started.elapsed().as_millis() as u64,
                    "scheduler turn"
                ),
                Err(e) => warn!("scheduler: {e}"),
            }
        }
    }
}

impl App {
    /// A scheduled sync of this organisation claimed at `now`, run to its end; then its next
    /// run is planned: an interval on, or further while it keeps failing.
    pub(crate) async fn run_scheduled(&self, now: OffsetDateTime, failures: u32) {
        let org = self.store.org_slug().to_owned();
        let settings = match self.store.settings().await {
            Ok((settings, _)) => settings,
            Err(e) => return warn!(%org, "scheduled sync: cannot read the settings: {e}"),
        };
        if !settings.active {
            if let Err(e) = self.store.unschedule().await {
                warn!(%org, "scheduled sync: {e}");
            }
            return;
        }
        let interval = settings.sync_interval_secs;
        // Planned before the run, so that the schedule shows the next run while this one works.
        let next = now + delay_after(interval, 0) + jitter(interval);
        if let Err(e) = self.store.schedule_next(next, failures).await {
            return warn!(%org, "scheduled sync: cannot plan the next run: {e}");
        }
        let request = SyncRequest::new(Trigger::Schedule.as_str(), now);
        let outcome = match self.runner.begin_run(request).await {
            Ok(started) => {
                info!(%org, run_id = %started.run_id(), "scheduled sync started");
                started.finish().await.map_err(AppError::from)
            }
            Err(e) => Err(AppError::from(e)),
        };
        let failed = match &outcome {
            Ok(o) => Some(o.status == RunStatus::Failed),
            // Another run of this organisation is on: this turn is simply its, and says
            // nothing about whether the organisation's syncs fail.
            Err(AppError::AlreadyRunning { run_id }) => {
                info!(%org, ?run_id, "scheduled sync skipped: a sync is running");
                None
            }
            Err(e) => {
                warn!(%org, "scheduled sync could not run: {e}");
                Some(true)
            }
        };
        let (next, failures) = match (failed, failures) {
            (None | Some(false), 0) | (None, _) => return,
            (Some(false), _) => (next, 0),
            // From the run's end: a failing run may take longer than a short interval, and
            // a back-off that lands in the past would claim it again at once.
            (Some(true), n) => (self.now().max(now) + delay_after(interval, n + 1), n + 1),
        };
        if failed == Some(true) {
            info!(%org, failures, backoff_secs = (next - now).whole_seconds(), "scheduled sync failed; backing off");
        }
        if let Err(e) = self.store.schedule_next(next, failures).await {
            warn!(%org, "scheduled sync: cannot plan the next run: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_organisation_backs_off_doubling_up_to_eight_intervals() {
        let minutes = |failures| delay_after(900, failures).whole_minutes();
        assert_eq!([0, 1, 2, 3, 4, 10].map(minutes), [15, 30, 60, 120, 120, 120]);
    }
}
