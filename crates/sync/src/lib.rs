//! The sync engine: read a complete snapshot from Graph, plan, apply in one transaction.
//!
//! The engine is the only place that talks to Graph and then writes users. It never reads
//! the clock: callers pass `now`, so "remove after 14 days" can be tested and previewed.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use safegpt_core::{Cloud, Counts, FieldError, Hold, Plan, Policy, RemoteUser, Settings, Snapshot, plan};
use safegpt_graph::{Credentials, Endpoints, GraphClient, GraphError, RetryPolicy};
use safegpt_store::{RunError, RunStatus, RunTotals, Store, StoreError, UserFilter};
use serde::Serialize;
use time::OffsetDateTime;
use tracing::{Instrument, info, warn};

mod runner;
pub mod scheduler;
pub use runner::{Runner, StartError};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Azure User Sync is not configured: {}", .0.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))]
    NotConfigured(Vec<FieldError>),
    #[error("Azure User Sync is not active; switch it on first (safegpt azure configure --active true)")]
    Inactive,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Client(GraphError),
    /// Another run holds the organisation's lease (in this or another process).
    #[error("a sync is already running{}; wait for it to finish", .run_id.map(|id| format!(" (run {id})")).unwrap_or_default())]
    AlreadyRunning { run_id: Option<Uuid> },
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
            SyncError::Store(_) => "store",
            SyncError::Client(_) => "client",
            SyncError::AlreadyRunning { .. } => "already_running",
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
    /// Apply even when the deletion threshold would hold the run.
    pub confirm_mass_changes: bool,
    /// The time the run acts at: planning (removal after N days) and records use it.
    pub now: OffsetDateTime,
    pub lease: LeaseSettings,
}

impl SyncRequest {
    pub fn new(trigger: &str, now: OffsetDateTime) -> Self {
        SyncRequest {
            trigger: trigger.to_owned(),
            dry_run: false,
            confirm_mass_changes: false,
            now,
            lease: LeaseSettings::default(),
        }
    }
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
}

fn endpoints(cloud: &Cloud) -> Endpoints {
    Endpoints { login_url: cloud.login_url().to_owned(), graph_url: cloud.graph_url().to_owned() }
}

