//! Microsoft Graph misbehaving, through graph-sim's fault injection. For every fault the sync
//! either ends with exactly the directory of a fault-free run, or fails and changes nobody.

use std::collections::BTreeSet;

mod support;
use std::time::Duration;

use graph_sim::{Faults, GenerateSpec, generate};
use safegpt_core::SettingsPatch;
use safegpt_graph::RetryPolicy;
use safegpt_store::{ReadMode, RunStatus, UserFilter};
use serde_json::json;
use support::TestApp;
use time::OffsetDateTime;

type Directory = BTreeSet<(String, String, String, Option<String>)>;

/// A deployment synced once against a fresh tenant, which then changes: users deleted,
/// renamed and removed from the scope group, so that a wrong read would disable people.
struct Case {
    deployment: TestApp,
}

impl Case {
    async fn new() -> Case {
        let tenant = generate(&GenerateSpec { users: 450, groups: 6, nesting: 2, seed: 11, ..GenerateSpec::default() });
        let group = tenant.largest_group().unwrap();
        let patch = SettingsPatch {
            group_ids: Some(vec![group.clone()]),
            auto_disable: Some(true),
            threshold_count: Some("100000".into()),
            ..SettingsPatch::default()
        };
        let case = Case { deployment: TestApp::builder(tenant).configured(patch).start().await };
        assert_eq!(case.sync(RetryPolicy::default()).await, RunStatus::Succeeded);

        let mut state = case.deployment.sim.sim.lock();
        let ids: Vec<String> = state.dir.users.keys().cloned().collect();
        for id in ids.iter().step_by(15) {
            state.dir.delete_user(id);
        }
        for id in ids.iter().skip(3).step_by(20) {
            let mut record = state.dir.users.get(id).map(|u| u.record.clone()).unwrap();
            record.display_name = Some(format!("Renamed {id}"));
            state.dir.upsert_user(record);
        }
        let members: Vec<String> = state.dir.groups[&group].members.iter().take(10).cloned().collect();
        for member in members {
            state.dir.set_member(&group, &member, false);
        }
        drop(state);
        case
    }

    async fn sync(&self, retry: RetryPolicy) -> RunStatus {
        self.sync_reading(retry, false).await
    }

    /// After the first run a sync follows the delta links; `full_read` reads everything.
    async fn sync_reading(&self, retry: RetryPolicy, full_read: bool) -> RunStatus {
        self.deployment.sync_with(OffsetDateTime::now_utc(), retry, full_read).await.status
    }

    async fn directory(&self) -> Directory {
        let users = self.deployment.store.users(UserFilter::default()).await.unwrap();
        users
            .iter()
            .map(|u| {
                (
                    u.azure_object_id.clone().unwrap_or_default(),
                    u.profile.display_name.clone().unwrap_or_default(),
                    u.status.as_str().to_owned(),
                    u.disabled_reason.map(|r| r.as_str().to_owned()),
                )
            })
            .collect()
    }

    fn inject(&self, faults: serde_json::Value) {
        let faults: Faults = serde_json::from_value(faults).unwrap();
        self.deployment.sim.sim.lock().set_faults(faults);
    }
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        budget: Duration::from_secs(3),
        request_timeout: Duration::from_millis(800),
        max_attempts: 8,
        ..RetryPolicy::default()
    }
}

