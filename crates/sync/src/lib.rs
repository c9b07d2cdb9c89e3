//! The sync engine: read Entra completely (everything, or every change since the last
//! applied run), plan, apply in one transaction together with the copy of Entra it planned
//! from.
//!
//! The engine is the only place that talks to Graph and then writes users. It never reads
//! the clock: callers pass `now`, so "remove after 14 days" can be tested and previewed.

use std::sync::atomic::Ordering;

use safegpt_core::{Cloud, Counts, FieldError, Hold, Plan, Policy, Scope, Settings};
use safegpt_graph::{Credentials, Endpoints, ErrorKind, GraphClient, GraphError, RetryPolicy};
use safegpt_store::{
    Advance, DirectoryVersion, Fence, MirrorWrite, ReadMode, RunError, RunStatus, RunTotals, Store, StoreError,
    SyncCursor,
};
use serde::Serialize;
use time::OffsetDateTime;
use tracing::{Instrument, info, warn};

mod confirm;
mod full;
mod read;
use confirm::Confirm;
use read::Incremental;
mod runner;
mod staged;
mod subset;
pub use runner::{Runner, StartError, StartedRun};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Azure User Sync is not configured: {}", .0.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))]
    NotConfigured(Vec<FieldError>),
    #[error("Azure User Sync is not active; switch it on first (safegpt azure configure --active true)")]
    Inactive,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Entra or Graph refused or failed.
    #[error("{0}")]
    Client(GraphError),
    /// A check of the engine ended the run (recorded on it as failed).
    #[error("{}", .0.record().message)]
    Failed(RunFailure),
    /// Another run holds the organisation's lease (in this or another process).
    #[error("a sync is already running{}; wait for it to finish", .run_id.map(|id| format!(" (run {id})")).unwrap_or_default())]
    AlreadyRunning { run_id: Option<Uuid> },
    /// A platform operator disabled the organisation: nothing runs in it.
    #[error("the organisation '{0}' is disabled; a platform operator can enable it again (safegpt orgs enable {0})")]
    OrgDisabled(String),
    /// This process lost the lease while it worked (it stalled longer than the lease's
    /// lifetime); the run stops before applying anything and is recorded as interrupted.
    #[error("the sync lost its lease (the process stalled for longer than {0:?}); nothing was applied")]
    LeaseLost(std::time::Duration),
}

impl SyncError {
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::NotConfigured(_) => "not_configured",
            SyncError::Inactive => "inactive",
            // Fenced out: another instance took the lease over; as a lost lease.
            SyncError::Store(StoreError::Fenced) => "lease_lost",
            SyncError::Store(_) => "store",
            SyncError::Client(_) => "client",
            SyncError::Failed(_) => "failed",
            SyncError::AlreadyRunning { .. } => "already_running",
            SyncError::OrgDisabled(_) => "org_disabled",
            SyncError::LeaseLost(_) => "lease_lost",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// `cli`, `manual`, `api` or `schedule`.
    pub trigger: String,
    pub dry_run: bool,
    /// An administrator's approval of a held run's plan: its disables and removals may be
    /// applied even above the deletion threshold, nothing more.
    pub approval: Option<Approval>,
    /// Read every user and group instead of following the delta links.
    pub full_read: bool,
    /// The time the run acts at: planning (removal after N days) and records use it.
    pub now: OffsetDateTime,
    pub lease: LeaseSettings,
    pub slice: SliceSize,
}

/// How many Entra users a full read plans and writes at a time (memory against queries:
/// each slice reads its part of the directory twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceSize(pub std::num::NonZeroUsize);

impl Default for SliceSize {
    fn default() -> Self {
        SliceSize(std::num::NonZeroUsize::new(5_000).expect("not zero"))
    }
}

impl SyncRequest {
    pub fn new(trigger: &str, now: OffsetDateTime) -> Self {
        SyncRequest {
            trigger: trigger.to_owned(),
            dry_run: false,
            approval: None,
            full_read: false,
            now,
            lease: LeaseSettings::default(),
            slice: SliceSize::default(),
        }
    }
}

