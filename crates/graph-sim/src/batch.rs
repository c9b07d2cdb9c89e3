//! JSON batching (`POST /v1.0/$batch`, "Combine multiple HTTP requests using JSON
//! batching") and `checkMemberGroups`: what the sync uses to confirm a few users directly.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::graph_api::answer;
use crate::http::{GRAPH_CONTENT_TYPE, GraphError, Request, decode, graph_error_body, json_response};
use crate::sim::Sim;

/// Graph refuses a batch of more than 20 requests.
pub const MAX_BATCH: usize = 20;

#[derive(Deserialize)]
struct BatchBody {
    requests: Vec<BatchRequest>,
}

#[derive(Deserialize)]
struct BatchRequest {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
}

pub fn batch(sim: &Sim, request: &Request) -> Response {
    match answer_batch(sim, request) {
        Ok(body) => json_response(StatusCode::OK, &body, GRAPH_CONTENT_TYPE, &request.request_id),
        Err(err) => err.into_response(&request.request_id),
    }
}

fn answer_batch(sim: &Sim, request: &Request) -> Result<Value, GraphError> {
    let body: BatchBody = serde_json::from_slice(&request.body)
        .map_err(|e| GraphError::bad_request(format!("Invalid batch payload format: {e}")))?;
    if body.requests.len() > MAX_BATCH {
        return Err(GraphError::bad_request(format!(
            "Number of requests in a batch exceeds the limit of {MAX_BATCH} ({}).",
            body.requests.len()
        )));
    }
    let mut ids = std::collections::BTreeSet::new();
    if let Some(dup) = body.requests.iter().find(|r| !ids.insert(r.id.as_str())) {
        return Err(GraphError::bad_request(format!("Batch request ids must be unique: '{}'.", dup.id)));
    }
    let mut responses: Vec<Value> = body.requests.into_iter().map(|r| sub_response(sim, request, r)).collect();
    let mut state = sim.lock();
    if state.dir.fidelity.shuffle {
        // "Responses may be in a different order than the requests."
        let seed = state.next_random();
        crate::delta::shuffle(&mut responses, seed);
    }
    drop(state);
    Ok(json!({ "responses": responses }))
}

fn sub_response(sim: &Sim, outer: &Request, r: BatchRequest) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    let Some(url) = r.url.strip_prefix('/').filter(|_| !r.url.contains("://")) else {
        let err = GraphError::bad_request("A batch request's url must be relative to the version, like /users/{id}.");
        return error_value(&r.id, err, &request_id);
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut headers: HeaderMap = outer.headers.clone();
    headers.remove(axum::http::header::CONTENT_LENGTH);
    for (name, value) in &r.headers {
        if let (Ok(n), Some(Ok(v))) = (HeaderName::try_from(name.as_str()), value.as_str().map(HeaderValue::from_str)) {
            headers.insert(n, v);
        }
    }
    let sub = Request {
        method: Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).unwrap_or(Method::GET),
        path: format!("/v1.0/{path}"),
        segments: std::iter::once("v1.0".to_owned()).chain(path.split('/').map(decode)).collect(),
        raw_query: query.to_owned(),
        headers,
        body: r.body.map(|b| serde_json::to_vec(&b).unwrap_or_default()).unwrap_or_default().into(),
        request_id: request_id.clone(),
    };
    // Fault rules and throttling reach requests inside a batch too.
    let fault = sim.lock().fire_rule(&sub.path, &decode(&format!("{}?{}", sub.path, sub.raw_query)));
    if let Some(rule) = fault {
        let body = rule.body.clone().unwrap_or_else(|| rule.error_body(&request_id));
        let mut headers = json!({"Content-Type": "application/json"});
        if let Some(ra) = rule.retry_after {
            headers["Retry-After"] = json!(ra);
        }
        return json!({"id": r.id, "status": rule.status, "headers": headers, "body": body});
    }
    let rest: Vec<&str> = sub.segments.iter().skip(1).map(String::as_str).collect();
    match answer(sim, &sub, &rest) {
        Ok(body) => json!({"id": r.id, "status": 200, "headers": {"Content-Type": GRAPH_CONTENT_TYPE}, "body": body}),
        Err(err) => error_value(&r.id, err, &request_id),
    }
}

fn error_value(id: &str, err: GraphError, request_id: &str) -> Value {
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), json!("application/json"));
    for (name, value) in &err.headers {
        headers.insert(name.as_str().to_owned(), json!(value));
    }
    json!({"id": id, "status": err.status.as_u16(), "headers": headers,
        "body": graph_error_body(err.code, &err.message, request_id)})
}

/// `POST /users/{id}/checkMemberGroups {"groupIds": [...]}`: which of at most 20 groups the
/// user is a member of, directly or through nesting.
pub fn check_member_groups(sim: &Sim, request: &Request, id: &str) -> Result<Value, GraphError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        group_ids: Vec<String>,
    }
    let body: Body = serde_json::from_slice(&request.body)
        .map_err(|e| GraphError::bad_request(format!("Invalid request body: {e}")))?;
    if body.group_ids.len() > 20 {
        return Err(GraphError::bad_request("groupIds may name at most 20 groups."));
    }
    let mut state = sim.lock();
    if !state.dir.users.contains_key(id) {
        return Err(GraphError::not_found(id));
    }
    let mut value = Vec::new();
    for gid in body.group_ids {
        let gid = gid.to_ascii_lowercase();
        if state.dir.groups.contains_key(&gid)
            && state.dir.transitive_members(&gid).binary_search(&id.to_owned()).is_ok()
        {
            value.push(json!(gid));
        }
    }
    drop(state);
    Ok(json!({"@odata.context": format!("{}/v1.0/$metadata#Collection(Edm.String)", sim.urls.graph), "value": value}))
}
