//! The SQLite store: sealed secrets, plan application in one transaction, runs, audit, events.

use safegpt_core::{
    DisabledReason, Email, Plan, Policy, RemoteUser, Rows, Settings, SettingsPatch, Snapshot, Source, Status, UserType,
    plan,
};
use safegpt_store::{ChangeFilter, Kept, RunStatus, RunTotals, Sealer, Store, StoreError, UserFilter};
use secrecy::{ExposeSecret, SecretString};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-11-26 12:00 UTC);
const SECRET: &str = "tki8Q~00Qlki5wkrf.plaintext-secret-value";

/// A SQLite file in `dir`, or a fresh PostgreSQL database (`SAFEGPT_TEST_DATABASE_URL`).
async fn database(dir: &tempfile::TempDir) -> String {
    safegpt_store::testing::test_database_url(dir.path()).await
}

async fn open(url: &str) -> Store {
    Store::open(url, Sealer::from_key([42; 32])).await.unwrap()
}

fn remote(n: u32) -> RemoteUser {
    RemoteUser {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        user_principal_name: format!("u{n}@contoso.onmicrosoft.com"),
        mail: Some(format!("u{n}@contoso.com")),
        display_name: Some(format!("User {n}")),
        given_name: None,
        surname: None,
        job_title: None,
        department: None,
        account_enabled: true,
        user_type: UserType::Member,
        other_mail: None,
    }
}

fn policy() -> Policy {
    Policy::from(&Settings { auto_disable: true, auto_remove: true, ..Settings::default() })
}

fn plan_for(local: &[safegpt_core::LocalUser], users: Vec<RemoteUser>, now: OffsetDateTime) -> Plan {
    let snapshot = Snapshot { users, covered: Default::default(), complete: true };
    plan(local, &snapshot, &policy(), now, Uuid::now_v7)
}

/// A sync at `at` that finds `users` in Entra and applies its plan to the directory as it is.
async fn synced(store: &Store, users: Vec<RemoteUser>, at: OffsetDateTime) -> Uuid {
    let version = store.directory_version().await.unwrap();
    let local = store.users(UserFilter::default()).await.unwrap();
    let run = store.start_run("cli", false, at).await.unwrap();
    store.apply_plan(run, &plan_for(&local, users, at), version, None, RunTotals::default(), at).await.unwrap();
    run
}

/// A dry or held run started at `at` that lists `plan` without applying it.
async fn listed(store: &Store, status: RunStatus, plan: &Plan, at: OffsetDateTime) -> Uuid {
    let run = store.start_run("cli", false, at).await.unwrap();
    let version = store.directory_version().await.unwrap();
    store.record_unapplied_plan(run, status, plan, version, RunTotals::default(), None, at).await.unwrap();
    run
}

/// Every change of a run, page after page.
async fn all_changes(store: &Store, run: Uuid) -> Vec<safegpt_store::RunChange> {
    let (mut all, mut after) = (Vec::new(), -1);
    loop {
        let page = store.run_changes(run, &Default::default(), after, 1000).await.unwrap();
        all.extend(page.changes);
        match page.next_after {
            Some(seq) => after = seq,
            None => return all,
        }
    }
}

#[tokio::test]
async fn the_client_secret_is_sealed_and_never_in_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let store = open(&url).await;
    let settings = Settings::default()
        .apply(&SettingsPatch { tenant_id: Some("contoso.onmicrosoft.com".into()), ..Default::default() })
        .unwrap();
    store.save_settings(&settings, Some(&SecretString::from(SECRET.to_owned())), "cli", NOW).await.unwrap();
    let (loaded, secret_set) = store.settings().await.unwrap();
    assert_eq!(loaded, settings);
    assert!(secret_set);
    assert_eq!(store.client_secret_for(&settings.cloud).await.unwrap().unwrap().expose_secret(), SECRET);

    // Saving without a secret keeps the stored one.
    let changed = Settings { auto_disable: true, ..settings };
    store.save_settings(&changed, None, "cli", NOW).await.unwrap();
    assert_eq!(store.client_secret_for(&changed.cloud).await.unwrap().unwrap().expose_secret(), SECRET);
    // Only for the endpoints it is stored with.
    let secret_for = |cloud| {
        let store = &store;
        async move { store.client_secret_for(&cloud).await.unwrap().map(|s| s.expose_secret().to_owned()) }
    };
    assert_eq!(secret_for(changed.cloud.clone()).await.as_deref(), Some(SECRET));
    let elsewhere = safegpt_core::Cloud::Custom { login_url: "http://a".into(), graph_url: "http://b".into() };
    assert_eq!(secret_for(elsewhere).await, None, "a caller holding other endpoints gets no secret");

    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(audit[0].details["changed"], serde_json::json!(["auto_disable"]));
    assert_eq!(audit[1].details["client_secret"], "[redacted]");
    drop(store);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "plaintext secret found on disk");
    }

    // Another master key cannot open it, and says so.
    let other = Store::open(&url, Sealer::from_key([1; 32])).await.unwrap();
    let err = other.client_secret_for(&changed.cloud).await.unwrap_err();
    assert!(matches!(err, StoreError::Seal(_)), "{err}");
    assert!(err.to_string().contains("master key"));
}

