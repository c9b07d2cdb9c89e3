//! E-mail alerts against a real SMTP server (aiosmtpd) and webhooks against a receiver that
//! verifies every message with the Standard Webhooks reference library: both are Python
//! processes on 127.0.0.1 (`tests/notify/`), an implementation independent of ours.
//!
//! They need Python with `tests/notify/requirements.txt`: `scripts/test.sh` makes the venv
//! `.venv-notify`; `SAFEGPT_TEST_NOTIFY_PYTHON` may name another interpreter.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_sim::{GenerateSpec, generate};
use safegpt_app::{App, Courier, NotifySettings, Operations, Platform, Principal};
use safegpt_core::SettingsPatch;
use safegpt_graph::RetryPolicy;
use safegpt_notify::{RetrySchedule, SmtpSettings};
use serde_json::{Value, json};
use support::TestApp;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SAFEGPT_TEST_NOTIFY_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-notify/bin/python");
    assert!(
        venv.exists(),
        "these tests need Python with aiosmtpd and standardwebhooks: run scripts/test.sh, or \
         `python3 -m venv .venv-notify && .venv-notify/bin/pip install -r tests/notify/requirements.txt`"
    );
    venv
}

/// One of the Python helpers: its port, and the lines it printed after the first.
struct Helper {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    _child: tokio::process::Child,
}

