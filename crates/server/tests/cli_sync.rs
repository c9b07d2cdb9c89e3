//! `safegpt` driven as a command against graph-sim on 127.0.0.1: every rule of PRODUCT.md's
//! "Who is in scope", "What one sync does", "Licenses" and "Safety", and every error kind.

mod support;

use std::process::Stdio;

use graph_sim::{AppRecord, GroupRecord, SecretRecord, TenantFile, UserRecord};
use serde_json::{Value, json};
use support::TestApp;
use time::macros::datetime;
use tokio::io::AsyncWriteExt;

const TENANT: &str = "4e4dff32-6150-4c66-ae0d-cfc4ab7bc4d1";
const CLIENT: &str = "4f6847d7-fd3f-4b2d-9740-79170e634de5";
const SECRET: &str = "tki8Q~00Qlki5wkrfSECRETVALUE";
const NO_CONSENT_CLIENT: &str = "4f6847d7-fd3f-4b2d-9740-000000000001";
const EXPIRED_CLIENT: &str = "4f6847d7-fd3f-4b2d-9740-000000000002";
const STAFF: &str = "f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2";
const ENGINEERING: &str = "f3e5e6c4-7f2d-4a4c-9b2c-000000000002";

fn id(n: u32) -> String {
    format!("a0000000-0000-4000-8000-{n:012}")
}

fn user(n: u32, name: &str) -> UserRecord {
    UserRecord {
        id: id(n),
        user_principal_name: format!("{name}@contoso.onmicrosoft.com"),
        mail: Some(format!("{name}@contoso.com")),
        display_name: Some(name.to_uppercase()),
        given_name: Some(name.into()),
        surname: Some("Example".into()),
        job_title: None,
        department: Some("Sales".into()),
        account_enabled: true,
        user_type: "Member".into(),
        other_mails: Vec::new(),
    }
}

/// alice, carol (guest), dave (disabled in Entra), frank (no mailbox) are in Staff; bob is
/// in Engineering, nested in Staff; erin is in no group. Staff also holds a device and
/// Engineering a service principal, as real groups do.
fn tenant() -> TenantFile {
    let mut carol = user(3, "carol");
    carol.user_type = "Guest".into();
    carol.user_principal_name = "carol_fabrikam.com#EXT#@contoso.onmicrosoft.com".into();
    let mut dave = user(4, "dave");
    dave.account_enabled = false;
    let mut frank = user(6, "frank");
    frank.mail = None;
    let secret = |value: &str, expires| vec![SecretRecord { value: value.into(), expires }];
    let roles = vec!["User.Read.All".to_owned(), "Group.Read.All".to_owned()];
    TenantFile {
        tenant_id: TENANT.into(),
        domain: "contoso.onmicrosoft.com".into(),
        apps: vec![
            AppRecord {
                client_id: CLIENT.into(),
                roles: roles.clone(),
                secrets: secret(SECRET, datetime!(2028-11-29 0:00 UTC)),
            },
            AppRecord {
                client_id: NO_CONSENT_CLIENT.into(),
                roles: vec![],
                secrets: secret("nc", datetime!(2028-11-29 0:00 UTC)),
            },
            AppRecord {
                client_id: EXPIRED_CLIENT.into(),
                roles,
                secrets: secret("old", datetime!(2025-11-29 0:00 UTC)),
            },
        ],
        users: vec![user(1, "alice"), user(2, "bob"), carol, dave, user(5, "erin"), frank],
        groups: vec![
            GroupRecord {
                id: STAFF.into(),
                display_name: "Staff".into(),
                members: vec![
                    id(1),
                    id(3),
                    id(4),
                    id(6),
                    ENGINEERING.into(),
                    "d0000000-0000-4000-8000-000000000001".into(),
                ],
            },
            GroupRecord {
                id: ENGINEERING.into(),
                display_name: "Engineering".into(),
                members: vec![id(2), "e0000000-0000-4000-8000-000000000001".into()],
            },
        ],
        devices: vec![graph_sim::tenant::OtherRecord {
            id: "d0000000-0000-4000-8000-000000000001".into(),
            display_name: Some("LAPTOP-1".into()),
        }],
        service_principals: vec![graph_sim::tenant::OtherRecord {
            id: "e0000000-0000-4000-8000-000000000001".into(),
            display_name: Some("Room booking".into()),
        }],
        fidelity: None,
        faults: None,
    }
}

/// A deployment driven through the `safegpt` binary.
struct Env(TestApp);

impl std::ops::Deref for Env {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl Env {
    async fn new() -> Env {
        Env::with_tenant(tenant()).await
    }

    async fn with_tenant(tenant: TenantFile) -> Env {
        Env(TestApp::builder(tenant).start().await)
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_with_env(args, stdin, &[]).await
    }

