//! Many organisations on one deployment: two organisations synced from Entra, an API token
//! of each, a platform token, their administrators and a platform operator, trying to reach
//! across — every route of the OpenAPI document, the pages, `/metrics` and every command of
//! the CLI. Runs on SQLite, and on PostgreSQL with `SAFEGPT_TEST_DATABASE_URL`.

mod support;

use std::collections::BTreeMap;

use graph_sim::{GenerateSpec, generate};
use reqwest::{Method, StatusCode};
use safegpt::web::WebConfig;
use safegpt_core::SettingsPatch;
use safegpt_store::{AdminRole, DEFAULT_ORG, Store};
use serde_json::{Value, json};
use support::{TestApp, WebClient};
use time::OffsetDateTime;

const PASSWORD: &str = "correct horse battery staple";
const OPERATOR: &str = "operator@platform.example";
const ACME_ADMIN: &str = "admin@acme.example";
const DEFAULT_ADMIN: &str = "admin@default.example";

/// Two organisations on one deployment, both synced from the simulated tenant.
struct Platform {
    web: WebClient,
    deployment: TestApp,
    default_token: String,
    acme_token: String,
    platform_token: String,
}

impl Platform {
    async fn start() -> Platform {
        let tenant = generate(&GenerateSpec { users: 12, groups: 2, seed: 3, ..GenerateSpec::default() });
        let config = WebConfig { scheduler: false, ..WebConfig::default() };
        let deployment = TestApp::builder(tenant).configured(SettingsPatch::default()).web(config).start().await;
        let now = OffsetDateTime::now_utc();
        let store = &deployment.store;
        store.create_org("acme", "Acme", "nl", "test", now).await.unwrap();
        let acme = store.for_org("acme");
        support::configure(&deployment.sim, &acme, SettingsPatch::default()).await;
        let role = |org: Option<&str>, platform| AdminRole { org: org.map(str::to_owned), platform };
        support::create_admin_as(store, OPERATOR, PASSWORD, role(None, true)).await;
        support::create_admin_as(store, DEFAULT_ADMIN, PASSWORD, role(Some(DEFAULT_ORG), false)).await;
        support::create_admin_as(store, ACME_ADMIN, PASSWORD, role(Some("acme"), false)).await;
        let default_token = store.create_api_token("default-ci", "admin", "test", now).await.unwrap().1;
        let acme_token = acme.create_api_token("acme-ci", "admin", "test", now).await.unwrap().1;
        let platform_token = store.create_platform_token("platform-ops", "admin", "test", now).await.unwrap().1;
        let secret = secrecy::SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let id = uuid::Uuid::now_v7().to_string();
        let events = ["user.created".to_owned()];
        store.create_webhook(&id, "https://hooks.default.example/in", &events, &secret, "test", now).await.unwrap();
        let web = WebClient::new(deployment.base().to_owned(), deployment.secret());
        let platform = Platform { web, deployment, default_token, acme_token, platform_token };
        platform.web.sync(&platform.default_token).await;
        platform.web.sync(&platform.acme_token).await;
        platform
    }

    fn org(&self, slug: &str) -> Store {
        self.deployment.store.for_org(slug)
    }
}

/// What identifies the rows of one organisation: its users' and runs' ids, its tokens' ids
/// and names. (Both organisations sync the same tenant, so e-mails are the same in both.)
async fn footprint(store: &Store) -> Vec<String> {
    let mut marks: Vec<String> =
        store.users(Default::default()).await.unwrap().iter().map(|u| u.id.to_string()).collect();
    marks.extend(store.runs(100).await.unwrap().iter().map(|r| r.id.to_string()));
    for t in store.api_tokens().await.unwrap() {
        marks.extend([t.id.to_string(), t.name]);
    }
    for w in store.webhooks().await.unwrap() {
        marks.extend([w.id, w.url]);
    }
    assert!(marks.len() > 10, "the organisation has rows to look for: {marks:?}");
    marks
}

