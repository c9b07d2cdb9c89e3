//! The control API under `/_sim/`: change the tenant, inject faults, read statistics.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::fidelity::Fidelity;
use crate::http::{GraphError, Request, empty_json, json_response};
use crate::sim::{Faults, Sim};
use crate::tenant::UserRecord;

pub fn handle(sim: &Sim, request: &Request) -> Response {
    let segs: Vec<&str> = request.segments.iter().skip(1).map(String::as_str).collect();
    let result = match (&request.method, segs.as_slice()) {
        (&Method::POST, ["users"]) => create_user(sim, request),
        (&Method::PATCH, ["users", id]) => patch_user(sim, request, id),
        (&Method::DELETE, ["users", id]) => {
            let mut state = sim.lock();
            let done = if permanent(request) { state.dir.purge_user(id) } else { state.dir.delete_user(id) };
            if done { Ok(json!({})) } else { Err(unknown("user", id)) }
        }
        (&Method::POST, ["users", id, "restore"]) => {
            if sim.lock().dir.restore_user(id) {
                Ok(json!({}))
            } else {
                Err(unknown("deleted user", id))
            }
        }
        (&Method::POST, ["groups"]) => create_group(sim, request),
        (&Method::DELETE, ["groups", id]) => {
            if sim.lock().dir.delete_group(id, permanent(request)) {
                Ok(json!({}))
            } else {
                Err(unknown("group", id))
            }
        }
        (&Method::POST, ["groups", id, "restore"]) => {
            if sim.lock().dir.restore_group(id) {
                Ok(json!({}))
            } else {
                Err(unknown("deleted group", id))
            }
        }
        (&Method::GET, ["fidelity"]) => Ok(serde_json::to_value(&sim.lock().dir.fidelity).unwrap_or_default()),
        (&Method::PUT, ["fidelity"]) => body_json::<Fidelity>(request).map(|fidelity| {
            sim.lock().dir.fidelity = fidelity.clone();
            serde_json::to_value(fidelity).unwrap_or_default()
        }),
        (&Method::PUT, ["groups", group, "members", member]) => set_member(sim, group, member, true),
        (&Method::DELETE, ["groups", group, "members", member]) => set_member(sim, group, member, false),
        (&Method::PUT, ["faults"]) => set_faults(sim, request),
        (&Method::GET, ["faults"]) => Ok(serde_json::to_value(&sim.lock().faults).unwrap_or_default()),
        (&Method::GET, ["stats"]) => Ok(stats(sim)),
        (&Method::DELETE, ["stats"]) => {
            sim.lock().stats = Default::default();
            Ok(json!({}))
        }
        (&Method::GET, ["tenant"]) => Ok(serde_json::to_value(sim.lock().dir.to_file()).unwrap_or_default()),
        _ => Err(GraphError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no control route {} {}", request.method, request.path),
        )),
    };
    match result {
        Ok(Value::Object(map)) if map.is_empty() => empty_json(&request.request_id),
        Ok(body) => json_response(StatusCode::OK, &body, "application/json", &request.request_id),
        Err(err) => err.into_response(&request.request_id),
    }
}

/// `?permanent=true`: delete for good instead of a soft delete.
fn permanent(request: &Request) -> bool {
    request.param("permanent").as_deref() == Some("true")
}

fn unknown(what: &str, id: &str) -> GraphError {
    GraphError::new(StatusCode::NOT_FOUND, "NotFound", format!("no {what} with id '{id}' in the tenant"))
}

fn body_json<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, GraphError> {
    serde_json::from_slice(&request.body).map_err(|e| GraphError::bad_request(format!("invalid JSON body: {e}")))
}

fn create_user(sim: &Sim, request: &Request) -> Result<Value, GraphError> {
    let user: UserRecord = body_json(request)?;
    if !crate::is_guid(&user.id) {
        return Err(GraphError::bad_request(format!("user id '{}' is not a GUID", user.id)));
    }
    let mut state = sim.lock();
    if matches!(state.dir.kind_of(&user.id), Some(k) if k != crate::tenant::ObjectKind::User) {
        return Err(GraphError::bad_request(format!("id '{}' belongs to another object", user.id)));
    }
    state.dir.upsert_user(user.clone());
    Ok(serde_json::to_value(user).unwrap_or_default())
}

fn patch_user(sim: &Sim, request: &Request, id: &str) -> Result<Value, GraphError> {
    let patch: serde_json::Map<String, Value> = body_json(request)?;
    let mut state = sim.lock();
    let current = state.dir.users.get(id).ok_or_else(|| unknown("user", id))?.record.clone();
    let mut merged = serde_json::to_value(&current).unwrap_or_default();
    for (k, v) in patch {
        if k == "id" {
            return Err(GraphError::bad_request("the id of a user cannot change"));
        }
        merged[k] = v;
    }
    let updated: UserRecord =
        serde_json::from_value(merged).map_err(|e| GraphError::bad_request(format!("invalid user property: {e}")))?;
    state.dir.upsert_user(updated.clone());
    Ok(serde_json::to_value(updated).unwrap_or_default())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewGroup {
    id: String,
    display_name: String,
    #[serde(default)]
    members: Vec<String>,
}

fn create_group(sim: &Sim, request: &Request) -> Result<Value, GraphError> {
    let group: NewGroup = body_json(request)?;
    if !crate::is_guid(&group.id) {
        return Err(GraphError::bad_request(format!("group id '{}' is not a GUID", group.id)));
    }
    let mut state = sim.lock();
    if state.dir.kind_of(&group.id).is_some() {
        return Err(GraphError::bad_request(format!("id '{}' exists already", group.id)));
    }
    if let Some(m) = group.members.iter().find(|m| state.dir.kind_of(m).is_none()) {
        return Err(unknown("object", m));
    }
    state.dir.add_group(group.id.clone(), group.display_name);
    for m in &group.members {
        state.dir.set_member(&group.id, m, true);
    }
    Ok(json!({"id": group.id}))
}

fn set_member(sim: &Sim, group: &str, member: &str, add: bool) -> Result<Value, GraphError> {
    let mut state = sim.lock();
    if !state.dir.groups.contains_key(group) {
        return Err(unknown("group", group));
    }
    if add && state.dir.kind_of(member).is_none() {
        return Err(unknown("object", member));
    }
    let changed = state.dir.set_member(group, member, add);
    Ok(json!({"changed": changed}))
}

fn set_faults(sim: &Sim, request: &Request) -> Result<Value, GraphError> {
    let faults: Faults = body_json(request)?;
    if let Some(t) = &faults.throttle
        && !(0.0..=1.0).contains(&t.share)
    {
        return Err(GraphError::bad_request("throttle.share must be between 0 and 1"));
    }
    sim.lock().set_faults(faults.clone());
    Ok(serde_json::to_value(faults).unwrap_or_default())
}

fn stats(sim: &Sim) -> Value {
    let state = sim.lock();
    let requests: Vec<Value> = state
        .stats
        .requests
        .iter()
        .map(|((route, status), count)| json!({"route": route, "status": status, "count": count}))
        .collect();
    let total: u64 = state.stats.requests.values().sum();
    json!({"total": total, "bytesSent": state.stats.bytes_sent, "requests": requests})
}