    async fn run_with_env(&self, args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)]) -> Run {
        let mut child = self
            .command(args)
            .envs(vars.iter().copied())
            .env("SAFEGPT_GRAPH_RETRY_BUDGET_SECS", "1")
            .env("SAFEGPT_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET), "the secret leaked into output");
        run
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    async fn configure(&self, extra: &[&str]) {
        let url = self.sim.base_url.clone();
        let mut args = vec![
            "azure",
            "configure",
            "--active",
            "true",
            "--tenant-id",
            TENANT,
            "--client-id",
            CLIENT,
            "--client-secret-stdin",
            "--login-url",
            &url,
            "--graph-url",
            &url,
        ];
        args.extend_from_slice(extra);
        let run = self.run_with_stdin(&args, Some(&format!("{SECRET}\n"))).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    async fn sync(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["sync", "--json"];
        args.extend_from_slice(extra);
        let run = self.run(&args).await;
        (run.code, run.json())
    }

    async fn users(&self) -> Vec<Value> {
        let run = self.run(&["users", "list", "--json"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json().as_array().unwrap().clone()
    }

    async fn user(&self, email: &str) -> Option<Value> {
        self.users().await.into_iter().find(|u| u["email"] == email)
    }

    fn emails(users: &[Value]) -> Vec<String> {
        let mut e: Vec<String> = users.iter().map(|u| u["email"].as_str().unwrap().to_owned()).collect();
        e.sort();
        e
    }
}

#[tokio::test]
async fn scope_follows_nested_groups_and_excludes_guests_and_disabled_accounts() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF]).await;
    let (code, out) = env.sync(&[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["status"], "succeeded");
    assert_eq!(out["counts"]["created"], 3);
    let users = env.users().await;
    // bob through Engineering (nested); frank by UPN; not carol (guest), dave (disabled), erin (no group).
    assert_eq!(Env::emails(&users), ["alice@contoso.com", "bob@contoso.com", "frank@contoso.onmicrosoft.com"]);
    let alice = &users.iter().find(|u| u["email"] == "alice@contoso.com").unwrap();
    let keys: Vec<&str> = alice.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "azure_object_id",
            "department",
            "disabled_at",
            "disabled_reason",
            "display_name",
            "email",
            "given_name",
            "id",
            "in_scope",
            "job_title",
            "source",
            "status",
            "surname",
            "user_principal_name"
        ]
    );
    assert_eq!(alice["source"], "entra");
    assert_eq!(alice["azure_object_id"], id(1));
    assert_eq!(alice["status"], "active");
    assert_eq!(alice["in_scope"], true);

    // Guests included on request.
    env.configure(&["--include-guests", "true"]).await;
    env.sync(&[]).await;
    assert!(env.user("carol@contoso.com").await.is_some());

    // All users of the tenant when no group is set.
    env.configure(&["--no-group"]).await;
    env.sync(&[]).await;
    assert!(env.user("erin@contoso.com").await.is_some());
    assert!(env.user("dave@contoso.com").await.is_none(), "disabled in Entra is never created");
    env.0.shutdown().await;
}

#[tokio::test]
async fn leaving_deleting_disabling_and_rejoining_in_entra() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF, "--auto-disable", "true", "--include-guests", "true"]).await;
    env.sync(&[]).await;
    {
        let mut s = env.sim.sim.lock();
        s.dir.set_member(ENGINEERING, &id(2), false); // bob leaves the nested group
        s.dir.delete_user(&id(1)); // alice soft-deleted
        let mut carol = s.dir.users[&id(3)].record.clone();
        carol.account_enabled = false; // carol disabled in Entra
        s.dir.upsert_user(carol);
    }
    let (code, out) = env.sync(&[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["counts"]["disabled"], 3);
    for (email, reason) in [
        ("bob@contoso.com", "not_in_group"),
        ("alice@contoso.com", "deleted_in_entra"),
        ("carol@contoso.com", "disabled_in_entra"),
    ] {
        let u = env.user(email).await.unwrap();
        assert_eq!((u["status"].as_str(), u["disabled_reason"].as_str()), (Some("disabled"), Some(reason)), "{email}");
        assert_eq!(u["in_scope"], false);
        assert!(u["disabled_at"].is_string());
    }
    // The guest rule: frank becomes a guest while guests are excluded.
    env.configure(&["--include-guests", "false"]).await;
    {
        let mut s = env.sim.sim.lock();
        let mut frank = s.dir.users[&id(6)].record.clone();
        frank.user_type = "Guest".into();
        s.dir.upsert_user(frank);
    }
    env.sync(&[]).await;
    assert_eq!(env.user("frank@contoso.onmicrosoft.com").await.unwrap()["disabled_reason"], "guest_excluded");

    // Bob rejoins: enabled again, same record.
    let bob_id = env.user("bob@contoso.com").await.unwrap()["id"].clone();
    env.sim.sim.lock().dir.set_member(STAFF, &id(2), true);
    let (_, out) = env.sync(&[]).await;
    assert_eq!(out["counts"]["enabled"], 1);
    let bob = env.user("bob@contoso.com").await.unwrap();
    assert_eq!((bob["status"].as_str(), bob["id"].clone()), (Some("active"), bob_id));
    assert_eq!(bob["disabled_reason"], Value::Null);

    // The run history and the audit log say what happened and why.
    let runs = env.run(&["runs", "list", "--json"]).await.json();
    let second = runs.as_array().unwrap().iter().find(|r| r["counts"]["disabled"] == 3).unwrap();
    let shown = env.run(&["runs", "show", second["id"].as_str().unwrap(), "--json"]).await.json();
    let reasons: Vec<&str> =
        shown["changes"].as_array().unwrap().iter().map(|c| c["reason"].as_str().unwrap()).collect();
    assert!(reasons.contains(&"out of scope: deleted in Entra ID"), "{reasons:?}");
    let audit = env.run(&["audit", "--json"]).await.json();
    assert!(
        audit.as_array().unwrap().iter().any(|a| a["action"] == "user.disabled" && a["target"] == "alice@contoso.com")
    );
    env.0.shutdown().await;
}

