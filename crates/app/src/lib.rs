//! The application layer: every operation an administrator, the scheduler or the platform
//! can do, as one function each on [`App`]. Each takes typed input and (when it changes
//! something) the acting [`Principal`], owns the operation's validation, audit rows and
//! events, and returns a typed result or one [`AppError`].
//!
//! The CLI (`safegpt …`) and the web (pages and REST API) are adapters over this: they parse
//! their input, call one of these functions, and present the result or map the error (to an
//! exit code or an HTTP status) in one place. No rule lives in an adapter.

mod access;
mod admin;
mod courier;
mod directory;
mod error;
mod notify;
mod platform;
mod retention;
mod runs;
mod schedule;
mod settings;
pub mod views;

use std::sync::Arc;

use safegpt_graph::RetryPolicy;
use safegpt_store::Store;
use safegpt_sync::{LeaseSettings, Runner, SliceSize};
use time::OffsetDateTime;

pub use access::{Login, TokenScope};
pub use admin::{check_new_password, hash_password, verify_password};
pub use courier::{Courier, CourierTurn, message_id};
pub use directory::UserQuery;
pub use error::{AppError, AppResult};
pub use notify::{
    NotificationView, NotifySettings, WebhookAttemptView, WebhookCreatedView, WebhookView, parse_event_types,
};
pub use platform::{LANGUAGES, LastRunView, NewOrg, OrgHealthView, OrgView, Platform, SeatsView};
pub use retention::{Pruned, Retention};
pub use runs::{ChangeQuery, SyncNow};
pub use schedule::Turn;
pub use settings::{AZURE, INTEGRATIONS, SettingsChange};

/// Who asks. Written to the audit log as its [`actor`](Principal::actor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Someone at the server's console, running `safegpt …` commands.
    Operator,
    /// An administrator signed in to the web UI (or calling the API with its session), acting
    /// in `org`: their own organisation, or the one a platform operator opened (`None`:
    /// none). `platform`: a platform operator.
    Admin { email: String, org: Option<String>, platform: bool },
    /// A program holding an API token, limited to its scope, answering for its organisation
    /// (`None`: a platform token).
    Token { name: String, scope: TokenScope, org: Option<String> },
    /// Whoever holds the one-time setup link of a server without administrators.
    SetupLink,
    /// `safegpt demo`, preparing its demonstration.
    Demo,
    /// The scheduler of `safegpt serve`, starting the runs that are due.
    Scheduler,
}

impl Principal {
    /// `cli`, `admin:<e-mail>`, `token:<name>`, `setup`, `demo` or `scheduler`: the audit log's contract.
    pub fn actor(&self) -> String {
        match self {
            Principal::Operator => "cli".to_owned(),
            Principal::Admin { email, .. } => format!("admin:{email}"),
            Principal::Token { name, .. } => format!("token:{name}"),
            Principal::SetupLink => "setup".to_owned(),
            Principal::Demo => "demo".to_owned(),
            Principal::Scheduler => "scheduler".to_owned(),
        }
    }
}

/// Where a sync was started from; recorded with the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `safegpt sync`.
    Cli,
    /// The rocket or a button of the web UI.
    Manual,
    /// The REST API.
    Api,
    /// The scheduler of `safegpt serve`.
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Manual => "manual",
            Trigger::Api => "api",
            Trigger::Schedule => "schedule",
        }
    }
}

/// Operator settings the operations need (from `config`, not from the administrator).
#[derive(Debug, Clone)]
pub struct Operations {
    pub retry: RetryPolicy,
    pub lease: LeaseSettings,
    pub retention: Retention,
    pub full_read_slice: SliceSize,
    /// Scheduled syncs this process runs at once, over every organisation
    /// (`SAFEGPT_MAX_CONCURRENT_SYNCS`).
    pub max_concurrent_syncs: usize,
    /// E-mail and webhooks.
    pub notify: NotifySettings,
}

/// The default of [`Operations::max_concurrent_syncs`].
pub const MAX_CONCURRENT_SYNCS: usize = 4;

impl Default for Operations {
    fn default() -> Self {
        Operations {
            retry: RetryPolicy::default(),
            lease: LeaseSettings::default(),
            retention: Retention::default(),
            full_read_slice: SliceSize::default(),
            max_concurrent_syncs: MAX_CONCURRENT_SYNCS,
            notify: NotifySettings::default(),
        }
    }
}

/// The wall clock, or a fixed one in tests: read here at the edge and passed inward.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The application: the store, the one runner of syncs of this process, and the clock.
#[derive(Clone)]
pub struct App {
    store: Arc<Store>,
    runner: Arc<Runner>,
    retry: RetryPolicy,
    retention: Retention,
    notify: Arc<NotifySettings>,
    clock: Clock,
}

impl App {
    pub fn new(store: Arc<Store>, operations: Operations) -> App {
        App {
            runner: Runner::new(
                Arc::clone(&store),
                operations.retry.clone(),
                operations.lease,
                operations.full_read_slice,
            ),
            retry: operations.retry,
            retention: operations.retention,
            notify: Arc::new(operations.notify),
            store,
            clock: Arc::new(OffsetDateTime::now_utc),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> App {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// For what only an adapter does with the store (web sessions, metrics, readiness).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The runner, for the scheduler and live progress.
    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// A limit given by a caller (`None`: the default), checked against the largest allowed.
    pub fn limit(given: Option<u32>, default: u32, max: u32) -> AppResult<u32> {
        match given {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(n) => Err(AppError::invalid("limit", format!("{n} is out of range; use 1 to {max}"))),
        }
    }
}

/// An id a caller typed (a run, a user, a token), parsed at the edge.
pub fn parse_id(field: &'static str, raw: &str) -> AppResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw.trim())
        .map_err(|_| AppError::invalid(field, format!("'{raw}' is not an id like 0190c3a2-…; copy it from a list")))
}
