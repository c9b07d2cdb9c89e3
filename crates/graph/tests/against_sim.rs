//! The Graph client against graph-sim on 127.0.0.1: paging, nested groups, every error
//! kind an administrator can act on, retries and token refresh.

use std::time::Duration;

use graph_sim::{AppRecord, Faults, GenerateSpec, SecretRecord, SimOptions, SimServer, TenantFile, generate};
use safegpt_graph::{Credentials, Endpoints, ErrorKind, GraphClient, RetryPolicy};
use serde_json::json;
use time::macros::datetime;

const NO_ROLES_APP: &str = "0a0a0a0a-0000-4000-8000-000000000001";
const EXPIRED_APP: &str = "0a0a0a0a-0000-4000-8000-000000000002";
const USERS_ONLY_APP: &str = "0a0a0a0a-0000-4000-8000-000000000003";

fn tenant(users: usize) -> TenantFile {
    let mut t = generate(&GenerateSpec {
        users,
        groups: 9,
        nesting: 3,
        guests_percent: 10,
        disabled_percent: 5,
        seed: 11,
        memberships: None,
    });
    let secret = |value: &str, expires| vec![SecretRecord { value: value.into(), expires }];
    t.apps.push(AppRecord {
        client_id: NO_ROLES_APP.into(),
        roles: vec![],
        secrets: secret("s-noroles", datetime!(2030-01-01 0:00 UTC)),
    });
    t.apps.push(AppRecord {
        client_id: EXPIRED_APP.into(),
        roles: vec!["User.Read.All".into(), "Group.Read.All".into()],
        secrets: secret("s-expired", datetime!(2024-01-01 0:00 UTC)),
    });
    t.apps.push(AppRecord {
        client_id: USERS_ONLY_APP.into(),
        roles: vec!["User.Read.All".into()],
        secrets: secret("s-users", datetime!(2030-01-01 0:00 UTC)),
    });
    t
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        server_error_retries: 3,
        budget: Duration::from_secs(5),
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
    }
}

fn client_for(server: &SimServer, tenant: &str, client_id: &str, secret: &str) -> GraphClient {
    GraphClient::new(
        Endpoints { login_url: server.base_url.clone(), graph_url: server.base_url.clone() },
        Credentials { tenant: tenant.into(), client_id: client_id.into(), secret: secret.to_owned().into() },
        quick_retry(),
    )
    .unwrap()
}

fn good_client(server: &SimServer, t: &TenantFile) -> GraphClient {
    let app = &t.apps[0];
    client_for(server, &t.tenant_id, &app.client_id, &app.secrets[0].value)
}

async fn start(t: &TenantFile) -> SimServer {
    SimServer::start("127.0.0.1:0", t.clone(), SimOptions::default()).await.unwrap()
}

async fn put_faults(server: &SimServer, faults: serde_json::Value) {
    let faults: Faults = serde_json::from_value(faults).unwrap();
    server.sim.lock().set_faults(faults);
}

fn requests_to(server: &SimServer, route: &str, status: u16) -> u64 {
    server.sim.lock().stats.requests.get(&(route.to_owned(), status)).copied().unwrap_or(0)
}

#[tokio::test]
async fn reads_every_user_over_pages_of_999() {
    let t = tenant(2500);
    let server = start(&t).await;
    let client = good_client(&server, &t);
    let mut pager = client.users();
    let mut ids = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        assert!(page.len() <= 999);
        ids.extend(page.into_iter().map(|u| u.id));
    }
    assert_eq!(pager.pages, 3);
    assert_eq!(ids.len(), 2500);
    let mut expected: Vec<_> = t.users.iter().map(|u| u.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(requests_to(&server, "GET /v1.0/users", 200), 3);
    assert_eq!(requests_to(&server, "POST /{tenant}/oauth2/v2.0/token", 200), 1, "token cached");
    server.shutdown().await;
}

