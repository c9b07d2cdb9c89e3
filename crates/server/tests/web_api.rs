//! The REST API and the pages' security, driven over HTTP against the real server and
//! graph-sim, both in this process on 127.0.0.1 port 0.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use graph_sim::{GenerateSpec, generate};
use reqwest::{Method, StatusCode};
use safegpt::web::{AppState, WebConfig};
use safegpt_core::SettingsPatch;
use safegpt_graph::RetryPolicy;
use serde_json::{Value, json};
use support::{TestApp, WebClient};
use time::OffsetDateTime;

const ADMIN: &str = "admin@example.org";
const PASSWORD: &str = "correct horse battery staple";

/// A deployment with its web server, as a browser or a program sees it.
struct Site {
    web: WebClient,
    token: String,
    groups: Vec<String>,
    state: AppState,
    deployment: TestApp,
}

impl std::ops::Deref for Site {
    type Target = WebClient;

    fn deref(&self) -> &WebClient {
        &self.web
    }
}

impl Site {
    /// A configured deployment (not yet synced) with one administrator and one API token.
    async fn spawn() -> Site {
        // The scheduler would plan runs behind the tests' backs; the scheduler test turns it on.
        Self::spawn_with(WebConfig { scheduler: false, ..WebConfig::default() }, true).await
    }

    async fn spawn_with(config: WebConfig, with_admin: bool) -> Site {
        let tenant = generate(&GenerateSpec { users: 60, groups: 6, nesting: 2, seed: 7, ..GenerateSpec::default() });
        let largest = tenant.largest_group().unwrap();
        let mut groups: Vec<String> = tenant.groups.iter().map(|g| g.id.clone()).collect();
        groups.retain(|g| *g != largest);
        groups.insert(0, largest);
        let patch = SettingsPatch {
            group_ids: Some(vec![groups[0].clone()]),
            auto_disable: Some(true),
            ..SettingsPatch::default()
        };
        let retry = RetryPolicy { budget: Duration::from_secs(5), ..RetryPolicy::default() };
        let deployment = TestApp::builder(tenant).configured(patch).retry(retry).web(config).start().await;
        let mut token = String::new();
        if with_admin {
            support::create_admin(&deployment.store, ADMIN, PASSWORD).await;
            token =
                deployment.store.create_api_token("tests", "admin", "test", OffsetDateTime::now_utc()).await.unwrap().1;
        }
        let state = deployment.web.as_ref().unwrap().state.clone();
        let web = WebClient::new(deployment.base().to_owned(), deployment.secret());
        Site { web, token, groups, state, deployment }
    }

    /// An API call with the token; returns the status and the JSON body (Null when empty).
    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(&self.token, method, path, body).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.api(Method::GET, path, None).await
    }

    async fn wait_for_run(&self, run_id: &str) -> Value {
        self.web.wait_for_run(&self.token, run_id).await
    }

    async fn sync(&self) -> Value {
        self.web.sync(&self.token).await
    }

    /// Logs in through the login form; returns the session cookie and the page CSRF token.
    async fn login(&self) -> (String, String) {
        self.log_in(ADMIN, PASSWORD).await
    }
}

