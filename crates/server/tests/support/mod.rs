//! The one harness of the server's integration tests: graph-sim serving a tenant, a fresh
//! database (SQLite, or PostgreSQL with `SAFEGPT_TEST_DATABASE_URL`), the application over
//! it and, when asked, the web server — all in this process on 127.0.0.1 port 0 — and the
//! `safegpt` binary pointed at the same data for tests that drive the command line.
//!
//! The in-process store and the binary share the data directory's master key, so a secret
//! sealed by either is read by the other.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;
use std::time::Duration;

use graph_sim::{SimOptions, SimServer, TenantFile};
use reqwest::{Method, StatusCode};
use safegpt::web::{AppState, Server, WebConfig};
use safegpt_app::{App, Operations, Platform, Principal, SyncNow, Trigger};
use safegpt_core::{Email, SettingsPatch};
use safegpt_graph::RetryPolicy;
use safegpt_store::{AdminRole, Sealer, Store};
use safegpt_sync::{SliceSize, SyncOutcome};
use secrecy::SecretString;
use serde_json::Value;
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

/// Full reads in tests plan and write seven Entra users at a time, so that every test with
/// more than a handful of users crosses slices (production: 5,000).
pub fn test_slice() -> SliceSize {
    SliceSize(std::num::NonZeroUsize::new(7).unwrap())
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
        let operations = Operations { retry, full_read_slice: test_slice(), ..Operations::default() };
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
            .env("SAFEGPT_FULL_READ_SLICE", test_slice().0.to_string())
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
        let operations =
            Operations { retry: self.retry.clone(), full_read_slice: test_slice(), ..Operations::default() };
        let platform = Platform::new(Arc::clone(&store), operations);
        // The web's own application of the organisation (one runner), for tests that watch it.
        let app = platform.scope(&Principal::Operator, None).await.unwrap();
        let web = match self.web {
            None => None,
            Some(config) => Some(serve(platform, config).await),
        };
        safegpt_graph::install_crypto_provider();
        TestApp { sim, store, app, dir, db_url, retry: self.retry, web }
    }
}

/// Azure User Sync of `store`'s organisation configured for the tenant's first app registration,
/// active, at graph-sim's endpoints, its secret stored, plus `patch`.
pub async fn configure(sim: &SimServer, store: &Store, patch: SettingsPatch) {
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

async fn serve(platform: Platform, config: WebConfig) -> Web {
    let state = AppState::new(platform, config);
    let server = Server::bind("127.0.0.1:0", state.clone()).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Web { base, state, _shutdown: tx }
}

/// An administrator of the store's organisation with `password`, created as the tests' own actor.
pub async fn create_admin(store: &Store, email: &str, password: &str) {
    let role = AdminRole { org: Some(store.org_slug().to_owned()), platform: false };
    create_admin_as(store, email, password, role).await;
}

/// An administrator of `role` with `password`, created as the tests' own actor.
pub async fn create_admin_as(store: &Store, email: &str, password: &str, role: AdminRole) {
    let phc = safegpt_app::hash_password(password).unwrap();
    store.create_admin(&Email::parse(email).unwrap(), &phc, &role, "test", OffsetDateTime::now_utc()).await.unwrap();
}

/// A client of a [`TestApp`]'s web server, as a browser or a program meets it. No answer it
/// reads through [`WebClient::call`] may contain the client secret.
pub struct WebClient {
    /// Follows no redirect: the tests look at them.
    pub client: reqwest::Client,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The client secret, which must never appear in an answer.
    pub secret: String,
}

impl WebClient {
    pub fn new(base: String, secret: String) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        WebClient { client, base, secret }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An API call with `token`: the status and the JSON body (`Null` when there is none).
    pub async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(!text.contains(&self.secret), "the client secret leaked in {path}: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Starts a sync over the API with `token` and waits for its end.
    pub async fn sync(&self, token: &str) -> Value {
        let (status, started) = self.call(token, Method::POST, "/api/v1/syncs", None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        self.wait_for_run(token, started["run_id"].as_str().unwrap()).await
    }

    /// The detail of run `run_id`, polled with `token` until the run is no longer `running`.
    pub async fn wait_for_run(&self, token: &str, run_id: &str) -> Value {
        for _ in 0..1500 {
            let (status, detail) = self.call(token, Method::GET, &format!("/api/v1/runs/{run_id}"), None).await;
            assert_eq!(status, StatusCode::OK, "{detail}");
            if detail["run"]["status"] != "running" {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("run {run_id} did not finish");
    }

    /// Logs in through the form, on to `/users`: the session cookie and the page's CSRF token.
    pub async fn log_in(&self, email: &str, password: &str) -> (String, String) {
        let form = [("email", email), ("password", password), ("next", "/users")];
        let response = self.client.post(self.url("/login")).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], "/users");
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let page = self.client.get(self.url("/users")).header("cookie", &cookie).send().await.unwrap();
        let html = page.text().await.unwrap();
        let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        (cookie, csrf)
    }
}
