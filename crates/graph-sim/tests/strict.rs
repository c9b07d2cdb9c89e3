//! graph-sim as strict as Graph (docs/graph-fidelity.md): each documented behaviour, seen
//! through the library's control of the directory and HTTP on 127.0.0.1, and its switch.

use std::collections::BTreeMap;

mod support;

use graph_sim::{Fidelity, GenerateSpec, SimOptions, SimServer, TenantFile, generate};
use serde_json::{Value, json};
use support::call;

fn tenant() -> TenantFile {
    generate(&GenerateSpec {
        users: 300,
        groups: 4,
        nesting: 2,
        guests_percent: 10,
        disabled_percent: 5,
        seed: 9,
        memberships: None,
    })
}

struct Graph {
    server: SimServer,
    token: String,
}

impl Graph {
    async fn start(t: &TenantFile) -> Graph {
        let server = SimServer::start("127.0.0.1:0", t.clone(), SimOptions::default()).await.unwrap();
        let app = &t.apps[0];
        let form = format!(
            "client_id={}&client_secret={}&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            app.client_id,
            app.secrets[0].value.replace('~', "%7E")
        );
        let path = format!("/{}/oauth2/v2.0/token", t.tenant_id);
        let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
        let reply = call(&server.base_url, "POST", &path, &form_type, Some(&form)).await;
        let token = reply.body["access_token"].as_str().unwrap().to_owned();
        Graph { server, token }
    }

    async fn get(&self, path_or_url: &str, prefer: Option<&str>) -> (u16, Value) {
        let path = path_or_url.strip_prefix(&self.server.base_url).unwrap_or(path_or_url);
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(prefer) = prefer {
            headers.push(("Prefer", prefer));
        }
        let reply = call(&self.server.base_url, "GET", path, &headers, None).await;
        (reply.status, reply.body)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let reply = call(&self.server.base_url, "POST", path, &headers, Some(&body.to_string())).await;
        (reply.status, reply.body)
    }

    async fn control(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let reply = call(&self.server.base_url, method, path, &[], body.as_deref()).await;
        (reply.status, reply.body)
    }

    /// One delta round to its end: every page's objects, and the pages.
    async fn round(&self, first: &str, prefer: Option<&str>) -> (Vec<Vec<Value>>, String) {
        let mut pages = Vec::new();
        let mut url = first.to_owned();
        loop {
            let (status, page) = self.get(&url, prefer).await;
            assert_eq!(status, 200, "{page}");
            pages.push(page["value"].as_array().unwrap().clone());
            match page["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return (pages, page["@odata.deltaLink"].as_str().unwrap().to_owned()),
            }
        }
    }

    fn fidelity(&self, change: impl FnOnce(&mut Fidelity)) {
        change(&mut self.server.sim.lock().dir.fidelity);
    }
}

const USERS: &str = "/v1.0/users/delta?$select=id,userPrincipalName,mail,displayName,jobTitle,accountEnabled,userType";

fn entries_of<'a>(pages: &'a [Vec<Value>], id: &str) -> Vec<&'a Value> {
    pages.iter().flatten().filter(|v| v["id"] == id).collect()
}

