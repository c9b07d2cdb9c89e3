//! The sync against Microsoft Graph as Microsoft documents it (strict graph-sim, see
//! docs/graph-fidelity.md): partial delta entries, guests without a mailbox, soft deletes
//! and restores that delta never reports, removals confirmed first, and retries as
//! Microsoft's SDKs do them.

mod support;

use std::time::{Duration, Instant};

use graph_sim::{AppRecord, GroupRecord, SecretRecord, TenantFile, UserRecord};
use safegpt_core::{DisabledReason, LocalUser, SettingsPatch, Status};
use safegpt_graph::RetryPolicy;
use safegpt_store::{ReadMode, RunStatus, UserFilter};
use safegpt_sync::SyncOutcome;
use serde_json::json;
use support::TestApp;
use time::{OffsetDateTime, macros::datetime};

const TENANT: &str = "7d1e6a4c-0000-4000-8000-00000000f1de";
const STAFF: &str = "9a000000-0000-4000-8000-000000000001";
const START: OffsetDateTime = datetime!(2026-12-01 09:00 UTC);

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn member(n: u32, alias: &str) -> UserRecord {
    UserRecord {
        id: id(n),
        user_principal_name: format!("{alias}@contoso.onmicrosoft.com"),
        mail: Some(format!("{alias}@contoso.com")),
        display_name: Some(alias.to_uppercase()),
        given_name: Some(alias.into()),
        surname: Some("Example".into()),
        job_title: Some("Engineer".into()),
        department: Some("R&D".into()),
        account_enabled: true,
        user_type: "Member".into(),
        other_mails: Vec::new(),
    }
}

fn guest(n: u32, alias: &str, mail: Option<&str>, other: Option<&str>) -> UserRecord {
    UserRecord {
        user_principal_name: format!("{alias}_home.example#EXT#@contoso.onmicrosoft.com"),
        mail: mail.map(str::to_owned),
        user_type: "Guest".into(),
        other_mails: other.into_iter().map(str::to_owned).collect(),
        ..member(n, alias)
    }
}

/// Staff holds ann, dis, rob, ron and three guests: gus (with a
/// mailbox), gwen (invited at another address, no mailbox) and xia (neither).
fn tenant() -> TenantFile {
    let users = vec![
        member(1, "ann"),
        member(2, "dis"),
        member(3, "rob"),
        member(4, "ron"),
        guest(5, "gus", Some("gus@home.example"), None),
        guest(6, "gwen", None, Some("gwen@home.example")),
        guest(7, "xia", None, None),
    ];
    TenantFile {
        tenant_id: TENANT.into(),
        domain: "contoso.onmicrosoft.com".into(),
        apps: vec![AppRecord {
            client_id: "c1000000-0000-4000-8000-000000000001".into(),
            roles: vec!["User.Read.All".into(), "Group.Read.All".into()],
            secrets: vec![SecretRecord { value: "s3cret".into(), expires: datetime!(2028-01-01 0:00 UTC) }],
        }],
        groups: vec![GroupRecord {
            id: STAFF.into(),
            display_name: "Staff".into(),
            members: users.iter().map(|u| u.id.clone()).collect(),
        }],
        users,
        devices: Vec::new(),
        service_principals: Vec::new(),
        fidelity: None,
        faults: None,
    }
}

/// A deployment under test, with the helpers these tests share.
struct Deployment(TestApp);

impl std::ops::Deref for Deployment {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

impl Deployment {
    async fn new(patch: SettingsPatch) -> Deployment {
        let patch = SettingsPatch {
            group_ids: Some(vec![STAFF.into()]),
            auto_disable: Some(true),
            threshold_count: Some("1000".into()),
            // Every run in these tests follows the delta links unless it has a reason not to.
            full_sync_interval: Some("6d".into()),
            ..patch
        };
        Deployment(TestApp::builder(tenant()).configured(patch).start().await)
    }

    async fn sync_with(&self, now: OffsetDateTime, retry: RetryPolicy) -> SyncOutcome {
        self.0.sync_with(now, retry, false).await
    }

