//! A decision on a held run is one atomic act, and it approves only what was shown.

use reqwest::{Method, StatusCode};

use crate::common::{Site, tenant};

fn confirm(id: &str) -> String {
    format!("/api/v1/runs/{id}/confirm")
}

fn cancel(id: &str) -> String {
    format!("/api/v1/runs/{id}/cancel")
}

/// Members `from..=to` leave Staff and a sync runs: it must be held.
async fn held_after_leaving(site: &Site, from: u32, to: u32) -> String {
    for n in from..=to {
        site.set_member(n, false);
    }
    let held = site.sync().await;
    assert_eq!(held["run"]["status"], "held", "{held}");
    held["run"]["id"].as_str().unwrap().to_owned()
}

async fn everyone_back(site: &Site, users: u32) {
    for n in 1..=users {
        site.set_member(n, true);
    }
    let run = site.sync().await;
    assert_eq!(run["run"]["status"], "succeeded", "{run}");
    assert_eq!(site.count("active").await, users as usize);
}

#[tokio::test]
async fn confirm_and_cancel_at_the_same_instant_only_the_winner_acts() {
    let site = Site::start(tenant(10)).await;
    site.sync().await;
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let held = held_after_leaving(&site, 1, 10).await;
        let (confirm_path, cancel_path) = (confirm(&held), cancel(&held));
        let (confirmed, cancelled) = tokio::join!(
            site.call(&site.sync_token, Method::POST, &confirm_path, None),
            site.call(&site.sync_token, Method::POST, &cancel_path, None),
        );
        site.settle().await;
        let disabled = site.count("disabled").await;
        let (_, detail) = site.api(Method::GET, &format!("/api/v1/runs/{held}"), None).await;
        match (confirmed.0.is_success(), cancelled.0.is_success()) {
            (true, false) => {
                assert_eq!(cancelled.0, StatusCode::CONFLICT, "{}", cancelled.1);
                assert_eq!(detail["run"]["status"], "confirmed");
                assert_eq!(disabled, 10, "the confirmation applied what it approved");
            }
            (false, true) => {
                assert_eq!(confirmed.0, StatusCode::CONFLICT, "{}", confirmed.1);
                assert_eq!(detail["run"]["status"], "cancelled");
                assert_eq!(disabled, 0, "a cancelled run disables nobody: {}", confirmed.1);
            }
            other => panic!("exactly one decision wins: {other:?} {} {}", confirmed.1, cancelled.1),
        }
        outcomes.push(disabled);
        everyone_back(&site, 10).await;
    }
    eprintln!("disabled per round: {outcomes:?}");
}

#[tokio::test]
async fn a_confirmation_approves_the_reviewed_plan_and_holds_anything_larger() {
    let site = Site::start(tenant(20)).await;
    site.sync().await;

    // Reviewed: 5 disables. One more leaves before the confirmation: under the threshold, applied.
    let held = held_after_leaving(&site, 1, 5).await;
    site.set_member(6, false);
    let (status, answer) = site.api(Method::POST, &confirm(&held), None).await;
    assert!(status.is_success(), "{answer}");
    site.settle().await;
    assert_eq!(site.count("disabled").await, 6);
    everyone_back(&site, 20).await;

    // Reviewed: 5 disables. Then everyone leaves: confirming the old plan applies nothing and
    // holds again, for the administrator to see what is new.
    let held = held_after_leaving(&site, 1, 5).await;
    for n in 6..=20 {
        site.set_member(n, false);
    }
    let (status, answer) = site.api(Method::POST, &confirm(&held), None).await;
    assert!(status.is_success(), "{answer}");
    let follow_up = answer["run_id"].as_str().unwrap().to_owned();
    site.settle().await;
    assert_eq!(site.count("disabled").await, 0, "nothing beyond the reviewed plan without a new decision");
    let (_, runs) = site.api(Method::GET, "/api/v1/runs", None).await;
    let newest = &runs[0];
    assert_eq!(newest["status"], "held", "{runs}");
    assert!(newest["error"]["message"].as_str().unwrap().contains("beyond the 5 users approved"), "{newest}");
    assert_eq!(newest["id"], follow_up.as_str(), "the confirmation's own run is held again");

    // A later applied run retires every older held run: it can no longer be confirmed.
    let again = newest["id"].as_str().unwrap().to_owned();
    everyone_back(&site, 20).await;
    let (_, detail) = site.api(Method::GET, &format!("/api/v1/runs/{again}"), None).await;
    assert_eq!(detail["run"]["status"], "superseded");
    let (status, answer) = site.api(Method::POST, &confirm(&again), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(site.count("disabled").await, 0);
}

#[tokio::test]
async fn the_cli_shows_what_it_approves_and_needs_a_held_run() {
    let site = Site::start(tenant(10)).await;
    site.sync().await;
    let output = site.app.command(&["sync", "--confirm-mass-changes", "--json"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no held run"), "{output:?}");
    assert_eq!(site.count("disabled").await, 0);

    let held = held_after_leaving(&site, 1, 4).await;
    // A dry run would spend the decision on nothing: refused, the held run still waiting.
    let output = site.app.command(&["sync", "--confirm-mass-changes", "--dry-run"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"), "{output:?}");
    let request = safegpt_app::SyncNow {
        trigger: safegpt_app::Trigger::Api,
        dry_run: true,
        confirm: Some(held.parse().unwrap()),
        full_read: false,
        at: None,
    };
    let refused = site.app.app.sync_now(&safegpt_app::Principal::Operator, request).await.unwrap_err();
    assert_eq!(refused.kind(), "invalid", "the application refuses it for every adapter: {refused}");
    let (_, detail) = site.api(Method::GET, &format!("/api/v1/runs/{held}"), None).await;
    assert_eq!(detail["run"]["status"], "held");

    let output = site.app.command(&["sync", "--confirm-mass-changes", "--json"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&held), "{stderr}");
    for n in 1..=4 {
        assert!(stderr.contains(&format!("user{n}@contoso.com")), "the approval lists user{n}: {stderr}");
    }
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((out["status"].as_str(), out["counts"]["disabled"].as_u64()), (Some("succeeded"), Some(4)));
    let (_, detail) = site.api(Method::GET, &format!("/api/v1/runs/{held}"), None).await;
    assert_eq!(detail["run"]["status"], "confirmed");
    assert_eq!(detail["run"]["resolution"]["by"], "cli");
    assert_eq!(detail["run"]["resolution"]["follow_up_run"], out["run_id"], "the run it started is noted");
}