/// Everything of an organisation a request could change, to compare before and after.
async fn state_of(store: &Store) -> Value {
    let users: BTreeMap<String, String> = store
        .users(Default::default())
        .await
        .unwrap()
        .iter()
        .map(|u| (u.id.to_string(), format!("{:?}", u.status)))
        .collect();
    let tokens: Vec<String> =
        store.api_tokens().await.unwrap().iter().map(|t| format!("{} {:?}", t.id, t.revoked_at)).collect();
    let runs: Vec<String> = store.runs(100).await.unwrap().iter().map(|r| format!("{} {:?}", r.id, r.status)).collect();
    let settings = serde_json::to_value(store.settings().await.unwrap().0).unwrap();
    let webhooks: Vec<String> = store.webhooks().await.unwrap().iter().map(|w| format!("{} {}", w.id, w.url)).collect();
    json!({"users": users, "tokens": tokens, "runs": runs, "settings": settings, "webhooks": webhooks})
}

/// A path of the OpenAPI document with its parameters filled with `victim`'s ids.
fn aimed_at(path: &str, run: &str, user: &str, token: &str, webhook: &str) -> String {
    let id = if path.starts_with("/api/v1/runs") {
        run
    } else if path.starts_with("/api/v1/users") {
        user
    } else if path.starts_with("/api/v1/webhooks") {
        webhook
    } else {
        token
    };
    path.replace("{id}", id).replace("{key}", "openzaak").replace("{slug}", DEFAULT_ORG)
}

#[tokio::test]
async fn no_route_of_the_api_reaches_another_organisation() {
    let p = Platform::start().await;
    let default = p.org(DEFAULT_ORG);
    let victim_marks = footprint(&default).await;
    let before = state_of(&default).await;
    let run = default.runs(1).await.unwrap()[0].id.to_string();
    let user = default.users(Default::default()).await.unwrap()[0].id.to_string();
    let token = default.api_tokens().await.unwrap()[0].id.to_string();
    let webhook = default.webhooks().await.unwrap()[0].id.clone();

    let (status, doc) = p.web.call(&p.acme_token, Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut tried = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let target = aimed_at(path, &run, &user, &token, &webhook);
            let body = (method != Method::GET).then(|| json!({}));
            let (status, answer) = p.web.call(&p.acme_token, method.clone(), &target, body).await;
            tried += 1;
            let text = answer.to_string();
            // A "not found" may repeat the id that was asked for: that tells the asker nothing.
            if let Some(leak) = victim_marks.iter().find(|m| text.contains(m.as_str()) && !target.contains(m.as_str()))
            {
                panic!("{method} {target} with acme's token shows default's '{leak}': {text}");
            }
            if path.contains("{id}") {
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {target} with acme's token: {answer}");
            }
            if path.starts_with("/api/v1/platform") {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {target}: an organisation's token: {answer}");
            }
        }
    }
    assert!(tried >= 33, "every route was tried: {tried}");
    // Whatever acme's token wrote (settings, syncs, tokens, switches), it wrote to acme.
    let acme_run = p.org("acme").runs(1).await.unwrap()[0].clone();
    if acme_run.status == safegpt_store::RunStatus::Running {
        p.web.wait_for_run(&p.acme_token, &acme_run.id.to_string()).await;
    }
    assert_eq!(state_of(&default).await, before, "default is as it was");

    // A platform token answers for the platform, never for an organisation's users.
    let (status, answer) = p.web.call(&p.platform_token, Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("platform token"), "{answer}");
    let (status, orgs) = p.web.call(&p.platform_token, Method::GET, "/api/v1/platform/orgs", None).await;
    assert_eq!(status, StatusCode::OK, "{orgs}");
    let slugs: Vec<&str> = orgs.as_array().unwrap().iter().map(|o| o["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", DEFAULT_ORG]);
    let acme = &orgs[0];
    assert_eq!((acme["active"].as_bool(), acme["last_run"]["status"].as_str()), (Some(true), Some("succeeded")));
    assert_eq!(acme["seats"]["used"].as_u64(), Some(p.org("acme").seats_used().await.unwrap()));
    let text = orgs.to_string();
    assert!(!text.contains('@'), "the platform's view shows no user: {text}");

    // Events and metrics answer for the token's organisation.
    let (_, events) = p.web.call(&p.default_token, Method::GET, "/api/v1/events?limit=1000", None).await;
    let acme_marks = footprint(&p.org("acme")).await;
    assert!(!events["events"].as_array().unwrap().is_empty());
    assert!(acme_marks.iter().all(|m| !events.to_string().contains(m.as_str())), "default's feed has no acme row");
    let metrics = |token: &str| {
        let request = p.web.client.get(p.web.url("/metrics")).bearer_auth(token.to_owned());
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let own = metrics(&p.acme_token).await;
    assert!(own.contains("safegpt_users{status=\"active\"}") && !own.contains("org="), "{own}");
    assert!(!own.contains("safegpt_graph_requests_total"), "the process's Graph traffic is every organisation's");
    let all = metrics(&p.platform_token).await;
    for org in ["acme", DEFAULT_ORG] {
        assert!(all.contains(&format!("safegpt_users{{org=\"{org}\",status=\"active\"}}")), "{all}");
    }
    p.deployment.shutdown().await;
}