#[tokio::test]
async fn without_auto_disable_users_are_kept_but_marked_out_of_scope() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF]).await;
    env.sync(&[]).await;
    env.sim.sim.lock().dir.set_member(STAFF, &id(1), false);
    env.sync(&[]).await;
    let alice = env.user("alice@contoso.com").await.unwrap();
    assert_eq!((alice["status"].as_str(), alice["in_scope"].as_bool()), (Some("active"), Some(false)));
    env.0.shutdown().await;
}

#[tokio::test]
async fn renamed_users_are_updated_and_local_accounts_linked_by_email() {
    let env = Env::new().await;
    assert_eq!(env.run(&["users", "add", "--email", "Alice@Contoso.com", "--name", "Alice Local"]).await.code, 0);
    assert_eq!(env.run(&["users", "add", "--email", "admin@example.org", "--name", "Admin"]).await.code, 0);
    let local_id = env.user("Alice@Contoso.com").await.unwrap()["id"].clone();
    env.configure(&["--group-id", STAFF, "--auto-disable", "true"]).await;
    let (_, out) = env.sync(&[]).await;
    assert_eq!((out["counts"]["created"].as_u64(), out["counts"]["updated"].as_u64()), (Some(2), Some(1)));
    let alice = env.user("alice@contoso.com").await.unwrap();
    assert_eq!(alice["id"], local_id, "linked, not duplicated");
    assert_eq!((alice["source"].as_str(), alice["azure_object_id"].as_str()), (Some("entra"), Some(id(1).as_str())));

    // Renamed in Entra: new UPN and mail, same object id.
    {
        let mut s = env.sim.sim.lock();
        let mut a = s.dir.users[&id(1)].record.clone();
        a.user_principal_name = "alice.smith@contoso.onmicrosoft.com".into();
        a.mail = Some("alice.smith@contoso.com".into());
        a.surname = Some("Smith".into());
        s.dir.upsert_user(a);
    }
    let (_, out) = env.sync(&[]).await;
    assert_eq!(out["counts"]["updated"], 1);
    let renamed = env.user("alice.smith@contoso.com").await.unwrap();
    assert_eq!(renamed["id"], local_id);
    assert_eq!(renamed["surname"], "Smith");
    assert_eq!(env.users().await.len(), 4);

    // The unlinked local administrator is never touched.
    let admin = env.user("admin@example.org").await.unwrap();
    assert_eq!((admin["source"].as_str(), admin["status"].as_str()), (Some("local"), Some("active")));
    env.0.shutdown().await;
}

#[tokio::test]
async fn an_administrators_disable_wins_and_removal_comes_exactly_after_n_days() {
    let env = Env::new().await;
    env.configure(&[
        "--group-id",
        STAFF,
        "--auto-disable",
        "true",
        "--auto-remove",
        "true",
        "--remove-after-days",
        "14",
    ])
    .await;
    env.sync(&["--now", "2026-12-01T09:00:00Z"]).await;
    assert_eq!(env.run(&["users", "disable", "alice@contoso.com"]).await.code, 0);
    let (_, out) = env.sync(&["--now", "2026-12-01T10:00:00Z"]).await;
    assert_eq!(out["counts"]["enabled"], 0);
    let alice = env.user("alice@contoso.com").await.unwrap();
    assert_eq!((alice["status"].as_str(), alice["disabled_reason"].as_str()), (Some("disabled"), Some("admin")));

    env.sim.sim.lock().dir.set_member(ENGINEERING, &id(2), false);
    let (_, out) = env.sync(&["--now", "2026-12-01T12:00:00Z"]).await;
    assert_eq!(out["counts"]["disabled"], 1);
    assert_eq!(env.user("bob@contoso.com").await.unwrap()["disabled_at"], "2026-12-01T12:00:00Z");
    let (_, out) = env.sync(&["--now", "2026-12-15T11:59:59Z"]).await;
    assert_eq!(out["counts"]["removed"], 0, "one second early");
    let (_, out) = env.sync(&["--now", "2026-12-15T12:00:00Z"]).await;
    assert_eq!(out["counts"]["removed"], 1);
    assert!(env.user("bob@contoso.com").await.is_none());
    // The admin-disabled user left the group long ago too, but is never removed by the sync.
    env.sim.sim.lock().dir.set_member(STAFF, &id(1), false);
    env.sync(&["--now", "2027-06-01T00:00:00Z"]).await;
    assert_eq!(env.user("alice@contoso.com").await.unwrap()["disabled_reason"], "admin");
    let events: Vec<String> = env
        .run(&["audit", "--json"])
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.contains(&"user.removed".to_owned()));
    env.0.shutdown().await;
}