/// What an administrator approved by confirming a held run.
#[derive(Debug, Clone, Default)]
pub struct Approval {
    pub held_run: Uuid,
    /// The users the held plan would disable or remove.
    pub users: std::collections::HashSet<Uuid>,
}

/// The single-flight lease shared by every process on one database. It runs on the real
/// clock (not on `now`, which may be a time a test or a preview travels to).
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    pub clock: fn() -> OffsetDateTime,
    /// A holder that stops renewing for this long is considered dead.
    pub ttl: std::time::Duration,
}

impl LeaseSettings {
    fn lifetime(&self) -> time::Duration {
        time::Duration::try_from(self.ttl).unwrap_or(time::Duration::MINUTE)
    }
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings { clock: OffsetDateTime::now_utc, ttl: std::time::Duration::from_secs(60) }
    }
}

/// This process, as a lease holder.
pub fn process_holder() -> &'static str {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER.get_or_init(|| format!("pid-{}-{}", std::process::id(), Uuid::now_v7()))
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    pub run_id: Uuid,
    pub status: RunStatus,
    pub counts: Counts,
    pub error: Option<RunError>,
    #[serde(skip)]
    pub hold: Option<Hold>,
    #[serde(skip)]
    pub plan: Option<Plan>,
    /// How the run read Entra; `None` when it failed before it read.
    pub read_mode: Option<ReadMode>,
}

fn endpoints(cloud: &Cloud) -> Endpoints {
    Endpoints { login_url: cloud.login_url().to_owned(), graph_url: cloud.graph_url().to_owned() }
}

/// A Graph client for the stored settings and secret.
pub async fn client_for(store: &Store, settings: &Settings, retry: RetryPolicy) -> Result<GraphClient, SyncError> {
    let secret = store.client_secret_for(&settings.cloud).await?;
    let missing = settings.readiness(secret.is_some());
    let (Some(tenant), Some(client_id), Some(secret), true) =
        (settings.tenant_id.clone(), settings.client_id.clone(), secret, missing.is_empty())
    else {
        return Err(SyncError::NotConfigured(missing));
    };
    GraphClient::new(
        endpoints(&settings.cloud),
        Credentials { tenant: tenant.into(), client_id: client_id.into(), secret },
        retry,
    )
    .map_err(SyncError::Client)
}

/// Where a run is, for live progress in the UI and API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Starting,
    ReadingUsers,
    ReadingGroups,
    Applying,
    Finished,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub run_id: Option<Uuid>,
    pub phase: Phase,
    pub pages_read: u64,
    pub users_read: u64,
    pub groups_read: u64,
}

pub type ProgressSender = tokio::sync::watch::Sender<Progress>;

fn run_error(e: &GraphError) -> RunError {
    RunError { kind: e.kind.as_str().to_owned(), message: e.message.clone(), detail: Some(e.detail.clone()) }
}

/// Why a run failed, as recorded on it: Graph's answer, or a check of the engine's own that
/// stops before anyone could be disabled on wrong grounds.
#[derive(Debug)]
pub enum RunFailure {
    Graph(GraphError),
    /// A configured group is not in the tenant (its members are never taken out of scope);
    /// reported like Graph's 404 on the group.
    GroupMissing {
        group: String,
        detail: &'static str,
    },
    /// The administrator said when the client secret expires, and that day has passed.
    SecretExpired {
        message: String,
    },
    /// Users kept changing (administrators at work) between reading the directory and
    /// applying, every time the run planned: it applied nothing rather than undo them.
    DirectoryKeptMoving {
        attempts: u32,
    },
    /// A full read could not stage Entra's users on disk (the temporary directory full,
    /// or a staged file damaged): nothing was applied.
    Staging {
        cause: String,
    },
}

