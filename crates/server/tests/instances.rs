//! Two `safegpt serve` processes on one database: both serve, one sync runs at a time (also
//! across the two), a scheduled turn is taken by exactly one of them; and afterwards the
//! client secret is found nowhere: not in the database files, the logs or any API answer.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use graph_sim::{GenerateSpec, generate};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::TestApp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Instance {
    base: String,
    child: tokio::process::Child,
}

fn command(deployment: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut c = deployment.command(args);
    c.env("SAFEGPT_LEASE_TTL_SECS", "5");
    c
}

/// `azure configure` for the tenant's app at graph-sim `url`, active, the secret on stdin.
fn configure_args<'a>(tenant_id: &'a str, client_id: &'a str, url: &'a str) -> Vec<&'a str> {
    vec![
        "azure",
        "configure",
        "--active",
        "true",
        "--tenant-id",
        tenant_id,
        "--client-id",
        client_id,
        "--client-secret-stdin",
        "--login-url",
        url,
        "--graph-url",
        url,
    ]
}

async fn run(deployment: &TestApp, args: &[&str], stdin: &str) -> String {
    let mut child = command(deployment, args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "safegpt {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

async fn serve(deployment: &TestApp, log: &Path) -> Instance {
    let mut child = command(deployment, &["serve", "--listen", "127.0.0.1:0"])
        .env("SAFEGPT_LOG", "debug")
        .env("SAFEGPT_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let base = first.strip_prefix("listening on ").unwrap().to_owned();
    Instance { base, child }
}

struct Client {
    http: reqwest::Client,
    token: String,
    /// Every answer, to search for the secret afterwards.
    seen: std::sync::Mutex<String>,
}

impl Client {
    async fn call(&self, method: reqwest::Method, url: String) -> (StatusCode, Value) {
        let response = self.http.request(method, url).bearer_auth(&self.token).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        self.seen.lock().unwrap().push_str(&text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn wait_until_idle(&self, base: &str) -> Value {
        for _ in 0..200 {
            let (_, runs) = self.call(reqwest::Method::GET, format!("{base}/api/v1/runs")).await;
            if runs.as_array().unwrap().iter().all(|r| r["status"] != "running") {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("runs never finished");
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_database_with_one_sync_at_a_time_and_no_secret_anywhere() {
    let tenant = generate(&GenerateSpec { users: 300, seed: 5, ..GenerateSpec::default() });
    let (tenant_id, app) = (tenant.tenant_id.clone(), tenant.apps[0].clone());
    let secret = app.secrets[0].value.clone();
    let deployment = TestApp::builder(tenant).start().await;
    let sim = &deployment.sim;
    let logs = tempfile::tempdir().unwrap();
    let db = deployment.db_url.clone();
    let url = sim.base_url.clone();
    let mut configure = configure_args(&tenant_id, &app.client_id, &url);
    configure.extend(["--interval", "10m"]);
    run(&deployment, &configure, &secret).await;
    run(&deployment, &["admin", "create", "--email", "ops@example.org", "--password-stdin"], "a long password!").await;
    let token = run(&deployment, &["tokens", "create", "--name", "ops"], "").await.trim().to_owned();

    let a = serve(&deployment, &logs.path().join("a.log")).await;
    let b = serve(&deployment, &logs.path().join("b.log")).await;
    safegpt_graph::install_crypto_provider();
    let client = Client { http: reqwest::Client::new(), token, seen: Default::default() };
    use reqwest::Method as M;

    // Both serve; a sync started on one is "already running" on the other.
    sim.sim.lock().set_faults(serde_json::from_value(json!({"latencyMs": 200})).unwrap());
    let (status, started) = client.call(M::POST, format!("{}/api/v1/syncs", a.base)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let (status, refused) = client.call(M::POST, format!("{}/api/v1/syncs", b.base)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "already_running");
    let (status, _) = client.call(M::GET, format!("{}/api/v1/users", b.base)).await;
    assert_eq!(status, StatusCode::OK, "b serves while a syncs");
    let runs = client.wait_until_idle(&a.base).await;
    sim.sim.lock().set_faults(Default::default());
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["status"], "succeeded");
    let (_, users_a) = client.call(M::GET, format!("{}/api/v1/users?limit=1", a.base)).await;
    let (_, users_b) = client.call(M::GET, format!("{}/api/v1/users?limit=1", b.base)).await;
    assert!(users_a["total"].as_u64().unwrap() > 100);
    assert_eq!(users_a["total"], users_b["total"], "one directory");

    // Now b may run (the lease was released), and a is refused meanwhile.
    sim.sim.lock().set_faults(serde_json::from_value(json!({"latencyMs": 200})).unwrap());
    let (status, _) = client.call(M::POST, format!("{}/api/v1/syncs", b.base)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = client.call(M::POST, format!("{}/api/v1/settings/preview", a.base)).await;
    assert_eq!(status, StatusCode::CONFLICT, "a preview waits for the other instance's run too");
    client.wait_until_idle(&b.base).await;
    sim.sim.lock().set_faults(Default::default());

    // A scheduled turn that is due: exactly one instance takes it.
    let store = &deployment.store;
    store.set_next_run_at(time::OffsetDateTime::now_utc() - time::Duration::seconds(1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs = client.wait_until_idle(&a.base).await;
    let scheduled: Vec<&Value> = runs.as_array().unwrap().iter().filter(|r| r["trigger"] == "schedule").collect();
    assert_eq!(scheduled.len(), 1, "{runs}");
    assert_eq!(scheduled[0]["status"], "succeeded");
    let (_, settings) = client.call(M::GET, format!("{}/api/v1/settings", b.base)).await;
    assert_eq!(settings["interval"], "10m");
    assert!(settings["next_run_at"].is_string());
    for path in ["audit", "events", "runs", "tokens", "integrations"] {
        client.call(M::GET, format!("{}/api/v1/{path}", a.base)).await;
    }
    let metrics = client.http.get(format!("{}/metrics", b.base)).bearer_auth(&client.token).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("safegpt_sync_runs_total{status=\"succeeded\"} 3"), "{metrics}");
    client.seen.lock().unwrap().push_str(&metrics);

    // The secret: in no answer, no log line, no database file (WAL included).
    drop(a.child);
    drop(b.child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!client.seen.lock().unwrap().contains(&secret), "an API answer held the client secret");
    let mut searched = Vec::new();
    for file in files_under(deployment.dir.path()).into_iter().chain(files_under(logs.path())) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is in {}", file.display());
        searched.push(file.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(searched.iter().any(|f| f.ends_with(".log")), "{searched:?}");
    if db.starts_with("sqlite") {
        assert!(searched.iter().any(|f| f == "safegpt.db"), "{searched:?}");
    } else {
        let rows = safegpt_store::testing::postgres_rows_as_text(&db).await;
        assert!(rows.contains("v1:"), "the sealed secret is stored");
        assert!(!rows.contains(&secret), "the secret is in a PostgreSQL table");
    }
    let log = std::fs::read_to_string(logs.path().join("a.log")).unwrap();
    assert!(log.lines().count() > 5, "debug logs were written");
}

/// Sends `signal` (STOP, CONT) to a child process.
fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("the child runs").to_string();
    let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_stopped_past_its_lease_applies_nothing_when_it_wakes_after_another_took_over() {
    let tenant = generate(&GenerateSpec { users: 80, seed: 11, ..GenerateSpec::default() });
    let (tenant_id, app) = (tenant.tenant_id.clone(), tenant.apps[0].clone());
    let renamed = tenant.users[3].id.clone();
    let deployment = TestApp::builder(tenant).start().await;
    let sim = &deployment.sim;
    let url = sim.base_url.clone();
    let configure = configure_args(&tenant_id, &app.client_id, &url);
    run(&deployment, &configure, &app.secrets[0].value).await;
    let ttl = [("SAFEGPT_LEASE_TTL_SECS", "2")];
    let sync = |args: &[&str]| {
        let mut c = deployment.command(args);
        c.envs(ttl).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let first = sync(&["sync"]).output().await.unwrap();
    assert!(first.status.success(), "the first sync: {}", String::from_utf8_lossy(&first.stderr));
    let store = &deployment.store;
    let events_before = store.events(0, 10_000).await.unwrap().len();
    let name_of = || async {
        store.users_by_azure_ids(std::slice::from_ref(&renamed)).await.unwrap()[0].profile.display_name.clone()
    };
    let name_before = name_of().await;

    // Entra renames a user; process A starts the sync that would apply it, slowly.
    let patched = reqwest::Client::new()
        .patch(format!("{url}/_sim/users/{renamed}"))
        .json(&json!({"displayName": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success());
    sim.sim.lock().set_faults(serde_json::from_value(json!({"latencyMs": 400})).unwrap());
    let a = sync(&["sync", "--json"]).spawn().unwrap();
    let a_holder = format!("pid-{}-", a.id().unwrap());
    for _ in 0..500 {
        if store.lease_holder().await.unwrap().is_some_and(|h| h.holder.starts_with(&a_holder) && h.run_id.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A stalls (a GC pause, a suspended VM) for longer than its lease.
    signal(&a, "STOP");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    sim.sim.lock().set_faults(Default::default());
    // B takes the lease over and runs (a preview: it changes no user, so only the lease
    // tells A that it is too late).
    let b = sync(&["sync", "--dry-run", "--json"]).output().await.unwrap();
    assert!(b.status.success(), "B ran while A was stopped: {}", String::from_utf8_lossy(&b.stderr));
    signal(&a, "CONT");
    let a = a.wait_with_output().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.status.code(), Some(1), "A failed: {said}");
    assert!(said.contains("lease"), "A says it lost its lease: {said}");
    assert_eq!(name_of().await, name_before, "A applied nothing");
    assert_eq!(store.events(0, 10_000).await.unwrap().len(), events_before, "no event either");

    // The next sync applies the rename.
    let last = sync(&["sync"]).output().await.unwrap();
    assert!(
        last.status.success(),
        "{}{}",
        String::from_utf8_lossy(&last.stdout),
        String::from_utf8_lossy(&last.stderr)
    );
    assert_ne!(name_of().await, name_before);
    deployment.shutdown().await;
}