#[tokio::test]
async fn administrators_see_their_organisation_and_operators_open_one_on_the_record() {
    let p = Platform::start().await;
    let web = &p.web;
    let page = |cookie: &str, path: &str| {
        let request = web.client.get(web.url(path)).header("cookie", cookie.to_owned());
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let default_marks = footprint(&p.org(DEFAULT_ORG)).await;
    let default_run = p.org(DEFAULT_ORG).runs(1).await.unwrap()[0].id.to_string();

    // Acme's administrator: acme's pages only.
    let (acme_cookie, acme_csrf) = web.log_in(ACME_ADMIN, PASSWORD).await;
    for path in [
        "/users",
        "/runs",
        "/audit",
        "/settings/tokens",
        "/settings/integrations",
        "/settings/webhooks",
        "/settings/notifications",
    ] {
        let (status, html) = page(&acme_cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(default_marks.iter().all(|m| !html.contains(m.as_str())), "{path} shows default's rows");
        assert!(!html.contains("href=\"/platform\""), "{path}: no platform link for an organisation's administrator");
    }
    assert_eq!(page(&acme_cookie, &format!("/runs/{default_run}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(page(&acme_cookie, "/platform").await.0, StatusCode::FORBIDDEN);
    let open = web
        .client
        .post(web.url("/platform/orgs/default/open"))
        .header("cookie", &acme_cookie)
        .form(&[("csrf", acme_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::FORBIDDEN, "an organisation's administrator cannot open another");

    // The platform operator: every organisation's health, no users, until one is opened.
    let form = [("email", OPERATOR), ("password", PASSWORD), ("next", "/users")];
    let login = web.client.post(web.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(login.headers()["location"], "/platform", "an operator of no organisation starts there");
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let (status, html) = page(&cookie, "/platform").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-org=\"acme\"") && html.contains("data-org=\"default\""), "{html}");
    assert!(!html.contains("@default.example") && !html.contains(&default_marks[0]), "no user on the platform page");
    let users = web.client.get(web.url("/users")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(users.headers()["location"], "/platform", "no organisation's pages before opening one");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let open = web
        .client
        .post(web.url("/platform/orgs/acme/open"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::SEE_OTHER);
    let (status, html) = page(&cookie, "/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"org\">acme<"), "the header says which organisation is open");
    let acme_user = p.org("acme").users(Default::default()).await.unwrap()[0].id.to_string();
    assert!(html.contains(&acme_user));
    let audit = p.org("acme").audit_log(10).await.unwrap();
    let opened = audit.iter().find(|a| a.action == "org.opened_by_platform").expect("acme's log records the visit");
    assert_eq!(opened.actor, format!("admin:{OPERATOR}"));
    assert!(p.org(DEFAULT_ORG).audit_log(50).await.unwrap().iter().all(|a| a.action != "org.opened_by_platform"));

    // Disabled: acme's administrator and token are refused; its rows stay.
    let disable = web
        .client
        .post(web.url("/platform/orgs/acme/disable"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(disable.headers()["location"], "/platform?notice=changed");
    assert_eq!(page(&acme_cookie, "/users").await.0, StatusCode::FORBIDDEN);
    let (status, refused) = web.call(&p.acme_token, Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(refused["error"]["message"].as_str().unwrap().contains("disabled"), "{refused}");
    assert!(!p.org("acme").users(Default::default()).await.unwrap().is_empty(), "nothing was deleted");
    let (status, _) = web.call(&p.platform_token, Method::POST, "/api/v1/platform/orgs/acme/sync", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no sync of a disabled organisation");
    let (status, _) = web.call(&p.platform_token, Method::POST, "/api/v1/platform/orgs/acme/enable", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, started) = web.call(&p.platform_token, Method::POST, "/api/v1/platform/orgs/acme/sync", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let detail = web.wait_for_run(&p.acme_token, started["run_id"].as_str().unwrap()).await;
    assert_eq!(detail["run"]["status"], "succeeded");
    let audit = p.org("acme").audit_log(20).await.unwrap();
    let started_by = audit.iter().find(|a| a.action == "sync.started_by_platform").expect("acme's log says who");
    assert_eq!(started_by.actor, "token:platform-ops");
    p.deployment.shutdown().await;
}

/// Runs `safegpt ARGS` against the deployment; its exit code, stdout and stderr.
async fn cli(p: &Platform, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut command = p.deployment.command(args);
    command.env_remove("SAFEGPT_ORG");
    for (k, v) in env {
        command.env(k, v);
    }
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn every_command_acts_in_the_organisation_it_names() {
    let p = Platform::start().await;
    let default_marks = footprint(&p.org(DEFAULT_ORG)).await;
    let before = state_of(&p.org(DEFAULT_ORG)).await;

    // With two organisations a command must say which.
    let (code, _, err) = cli(&p, &["users", "list"], &[], None).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("acme, default") && err.contains("--org"), "{err}");
    let (code, _, err) = cli(&p, &["--org", "nope", "users", "list"], &[], None).await;
    assert!(code == 2 && err.contains("no organisation 'nope'"), "{err}");

    let default_run = p.org(DEFAULT_ORG).runs(1).await.unwrap()[0].id.to_string();
    let default_user = p.org(DEFAULT_ORG).users(Default::default()).await.unwrap()[0].clone();
    let default_user_id = default_user.id.to_string();
    let default_token = p.org(DEFAULT_ORG).api_tokens().await.unwrap()[0].id.to_string();
    fn with_acme<'a>(rest: &[&'a str]) -> Vec<&'a str> {
        [&["--org", "acme"][..], rest].concat()
    }
    // Reading: only acme's rows, by flag or by SAFEGPT_ORG.
    for args in [
        vec!["users", "list", "--json"],
        vec!["runs", "list", "--json"],
        vec!["audit", "--json"],
        vec!["tokens", "list", "--json"],
        vec!["azure", "show", "--json"],
    ] {
        let (code, out, err) = cli(&p, &with_acme(&args), &[], None).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(default_marks.iter().all(|m| !out.contains(m.as_str())), "{args:?} shows default's rows: {out}");
        let (code, by_env, _) = cli(&p, &args, &[("SAFEGPT_ORG", "acme")], None).await;
        assert_eq!((code, by_env.lines().count()), (0, out.lines().count()), "{args:?} with SAFEGPT_ORG");
    }
    // Default's ids are not found from acme.
    for args in [
        vec!["runs", "show", default_run.as_str()],
        vec!["users", "disable", default_user_id.as_str()],
        vec!["tokens", "revoke", default_token.as_str()],
    ] {
        let (code, _, err) = cli(&p, &with_acme(&args), &[], None).await;
        assert_eq!(code, 2, "{args:?} reached default: {err}");
    }
    // An e-mail both organisations have names acme's user there; default's stays as it was.
    let (code, _, err) =
        cli(&p, &with_acme(&["users", "disable", default_user.profile.email.as_str()]), &[], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&p, &with_acme(&["tokens", "create", "--name", "acme-cli"]), &[], None).await;
    assert!(code == 0 && out.trim().starts_with("sgpt_"), "{err}");
    let (code, _, err) = cli(&p, &with_acme(&["azure", "configure", "--seats", "5"]), &[], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&p, &with_acme(&["sync", "--json"]), &[], None).await;
    assert_eq!(code, 0, "{err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    assert!(p.org("acme").runs(5).await.unwrap().iter().any(|r| r.id.to_string() == run["run_id"].as_str().unwrap()));
    let (code, _, err) = cli(
        &p,
        &with_acme(&["admin", "create", "--email", "second@acme.example", "--password-stdin"]),
        &[],
        Some(PASSWORD),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let second = p.deployment.store.admin_by_email("second@acme.example").await.unwrap().unwrap();
    assert_eq!((second.org.as_deref(), second.platform), (Some("acme"), false));
    assert_eq!(state_of(&p.org(DEFAULT_ORG)).await, before, "nothing acme's commands did reached default");

    // The platform's own commands.
    let (code, out, _) = cli(&p, &["orgs", "list", "--json"], &[], None).await;
    let orgs: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, orgs.as_array().unwrap().len()), (0, 2));
    let (code, _, err) = cli(&p, &["orgs", "create", "--name", "Beta", "--slug", "acme"], &[], None).await;
    assert!(code == 2 && err.contains("slug"), "{err}");
    let (code, _, err) = cli(&p, &["orgs", "update", "acme", "--name", "Acme BV", "--language", "en"], &[], None).await;
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = cli(&p, &["orgs", "show", "acme", "--json"], &[], None).await;
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((shown["name"].as_str(), shown["language"].as_str()), (Some("Acme BV"), Some("en")));
    let (code, _, err) = cli(
        &p,
        &["admin", "create", "--platform", "--email", "ops2@platform.example", "--password-stdin"],
        &[],
        Some(PASSWORD),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let ops = p.deployment.store.admin_by_email("ops2@platform.example").await.unwrap().unwrap();
    assert_eq!((ops.org, ops.platform), (None, true));
    let (code, value, err) = cli(&p, &["tokens", "create", "--platform", "--name", "ops"], &[], None).await;
    assert_eq!(code, 0, "{err}");
    let (status, _) = p.web.call(value.trim(), Method::GET, "/api/v1/platform/orgs", None).await;
    assert_eq!(status, StatusCode::OK);
    let (code, _, _) = cli(&p, &["orgs", "disable", "acme"], &[], None).await;
    assert_eq!(code, 0);
    let (code, _, err) = cli(&p, &with_acme(&["sync"]), &[], None).await;
    assert!(code != 0 && err.contains("disabled"), "{err}");
    // The console still manages it: e.g. revokes a token before enabling it again.
    let acme_token = p.org("acme").api_tokens().await.unwrap()[0].id.to_string();
    let (code, _, err) = cli(&p, &with_acme(&["tokens", "revoke", acme_token.as_str()]), &[], None).await;
    assert_eq!(code, 0, "{err}");
    p.deployment.shutdown().await;
}

/// Waits until `org`'s schedule satisfies `done`.
async fn schedule_of(
    store: &Store,
    org: &str,
    done: impl Fn(&safegpt_store::Planned) -> bool,
) -> safegpt_store::Planned {
    for _ in 0..500 {
        let planned = store.schedules().await.unwrap().into_iter().find(|p| p.org == org).unwrap();
        if done(&planned) {
            return planned;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the schedule of {org} never got there");
}

#[tokio::test]
async fn the_scheduler_runs_a_bounded_number_at_once_and_a_failing_organisation_backs_off_alone() {
    let p = Platform::start().await;
    let store = &p.deployment.store;
    let now = OffsetDateTime::now_utc();
    store.create_org("broken", "Broken", "en", "test", now).await.unwrap();
    let broken = p.org("broken");
    support::configure(&p.deployment.sim, &broken, SettingsPatch::default()).await;
    let (settings, _) = broken.settings().await.unwrap();
    let wrong = secrecy::SecretString::from("not-the-secret".to_owned());
    broken.save_settings(&settings, Some(&wrong), "test", now).await.unwrap();
    let interval = i64::from(settings.sync_interval_secs);

    let operations = safegpt_app::Operations { max_concurrent_syncs: 2, ..Default::default() };
    let platform = safegpt_app::Platform::new(std::sync::Arc::clone(store), operations);
    for org in ["acme", "broken", DEFAULT_ORG] {
        p.org(org).schedule_next(now - time::Duration::seconds(1), 0).await.unwrap();
    }
    // Entra answers slowly, so that the first two are still running at the second turn.
    let slow = graph_sim::Faults { latency_ms: 300, ..Default::default() };
    p.deployment.sim.sim.lock().set_faults(slow);
    let first = platform.scheduler_turn(now, false).await.unwrap();
    assert_eq!(first.claimed.len(), 2, "two slots: {first:?}");
    let second = platform.scheduler_turn(now, false).await.unwrap();
    assert!(second.claimed.is_empty(), "no free slot while both run: {second:?}");
    p.deployment.sim.sim.lock().set_faults(graph_sim::Faults::default());
    // As the first two end, the third is claimed.
    let mut claimed = first.claimed.clone();
    for _ in 0..500 {
        claimed.extend(platform.scheduler_turn(now, false).await.unwrap().claimed);
        if claimed.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    claimed.sort();
    assert_eq!(claimed, ["acme", "broken", DEFAULT_ORG], "each once");

    let failed = schedule_of(store, "broken", |s| s.failures == 1).await;
    let wait = (failed.next_run_at.unwrap() - now).whole_seconds();
    assert!((2 * interval..2 * interval + 5).contains(&wait), "a failure doubles the wait, from the run's end: {wait}");
    for org in ["acme", DEFAULT_ORG] {
        let healthy =
            schedule_of(store, org, |s| s.next_run_at.is_some_and(|at| at > now + time::Duration::minutes(10))).await;
        let wait = (healthy.next_run_at.unwrap() - now).whole_seconds();
        assert!(healthy.failures == 0 && (interval..interval + 90).contains(&wait), "{org}: {wait} s");
    }
    // It keeps failing: 4 intervals, then at most 8.
    for (failures, factor) in [(2, 4), (3, 8), (4, 8)] {
        broken.schedule_next(now - time::Duration::seconds(1), failures - 1).await.unwrap();
        // Claimed as soon as a slot is free (the healthy runs may still be ending).
        let mut claimed = Vec::new();
        for _ in 0..500 {
            claimed = platform.scheduler_turn(now, false).await.unwrap().claimed;
            if !claimed.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(claimed, ["broken"]);
        let failed = schedule_of(store, "broken", |s| s.failures == failures).await;
        let wait = (failed.next_run_at.unwrap() - now).whole_seconds();
        assert!((factor * interval..factor * interval + 5).contains(&wait), "{failures} failures: {wait} s");
    }
    let runs = broken.runs(10).await.unwrap();
    assert!(runs.iter().all(|r| r.status == safegpt_store::RunStatus::Failed), "nothing applied for broken");
    p.deployment.shutdown().await;
}
