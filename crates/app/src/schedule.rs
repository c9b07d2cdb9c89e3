//! The scheduler of `safegpt serve`: while the integration is active, a sync every
//! *interval* (with a little jitter, so that many deployments do not hit Graph in step). It
//! starts runs through [`App::start_sync`], like the rocket and the API.
//!
//! The next run time lives in the database, so every instance on one database sees the
//! same schedule; the instance whose conditional update moves it first starts the run, and
//! the sync lease keeps it to one run at a time together with manual runs.

use std::time::Duration;

use time::OffsetDateTime;
use tracing::{info, warn};
use uuid::Uuid;

use crate::{App, AppError, AppResult, Principal, Trigger};

/// How often the scheduler looks at the schedule.
const TICK: Duration = Duration::from_secs(2);

/// Up to 10 % of the interval, at most a minute.
fn jitter(interval_secs: u32) -> time::Duration {
    let max_ms = (u64::from(interval_secs) * 100).clamp(1, 60_000);
    let roll = (Uuid::new_v4().as_u128() % u128::from(max_ms)) as i64;
    time::Duration::milliseconds(roll)
}

impl App {
    /// One look at the schedule at `now`: starts a run when one is due. Returns the run
    /// started.
    pub async fn scheduled_tick(&self, now: OffsetDateTime) -> AppResult<Option<Uuid>> {
        let store = &self.store;
        let (settings, _) = store.settings().await?;
        if !settings.active {
            return Ok(None);
        }
        let interval = time::Duration::seconds(i64::from(settings.sync_interval_secs));
        let next = now + interval + jitter(settings.sync_interval_secs);
        let latest_sensible = now + interval + time::Duration::minutes(1);
        match store.next_run_at().await? {
            // First time active, or the interval was shortened: plan from now.
            None => store.set_next_run_at(next).await?,
            Some(at) if at > latest_sensible => store.set_next_run_at(next).await?,
            Some(at) if at <= now => {
                if !store.claim_scheduled_run(at, next).await? {
                    return Ok(None); // another instance took this turn
                }
                match self.start_sync(&Principal::Scheduler, Trigger::Schedule, false).await {
                    Ok(run_id) => {
                        info!(%run_id, "scheduled sync started");
                        return Ok(Some(run_id));
                    }
                    Err(AppError::AlreadyRunning { run_id }) => {
                        info!(?run_id, "scheduled sync skipped: a sync is running")
                    }
                    Err(e) => warn!("scheduled sync could not start: {e}"),
                }
            }
            Some(_) => {}
        }
        Ok(None)
    }

    /// Runs the schedule until the task is dropped, reading the app's clock each tick.
    pub async fn run_scheduler(self) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.scheduled_tick(self.now()).await {
                warn!("scheduler: {e}");
            }
        }
    }
}
