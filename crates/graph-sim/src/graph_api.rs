//! Microsoft Graph v1.0: users, groups, member lists and delta queries.

use std::time::Instant;

use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::delta::{DeltaKind, delta};
use crate::http::{GRAPH_CONTENT_TYPE, GraphError, Request, json_response};
use crate::sim::{Sim, SimState};
use crate::tenant::{ObjectKind, UserRecord};

const USER_READ: &[&str] = &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const GROUP_READ: &[&str] =
    &["Group.Read.All", "GroupMember.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
pub(crate) const DEFAULT_USER_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];
pub(crate) const USER_PROPERTIES: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "accountEnabled",
    "userType",
    "businessPhones",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "employeeId",
    "onPremisesImmutableId",
    "createdDateTime",
    "deletedDateTime",
    "mailNickname",
    "otherMails",
];

pub fn is_delta_segment(s: &str) -> bool {
    matches!(s, "delta" | "delta()" | "microsoft.graph.delta" | "microsoft.graph.delta()")
}

type GraphResult = Result<Value, GraphError>;

pub fn handle(sim: &Sim, request: &Request, rest: &[&str]) -> Response {
    if request.method == axum::http::Method::POST && matches!(rest, ["$batch"]) {
        return match authorize(sim, request) {
            Ok(_) => crate::batch::batch(sim, request),
            Err(err) => err.into_response(&request.request_id),
        };
    }
    match answer(sim, request, rest) {
        Ok(body) => json_response(StatusCode::OK, &body, GRAPH_CONTENT_TYPE, &request.request_id),
        Err(err) => err.into_response(&request.request_id),
    }
}

/// One Graph request's answer (also one request of a `$batch`).
pub(crate) fn answer(sim: &Sim, request: &Request, rest: &[&str]) -> GraphResult {
    authorize(sim, request).and_then(|roles| route(sim, request, rest, &roles))
}

fn route(sim: &Sim, request: &Request, rest: &[&str], roles: &[String]) -> GraphResult {
    let check_member_groups = matches!(rest, ["users", _, a] if a.eq_ignore_ascii_case("checkMemberGroups") || a.eq_ignore_ascii_case("microsoft.graph.checkMemberGroups"));
    if request.method != axum::http::Method::GET && !(request.method == axum::http::Method::POST && check_member_groups)
    {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "graph-sim serves read requests only; change the tenant through /_sim/",
        ));
    }
    if let Some(after) = sim.lock().should_throttle() {
        let mut err = GraphError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Please retry again later.");
        if let Some(ra) = after {
            err.headers.push((header::RETRY_AFTER, ra));
        }
        return Err(err);
    }
    let need = |allowed: &[&str]| -> Result<(), GraphError> {
        if roles.iter().any(|r| allowed.contains(&r.as_str())) {
            Ok(())
        } else {
            Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ))
        }
    };
    let can_read_users = roles.iter().any(|r| USER_READ.contains(&r.as_str()));
    match rest {
        ["users"] => {
            need(USER_READ)?;
            list_users(sim, request)
        }
        ["users", "$count"] => Err(GraphError::bad_request("$count is not currently supported.")),
        ["users", d] if is_delta_segment(d) => {
            need(USER_READ)?;
            delta(sim, request, DeltaKind::Users)
        }
        ["users", id, _] if check_member_groups => {
            need(USER_READ)?;
            need(GROUP_READ)?;
            crate::batch::check_member_groups(sim, request, id)
        }
        ["directory", "deletedItems", "microsoft.graph.user"] => {
            need(USER_READ)?;
            list_deleted_users(sim, request)
        }
        ["users", id] => {
            need(USER_READ)?;
            get_user(sim, request, id)
        }
        ["groups", d] if is_delta_segment(d) => {
            need(GROUP_READ)?;
            delta(sim, request, DeltaKind::Groups)
        }
        ["groups", id] => {
            need(GROUP_READ)?;
            get_group(sim, request, id)
        }
        ["groups", id, list @ ("members" | "transitiveMembers"), cast @ ..] => {
            need(GROUP_READ)?;
            let users_only = match cast {
                [] => false,
                ["microsoft.graph.user"] => true,
                [other] => {
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "Request_UnsupportedQuery",
                        format!("graph-sim supports only the microsoft.graph.user cast, not '{other}'."),
                    ));
                }
                _ => return Err(GraphError::bad_request("Unsupported segment.")),
            };
            list_members(sim, request, id, *list == "transitiveMembers", users_only, can_read_users)
        }
        _ => Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{}'.", rest.last().unwrap_or(&"")),
        )),
    }
}

