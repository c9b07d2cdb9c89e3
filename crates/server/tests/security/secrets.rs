//! The client secret goes only where it was entered for: never to changed endpoints, never
//! along a redirect.

use std::sync::Arc;

use graph_sim::{SimOptions, SimServer};
use reqwest::{Method, StatusCode};
use safegpt_app::{Principal, SettingsChange};
use safegpt_core::SettingsPatch;
use serde_json::json;

use crate::common::{Recorder, SECRET, Site, tenant};
use crate::support::TestApp;

#[tokio::test]
async fn moving_the_endpoints_clears_the_stored_secret() {
    let site = Site::start(tenant(3)).await;
    let stranger = Recorder::failing().await;
    let moved = json!({"login_url": stranger.url, "graph_url": stranger.url});

    // Tokens that may not change settings cannot move them at all.
    for token in [&site.read_token, &site.sync_token] {
        let (status, answer) = site.call(token, Method::PUT, "/api/v1/settings", Some(moved.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    }

    let (status, answer) = site.api(Method::PUT, "/api/v1/settings", Some(moved.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((answer["secret_cleared"].as_bool(), answer["client_secret_set"].as_bool()), (Some(true), Some(false)));
    let (status, answer) = site.api(Method::POST, "/api/v1/settings/test", None).await;
    assert!(status.is_client_error(), "{status} {answer}");
    let (status, _) = site.api(Method::POST, "/api/v1/syncs", None).await;
    assert!(status.is_client_error());
    assert!(stranger.received().is_empty(), "nothing, let alone the secret, went to the new host");

    // A secret entered with the change goes there: it was entered for it.
    let with_secret = json!({"login_url": stranger.url, "graph_url": stranger.url, "client_secret": "entered-for-it"});
    let (status, answer) = site.api(Method::PUT, "/api/v1/settings", Some(with_secret)).await;
    assert_eq!((status, answer["secret_cleared"].as_bool()), (StatusCode::OK, Some(false)), "{answer}");
    site.api(Method::POST, "/api/v1/settings/test", None).await;
    let received = stranger.received().concat();
    assert!(received.contains("entered-for-it") && !received.contains(SECRET), "{received}");
    let (_, audit) = site.api(Method::GET, "/api/v1/audit", None).await;
    assert!(audit.to_string().contains("[cleared]"), "the audit log says the secret was cleared");

    // The command line says so too.
    let back = site.app.sim.base_url.clone();
    let output =
        site.app.command(&["azure", "configure", "--login-url", &back, "--graph-url", &back]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("client secret was cleared"), "{stderr}");
    let (_, settings) = site.api(Method::GET, "/api/v1/settings", None).await;
    assert_eq!(settings["client_secret_set"], false, "{settings}");
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_refused_with_the_secret_kept_home() {
    let site = Site::start(tenant(3)).await;
    let elsewhere = Recorder::failing().await;
    for status in [301, 302, 307, 308] {
        let redirecting = Recorder::redirecting(status, &format!("{}/token", elsewhere.url)).await;
        let graph = site.app.sim.base_url.clone();
        let change = json!({"login_url": redirecting.url, "graph_url": graph, "client_secret": SECRET});
        assert_eq!(site.api(Method::PUT, "/api/v1/settings", Some(change)).await.0, StatusCode::OK);
        let (_, result) = site.api(Method::POST, "/api/v1/settings/test", None).await;
        assert_eq!(result["checks"][0]["kind"], "redirected", "{status}: {result}");
        assert_eq!(redirecting.received().len(), 1, "one try, no retry of a redirect");
        assert!(elsewhere.received().is_empty(), "{status}: the form was re-posted elsewhere");
    }
}

#[tokio::test]
async fn a_redirect_from_graph_is_refused_with_the_access_token_kept_home() {
    let elsewhere = Recorder::failing().await;
    let redirecting = Recorder::redirecting(302, &format!("{}/v1.0/users", elsewhere.url)).await;
    // graph-sim issues tokens for the redirecting host as its Graph URL.
    let options = SimOptions { public_graph_url: Some(redirecting.url.clone()), ..SimOptions::default() };
    let sim = Arc::new(SimServer::start("127.0.0.1:0", tenant(3), options).await.unwrap());
    let deployment = TestApp::on(&sim).configured(SettingsPatch::default()).start().await;
    let patch = SettingsPatch { graph_url: Some(redirecting.url.clone()), ..SettingsPatch::default() };
    let change = SettingsChange { patch, client_secret: Some(deployment.secret()) };
    deployment.app.configure(&Principal::Operator, change).await.unwrap();
    let result = deployment.app.test_connection(&Principal::Operator).await.unwrap();
    assert!(result.checks[0].ok, "the token came from graph-sim: {:?}", result.checks[0]);
    assert_eq!(result.checks[1].kind.as_deref(), Some("redirected"), "{:?}", result.checks[1]);
    assert!(!redirecting.received().is_empty());
    assert!(elsewhere.received().is_empty(), "the access token followed the redirect");
    deployment.shutdown().await;
    Arc::try_unwrap(sim).ok().expect("one owner").shutdown().await;
}