    async fn sync(&self, now: OffsetDateTime) -> SyncOutcome {
        let outcome = self.sync_with(now, RetryPolicy::default()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
        outcome
    }

    async fn user(&self, n: u32) -> Option<LocalUser> {
        let users = self.store.users(UserFilter::default()).await.unwrap();
        users.into_iter().find(|u| u.azure_object_id.as_deref() == Some(id(n).as_str()))
    }

    fn edit(&self, n: u32, change: impl FnOnce(&mut UserRecord)) {
        let mut state = self.sim.sim.lock();
        let mut record = state.dir.users[&id(n)].record.clone();
        change(&mut record);
        state.dir.upsert_user(record);
    }

    fn faults(&self, faults: serde_json::Value) {
        self.sim.sim.lock().set_faults(serde_json::from_value(faults).unwrap());
    }

    async fn totals(&self, outcome: &SyncOutcome) -> (u64, u64) {
        let run = self.store.run(&outcome.run_id.to_string()).await.unwrap();
        (run.totals.confirmed_users, run.totals.kept_users)
    }

    fn requests(&self, route: &str, status: u16) -> u64 {
        let state = self.sim.sim.lock();
        state.stats.requests.get(&(route.to_owned(), status)).copied().unwrap_or(0)
    }
}

#[tokio::test]
async fn partial_delta_entries_change_only_what_they_carry() {
    let d = Deployment::new(SettingsPatch::default()).await;
    d.sync(START).await;
    let ann_before = d.user(1).await.unwrap();
    d.edit(2, |u| u.account_enabled = false);
    d.sync(START).await;
    let dis = d.user(2).await.unwrap();
    assert_eq!((dis.status, dis.disabled_reason), (Status::Disabled, Some(DisabledReason::DisabledInEntra)));
    assert!(d.user(5).await.is_none(), "guests are excluded");

    // Only the display name of the disabled user, only the department of ann, only the
    // name of an excluded guest: strict graph-sim sends each as its id and that property.
    d.edit(2, |u| u.display_name = Some("Dis Renamed".into()));
    d.edit(1, |u| u.department = Some("Sales".into()));
    d.edit(5, |u| u.display_name = Some("Gus Renamed".into()));
    let outcome = d.sync(START + time::Duration::hours(1)).await;
    assert_eq!(outcome.read_mode, Some(ReadMode::Incremental));

    let dis = d.user(2).await.unwrap();
    assert_eq!(dis.status, Status::Disabled, "a disabled user stays disabled when another property changes");
    assert_eq!(dis.disabled_reason, Some(DisabledReason::DisabledInEntra));
    assert_eq!(dis.profile.display_name.as_deref(), Some("Dis Renamed"));
    let ann = d.user(1).await.unwrap();
    assert_eq!(ann.profile.department.as_deref(), Some("Sales"));
    assert_eq!(
        ann.profile,
        safegpt_core::Profile { department: Some("Sales".into()), ..ann_before.profile },
        "properties Graph did not send keep their values"
    );
    assert_eq!(ann.status, Status::Active);
    assert!(d.user(5).await.is_none(), "an excluded guest stays out");

    // An explicit null clears.
    d.edit(1, |u| u.job_title = None);
    d.sync(START + time::Duration::hours(2)).await;
    assert_eq!(d.user(1).await.unwrap().profile.job_title, None);
    d.0.shutdown().await;
}

#[tokio::test]
async fn guests_are_reached_at_their_mail_else_other_mails_never_their_ext_upn() {
    let d = Deployment::new(SettingsPatch { include_guests: Some(true), ..SettingsPatch::default() }).await;
    // A local account whose address is xia's #EXT# UPN: the UPN is no address, no link.
    let ext_upn = "xia_home.example#EXT#@contoso.onmicrosoft.com";
    let local =
        d.store.add_local_user(&safegpt_core::Email::parse(ext_upn).unwrap(), "Not Xia", "test", START).await.unwrap();
    d.sync(START).await;
    assert_eq!(d.user(5).await.unwrap().profile.email, "gus@home.example");
    assert_eq!(d.user(6).await.unwrap().profile.email, "gwen@home.example");
    let xia = d.user(7).await.unwrap();
    assert_eq!(xia.profile.email, "", "no mailbox, no other address: no e-mail rather than the #EXT# UPN");
    assert_ne!(xia.id, local.id);
    let still_local = d.store.find_user(&local.id.to_string()).await.unwrap();
    assert_eq!((still_local.source, still_local.azure_object_id), (safegpt_core::Source::Local, None));
    d.0.shutdown().await;
}

#[tokio::test]
async fn a_restored_user_is_never_removed_even_when_delta_hides_the_restore() {
    let patch =
        SettingsPatch { auto_remove: Some(true), remove_after_days: Some("1".into()), ..SettingsPatch::default() };
    let d = Deployment::new(patch).await;
    d.sim.sim.lock().dir.fidelity.hide_restores = true;
    d.sync(START).await;
    let rob = d.user(3).await.unwrap();
    d.sim.sim.lock().dir.delete_user(&id(3));
    d.sync(START + time::Duration::hours(1)).await;
    assert_eq!(d.user(3).await.unwrap().disabled_reason, Some(DisabledReason::DeletedInEntra));

    // Restored in Entra; users/delta never says so. Two days later the removal is due.
    assert!(d.sim.sim.lock().dir.restore_user(&id(3)));
    let outcome = d.sync(START + time::Duration::days(2)).await;
    assert_eq!(outcome.counts.removed, 0);
    assert_eq!(outcome.read_mode, Some(ReadMode::Full), "a restore found through the deleted items reads everything");
    let back = d.user(3).await.unwrap();
    assert_eq!((back.id, back.status, back.disabled_reason), (rob.id, Status::Active, None), "the same record, active");
    d.0.shutdown().await;
}

#[tokio::test]
async fn a_removal_is_confirmed_with_graph_and_a_user_back_in_scope_is_kept() {
    let patch =
        SettingsPatch { auto_remove: Some(true), remove_after_days: Some("1".into()), ..SettingsPatch::default() };
    let d = Deployment::new(patch).await;
    d.sync(START).await;
    d.sim.sim.lock().dir.set_member(STAFF, &id(4), false);
    d.sync(START + time::Duration::hours(1)).await;
    assert_eq!(d.user(4).await.unwrap().disabled_reason, Some(DisabledReason::NotInGroup));

    // Ron rejoins, but Graph's replicas are behind: the next delta round does not show it.
    {
        let mut state = d.sim.sim.lock();
        state.dir.fidelity.replication_delay = true;
        state.dir.set_member(STAFF, &id(4), true);
    }
    let outcome = d.sync(START + time::Duration::days(2)).await;
    assert_eq!(outcome.read_mode, Some(ReadMode::Incremental));
    assert_eq!(d.totals(&outcome).await, (1, 1), "ron was confirmed and found back");
    assert_eq!(outcome.counts.removed, 0, "not removed");
    assert_eq!(d.user(4).await.unwrap().status, Status::Active, "Graph said directly that ron is back in Staff");
    assert_eq!(d.store.sync_cursor().await.unwrap().full_read_at, None, "the next run reads everything");
    assert_eq!(d.sync(START + time::Duration::days(2)).await.read_mode, Some(ReadMode::Full));
    assert_eq!(d.user(4).await.unwrap().status, Status::Active);

    // Someone really gone is confirmed gone, and removed.
    d.sim.sim.lock().dir.set_member(STAFF, &id(3), false);
    d.sync(START + time::Duration::days(3)).await;
    d.sync(START + time::Duration::days(3)).await;
    let outcome = d.sync(START + time::Duration::days(5)).await;
    assert_eq!(outcome.counts.removed, 1);
    assert_eq!(d.totals(&outcome).await, (1, 0));
    assert!(d.user(3).await.is_none());
    d.0.shutdown().await;
}

#[tokio::test]
async fn a_persistent_server_error_fails_the_run_within_half_a_minute_changing_nobody() {
    let d = Deployment::new(SettingsPatch::default()).await;
    d.sync(START).await;
    let before = d.store.users(UserFilter::default()).await.unwrap();
    d.sim.sim.lock().dir.delete_user(&id(1));
    d.faults(json!({"rules": [{"path": "/v1.0/users", "count": 1000, "status": 500}]}));
    let started = Instant::now();
    let outcome = d.sync_with(START + time::Duration::hours(1), RetryPolicy::default()).await;
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.error.unwrap().kind, "service_error");
    assert_eq!(d.requests("GET /v1.0/users/delta", 500), 4, "the first try and three retries");
    assert_eq!(d.store.users(UserFilter::default()).await.unwrap(), before, "nobody changed");
    d.0.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_throttling_is_retried_after_its_retry_after() {
    let d = Deployment::new(SettingsPatch::default()).await;
    // A 429 whose body is no Entra error at all (no AADSTS code): throttling all the same.
    let token = format!("/{TENANT}/oauth2/v2.0/token");
    d.faults(json!({"rules": [{"path": token, "count": 2, "status": 429, "retryAfter": "0.6"}]}));
    let started = Instant::now();
    d.sync(START).await;
    assert!(started.elapsed() >= Duration::from_millis(1200), "Retry-After was honoured: {:?}", started.elapsed());
    assert_eq!(d.requests("POST /{tenant}/oauth2/v2.0/token", 429), 2);
    assert_eq!(d.requests("POST /{tenant}/oauth2/v2.0/token", 200), 1);
    assert_eq!(d.user(1).await.unwrap().status, Status::Active);
    d.0.shutdown().await;
}

#[tokio::test]
async fn an_expired_page_token_starts_the_read_again_or_fails_cleanly() {
    let d = Deployment::new(SettingsPatch::default()).await;
    let expired = |count: u64| {
        json!({"rules": [{"path": "/v1.0/users/delta", "contains": "$skiptoken", "count": count, "status": 400,
            "code": "Directory_ExpiredPageToken"}]})
    };
    d.faults(expired(1));
    d.sync(START).await;
    assert_eq!(d.user(1).await.unwrap().status, Status::Active, "the round started again and completed");

    d.sim.sim.lock().dir.delete_user(&id(1));
    d.faults(expired(100));
    let outcome = d.sync_with(START + time::Duration::hours(1), RetryPolicy::default()).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.error.unwrap().kind, "page_token_expired");
    assert_eq!(d.user(1).await.unwrap().status, Status::Active, "nobody changed");
    d.faults(json!({}));
    d.sync(START + time::Duration::hours(2)).await;
    assert_eq!(
        d.user(1).await.unwrap().disabled_reason,
        Some(DisabledReason::DeletedInEntra),
        "the next run converges"
    );
    d.0.shutdown().await;
}