impl RunFailure {
    pub fn record(&self) -> RunError {
        match self {
            RunFailure::Graph(e) => run_error(e),
            RunFailure::GroupMissing { group, detail } => run_error(&GraphError::group_not_found(group, *detail)),
            RunFailure::SecretExpired { message } => RunError {
                kind: ErrorKind::SecretExpired.as_str().to_owned(),
                message: message.clone(),
                detail: Some("secret_expires setting".into()),
            },
            RunFailure::DirectoryKeptMoving { attempts } => RunError {
                kind: "directory_busy".into(),
                message: format!(
                    "users were changed while the sync planned, {attempts} times in a row; nothing was applied, \
                     so no one's change was undone. The next run tries again"
                ),
                detail: None,
            },
            RunFailure::Staging { cause } => RunError {
                kind: "staging".into(),
                message: format!(
                    "a full read could not stage Entra's users on disk in {} ({cause}); nothing was applied. \
                     Free space there, or point TMPDIR at a disk with room (about 300 bytes per Entra user)",
                    std::env::temp_dir().display()
                ),
                detail: Some(cause.clone()),
            },
        }
    }
}

/// An error that a run records as its failure, or (`Err`) one that stops the engine itself.
fn recorded(e: SyncError) -> Result<RunFailure, SyncError> {
    match e {
        SyncError::Client(e) => Ok(RunFailure::Graph(e)),
        SyncError::Failed(failure) => Ok(failure),
        other => Err(other),
    }
}

/// A run that passed its checks and is recorded as `running`; [`PreparedRun::execute`]
/// reads, plans and applies it. Split so that a caller can answer with the run id at once
/// and do the work in the background.
pub struct PreparedRun {
    pub run_id: Uuid,
    request: SyncRequest,
    settings: Settings,
    client: GraphClient,
    /// The lease this run took: everything it writes is fenced by it.
    fence: Fence,
}

/// Checks the settings and records the start of a run.
pub async fn prepare_run(store: &Store, request: &SyncRequest, retry: RetryPolicy) -> Result<PreparedRun, SyncError> {
    // Checked here, where every run starts (scheduled, manual, the console's): a run claimed
    // or asked for just before the organisation was disabled does not start.
    let org = store.org_slug();
    if store.find_org(org).await?.is_none_or(|o| o.disabled_at.is_some()) {
        return Err(SyncError::OrgDisabled(org.to_owned()));
    }
    let (settings, _) = store.settings().await?;
    if !settings.active && !request.dry_run {
        return Err(SyncError::Inactive);
    }
    let client = client_for(store, &settings, retry).await?;
    let lease = request.lease;
    let ttl = lease.lifetime();
    let fence = match store.acquire_lease(process_holder(), (lease.clock)(), ttl).await? {
        Ok(fence) => fence,
        Err(holder) => return Err(SyncError::AlreadyRunning { run_id: holder.run_id }),
    };
    // Under the lease, a run still marked `running` belongs to a holder that died: start_run
    // records it as interrupted.
    let run_id = match store.start_run(&request.trigger, request.dry_run, request.now).await {
        Ok(id) => id,
        Err(e) => {
            store.release_lease(&fence).await.ok();
            return Err(e.into());
        }
    };
    store.renew_lease(process_holder(), Some(run_id), (lease.clock)(), ttl).await?;
    info!(%run_id, trigger = %request.trigger, dry_run = request.dry_run, "sync started");
    Ok(PreparedRun { run_id, request: request.clone(), settings, client, fence })
}

