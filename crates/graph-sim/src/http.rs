//! Request dispatch, Graph-shaped responses and request statistics.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::sim::{Sim, Tenants};
use crate::{control, graph_api, token};

pub const GRAPH_CONTENT_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// One incoming request, decoded once.
pub struct Request {
    pub method: Method,
    pub path: String,
    /// Percent-decoded path segments (without the leading empty one).
    pub segments: Vec<String>,
    /// Raw query string (after `?`), empty if none.
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub request_id: String,
}

impl Request {
    /// Query parameters, percent-decoded; names compared case-insensitively by `param`.
    pub fn params(&self) -> Vec<(String, String)> {
        parse_urlencoded(&self.raw_query)
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.params().into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `a=1&b=2` pairs (a query string or a form body), percent-decoded.
pub fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// A Graph error: status, `error.code` and `error.message`.
#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(header::HeaderName, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GraphError { status, code, message: message.into(), headers: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }
}

/// Seconds-precision time without zone, as Graph's `innerError.date`.
pub fn graph_date() -> String {
    OffsetDateTime::now_utc()
        .format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"))
        .unwrap_or_default()
}

pub fn graph_error_body(code: &str, message: &str, request_id: &str) -> Value {
    json!({"error": {"code": code, "message": message,
        "innerError": {"date": graph_date(), "request-id": request_id, "client-request-id": request_id}}})
}

/// The Graph error body Graph sends for a bare status (used by injected faults).
pub fn default_error_for(status: u16, request_id: &str) -> Value {
    let (code, message) = match status {
        429 => ("TooManyRequests", "Please retry again later."),
        503 => ("serviceNotAvailable", "Service unavailable."),
        504 => ("UnknownError", "Gateway timeout."),
        500 => ("InternalServerError", "Internal server error."),
        401 => ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
        403 => ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
        404 => ("Request_ResourceNotFound", "Resource does not exist."),
        _ => ("UnknownError", "Injected fault."),
    };
    graph_error_body(code, message, request_id)
}

pub fn json_response(status: StatusCode, body: &Value, content_type: &str, request_id: &str) -> Response {
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("static content type"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v.clone());
        h.insert("client-request-id", v);
    }
    h.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(r#"{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"graph-sim"}}"#),
    );
    response
}

impl GraphError {
    pub fn into_response(self, request_id: &str) -> Response {
        let body = graph_error_body(self.code, &self.message, request_id);
        let mut response = json_response(self.status, &body, GRAPH_CONTENT_TYPE, request_id);
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
        response
    }
}

/// The single entry point: every request of every kind comes through here.
pub async fn dispatch(
    State(tenants): State<Tenants>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = Request {
        segments: path.split('/').skip(1).map(decode).collect(),
        raw_query: uri.query().unwrap_or_default().to_owned(),
        method,
        path,
        headers,
        body,
        request_id,
    };

    let segs: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    if segs.first() == Some(&"_sim") {
        if !peer.ip().is_loopback() {
            return GraphError::new(StatusCode::FORBIDDEN, "Forbidden", "the control API answers loopback only")
                .into_response(&request.request_id);
        }
        // `/_sim/tenants/{tenant}/…` controls that tenant; `/_sim/…` the first.
        return match segs.as_slice() {
            ["_sim", "tenants", tenant, ..] => match tenants.get(tenant) {
                Some(sim) => {
                    let inner = Request { segments: request.segments[2..].to_vec(), ..request };
                    control::handle(sim, &inner)
                }
                None => GraphError::not_found(tenant).into_response(&request.request_id),
            },
            _ => control::handle(tenants.first(), &request),
        };
    }
    let sim = match segs.as_slice() {
        [tenant, "oauth2", ..] | [tenant, "v2.0", ..] => tenants.get(tenant).unwrap_or(tenants.first()),
        _ => {
            let bearer = request.header("authorization").and_then(|a| a.get(7..)).unwrap_or_default();
            tenants.for_token(bearer)
        }
    }
    .clone();

    let latency = sim.lock().faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }

    let route = route_label(&request);
    let response = respond(&sim, &request);
    let mut state = sim.lock();
    *state.stats.requests.entry((route, response.status().as_u16())).or_default() += 1;
    state.stats.bytes_sent += axum::body::HttpBody::size_hint(response.body()).exact().unwrap_or(0);
    response
}

fn respond(sim: &Sim, request: &Request) -> Response {
    let path_and_query = if request.raw_query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{}", request.path, request.raw_query)
    };
    let fault = sim.lock().fire_rule(&request.path, &decode(&path_and_query));
    if let Some(rule) = fault {
        if rule.reset {
            return connection_reset(&request.request_id);
        }
        let status = StatusCode::from_u16(rule.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = rule.body.clone().unwrap_or_else(|| rule.error_body(&request.request_id));
        let mut response = json_response(status, &body, GRAPH_CONTENT_TYPE, &request.request_id);
        if let Some(ra) = rule.retry_after.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, ra);
        }
        return response;
    }

    let segs: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    match (&request.method, segs.as_slice()) {
        (&Method::GET, [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
            token::openid_configuration(sim, request, tenant)
        }
        (&Method::GET, ["common", "discovery", "instance"]) => token::instance_discovery(sim, request),
        (&Method::POST, [tenant, "oauth2", "v2.0", "token"]) => token::issue(sim, request, tenant),
        (_, ["v1.0", rest @ ..]) => graph_api::handle(sim, request, rest),
        _ => GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Invalid version or resource: {}", request.path),
        )
        .into_response(&request.request_id),
    }
}

/// A 200 whose body breaks off after its first bytes: the client sees the connection end
/// in the middle of the answer, as when a proxy or load balancer resets it.
fn connection_reset(request_id: &str) -> Response {
    let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![
        Ok(b"{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users\",\"value\":[".as_slice()),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by fault injection")),
    ];
    let mut response = Response::new(axum::body::Body::from_stream(futures_util::stream::iter(chunks)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(GRAPH_CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("request-id", id);
    }
    response
}

/// Route name for statistics: ids replaced by `{id}`, delta spellings folded.
fn route_label(request: &Request) -> String {
    let segs: Vec<String> = request
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 0 && request.segments.get(1).is_some_and(|s| s == "oauth2" || s == "v2.0") {
                "{tenant}".to_owned()
            } else if crate::is_guid(s) {
                "{id}".to_owned()
            } else if graph_api::is_delta_segment(s) {
                "delta".to_owned()
            } else if s.contains('@') {
                "{upn}".to_owned()
            } else {
                s.clone()
            }
        })
        .collect();
    format!("{} /{}", request.method, segs.join("/"))
}

pub fn empty_json(request_id: &str) -> Response {
    json_response(StatusCode::OK, &json!({}), "application/json", request_id)
}