#[tokio::test]
async fn seats_run_out_and_users_wait_for_a_license() {
    let env = Env::new().await;
    env.configure(&[
        "--group-id",
        STAFF,
        "--seats",
        "2",
        "--auto-disable",
        "true",
        "--auto-remove",
        "true",
        "--remove-after-days",
        "1",
    ])
    .await;
    let (_, out) = env.sync(&["--now", "2026-12-01T00:00:00Z"]).await;
    assert_eq!((out["counts"]["created"].as_u64(), out["counts"]["awaiting_license"].as_u64()), (Some(3), Some(1)));
    let waiting = env.run(&["users", "list", "--status", "awaiting_license", "--json"]).await.json();
    assert_eq!(waiting.as_array().unwrap().len(), 1);
    let waiting_email = waiting[0]["email"].as_str().unwrap().to_owned();
    let show = env.run(&["azure", "show", "--json"]).await.json();
    assert_eq!(show["seats"], json!({"used": 2, "total": 2}));

    // Someone with a seat is deleted, disabled, then removed a day later: the seat goes to the waiting user.
    let holder = env.run(&["users", "list", "--status", "active", "--json"]).await.json()[0]["azure_object_id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.sim.sim.lock().dir.delete_user(&holder);
    env.sync(&["--now", "2026-12-01T01:00:00Z"]).await;
    assert_eq!(env.user(&waiting_email).await.unwrap()["status"], "awaiting_license", "disabled users hold their seat");
    let (_, out) = env.sync(&["--now", "2026-12-02T01:00:00Z"]).await;
    assert_eq!((out["counts"]["removed"].as_u64(), out["counts"]["enabled"].as_u64()), (Some(1), Some(1)));
    assert_eq!(env.user(&waiting_email).await.unwrap()["status"], "active");
    env.0.shutdown().await;
}

#[tokio::test]
async fn mass_disable_is_held_until_confirmed() {
    let env = Env::new().await;
    env.configure(&[
        "--no-group",
        "--include-guests",
        "true",
        "--auto-disable",
        "true",
        "--threshold-count",
        "2",
        "--threshold-percent",
        "20",
    ])
    .await;
    env.sync(&[]).await;
    let before = env.users().await;
    // The group is configured by mistake to one nobody is in: everyone would be disabled.
    env.configure(&["--group-id", ENGINEERING]).await;
    env.sim.sim.lock().dir.set_member(ENGINEERING, &id(2), false);
    let (code, out) = env.sync(&[]).await;
    assert_eq!(code, 3, "{out}");
    assert_eq!(out["status"], "held");
    assert_eq!(out["error"]["kind"], "deletion_threshold");
    assert!(out["error"]["message"].as_str().unwrap().contains("would disable 5 of 5"));
    assert_eq!(env.users().await, before, "nothing changed while held");
    let (code, out) = env.sync(&["--confirm-mass-changes"]).await;
    assert_eq!((code, out["counts"]["disabled"].as_u64()), (0, Some(5)));
    env.0.shutdown().await;
}

#[tokio::test]
async fn a_failed_page_read_mid_sync_disables_nobody() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF, "--auto-disable", "true"]).await;
    env.sync(&[]).await;
    let before = env.users().await;
    // The group read (groups/delta) fails after the users were read: Graph stays down.
    let faults = json!({"rules": [{"path": "/v1.0/groups", "count": 1000, "status": 503, "retryAfter": "0.2"}]});
    env.sim.sim.lock().set_faults(serde_json::from_value(faults).unwrap());
    env.sim.sim.lock().dir.set_member(STAFF, &id(1), false);
    let (code, out) = env.sync(&[]).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!((out["status"].as_str(), out["error"]["kind"].as_str()), (Some("failed"), Some("service_error")));
    assert_eq!(env.users().await, before);
    let runs = env.run(&["runs", "list", "--json"]).await.json();
    assert_eq!(runs[0]["status"], "failed");
    assert!(runs[0]["error"]["message"].as_str().unwrap().contains("Nothing was changed"));
    env.0.shutdown().await;
}