impl Helper {
    async fn start(script: &str, args: &[&str]) -> Helper {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/notify").join(script);
        let mut child = tokio::process::Command::new(python())
            .arg(path)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), out.next_line()).await.unwrap().unwrap().unwrap();
        let port = first.strip_prefix("listening ").unwrap().parse().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Helper { port, lines, _child: child }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The mails an SMTP sink accepted.
    fn mails(&self) -> Vec<Value> {
        self.lines.lock().unwrap().iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    async fn control(&self, body: Value) {
        reqwest::Client::new().post(self.url("/_control")).json(&body).send().await.unwrap();
    }

    async fn received(&self) -> Value {
        reqwest::get(self.url("/_received")).await.unwrap().json().await.unwrap()
    }

    /// The webhook ids the receiver accepted (answered 2xx to), in order.
    async fn accepted(&self) -> Vec<(String, i64, String)> {
        let received = self.received().await;
        assert_eq!(received["invalid"], json!([]), "every message verified");
        received["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["id"].as_str().unwrap().to_owned(), a["seq"].as_i64().unwrap_or(0), a["type"].to_string()))
            .collect()
    }
}

/// Retries within milliseconds (a day in production), claims of two seconds.
fn quick(smtp: Option<SmtpSettings>, give_up_after: Duration) -> Operations {
    let fast = RetrySchedule {
        delays: vec![Duration::from_millis(100)],
        give_up_after,
        failing_every: Duration::from_millis(100),
    };
    let notify = NotifySettings {
        smtp,
        webhook_retry: fast.clone(),
        // A second: the next try is never due within the turn that failed.
        mail_retry: RetrySchedule {
            delays: vec![Duration::from_secs(1)],
            give_up_after: Duration::from_secs(3600),
            ..fast
        },
        // The claim outlasts a request, as in production (15 s and 2 min), yet a test waits
        // only seconds for a dead instance's claim to run out.
        webhook_timeout: Duration::from_secs(2),
        claim: Duration::from_secs(5),
        ..NotifySettings::default()
    };
    Operations {
        retry: RetryPolicy { budget: Duration::from_secs(2), max_attempts: 2, ..RetryPolicy::default() },
        full_read_slice: support::test_slice(),
        notify,
        ..Operations::default()
    }
}

async fn deployment(users: usize, patch: SettingsPatch) -> TestApp {
    let tenant = generate(&GenerateSpec { users, groups: 2, seed: 7, ..GenerateSpec::default() });
    TestApp::builder(tenant).configured(patch).start().await
}

async fn default_org(platform: &Platform) -> App {
    platform.scope(&Principal::Operator, None).await.unwrap()
}

/// Turns of `courier` until `done` holds (at most 30 s).
async fn turns_until<F, Fut>(courier: &Courier, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if done().await {
            return;
        }
        courier.turn().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not done after 30 s of courier turns");
}

/// The sequence numbers of the organisation's events after `after`.
async fn seqs_after(app: &App, after: i64) -> Vec<i64> {
    app.events(after, 1000).await.unwrap().events.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn webhooks_arrive_signed_in_order_after_an_outage_and_a_failing_endpoint_is_reported() {
    let deployment =
        deployment(20, SettingsPatch { notify: Some(vec!["ops@acme.example".into()]), ..Default::default() }).await;
    let receiver = Helper::start("webhook_receiver.py", &[]).await;
    let platform = Platform::new(Arc::clone(&deployment.store), quick(None, Duration::from_secs(1)));
    let app = default_org(&platform).await;
    let created = app.create_webhook(&Principal::Operator, &receiver.url("/hooks/safegpt"), None).await.unwrap();
    assert!(created.secret.starts_with("whsec_"), "a Standard Webhooks secret");
    assert!(!app.webhooks(&Principal::Operator).await.unwrap()[0].url.is_empty());
    receiver.control(json!({"secret": created.secret, "status": 503})).await;

    let outcome = deployment.sync(OffsetDateTime::now_utc()).await;
    assert_eq!(outcome.status.as_str(), "succeeded");
    let expected = seqs_after(&app, created.webhook.delivered_seq).await;
    let created_users = outcome.counts.created as usize;
    assert!(created_users >= 15, "{:?}", outcome.counts);
    assert_eq!(expected.len(), created_users + 1, "the users and the run's end");
    let courier = platform.courier(None).unwrap();
    let id = created.webhook.id.clone();
    // The receiver is down: the first message is tried again and again, with one id.
    turns_until(&courier, || async { app.webhook(&Principal::Operator, &id).await.unwrap().state == "failing" }).await;
    let log = app.webhook_attempts(&Principal::Operator, &id, 100).await.unwrap();
    assert!(log.len() >= 2 && log.iter().all(|a| a.outcome == "failed" && a.status_code == Some(503)), "{log:?}");
    let first_id = safegpt_app::message_id("default", expected[0]);
    assert!(log.iter().all(|a| a.message_id == first_id && a.seq == Some(expected[0])), "one message, one id");
    assert!(log[0].error.as_deref().unwrap().contains("HTTP 503"), "{:?}", log[0].error);
    let mails = app.notifications(&Principal::Operator, 10).await.unwrap();
    assert_eq!(mails.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>(), ["webhook_failing"], "told once");
    assert!(mails[0].body.contains(&receiver.url("/hooks/safegpt")), "{}", mails[0].body);
    assert_eq!(mails[0].status, "pending", "no SMTP here: queued and visible");

    // Back up: everything arrives once, in order, verified by the reference library.
    receiver.control(json!({"status": 200})).await;
    turns_until(&courier, || async { receiver.accepted().await.len() >= expected.len() }).await;
    let accepted = receiver.accepted().await;
    let seqs: Vec<i64> = accepted.iter().map(|a| a.1).collect();
    assert_eq!(seqs, expected, "every event once, in order");
    assert_eq!(accepted[0].0, first_id, "the retried message kept its webhook-id");
    let body = &receiver.received().await["accepted"][0]["body"];
    assert_eq!(body["type"], "user.created");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "RFC 3339: {body}");
    let feed = app.events(created.webhook.delivered_seq, 1).await.unwrap();
    assert_eq!(body["data"], serde_json::to_value(&feed.events[0]).unwrap(), "the event as the feed gives it");
    let last = &receiver.received().await["accepted"][created_users]["body"];
    assert_eq!(
        (last["type"].as_str(), last["data"]["payload"]["created"].as_u64()),
        (Some("sync.succeeded"), Some(created_users as u64))
    );
    let endpoint = app.webhook(&Principal::Operator, &id).await.unwrap();
    assert_eq!(
        (endpoint.state.as_str(), endpoint.attempts, endpoint.delivered_seq),
        ("active", 0, expected[created_users])
    );

    // Send test: outside the order, in the log.
    let test = app.send_test_webhook(&Principal::Operator, &id).await.unwrap();
    assert_eq!((test.outcome.as_str(), test.status_code), ("delivered", Some(200)));
    let accepted = receiver.accepted().await;
    assert_eq!(accepted.last().unwrap().2, "\"webhook.test\"");
    // Deleted: nothing more is sent.
    app.delete_webhook(&Principal::Operator, &id).await.unwrap();
    {
        let mut sim = deployment.sim.sim.lock();
        let gone = sim.dir.users.keys().next().unwrap().clone();
        sim.dir.delete_user(&gone);
    }
    deployment.sync(OffsetDateTime::now_utc()).await;
    courier.turn().await.unwrap();
    assert_eq!(receiver.accepted().await.len(), accepted.len());
}

#[tokio::test]
async fn webhook_filters_and_address_rules_hold() {
    let deployment = deployment(5, SettingsPatch::default()).await;
    let receiver = Helper::start("webhook_receiver.py", &[]).await;
    let platform = Platform::new(Arc::clone(&deployment.store), quick(None, Duration::from_secs(3600)));
    let app = default_org(&platform).await;
    for (url, why) in [
        ("http://hooks.example.org/x", "https"),
        ("https://10.1.2.3/x", "SAFEGPT_WEBHOOK_ALLOW_PRIVATE"),
        ("https://169.254.169.254/latest/meta-data", "SAFEGPT_WEBHOOK_ALLOW_PRIVATE"),
        ("https://user:pw@hooks.example.org/x", "password"),
    ] {
        let err = app.create_webhook(&Principal::Operator, url, None).await.unwrap_err().to_string();
        assert!(err.contains("url") && err.contains(why), "{url}: {err}");
    }
    let err = app
        .create_webhook(&Principal::Operator, &receiver.url("/"), Some(&["user.deleted".into()]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("user.deleted") && err.contains("user.removed"), "{err}");
    let reader =
        Principal::Token { name: "ro".into(), scope: safegpt_app::TokenScope::Read, org: Some("default".into()) };
    assert!(app.create_webhook(&reader, &receiver.url("/"), None).await.is_err(), "a read token registers nothing");

    let only_runs = ["sync.succeeded".to_owned()];
    let created = app.create_webhook(&Principal::Operator, &receiver.url("/runs"), Some(&only_runs)).await.unwrap();
    receiver.control(json!({"secret": created.secret})).await;
    deployment.sync(OffsetDateTime::now_utc()).await;
    let courier = platform.courier(None).unwrap();
    turns_until(&courier, || async { !receiver.accepted().await.is_empty() }).await;
    courier.turn().await.unwrap();
    let accepted = receiver.accepted().await;
    assert_eq!(
        accepted.iter().map(|a| a.2.as_str()).collect::<Vec<_>>(),
        ["\"sync.succeeded\""],
        "only what it asked for"
    );
    let endpoint = app.webhook(&Principal::Operator, &created.webhook.id).await.unwrap();
    assert_eq!(endpoint.delivered_seq, *seqs_after(&app, 0).await.last().unwrap(), "past the users it does not want");

    // A redirect is not followed: it is a failure that names the fix.
    let moved = app.create_webhook(&Principal::Operator, &receiver.url("/redirect"), None).await.unwrap();
    let test = app.send_test_webhook(&Principal::Operator, &moved.webhook.id).await.unwrap();
    assert_eq!((test.outcome.as_str(), test.status_code), ("failed", Some(307)));
    assert!(test.error.as_deref().unwrap().contains("redirects are not followed"), "{test:?}");
    assert_eq!(receiver.accepted().await.len(), 1, "the redirect's target got nothing");
}

#[tokio::test]
async fn two_instances_deliver_every_event_once() {
    // More events than one read of the courier takes (200).
    let deployment = deployment(450, SettingsPatch::default()).await;
    let receiver = Helper::start("webhook_receiver.py", &[]).await;
    let one = Platform::new(Arc::clone(&deployment.store), quick(None, Duration::from_secs(3600)));
    let two = Platform::new(Arc::clone(&deployment.store), quick(None, Duration::from_secs(3600)));
    let app = default_org(&one).await;
    let created = app.create_webhook(&Principal::Operator, &receiver.url("/"), None).await.unwrap();
    receiver.control(json!({"secret": created.secret, "delay_ms": 2})).await;
    deployment.sync(OffsetDateTime::now_utc()).await;
    let expected = seqs_after(&app, created.webhook.delivered_seq).await;
    let (a, b) = (one.courier(None).unwrap(), two.courier(None).unwrap());
    let run = |courier: Courier| {
        let want = expected.len();
        let receiver_url = receiver.url("/_received");
        async move {
            for _ in 0..300 {
                courier.turn().await.unwrap();
                let got: Value = reqwest::get(&receiver_url).await.unwrap().json().await.unwrap();
                if got["accepted"].as_array().unwrap().len() >= want {
                    return;
                }
            }
        }
    };
    tokio::join!(run(a), run(b));
    let accepted = receiver.accepted().await;
    let ids: HashSet<&String> = accepted.iter().map(|a| &a.0).collect();
    assert_eq!(ids.len(), accepted.len(), "no message delivered twice");
    assert_eq!(accepted.iter().map(|a| a.1).collect::<Vec<_>>(), expected, "all, in order");
}

#[tokio::test]
async fn a_restart_mid_delivery_loses_nothing() {
    let deployment = deployment(12, SettingsPatch::default()).await;
    let receiver = Helper::start("webhook_receiver.py", &[]).await;
    let platform = Platform::new(Arc::clone(&deployment.store), quick(None, Duration::from_secs(3600)));
    let app = default_org(&platform).await;
    let created = app.create_webhook(&Principal::Operator, &receiver.url("/"), None).await.unwrap();
    receiver.control(json!({"secret": created.secret, "delay_ms": 300})).await;
    deployment.sync(OffsetDateTime::now_utc()).await;
    let expected = seqs_after(&app, created.webhook.delivered_seq).await;

    // The first process delivers for a while and dies in the middle of a request.
    let first = platform.courier(None).unwrap();
    let dying = tokio::spawn(async move {
        loop {
            let _ = first.turn().await;
        }
    });
    for _ in 0..200 {
        if receiver.accepted().await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dying.abort();
    let _ = dying.await;
    let before = receiver.accepted().await.len();
    assert!(before > 0 && before < expected.len(), "stopped mid-delivery: {before} of {}", expected.len());

    // A new process (another instance id) takes over once the dead one's claim runs out.
    let restarted = Platform::new(Arc::clone(&deployment.store), quick(None, Duration::from_secs(3600)));
    let courier = restarted.courier(None).unwrap();
    receiver.control(json!({"delay_ms": 0})).await;
    let want: HashSet<i64> = expected.iter().copied().collect();
    turns_until(&courier, || async { receiver.accepted().await.iter().map(|a| a.1).collect::<HashSet<_>>() == want })
        .await;
    let accepted = receiver.accepted().await;
    let mut firsts: Vec<i64> = Vec::new();
    for (_, seq, _) in &accepted {
        if !firsts.contains(seq) {
            firsts.push(*seq);
        }
    }
    assert_eq!(firsts, expected, "every event, first seen in order");
    assert!(accepted.len() - expected.len() <= 1, "at most the message in flight again: {}", accepted.len());
    let same: Vec<&(String, i64, String)> =
        accepted.iter().filter(|a| accepted.iter().filter(|b| b.1 == a.1).count() > 1).collect();
    assert!(same.windows(2).all(|w| w[0].0 == w[1].0), "a message sent again keeps its webhook-id: {same:?}");
}

/// The wall clock, moved on by what the test adds to the shift.
fn movable_clock() -> (Arc<Mutex<time::Duration>>, safegpt_app::Clock) {
    let shift = Arc::new(Mutex::new(time::Duration::ZERO));
    let read = Arc::clone(&shift);
    (shift, Arc::new(move || OffsetDateTime::now_utc() + *read.lock().unwrap()))
}

#[tokio::test]
async fn each_alert_arrives_by_smtp_once_in_the_organisations_language() {
    let sink = Helper::start("smtp_sink.py", &["--fail-first", "1"]).await;
    let smtp = SmtpSettings::parse(&format!("smtp+plain://127.0.0.1:{}", sink.port), Some("safegpt@platform.example"))
        .unwrap();
    let patch = SettingsPatch {
        notify: Some(vec!["ops@acme.example, it@acme.example".into()]),
        threshold_count: Some("1".into()),
        threshold_percent: Some("1".into()),
        auto_disable: Some(true),
        ..Default::default()
    };
    let deployment = deployment(10, patch).await;
    let (shift, read) = movable_clock();
    let platform = Platform::new(Arc::clone(&deployment.store), quick(Some(smtp), Duration::from_secs(3600)))
        .with_clock(Arc::clone(&read));
    let app = default_org(&platform).await;
    let courier = platform.courier(Some("https://safegpt.example.org".into())).unwrap();
    courier.turn().await.unwrap();
    let now = || read();
    let sync = |at: OffsetDateTime| deployment.sync_with(at, quick(None, Duration::ZERO).retry, false);
    let subjects =
        |sink: &Helper| sink.mails().iter().map(|m| m["subject"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    deployment.sync(now()).await;

    // A permission missing: one e-mail that says which; the SMTP server's first "try later"
    // is retried, and visible meanwhile.
    let denied = json!({"rules": [{"path": "/v1.0/users", "count": 1000, "status": 403, "code": "Authorization_RequestDenied"}]});
    deployment.sim.sim.lock().set_faults(serde_json::from_value(denied).unwrap());
    assert_eq!(sync(now()).await.status.as_str(), "failed");
    courier.turn().await.unwrap();
    let pending = app.notifications(&Principal::Operator, 10).await.unwrap();
    assert_eq!((pending[0].kind.as_str(), pending[0].status.as_str()), ("missing_permission", "pending"));
    assert!(pending[0].last_error.as_deref().unwrap_or_default().contains("451"), "{:?}", pending[0].last_error);
    turns_until(&courier, || async { sink.mails().len() == 1 }).await;
    let mail = &sink.mails()[0];
    assert_eq!(mail["to"], json!(["ops@acme.example", "it@acme.example"]));
    assert_eq!(mail["from"], "safegpt@platform.example");
    assert!(mail["subject"].as_str().unwrap().ends_with("Microsoft Graph refuses a permission"), "{mail}");
    assert!(mail["body"].as_str().unwrap().contains("User.Read.All"), "{mail}");
    let sent = &app.notifications(&Principal::Operator, 10).await.unwrap()[0];
    assert_eq!((sent.status.as_str(), sent.attempts), ("sent", 2));

    // Still failing the same day: nothing more. A day on: one reminder.
    let down = json!({"rules": [{"path": "/v1.0/users", "count": 1000, "status": 500}]});
    deployment.sim.sim.lock().set_faults(serde_json::from_value(down).unwrap());
    for _ in 0..2 {
        sync(now()).await;
        courier.turn().await.unwrap();
    }
    assert_eq!(sink.mails().len(), 1, "at most one e-mail a day while it keeps failing");
    *shift.lock().unwrap() += time::Duration::hours(25);
    sync(now()).await;
    turns_until(&courier, || async { sink.mails().len() == 2 }).await;
    assert!(subjects(&sink)[1].contains("still failing"), "{:?}", subjects(&sink));

    // It works again: once.
    deployment.sim.sim.lock().set_faults(Default::default());
    sync(now()).await;
    sync(now()).await;
    turns_until(&courier, || async { sink.mails().len() == 3 }).await;
    courier.turn().await.unwrap();
    assert_eq!(sink.mails().len(), 3);
    assert!(subjects(&sink)[2].ends_with("the sync works again"), "{:?}", subjects(&sink));

    // A new failure is news again: the first-failure e-mail, with Graph's message.
    let down = json!({"rules": [{"path": "/v1.0/users", "count": 1000, "status": 500}]});
    deployment.sim.sim.lock().set_faults(serde_json::from_value(down).unwrap());
    sync(now()).await;
    turns_until(&courier, || async { sink.mails().len() == 4 }).await;
    assert!(subjects(&sink)[3].ends_with("the sync failed"), "{:?}", subjects(&sink));
    assert!(sink.mails()[3]["body"].as_str().unwrap().contains("nobody was disabled or removed"));
    deployment.sim.sim.lock().set_faults(Default::default());

    // Held by the deletion threshold: the counts and the link to decide.
    {
        let mut sim = deployment.sim.sim.lock();
        let ids: Vec<String> = sim.dir.users.keys().take(4).cloned().collect();
        ids.iter().for_each(|id| {
            sim.dir.delete_user(id);
        });
    }
    let held = sync(now()).await;
    assert_eq!(held.status.as_str(), "held");
    turns_until(&courier, || async { sink.mails().len() == 5 }).await;
    let body = sink.mails()[4]["body"].as_str().unwrap().to_owned();
    assert!(held.counts.disabled >= 2, "{:?}", held.counts);
    assert!(
        body.contains(&format!("disable {} ", held.counts.disabled))
            && body.contains(&format!("https://safegpt.example.org/runs/{}", held.run_id)),
        "{body}"
    );

    // In Dutch for a Dutch organisation: the secret expiring, at each step once.
    let change = safegpt_store::OrgChange { language: Some("nl".into()), ..Default::default() };
    platform.change_org(&Principal::Operator, "default", change).await.unwrap();
    let expires = (now() + time::Duration::days(10)).date().to_string();
    let patch = SettingsPatch { secret_expires: Some(expires), ..Default::default() };
    app.configure(&Principal::Operator, safegpt_app::SettingsChange { patch, client_secret: None }).await.unwrap();
    let fresh = platform.courier(None).unwrap();
    turns_until(&fresh, || async { sink.mails().len() == 6 }).await;
    fresh.turn().await.unwrap();
    assert_eq!(sink.mails().len(), 6, "each step once");
    let mail = &sink.mails()[5];
    assert!(mail["subject"].as_str().unwrap().contains("het clientgeheim verloopt over 10 dag(en)"), "{mail}");
    assert!(mail["body"].as_str().unwrap().contains("meldingsadressen"), "{mail}");
}

#[tokio::test]
async fn the_cli_manages_webhooks_and_lists_notifications() {
    let deployment = deployment(3, SettingsPatch::default()).await;
    let receiver = Helper::start("webhook_receiver.py", &[]).await;
    let run = |args: Vec<String>| {
        let mut command = deployment.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        async move { command.output().await.unwrap() }
    };
    let out = run(vec![
        "azure".into(),
        "configure".into(),
        "--notify".into(),
        "a@x.org".into(),
        "--notify".into(),
        "b@x.org".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (settings, _) = deployment.store.settings().await.unwrap();
    assert_eq!(settings.notify.iter().map(|e| e.as_str()).collect::<Vec<_>>(), ["a@x.org", "b@x.org"]);
    let out = run(vec!["azure".into(), "configure".into(), "--notify".into(), "not-an-address".into()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notify"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(vec!["azure".into(), "configure".into(), "--no-notify".into()]).await;
    assert!(out.status.success());
    assert!(deployment.store.settings().await.unwrap().0.notify.is_empty());

    let url = receiver.url("/hook");
    let out = run(vec![
        "webhooks".into(),
        "create".into(),
        "--url".into(),
        url.clone(),
        "--events".into(),
        "user.created,sync.held".into(),
        "--json".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["webhook"]["events"], json!(["user.created", "sync.held"]));
    let out = run(vec!["webhooks".into(), "list".into(), "--json".into()]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains(&id) && !text.contains(&secret), "listed, never with its secret: {text}");
    receiver.control(json!({"secret": secret})).await;
    let out = run(vec!["webhooks".into(), "test".into(), id.clone()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = run(vec!["webhooks".into(), "deliveries".into(), id.clone(), "--json".into()]).await;
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((log[0]["event_type"].as_str(), log[0]["outcome"].as_str()), (Some("webhook.test"), Some("delivered")));
    // Sealed at rest: nowhere in the database files (the write-ahead log included) or tables.
    if deployment.db_url.starts_with("sqlite") {
        let mut searched = 0;
        for entry in std::fs::read_dir(deployment.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with("safegpt.db") {
                let bytes = std::fs::read(&path).unwrap();
                assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "in {}", path.display());
                searched += 1;
            }
        }
        assert!(searched >= 1, "the database file was searched");
    } else {
        let rows = safegpt_store::testing::postgres_rows_as_text(&deployment.db_url).await;
        assert!(rows.contains("webhook.created") && !rows.contains(&secret), "the signing secret is in a table");
    }
    let out = run(vec!["notifications".into(), "list".into(), "--json".into()]).await;
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!([]));
    let out = run(vec!["webhooks".into(), "delete".into(), id.clone()]).await;
    assert!(out.status.success());
    let out = run(vec!["webhooks".into(), "delete".into(), id]).await;
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn the_api_and_the_pages_manage_webhooks_and_show_alerts() {
    use reqwest::{Method, StatusCode};
    let tenant = generate(&GenerateSpec { users: 4, groups: 1, seed: 9, ..GenerateSpec::default() });
    let config = safegpt::web::WebConfig { scheduler: false, ..safegpt::web::WebConfig::default() };
    let deployment = TestApp::builder(tenant).configured(SettingsPatch::default()).web(config).start().await;
    let receiver = Helper::start("webhook_receiver.py", &[]).await;
    let now = OffsetDateTime::now_utc();
    let admin = deployment.store.create_api_token("ci", "admin", "test", now).await.unwrap().1;
    let reader = deployment.store.create_api_token("dashboards", "read", "test", now).await.unwrap().1;
    let web = support::WebClient::new(deployment.base().to_owned(), deployment.secret());

    // Settings: the alert addresses, validated, in the API's settings.
    let (status, bad) =
        web.call(&admin, Method::PUT, "/api/v1/settings", Some(json!({"notify": ["ops@acme.example", "nope"]}))).await;
    assert_eq!((status, bad["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("notify")), "{bad}");
    let (status, saved) =
        web.call(&admin, Method::PUT, "/api/v1/settings", Some(json!({"notify": ["ops@acme.example"]}))).await;
    assert_eq!((status, &saved["notify"]), (StatusCode::OK, &json!(["ops@acme.example"])), "{saved}");

    // Webhooks over the API: created with the secret once; a read token may not.
    let body = json!({"url": receiver.url("/api-hook"), "events": ["sync.succeeded"]});
    let (status, refused) = web.call(&reader, Method::POST, "/api/v1/webhooks", Some(body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, created) = web.call(&admin, Method::POST, "/api/v1/webhooks", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (id, secret) = (created["webhook"]["id"].as_str().unwrap(), created["secret"].as_str().unwrap());
    let (status, bad) =
        web.call(&admin, Method::POST, "/api/v1/webhooks", Some(json!({"url": "http://hooks.example.org/x"}))).await;
    assert_eq!((status, bad["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("url")), "{bad}");
    let (status, list) = web.call(&admin, Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!((status, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    assert!(!list.to_string().contains(secret), "never listed with its secret");
    receiver.control(json!({"secret": secret})).await;
    let (status, test) = web.call(&admin, Method::POST, &format!("/api/v1/webhooks/{id}/test"), None).await;
    assert_eq!((status, test["outcome"].as_str()), (StatusCode::OK, Some("delivered")), "{test}");
    let (status, log) = web.call(&admin, Method::GET, &format!("/api/v1/webhooks/{id}/deliveries?limit=5"), None).await;
    assert_eq!((status, log[0]["event_type"].as_str()), (StatusCode::OK, Some("webhook.test")), "{log}");
    let (status, alerts) = web.call(&reader, Method::GET, "/api/v1/notifications", None).await;
    assert_eq!((status, alerts), (StatusCode::OK, json!([])));
    let metrics = web.client.get(web.url("/metrics")).bearer_auth(&reader).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("safegpt_webhook_endpoints{state=\"active\"} 1"), "{metrics}");

    // The pages: the secret shown once, Send test, the delivery log, the alerts.
    let (cookie, csrf) = {
        support::create_admin(&deployment.store, "admin@acme.example", "correct horse battery").await;
        web.log_in("admin@acme.example", "correct horse battery").await
    };
    let get = |path: &str| {
        let request = web.client.get(web.url(path)).header("cookie", cookie.clone());
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        let request = web.client.post(web.url(path)).header("cookie", cookie.clone()).form(&form);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, html) = get("/settings/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&receiver.url("/api-hook")) && !html.contains(secret), "listed without its secret");
    let form = vec![
        ("csrf", csrf.clone()),
        ("url", receiver.url("/page-hook")),
        ("event:user.created", "on".to_owned()),
        ("event:sync.held", "on".to_owned()),
    ];
    let (status, html) = post("/settings/webhooks", form).await;
    assert_eq!(status, StatusCode::CREATED, "{html}");
    let shown = html.split("id=\"new-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(shown.starts_with("whsec_"), "{shown}");
    let (_, again) = get("/settings/webhooks").await;
    assert!(!again.contains(&shown), "the secret is shown once");
    let page_hook = app_webhooks(&deployment).await.into_iter().find(|w| w.url.ends_with("/page-hook")).unwrap();
    assert_eq!(page_hook.events, ["user.created", "sync.held"]);
    receiver.control(json!({"secret": shown})).await;
    let (status, html) = post(&format!("/settings/webhooks/{}/test", page_hook.id), vec![("csrf", csrf.clone())]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"test-result\"") && html.contains("delivered"), "{html}");
    let (status, html) = get(&format!("/settings/webhooks/{}", page_hook.id)).await;
    assert!(status == StatusCode::OK && html.contains("webhook.test") && html.contains("msg_test_"), "{html}");
    let (status, _) = post(&format!("/settings/webhooks/{}/test", page_hook.id), vec![]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token, no test");
    let (status, html) = get("/settings/notifications").await;
    assert!(status == StatusCode::OK && html.contains("SAFEGPT_SMTP_URL"), "says e-mail is not configured: {html}");
    let (status, _) = post(&format!("/settings/webhooks/{}/delete", page_hook.id), vec![("csrf", csrf.clone())]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(app_webhooks(&deployment).await.len(), 1);
    let (status, _) = web.call(&admin, Method::DELETE, &format!("/api/v1/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = web.call(&admin, Method::GET, &format!("/api/v1/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn app_webhooks(deployment: &TestApp) -> Vec<safegpt_app::WebhookView> {
    deployment.app.webhooks(&Principal::Operator).await.unwrap()
}
