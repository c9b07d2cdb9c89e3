//! Kill `safegpt sync` with SIGKILL at many moments of a large sync, restart it, and check
//! after each restart: no duplicate users, no half-applied run, the killed run recorded as
//! interrupted, and the directory converging to what a run without crashes gives.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use graph_sim::{GenerateSpec, SimOptions, SimServer, generate};
use safegpt_store::{RunStatus, Store, UserFilter};
use serde_json::Value;
use support::TestApp;

const USERS: usize = 3000;

/// A deployment driven through the `safegpt` binary, configured with `azure configure`.
struct Deployment(TestApp);

impl Deployment {
    async fn new(sim: &Arc<SimServer>, tenant_id: &str, client_id: &str, secret: &str) -> Deployment {
        let d = Deployment(TestApp::on(sim).start().await);
        let url = sim.base_url.as_str();
        let out = d
            .command(&[
                "azure",
                "configure",
                "--active",
                "true",
                "--tenant-id",
                tenant_id,
                "--client-id",
                client_id,
                "--client-secret-stdin",
                "--auto-disable",
                "true",
                "--threshold-count",
                "100000",
                "--login-url",
                url,
                "--graph-url",
                url,
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = out;
        use tokio::io::AsyncWriteExt;
        out.stdin.take().unwrap().write_all(secret.as_bytes()).await.unwrap();
        assert!(out.wait().await.unwrap().success());
        d
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = self.0.command(args);
        c.env("SAFEGPT_LEASE_TTL_SECS", "2").stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    /// Syncs to the end; while a killed holder's lease has not expired yet, tries again.
    async fn sync_to_end(&self) -> Value {
        for _ in 0..40 {
            let out = self.command(&["sync", "--json"]).output().await.unwrap();
            match out.status.code() {
                Some(0) => return serde_json::from_slice(&out.stdout).unwrap(),
                Some(4) => tokio::time::sleep(Duration::from_millis(250)).await,
                other => panic!(
                    "sync failed with {other:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        panic!("the lease of the killed process never expired");
    }

    fn store(&self) -> &Store {
        &self.0.store
    }

    /// (Entra id, e-mail, department, status) of every user.
    async fn directory(&self) -> BTreeSet<(String, String, String, String)> {
        let store = self.store();
        let users = store.users(UserFilter::default()).await.unwrap();
        let set: BTreeSet<_> = users
            .iter()
            .map(|u| {
                (
                    u.azure_object_id.clone().unwrap_or_default(),
                    u.profile.email.clone(),
                    u.profile.department.clone().unwrap_or_default(),
                    u.status.as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(set.len(), users.len(), "no duplicate users");
        set
    }
}

/// Every user of the simulated tenant gets `department`: the next sync updates them all.
fn relabel(sim: &SimServer, department: &str) {
    let mut state = sim.sim.lock();
    let records: Vec<_> = state.dir.users.values().map(|u| u.record.clone()).collect();
    for mut record in records {
        record.department = Some(department.to_owned());
        state.dir.upsert_user(record);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_moment_leaves_a_consistent_directory_that_converges() {
    let tenant = generate(&GenerateSpec { users: USERS, groups: 10, nesting: 2, seed: 3, ..GenerateSpec::default() });
    let (tenant_id, app) = (tenant.tenant_id.clone(), tenant.apps[0].clone());
    let secret = app.secrets[0].value.clone();
    let sim = Arc::new(SimServer::start("127.0.0.1:0", tenant, SimOptions::default()).await.unwrap());
    let deployment = Deployment::new(&sim, &tenant_id, &app.client_id, &secret).await;

    // How long a run that updates every user takes here, uninterrupted: the kills are spread
    // over that time, from the token request to the commit of the apply transaction.
    deployment.sync_to_end().await;
    relabel(&sim, "measured");
    let started = std::time::Instant::now();
    deployment.sync_to_end().await;
    let full = started.elapsed();

    let mut interrupted = 0;
    let mut committed = 0;
    let fractions = [0.1, 0.25, 0.4, 0.55, 0.7, 0.8, 0.9, 0.97];
    for (round, fraction) in fractions.into_iter().enumerate() {
        let kill_after = full.mul_f64(fraction);
        let label = format!("round-{round}");
        relabel(&sim, &label);
        let before = deployment.directory().await;
        let mut child = deployment.command(&["sync", "--json"]).spawn().unwrap();
        tokio::time::sleep(kill_after).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();

        // Right after the kill: either the whole run is in, or nothing of it.
        let after_kill = deployment.directory().await;
        let departments: BTreeSet<&str> = after_kill.iter().map(|(_, _, d, _)| d.as_str()).collect();
        assert!(departments.len() <= 1, "round {round}: a half-applied run ({departments:?})");
        if after_kill == before {
            interrupted += 1;
        } else {
            assert_eq!(departments, BTreeSet::from([label.as_str()]), "round {round}");
            committed += 1;
        }

        // Restart: the next run converges, and a killed run is recorded as interrupted.
        let outcome = deployment.sync_to_end().await;
        assert_eq!(outcome["status"], "succeeded", "round {round}");
        let converged = deployment.directory().await;
        assert!(converged.iter().all(|(_, _, d, _)| d == &label), "round {round}: converged");
        let store = deployment.store();
        let runs = store.runs(1000).await.unwrap();
        // A killed run that had started is now `interrupted`, never left `running`.
        assert!(runs.iter().all(|r| r.status != RunStatus::Running), "round {round}: no run left running");
    }
    assert!(
        interrupted >= 2,
        "the kills should land inside runs ({interrupted} interrupted, {committed} committed, {full:?})"
    );
    let runs = deployment.store().runs(1000).await.unwrap();
    assert!(runs.iter().any(|r| r.status == RunStatus::Interrupted), "killed runs are recorded as interrupted");

    // The result equals a deployment that never crashed.
    let clean = Deployment::new(&sim, &tenant_id, &app.client_id, &secret).await;
    clean.sync_to_end().await;
    assert_eq!(deployment.directory().await, clean.directory().await);
    assert_eq!(deployment.directory().await.len(), clean.directory().await.len());
}