#[tokio::test]
async fn a_failed_second_page_of_users_disables_nobody() {
    // 2,504 users: three pages of 999. If page 2 fails, the users on pages 2 and 3 are unread,
    // not gone: a sync that planned from the partial read would disable 1,505 of them.
    let mut t = tenant();
    t.users.extend((100..2600).map(|n| user(n, &format!("bulk{n}"))));
    let env = Env::with_tenant(t).await;
    env.configure(&["--no-group", "--auto-disable", "true", "--threshold-count", "100000"]).await;
    let (_, out) = env.sync(&[]).await;
    assert_eq!(out["counts"]["created"], 2504);
    let faults = json!({"rules": [{"path": "/v1.0/users", "contains": "$skiptoken", "count": 1000, "status": 500}]});
    env.sim.sim.lock().set_faults(serde_json::from_value(faults).unwrap());
    let (code, out) = env.sync(&["--full"]).await;
    assert_eq!(
        (code, out["status"].as_str(), out["error"]["kind"].as_str()),
        (1, Some("failed"), Some("service_error"))
    );
    let users = env.users().await;
    assert_eq!(users.len(), 2504);
    assert!(users.iter().all(|u| u["status"] == "active" && u["in_scope"] == true));
    // Once Graph answers again, the same run converges (a full read, and an incremental one).
    env.sim.sim.lock().set_faults(Default::default());
    let (code, out) = env.sync(&["--full"]).await;
    assert_eq!((code, out["counts"]["unchanged"].as_u64()), (0, Some(2504)));
    let (code, out) = env.sync(&[]).await;
    assert_eq!((code, out["counts"]["unchanged"].as_u64()), (0, Some(2504)));
    env.0.shutdown().await;
}

#[tokio::test]
async fn dry_run_changes_nothing_and_lists_the_plan() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF]).await;
    let run = env.run(&["sync", "--dry-run"]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("create") && run.stdout.contains("bob@contoso.com"), "{}", run.stdout);
    assert!(env.users().await.is_empty());
    let (code, out) = env.sync(&["--dry-run"]).await;
    assert_eq!((code, out["status"].as_str(), out["counts"]["created"].as_u64()), (0, Some("dry_run"), Some(3)));
    env.0.shutdown().await;
}