impl PreparedRun {
    /// Read → plan → apply (or record, for dry runs and held runs), renewing the lease while
    /// it works and releasing it at the end.
    pub async fn execute(self, store: &Store, progress: &ProgressSender) -> Result<SyncOutcome, SyncError> {
        let lease = self.request.lease;
        let run_id = self.run_id;
        let request_now = self.request.now;
        let started = std::time::Instant::now();
        let ttl = lease.lifetime();
        // Every write of the run checks, in its own transaction, that no other instance took
        // the lease over while this process stalled (a pause longer than the lease).
        let fence = self.fence.clone();
        let writes = store.fenced(fence.clone());
        // Every log line of the run, in this task, carries its id.
        let work = self.work(&writes, progress).instrument(tracing::info_span!("sync", %run_id));
        tokio::pin!(work);
        // The heartbeat is polled beside the work, never instead of it: on SQLite a renewal
        // waits while the apply transaction holds the write lock, and the work must go on.
        let heartbeat = async {
            let mut ticker = tokio::time::interval(lease.ttl / 4);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match store.renew_lease(process_holder(), Some(run_id), (lease.clock)(), ttl).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => warn!(%run_id, "could not renew the sync lease yet: {e}"),
                }
            }
        };
        let result = tokio::select! {
            result = &mut work => result,
            () = heartbeat => {
                warn!(%run_id, "the sync lost its lease; stopping before it applies anything");
                Err(SyncError::LeaseLost(lease.ttl))
            }
        };
        if let Err(e) = &result {
            // The run never stays `running` behind an error (a database that refused a
            // write, a lost lease): it is recorded as failed with the cause.
            let error = RunError { kind: e.kind().to_owned(), message: e.to_string(), detail: None };
            let now = request_now + started.elapsed();
            if let Err(record) = writes.abandon_run(run_id, &error, now).await {
                warn!(%run_id, "could not record the failure of the run: {record}");
            }
        }
        store.release_lease(&fence).await.ok();
        // Housekeeping after the lease is free, so that it never delays the next run.
        if let Ok(SyncOutcome { status: RunStatus::Succeeded, read_mode: Some(ReadMode::Full), .. }) = &result {
            store.tidy_after_full_read().await;
        }
        result
    }

    async fn work(self, store: &Store, progress: &ProgressSender) -> Result<SyncOutcome, SyncError> {
        let PreparedRun { run_id, request, settings, client, fence: _ } = self;
        // Durations are real (a monotonic clock), anchored at the `now` the caller passed.
        let started = std::time::Instant::now();
        let finished_at = || request.now + started.elapsed();
        progress.send_modify(|p| p.run_id = Some(run_id));
        let secret_warning = settings.secret_warning(request.now.date());
        if let Some(w) = secret_warning {
            warn!(%run_id, days_left = w.days_left, "{}", w.describe());
        }
        let policy = Policy::from(&settings);
        let scope = Scope::new(&settings);
        // Delta links carry the `$select` of their first round, so a release that reads more
        // (e.g. `otherMails`) starts with a full read: the select is part of the key.
        let scope_key = scope.key(&policy, safegpt_graph::USER_SELECT);
        let read = match secret_warning.filter(|w| w.expired()) {
            // The administrator told us when the secret expires: fail at once with the fix
            // rather than asking Entra with a secret known to be dead.
            Some(w) => Err(SyncError::Failed(RunFailure::SecretExpired { message: w.describe() })),
            None => {
                let cursor = store.sync_cursor().await?;
                let reader = Reader {
                    client: &client,
                    store,
                    settings: &settings,
                    cursor: &cursor,
                    scope: &scope,
                    scope_key: &scope_key,
                    request: &request,
                    run_id,
                    progress,
                };
                reader.read().await
            }
        };
        let totals = |users_read: usize, read_mode: Option<ReadMode>| RunTotals {
            users_read: users_read as u64,
            graph_requests: client.traffic.requests.load(Ordering::Relaxed),
            read_mode,
            ..RunTotals::default()
        };
        let fail = |failure: RunFailure, totals: RunTotals| async move {
            let error = failure.record();
            warn!(%run_id, kind = %error.kind, detail = ?error.detail, "sync failed: {}", error.message);
            store.fail_run(run_id, &error, totals, finished_at()).await?;
            progress.send_modify(|p| p.phase = Phase::Finished);
            Ok(SyncOutcome {
                run_id,
                status: RunStatus::Failed,
                counts: Counts::default(),
                error: Some(error),
                hold: None,
                plan: None,
                read_mode: totals.read_mode,
            })
        };
        let read = match read {
            Ok(read) => read,
            Err(e) => return fail(recorded(e)?, totals(0, None)).await,
        };
        progress.send_modify(|p| p.phase = Phase::Applying);
        let ending = Ending { store, run_id, request: &request, progress };
        let confirm = Confirm { client: &client, scope: &scope, policy: &policy, request: &request, run_id };
        // A plan is applied only if no one wrote users since the run read them (the store
        // checks under its lock); otherwise the directory is read and planned again, with
        // the same read of Entra.
        match read {
            Read::Full(full) => {
                let mut totals = totals(full.snapshot.users.len(), Some(ReadMode::Full));
                totals.invalid_emails = warn_invalid_emails(run_id, full.invalid_emails);
                // Like a 404 on the group: a missing group never takes its members out of scope.
                if let Some(missing) =
                    scope.groups().iter().find(|g| full.memberships.groups().binary_search(g).is_err())
                {
                    let failure =
                        RunFailure::GroupMissing { group: missing.clone(), detail: "not among the tenant's groups" };
                    return fail(failure, totals).await;
                }
                let mut snapshot = full.snapshot;
                let copy = full::EntraCopy {
                    memberships: &full.memberships,
                    tombstones: &full.tombstones,
                    users_link: &full.users_link,
                    groups_link: &full.groups_link,
                    scope: &scope_key,
                    full_read_due: full.full_read_due,
                };
                let planner = full::FullPlan { ending: &ending, confirm: &confirm, policy: &policy };
                match planner.run(&mut snapshot, &copy, &mut totals, finished_at).await {
                    Err(e) => fail(recorded(e)?, totals).await,
                    outcome => outcome,
                }
            }
            Read::Incremental(mut delta) => {
                let mut found_back = Vec::new();
                let mut totals = totals(delta.users_read as usize, Some(ReadMode::Incremental));
                let invalid = delta.changes.users.values().flatten().filter(|u| u.has_invalid_address()).count();
                totals.invalid_emails = warn_invalid_emails(run_id, invalid as u64);
                let mut attempt = 1;
                loop {
                    let planned_from = store.directory_version().await?;
                    let mut inputs = match subset::gather(store, &scope, &delta.changes).await {
                        Ok(inputs) => inputs,
                        Err(e) => return fail(recorded(e)?, totals).await,
                    };
                    info!(%run_id, local = inputs.local.len(), remote = inputs.snapshot.users.len(), "read the users the changes touch");
                    let untouched = inputs.untouched;
                    let (plan, back) = match confirm
                        .plan_and_confirm(&inputs.local, &mut inputs.snapshot, untouched, &mut totals)
                        .await
                    {
                        Ok(planned) => planned,
                        Err(e) => return fail(RunFailure::Graph(e), totals).await,
                    };
                    // The copy keeps what Graph said directly about the users found back.
                    for user in &back {
                        delta.changes.users.insert(user.id.clone(), Some(user.clone()));
                    }
                    found_back.extend(back);
                    let advance = Advance {
                        mirror: MirrorWrite::Merge(&delta.changes),
                        tombstones: &delta.tombstones,
                        full_read_due: !found_back.is_empty() || delta.full_read_due,
                        users_delta_link: &delta.users_link,
                        groups_delta_link: &delta.groups_link,
                        full_read_at: None,
                        scope: &scope_key,
                    };
                    match ending.conclude(plan, planned_from, &advance, totals, finished_at()).await {
                        Err(SyncError::Store(StoreError::DirectoryMoved)) => {
                            if let Err(failure) = full::plan_again(&mut attempt, run_id) {
                                return fail(failure, totals).await;
                            }
                        }
                        other => return other,
                    }
                }
            }
        }
    }
}