/// Checks the bearer token; returns the app's granted roles.
fn authorize(sim: &Sim, request: &Request) -> Result<Vec<String>, GraphError> {
    let unauthorized = |message: &str| {
        let mut err = GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message);
        err.headers.push((
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#.into(),
        ));
        err
    };
    let Some(value) = request.header("authorization") else {
        return Err(unauthorized("Access token is empty."));
    };
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or("").trim();
    let state = sim.lock();
    match state.tokens.get(token) {
        None => Err(unauthorized("CompactToken parsing failed with error code: 80049217")),
        Some(t) if t.expires <= Instant::now() => {
            Err(unauthorized("Lifetime validation failed, the token is expired."))
        }
        Some(t) => Ok(t.roles.clone()),
    }
}

pub(crate) fn parse_select(request: &Request, allowed: Option<&[&str]>) -> Result<Option<Vec<String>>, GraphError> {
    let Some(raw) = request.param("$select") else {
        return Ok(None);
    };
    let props: Vec<String> = raw.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
    if let Some(allowed) = allowed {
        for p in &props {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(p)) {
                return Err(GraphError::bad_request(format!(
                    "Could not find a property named '{p}' on type 'microsoft.graph.user'."
                )));
            }
        }
    }
    Ok(Some(props))
}

fn parse_top(request: &Request) -> Result<usize, GraphError> {
    match request.param("$top") {
        None => Ok(100),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => Ok(n),
            _ => Err(GraphError::bad_request(format!(
                "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
            ))),
        },
    }
}

fn reject_unsupported(request: &Request) -> Result<(), GraphError> {
    for name in ["$filter", "$search", "$orderby", "$expand", "$skip"] {
        if request.param(name).is_some() {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                format!("graph-sim does not implement {name}."),
            ));
        }
    }
    Ok(())
}

/// The canonical spelling of a user property (`$select` is case-insensitive).
pub(crate) fn canonical_user_property(name: &str) -> &str {
    USER_PROPERTIES.iter().find(|a| a.eq_ignore_ascii_case(name)).copied().unwrap_or(name)
}

fn user_value(user: &UserRecord, select: Option<&[String]>) -> Map<String, Value> {
    let mut out = Map::new();
    let props: Vec<&str> = match select {
        Some(sel) => sel.iter().map(|p| canonical_user_property(p)).collect(),
        None => DEFAULT_USER_PROPERTIES.to_vec(),
    };
    for p in props {
        out.insert(p.to_owned(), user.property(p).unwrap_or(Value::Null));
    }
    // Graph always returns the id, selected or not.
    if !out.contains_key("id") {
        out.insert("id".into(), json!(user.id));
    }
    out
}

pub(crate) fn context(sim: &Sim, entity: &str, select: Option<&[String]>) -> String {
    match select {
        Some(sel) => format!("{}/v1.0/$metadata#{entity}({})", sim.urls.graph, sel.join(",")),
        None => format!("{}/v1.0/$metadata#{entity}", sim.urls.graph),
    }
}

pub(crate) fn encode_token(parts: &[&str]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(parts.join("\u{1f}"))
}

pub(crate) fn decode_token(token: &str) -> Option<Vec<String>> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    Some(String::from_utf8(raw).ok()?.split('\u{1f}').map(str::to_owned).collect())
}

/// The link to the next page: the same request with `$skiptoken` set (absolute, as Graph).
fn next_link(sim: &Sim, request: &Request, after: &str) -> String {
    let mut query: Vec<String> = request
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("$skiptoken="))
        .map(str::to_owned)
        .collect();
    query.push(format!("$skiptoken={}", encode_token(&["p", after])));
    format!("{}{}?{}", sim.urls.graph, request.path, query.join("&"))
}

fn page_start(request: &Request) -> Result<Option<String>, GraphError> {
    match request.param("$skiptoken") {
        None => Ok(None),
        Some(token) => match decode_token(&token).as_deref() {
            Some([kind, after]) if kind == "p" => Ok(Some(after.clone())),
            _ => Err(GraphError::bad_request("Invalid skip token.")),
        },
    }
}

fn list_users(sim: &Sim, request: &Request) -> GraphResult {
    users_page(sim, request, "users", |state| &state.dir.users)
}

/// `GET /directory/deletedItems/microsoft.graph.user`: the soft-deleted users, restorable
/// for 30 days ("List deletedItems"), paged like `/users`.
fn list_deleted_users(sim: &Sim, request: &Request) -> GraphResult {
    users_page(sim, request, "directoryObjects", |state| &state.dir.deleted_users)
}

/// One page of users in id order, `$select`, `$top` and `$skiptoken` as Graph takes them.
fn users_page(
    sim: &Sim,
    request: &Request,
    entity: &str,
    users: impl Fn(&SimState) -> &std::collections::BTreeMap<String, crate::tenant::SimUser>,
) -> GraphResult {
    reject_unsupported(request)?;
    let select = parse_select(request, Some(USER_PROPERTIES))?;
    let top = parse_top(request)?;
    let after = page_start(request)?;
    let state = sim.lock();
    let start = after.as_deref().map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
    let mut value = Vec::with_capacity(top);
    let mut last = None;
    let mut more = false;
    for (id, user) in users(&state).range::<str, _>((start, std::ops::Bound::Unbounded)) {
        if value.len() == top {
            more = true;
            break;
        }
        value.push(Value::Object(user_value(&user.record, select.as_deref())));
        last = Some(id.clone());
    }
    drop(state);
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context(sim, entity, select.as_deref())));
    if more && let Some(last) = last {
        body.insert("@odata.nextLink".into(), json!(next_link(sim, request, &last)));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Value::Object(body))
}