#[tokio::test]
async fn a_plan_is_applied_with_events_audit_and_run_record() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let store = open(&url).await;
    let run = store.start_run("cli", false, NOW).await.unwrap();
    let p = plan_for(&[], vec![remote(1), remote(2)], NOW);
    store
        .apply_plan(
            run,
            &p,
            store.directory_version().await.unwrap(),
            None,
            RunTotals { users_read: 2, graph_requests: 2, ..RunTotals::default() },
            NOW,
        )
        .await
        .unwrap();

    let users = store.users(UserFilter::default()).await.unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| u.source == Source::Entra && u.status == Status::Active));
    let record = store.run(&run.to_string()).await.unwrap();
    let changes = all_changes(&store, run).await;
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.counts.created, 2);
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].action, "create");
    let events = store.events(0, 100).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["user.created", "user.created", "sync.succeeded"],
        "the users' events, then the run's end in the same transaction"
    );
    let end = &events[2];
    assert_eq!(
        (end.user_id.as_str(), &end.payload["run_id"], &end.payload["created"]),
        ("", &serde_json::json!(run), &serde_json::json!(2))
    );

    // User 2 leaves: disabled; 14 days later: removed, and the event says so.
    let run = store.start_run("cli", false, NOW).await.unwrap();
    let p = plan_for(&users, vec![remote(1)], NOW + Duration::hours(1));
    store.apply_plan(run, &p, store.directory_version().await.unwrap(), None, RunTotals::default(), NOW).await.unwrap();
    let gone = store.find_user("u2@contoso.com").await.unwrap();
    assert_eq!((gone.status, gone.disabled_reason), (Status::Disabled, Some(DisabledReason::DeletedInEntra)));
    let local = store.users(UserFilter::default()).await.unwrap();
    let later = NOW + Duration::days(15);
    let run = store.start_run("cli", false, later).await.unwrap();
    store
        .apply_plan(
            run,
            &plan_for(&local, vec![remote(1)], later),
            store.directory_version().await.unwrap(),
            None,
            RunTotals::default(),
            later,
        )
        .await
        .unwrap();
    assert!(matches!(
        store.find_user("u2@contoso.com").await,
        Err(StoreError::NotFound { entity: safegpt_store::Entity::User, .. })
    ));
    let kinds: Vec<String> = store.events(2, 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["sync.succeeded", "user.disabled", "sync.succeeded", "user.removed", "sync.succeeded"]);
    // The audit log keeps who was removed, when and why; the run's row points to its changes.
    let audit = store.audit_log(2).await.unwrap();
    assert_eq!(audit[0].action, "sync.applied");
    assert_eq!(audit[0].target.as_deref(), Some(run.to_string().as_str()));
    assert_eq!(audit[0].details["removed"], 1);
    assert_eq!(audit[1].action, "user.removed");
    assert_eq!(audit[1].target.as_deref(), Some("u2@contoso.com"));
    assert_eq!(audit[1].details["reason"], "disabled by the sync and out of scope for 14 day(s) or more");
    let events = store.events(0, 100).await.unwrap();
    let (users, runs): (Vec<_>, Vec<_>) = events.iter().partition(|e| e.kind.starts_with("user."));
    assert!(users.iter().all(|e| e.payload["user_id"] == e.user_id.as_str()), "each user event names its user");
    assert!(runs.iter().all(|e| e.user_id.is_empty() && e.payload.get("user_id").is_none()), "a run's end names none");
}

#[tokio::test]
async fn a_plan_that_fails_half_way_leaves_nothing_applied() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let store = open(&url).await;
    let run = store.start_run("cli", false, NOW).await.unwrap();
    // Two users with the same Entra object id violate the unique index on the second insert.
    let mut p = plan_for(&[], vec![remote(1), remote(2)], NOW);
    let mut twin = p.changes[0].clone();
    twin.user_id = Uuid::now_v7();
    let Rows::Created { after } = &mut twin.rows else { panic!("a creation") };
    after.id = twin.user_id;
    p.changes.push(twin);
    assert!(
        store
            .apply_plan(run, &p, store.directory_version().await.unwrap(), None, RunTotals::default(), NOW)
            .await
            .is_err()
    );
    assert!(store.users(UserFilter::default()).await.unwrap().is_empty());
    assert!(store.events(0, 10).await.unwrap().is_empty());
    assert_eq!(store.run(&run.to_string()).await.unwrap().status, RunStatus::Running);

    // The next run marks it interrupted.
    store.start_run("cli", false, NOW).await.unwrap();
    let record = store.run(&run.to_string()).await.unwrap();
    assert_eq!(record.status, RunStatus::Interrupted);
}

