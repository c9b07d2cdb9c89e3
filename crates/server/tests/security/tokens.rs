//! API tokens do what their scope allows and nothing more.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Site, tenant};

#[tokio::test]
async fn each_scope_allows_what_it_names_and_nothing_more() {
    let site = Site::start(tenant(3)).await;
    site.sync().await;
    let (_, users) = site.api(Method::GET, "/api/v1/users", None).await;
    let user = users["users"][0]["id"].as_str().unwrap().to_owned();
    let disable = format!("/api/v1/users/{user}/disable");
    let writes_of_admins: [(Method, &str, Option<serde_json::Value>); 5] = [
        (Method::PUT, "/api/v1/settings", Some(json!({"seats": 10}))),
        (Method::POST, "/api/v1/tokens", Some(json!({"name": "escalate", "scope": "admin"}))),
        (Method::POST, &disable, None),
        (Method::PUT, "/api/v1/integrations/google_search", Some(json!({"enabled": true}))),
        (Method::DELETE, "/api/v1/tokens/0190c3a2-0000-7000-8000-000000000000", None),
    ];
    let syncing: [(Method, &str); 3] = [
        (Method::POST, "/api/v1/syncs"),
        (Method::POST, "/api/v1/settings/preview"),
        (Method::POST, "/api/v1/settings/test"),
    ];
    let reads =
        ["/api/v1/runs", "/api/v1/users", "/api/v1/settings", "/api/v1/events", "/api/v1/audit", "/api/v1/tokens"];

    for path in reads {
        let (status, body) = site.call(&site.read_token, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "read may GET {path}: {body}");
    }
    let metrics = site.client.get(site.url("/metrics")).bearer_auth(&site.read_token).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK, "a metrics token reads /metrics");
    for (method, path) in &syncing {
        let (status, body) = site.call(&site.read_token, method.clone(), path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "read may not {method} {path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("scope"), "{body}");
    }
    for token in [&site.read_token, &site.sync_token] {
        for (method, path, body) in &writes_of_admins {
            let (status, answer) = site.call(token, method.clone(), path, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        }
    }
    assert_eq!(site.count("disabled").await, 0, "no refused request changed anything");
    let (_, tokens) = site.api(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(tokens.as_array().unwrap().len(), 3, "no token was made by a refused request");

    // sync: runs, confirmations and cancellations; admin: everything.
    let (status, body) = site.call(&site.sync_token, Method::POST, "/api/v1/syncs", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    site.wait_for_run(body["run_id"].as_str().unwrap()).await;
    let cancel = format!("/api/v1/runs/{}/cancel", body["run_id"].as_str().unwrap());
    let (status, body) = site.call(&site.sync_token, Method::POST, &cancel, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "allowed, but the run is not held: {body}");
    let (status, body) = site.api(Method::POST, &disable, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_token_is_made_with_its_scope_by_the_api_and_the_cli() {
    let site = Site::start(tenant(1)).await;
    let (status, made) =
        site.api(Method::POST, "/api/v1/tokens", Some(json!({"name": "prometheus", "scope": "read"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["token"]["scope"], "read");
    let value = made["value"].as_str().unwrap();
    let (status, _) = site.call(value, Method::PUT, "/api/v1/settings", Some(json!({"seats": 1}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = site.api(Method::POST, "/api/v1/tokens", Some(json!({"name": "x", "scope": "root"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (_, made) = site.api(Method::POST, "/api/v1/tokens", Some(json!({"name": "old script"}))).await;
    assert_eq!(made["token"]["scope"], "admin", "the default keeps what tokens could do before scopes");

    let output = site.app.command(&["tokens", "create", "--name", "ci", "--scope", "sync"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let listed = site.app.command(&["tokens", "list", "--json"]).output().await.unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let ci = listed.as_array().unwrap().iter().find(|t| t["name"] == "ci").unwrap();
    assert_eq!(ci["scope"], "sync");
    let output = site.app.command(&["tokens", "create", "--name", "bad", "--scope", "root"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("scope"), "{output:?}");
}