/// A Graph client for the stored settings and secret.
pub async fn client_for(store: &Store, settings: &Settings, retry: RetryPolicy) -> Result<GraphClient, SyncError> {
    let secret = store.client_secret().await?;
    let missing = settings.readiness(secret.is_some());
    let (Some(tenant), Some(client_id), Some(secret), true) =
        (settings.tenant_id.clone(), settings.client_id.clone(), secret, missing.is_empty())
    else {
        return Err(SyncError::NotConfigured(missing));
    };
    GraphClient::new(endpoints(&settings.cloud), Credentials { tenant, client_id, secret }, retry)
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

/// Reads every user and, when scoped, every transitive member of every group. Any failure
/// ends the read: a partial snapshot is never returned.
pub async fn read_snapshot(
    client: &GraphClient,
    settings: &Settings,
    run_id: Uuid,
    progress: &ProgressSender,
) -> Result<Snapshot, GraphError> {
    let mut users: Vec<RemoteUser> = Vec::new();
    let mut pager = client.users();
    progress.send_modify(|p| p.phase = Phase::ReadingUsers);
    while let Some(page) = pager.next_page().await? {
        users.extend(page);
        progress.send_modify(|p| {
            p.pages_read += 1;
            p.users_read = users.len() as u64;
        });
        info!(%run_id, pages = pager.pages, users = users.len(), "read users page");
    }
    progress.send_modify(|p| p.phase = Phase::ReadingGroups);
    let mut group_members = HashSet::new();
    for group in &settings.group_ids {
        let mut pager = client.transitive_user_ids(group);
        while let Some(page) = pager.next_page().await? {
            group_members.extend(page);
            progress.send_modify(|p| p.pages_read += 1);
        }
        progress.send_modify(|p| p.groups_read += 1);
        info!(%run_id, group = %group, pages = pager.pages, members = group_members.len(), "read group members");
    }
    Ok(Snapshot { users, group_members, complete: true })
}

fn run_error(e: &GraphError) -> RunError {
    RunError { kind: e.kind.as_str().to_owned(), message: e.message.clone(), detail: Some(e.detail.clone()) }
}

/// A run that passed its checks and is recorded as `running`; [`PreparedRun::execute`]
/// reads, plans and applies it. Split so that a caller can answer with the run id at once
/// and do the work in the background.
pub struct PreparedRun {
    pub run_id: Uuid,
    request: SyncRequest,
    settings: Settings,
    client: GraphClient,
}

/// Checks the settings and records the start of a run.
pub async fn prepare_run(store: &Store, request: &SyncRequest, retry: RetryPolicy) -> Result<PreparedRun, SyncError> {
    let (settings, _) = store.settings().await?;
    if !settings.active && !request.dry_run {
        return Err(SyncError::Inactive);
    }
    let client = client_for(store, &settings, retry).await?;
    let lease = request.lease;
    let ttl = lease.lifetime();
    if let Err(holder) = store.acquire_lease(process_holder(), (lease.clock)(), ttl).await? {
        return Err(SyncError::AlreadyRunning { run_id: holder.run_id });
    }
    // Under the lease, a run still marked `running` belongs to a holder that died: start_run
    // records it as interrupted.
    let run_id = match store.start_run(&request.trigger, request.dry_run, request.now).await {
        Ok(id) => id,
        Err(e) => {
            store.release_lease(process_holder()).await.ok();
            return Err(e.into());
        }
    };
    store.renew_lease(process_holder(), Some(run_id), (lease.clock)(), ttl).await?;
    info!(%run_id, trigger = %request.trigger, dry_run = request.dry_run, "sync started");
    Ok(PreparedRun { run_id, request: request.clone(), settings, client })
}

impl PreparedRun {
    /// Read → plan → apply (or record, for dry runs and held runs), renewing the lease while
    /// it works and releasing it at the end.
    pub async fn execute(self, store: &Store, progress: &ProgressSender) -> Result<SyncOutcome, SyncError> {
        let lease = self.request.lease;
        let run_id = self.run_id;
        let ttl = lease.lifetime();
        // Every log line of the run, in this task, carries its id.
        let work = self.work(store, progress).instrument(tracing::info_span!("sync", %run_id));
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
        store.release_lease(process_holder()).await.ok();
        result
    }

    async fn work(self, store: &Store, progress: &ProgressSender) -> Result<SyncOutcome, SyncError> {
        let PreparedRun { run_id, request, settings, client } = self;
        // Durations are real (a monotonic clock), anchored at the `now` the caller passed.
        let started = std::time::Instant::now();
        let finished_at = || request.now + started.elapsed();
        progress.send_modify(|p| p.run_id = Some(run_id));
        let secret_warning = settings.secret_warning(request.now.date());
        if let Some(w) = secret_warning {
            warn!(%run_id, days_left = w.days_left, "{}", w.describe());
        }
        let snapshot = match secret_warning.filter(|w| w.expired()) {
            // The administrator told us when the secret expires: fail at once with the fix
            // rather than asking Entra with a secret known to be dead.
            Some(w) => {
                Err(GraphError::new(safegpt_graph::ErrorKind::SecretExpired, w.describe(), "secret_expires setting"))
            }
            None => read_snapshot(&client, &settings, run_id, progress).await,
        };
        let totals = |users_read: usize| RunTotals {
            users_read: users_read as u64,
            graph_requests: client.traffic.requests.load(Ordering::Relaxed),
        };
        let finished = |p: &mut Progress| p.phase = Phase::Finished;
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                warn!(%run_id, kind = e.kind.as_str(), detail = %e.detail, "sync failed: {}", e.message);
                let error = run_error(&e);
                store.fail_run(run_id, &error, totals(0), finished_at()).await?;
                progress.send_modify(finished);
                return Ok(SyncOutcome {
                    run_id,
                    status: RunStatus::Failed,
                    counts: Counts::default(),
                    error: Some(error),
                    hold: None,
                    plan: None,
                });
            }
        };
        progress.send_modify(|p| p.phase = Phase::Applying);
        let local = store.users(UserFilter::default()).await?;
        info!(%run_id, local = local.len(), "read the directory");
        let plan = plan(&local, &snapshot, &Policy::from(&settings), request.now, Uuid::now_v7);
        info!(%run_id, changes = plan.changes.len(), "planned");
        let totals = totals(snapshot.users.len());
        let (status, error) = if request.dry_run {
            store.record_unapplied_plan(run_id, RunStatus::DryRun, &plan, totals, None, finished_at()).await?;
            (RunStatus::DryRun, None)
        } else if let (Some(hold), false) = (plan.hold, request.confirm_mass_changes) {
            let error = RunError { kind: "deletion_threshold".into(), message: hold.describe(), detail: None };
            warn!(%run_id, would_disable = hold.would_disable, "sync held by the deletion threshold");
            store.record_unapplied_plan(run_id, RunStatus::Held, &plan, totals, Some(&error), finished_at()).await?;
            (RunStatus::Held, Some(error))
        } else {
            store.apply_plan(run_id, &plan, totals, finished_at()).await?;
            (RunStatus::Succeeded, None)
        };
        info!(%run_id, status = status.as_str(), counts = ?plan.counts, "sync finished");
        progress.send_modify(finished);
        Ok(SyncOutcome { run_id, status, counts: plan.counts, error, hold: plan.hold, plan: Some(plan) })
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