/// Users whose address in Entra is not an e-mail address: they are kept without one (the
/// core refuses such addresses), and the run records how many.
fn warn_invalid_emails(run_id: Uuid, invalid: u64) -> u64 {
    if invalid > 0 {
        warn!(%run_id, invalid, "users whose address in Entra is not an e-mail address are kept without one");
    }
    invalid
}

/// Why a run is held, as recorded on it.
fn held_error(hold: &Hold, approval: Option<&Approval>) -> RunError {
    let message = match approval {
        Some(approval) => format!(
            "beyond the {} users approved by confirming run {}, {}",
            approval.users.len(),
            approval.held_run,
            hold.describe()
        ),
        None => hold.describe(),
    };
    RunError { kind: "deletion_threshold".into(), message, detail: None }
}

/// The end of a run that read Entra and planned.
struct Ending<'a> {
    store: &'a Store,
    run_id: Uuid,
    request: &'a SyncRequest,
    progress: &'a ProgressSender,
}

impl Ending<'_> {
    /// Records a dry run or a held run, or applies the plan with the copy of Entra it was
    /// made from. Only an applied run moves the delta links: after a dry, held or failed
    /// run the next one reads the same changes again.
    async fn conclude(
        &self,
        plan: Plan,
        planned_from: DirectoryVersion,
        advance: &Advance<'_>,
        totals: RunTotals,
        finished_at: OffsetDateTime,
    ) -> Result<SyncOutcome, SyncError> {
        let Ending { store, run_id, request, progress } = *self;
        info!(%run_id, changes = plan.changes.len(), "planned");
        let hold = match &request.approval {
            Some(approval) => plan.hold_beyond(&approval.users),
            None => plan.hold,
        };
        let (status, error) = if request.dry_run {
            store
                .record_unapplied_plan(run_id, RunStatus::DryRun, &plan, planned_from, totals, None, finished_at)
                .await?;
            (RunStatus::DryRun, None)
        } else if let Some(hold) = hold {
            let error = held_error(&hold, request.approval.as_ref());
            warn!(%run_id, would_disable = hold.would_disable, "sync held by the deletion threshold");
            store
                .record_unapplied_plan(run_id, RunStatus::Held, &plan, planned_from, totals, Some(&error), finished_at)
                .await?;
            (RunStatus::Held, Some(error))
        } else {
            store.apply_plan(run_id, &plan, planned_from, Some(advance), totals, finished_at).await?;
            (RunStatus::Succeeded, None)
        };
        info!(%run_id, status = status.as_str(), read = ?totals.read_mode, counts = ?plan.counts, "sync finished");
        progress.send_modify(|p| p.phase = Phase::Finished);
        Ok(SyncOutcome {
            run_id,
            status,
            counts: plan.counts,
            error,
            hold,
            plan: Some(plan),
            read_mode: totals.read_mode,
        })
    }
}