#[tokio::test]
async fn local_accounts_and_admin_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let store = open(&url).await;
    let settings = Settings { seats: 1, ..Settings::default() };
    store.save_settings(&settings, None, "cli", NOW).await.unwrap();
    let email = |raw: &str| Email::parse(raw).unwrap();
    let admin = store.add_local_user(&email("admin@example.org"), "Admin", "cli", NOW).await.unwrap();
    assert_eq!(admin.source, Source::Local);
    let err = store.add_local_user(&email("second@example.org"), "", "cli", NOW).await.unwrap_err();
    assert!(err.to_string().contains("no free seat"), "{err}");
    // The store only takes parsed e-mail addresses: a malformed one cannot reach it.
    let err = Email::parse("not an email").unwrap_err();
    assert!(err.contains("is not an e-mail address"), "{err}");
    let err = store.add_local_user(&email("ADMIN@example.org"), "", "cli", NOW).await.unwrap_err();
    assert!(err.to_string().starts_with("email:") && err.to_string().contains("exists already"), "{err}");

    let disabled = store.set_status_by_admin("Admin@Example.org", false, "cli", NOW).await.unwrap();
    assert_eq!((disabled.status, disabled.disabled_reason), (Status::Disabled, Some(DisabledReason::Admin)));
    let enabled = store.set_status_by_admin(&admin.id.to_string(), true, "cli", NOW).await.unwrap();
    assert_eq!(enabled.status, Status::Active);
    let kinds: Vec<String> = store.events(0, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["user.created", "user.disabled", "user.enabled"]);
}

#[tokio::test]
async fn one_lease_holder_at_a_time_and_a_dead_holders_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let a = open(&url).await;
    // A second process on the same database file.
    let b = open(&url).await;
    let ttl = Duration::seconds(60);
    let first = a.acquire_lease("a", NOW, ttl).await.unwrap().unwrap();
    let run = Uuid::now_v7();
    assert!(a.renew_lease("a", Some(run), NOW, ttl).await.unwrap());
    let held = b.acquire_lease("b", NOW + Duration::seconds(30), ttl).await.unwrap().unwrap_err();
    assert_eq!((held.holder.as_str(), held.run_id), ("a", Some(run)), "b is told who runs what");
    let again = a.acquire_lease("a", NOW + Duration::seconds(1), ttl).await.unwrap();
    assert!(again.is_ok(), "re-entrant for its holder");
    assert!(again.unwrap().generation > first.generation, "every taking is a new generation");
    assert!(!b.renew_lease("b", None, NOW, ttl).await.unwrap(), "only the holder renews");

    // a dies without releasing: after its lease expires, b takes over.
    assert!(b.acquire_lease("b", NOW + Duration::seconds(61), ttl).await.unwrap().is_err(), "renewed at +1 s");
    let taken = b.acquire_lease("b", NOW + Duration::seconds(62), ttl).await.unwrap().unwrap();
    assert!(!a.renew_lease("a", Some(run), NOW + Duration::seconds(63), ttl).await.unwrap(), "a lost it");
    a.release_lease(&first).await.unwrap();
    assert!(
        a.acquire_lease("a", NOW + Duration::seconds(64), ttl).await.unwrap().is_err(),
        "a's old lease releases nothing of b's"
    );
    // The same holder taking it again: the earlier taking's release leaves the later one.
    let again = b.acquire_lease("b", NOW + Duration::seconds(64), ttl).await.unwrap().unwrap();
    b.release_lease(&taken).await.unwrap();
    assert!(b.lease_holder().await.unwrap().is_some(), "the later taking still holds it");
    b.release_lease(&again).await.unwrap();
    assert!(b.lease_holder().await.unwrap().is_none(), "released: no holder");
    assert!(a.acquire_lease("a", NOW + Duration::seconds(64), ttl).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_holder_that_stalled_past_its_lease_writes_nothing_once_another_took_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let a = open(&url).await;
    let b = open(&url).await;
    let ttl = Duration::seconds(60);
    let run = a.start_run("cli", false, NOW).await.unwrap();
    let fence = a.acquire_lease("a", NOW, ttl).await.unwrap().unwrap();
    let writes = a.fenced(fence.clone());
    let error = safegpt_store::RunError { kind: "x".into(), message: "x".into(), detail: None };
    // Current: a fenced write goes through, also after the lease expired while nobody took it.
    writes.fail_run(run, &error, RunTotals::default(), NOW).await.unwrap();

    // a stalls; its lease expires; b takes over. a wakes and tries to apply.
    let plan = plan_for(&[], vec![remote(1)], NOW);
    let taken_by_b = b.acquire_lease("b", NOW + Duration::seconds(61), ttl).await.unwrap().unwrap();
    let version = a.directory_version().await.unwrap();
    let run = a.start_run("cli", false, NOW).await.unwrap();
    let err = writes.apply_plan(run, &plan, version, None, RunTotals::default(), NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Fenced), "{err}");
    assert!(a.users(UserFilter::default()).await.unwrap().is_empty(), "nothing was applied");
    // Released by b and taken by no one: a's old lease is still not the current one.
    b.release_lease(&taken_by_b).await.unwrap();
    let err = writes.apply_plan(run, &plan, version, None, RunTotals::default(), NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Fenced), "{err}");
    // Taken afresh, the new fence writes.
    let fresh = a.acquire_lease("a", NOW + Duration::seconds(70), ttl).await.unwrap().unwrap();
    assert!(fresh.generation > fence.generation + 1);
    a.fenced(fresh).apply_plan(run, &plan, version, None, RunTotals::default(), NOW).await.unwrap();
    assert_eq!(a.users(UserFilter::default()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn due_syncs_of_many_organisations_are_claimed_once_each_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let (a, b) = (open(&url).await, open(&url).await);
    for n in 0..30 {
        let slug = format!("org-{n:02}");
        a.create_org(&slug, "Org", "en", "test", NOW).await.unwrap();
        // Due from 30 minutes ago to now, the oldest first; org-29 only later.
        let at = if n == 29 { NOW + Duration::minutes(1) } else { NOW - Duration::minutes(30 - n) };
        a.for_org(&slug).schedule_next(at, u32::try_from(n % 3).unwrap()).await.unwrap();
    }
    a.change_org("org-05", &safegpt_store::OrgChange { disabled: Some(true), ..Default::default() }, "test", NOW)
        .await
        .unwrap();
    let hold = NOW + Duration::minutes(5);
    // Two instances claim at the same instant, each up to 10, until nothing is due.
    let mut claimed = Vec::new();
    loop {
        let (x, y) = tokio::join!(a.claim_due(NOW, 10, hold), b.claim_due(NOW, 10, hold));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x.len() <= 10 && y.len() <= 10);
        if x.is_empty() && y.is_empty() {
            break;
        }
        claimed.extend(x.into_iter().chain(y));
    }
    let mut orgs: Vec<&str> = claimed.iter().map(|(o, _)| o.as_str()).collect();
    orgs.sort_unstable();
    let due: Vec<String> = (0..29).filter(|n| *n != 5).map(|n| format!("org-{n:02}")).collect();
    assert_eq!(orgs, due, "every due enabled organisation exactly once, none not due, none disabled");
    assert!(claimed.iter().all(|(o, f)| *f == o[4..].parse::<u32>().unwrap() % 3), "failures come along");
    assert_eq!(a.for_org("org-00").next_run_at().await.unwrap(), Some(hold), "held until planned");
    // Those not failing first (the first turn's 20 claims), failing ones behind them.
    let first_turn: Vec<u32> = claimed[..20].iter().map(|(_, f)| *f).collect();
    assert_eq!(first_turn.iter().filter(|f| **f == 0).count(), 10, "{claimed:?}");
    assert!(claimed[20..].iter().all(|(_, f)| *f == 2), "{claimed:?}");
}

