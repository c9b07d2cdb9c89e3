//! Who is asking: an administrator's browser session or an API token.
//!
//! - Passwords: argon2id, verified on the blocking pool behind a semaphore so that a burst
//!   of logins cannot starve the server.
//! - Sessions: a random cookie (HttpOnly, SameSite=Lax, Secure behind https); the database
//!   keeps only its SHA-256.
//! - CSRF: every state-changing form carries the session's token, checked by [`CsrfForm`];
//!   session-authenticated API writes send it as `X-CSRF-Token`; and [`reject_cross_site`]
//!   refuses unsafe requests whose `Origin` or `Sec-Fetch-Site` says they come from another
//!   site. Bearer-token requests carry no ambient credentials and need no CSRF token.
//! - Login throttling: `App::log_in`, per e-mail and per client address, in the database.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::http::{constant_time_eq, cookie_value, url_encode};
use super::state::AppState;

pub const SESSION_COOKIE: &str = "safegpt_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf";

/// Who an authenticated request comes from: an administrator's session or an API token.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Who acts, for the application (and its audit log).
    pub principal: safegpt_app::Principal,
    pub email: Option<String>,
    /// The session's CSRF token; `None` for API tokens.
    pub csrf: Option<String>,
}

impl Identity {
    /// A platform operator's session or a platform token.
    pub fn is_platform(&self) -> bool {
        match &self.principal {
            safegpt_app::Principal::Admin { platform, .. } => *platform,
            safegpt_app::Principal::Token { org, .. } => org.is_none(),
            _ => false,
        }
    }
}

/// An authenticated caller acting in an organisation: the application of that organisation
/// comes from [`safegpt_app::Platform::scope`], never from the request.
#[derive(Clone)]
pub struct Caller {
    pub principal: safegpt_app::Principal,
    pub email: Option<String>,
    pub csrf: Option<String>,
    /// A warning every page shows this administrator (the client secret expires soon).
    pub banner: Option<String>,
    /// The organisation's application.
    pub app: safegpt_app::App,
}

impl Caller {
    async fn scoped(state: &AppState, identity: Identity) -> Result<Caller, safegpt_app::AppError> {
        let app = state.platform.scope(&identity.principal, None).await?;
        Ok(Caller { principal: identity.principal, email: identity.email, csrf: identity.csrf, banner: None, app })
    }
}

/// Resolves the caller from a bearer token or the session cookie.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
    let now = state.now();
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let Some(token) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) else {
            return Ok(None);
        };
        let Some(token) = state.store.authenticate_api_token(token, now).await? else { return Ok(None) };
        let scope = safegpt_app::TokenScope::parse(&token.scope).map_err(|_| {
            ApiError::from(safegpt_app::AppError::Internal(format!("token {} has an unknown scope", token.id)))
        })?;
        return Ok(Some(Identity {
            principal: safegpt_app::Principal::Token { name: token.name, scope, org: token.org },
            email: None,
            csrf: None,
        }));
    }
    let Some(cookie) = cookie_value(headers, SESSION_COOKIE) else { return Ok(None) };
    let session = state.store.session(cookie, now, state.config.session_lifetime).await?;
    Ok(session.map(|s| Identity {
        principal: safegpt_app::Principal::Admin { email: s.email.clone(), org: s.org, platform: s.platform },
        email: Some(s.email),
        csrf: Some(s.csrf_token),
    }))
}

/// Refuses an unsafe request of a browser session that does not send its CSRF token.
fn check_csrf_header(parts: &Parts, identity: &Identity) -> Result<(), ApiError> {
    if let Some(expected) = &identity.csrf
        && is_unsafe(&parts.method)
    {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !constant_time_eq(sent, expected) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a browser session must send its CSRF token as the X-CSRF-Token header \
                 (or use an API token instead of the session cookie)",
            )
            .with_field(CSRF_HEADER));
        }
    }
    Ok(())
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// An administrator calling the API, acting in their organisation. Unauthenticated: 401 JSON.
pub struct ApiAdmin(pub Caller);

impl FromRequestParts<AppState> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let identity = authenticate(state, &parts.headers).await?.ok_or_else(ApiError::unauthorized)?;
        check_csrf_header(parts, &identity)?;
        Ok(ApiAdmin(Caller::scoped(state, identity).await?))
    }
}

/// Whoever calls the platform's API, with the platform to ask: the platform checks that
/// the caller is a platform operator or holds a platform token.
pub struct PlatformCaller {
    pub identity: Identity,
    pub platform: safegpt_app::Platform,
}