#[tokio::test]
async fn later_rounds_send_only_what_changed_and_never_set_properties_are_left_out() {
    let t = tenant();
    let g = Graph::start(&t).await;
    let (pages, link) = g.round(USERS, None).await;
    assert!(pages[0].is_empty(), "every round starts with an empty page carrying a nextLink");
    let no_title = t.users.iter().find(|u| u.job_title.is_none()).unwrap();
    assert!(entries_of(&pages, &no_title.id).iter().all(|e| e.get("jobTitle").is_none()), "never set: left out");

    let disabled = t.users.iter().find(|u| !u.account_enabled).unwrap().id.clone();
    {
        let mut state = g.server.sim.lock();
        let mut record = state.dir.users[&disabled].record.clone();
        record.display_name = Some("Renamed".into());
        record.job_title = None;
        state.dir.upsert_user(record);
    }
    let (pages, _) = g.round(&link, None).await;
    let entries = entries_of(&pages, &disabled);
    assert!(!entries.is_empty());
    for entry in entries {
        // What changed, a cleared property as an explicit null, and nothing else: no
        // accountEnabled, whose absence must not read as "enabled".
        let expected = if t.users.iter().find(|u| u.id == disabled).unwrap().job_title.is_some() {
            json!({"id": disabled, "displayName": "Renamed", "jobTitle": null})
        } else {
            json!({"id": disabled, "displayName": "Renamed"})
        };
        assert_eq!(*entry, expected);
    }

    // Switched off, an update carries every selected property that is set;
    // `Prefer: return=minimal` still asks for the changes only.
    g.fidelity(|f| f.partial_updates = false);
    let (_, link) = g.round(USERS, None).await;
    let renamed = t.users[3].id.clone();
    {
        let mut state = g.server.sim.lock();
        let mut record = state.dir.users[&renamed].record.clone();
        record.department = Some("Moved".into());
        state.dir.upsert_user(record);
    }
    let (pages, _) = g.round(&link, None).await;
    assert!(entries_of(&pages, &renamed).iter().all(|e| e.get("userPrincipalName").is_some()));
    let (pages, _) = g.round(&link, Some("return=minimal")).await;
    assert!(entries_of(&pages, &renamed).iter().all(|e| e.get("userPrincipalName").is_none()));
    g.server.shutdown().await;
}

#[tokio::test]
async fn a_soft_deleted_user_keeps_its_memberships_hidden_and_gets_them_back() {
    let t = tenant();
    let g = Graph::start(&t).await;
    let group = t.groups.iter().max_by_key(|g| g.members.len()).unwrap().clone();
    let user = group.members.iter().find(|m| t.users.iter().any(|u| &u.id == *m)).unwrap().clone();
    let (_, groups_link) = g.round("/v1.0/groups/delta?$select=id,members", None).await;
    let (_, users_link) = g.round(USERS, None).await;

    g.server.sim.lock().dir.delete_user(&user);
    let members = format!("/v1.0/groups/{}/members?$select=id&$top=999", group.id);
    let listed = |body: &Value| body["value"].as_array().unwrap().iter().any(|m| m["id"] == user.as_str());
    assert!(!listed(&g.get(&members, None).await.1), "hidden from member lists while deleted");
    let (pages, groups_link) = g.round(&groups_link, None).await;
    assert!(pages.iter().flatten().all(|g| g.get("members@delta").is_none_or(|m| !m.to_string().contains(&user))));
    let (pages, users_link) = g.round(&users_link, None).await;
    assert_eq!(entries_of(&pages, &user)[0]["@removed"], json!({"reason": "changed"}));
    let (status, deleted) = g.get("/v1.0/directory/deletedItems/microsoft.graph.user?$select=id", None).await;
    assert_eq!(status, 200);
    assert!(deleted["value"].as_array().unwrap().iter().any(|u| u["id"] == user.as_str()));

    assert!(g.server.sim.lock().dir.restore_user(&user));
    assert!(listed(&g.get(&members, None).await.1), "a restore brings the membership back");
    let (pages, groups_link) = g.round(&groups_link, None).await;
    assert!(pages.iter().flatten().all(|g| !g.to_string().contains(&user)), "and groups/delta says nothing");
    let (pages, users_link) = g.round(&users_link, None).await;
    assert!(
        entries_of(&pages, &user).iter().all(|e| e.get("@removed").is_none() && e.get("userPrincipalName").is_some())
    );

    // Hidden restores: the restore never reaches users/delta.
    g.fidelity(|f| f.hide_restores = true);
    g.server.sim.lock().dir.delete_user(&user);
    let (_, users_link) = g.round(&users_link, None).await;
    g.server.sim.lock().dir.restore_user(&user);
    let (pages, _) = g.round(&users_link, None).await;
    assert!(entries_of(&pages, &user).is_empty(), "the restore is not reported");

    // Deleted for good: @removed deleted, and removed from the groups, which groups/delta reports.
    g.server.sim.lock().dir.purge_user(&user);
    let (pages, _) = g.round(&users_link, None).await;
    assert!(entries_of(&pages, &user).iter().all(|e| e["@removed"] == json!({"reason": "deleted"})));
    let (pages, _) = g.round(&groups_link, None).await;
    let removal = pages.iter().flatten().flat_map(|g| g["members@delta"].as_array().cloned().unwrap_or_default());
    assert!(removal.into_iter().any(|m| m["id"] == user.as_str() && m["@removed"] == json!({"reason": "deleted"})));
    g.server.shutdown().await;
}