#[tokio::test]
async fn large_plans_are_applied_in_batches_with_every_row_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    let store = open(&url).await;
    // More changes than one batch (2000) and more rows than one statement holds.
    let plan = plan_for(&[], (1..=4500).map(remote).collect(), NOW);
    assert_eq!(plan.changes.len(), 4500);
    let run = store.start_run("cli", false, NOW).await.unwrap();
    store
        .apply_plan(run, &plan, store.directory_version().await.unwrap(), None, RunTotals::default(), NOW)
        .await
        .unwrap();
    assert_eq!(store.count_users(&UserFilter::default()).await.unwrap(), 4500);
    let record = store.run(&run.to_string()).await.unwrap();
    let changes = all_changes(&store, run).await;
    assert_eq!(record.counts.created, 4500);
    assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), (0..4500).collect::<Vec<i64>>());
    let mut events = store.events(0, 10_000).await.unwrap();
    assert_eq!(events.pop().map(|e| e.kind), Some("sync.succeeded".into()), "the run's end comes last");
    assert_eq!(events.len(), 4500);
    let ids: Vec<String> = plan.changes.iter().map(|c| c.user_id.to_string()).collect();
    assert_eq!(events.iter().map(|e| e.user_id.clone()).collect::<Vec<_>>(), ids, "events follow the plan's order");
    // Creations are listed once, with the run: the audit log has the run's row, not 4,500.
    let audit = store.audit_log(10_000).await.unwrap();
    assert_eq!(audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["sync.applied"]);
    assert_eq!(audit[0].details["created"], 4500);

    // Disabling and, 15 days later, removing them all is batched too.
    let local = store.users(UserFilter::default()).await.unwrap();
    let disable = plan_for(&local, Vec::new(), NOW);
    assert_eq!(disable.counts.disabled, 4500);
    let run = store.start_run("cli", false, NOW).await.unwrap();
    store
        .apply_plan(run, &disable, store.directory_version().await.unwrap(), None, RunTotals::default(), NOW)
        .await
        .unwrap();
    let disabled = UserFilter { status: Some(Status::Disabled), ..UserFilter::default() };
    assert_eq!(store.count_users(&disabled).await.unwrap(), 4500);
    let later = NOW + Duration::days(15);
    let local = store.users(UserFilter::default()).await.unwrap();
    let remove = plan_for(&local, Vec::new(), later);
    assert_eq!(remove.counts.removed, 4500);
    let run = store.start_run("cli", false, later).await.unwrap();
    store
        .apply_plan(run, &remove, store.directory_version().await.unwrap(), None, RunTotals::default(), later)
        .await
        .unwrap();
    assert_eq!(store.count_users(&UserFilter::default()).await.unwrap(), 0);
}