enum Read {
    Full(read::FullRead),
    Incremental(read::IncrementalRead),
}

/// What a run reads Entra with.
struct Reader<'a> {
    client: &'a GraphClient,
    store: &'a Store,
    settings: &'a Settings,
    cursor: &'a SyncCursor,
    scope: &'a Scope,
    scope_key: &'a str,
    request: &'a SyncRequest,
    run_id: Uuid,
    progress: &'a ProgressSender,
}

impl Reader<'_> {
    /// Reads Entra; a page token that expires in the middle of a round starts it again.
    async fn read(&self) -> Result<Read, SyncError> {
        const READ_ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            match self.read_once().await {
                Err(SyncError::Client(e)) if e.kind == ErrorKind::PageTokenExpired && attempt < READ_ATTEMPTS => {
                    warn!(run_id = %self.run_id, attempt, detail = %e.detail, "a page token expired in the middle of a round; reading again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Follows the delta links when it can, else reads everything: on the first run, after
    /// the scope changed, when the daily full read is due or asked for, when Graph rejects a
    /// delta link (expired, or a reset on its side), and when something came back from a
    /// soft delete.
    async fn read_once(&self) -> Result<Read, SyncError> {
        let Reader { client, store, settings, cursor, scope, scope_key, request, run_id, progress } = *self;
        let every = time::Duration::seconds(i64::from(settings.full_sync_interval_secs));
        let full_reason = match (&cursor.users_delta_link, &cursor.groups_delta_link, cursor.full_read_at) {
            _ if request.full_read => Some("asked for"),
            (None, _, _) | (_, None, _) => Some("no delta links yet"),
            // Also after a run that found Graph contradicting the copy.
            (_, _, None) => Some("no full read recorded since the copy was last in doubt"),
            _ if cursor.scope.as_deref() != Some(scope_key) => Some("the settings changed"),
            (_, _, Some(at)) if request.now - at >= every => Some("the periodic full read is due"),
            _ => None,
        };
        if let (None, Some(users_link), Some(groups_link)) =
            (full_reason, &cursor.users_delta_link, &cursor.groups_delta_link)
        {
            match read::read_incremental(client, store, users_link, groups_link, run_id, progress).await {
                Err(SyncError::Client(e)) if e.kind == ErrorKind::DeltaExpired => {
                    warn!(%run_id, detail = %e.detail, "Graph rejected the delta link; reading everything instead");
                }
                Ok(Incremental::SomethingRestored(ids)) => {
                    warn!(%run_id, restored = ids.len(), "users or groups came back from a soft delete; reading everything");
                }
                Ok(Incremental::Read(read)) => return Ok(Read::Incremental(read)),
                Err(e) => return Err(e),
            }
        } else {
            info!(%run_id, reason = full_reason.unwrap_or_default(), "full read");
        }
        read::read_full(client, run_id, progress, scope, request.slice.0.get()).await.map(Read::Full)
    }
}

/// One sync from start to end.
pub async fn run_sync(store: &Store, request: &SyncRequest, retry: RetryPolicy) -> Result<SyncOutcome, SyncError> {
    let progress = ProgressSender::new(Progress::default());
    prepare_run(store, request, retry).await?.execute(store, &progress).await
}

/// One check of "Test connection".
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub message: String,
    pub kind: Option<String>,
}

/// Token, read users, read each group: changes nothing.
pub async fn test_connection(store: &Store, retry: RetryPolicy) -> Result<Vec<Check>, SyncError> {
    let (settings, _) = store.settings().await?;
    let client = client_for(store, &settings, retry).await?;
    let failed = |name: String, e: GraphError| Check {
        name,
        ok: false,
        message: e.message,
        kind: Some(e.kind.as_str().to_owned()),
    };
    let mut checks = Vec::new();
    if let Err(e) = client.check_token().await {
        checks.push(failed("token".into(), e));
        let skipped = |name: String| Check {
            name,
            ok: false,
            message: "skipped: no access token".into(),
            kind: Some("skipped".into()),
        };
        checks.push(skipped("read users".into()));
        for g in &settings.group_ids {
            checks.push(skipped(format!("read group {g}")));
        }
        return Ok(checks);
    }
    checks.push(Check { name: "token".into(), ok: true, message: "access token obtained".into(), kind: None });
    checks.push(match client.probe_users().await {
        Ok(()) => Check {
            name: "read users".into(),
            ok: true,
            message: "users can be read (User.Read.All)".into(),
            kind: None,
        },
        Err(e) => failed("read users".into(), e),
    });
    for g in &settings.group_ids {
        let name = format!("read group {g}");
        let result = match client.group_name(g).await {
            Ok(display_name) => client.transitive_user_ids(g).next_page().await.map(|_| display_name),
            Err(e) => Err(e),
        };
        checks.push(match result {
            Ok(display_name) => Check {
                name,
                ok: true,
                message: format!("group '{display_name}' and its members can be read (Group.Read.All)"),
                kind: None,
            },
            Err(e) => failed(name, e),
        });
    }
    Ok(checks)
}