#[tokio::test]
async fn every_connection_error_names_its_cause_and_fix() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF]).await;
    assert_eq!(env.run(&["azure", "test"]).await.code, 0);

    let cases: Vec<(Vec<&str>, Option<&str>, &str, &str)> = vec![
        (vec!["--client-secret-stdin"], Some("ff5756c2-03fa-45d3-0000-000000000000\n"), "secret_invalid", "Value"),
        (
            vec!["--client-id", EXPIRED_CLIENT, "--client-secret-stdin"],
            Some("old"),
            "secret_expired",
            "New client secret",
        ),
        (
            vec!["--tenant-id", "00000000-6150-4c66-ae0d-cfc4ab7bc4d1"],
            None,
            "tenant_not_found",
            "Directory (tenant) ID",
        ),
        (vec!["--client-id", "00000000-fd3f-4b2d-9740-79170e634de5"], None, "app_not_found", "Application (client) ID"),
        (
            vec!["--client-id", NO_CONSENT_CLIENT, "--client-secret-stdin"],
            Some("nc"),
            "missing_permission",
            "User.Read.All",
        ),
        (vec!["--group-id", "00000000-7f2d-4a4c-9b2c-8e2f3a8c01d2"], None, "group_not_found", "Object ID"),
    ];
    for (flags, stdin, kind, hint) in cases {
        let env = Env::new().await;
        env.configure(&["--group-id", STAFF]).await;
        let mut args = vec!["azure", "configure"];
        args.extend(flags.iter());
        assert_eq!(env.run_with_stdin(&args, stdin).await.code, 0);
        let (code, out) = env.sync(&[]).await;
        assert_eq!(code, 1, "{kind}: {out}");
        assert_eq!(out["error"]["kind"], kind);
        assert!(out["error"]["message"].as_str().unwrap().contains(hint), "{kind}: {}", out["error"]["message"]);
        let test = env.run(&["azure", "test", "--json"]).await;
        assert_eq!(test.code, 1);
        let checks = test.json()["checks"].clone();
        assert!(checks.as_array().unwrap().iter().any(|c| c["kind"] == kind), "{kind}: {checks}");
        env.0.shutdown().await;
    }

    // Throttled beyond the retry budget.
    let env2 = Env::new().await;
    env2.configure(&[]).await;
    let faults = json!({"throttle": {"share": 1.0, "retryAfter": "0.3"}});
    env2.sim.sim.lock().set_faults(serde_json::from_value(faults).unwrap());
    let (_, out) = env2.sync(&[]).await;
    assert_eq!(out["error"]["kind"], "throttled");
    assert!(out["error"]["message"].as_str().unwrap().contains("next run"));
    // Unreachable: nothing listens on the configured port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // New endpoints take the secret again: the stored one never follows them.
    let moved = env2.run(&["azure", "configure", "--login-url", &closed, "--graph-url", &closed]).await;
    assert_eq!(moved.code, 0);
    let (_, out) = env2.sync(&[]).await;
    assert_eq!(out["error"]["kind"], "not_configured", "{out}");
    let args = ["azure", "configure", "--client-secret-stdin"];
    assert_eq!(env2.run_with_stdin(&args, Some(&format!("{SECRET}\n"))).await.code, 0);
    let (_, out) = env2.sync(&[]).await;
    assert_eq!(out["error"]["kind"], "unreachable", "{out}");
    assert!(out["error"]["message"].as_str().unwrap().contains("127.0.0.1"));
    env2.0.shutdown().await;
    env.0.shutdown().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_saves_nothing() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF]).await;
    let before = env.run(&["azure", "show", "--json"]).await.json();
    for (args, field) in [
        (vec!["azure", "configure", "--tenant-id", "not a tenant", "--auto-disable", "true"], "tenant_id"),
        (vec!["azure", "configure", "--client-id", "SafeGPT"], "client_id"),
        (vec!["azure", "configure", "--group-id", "Sales team"], "group_id"),
        (vec!["azure", "configure", "--remove-after-days", "0"], "remove_after_days"),
        (vec!["azure", "configure", "--remove-after-days", "3651"], "remove_after_days"),
        (
            vec![
                "azure",
                "configure",
                "--login-url",
                "http://login.example.com",
                "--graph-url",
                "https://g.example.com",
            ],
            "login_url",
        ),
        (vec!["azure", "configure", "--seats", "-3"], "seats"),
        (vec!["sync", "--now", "yesterday"], "--now"),
    ] {
        let run = env.run(&args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(field), "{args:?}: {}", run.stderr);
    }
    let run = env.run_with_stdin(&["azure", "configure", "--client-secret-stdin"], Some("\n")).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("client_secret"));
    assert_eq!(env.run(&["azure", "show", "--json"]).await.json(), before);
    assert_eq!(before["client_secret_set"], true);
    assert!(before.get("client_secret").is_none());

    // Inactive: no sync runs.
    assert_eq!(env.run(&["azure", "configure", "--active", "false"]).await.code, 0);
    let (code, out) = env.sync(&[]).await;
    assert_eq!((code, out["error"]["kind"].as_str()), (1, Some("inactive")));
    env.0.shutdown().await;
}

#[tokio::test]
async fn the_secret_is_only_ever_stored_sealed() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF]).await;
    env.sync(&[]).await;
    env.run(&["azure", "test"]).await;
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "plaintext secret on disk");
    }
    let audit = env.run(&["audit", "--json"]).await.stdout;
    assert!(audit.contains("[redacted]"));
    env.0.shutdown().await;
}

#[tokio::test]
async fn administrators_and_api_tokens_from_the_command_line() {
    let env = Env::new().await;
    let short = env
        .run_with_stdin(&["admin", "create", "--email", "admin@example.org", "--password-stdin"], Some("short\n"))
        .await;
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(short.stderr.contains("password: use at least 12 characters"), "{}", short.stderr);
    let created = env
        .run_with_stdin(
            &["admin", "create", "--email", "admin@example.org", "--password-stdin"],
            Some("a long password\n"),
        )
        .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let again = env
        .run_with_stdin(
            &["admin", "create", "--email", "ADMIN@example.org", "--password-stdin"],
            Some("a long password\n"),
        )
        .await;
    assert_eq!(again.code, 2, "e-mail addresses are unique regardless of case: {}", again.stderr);

    let token = env.run(&["tokens", "create", "--name", "ci"]).await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    let value = token.stdout.trim_end();
    assert!(value.starts_with("sgpt_") && !value.contains(char::is_whitespace), "the token alone: {:?}", token.stdout);
    assert_eq!(token.stdout.lines().count(), 1);
    let list = env.run(&["tokens", "list", "--json"]).await.json();
    assert_eq!(list[0]["name"], "ci");
    assert!(list[0]["revoked_at"].is_null());
    assert!(!list.to_string().contains(value), "the list never shows token values");
    if env.db_url.starts_with("sqlite") {
        let db = std::fs::read(env.dir.path().join("safegpt.db")).unwrap();
        assert!(!db.windows(value.len()).any(|w| w == value.as_bytes()), "only a hash of the token is stored");
    }
    let id = list[0]["id"].as_str().unwrap();
    assert_eq!(env.run(&["tokens", "revoke", id]).await.code, 0);
    assert!(env.run(&["tokens", "list", "--json"]).await.json()[0]["revoked_at"].is_string());
    let missing = env.run(&["tokens", "revoke", "0190c3a2-0000-7000-8000-000000000000"]).await;
    assert_eq!(missing.code, 2);
    let empty = env.run(&["tokens", "create", "--name", " "]).await;
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("name:"), "{}", empty.stderr);
}