#[tokio::test]
async fn a_runs_changes_come_a_page_at_a_time_filtered_with_counts_kept_in_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&database(&dir).await).await;
    let first = store.start_run("cli", false, NOW).await.unwrap();
    store
        .apply_plan(
            first,
            &plan_for(&[], (1..=250).map(remote).collect(), NOW),
            store.directory_version().await.unwrap(),
            None,
            RunTotals::default(),
            NOW,
        )
        .await
        .unwrap();
    let record = store.run(&first.to_string()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&record.breakdown).unwrap(),
        serde_json::json!([{"action": "create", "reason_code": "new_in_scope", "reason": "new in scope", "count": 250}])
    );
    let any = ChangeFilter::default();
    let page = store.run_changes(first, &any, -1, 100).await.unwrap();
    assert_eq!(page.changes.iter().map(|c| c.seq).collect::<Vec<_>>(), (0..100).collect::<Vec<i64>>());
    assert_eq!(page.next_after, Some(99));
    let last = store.run_changes(first, &any, 199, 100).await.unwrap();
    assert_eq!((last.changes.len(), last.changes[0].seq, last.next_after), (50, 200, None));
    assert_eq!(all_changes(&store, first).await.len(), 250);

    let text = |t: &str| ChangeFilter { text: Some(t.into()), ..ChangeFilter::default() };
    let found = |page: safegpt_store::ChangePage| page.changes.into_iter().map(|c| c.email).collect::<Vec<_>>();
    assert_eq!(found(store.run_changes(first, &text("U17@CONTOSO"), -1, 100).await.unwrap()), ["u17@contoso.com"]);
    assert_eq!(store.run_changes(first, &text("u17"), -1, 100).await.unwrap().changes.len(), 11, "u17, u170–u179");
    assert!(store.run_changes(first, &text("u_7"), -1, 100).await.unwrap().changes.is_empty(), "_ is no wildcard");
    let by_id = store.run_changes(first, &text(&remote(42).id), -1, 100).await.unwrap();
    assert_eq!(found(by_id), ["u42@contoso.com"]);

    // Ten users deleted in Entra, one renamed.
    let local = store.users(UserFilter::default()).await.unwrap();
    let mut users: Vec<RemoteUser> = (1..=240).map(remote).collect();
    users[0].display_name = Some("Renamed".into());
    let later = NOW + Duration::hours(1);
    let second = store.start_run("cli", false, later).await.unwrap();
    store
        .apply_plan(
            second,
            &plan_for(&local, users, later),
            store.directory_version().await.unwrap(),
            None,
            RunTotals::default(),
            later,
        )
        .await
        .unwrap();
    let record = store.run(&second.to_string()).await.unwrap();
    let summary: Vec<(String, String, u64)> =
        record.breakdown.iter().map(|b| (b.action.clone(), b.reason.clone(), b.count)).collect();
    assert_eq!(
        summary,
        [
            ("disable".to_owned(), "out of scope: deleted in Entra ID".to_owned(), 10),
            ("update".to_owned(), "attributes changed in Entra ID".to_owned(), 1)
        ]
    );
    let disables =
        ChangeFilter { action: Some("disable".into()), reason_code: Some("out_of_scope".into()), text: None };
    let page = store.run_changes(second, &disables, -1, 4).await.unwrap();
    assert_eq!((page.changes.len(), page.next_after.is_some()), (4, true));
    assert!(page.changes.iter().all(|c| c.action == "disable"));
    let rest = store.run_changes(second, &disables, page.next_after.unwrap(), 100).await.unwrap();
    assert_eq!((rest.changes.len(), rest.next_after), (6, None));
    let creates = ChangeFilter { action: Some("create".into()), ..ChangeFilter::default() };
    assert!(store.run_changes(second, &creates, -1, 100).await.unwrap().changes.is_empty());
}