#[tokio::test]
async fn transitive_members_follow_nesting_and_skip_non_users() {
    let t = tenant(400);
    let server = start(&t).await;
    let client = good_client(&server, &t);
    let top = &t.groups[0];
    let mut pager = client.transitive_user_ids(&top.id);
    let mut got = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        got.extend(page);
    }
    let expected: Vec<String> = {
        let mut dir = graph_sim::Directory::from_file(t.clone()).unwrap();
        let all = dir.transitive_members(&top.id);
        all.iter().filter(|id| t.users.iter().any(|u| &u.id == *id)).cloned().collect()
    };
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    let direct_users = top.members.iter().filter(|m| t.users.iter().any(|u| &u.id == *m)).count();
    assert!(got.len() > direct_users, "nested members are included");
    assert_eq!(client.group_name(&top.id).await.unwrap(), top.display_name);
    server.shutdown().await;
}

#[tokio::test]
async fn credential_errors_are_classified_with_fixes() {
    let t = tenant(10);
    let server = start(&t).await;
    let app = &t.apps[0];
    let cases = [
        (
            t.tenant_id.as_str(),
            app.client_id.as_str(),
            "ff5756c2-03fa-45d3-a1b2-c3d4e5f60718",
            ErrorKind::SecretInvalid,
            "Value",
        ),
        (t.tenant_id.as_str(), EXPIRED_APP, "s-expired", ErrorKind::SecretExpired, "New client secret"),
        (
            "4e4dff32-6150-4c66-ae0d-cfc4ab7bc4d1",
            app.client_id.as_str(),
            "x",
            ErrorKind::TenantNotFound,
            "Directory (tenant) ID",
        ),
        ("wrong.onmicrosoft.com", app.client_id.as_str(), "x", ErrorKind::TenantNotFound, "wrong.onmicrosoft.com"),
        (
            t.tenant_id.as_str(),
            "4f6847d7-fd3f-4b2d-9740-79170e634de5",
            "x",
            ErrorKind::AppNotFound,
            "Application (client) ID",
        ),
    ];
    for (tenant, client_id, secret, kind, hint) in cases {
        let err = client_for(&server, tenant, client_id, secret).check_token().await.unwrap_err();
        assert_eq!(err.kind, kind, "{tenant}/{client_id}: {err:?}");
        assert!(err.message.contains(hint), "message names the fix: {}", err.message);
        assert!(!err.message.contains(secret) || secret == "x", "secret not echoed");
    }
    // The domain works as tenant too.
    client_for(&server, &t.domain, &app.client_id, &app.secrets[0].value).check_token().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn missing_permissions_and_bad_groups_are_named() {
    let t = tenant(10);
    let server = start(&t).await;
    let no_roles = client_for(&server, &t.tenant_id, NO_ROLES_APP, "s-noroles");
    no_roles.check_token().await.expect("tokens are issued without consent");
    let err = no_roles.users().next_page().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingPermission);
    assert!(err.message.contains("User.Read.All") && err.message.contains("admin consent"));

    let users_only = client_for(&server, &t.tenant_id, USERS_ONLY_APP, "s-users");
    users_only.users().next_page().await.unwrap();
    let err = users_only.transitive_user_ids(&t.groups[0].id).next_page().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingPermission);
    assert!(err.message.contains("Group.Read.All"));

    let client = good_client(&server, &t);
    let missing = "f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2";
    let err = client.transitive_user_ids(missing).next_page().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::GroupNotFound);
    assert!(err.message.contains(missing));
    let err = client.group_name("Sales").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::GroupIdInvalid);
    server.shutdown().await;
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after_then_succeeds() {
    let t = tenant(1500);
    let server = start(&t).await;
    put_faults(
        &server,
        json!({"rules": [{"path": "/v1.0/users", "skip": 1, "count": 2, "status": 429, "retryAfter": "0.05"}]}),
    )
    .await;
    let client = good_client(&server, &t);
    let mut pager = client.users();
    let mut n = 0;
    while let Some(page) = pager.next_page().await.unwrap() {
        n += page.len();
    }
    assert_eq!(n, 1500);
    assert_eq!(requests_to(&server, "GET /v1.0/users", 429), 2);
    assert_eq!(client.traffic.throttled.load(std::sync::atomic::Ordering::Relaxed), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_throttling_storm_beyond_the_budget_fails_as_throttled() {
    let t = tenant(10);
    let server = start(&t).await;
    put_faults(&server, json!({"throttle": {"share": 1.0, "retryAfter": "0.3"}})).await;
    let client = good_client(&server, &t);
    let err = client.users().next_page().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert!(err.detail.contains("gave up after"));
    server.shutdown().await;
}

#[tokio::test]
async fn service_errors_back_off_and_recover() {
    let t = tenant(10);
    let server = start(&t).await;
    put_faults(
        &server,
        json!({"rules": [
            {"path": "/v1.0/users", "count": 1, "status": 503},
            {"path": "/v1.0/users", "count": 1, "status": 504},
        ]}),
    )
    .await;
    let client = good_client(&server, &t);
    assert_eq!(client.users().next_page().await.unwrap().unwrap().len(), 10);
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_mid_read() {
    let t = tenant(2000);
    let server = start(&t).await;
    let client = good_client(&server, &t);
    let mut pager = client.users();
    pager.next_page().await.unwrap();
    // Entra revokes or expires the token between pages.
    server.sim.lock().tokens.clear();
    let mut n = 0;
    while let Some(page) = pager.next_page().await.unwrap() {
        n += page.len();
    }
    assert_eq!(n, 2000 - 999);
    assert_eq!(requests_to(&server, "GET /v1.0/users", 401), 1);
    assert_eq!(requests_to(&server, "POST /{tenant}/oauth2/v2.0/token", 200), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn short_token_lifetimes_are_refreshed_before_expiry() {
    let t = tenant(10);
    let server = start(&t).await;
    put_faults(&server, json!({"tokenLifetimeSecs": 1})).await;
    let client = good_client(&server, &t);
    client.users().next_page().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.users().next_page().await.unwrap();
    assert_eq!(requests_to(&server, "GET /v1.0/users", 401), 0, "refreshed before Graph saw an expired token");
    assert_eq!(requests_to(&server, "POST /{tenant}/oauth2/v2.0/token", 200), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn unreachable_and_slow_services_fail_with_their_kind() {
    let t = tenant(10);
    let server = start(&t).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        format!("http://{addr}")
    };
    let app = &t.apps[0];
    let unreachable = GraphClient::new(
        Endpoints { login_url: closed.clone(), graph_url: closed },
        Credentials {
            tenant: t.tenant_id.clone(),
            client_id: app.client_id.clone(),
            secret: app.secrets[0].value.clone().into(),
        },
        RetryPolicy { budget: Duration::from_millis(300), ..quick_retry() },
    )
    .unwrap();
    assert_eq!(unreachable.check_token().await.unwrap_err().kind, ErrorKind::Unreachable);

    put_faults(&server, json!({"latencyMs": 800})).await;
    let slow = GraphClient::new(
        Endpoints { login_url: server.base_url.clone(), graph_url: server.base_url.clone() },
        Credentials {
            tenant: t.tenant_id.clone(),
            client_id: app.client_id.clone(),
            secret: app.secrets[0].value.clone().into(),
        },
        RetryPolicy {
            request_timeout: Duration::from_millis(200),
            budget: Duration::from_millis(500),
            ..quick_retry()
        },
    )
    .unwrap();
    assert_eq!(slow.check_token().await.unwrap_err().kind, ErrorKind::Timeout);
    server.shutdown().await;
}

/// Follows one delta round to its end: (items, delta link, pages).
async fn drain<'a, W: serde::de::DeserializeOwned + Send + 'a, T>(
    mut pager: safegpt_graph::Pager<'a, W, T>,
) -> (Vec<T>, String, u64) {
    let mut items = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        items.extend(page);
    }
    (items, pager.delta_link.expect("a round ends with a delta link"), pager.pages)
}

#[tokio::test]
async fn delta_rounds_report_every_object_first_then_only_changes() {
    use safegpt_core::MemberKind;
    use safegpt_graph::{DeltaStart, UserDelta};

    let t = tenant(2500);
    let server = start(&t).await;
    let client = good_client(&server, &t);
    let distinct = |items: &[UserDelta]| {
        items
            .iter()
            .map(|u| match u {
                UserDelta::Present(p) => p.id.clone(),
                UserDelta::Removed { id, .. } => id.clone(),
            })
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    // A first round: every user, in pages of up to 999 (the client asks for the largest),
    // after the empty page strict graph-sim starts every round with; a page repeats the
    // last user of the page before.
    let (users, users_link, pages) = drain(client.users_delta(DeltaStart::Initial)).await;
    assert_eq!((distinct(&users), pages), (2500, 4));
    assert_eq!(users.len(), 2502, "each page after the first repeats one user");
    assert!(users.iter().all(|u| matches!(u, UserDelta::Present(_))));
    let (groups, groups_link, _) = drain(client.groups_delta(DeltaStart::Initial)).await;
    let group_ids: std::collections::BTreeSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(group_ids.len(), t.groups.len(), "large groups come in several entries, each group at least once");
    let nested = groups.iter().flat_map(|g| &g.members).filter(|m| m.kind == Some(MemberKind::Group)).count();
    assert!(nested > 0, "members@delta carries nested groups");
    assert!(groups.iter().flat_map(|g| &g.members).all(|m| m.kind.is_some()), "devices are left out");

    // Nothing changed: an empty page, then an empty last page with a new link.
    let (none, _, pages) = drain(client.users_delta(DeltaStart::Link(&users_link))).await;
    assert_eq!((none.len(), pages), (0, 2));

    let (gone, renamed, group) = (t.users[0].id.clone(), t.users[1].id.clone(), t.groups[0].id.clone());
    let leaver = t.groups[0].members.iter().find(|m| t.users.iter().any(|u| &u.id == *m && u.id != gone)).unwrap();
    {
        let mut state = server.sim.lock();
        state.dir.delete_user(&gone);
        let mut record = state.dir.users[&renamed].record.clone();
        record.display_name = Some("Renamed".into());
        state.dir.upsert_user(record);
        state.dir.set_member(&group, leaver, false);
    }
    let (changes, _, _) = drain(client.users_delta(DeltaStart::Link(&users_link))).await;
    assert!(changes.contains(&UserDelta::Removed { id: gone.clone(), permanent: false }), "{changes:?}");
    // Only what changed: the new name, no UPN, no accountEnabled.
    assert!(
        changes.iter().any(|c| matches!(c, UserDelta::Present(u) if u.id == renamed
        && u.display_name == Some(Some("Renamed".into()))
        && u.user_principal_name.is_none() && u.account_enabled.is_none())),
        "{changes:?}"
    );
    assert_eq!(changes.len(), 2);
    let (changes, _, _) = drain(client.groups_delta(DeltaStart::Link(&groups_link))).await;
    let in_group: Vec<_> = changes.iter().filter(|g| g.id == group).flat_map(|g| &g.members).collect();
    assert!(in_group.iter().any(|m| &m.id == leaver && m.kind.is_none()), "the leaver is @removed: {in_group:?}");

    // A reset on Graph's side: the old link is refused as expired.
    put_faults(&server, json!({"resetDeltaTokens": true})).await;
    let err = client.users_delta(DeltaStart::Link(&users_link)).next_page().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::DeltaExpired);
    server.shutdown().await;
}

#[tokio::test]
async fn links_to_another_host_are_not_followed_with_the_token() {
    use safegpt_graph::DeltaStart;

    let t = tenant(50);
    let server = start(&t).await;
    let client = good_client(&server, &t);
    let foreign = "https://graph.microsoft.com.example.net/v1.0/users/delta?$deltatoken=x";
    let err = client.users_delta(DeltaStart::Link(foreign)).next_page().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unexpected);
    assert!(err.message.contains("not followed"), "{}", err.message);
    assert_eq!(requests_to(&server, "POST /{tenant}/oauth2/v2.0/token", 200), 0, "no token was even asked for");
    server.shutdown().await;
}