#[tokio::test]
async fn two_syncs_at_once_one_runs_and_the_other_exits_4() {
    let env = Env::new().await;
    env.configure(&[]).await;
    // Slow Graph down so that the two processes overlap.
    env.sim.sim.lock().set_faults(serde_json::from_value(json!({"latencyMs": 300})).unwrap());
    let (a, b) = tokio::join!(env.run(&["sync", "--json"]), env.run(&["sync", "--json"]));
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(codes, [0, 4], "{}\n{}\n{}\n{}", a.stdout, a.stderr, b.stdout, b.stderr);
    let refused = if a.code == 4 { a.json() } else { b.json() };
    assert_eq!(refused["status"], "already_running");
    assert_eq!(refused["error"]["kind"], "already_running");
    let runs = env.run(&["runs", "list", "--json"]).await.json();
    assert_eq!(runs.as_array().unwrap().len(), 1, "the refused sync recorded no run");
    assert_eq!(runs[0]["status"], "succeeded");
}

#[tokio::test]
async fn a_lease_left_by_a_dead_process_expires_and_its_run_is_recorded_interrupted() {
    let env = Env::new().await;
    env.configure(&[]).await;
    let store = &env.store;
    let now = time::OffsetDateTime::now_utc();
    let minute = time::Duration::minutes(1);
    // A live holder elsewhere: refused.
    let other = store.acquire_lease("other-process", now, minute).await.unwrap().unwrap();
    let refused = env.run(&["sync", "--json"]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    store.release_lease(&other).await.unwrap();
    // A holder that died mid-run two minutes ago: its lease expired a minute ago.
    store.acquire_lease("dead-process", now - 2 * minute, minute).await.unwrap().unwrap();
    let dead_run = store.start_run("schedule", false, now - 2 * minute).await.unwrap();
    let run = env.run(&["sync", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let old = store.run(&dead_run.to_string()).await.unwrap();
    assert_eq!(old.status, safegpt_store::RunStatus::Interrupted);
    assert!(store.lease_holder().await.unwrap().is_none(), "the lease is released after the run");
}

#[tokio::test]
async fn an_expired_secret_fails_the_run_with_the_fix_and_warnings_come_ahead() {
    let env = Env::new().await;
    env.configure(&[]).await;
    let today = time::OffsetDateTime::now_utc().date();
    let yesterday = (today - time::Duration::days(1)).to_string();
    let configured = env.run(&["azure", "configure", "--secret-expires", &yesterday]).await;
    assert_eq!(configured.code, 0, "{}", configured.stderr);
    let shown = env.run(&["azure", "show", "--json"]).await.json();
    assert_eq!(shown["secret_expires"], yesterday.as_str());
    assert_eq!(shown["secret_warning"]["days_left"], -1);
    let text = env.run(&["azure", "show"]).await;
    assert!(text.stdout.contains("WARNING: The client secret expired on"), "{}", text.stdout);
    let (code, out) = env.sync(&[]).await;
    assert_eq!(code, 1);
    assert_eq!(out["error"]["kind"], "secret_expired");
    assert!(out["error"]["message"].as_str().unwrap().contains("New client secret"), "{out}");
    assert_eq!(env.users().await.len(), 0, "nothing changed");

    let soon = (today + time::Duration::days(10)).to_string();
    env.run(&["azure", "configure", "--secret-expires", &soon]).await;
    let shown = env.run(&["azure", "show", "--json"]).await.json();
    assert_eq!(
        (shown["secret_warning"]["days_left"].as_i64(), shown["secret_warning"]["step"].as_u64()),
        (Some(10), Some(14))
    );
    let (code, _) = env.sync(&[]).await;
    assert_eq!(code, 0, "a secret that still works syncs, with a warning in the log");
    let bad = env.run(&["azure", "configure", "--secret-expires", "29/11/2026"]).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("secret_expires:"), "{}", bad.stderr);
    let interval = env.run(&["azure", "configure", "--interval", "5s"]).await;
    assert_eq!(interval.code, 2);
    assert!(interval.stderr.contains("interval:"), "{}", interval.stderr);
    env.run(&["azure", "configure", "--interval", "1h"]).await;
    assert_eq!(env.run(&["azure", "show", "--json"]).await.json()["interval"], "1h");
}

#[tokio::test]
async fn json_logs_carry_the_run_id_on_every_line_of_a_run() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF]).await;
    let run = env.run_with_env(&["sync", "--json"], None, &[("SAFEGPT_LOG_FORMAT", "json")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.json()["run_id"].as_str().unwrap().to_owned();
    let lines: Vec<Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let of_run: Vec<&Value> =
        lines.iter().filter(|l| l["target"].as_str().unwrap_or("").starts_with("safegpt_sync")).collect();
    assert!(of_run.len() >= 4, "{}", run.stderr);
    for line in of_run {
        let id = line["fields"]["run_id"].as_str().or(line["span"]["run_id"].as_str());
        assert_eq!(id, Some(run_id.as_str()), "{line}");
    }
    let bad = env.run_with_env(&["runs", "list"], None, &[("SAFEGPT_LOG_FORMAT", "yaml")]).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("SAFEGPT_LOG_FORMAT"), "{}", bad.stderr);
}