#[tokio::test]
async fn retention_removes_old_change_lists_events_and_audit_in_batches_and_keeps_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&database(&dir).await).await;
    let long_ago = NOW - Duration::days(200);
    let old = synced(&store, (1..=5).map(remote).collect(), long_ago).await;
    let local = store.users(UserFilter::default()).await.unwrap();
    let recent = synced(&store, (1..=7).map(remote).collect(), NOW).await;
    // Held after the recent run applied (an applied run supersedes older held runs).
    let held = listed(&store, RunStatus::Held, &plan_for(&local, vec![remote(1)], long_ago), long_ago).await;

    let cut = NOW - Duration::days(180);
    let mut batches = Vec::new();
    loop {
        let batch = store.prune_batch(Kept::RunChanges, cut, 2, NOW).await.unwrap();
        batches.push(batch.removed);
        if batches.len() == 1 {
            // Marked before its rows go: no reader sees a list with its oldest changes missing.
            assert_eq!(store.run(&old.to_string()).await.unwrap().changes_removed_at, Some(NOW));
            assert_eq!(all_changes(&store, old).await.len(), 3);
        }
        if !batch.more {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1, 0], "five changes in batches of two; the held run keeps its list");
    let pruned = store.run(&old.to_string()).await.unwrap();
    assert_eq!(pruned.changes_removed_at, Some(NOW));
    assert_eq!(pruned.breakdown.iter().map(|b| b.count).sum::<u64>(), 5, "the counts outlive the list");
    assert!(all_changes(&store, old).await.is_empty());
    assert_eq!(all_changes(&store, held).await.len(), 4, "a held run keeps what it asks to approve");
    assert_eq!(all_changes(&store, recent).await.len(), 2);
    assert_eq!(store.run(&recent.to_string()).await.unwrap().changes_removed_at, None);

    // An instance whose clock is weeks behind writes an "old" event after the recent ones.
    synced(&store, (1..=8).map(remote).collect(), long_ago).await;
    let events_before = store.events(0, 100).await.unwrap();
    assert_eq!(store.events_removed_through().await.unwrap(), 0);
    let mut removed = 0;
    loop {
        let batch = store.prune_batch(Kept::Events, NOW - Duration::days(30), 3, NOW).await.unwrap();
        removed += batch.removed;
        if !batch.more {
            break;
        }
    }
    // The old run: five users and its end; the recent run: two and its end; then, skewed,
    // the held run's end and a run of one user and its end.
    assert_eq!(removed, 6, "the old run's six events, not the skewed ones after the recent ones");
    let kept: Vec<i64> = store.events(0, 100).await.unwrap().into_iter().map(|e| e.seq).collect();
    assert_eq!((kept.len(), events_before.len()), (6, 12));
    assert_eq!(store.events_removed_through().await.unwrap(), events_before[5].seq, "the newest removed");
    assert!(kept.iter().all(|seq| *seq > events_before[5].seq), "a prefix went: {kept:?}");
    let audit_before = store.audit_log(100).await.unwrap().len();
    while store.prune_batch(Kept::AuditLog, cut, 1000, NOW).await.unwrap().more {}
    let audit = store.audit_log(100).await.unwrap();
    assert!(audit.iter().all(|a| a.at.as_str() >= "2026-06-09"), "{audit:?}");
    assert!(audit.len() < audit_before && !audit.is_empty());
}

#[tokio::test]
async fn retention_keeps_the_list_of_an_old_held_run_confirmed_within_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&database(&dir).await).await;
    let long_ago = NOW - Duration::days(400);
    let first = synced(&store, (1..=3).map(remote).collect(), long_ago).await;
    let local = store.users(UserFilter::default()).await.unwrap();
    // A run that changed nothing.
    let nothing = plan_for(&local, (1..=3).map(remote).collect(), long_ago);
    assert!(nothing.changes.is_empty());
    let quiet = listed(&store, RunStatus::DryRun, &nothing, long_ago).await;
    // Held for over a year, then confirmed today: the confirmation read the list as what it
    // approves, and the list stays for the period after that decision.
    let held = listed(&store, RunStatus::Held, &plan_for(&local, vec![remote(1)], long_ago), long_ago).await;
    store.decide_held(held, RunStatus::Confirmed, "admin:a@contoso.com", NOW).await.unwrap();

    while store.prune_batch(Kept::RunChanges, NOW - Duration::days(180), 1000, NOW).await.unwrap().more {}
    assert!(all_changes(&store, first).await.is_empty());
    assert_eq!(store.held_run_targets(held).await.unwrap().len(), 2, "what the confirmation approves stays");
    assert_eq!(store.run(&held.to_string()).await.unwrap().changes_removed_at, None);
    assert_eq!(
        store.run(&quiet.to_string()).await.unwrap().changes_removed_at,
        None,
        "a run that listed nothing lost nothing"
    );

    // A year after the decision, the list goes like any other.
    let later = NOW + Duration::days(365);
    while store.prune_batch(Kept::RunChanges, later - Duration::days(180), 1000, later).await.unwrap().more {}
    assert!(store.held_run_targets(held).await.unwrap().is_empty());
    assert_eq!(store.run(&held.to_string()).await.unwrap().changes_removed_at, Some(later));
}

