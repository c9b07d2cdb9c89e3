//! A deployment as an attacker meets it: the web server, an administrator, API tokens of
//! every scope, and a listener that records whatever reaches it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_sim::{AppRecord, GroupRecord, SecretRecord, TenantFile, UserRecord};
use reqwest::{Method, StatusCode};
use safegpt::web::WebConfig;
use safegpt_core::SettingsPatch;
use safegpt_graph::RetryPolicy;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, TestApp, WebClient};

pub const ADMIN: &str = "admin@example.org";
pub const PASSWORD: &str = "correct horse battery staple";
pub const STAFF: &str = "f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2";
pub const SECRET: &str = "tki8Q~00Qlki5wkrfSECRETVALUE";

pub fn user_id(n: u32) -> String {
    format!("a0000000-0000-4000-8000-{n:012}")
}

pub fn user(n: u32) -> UserRecord {
    UserRecord {
        id: user_id(n),
        user_principal_name: format!("user{n}@contoso.onmicrosoft.com"),
        mail: Some(format!("user{n}@contoso.com")),
        display_name: Some(format!("User {n}")),
        given_name: None,
        surname: None,
        job_title: None,
        department: None,
        account_enabled: true,
        user_type: "Member".into(),
        other_mails: Vec::new(),
    }
}

/// `users` users, all members of the group Staff.
pub fn tenant(users: u32) -> TenantFile {
    TenantFile {
        tenant_id: "4e4dff32-6150-4c66-ae0d-cfc4ab7bc4d1".into(),
        domain: "contoso.onmicrosoft.com".into(),
        apps: vec![AppRecord {
            client_id: "4f6847d7-fd3f-4b2d-9740-79170e634de5".into(),
            roles: vec!["User.Read.All".to_owned(), "Group.Read.All".to_owned()],
            secrets: vec![SecretRecord { value: SECRET.into(), expires: datetime!(2028-11-29 0:00 UTC) }],
        }],
        users: (1..=users).map(user).collect(),
        groups: vec![GroupRecord {
            id: STAFF.into(),
            display_name: "Staff".into(),
            members: (1..=users).map(user_id).collect(),
        }],
        devices: Vec::new(),
        service_principals: Vec::new(),
        fidelity: None,
        faults: None,
    }
}

/// A deployment scoped to Staff, auto-disable on, threshold 2 users and 20 %; an
/// administrator and one API token per scope.
pub struct Site {
    pub app: TestApp,
    pub web: WebClient,
    pub admin_token: String,
    pub sync_token: String,
    pub read_token: String,
}

impl std::ops::Deref for Site {
    type Target = WebClient;

    fn deref(&self) -> &WebClient {
        &self.web
    }
}

impl Site {
    pub async fn start(t: TenantFile) -> Site {
        let patch = SettingsPatch {
            group_ids: Some(vec![STAFF.into()]),
            auto_disable: Some(true),
            threshold_count: Some("2".into()),
            threshold_percent: Some("20".into()),
            ..SettingsPatch::default()
        };
        let retry = RetryPolicy { budget: Duration::from_secs(3), ..RetryPolicy::default() };
        let config = WebConfig { scheduler: false, ..WebConfig::default() };
        let app = TestApp::builder(t).configured(patch).retry(retry).web(config).start().await;
        support::create_admin(&app.store, ADMIN, PASSWORD).await;
        let token = |scope: &'static str| {
            let store = std::sync::Arc::clone(&app.store);
            async move { store.create_api_token(scope, scope, "test", OffsetDateTime::now_utc()).await.unwrap().1 }
        };
        let (admin_token, sync_token, read_token) = (token("admin").await, token("sync").await, token("read").await);
        let web = WebClient::new(app.base().to_owned(), SECRET.to_owned());
        Site { app, web, admin_token, sync_token, read_token }
    }

    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(&self.admin_token, method, path, body).await
    }

    /// Starts a sync over the API and waits for its end.
    pub async fn sync(&self) -> Value {
        self.web.sync(&self.admin_token).await
    }

    pub async fn wait_for_run(&self, run_id: &str) -> Value {
        self.web.wait_for_run(&self.admin_token, run_id).await
    }

    /// Waits until no run is `running` (a confirmation's run runs in the background).
    pub async fn settle(&self) {
        for _ in 0..600 {
            let (_, runs) = self.api(Method::GET, "/api/v1/runs", None).await;
            if runs.as_array().unwrap().iter().all(|r| r["status"] != "running") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("a run did not finish");
    }

    /// The users by status.
    pub async fn count(&self, status: &str) -> usize {
        let (_, page) = self.api(Method::GET, &format!("/api/v1/users?status={status}&limit=500"), None).await;
        page["users"].as_array().unwrap().len()
    }

    pub fn set_member(&self, n: u32, member: bool) {
        self.app.sim.sim.lock().dir.set_member(STAFF, &user_id(n), member);
    }

    /// Logs in through the form: the session cookie and the page's CSRF token.
    pub async fn login(&self) -> (String, String) {
        self.log_in(ADMIN, PASSWORD).await
    }
}

/// A listener on 127.0.0.1 that records every request that reaches it and answers each with
/// `answer` (a whole HTTP response).
pub struct Recorder {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub async fn start(answer: String) -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    let mut received = Vec::new();
                    // Headers, then (briefly) whatever body follows them.
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buffer)).await
                    {
                        if n == 0 {
                            break;
                        }
                        received.extend_from_slice(&buffer[..n]);
                    }
                    seen.lock().unwrap().push(String::from_utf8_lossy(&received).into_owned());
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Recorder { url, requests }
    }

    /// Answers every request with a redirect to `to`.
    pub async fn redirecting(status: u16, to: &str) -> Recorder {
        Recorder::start(format!(
            "HTTP/1.1 {status} Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
        .await
    }

    pub async fn failing() -> Recorder {
        Recorder::start("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into())
            .await
    }

    pub fn received(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