#[tokio::test]
async fn a_config_file_sets_what_flags_and_the_environment_leave_open() {
    let env = Env::new().await;
    env.configure(&[]).await;
    let file = env.dir.path().join("safegpt.toml");
    let other_db = env.dir.path().join("from-file.db");
    std::fs::write(
        &file,
        format!("log = \"info\"\nlog_format = \"json\"\ndatabase_url = \"sqlite://{}\"\n", other_db.display()),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let run = env.run_with_env(&["sync", "--json"], None, &[("SAFEGPT_CONFIG", config)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.lines().count() > 2, "logs were written");
    assert!(run.stderr.lines().all(|l| l.starts_with('{')), "the file's log format applies: {}", run.stderr);
    assert!(!other_db.exists(), "SAFEGPT_DATABASE_URL in the environment wins over the file");
    let flag = env
        .run_with_env(&["--config", config, "runs", "list", "--json"], None, &[("SAFEGPT_LOG_FORMAT", "text")])
        .await;
    assert_eq!(flag.code, 0, "{}", flag.stderr);
    assert!(!flag.stderr.contains("{\"timestamp\""), "the environment wins over the file: {}", flag.stderr);

    std::fs::write(&file, "lease_ttl_secs = 1\n").unwrap();
    let bad = env.run_with_env(&["sync"], None, &[("SAFEGPT_CONFIG", config)]).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("SAFEGPT_LEASE_TTL_SECS"), "{}", bad.stderr);
    std::fs::write(&file, "listen_port = 8080\n").unwrap();
    let unknown = env.run_with_env(&["runs", "list"], None, &[("SAFEGPT_CONFIG", config)]).await;
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("listen_port"), "{}", unknown.stderr);
}

#[tokio::test]
async fn runs_follow_delta_links_and_read_everything_daily_on_demand_and_after_a_scope_change() {
    let env = Env::new().await;
    env.configure(&["--group-id", STAFF, "--auto-disable", "true"]).await;
    let read = |out: &Value| out["read_mode"].as_str().unwrap_or("none").to_owned();
    let e = &env;
    let sync_at = |at: &'static str| async move { e.sync(&["--now", at]).await.1 };
    assert_eq!(read(&sync_at("2026-12-01T09:00:00Z").await), "full", "the first run reads everything");
    env.sim.sim.lock().dir.set_member(STAFF, &id(1), false);
    let out = sync_at("2026-12-01T09:15:00Z").await;
    assert_eq!((read(&out).as_str(), out["counts"]["disabled"].as_u64()), ("incremental", Some(1)));
    assert_eq!(read(&env.sync(&["--now", "2026-12-01T09:30:00Z", "--full"]).await.1), "full", "--full");
    assert_eq!(read(&sync_at("2026-12-02T09:29:59Z").await), "incremental", "within a day of the last full read");
    assert_eq!(read(&sync_at("2026-12-02T09:30:00Z").await), "full", "a day after it");
    env.run(&["azure", "configure", "--full-sync-interval", "12h"]).await;
    assert_eq!(read(&sync_at("2026-12-02T21:29:59Z").await), "incremental");
    assert_eq!(read(&sync_at("2026-12-02T21:30:00Z").await), "full", "every 12 hours now");
    env.run(&["azure", "configure", "--include-guests", "true"]).await;
    assert_eq!(read(&sync_at("2026-12-02T21:31:00Z").await), "full", "another scope: the copy is planned anew");
    let runs = env.run(&["runs", "list", "--json"]).await.json();
    assert_eq!(runs[0]["totals"]["read_mode"], "full");
    assert_eq!(runs[2]["totals"]["read_mode"], "incremental");
    let show = env.run(&["azure", "show", "--json"]).await.json();
    assert_eq!(show["last_full_read_at"], "2026-12-02T21:31:00Z");
    assert_eq!(
        (show["full_sync_interval"].as_str(), show["full_sync_interval_secs"].as_u64()),
        (Some("12h"), Some(43_200))
    );
    let bad = env.run(&["azure", "configure", "--full-sync-interval", "8d"]).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("full_sync_interval"), "{}", bad.stderr);
    env.0.shutdown().await;
}
