//! The one harness of the server's integration tests: graph-sim serving a tenant, a fresh
//! database (SQLite, or PostgreSQL with `SAFEGPT_TEST_DATABASE_URL`), the application over
//! it and, when asked, the web server — all in this process on 127.0.0.1 port 0 — and the
//! `safegpt` binary pointed at the same data for tests that drive the command line.
//!
//! The in-process store and the binary share the data directory's master key, so a secret
//! sealed by either is read by the other.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;

use graph_sim::{SimOptions, SimServer, TenantFile};
use safegpt::web::{AppState, Server, WebConfig};
use safegpt_app::{App, Operations, Principal, SyncNow, Trigger};
use safegpt_core::{Email, SettingsPatch};
use safegpt_graph::RetryPolicy;
use safegpt_store::{Sealer, Store};
use safegpt_sync::SyncOutcome;
use secrecy::SecretString;
use time::OffsetDateTime;

/// A deployment under test.
pub struct TestApp {
    pub sim: Arc<SimServer>,
    pub store: Arc<Store>,
    pub app: App,
    pub dir: tempfile::TempDir,
    /// The database `store` and the binary use.
    pub db_url: String,
    /// The retry policy of `app` (and of [`TestApp::sync`]).
    pub retry: RetryPolicy,
    /// The web server, when the builder asked for one.
    pub web: Option<Web>,
}

/// A running web server of a [`TestApp`].
pub struct Web {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub state: AppState,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub struct Builder {
    sim: Result<Arc<SimServer>, (TenantFile, SimOptions)>,
    settings: Option<SettingsPatch>,
    retry: RetryPolicy,
    web: Option<WebConfig>,
}

impl TestApp {
    /// graph-sim serving `tenant` (strict, as Graph) and an empty directory.
    pub fn builder(tenant: TenantFile) -> Builder {
        Builder { sim: Err((tenant, SimOptions::default())), settings: None, retry: RetryPolicy::default(), web: None }
    }

    /// Another deployment against a graph-sim that is already running.
    pub fn on(sim: &Arc<SimServer>) -> Builder {
        Builder { sim: Ok(Arc::clone(sim)), settings: None, retry: RetryPolicy::default(), web: None }
    }

    /// The secret of the tenant's first app registration.
    pub fn secret(&self) -> String {
        self.sim.sim.lock().dir.apps[0].secrets[0].value.clone()
    }

    /// A sync run to its end by the application, at `now`, with `retry`.
    pub async fn sync_with(&self, now: OffsetDateTime, retry: RetryPolicy, full_read: bool) -> SyncOutcome {
        let operations = Operations { retry, ..Operations::default() };
        let app = App::new(Arc::clone(&self.store), operations);
        let request = SyncNow { trigger: Trigger::Cli, dry_run: false, confirm: None, full_read, at: Some(now) };
        app.sync_now(&Principal::Operator, request).await.unwrap_or_else(|e| panic!("the sync could not run: {e}"))
    }

    /// A sync run to its end at `now` with the deployment's retry policy.
    pub async fn sync(&self, now: OffsetDateTime) -> SyncOutcome {
        self.sync_with(now, self.retry.clone(), false).await
    }

    /// The `safegpt` binary with this deployment's data directory and database.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_safegpt"));
        command
            .args(args)
            .env("SAFEGPT_DATA_DIR", self.dir.path())
            .env("SAFEGPT_DATABASE_URL", &self.db_url)
            .env_remove("SAFEGPT_MASTER_KEY")
            .env_remove("SAFEGPT_CONFIG")
            .kill_on_drop(true);
        command
    }

    /// Stops graph-sim when no other deployment uses it.
    pub async fn shutdown(self) {
        if let Ok(sim) = Arc::try_unwrap(self.sim) {
            sim.shutdown().await;
        }
    }

    /// The web server's base URL.
    pub fn base(&self) -> &str {
        &self.web.as_ref().expect("the builder started the web server").base
    }
}

impl Builder {
    pub fn sim_options(mut self, options: SimOptions) -> Self {
        if let Err((_, o)) = &mut self.sim {
            *o = options;
        }
        self
    }

    /// Azure User Sync configured for the tenant's first app registration — active, at
    /// graph-sim's endpoints, its secret stored — plus `patch`.
    pub fn configured(mut self, patch: SettingsPatch) -> Self {
        self.settings = Some(patch);
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Also serve the web (pages and API) with `config`.
    pub fn web(mut self, config: WebConfig) -> Self {
        self.web = Some(config);
        self
    }

    pub async fn start(self) -> TestApp {
        let sim = match self.sim {
            Ok(sim) => sim,
            Err((tenant, options)) => Arc::new(SimServer::start("127.0.0.1:0", tenant, options).await.unwrap()),
        };
        let dir = tempfile::tempdir().unwrap();
        let db_url = safegpt_store::testing::test_database_url(dir.path()).await;
        let sealer = Sealer::load(None, dir.path()).unwrap();
        let store = Arc::new(Store::open(&db_url, sealer).await.unwrap());
        if let Some(patch) = self.settings {
            configure(&sim, &store, patch).await;
        }
        let app = App::new(Arc::clone(&store), Operations { retry: self.retry.clone(), ..Operations::default() });
        let web = match self.web {
            None => None,
            Some(config) => Some(serve(app.clone(), config).await),
        };
        safegpt_graph::install_crypto_provider();
        TestApp { sim, store, app, dir, db_url, retry: self.retry, web }
    }
}

async fn configure(sim: &SimServer, store: &Store, patch: SettingsPatch) {
    let (tenant_id, registration) = {
        let state = sim.sim.lock();
        (state.dir.tenant_id.clone(), state.dir.apps[0].clone())
    };
    let patch = SettingsPatch {
        active: Some(true),
        tenant_id: Some(tenant_id),
        client_id: Some(registration.client_id.clone()),
        login_url: Some(sim.base_url.clone()),
        graph_url: Some(sim.base_url.clone()),
        ..patch
    };
    let settings = store.settings().await.unwrap().0.apply(&patch).unwrap();
    let secret = SecretString::from(registration.secrets[0].value.clone());
    store.save_settings(&settings, Some(&secret), "test", OffsetDateTime::now_utc()).await.unwrap();
}

async fn serve(app: App, config: WebConfig) -> Web {
    let state = AppState::new(app, config);
    let server = Server::bind("127.0.0.1:0", state.clone()).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Web { base, state, _shutdown: tx }
}

/// An administrator with `password`, created as the tests' own actor.
pub async fn create_admin(store: &Store, email: &str, password: &str) {
    let phc = safegpt_app::hash_password(password).unwrap();
    store.create_admin(&Email::parse(email).unwrap(), &phc, "test", OffsetDateTime::now_utc()).await.unwrap();
}