#[tokio::test]
async fn a_large_group_is_split_over_entries_and_pages_objects_repeat_and_order_is_not_kept() {
    let t = tenant();
    let g = Graph::start(&t).await;
    g.fidelity(|f| f.group_members_per_entry = 7);
    let group = t.groups.iter().max_by_key(|g| g.members.len()).unwrap().clone();
    assert!(group.members.len() > 14);
    let (pages, _) = g.round("/v1.0/groups/delta?$select=id,members", Some("odata.maxpagesize=999")).await;
    let on_pages: Vec<usize> = pages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.iter().any(|e| e["id"] == group.id.as_str()))
        .map(|(i, _)| i)
        .collect();
    assert!(on_pages.len() >= 2, "the group's entries span pages: {on_pages:?}");
    let mut members: Vec<String> = pages
        .iter()
        .flatten()
        .filter(|e| e["id"] == group.id.as_str())
        .flat_map(|e| e["members@delta"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()))
        .collect();
    members.sort();
    members.dedup();
    assert_eq!(
        members,
        group.members.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>()
    );

    let (pages, _) = g.round(USERS, Some("odata.maxpagesize=50")).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in pages.iter().flatten() {
        *seen.entry(entry["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(seen.len(), 300);
    assert!(seen.values().any(|n| *n > 1), "some users come twice in the round");
    let ordered = pages.iter().filter(|p| p.windows(2).all(|w| w[0]["id"].as_str() <= w[1]["id"].as_str())).count();
    assert!(ordered < pages.len() - 1, "pages are not in id order");
    g.server.shutdown().await;
}

#[tokio::test]
async fn with_replication_delay_a_change_shows_up_one_round_late() {
    let t = tenant();
    let g = Graph::start(&t).await;
    g.fidelity(|f| f.replication_delay = true);
    let (_, link) = g.round(USERS, None).await;
    let (_, link) = g.round(&link, None).await;
    let id = t.users[7].id.clone();
    g.server.sim.lock().dir.delete_user(&id);
    let (pages, link) = g.round(&link, None).await;
    assert!(entries_of(&pages, &id).is_empty(), "not yet");
    let (pages, _) = g.round(&link, None).await;
    assert_eq!(entries_of(&pages, &id)[0]["@removed"], json!({"reason": "changed"}), "one round late");
    g.server.shutdown().await;
}

#[tokio::test]
async fn json_batching_and_check_member_groups_answer_like_graph() {
    let t = tenant();
    let g = Graph::start(&t).await;
    let group = t.groups.iter().max_by_key(|g| g.members.len()).unwrap().clone();
    let member = group.members.iter().find(|m| t.users.iter().any(|u| &u.id == *m)).unwrap().clone();
    let requests = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{member}?$select=id,accountEnabled")},
        {"id": "2", "method": "GET", "url": "/users/00000000-0000-4000-8000-00000000dead"},
        {"id": "3", "method": "POST", "url": format!("/users/{member}/checkMemberGroups"),
         "headers": {"Content-Type": "application/json"}, "body": {"groupIds": [group.id]}},
    ]});
    let (status, body) = g.post("/v1.0/$batch", requests).await;
    assert_eq!(status, 200, "{body}");
    let by_id: BTreeMap<&str, &Value> =
        body["responses"].as_array().unwrap().iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    assert_eq!(by_id["1"]["status"], 200);
    assert_eq!(by_id["1"]["body"]["id"], member.as_str());
    assert_eq!(by_id["2"]["status"], 404);
    assert_eq!(by_id["3"]["body"]["value"], json!([group.id]));

    let too_many: Vec<Value> =
        (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users?$top=1"})).collect();
    assert_eq!(g.post("/v1.0/$batch", json!({"requests": too_many})).await.0, 400, "at most 20 per batch");

    // Throttling reaches requests inside a batch: the batch answers 200, the request 429.
    let faults = json!({"rules": [{"path": "/v1.0/users/", "count": 1, "status": 429, "retryAfter": "1"}]});
    assert_eq!(g.control("PUT", "/_sim/faults", Some(faults)).await.0, 200);
    let (status, body) = g
        .post("/v1.0/$batch", json!({"requests": [{"id": "a", "method": "GET", "url": format!("/users/{member}")}]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["responses"][0]["status"], 429);
    assert_eq!(body["responses"][0]["headers"]["Retry-After"], "1");
    g.server.shutdown().await;
}

#[tokio::test]
async fn a_soft_deleted_group_is_reported_changed_and_comes_back_without_a_member_report() {
    let t = tenant();
    let g = Graph::start(&t).await;
    let group = t.groups[1].id.clone();
    let (_, link) = g.round("/v1.0/groups/delta?$select=id,members", None).await;
    assert!(g.server.sim.lock().dir.delete_group(&group, false));
    assert_eq!(g.get(&format!("/v1.0/groups/{group}"), None).await.0, 404);
    let (pages, link) = g.round(&link, None).await;
    assert_eq!(entries_of(&pages, &group)[0]["@removed"], json!({"reason": "changed"}));
    assert!(g.server.sim.lock().dir.restore_group(&group));
    let (pages, _) = g.round(&link, None).await;
    let entries = entries_of(&pages, &group);
    assert!(entries.iter().all(|e| e.get("@removed").is_none()));
    assert!(entries.iter().all(|e| e["members@delta"].as_array().is_none_or(Vec::is_empty)), "{entries:?}");
    assert_eq!(
        g.get(&format!("/v1.0/groups/{group}/members?$top=999"), None).await.1["value"].as_array().unwrap().len(),
        t.groups[1].members.len(),
        "its members are back"
    );
    g.server.shutdown().await;
}

#[tokio::test]
async fn the_tenant_file_and_the_control_api_carry_the_switches() {
    let mut t = tenant();
    t.fidelity = Some(Fidelity::lenient());
    let expiring = json!({"rules": [{"path": "/v1.0/users", "contains": "$skiptoken", "count": 1, "status": 400,
        "code": "Directory_ExpiredPageToken"}]});
    t.faults = Some(serde_json::from_value(expiring).unwrap());
    let g = Graph::start(&t).await;
    let (_, first) = g.get("/v1.0/users?$top=5", None).await;
    let (status, expired) = g.get(first["@odata.nextLink"].as_str().unwrap(), None).await;
    assert_eq!((status, expired["error"]["code"].as_str()), (400, Some("Directory_ExpiredPageToken")));
    assert_eq!(g.get(first["@odata.nextLink"].as_str().unwrap(), None).await.0, 200, "once, as the file said");
    let (pages, _) = g.round(USERS, None).await;
    assert!(!pages[0].is_empty(), "lenient: no empty first page");
    let (_, shown) = g.control("GET", "/_sim/fidelity", None).await;
    assert_eq!(shown["emptyPages"], false);
    let strict = serde_json::to_value(Fidelity::default()).unwrap();
    assert_eq!(g.control("PUT", "/_sim/fidelity", Some(strict)).await.0, 200);
    let (pages, _) = g.round(USERS, None).await;
    assert!(pages[0].is_empty());
    let (status, typo) = g.control("PUT", "/_sim/fidelity", Some(json!({"partialUpdate": true}))).await;
    assert_eq!(status, 400, "unknown switches are named, not ignored");
    assert!(typo["error"]["message"].as_str().unwrap().contains("partialUpdate"));
    g.server.shutdown().await;
}
