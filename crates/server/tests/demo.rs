//! The README's quick start: `safegpt demo` serves a configured, not yet synced deployment
//! whose printed credentials log in, and whose rocket syncs the simulated tenant.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_demo_prints_working_credentials_and_syncs_on_the_rocket() {
    // The demo makes its data directory under the temp dir: keep it inside this test's.
    let tmp = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_safegpt"))
        .env("TMPDIR", tmp.path())
        .args(["demo", "--listen", "127.0.0.1:0", "--users", "80"])
        .env_remove("SAFEGPT_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while printed.len() < 6 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
        printed.push(line);
    }
    let value = |key: &str| {
        let line = printed.iter().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("{printed:?}"));
        line.trim_start().trim_start_matches(key).split_whitespace().next().unwrap().to_owned()
    };
    let base = printed[0].rsplit(' ').next().unwrap().to_owned();
    let (email, password) = (value("log in as"), value("password"));
    assert!(base.starts_with("http://127.0.0.1:"), "{printed:?}");

    safegpt_graph::install_crypto_provider();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client
        .post(format!("{base}/login"))
        .form(&[("email", email.as_str()), ("password", password.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), reqwest::StatusCode::SEE_OTHER, "the printed credentials log in");
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let get = |path: &str| client.get(format!("{base}{path}")).header("cookie", &cookie).send();

    let settings: serde_json::Value = get("/api/v1/settings").await.unwrap().json().await.unwrap();
    assert_eq!(settings["active"], true);
    assert_eq!(settings["client_secret_set"], true);
    assert_eq!(settings["group_ids"].as_array().unwrap().len(), 1);
    let users: serde_json::Value = get("/api/v1/users").await.unwrap().json().await.unwrap();
    assert_eq!(users["total"], 0, "not yet synced");

    let page = get("/settings/integrations").await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let rocket = client
        .post(format!("{base}/settings/integrations/azure/sync"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(rocket.status(), reqwest::StatusCode::SEE_OTHER);
    let run_page = rocket.headers()["location"].to_str().unwrap().to_owned();
    let run_id = run_page.trim_start_matches("/runs/");
    for _ in 0..100 {
        let detail: serde_json::Value = get(&format!("/api/v1/runs/{run_id}")).await.unwrap().json().await.unwrap();
        if detail["run"]["status"] != "running" {
            assert_eq!(detail["run"]["status"], "succeeded", "{detail}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let users: serde_json::Value = get("/api/v1/users").await.unwrap().json().await.unwrap();
    assert!(users["total"].as_u64().unwrap() > 10, "{users}");
    child.kill().await.unwrap();
}