#[tokio::test]
async fn a_follower_misses_no_event_while_a_sync_and_an_administrator_write_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&database(&dir).await).await);
    synced(&store, vec![remote(1)], NOW).await;
    let local = store.users(UserFilter::default()).await.unwrap();
    let big = plan_for(&local, (1..=5000).map(remote).collect(), NOW);
    let run = store.start_run("cli", false, NOW).await.unwrap();

    // A follower reads the outbox the whole time, as the platform would.
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (0, Vec::new());
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = store.events(cursor, 1000).await.unwrap();
                cursor = page.last().map_or(cursor, |e| e.seq);
                let empty = page.is_empty();
                seen.extend(page.into_iter().map(|e| e.seq));
                if finished && empty {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let sync = {
        let store = store.clone();
        tokio::spawn(async move {
            // The administrator's writes move the directory on: the sync tries again, as the
            // engine plans again (this plan never touches the administrator's user).
            loop {
                let version = store.directory_version().await.unwrap();
                match store.apply_plan(run, &big, version, None, RunTotals::default(), NOW).await {
                    Err(StoreError::DirectoryMoved) => continue,
                    applied => return applied.unwrap(),
                }
            }
        })
    };
    // The administrator disables and enables the first user again and again while the sync
    // writes its 4,999 events.
    let mut toggles = 0;
    while !sync.is_finished() {
        let enable = toggles % 2 == 1;
        store.set_status_by_admin(&local[0].id.to_string(), enable, "admin:a@contoso.com", NOW).await.unwrap();
        toggles += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    sync.await.unwrap();
    done.store(true, Ordering::SeqCst);
    let seen = follower.await.unwrap();

    let mut all = Vec::new();
    loop {
        let page = store.events(all.last().copied().unwrap_or(0), 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        all.extend(page.into_iter().map(|e| e.seq));
    }
    // Each run's users and its end, and the administrator's toggles.
    assert_eq!(all.len(), (1 + 1) + (4999 + 1) + toggles);
    assert_eq!(seen, all, "every event once, in order: none committed behind the follower's cursor");
}

/// The write-ahead log takes the whole of a large run; it must not keep that size on disk.
#[tokio::test]
async fn the_write_ahead_log_is_cut_back_after_a_full_read_and_gone_when_the_store_closes() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir).await;
    if !url.starts_with("sqlite") {
        return; // PostgreSQL manages its own log.
    }
    let wal = dir.path().join("safegpt.db-wal");
    let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let store = open(&url).await;
    synced(&store, (0..3000).map(remote).collect(), NOW).await;
    assert!(wal_size() > 1 << 20, "the run went through the log: {} bytes", wal_size());
    store.tidy_after_full_read().await;
    assert_eq!(wal_size(), 0, "checkpointed and cut back once the run is over");
    synced(&store, (0..3000).map(remote).collect(), NOW + Duration::hours(1)).await;
    store.close().await;
    assert!(!wal.exists(), "the last connection folds the log into the database and deletes it");
    let store = open(&url).await;
    assert_eq!(store.users(UserFilter::default()).await.unwrap().len(), 3000, "nothing lost on the way");
}

/// A plan is made from rows read before an administrator acted; written, it would undo them.
#[tokio::test]
async fn a_plan_made_before_an_administrator_acted_is_refused_whole_and_planned_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&database(&dir).await).await;
    synced(&store, vec![remote(1), remote(2)], NOW).await;
    let later = NOW + Duration::hours(1);
    let mut renamed = remote(1);
    renamed.display_name = Some("Renamed".into());

    let version = store.directory_version().await.unwrap();
    let local = store.users(UserFilter::default()).await.unwrap();
    let plan = plan_for(&local, vec![renamed.clone(), remote(2)], later);
    assert_eq!(plan.counts.updated, 1);
    let id = local.iter().find(|u| u.profile.email == "u1@contoso.com").unwrap().id.to_string();
    store.set_status_by_admin(&id, false, "admin:a@contoso.com", later).await.unwrap();
    let run = store.start_run("cli", false, later).await.unwrap();
    let refused = store.apply_plan(run, &plan, version, None, RunTotals::default(), later).await;
    assert!(matches!(refused, Err(StoreError::DirectoryMoved)), "{refused:?}");
    // Nor is it listed for an administrator to approve: that list would be out of date.
    let listed = store.record_unapplied_plan(run, RunStatus::Held, &plan, version, RunTotals::default(), None, later);
    assert!(matches!(listed.await, Err(StoreError::DirectoryMoved)));
    let user = store.find_user(&id).await.unwrap();
    assert_eq!((user.status, user.disabled_reason), (Status::Disabled, Some(DisabledReason::Admin)));
    assert_eq!(user.profile.display_name.as_deref(), Some("User 1"), "nothing of the plan was written");
    assert!(all_changes(&store, run).await.is_empty());
    assert_eq!(store.events(0, 100).await.unwrap().last().unwrap().kind, "user.disabled");

    // Planned again from the directory as it is now: Entra's rename, the administrator's disable.
    let version = store.directory_version().await.unwrap();
    let local = store.users(UserFilter::default()).await.unwrap();
    let plan = plan_for(&local, vec![renamed, remote(2)], later);
    store.apply_plan(run, &plan, version, None, RunTotals::default(), later).await.unwrap();
    let user = store.find_user(&id).await.unwrap();
    assert_eq!((user.status, user.disabled_reason), (Status::Disabled, Some(DisabledReason::Admin)));
    assert_eq!(user.profile.display_name.as_deref(), Some("Renamed"));
}

/// The reverse: a removal planned before an administrator enabled the user.
#[tokio::test]
async fn a_removal_planned_before_an_administrator_enabled_the_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&database(&dir).await).await;
    synced(&store, vec![remote(1)], NOW).await;
    synced(&store, vec![], NOW).await;
    let later = NOW + Duration::days(15);
    let version = store.directory_version().await.unwrap();
    let local = store.users(UserFilter::default()).await.unwrap();
    let plan = plan_for(&local, vec![], later);
    assert_eq!(plan.counts.removed, 1);
    store.set_status_by_admin(&local[0].id.to_string(), true, "admin:a@contoso.com", later).await.unwrap();
    let run = store.start_run("cli", false, later).await.unwrap();
    let refused = store.apply_plan(run, &plan, version, None, RunTotals::default(), later).await;
    assert!(matches!(refused, Err(StoreError::DirectoryMoved)), "{refused:?}");
    assert_eq!(store.find_user(&local[0].id.to_string()).await.unwrap().status, Status::Active, "still there");
}

