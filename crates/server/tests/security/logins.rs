//! Logins, the one-time setup link and redirects: what a stranger at the login page tries.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use safegpt::web::{AppState, Server, WebConfig};
use safegpt_app::{Operations, Platform};
use safegpt_store::{Sealer, Store};

use crate::common::{ADMIN, PASSWORD, Site, tenant};
use crate::support::TestApp;

async fn wrong_login(client: &reqwest::Client, base: &str) -> StatusCode {
    let form = [("email", ADMIN), ("password", "not the password at all"), ("next", "/")];
    client.post(format!("{base}/login")).form(&form).send().await.unwrap().status()
}

#[tokio::test]
async fn sixty_concurrent_guesses_lock_like_sequential_ones() {
    let site = Site::start(tenant(1)).await;
    let guesses = (0..60).map(|_| wrong_login(&site.client, site.app.base()));
    let statuses = futures_util::future::join_all(guesses).await;
    let verified = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(verified + refused, 60, "{statuses:?}");
    assert!(verified <= 5, "at most the 5 free attempts reach the password check: {verified}");
    // Now locked: even the right password waits.
    let form = [("email", ADMIN), ("password", PASSWORD), ("next", "/")];
    let right = site.client.post(site.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_lock_is_shared_by_every_instance_on_the_database() {
    let site = Site::start(tenant(1)).await;
    let sealer = Sealer::load(None, site.app.dir.path()).unwrap();
    let store = Arc::new(Store::open(&site.app.db_url, sealer).await.unwrap());
    let other = AppState::new(
        Platform::new(store, Operations::default()),
        WebConfig { scheduler: false, ..WebConfig::default() },
    );
    let server = Server::bind("127.0.0.1:0", other).await.unwrap();
    let other_base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    for _ in 0..5 {
        assert_eq!(wrong_login(&site.client, site.app.base()).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(wrong_login(&site.client, &other_base).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_setup_link_creates_one_administrator_however_many_use_it_at_once() {
    let deployment =
        TestApp::builder(tenant(1)).web(WebConfig { scheduler: false, ..WebConfig::default() }).start().await;
    *deployment.web.as_ref().unwrap().state.setup_token.lock().unwrap() = Some("one-time".into());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let setups = (0..6).map(|n| {
        let email = format!("first{n}@example.org");
        let form = [("token", "one-time".to_owned()), ("email", email), ("password", PASSWORD.to_owned())];
        client.post(format!("{}/setup", deployment.base())).form(&form).send()
    });
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(setups).await.into_iter().map(|r| r.unwrap().status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count(), 1, "{statuses:?}");
    assert_eq!(deployment.store.admin_count().await.unwrap(), 1);
}

#[tokio::test]
async fn the_setup_link_goes_to_stdout_and_never_to_the_log() {
    let deployment = TestApp::builder(tenant(1)).start().await;
    let mut child = deployment
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("SAFEGPT_LOG", "debug")
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("/setup?token="), "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stderr.contains("token="), "the link is a credential; the log has: {stderr}");
}

#[tokio::test]
async fn redirect_targets_never_leave_the_site_nor_fail() {
    let site = Site::start(tenant(2)).await;
    site.sync().await;
    let hostile = [
        "/%09/evil.example",
        "%2F%0D%0ASet-Cookie:%20a=b",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
    ];
    for back in hostile {
        let response = site.client.get(site.url(&format!("/lang?to=nl&back={back}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{back}");
        assert_eq!(response.headers()["location"], "/", "{back}");
    }
    let decoded = ["/\t/evil.example", "/\r\nSet-Cookie: a=b", "//evil.example", "/\\evil.example", "/ok\u{0}"];
    for next in decoded {
        let form = [("email", ADMIN), ("password", PASSWORD), ("next", next)];
        let response = site.client.post(site.url("/login")).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(response.headers()["location"], "/", "{next:?}");
    }
    let (cookie, csrf) = site.login().await;
    let (_, users) = site.api(Method::GET, "/api/v1/users", None).await;
    let user = users["users"][0]["id"].as_str().unwrap();
    for (i, back) in decoded.iter().enumerate() {
        let action = if i % 2 == 0 { "disable" } else { "enable" };
        let form = [("csrf", csrf.as_str()), ("back", back)];
        let response = site
            .client
            .post(site.url(&format!("/users/{user}/{action}")))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{back:?}");
        assert_eq!(response.headers()["location"], "/", "{back:?}");
    }
}
