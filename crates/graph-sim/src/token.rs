//! The Entra token endpoint (client credentials) and the discovery documents MSAL reads.

use std::collections::HashMap;
use std::time::Instant;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::http::{Request, json_response};
use crate::sim::{IssuedToken, Sim};
use crate::tenant::Directory;

const TOKEN_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Graph's well-known application id, accepted as a scope resource.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// An AADSTS error as Entra sends it.
fn aadsts(sim: &Sim, request: &Request, status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let now = OffsetDateTime::now_utc();
    let stamp = now.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z")).unwrap_or_default();
    let trace = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {}\r\nTimestamp: {stamp}",
            request.request_id
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": request.request_id,
        "error_uri": format!("{}/error?code={code}", sim.urls.login),
    });
    no_store(json_response(status, &body, TOKEN_CONTENT_TYPE, &request.request_id))
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

enum TenantMatch {
    Known,
    /// Well-formed but not this tenant.
    Unknown,
    Malformed,
}

fn match_tenant(dir: &Directory, tenant: &str) -> TenantMatch {
    let t = tenant.to_ascii_lowercase();
    if t == dir.tenant_id || t == dir.domain {
        TenantMatch::Known
    } else if crate::is_guid(&t)
        || (t.contains('.') && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
    {
        TenantMatch::Unknown
    } else {
        TenantMatch::Malformed
    }
}

fn tenant_error(sim: &Sim, request: &Request, tenant: &str, found: TenantMatch, error: &str) -> Option<Response> {
    match found {
        TenantMatch::Known => None,
        TenantMatch::Unknown => Some(aadsts(
            sim,
            request,
            StatusCode::BAD_REQUEST,
            error,
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )),
        TenantMatch::Malformed => Some(aadsts(
            sim,
            request,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900023,
            &format!(
                "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."
            ),
        )),
    }
}

pub fn openid_configuration(sim: &Sim, request: &Request, tenant: &str) -> Response {
    let found = match_tenant(&sim.lock().dir, tenant);
    if let Some(err) = tenant_error(sim, request, tenant, found, "invalid_tenant") {
        return err;
    }
    let base = format!("{}/{tenant}", sim.urls.login);
    let body = json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "msgraph_host": sim.urls.graph.trim_start_matches("https://").trim_start_matches("http://"),
    });
    let mut response = json_response(StatusCode::OK, &body, TOKEN_CONTENT_TYPE, &request.request_id);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=86400, private"));
    response
}

pub fn instance_discovery(sim: &Sim, request: &Request) -> Response {
    let tenant = sim.lock().dir.tenant_id.clone();
    let host = sim.urls.login.split("://").nth(1).unwrap_or_default().to_owned();
    let body = json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", sim.urls.login),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    });
    json_response(StatusCode::OK, &body, TOKEN_CONTENT_TYPE, &request.request_id)
}

/// Client id and secret from the form, or from HTTP Basic authentication.
fn client_credentials(request: &Request, form: &HashMap<String, String>) -> (Option<String>, Option<String>) {
    let mut id = form.get("client_id").cloned();
    let mut secret = form.get("client_secret").cloned();
    if let Some(basic) = request.header("authorization").and_then(|h| h.strip_prefix("Basic ")) {
        use base64::Engine;
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic.trim())
            && let Ok(text) = String::from_utf8(raw)
            && let Some((u, p)) = text.split_once(':')
        {
            id = id.or_else(|| Some(crate::http::decode(u)));
            secret = secret.or_else(|| Some(crate::http::decode(p)));
        }
    }
    (id.filter(|s| !s.is_empty()), secret.filter(|s| !s.is_empty()))
}

pub fn issue(sim: &Sim, request: &Request, tenant: &str) -> Response {
    // Unknown fields (client_info, claims, x-client-*, ...) are ignored, as Entra does.
    let form: HashMap<String, String> =
        crate::http::parse_urlencoded(std::str::from_utf8(&request.body).unwrap_or_default()).into_iter().collect();
    let (client_id, secret) = client_credentials(request, &form);
    let (found, app, tenant_id) = {
        let state = sim.lock();
        let app = client_id
            .as_ref()
            .and_then(|id| state.dir.apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(id)).cloned());
        (match_tenant(&state.dir, tenant), app, state.dir.tenant_id.clone())
    };
    if let Some(err) = tenant_error(sim, request, tenant, found, "invalid_request") {
        return err;
    }
    let bad = |status, error, code, text: &str| aadsts(sim, request, status, error, code, text);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return bad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type. graph-sim implements client_credentials only.",
        );
    }
    let Some(client_id) = client_id else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(app) = app else {
        return bad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    };
    let scope = form.get("scope").cloned().unwrap_or_default();
    let scope_ok = scope.split(' ').filter(|s| !s.is_empty()).count() == 1
        && [
            format!("{}/.default", sim.urls.graph),
            "https://graph.microsoft.com/.default".into(),
            format!("{GRAPH_APP_ID}/.default"),
        ]
        .contains(&scope);
    if !scope_ok {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        );
    }
    let Some(secret) = secret else {
        return bad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    let now = OffsetDateTime::now_utc();
    match app.secrets.iter().find(|s| s.value == secret) {
        None => {
            return bad(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            );
        }
        Some(s) if s.expires <= now => {
            return bad(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000222,
                &format!(
                    "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                    app.client_id
                ),
            );
        }
        Some(_) => {}
    }

    let mut state = sim.lock();
    let lifetime = state.token_lifetime();
    let (tag, a, b) = (state.token_tag, state.next_random(), state.next_random());
    let token = format!("simtok.{tag}.{a:016x}{b:016x}");
    state.tokens.retain(|_, t| t.expires > Instant::now());
    state.tokens.insert(
        token.clone(),
        IssuedToken { client_id: app.client_id.clone(), roles: app.roles.clone(), expires: Instant::now() + lifetime },
    );
    drop(state);
    let secs = lifetime.as_secs();
    let body: Value =
        json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token});
    no_store(json_response(StatusCode::OK, &body, TOKEN_CONTENT_TYPE, &request.request_id))
}
