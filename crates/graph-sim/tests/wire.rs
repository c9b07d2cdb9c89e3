//! graph-sim over real HTTP on 127.0.0.1: the control API, delta rounds, casts and errors.

mod support;

use graph_sim::{GenerateSpec, SimOptions, SimServer, TenantFile, generate};
use serde_json::{Value, json};
use support::{Reply, call};

async fn token(base: &str, t: &TenantFile) -> String {
    let app = &t.apps[0];
    let form = format!(
        "client_id={}&client_secret={}&grant_type=client_credentials&client_info=1&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        app.client_id,
        app.secrets[0].value.replace('~', "%7E")
    );
    let reply = call(
        base,
        "POST",
        &format!("/{}/oauth2/v2.0/token", t.tenant_id),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&form),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.headers.contains("cache-control: no-store, no-cache"));
    assert_eq!(reply.body["token_type"], "Bearer");
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn get(base: &str, token: &str, path_or_url: &str) -> Reply {
    let path = path_or_url.strip_prefix(base).unwrap_or(path_or_url);
    call(base, "GET", path, &[("Authorization", &format!("Bearer {token}"))], None).await
}

/// Follows one delta round to its deltaLink; returns every item and the deltaLink.
async fn delta_round(base: &str, token: &str, first: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut url = first.to_owned();
    loop {
        let page = get(base, token, &url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        items.extend(page.body["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = page.body["@odata.nextLink"].as_str() {
            url = next.to_owned();
        } else {
            return (items, page.body["@odata.deltaLink"].as_str().unwrap().to_owned());
        }
    }
}

/// The objects of a round by id, repeated entries laid over each other and a group's
/// `members@delta` entries joined: what a client must make of Graph's answers.
fn by_id(items: &[Value]) -> std::collections::BTreeMap<String, Value> {
    let mut out: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for item in items {
        let id = item["id"].as_str().unwrap().to_owned();
        let known = out.entry(id).or_insert_with(|| json!({}));
        for (k, v) in item.as_object().unwrap() {
            match (k.as_str(), known.get_mut(k)) {
                ("members@delta", Some(Value::Array(list))) => {
                    for m in v.as_array().unwrap() {
                        if !list.contains(m) {
                            list.push(m.clone());
                        }
                    }
                }
                _ => {
                    known[k] = v.clone();
                }
            }
        }
    }
    out
}

fn tenant() -> TenantFile {
    generate(&GenerateSpec {
        users: 450,
        groups: 6,
        nesting: 2,
        guests_percent: 10,
        disabled_percent: 10,
        seed: 5,
        memberships: None,
    })
}

#[tokio::test]
async fn users_delta_reports_changes_and_soft_deletes_in_the_next_round() {
    let t = tenant();
    let server = SimServer::start("127.0.0.1:0", t.clone(), SimOptions::default()).await.unwrap();
    let base = server.base_url.clone();
    let tok = token(&base, &t).await;
    let (items, delta_link) =
        delta_round(&base, &tok, "/v1.0/users/delta()?$select=id,displayName,accountEnabled").await;
    assert_eq!(by_id(&items).len(), 450, "initial round lists every user");
    assert!(delta_link.starts_with(&format!("{base}/v1.0/users/delta?$deltatoken=")));

    // No changes: one page, empty, with a new deltaLink.
    let (none, link2) = delta_round(&base, &tok, &delta_link).await;
    assert!(none.is_empty());

    let (changed_id, deleted_id) = (t.users[10].id.clone(), t.users[20].id.clone());
    let patched =
        call(&base, "PATCH", &format!("/_sim/users/{changed_id}"), &[], Some(r#"{"displayName":"Renamed"}"#)).await;
    assert_eq!(patched.status, 200);
    assert_eq!(call(&base, "DELETE", &format!("/_sim/users/{deleted_id}"), &[], None).await.status, 200);
    let new_user = json!({"id": "b0000000-0000-4000-8000-000000000001", "userPrincipalName": "new@x.onmicrosoft.com",
                          "displayName": "New", "accountEnabled": true, "userType": "Member"});
    assert_eq!(call(&base, "POST", "/_sim/users", &[], Some(&new_user.to_string())).await.status, 200);

    let (items, _) = delta_round(&base, &tok, &link2).await;
    let items = by_id(&items);
    assert_eq!(items.len(), 3, "{items:?}");
    // An updated user comes as its id and what changed; a new one whole.
    assert_eq!(items[&changed_id], json!({"id": changed_id, "displayName": "Renamed"}));
    assert_eq!(items[&deleted_id]["@removed"], json!({"reason": "changed"}));
    assert_eq!(items["b0000000-0000-4000-8000-000000000001"]["displayName"], "New");
    assert_eq!(items["b0000000-0000-4000-8000-000000000001"]["accountEnabled"], true);

    // A deleted user is gone from lists and from its groups.
    assert_eq!(get(&base, &tok, &format!("/v1.0/users/{deleted_id}")).await.status, 404);
    for g in &t.groups {
        let members = get(&base, &tok, &format!("/v1.0/groups/{}/members?$top=999", g.id)).await;
        assert!(!members.body["value"].as_array().unwrap().iter().any(|m| m["id"] == deleted_id.as_str()));
    }

    // A synchronization reset invalidates old tokens with 410 and a Location to start over.
    assert_eq!(call(&base, "PUT", "/_sim/faults", &[], Some(r#"{"resetDeltaTokens": true}"#)).await.status, 200);
    let gone = get(&base, &tok, &link2).await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body["error"]["code"], "resyncRequired");
    assert!(gone.headers.contains("location:"));
    server.shutdown().await;
}

#[tokio::test]
async fn groups_delta_tracks_direct_member_changes() {
    let t = tenant();
    let server = SimServer::start("127.0.0.1:0", t.clone(), SimOptions::default()).await.unwrap();
    let base = server.base_url.clone();
    let tok = token(&base, &t).await;
    let (groups, link) = delta_round(&base, &tok, "/v1.0/groups/delta").await;
    let groups = by_id(&groups);
    assert_eq!(groups.len(), 6);
    let g0 = &t.groups[0];
    assert_eq!(groups[&g0.id]["members@delta"].as_array().unwrap().len(), g0.members.len());

    let member = g0.members.iter().find(|m| t.users.iter().any(|u| &u.id == *m)).unwrap().clone();
    let outsider = t.users.iter().find(|u| !g0.members.contains(&u.id)).unwrap().id.clone();
    let del = call(&base, "DELETE", &format!("/_sim/groups/{}/members/{member}", g0.id), &[], None).await;
    assert_eq!(del.body["changed"], true);
    call(&base, "PUT", &format!("/_sim/groups/{}/members/{outsider}", g0.id), &[], None).await;
    let (groups, _) = delta_round(&base, &tok, &link).await;
    let groups: Vec<Value> = by_id(&groups).into_values().collect();
    assert_eq!(groups.len(), 1);
    let deltas = groups[0]["members@delta"].as_array().unwrap();
    assert_eq!(deltas.len(), 2);
    let removed = deltas.iter().find(|m| m["id"] == member.as_str()).unwrap();
    assert_eq!(removed["@removed"], json!({"reason": "deleted"}));
    assert_eq!(removed["@odata.type"], "#microsoft.graph.user");
    assert!(deltas.iter().any(|m| m["id"] == outsider.as_str() && m.get("@removed").is_none()));

    let stats = call(&base, "GET", "/_sim/stats", &[], None).await.body;
    assert!(
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["route"] == "GET /v1.0/groups/delta" && r["status"] == 200)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn member_lists_casts_paging_and_errors_look_like_graph() {
    let t = tenant();
    let server = SimServer::start("127.0.0.1:0", t.clone(), SimOptions::default()).await.unwrap();
    let base = server.base_url.clone();
    let tok = token(&base, &t).await;
    let g = &t.groups[0];

    let list = get(&base, &tok, &format!("/v1.0/groups/{}/transitiveMembers?$top=999", g.id)).await;
    assert!(list.headers.contains("content-type: application/json;odata.metadata=minimal"));
    assert!(list.headers.contains("request-id:"));
    let items = list.body["value"].as_array().unwrap();
    let types: std::collections::BTreeSet<&str> = items.iter().map(|i| i["@odata.type"].as_str().unwrap()).collect();
    assert!(types.contains("#microsoft.graph.user"));
    assert!(types.len() > 1, "members of other types appear too: {types:?}");

    let cast = get(
        &base,
        &tok,
        &format!("/v1.0/groups/{}/transitiveMembers/microsoft.graph.user?$select=id,accountEnabled", g.id),
    )
    .await;
    assert!(cast.body["@odata.context"].as_str().unwrap().ends_with("#users(id,accountEnabled)"));
    assert!(
        cast.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("accountEnabled").is_some() && u.get("@odata.type").is_none())
    );

    let too_big = get(&base, &tok, "/v1.0/users?$top=1000").await;
    assert_eq!((too_big.status, too_big.body["error"]["code"].as_str()), (400, Some("Request_BadRequest")));
    let unknown_prop = get(&base, &tok, "/v1.0/users?$select=id,shoeSize").await;
    assert_eq!(unknown_prop.status, 400);
    let default_page = get(&base, &tok, "/v1.0/users").await;
    assert_eq!(default_page.body["value"].as_array().unwrap().len(), 100, "default page size");
    assert!(default_page.body["value"][0].get("accountEnabled").is_none(), "accountEnabled only when selected");
    let next = default_page.body["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with("http://127.0.0.1") && next.contains("$skiptoken="));

    let no_token = call(&base, "GET", "/v1.0/users", &[], None).await;
    assert_eq!((no_token.status, no_token.body["error"]["code"].as_str()), (401, Some("InvalidAuthenticationToken")));
    assert!(no_token.headers.contains("www-authenticate: bearer"));
    let missing = get(&base, &tok, "/v1.0/groups/00000000-0000-4000-8000-000000000000").await;
    assert_eq!((missing.status, missing.body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
    let bad = get(&base, &tok, "/v1.0/groups/Sales").await;
    assert_eq!(bad.body["error"]["message"], "Invalid object identifier 'Sales'.");

    // Injected: fail the second request to /v1.0/users with a 429 and a decimal Retry-After.
    let faults = r#"{"rules": [{"path": "/v1.0/users", "skip": 1, "count": 1, "status": 429, "retryAfter": "2.128"}]}"#;
    call(&base, "PUT", "/_sim/faults", &[], Some(faults)).await;
    assert_eq!(get(&base, &tok, "/v1.0/users?$top=1").await.status, 200);
    let throttled = get(&base, &tok, "/v1.0/users?$top=1").await;
    assert_eq!((throttled.status, throttled.body["error"]["code"].as_str()), (429, Some("TooManyRequests")));
    assert!(throttled.headers.contains("retry-after: 2.128"));
    assert_eq!(get(&base, &tok, "/v1.0/users?$top=1").await.status, 200);

    let oidc = call(&base, "GET", &format!("/{}/v2.0/.well-known/openid-configuration", t.tenant_id), &[], None).await;
    assert_eq!(oidc.body["token_endpoint"], format!("{base}/{}/oauth2/v2.0/token", t.tenant_id));
    let unknown =
        call(&base, "GET", "/00000000-0000-4000-8000-000000000000/v2.0/.well-known/openid-configuration", &[], None)
            .await;
    assert_eq!((unknown.status, unknown.body["error"].as_str()), (400, Some("invalid_tenant")));
    assert_eq!(unknown.body["error_codes"], json!([90002]));
    server.shutdown().await;
}

#[tokio::test]
async fn one_server_serves_many_tenants_each_from_its_own_directory() {
    let tenants: Vec<TenantFile> = (0..3)
        .map(|seed| generate(&GenerateSpec { users: 5 + seed as usize, seed, ..GenerateSpec::default() }))
        .collect();
    let sim = SimServer::start_many("127.0.0.1:0", tenants.clone(), SimOptions::default()).await.unwrap();
    let base = sim.base_url.clone();
    let mut tokens = Vec::new();
    for t in &tenants {
        let token = token(&base, t).await;
        let users = get(&base, &token, "/v1.0/users?$select=id").await;
        let ids: Vec<&str> =
            users.body["value"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
        let expected: Vec<&str> = t.users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids.len(), expected.len(), "{}", users.body);
        assert!(ids.iter().all(|id| expected.contains(id)), "a token reads its own tenant only");
        tokens.push(token);
    }
    // One tenant's app does not get a token from another tenant.
    let (a, b) = (&tenants[0], &tenants[1]);
    let form = format!(
        "client_id={}&client_secret={}&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        a.apps[0].client_id,
        a.apps[0].secrets[0].value.replace('~', "%7E")
    );
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let wrong = call(&base, "POST", &format!("/{}/oauth2/v2.0/token", b.tenant_id), &headers, Some(&form)).await;
    assert_eq!((wrong.status, wrong.body["error"].as_str()), (400, Some("unauthorized_client")), "{}", wrong.body);
    // Faults are per tenant: the second answers 503, the others go on.
    let faults = json!({"rules": [{"path": "/v1.0/users", "status": 503, "count": 1000}]}).to_string();
    let set = call(&base, "PUT", &format!("/_sim/tenants/{}/faults", b.tenant_id), &[], Some(&faults)).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(get(&base, &tokens[1], "/v1.0/users").await.status, 503);
    assert_eq!(get(&base, &tokens[0], "/v1.0/users").await.status, 200);
    assert_eq!(get(&base, &tokens[2], "/v1.0/users").await.status, 200);
    let unknown = call(&base, "GET", "/_sim/tenants/00000000-0000-0000-0000-000000000000/faults", &[], None).await;
    assert_eq!(unknown.status, 404);
    sim.shutdown().await;
}