enum Expect {
    SameAsFaultFree,
    /// And the run fell back to a full read.
    SameAfterFullRead,
    FailsChangingNobody(&'static str),
}

/// How the faulty run reads: the changes since the first run (delta), or everything.
#[derive(Clone, Copy, PartialEq)]
enum Reading {
    Delta,
    Full,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_in_the_fault_free_directory_or_a_failed_run_that_changed_nobody() {
    let reference = Case::new().await;
    assert_eq!(reference.sync(RetryPolicy::default()).await, RunStatus::Succeeded);
    let expected = reference.directory().await;
    assert!(expected.iter().any(|u| u.2 == "disabled"), "the change disables some users");

    use Expect::*;
    use Reading::*;
    let cases: Vec<(&str, serde_json::Value, Reading, Expect)> = vec![
        (
            "throttling storm, honoured",
            json!({"throttle": {"share": 0.5, "retryAfter": "0.05"}}),
            Delta,
            SameAsFaultFree,
        ),
        (
            "throttling beyond the retry budget",
            json!({"throttle": {"share": 1.0, "retryAfter": "1"}}),
            Delta,
            FailsChangingNobody("throttled"),
        ),
        (
            "500 on a later page",
            json!({"rules": [{"path": "/v1.0/users", "contains": "$skiptoken", "count": 2, "status": 500}]}),
            Full,
            SameAsFaultFree,
        ),
        (
            "503 with Retry-After",
            json!({"rules": [{"path": "/v1.0/", "count": 3, "status": 503, "retryAfter": "0.1"}]}),
            Delta,
            SameAsFaultFree,
        ),
        (
            "504 on every group read",
            json!({"rules": [{"path": "/v1.0/groups", "count": 1000, "status": 504}]}),
            Delta,
            FailsChangingNobody("service_error"),
        ),
        (
            "504 on every group read of a full read",
            json!({"rules": [{"path": "/v1.0/groups", "count": 1000, "status": 504}]}),
            Full,
            FailsChangingNobody("service_error"),
        ),
        (
            "connection reset mid-answer",
            json!({"rules": [{"path": "/v1.0/users", "contains": "$skiptoken", "count": 2, "reset": true}]}),
            Full,
            SameAsFaultFree,
        ),
        (
            "connection reset on every page",
            json!({"rules": [{"path": "/v1.0/users", "count": 1000, "reset": true}]}),
            Delta,
            FailsChangingNobody("unreachable"),
        ),
        ("answers slower than the timeout", json!({"latencyMs": 1200}), Delta, FailsChangingNobody("timeout")),
        (
            "the token expires in the middle of the sync",
            json!({"tokenLifetimeSecs": 1, "latencyMs": 150}),
            Full,
            SameAsFaultFree,
        ),
        (
            "delta links reset by Graph (410 resyncRequired)",
            json!({"resetDeltaTokens": true}),
            Delta,
            SameAfterFullRead,
        ),
        (
            "delta link expired (400 syncStateNotFound)",
            json!({"rules": [{"path": "/v1.0/groups/delta", "contains": "$deltatoken", "count": 1, "status": 400,
                              "body": {"error": {"code": "syncStateNotFound", "message": "The sync state generation is not found."}}}]}),
            Delta,
            SameAfterFullRead,
        ),
    ];
    for (name, faults, reading, expect) in cases {
        let case = Case::new().await;
        let before = case.directory().await;
        case.inject(faults);
        let status = case.sync_reading(quick_retry(), reading == Full).await;
        case.inject(json!({}));
        let after = case.directory().await;
        let runs = case.deployment.store.runs(10).await.unwrap();
        match expect {
            SameAsFaultFree | SameAfterFullRead => {
                assert_eq!(status, RunStatus::Succeeded, "{name}: {:?}", runs[0].error);
                assert_eq!(after, expected, "{name}: the same directory as without the fault");
                let read = runs[0].totals.read_mode;
                if matches!(expect, SameAfterFullRead) || reading == Full {
                    assert_eq!(read, Some(ReadMode::Full), "{name}");
                } else {
                    assert_eq!(read, Some(ReadMode::Incremental), "{name}");
                }
            }
            FailsChangingNobody(kind) => {
                assert_eq!(status, RunStatus::Failed, "{name}");
                assert_eq!(runs[0].error.as_ref().map(|e| e.kind.as_str()), Some(kind), "{name}: {:?}", runs[0].error);
                assert_eq!(after, before, "{name}: a failed run changes nobody");
                // And once Graph behaves again, the next run converges.
                assert_eq!(case.sync(RetryPolicy::default()).await, RunStatus::Succeeded, "{name}");
                assert_eq!(case.directory().await, expected, "{name}: converges after the fault");
            }
        }
    }
}

/// An administrator acts while a run waits on Graph between reading the directory and
/// writing: the run must not write back the rows it read. Graph throttles the run's direct
/// read of the users due for removal (after it read the directory) for one second, and in
/// that second an administrator disables a user the run is about to update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrators_disable_made_while_a_run_plans_is_never_undone_by_it() {
    let tenant =
        generate(&GenerateSpec { users: 20, groups: 0, disabled_percent: 0, seed: 5, ..GenerateSpec::default() });
    let patch = SettingsPatch {
        auto_disable: Some(true),
        auto_remove: Some(true),
        remove_after_days: Some("14".into()),
        threshold_count: Some("100000".into()),
        ..SettingsPatch::default()
    };
    let deployment = TestApp::builder(tenant).configured(patch).start().await;
    let start = OffsetDateTime::now_utc();
    assert_eq!(deployment.sync(start).await.status, RunStatus::Succeeded);
    let ids: Vec<String> = deployment.sim.sim.lock().dir.users.keys().cloned().collect();
    let (leaving, renamed) = (&ids[0], &ids[1]);
    {
        let mut state = deployment.sim.sim.lock();
        let mut record = state.dir.users[leaving].record.clone();
        record.account_enabled = false;
        state.dir.upsert_user(record);
    }
    assert_eq!(deployment.sync(start + time::Duration::hours(1)).await.counts.disabled, 1);
    {
        let mut state = deployment.sim.sim.lock();
        let mut record = state.dir.users[renamed].record.clone();
        record.display_name = Some("Renamed While Planned".into());
        state.dir.upsert_user(record);
        // The removal is confirmed with Graph first: that request waits a second.
        state.set_faults(
            serde_json::from_value(
                json!({"rules": [{"path": "/v1.0/$batch", "count": 1, "status": 429, "retryAfter": "1"}]}),
            )
            .unwrap(),
        );
    }
    let batches = |sim: &graph_sim::Sim| {
        sim.lock().stats.requests.iter().filter(|((route, _), _)| route.contains("batch")).map(|(_, n)| *n).sum::<u64>()
    };
    let seen = batches(&deployment.sim.sim);
    let later = start + time::Duration::days(15);
    let run = {
        let (store, sim) = (deployment.store.clone(), deployment.sim.clone());
        let retry = RetryPolicy::default();
        let deployment = &deployment;
        let sync = deployment.sync_with(later, retry, false);
        let admin = async move {
            while batches(&sim.sim) == seen {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let user = store.users_by_azure_ids(std::slice::from_ref(renamed)).await.unwrap().remove(0);
            store.set_status_by_admin(&user.id.to_string(), false, "admin:a@contoso.com", later).await.unwrap();
        };
        tokio::join!(sync, admin).0
    };
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.counts.removed, 1, "the rest of the plan is applied");
    let users = deployment.store.users_by_azure_ids(&[leaving.clone(), renamed.clone()]).await.unwrap();
    assert_eq!(users.len(), 1, "the user due for removal is removed");
    let user = &users[0];
    assert_eq!(
        (user.status.as_str(), user.disabled_reason.map(|r| r.as_str())),
        ("disabled", Some("admin")),
        "the administrator's disable stands"
    );
    assert_eq!(user.profile.display_name.as_deref(), Some("Renamed While Planned"), "and Entra's rename is applied");
    let last =
        deployment.store.events(0, 1000).await.unwrap().into_iter().rev().find(|e| e.user_id == user.id.to_string());
    assert_eq!(last.map(|e| e.payload["status"].clone()), Some(json!("disabled")), "no event says the user is active");
}
