//! Failures of Entra and Graph, classified into kinds an administrator can act on.
//!
//! Classification uses the numeric AADSTS code and the Graph `error.code` with the HTTP
//! status, never the message text (Microsoft changes wording; codes are stable).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// AADSTS7000215: wrong secret, often the secret's ID instead of its value.
    SecretInvalid,
    /// AADSTS7000222.
    SecretExpired,
    /// AADSTS90002 / 900023.
    TenantNotFound,
    /// AADSTS700016.
    AppNotFound,
    /// 403 Authorization_RequestDenied.
    MissingPermission,
    /// 404 on a scope group.
    GroupNotFound,
    /// 400 on a scope group: not a GUID.
    GroupIdInvalid,
    /// 429 (or Entra 90055/90024) beyond the retry budget.
    Throttled,
    /// Connection refused, DNS, TLS, reset.
    Unreachable,
    Timeout,
    /// 5xx beyond the retry budget.
    ServiceError,
    /// A delta link expired (410, syncStateNotFound, resyncRequired): read everything again.
    DeltaExpired,
    /// A `$skiptoken` expired in the middle of a round (`Directory_ExpiredPageToken`):
    /// the round starts again.
    PageTokenExpired,
    /// Entra rejected the credentials for another reason (disabled app, secret missing, …).
    CredentialsRejected,
    /// The endpoint answered with a redirect, which is never followed: it would carry the
    /// client secret or the access token to a host nobody configured.
    Redirected,
    /// Anything else: an unexpected status or body.
    Unexpected,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::SecretInvalid => "secret_invalid",
            ErrorKind::SecretExpired => "secret_expired",
            ErrorKind::TenantNotFound => "tenant_not_found",
            ErrorKind::AppNotFound => "app_not_found",
            ErrorKind::MissingPermission => "missing_permission",
            ErrorKind::GroupNotFound => "group_not_found",
            ErrorKind::GroupIdInvalid => "group_id_invalid",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ServiceError => "service_error",
            ErrorKind::DeltaExpired => "delta_expired",
            ErrorKind::PageTokenExpired => "page_token_expired",
            ErrorKind::CredentialsRejected => "credentials_rejected",
            ErrorKind::Redirected => "redirected",
            ErrorKind::Unexpected => "unexpected",
        }
    }

    /// Whether waiting and trying again may help.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Unreachable | ErrorKind::Timeout | ErrorKind::ServiceError)
    }
}

/// A classified failure: `message` says what happened and how to fix it; `detail` carries
/// the technical facts (status, codes, request id) for support. Neither holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GraphError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: String,
}

impl GraphError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, detail: impl Into<String>) -> Self {
        GraphError { kind, message: message.into(), detail: detail.into() }
    }

    /// A configured group that Graph does not know (a 404, or absent from `groups/delta`).
    pub fn group_not_found(id: &str, detail: impl Into<String>) -> Self {
        GraphError::new(
            ErrorKind::GroupNotFound,
            format!(
                "Group '{id}' does not exist in the tenant. In Entra open Groups, select the group and copy its \
                 Object ID into Group Id, or clear Group Id to sync all users."
            ),
            detail,
        )
    }
}

/// A 3xx answer: refused, with where it pointed (host only, never a query) for support.
pub(crate) fn redirect_refused(status: u16, location: Option<&str>, endpoint: &str) -> GraphError {
    let to = location.map(|l| l.split(['?', '#']).next().unwrap_or_default().to_owned()).unwrap_or_default();
    GraphError::new(
        ErrorKind::Redirected,
        format!(
            "The {endpoint} answered with a redirect (HTTP {status}), which SafeGPT never follows: it would send the \
             client secret or the access token to another address. Check the login and Graph URLs (Advanced); \
             nothing was changed."
        ),
        format!("HTTP {status}, Location '{to}'"),
    )
}