fn get_user(sim: &Sim, request: &Request, id: &str) -> GraphResult {
    let select = parse_select(request, Some(USER_PROPERTIES))?;
    let state = sim.lock();
    let user = state
        .dir
        .users
        .get(id)
        .or_else(|| state.dir.users.values().find(|u| u.record.user_principal_name.eq_ignore_ascii_case(id)))
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut body = user_value(&user.record, select.as_deref());
    body.insert("@odata.context".into(), json!(format!("{}/$entity", context(sim, "users", select.as_deref()))));
    Ok(Value::Object(body))
}

fn check_group_id<'a>(state: &'a SimState, id: &str) -> Result<&'a crate::tenant::SimGroup, GraphError> {
    if !crate::is_guid(id) {
        return Err(GraphError::bad_request(format!("Invalid object identifier '{id}'.")));
    }
    state.dir.groups.get(&id.to_ascii_lowercase()).ok_or_else(|| GraphError::not_found(id))
}

fn get_group(sim: &Sim, request: &Request, id: &str) -> GraphResult {
    let state = sim.lock();
    let group = check_group_id(&state, id)?;
    let select = parse_select(request, None)?;
    Ok(json!({
        "@odata.context": format!("{}/$entity", context(sim, "groups", select.as_deref())),
        "id": id.to_ascii_lowercase(),
        "displayName": group.display_name,
        "description": null,
        "groupTypes": [],
        "mail": null,
        "mailEnabled": false,
        "securityEnabled": true,
    }))
}

fn object_value(
    state: &SimState,
    id: &str,
    select: Option<&[String]>,
    with_type: bool,
    can_read_users: bool,
) -> Option<Value> {
    let kind = state.dir.kind_of(id)?;
    let mut out = Map::new();
    if with_type {
        out.insert("@odata.type".into(), json!(kind.odata_type()));
    }
    match kind {
        ObjectKind::User if can_read_users => {
            out.extend(user_value(&state.dir.users[id].record, select));
        }
        ObjectKind::User => {
            // Members the app may not read come back with only their type and id.
            out.insert("id".into(), json!(id));
        }
        ObjectKind::Group => {
            out.insert("id".into(), json!(id));
            out.insert("displayName".into(), json!(state.dir.groups[id].display_name));
        }
        ObjectKind::Device | ObjectKind::ServicePrincipal => {
            out.insert("id".into(), json!(id));
            out.insert("displayName".into(), json!(state.dir.others[id].1));
        }
    }
    Some(Value::Object(out))
}

fn list_members(
    sim: &Sim,
    request: &Request,
    id: &str,
    transitive: bool,
    users_only: bool,
    can_read_users: bool,
) -> GraphResult {
    reject_unsupported(request)?;
    let select = parse_select(request, None)?;
    let top = parse_top(request)?;
    let after = page_start(request)?;
    let mut state = sim.lock();
    let direct: Vec<String> = check_group_id(&state, id)?.members.iter().cloned().collect();
    let members = if transitive { state.dir.transitive_members(&id.to_ascii_lowercase()) } else { direct.into() };
    let start = match &after {
        Some(a) => members.partition_point(|m| m <= a),
        None => 0,
    };
    let mut value = Vec::with_capacity(top.min(members.len()));
    let mut last = None;
    let mut more = false;
    for m in &members[start..] {
        if users_only && state.dir.kind_of(m) != Some(ObjectKind::User) {
            continue;
        }
        if value.len() == top {
            more = true;
            break;
        }
        if let Some(v) = object_value(&state, m, select.as_deref(), !users_only, can_read_users) {
            value.push(v);
            last = Some(m.clone());
        }
    }
    let count = (request.param("$count").as_deref() == Some("true")
        && request.header("consistencylevel").is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
        && after.is_none())
    .then(|| {
        let counted = |m: &&String| match state.dir.kind_of(m) {
            None => false, // soft-deleted: hidden
            Some(kind) => !users_only || kind == ObjectKind::User,
        };
        members.iter().filter(counted).count()
    });
    drop(state);
    let mut body = Map::new();
    let entity = if users_only { "users" } else { "directoryObjects" };
    body.insert("@odata.context".into(), json!(context(sim, entity, select.as_deref())));
    if let Some(count) = count {
        body.insert("@odata.count".into(), json!(count));
    }
    if more && let Some(last) = last {
        body.insert("@odata.nextLink".into(), json!(next_link(sim, request, &last)));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Value::Object(body))
}