/// Forty requests to create the same account, or the last free seat, at one instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_accounts_created_at_once_take_an_address_and_a_seat_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(&database(&dir).await).await);
    let settings = Settings { seats: 5, ..Settings::default() };
    store.save_settings(&settings, None, "cli", NOW).await.unwrap();
    let attempts = (0..40).map(|n| {
        let store = store.clone();
        // Twenty for one address, twenty for twenty others: four seats are left after the first.
        let address = if n % 2 == 0 { "same@example.org".to_owned() } else { format!("other{n}@example.org") };
        tokio::spawn(async move { store.add_local_user(&Email::parse(&address).unwrap(), "", "cli", NOW).await })
    });
    let results = futures_util::future::join_all(attempts).await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 5, "one account per address and no more than the seats: {results:?}");
    assert!(
        results.iter().flatten().all(|_| true)
            && results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, StoreError::Conflict { .. })),
        "{results:?}"
    );
    let users = store.users(UserFilter::default()).await.unwrap();
    assert_eq!(users.len(), 5);
    assert!(users.iter().filter(|u| u.profile.email == "same@example.org").count() <= 1);
}

#[tokio::test]
async fn events_of_some_kinds_come_with_how_far_the_read_saw() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&database(&dir).await).await;
    let (none, top) = store.events_of_kinds(0, &["sync.succeeded"], 10).await.unwrap();
    assert_eq!((none.len(), top), (0, 0), "nothing yet: the cursor stays");
    synced(&store, (1..=5).map(remote).collect(), NOW).await;
    let all: Vec<i64> = store.events(0, 100).await.unwrap().iter().map(|e| e.seq).collect();
    let (ends, top) = store.events_of_kinds(0, &["sync.succeeded", "sync.failed"], 10).await.unwrap();
    assert_eq!(ends.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["sync.succeeded"]);
    assert_eq!(top, *all.last().unwrap());
    let (page, _) = store.events_of_kinds(all[0], &["user.created"], 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), all[1..3], "after the cursor, in order, a page");
    assert!(page.iter().all(|e| e.payload["user_id"] == e.user_id.as_str()));
    let (nothing, top) = store.events_of_kinds(0, &[], 10).await.unwrap();
    assert_eq!((nothing.len(), top), (0, *all.last().unwrap()));
    // A failed preview (a dry run) decided nothing: no run end in the outbox.
    let preview = store.start_run("cli", true, NOW).await.unwrap();
    let error = safegpt_store::RunError { kind: "service_error".into(), message: "down".into(), detail: None };
    store.fail_run(preview, &error, RunTotals::default(), NOW).await.unwrap();
    let real = store.start_run("cli", false, NOW).await.unwrap();
    store.fail_run(real, &error, RunTotals::default(), NOW).await.unwrap();
    let (failed, _) = store.events_of_kinds(0, &["sync.failed"], 10).await.unwrap();
    assert_eq!(failed.iter().map(|e| e.payload["run_id"].clone()).collect::<Vec<_>>(), [serde_json::json!(real)]);
    // Another organisation's events are neither returned nor counted.
    let other = store.for_org("acme");
    store.create_org("acme", "Acme", "en", "test", NOW).await.unwrap();
    let (theirs, top) = other.events_of_kinds(0, &["user.created"], 10).await.unwrap();
    assert_eq!((theirs.len(), top), (0, 0));
}

#[tokio::test]
async fn retention_removes_old_deliveries_and_sent_mails_but_not_pending_ones() {
    use safegpt_store::{AttemptRecord, NewNotification};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&database(&dir).await).await;
    let long_ago = NOW - Duration::days(200);
    let secret = secrecy::SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let events = ["user.created".to_owned()];
    store.create_webhook("w1", "https://hooks.example.org/in", &events, &secret, "t", long_ago).await.unwrap();
    for (at, message) in [(long_ago, "old"), (NOW, "new")] {
        let attempt = AttemptRecord {
            message_id: message,
            event_type: "webhook.test",
            seq: None,
            attempt: 1,
            status_code: Some(200),
            error: None,
        };
        store.record_webhook_attempt("w1", attempt, at).await.unwrap();
    }
    let mail = |subject: &str| NewNotification {
        kind: "failing".into(),
        recipients: vec!["ops@contoso.com".into()],
        subject: subject.into(),
        body: "b".into(),
    };
    store.queue_notification(&mail("sent long ago"), long_ago).await.unwrap();
    let sent = store.claim_notifications("i1", long_ago, long_ago + Duration::minutes(2), 1).await.unwrap();
    store.notification_attempted(&sent[0].id, "i1", None, None, long_ago).await.unwrap();
    store.queue_notification(&mail("never sent"), long_ago).await.unwrap();
    store.queue_notification(&mail("sent now"), NOW).await.unwrap();

    let batch = store.prune_batch(Kept::Deliveries, NOW - Duration::days(180), 1000, NOW).await.unwrap();
    assert_eq!(batch.removed, 2, "the old attempt and the old sent e-mail");
    let log = store.webhook_attempts("w1", 10).await.unwrap();
    assert_eq!(log.iter().map(|a| a.message_id.as_str()).collect::<Vec<_>>(), ["new"]);
    let mails = store.notifications(10).await.unwrap();
    assert_eq!(mails.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(), ["sent now", "never sent"]);
}