/// What a request was for; decides how a 400/403/404 is explained.
#[derive(Debug, Clone)]
pub enum Purpose {
    Token,
    Users,
    Group(String),
    UsersDelta,
    GroupsDelta,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenErrorBody {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_codes: Vec<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct GraphErrorBody {
    #[serde(default)]
    pub error: GraphErrorInner,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct GraphErrorInner {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

const NEW_SECRET_PATH: &str = "In the Microsoft Entra admin center open Identity > Applications > App registrations > \
     (your app) > Certificates & secrets > Client secrets > New client secret (up to 730 days), copy its Value \
     (shown only once) and save it as the Client Secret in SafeGPT";

const PERMISSION_PATH: &str = "In the Microsoft Entra admin center open App registrations > (your app) > \
     API permissions > Add a permission > Microsoft Graph > Application permissions, add User.Read.All and \
     Group.Read.All, then press \"Grant admin consent for (your organisation)\"";

/// Explains a token endpoint failure.
pub(crate) fn classify_token_error(status: u16, body: &[u8], tenant: &str, client_id: &str) -> GraphError {
    let parsed: TokenErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error_codes.first().copied();
    let detail = format!(
        "token endpoint answered HTTP {status}, error '{}', AADSTS{}",
        parsed.error,
        code.map_or_else(|| "?".into(), |c| c.to_string())
    );
    let (kind, message) = match code {
        Some(7_000_215) => (
            ErrorKind::SecretInvalid,
            format!(
                "Entra ID rejected the client secret (AADSTS7000215: invalid client secret). This usually means \
                 the secret's ID was entered instead of its Value. {NEW_SECRET_PATH}."
            ),
        ),
        Some(7_000_222) => {
            (ErrorKind::SecretExpired, format!("The client secret has expired (AADSTS7000222). {NEW_SECRET_PATH}."))
        }
        Some(90_002 | 900_023) => (
            ErrorKind::TenantNotFound,
            format!(
                "Tenant '{tenant}' was not found (AADSTS{}). Copy the \"Directory (tenant) ID\" from the app \
                 registration's Overview page in Entra, and check that the cloud setting (global, US Government, \
                 China) matches the tenant.",
                code.unwrap_or_default()
            ),
        ),
        Some(700_016) => (
            ErrorKind::AppNotFound,
            format!(
                "No application with client id '{client_id}' exists in tenant '{tenant}' (AADSTS700016). Copy the \
                 \"Application (client) ID\" from the Overview page of the app registration, and check that the \
                 app is registered in this tenant."
            ),
        ),
        Some(90_055 | 90_024) => (
            ErrorKind::Throttled,
            format!("Entra ID is throttling token requests (AADSTS{}); the run will retry.", code.unwrap_or_default()),
        ),
        // MSAL and azure-core retry a 429 on its status alone, whatever the body says.
        _ if status == 429 => (
            ErrorKind::Throttled,
            "Entra ID kept throttling token requests (HTTP 429) beyond the retry budget. Nothing was changed; \
             the next run will try again."
                .into(),
        ),
        Some(7_000_112) => (
            ErrorKind::CredentialsRejected,
            "The app registration is disabled in Entra ID (AADSTS7000112). Enable it under Enterprise \
             applications > (your app) > Properties > Enabled for users to sign in."
                .into(),
        ),
        Some(7_000_218 | 90_014 | 70_002) => (
            ErrorKind::CredentialsRejected,
            format!("No client secret was sent to Entra ID. Set the Client Secret in SafeGPT. {NEW_SECRET_PATH}."),
        ),
        _ if status >= 500 => (
            ErrorKind::ServiceError,
            format!("The Entra ID token endpoint failed with HTTP {status}; the run will retry."),
        ),
        _ if parsed.error == "invalid_client" => (
            ErrorKind::CredentialsRejected,
            format!(
                "Entra ID rejected the app's credentials ({}). Check the Client Id and Client Secret.",
                parsed.error
            ),
        ),
        _ => (
            ErrorKind::Unexpected,
            format!(
                "Entra ID refused the token request (HTTP {status}, {}). Check Tenant Id, Client Id and Client Secret.",
                if parsed.error.is_empty() { "no error code" } else { &parsed.error }
            ),
        ),
    };
    GraphError::new(kind, message, detail)
}

/// Explains a Graph failure (after retries, when retrying did not help).
pub(crate) fn classify_graph_error(status: u16, body: &[u8], purpose: &Purpose, request_id: &str) -> GraphError {
    let parsed: GraphErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.code.as_str();
    let detail = format!("Graph answered HTTP {status}, code '{code}', request-id {request_id}");
    let (kind, message) = match (status, code, purpose) {
        (410, _, _) => (ErrorKind::DeltaExpired, "The delta link expired; a full read is needed.".to_owned()),
        (_, c, _) if c.eq_ignore_ascii_case("syncStateNotFound") || c.eq_ignore_ascii_case("resyncRequired") => {
            (ErrorKind::DeltaExpired, "The delta link expired; a full read is needed.".to_owned())
        }
        (_, c, _) if c.eq_ignore_ascii_case("Directory_ExpiredPageToken") => (
            ErrorKind::PageTokenExpired,
            "Microsoft Graph let a page token expire in the middle of a read; the read was started again, and \
             expired again. Nothing was changed; the next run will try again."
                .to_owned(),
        ),
        (403, _, purpose) => {
            let needed = match purpose {
                Purpose::Group(_) | Purpose::GroupsDelta => "Group.Read.All",
                _ => "User.Read.All",
            };
            (
                ErrorKind::MissingPermission,
                format!(
                    "Microsoft Graph denied access (403 {code}): the app registration lacks the application \
                     permission {needed}, or admin consent was not granted. {PERMISSION_PATH}."
                ),
            )
        }
        (404, _, Purpose::Group(id)) => return GraphError::group_not_found(id, detail),
        (400, _, Purpose::Group(id)) => (
            ErrorKind::GroupIdInvalid,
            format!(
                "Microsoft Graph says '{id}' is not a valid group object id (400 {code}). Use the group's Object ID \
                 (a GUID) from Entra > Groups, not its name."
            ),
        ),
        (401, _, _) => (
            ErrorKind::CredentialsRejected,
            format!("Microsoft Graph rejected the access token twice (401 {code}). Check the app registration."),
        ),
        (429, _, _) => (
            ErrorKind::Throttled,
            "Microsoft Graph kept throttling requests (429 TooManyRequests) beyond the retry budget. Nothing was \
             changed; the next run will try again."
                .to_owned(),
        ),
        (s, _, _) if s >= 500 => (
            ErrorKind::ServiceError,
            format!(
                "Microsoft Graph failed with HTTP {s} ({code}) beyond the retry budget. Nothing was changed; the next run will try again."
            ),
        ),
        _ => (
            ErrorKind::Unexpected,
            format!("Microsoft Graph answered HTTP {status} ({code}: {}).", parsed.error.message),
        ),
    };
    GraphError::new(kind, message, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_are_classified_by_aadsts_code_not_text() {
        let body = br#"{"error":"invalid_client","error_description":"something reworded","error_codes":[7000222]}"#;
        let e = classify_token_error(401, body, "t", "c");
        assert_eq!(e.kind, ErrorKind::SecretExpired);
        assert!(e.message.contains("New client secret"));
        let body =
            br#"{"error":"invalid_client","error_description":"AADSTS7000222: expired","error_codes":[7000215]}"#;
        assert_eq!(classify_token_error(401, body, "t", "c").kind, ErrorKind::SecretInvalid);
        let e = classify_token_error(400, br#"{"error":"unauthorized_client","error_codes":[700016]}"#, "t", "cid");
        assert_eq!(e.kind, ErrorKind::AppNotFound);
        assert!(e.message.contains("cid"));
        assert_eq!(classify_token_error(400, br#"{"error_codes":[90002]}"#, "t", "c").kind, ErrorKind::TenantNotFound);
        assert_eq!(classify_token_error(503, b"<html>", "t", "c").kind, ErrorKind::ServiceError);
        // A 429 is throttling whatever its body carries (here no AADSTS code at all).
        assert_eq!(
            classify_token_error(429, br#"{"error":{"code":"TooManyRequests"}}"#, "t", "c").kind,
            ErrorKind::Throttled
        );
    }

    #[test]
    fn graph_errors_name_the_permission_and_the_group() {
        let body = br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}"#;
        let e = classify_graph_error(403, body, &Purpose::Group("g".into()), "r");
        assert_eq!(e.kind, ErrorKind::MissingPermission);
        assert!(e.message.contains("Group.Read.All"));
        let e = classify_graph_error(403, body, &Purpose::Users, "r");
        assert!(e.message.contains("User.Read.All"));
        let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"x"}}"#;
        let e = classify_graph_error(404, body, &Purpose::Group("g-1".into()), "r");
        assert_eq!(e.kind, ErrorKind::GroupNotFound);
        assert!(e.message.contains("g-1"));
        let body = br#"{"error":{"code":"syncStateNotFound","message":"x"}}"#;
        assert_eq!(classify_graph_error(400, body, &Purpose::UsersDelta, "r").kind, ErrorKind::DeltaExpired);
        let body = br#"{"error":{"code":"Directory_ExpiredPageToken","message":"x"}}"#;
        assert_eq!(classify_graph_error(400, body, &Purpose::UsersDelta, "r").kind, ErrorKind::PageTokenExpired);
    }
}