/// Every route of the API, as the OpenAPI document must list it.
const ROUTES: [(&str, &str); 33] = [
    ("get", "/api/v1/settings"),
    ("put", "/api/v1/settings"),
    ("post", "/api/v1/settings/test"),
    ("post", "/api/v1/settings/preview"),
    ("post", "/api/v1/syncs"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{id}"),
    ("get", "/api/v1/runs/{id}/changes"),
    ("post", "/api/v1/runs/{id}/confirm"),
    ("post", "/api/v1/runs/{id}/cancel"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("post", "/api/v1/users/{id}/enable"),
    ("post", "/api/v1/users/{id}/disable"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/integrations"),
    ("put", "/api/v1/integrations/{key}"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/platform/orgs"),
    ("post", "/api/v1/platform/orgs"),
    ("post", "/api/v1/platform/orgs/{slug}/disable"),
    ("post", "/api/v1/platform/orgs/{slug}/enable"),
    ("post", "/api/v1/platform/orgs/{slug}/sync"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    ("post", "/api/v1/webhooks/{id}/test"),
    ("get", "/api/v1/notifications"),
];

fn concrete(path: &str) -> String {
    path.replace("{id}", "0190c3a2-0000-7000-8000-000000000000")
        .replace("{key}", "openzaak")
        .replace("{slug}", "default")
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_and_every_route_refuses_strangers() {
    let app = Site::spawn().await;
    let (status, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected, "the OpenAPI document and the route list differ");

    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        for auth in [None, Some("Bearer sgpt_not-a-token"), Some("Basic YWRtaW46YWRtaW4=")] {
            let mut request = app.client.request(method.clone(), app.url(&concrete(path))).json(&json!({}));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
    for path in ["/api/v1/openapi.json", "/api/docs/"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // Every route with an id answers a malformed id with a 4xx that names the field.
    for (method, path) in ROUTES.iter().filter(|(_, p)| p.contains("{id}")) {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, error) = app.api(method.clone(), &path.replace("{id}", "not-an-id"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}");
        assert_eq!(error["error"]["field"], "id", "{method} {path}: {error}");
    }
    let (status, error) = app.get("/api/v1/nonexistent").await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    // The API browser's assets are built in (nothing from a CDN) and served to administrators.
    let docs = app.client.get(app.url("/api/docs/")).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui") && !html.contains("https://"), "{html}");
    // Pages redirect strangers to the login page; health and assets are public.
    for page in
        ["/settings/integrations", "/settings/integrations/azure", "/users", "/runs", "/audit", "/settings/tokens"]
    {
        let response = app.client.get(app.url(page)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?next="), "{page}");
    }
    for public in ["/healthz", "/login", "/static/app.css", "/static/app.js"] {
        assert_eq!(app.client.get(app.url(public)).send().await.unwrap().status(), StatusCode::OK, "{public}");
    }
    // A bearer token opens the API, not the pages.
    let page = app.client.get(app.url("/users")).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn settings_are_validated_per_field_and_the_secret_is_write_only() {
    let app = Site::spawn().await;
    let (_, before) = app.get("/api/v1/settings").await;
    assert_eq!(before["client_secret_set"], true);
    assert!(before.get("client_secret").is_none());

    let (status, error) = app
        .api(Method::PUT, "/api/v1/settings", Some(json!({"tenant_id": "not-a-guid", "remove_after_days": 0})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["code"], "invalid");
    assert_eq!(error["error"]["field"], "tenant_id");
    let fields: Vec<&str> =
        error["error"]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["tenant_id", "remove_after_days"]);
    let (_, after) = app.get("/api/v1/settings").await;
    assert_eq!(after, before, "nothing is saved when a field is invalid");

    for (body, field) in [
        (json!({"group_ids": ["Sales"]}), "group_ids"),
        (json!({"remove_after_days": "ten"}), "remove_after_days"),
        (json!({"active": "yes"}), "active"),
        (json!({"tenant": "x"}), "tenant"),
        (json!({"login_url": "http://example.org"}), "login_url"),
        (json!({"client_secret": "line\nbreak"}), "client_secret"),
    ] {
        let (status, error) = app.api(Method::PUT, "/api/v1/settings", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    let response = app
        .client
        .put(app.url("/api/v1/settings"))
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("active=true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, saved) = app
        .api(
            Method::PUT,
            "/api/v1/settings",
            Some(json!({"remove_after_days": 30, "auto_remove": true, "client_secret": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["remove_after_days"], 30);
    assert_eq!(saved["client_secret_set"], true, "an empty secret keeps the stored one");
    let (_, test) = app.api(Method::POST, "/api/v1/settings/test", None).await;
    assert_eq!(test["ok"], true, "{test}");

    let (status, _) =
        app.api(Method::PUT, "/api/v1/settings", Some(json!({"client_secret": "wrong-secret-value"}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, test) = app.api(Method::POST, "/api/v1/settings/test", None).await;
    assert_eq!(test["ok"], false);
    assert_eq!(test["checks"][0]["kind"], "secret_invalid", "{test}");
    let (_, audit) = app.get("/api/v1/audit?limit=50").await;
    let audit_text = audit.to_string();
    assert!(audit_text.contains("[redacted]") && !audit_text.contains("wrong-secret-value"));
}

#[tokio::test]
async fn preview_sync_users_and_the_single_flight_rule() {
    let app = Site::spawn().await;
    let (status, preview) = app.api(Method::POST, "/api/v1/settings/preview", None).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["run"]["status"], "dry_run");
    let creates = preview["run"]["counts"]["created"].as_u64().unwrap();
    assert!(creates > 0);
    assert!(preview["changes"].as_array().unwrap().iter().all(|c| c["action"] == "create"));
    let (_, page) = app.get("/api/v1/users").await;
    assert_eq!(page["total"], 0, "a preview changes no user");

    // Slow Graph down so that the first run is still reading when the second press comes.
    app.deployment.sim.sim.lock().set_faults(serde_json::from_value(json!({"latencyMs": 150})).unwrap());
    let (status, first) = app.api(Method::POST, "/api/v1/syncs", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, second) = app.api(Method::POST, "/api/v1/syncs", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{second}");
    assert_eq!(second["error"]["code"], "already_running");
    let (status, _) = app.api(Method::POST, "/api/v1/settings/preview", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a preview waits for its turn too");
    let (_, running) = app.get(first["url"].as_str().unwrap().trim_start_matches(&app.base)).await;
    assert_eq!(running["run"]["status"], "running");
    assert!(running["progress"].is_object(), "live progress while running: {running}");
    let done = app.wait_for_run(first["run_id"].as_str().unwrap()).await;
    app.deployment.sim.sim.lock().set_faults(Default::default());
    assert_eq!(done["run"]["status"], "succeeded");
    assert_eq!(done["run"]["trigger"], "api");
    assert_eq!(done["run"]["counts"]["created"].as_u64(), Some(creates));
    assert!(done["run"]["duration_ms"].as_u64().unwrap() > 0);
    assert_eq!(done["run"]["breakdown"][0]["count"].as_u64(), Some(creates), "{}", done["run"]["breakdown"]);
    // The audit log holds the run once, linked to its change list, not a row per created user.
    let run_id = first["run_id"].as_str().unwrap();
    let (_, audit) = app.get("/api/v1/audit?limit=500").await;
    let rows = audit.as_array().unwrap();
    let applied: Vec<&Value> = rows.iter().filter(|a| a["action"] == "sync.applied").collect();
    assert_eq!(applied.len(), 1, "{audit}");
    assert_eq!(
        (applied[0]["target"].as_str(), applied[0]["details"]["created"].as_u64()),
        (Some(run_id), Some(creates))
    );
    assert!(!rows.iter().any(|a| a["action"] == "user.created"), "{audit}");
    let (cookie, _) = app.login().await;
    let page = app.client.get(app.url("/audit")).header("cookie", &cookie).send().await.unwrap();
    assert!(page.text().await.unwrap().contains(&format!("<a href=\"/runs/{run_id}\">{run_id}</a>")));

    // The run's changes, a page at a time: every change once, in order, and nothing more.
    let run_id = first["run_id"].as_str().unwrap();
    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let (status, page) = app.get(&format!("/api/v1/runs/{run_id}/changes?limit=7&cursor={cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let changes = page["changes"].as_array().unwrap();
        assert!(changes.len() <= 7);
        seen.extend(changes.iter().map(|c| c["seq"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (0..creates as i64).collect::<Vec<_>>());
    let email = done["changes"][3]["email"].as_str().unwrap().to_uppercase();
    let (_, found) =
        app.get(&format!("/api/v1/runs/{run_id}/changes?action=create&reason=new_in_scope&q={email}")).await;
    assert_eq!(found["changes"].as_array().unwrap().len(), 1, "{found}");
    let (_, none) = app.get(&format!("/api/v1/runs/{run_id}/changes?action=remove")).await;
    assert_eq!((none["changes"].as_array().unwrap().len(), &none["next_cursor"]), (0, &Value::Null));
    for (query, field) in [
        ("action=delete", "action"),
        ("reason=because", "reason"),
        ("cursor=-4", "cursor"),
        ("cursor=x", "cursor"),
        ("limit=1001", "limit"),
        ("colour=red", "colour"),
    ] {
        let (status, error) = app.get(&format!("/api/v1/runs/{run_id}/changes?{query}")).await;
        assert!(status.is_client_error(), "{query}: {status}");
        assert_eq!(error["error"]["field"], field, "{query}: {error}");
    }
    let (status, _) = app.get(&concrete("/api/v1/runs/{id}/changes")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown run is not an empty list");

    let (_, page) = app.get("/api/v1/users?limit=5").await;
    assert_eq!(page["total"].as_u64(), Some(creates));
    assert_eq!(page["users"].as_array().unwrap().len(), 5);
    let user = page["users"][0].clone();
    let needle = user["email"].as_str().unwrap().split('@').next().unwrap().to_uppercase();
    let (_, found) = app.get(&format!("/api/v1/users?q={needle}&source=entra&status=active")).await;
    assert!(found["users"].as_array().unwrap().iter().any(|u| u["id"] == user["id"]), "{found}");
    let (_, none) = app.get("/api/v1/users?source=local").await;
    assert_eq!(none["total"], 0);

    let id = user["id"].as_str().unwrap();
    let (status, disabled) = app.api(Method::POST, &format!("/api/v1/users/{id}/disable"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((disabled["status"].as_str(), disabled["disabled_reason"].as_str()), (Some("disabled"), Some("admin")));
    app.sync().await;
    let (_, still) = app.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(still["status"], "disabled", "the sync does not undo an administrator's disable");
    let (_, enabled) = app.api(Method::POST, &format!("/api/v1/users/{id}/enable"), None).await;
    assert_eq!(enabled["status"], "active");

    for (path, field) in [
        ("/api/v1/users?status=gone", "status"),
        ("/api/v1/users?limit=0", "limit"),
        ("/api/v1/users?limit=many", "limit"),
        ("/api/v1/users?colour=red", "colour"),
        ("/api/v1/runs?limit=501", "limit"),
        ("/api/v1/audit?limit=-1", "limit"),
        ("/api/v1/users/not-an-id", "id"),
        ("/api/v1/runs/42", "id"),
    ] {
        let (status, error) = app.get(path).await;
        assert!(status.is_client_error(), "{path}: {status}");
        assert_eq!(error["error"]["field"], field, "{path}: {error}");
    }
    let (status, error) = app.get(&concrete("/api/v1/users/{id}")).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _) = app.api(Method::POST, &concrete("/api/v1/users/{id}/enable"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, runs) = app.get("/api/v1/runs?limit=10").await;
    assert!(runs.as_array().unwrap().len() >= 3);
}

#[tokio::test]
async fn a_held_run_is_confirmed_or_cancelled_by_an_administrator() {
    let app = Site::spawn().await;
    app.api(Method::PUT, "/api/v1/settings", Some(json!({"threshold_count": 1, "threshold_percent": 1}))).await;
    let first = app.sync().await;
    let synced = first["run"]["counts"]["created"].as_u64().unwrap();
    // Scope to a small group: most users leave the scope at once.
    let (status, _) =
        app.api(Method::PUT, "/api/v1/settings", Some(json!({"group_ids": [app.groups.last().unwrap()]}))).await;
    assert_eq!(status, StatusCode::OK);
    let held = app.sync().await;
    assert_eq!(held["run"]["status"], "held", "{held}");
    assert_eq!(held["run"]["error"]["kind"], "deletion_threshold");
    let would_disable = held["run"]["counts"]["disabled"].as_u64().unwrap();
    assert!(would_disable > 1 && would_disable < synced);
    let (_, page) = app.get("/api/v1/users?status=disabled").await;
    assert_eq!(page["total"], 0, "a held run changes nobody");

    let held_id = held["run"]["id"].as_str().unwrap();
    let (status, error) =
        app.api(Method::POST, &format!("/api/v1/runs/{}/confirm", first["run"]["id"].as_str().unwrap()), None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "only held runs");
    let (status, started) = app.api(Method::POST, &format!("/api/v1/runs/{held_id}/confirm"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let applied = app.wait_for_run(started["run_id"].as_str().unwrap()).await;
    assert_eq!(applied["run"]["status"], "succeeded");
    assert_eq!(applied["run"]["counts"]["disabled"].as_u64(), Some(would_disable));
    let (_, page) = app.get("/api/v1/users?status=disabled").await;
    assert_eq!(page["total"].as_u64(), Some(would_disable));
    let (_, resolved) = app.get(&format!("/api/v1/runs/{held_id}")).await;
    assert_eq!(resolved["run"]["status"], "confirmed");
    assert_eq!(resolved["run"]["resolution"]["by"], "token:tests");
    assert_eq!(resolved["run"]["resolution"]["follow_up_run"], started["run_id"]);
    let (status, _) = app.api(Method::POST, &format!("/api/v1/runs/{held_id}/confirm"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a decision is taken once");

    // Back to the large group: everyone returns; then an empty group holds again and is cancelled.
    app.api(Method::PUT, "/api/v1/settings", Some(json!({"group_ids": [app.groups[0].clone()]}))).await;
    assert_eq!(app.sync().await["run"]["status"], "succeeded");
    app.api(Method::PUT, "/api/v1/settings", Some(json!({"group_ids": [app.groups.last().unwrap()]}))).await;
    let held = app.sync().await;
    let held_id = held["run"]["id"].as_str().unwrap();
    let (status, cancelled) = app.api(Method::POST, &format!("/api/v1/runs/{held_id}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (_, page) = app.get("/api/v1/users?status=disabled").await;
    assert_eq!(page["total"], 0, "a cancelled run changes nobody");
}

#[tokio::test]
async fn integrations_tokens_and_audit() {
    let app = Site::spawn().await;
    let (_, list) = app.get("/api/v1/integrations").await;
    let keys: Vec<&str> = list.as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["office_addin", "azure_user_sync", "google_search", "openzaak"]);
    assert!(list.as_array().unwrap().iter().all(|i| i["license"] == "included"));
    let (status, openzaak) =
        app.api(Method::PUT, "/api/v1/integrations/openzaak", Some(json!({"enabled": true}))).await;
    assert_eq!((status, openzaak["enabled"].as_bool()), (StatusCode::OK, Some(true)));
    assert!(openzaak["updated_at"].is_string());
    let (_, azure) =
        app.api(Method::PUT, "/api/v1/integrations/azure_user_sync", Some(json!({"enabled": false}))).await;
    assert_eq!(azure["enabled"], false);
    let (status, error) = app.api(Method::POST, "/api/v1/syncs", None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("inactive")));
    let (status, _) = app.api(Method::PUT, "/api/v1/integrations/teams", Some(json!({"enabled": true}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = app.api(Method::PUT, "/api/v1/integrations/openzaak", Some(json!({"enabled": "on"}))).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("enabled")));

    let (status, error) = app.api(Method::POST, "/api/v1/tokens", Some(json!({"name": "  "}))).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")));
    let (status, created) = app.api(Method::POST, "/api/v1/tokens", Some(json!({"name": "backup job"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let value = created["value"].as_str().unwrap();
    assert!(value.starts_with("sgpt_") && value.len() > 40);
    let as_new = |path: &str| app.client.get(app.url(path)).bearer_auth(value).send();
    assert_eq!(as_new("/api/v1/settings").await.unwrap().status(), StatusCode::OK);
    let (_, tokens) = app.get("/api/v1/tokens").await;
    assert!(!tokens.to_string().contains(value), "token values are never listed");
    let id = created["token"]["id"].as_str().unwrap();
    let (status, revoked) = app.api(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(as_new("/api/v1/settings").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let (status, _) = app.api(Method::DELETE, &concrete("/api/v1/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, audit) = app.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["integration.switched", "settings.updated", "token.created", "token.revoked"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert_eq!(audit[0]["actor"], "token:tests");
}

#[tokio::test]
async fn sessions_csrf_and_login_throttling() {
    let app = Site::spawn().await;
    let (cookie, csrf) = app.login().await;
    let with_cookie = |method: Method, path: &str| app.client.request(method, app.url(path)).header("cookie", &cookie);

    assert_eq!(with_cookie(Method::GET, "/api/v1/settings").send().await.unwrap().status(), StatusCode::OK);
    let body = json!({"seats": 10});
    let response = with_cookie(Method::PUT, "/api/v1/settings").json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "a session's API write needs its CSRF token");
    let response =
        with_cookie(Method::PUT, "/api/v1/settings").header("x-csrf-token", &csrf).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // A form without the token, or from another site, changes nothing.
    let response = with_cookie(Method::POST, "/settings/integrations/openzaak/switch")
        .form(&[("enabled", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = with_cookie(Method::POST, "/settings/integrations/openzaak/switch")
        .header("origin", "https://evil.example")
        .form(&[("enabled", "true"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, list) = app.get("/api/v1/integrations").await;
    assert_eq!(list[3]["enabled"], false);
    let response = with_cookie(Method::POST, "/settings/integrations/openzaak/switch")
        .header("origin", app.base.as_str())
        .form(&[("enabled", "true"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, list) = app.get("/api/v1/integrations").await;
    assert_eq!(list[3]["enabled"], true);

    // Ahead of the secret's expiry, every page carries the warning.
    let soon = (OffsetDateTime::now_utc().date() + time::Duration::days(5)).to_string();
    app.api(Method::PUT, "/api/v1/settings", Some(json!({"secret_expires": soon}))).await;
    let page = with_cookie(Method::GET, "/runs").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"banner\"") && page.contains("expires in 5 day(s)"), "{page}");

    // Logging out ends the session on the server, not only in the browser.
    let response = with_cookie(Method::POST, "/logout").form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(with_cookie(Method::GET, "/api/v1/settings").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let attempt = |password: &'static str| {
        app.client.post(app.url("/login")).form(&[("email", ADMIN), ("password", password)]).send()
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong password!").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let locked = attempt(PASSWORD).await.unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits after 5 failures");
    let unknown = app.client.post(app.url("/login")).form(&[("email", "nobody@example.org"), ("password", "x")]);
    assert_eq!(unknown.send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS, "the address is throttled too");
}

#[tokio::test]
async fn without_an_administrator_only_the_setup_link_opens_the_door() {
    let config =
        WebConfig { public_url: Some("https://safegpt.example.org".into()), scheduler: false, ..WebConfig::default() };
    let app = Site::spawn_with(config, false).await;
    *app.state.setup_token.lock().unwrap() = Some("one-time-token".into());
    let response = app.client.get(app.url("/setup?token=guess")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let form = [("token", "one-time-token"), ("email", ADMIN), ("password", "short")];
    let response = app.client.post(app.url("/setup")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "passwords have at least 12 characters");
    let form = [("token", "one-time-token"), ("email", ADMIN), ("password", PASSWORD)];
    let response = app.client.post(app.url("/setup")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "behind https the session cookie is Secure: {cookie}");
    let response = app.client.post(app.url("/setup")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "the link works once");
    assert_eq!(app.state.store.admin_count().await.unwrap(), 1);
}

#[tokio::test]
async fn the_scheduler_runs_the_sync_when_due_and_plans_the_next_run() {
    let app = Site::spawn_with(WebConfig::default(), true).await;
    let next_run_at = || async {
        let (_, settings) = app.get("/api/v1/settings").await;
        settings["next_run_at"]
            .as_str()
            .map(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap())
    };
    let mut planned = None;
    for _ in 0..50 {
        planned = next_run_at().await;
        if planned.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let planned = planned.expect("the scheduler plans the first run once the integration is active");
    let ahead = planned - OffsetDateTime::now_utc();
    assert!(ahead > time::Duration::minutes(14) && ahead < time::Duration::minutes(16), "{ahead}");
    let (_, runs) = app.get("/api/v1/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 0, "activation alone does not sync at once");

    app.state
        .store
        .for_org(safegpt_store::DEFAULT_ORG)
        .set_next_run_at(OffsetDateTime::now_utc() - time::Duration::seconds(1))
        .await
        .unwrap();
    let mut scheduled = None;
    for _ in 0..100 {
        let (_, runs) = app.get("/api/v1/runs").await;
        if let Some(run) = runs.as_array().unwrap().iter().find(|r| r["status"] != "running") {
            scheduled = Some(run.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = scheduled.expect("the due run started within a few seconds");
    assert_eq!((run["trigger"].as_str(), run["status"].as_str()), (Some("schedule"), Some("succeeded")));
    let ahead = next_run_at().await.unwrap() - OffsetDateTime::now_utc();
    assert!(ahead > time::Duration::minutes(14), "the next run is an interval later: {ahead}");

    // Switched off: a due time starts nothing.
    app.api(Method::PUT, "/api/v1/settings", Some(json!({"active": false}))).await;
    app.state
        .store
        .for_org(safegpt_store::DEFAULT_ORG)
        .set_next_run_at(OffsetDateTime::now_utc() - time::Duration::seconds(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (_, runs) = app.get("/api/v1/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "no scheduled run while inactive");
    let (_, settings) = app.get("/api/v1/settings").await;
    assert!(settings["next_run_at"].is_null(), "no next run is shown while inactive");
}

#[tokio::test]
async fn retention_tells_a_follower_what_it_missed_and_keeps_a_runs_counts() {
    let app = Site::spawn().await;
    let done = app.sync().await;
    let run_id = done["run"]["id"].as_str().unwrap().to_owned();
    let created = done["run"]["counts"]["created"].as_u64().unwrap();
    let (_, first) = app.get("/api/v1/events?limit=3").await;
    let behind = first["next_cursor"].as_i64().unwrap();

    // Half a year on, with the default periods (events 30 days, lists and audit 180).
    let later = OffsetDateTime::now_utc() + time::Duration::days(200);
    let org = app.state.platform.scope(&safegpt_app::Principal::Operator, None).await.unwrap();
    let pruned = org.apply_retention(later).await.unwrap();
    assert_eq!((pruned.events, pruned.run_changes), (created + 1, created), "users and the run's end: {pruned:?}");
    assert_eq!(org.apply_retention(later).await.unwrap().events, 0, "nothing twice");

    let (status, gone) = app.get(&format!("/api/v1/events?after={behind}")).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (StatusCode::GONE, Some("gone")), "{gone}");
    let message = gone["error"]["message"].as_str().unwrap();
    assert!(message.contains("30 days") && message.contains("/api/v1/users"), "{message}");
    let (status, fresh) = app.get("/api/v1/events").await;
    assert_eq!(status, StatusCode::OK, "a new follower starts from what is left");
    assert!(fresh["events"].as_array().unwrap().is_empty());
    let resume = fresh["next_cursor"].as_i64().unwrap();
    assert!(resume > behind, "the cursor moves past what was removed: {fresh}");
    let user = app.get("/api/v1/users?limit=1").await.1["users"][0]["id"].as_str().unwrap().to_owned();
    app.api(Method::POST, &format!("/api/v1/users/{user}/disable"), None).await;
    let (status, next) = app.get(&format!("/api/v1/events?after={resume}")).await;
    assert_eq!((status, next["events"][0]["kind"].as_str()), (StatusCode::OK, Some("user.disabled")), "{next}");

    let (status, gone) = app.get(&format!("/api/v1/runs/{run_id}/changes")).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (StatusCode::GONE, Some("gone")), "{gone}");
    let (_, run) = app.get(&format!("/api/v1/runs/{run_id}")).await;
    assert!(run["run"]["changes_removed_at"].is_string(), "{run}");
    assert!(run["changes"].as_array().unwrap().is_empty());
    assert_eq!(run["run"]["breakdown"][0]["count"].as_u64(), Some(created), "the counts outlive the list");

    let (_, audit) = app.get("/api/v1/audit?limit=50").await;
    let applied: Vec<&Value> =
        audit.as_array().unwrap().iter().filter(|a| a["action"] == "retention.applied").collect();
    assert_eq!(applied.len(), 1, "one row per pass that removed something: {audit}");
    assert_eq!(applied[0]["details"]["removed"]["events"].as_u64(), Some(created + 1));
    assert_eq!(applied[0]["details"]["kept_days"]["events"].as_u64(), Some(30));
}

#[tokio::test]
async fn events_follow_the_directory_in_order_and_metrics_describe_it() {
    let app = Site::spawn().await;
    let (_, empty) = app.get("/api/v1/events").await;
    assert_eq!((empty["events"].as_array().unwrap().len(), empty["next_cursor"].as_i64()), (0, Some(0)));
    let created = app.sync().await["run"]["counts"]["created"].as_u64().unwrap();

    // Read the outbox in pages of 7, as a follower would.
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let (status, page) = app.get(&format!("/api/v1/events?after={cursor}&limit=7")).await;
        assert_eq!(status, StatusCode::OK);
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            assert_eq!(page["next_cursor"].as_i64(), Some(cursor), "an empty page keeps the cursor");
            break;
        }
        assert!(events.len() <= 7);
        cursor = page["next_cursor"].as_i64().unwrap();
        assert_eq!(cursor, events.last().unwrap()["seq"].as_i64().unwrap());
        seen.extend(events);
    }
    // The run's users, then its end.
    let end = seen.pop().unwrap();
    assert_eq!((end["kind"].as_str(), &end["user_id"]), (Some("sync.succeeded"), &Value::Null), "{end}");
    assert_eq!(
        (end["payload"]["status"].as_str(), end["payload"]["created"].as_u64()),
        (Some("succeeded"), Some(created))
    );
    assert_eq!(seen.len() as u64, created);
    assert!(seen.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()), "in order");
    assert!(seen.iter().all(|e| e["kind"] == "user.created" && e["payload"]["user_id"] == e["user_id"]));

    let user = seen[0]["user_id"].as_str().unwrap().to_owned();
    app.api(Method::POST, &format!("/api/v1/users/{user}/disable"), None).await;
    let (_, page) = app.get(&format!("/api/v1/events?after={cursor}")).await;
    let event = &page["events"][0];
    assert_eq!((event["kind"].as_str(), event["user_id"].as_str()), (Some("user.disabled"), Some(user.as_str())));
    assert!(event["payload"]["changed"].as_array().unwrap().iter().any(|f| f == "status"), "{event}");
    for (path, field) in
        [("/api/v1/events?after=-1", "after"), ("/api/v1/events?limit=0", "limit"), ("/api/v1/events?after=x", "after")]
    {
        let (status, error) = app.get(path).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{path}"
        );
    }

    // Metrics: the directory as Prometheus sees it.
    app.api(Method::PUT, "/api/v1/settings", Some(json!({"seats": 500, "secret_expires": "2099-01-01"}))).await;
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let response = app.client.get(app.url("/metrics")).bearer_auth(&app.token).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let value = |line_start: &str| -> f64 {
        let line =
            text.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("{line_start} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("safegpt_sync_runs_total{status=\"succeeded\"}"), 1.0);
    assert_eq!(value("safegpt_sync_run_duration_seconds_count"), 1.0);
    assert_eq!(value("safegpt_sync_run_duration_seconds_bucket{le=\"+Inf\"}"), 1.0);
    assert_eq!(value("safegpt_users{status=\"active\"}"), (created - 1) as f64);
    assert_eq!(value("safegpt_users{status=\"disabled\"}"), 1.0);
    assert_eq!(value("safegpt_seats_used"), created as f64);
    assert_eq!(value("safegpt_seats_total"), 500.0);
    assert!(value("safegpt_graph_requests_total{status=\"200\"}") >= 3.0);
    assert!(value("safegpt_secret_expiry_seconds") > 365.0 * 86400.0);
    let last = value("safegpt_last_successful_sync_timestamp_seconds");
    assert!((OffsetDateTime::now_utc().unix_timestamp() as f64 - last).abs() < 60.0);
    assert!(!text.contains(&app.secret));

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "readiness is public, like health");
}