/// A caller of the platform's API. Unauthenticated: 401 JSON.
pub struct ApiPlatform(pub PlatformCaller);

impl FromRequestParts<AppState> for ApiPlatform {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let identity = authenticate(state, &parts.headers).await?.ok_or_else(ApiError::unauthorized)?;
        check_csrf_header(parts, &identity)?;
        // Refused before the request is read: its body is none of an outsider's business.
        // (The platform checks again, with the scope each operation needs.)
        if !identity.is_platform() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the platform API is for platform operators and platform tokens; an organisation's administrators \
                 and tokens act in their organisation only",
            ));
        }
        Ok(ApiPlatform(PlatformCaller { identity, platform: state.platform.clone() }))
    }
}

/// An administrator viewing a page. Unauthenticated: a redirect to the login page.
pub struct PageAdmin(pub Caller);

fn login_redirect(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = format!("/login?next={}", url_encode(next));
    Redirect::to(&target).into_response()
}

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match authenticate(state, &parts.headers).await {
            Ok(Some(identity)) if identity.csrf.is_some() => {
                // A platform operator who has opened no organisation has the platform page.
                if matches!(&identity.principal, safegpt_app::Principal::Admin { org: None, .. }) {
                    return Err(Redirect::to("/platform").into_response());
                }
                let mut caller =
                    Caller::scoped(state, identity).await.map_err(|e| ApiError::from(e).into_response())?;
                if let Ok((settings, _)) = caller.app.store().settings().await {
                    caller.banner = settings.secret_warning(state.now().date()).map(|w| w.describe());
                }
                Ok(PageAdmin(caller))
            }
            // Pages are for browsers: a bearer token does not open them.
            Ok(_) => Err(login_redirect(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A platform operator viewing a platform page. Otherwise: the login page, or 403.
pub struct PagePlatform(pub Identity);

impl FromRequestParts<AppState> for PagePlatform {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match authenticate(state, &parts.headers).await {
            Ok(Some(identity)) if identity.csrf.is_some() && identity.is_platform() => Ok(PagePlatform(identity)),
            Ok(Some(identity)) if identity.csrf.is_some() => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only a platform operator may open the platform page",
            )
            .into_response()),
            Ok(_) => Err(login_redirect(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A form posted by an administrator's browser, its CSRF token checked before `T` is read.
pub struct CsrfForm<T>(pub Caller, pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let PageAdmin(caller) = PageAdmin::from_request_parts(&mut parts, state).await?;
        let form = checked_form(body, caller.csrf.as_deref()).await?;
        Ok(CsrfForm(caller, form))
    }
}

/// A form posted by any signed-in browser (a platform operator's too), its CSRF token
/// checked before `T` is read. What the sender may do is the application's check.
pub struct SessionForm<T>(pub Identity, pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for SessionForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let identity = match authenticate(state, &parts.headers).await {
            Ok(Some(identity)) if identity.csrf.is_some() => identity,
            Ok(_) => return Err(login_redirect(&parts)),
            Err(e) => return Err(e.into_response()),
        };
        let form = checked_form(body, identity.csrf.as_deref()).await?;
        Ok(SessionForm(identity, form))
    }
}

async fn checked_form<T: DeserializeOwned>(body: axum::body::Body, csrf: Option<&str>) -> Result<T, Response> {
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let sent = pairs.iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.as_str()).unwrap_or("");
    if !constant_time_eq(sent, csrf.unwrap_or("\u{0}")) {
        return Err((
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from SafeGPT. Go back, reload the page and try again.",
        )
            .into_response());
    }
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("the form is invalid: {e}")).into_response())
}

/// Refuses state-changing requests that a browser marks as coming from another site.
pub async fn reject_cross_site(state: axum::extract::State<AppState>, req: Request, next: Next) -> Response {
    if is_unsafe(req.method()) {
        let headers = req.headers();
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let same_origin = |o: &str| {
            o.split_once("://").map(|(_, h)| h) == Some(host)
                || state.config.public_url.as_deref().map(|p| p.trim_end_matches('/')) == Some(o)
        };
        // `Origin: null` is an opaque origin (a sandboxed frame, a data: or file: page): not
        // this site, so refused like any other.
        let cross = matches!(fetch_site, Some("cross-site" | "same-site")) || origin.is_some_and(|o| !same_origin(o));
        if cross {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "cross-site request refused; if SafeGPT runs behind a proxy, set SAFEGPT_PUBLIC_URL to the address \
                 browsers use",
            )
            .into_response();
        }
    }
    next.run(req).await
}
