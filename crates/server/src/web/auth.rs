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
//! - Login throttling: [`LoginThrottle`], per e-mail and per client address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

pub const SESSION_COOKIE: &str = "safegpt_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf";

/// An authenticated administrator or API token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// For the audit log: `admin:<e-mail>` or `token:<name>`.
    pub actor: String,
    pub email: Option<String>,
    /// The session's CSRF token; `None` for API tokens.
    pub csrf: Option<String>,
    /// A warning every page shows this administrator (the client secret expires soon).
    pub banner: Option<String>,
}

pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Checked at `admin create` and on the setup page.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < 12 {
        return Err("password: use at least 12 characters".into());
    }
    Ok(())
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Resolves the caller from a bearer token or the session cookie.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    let now = state.now();
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let Some(token) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) else {
            return Ok(None);
        };
        let token = state.store.authenticate_api_token(token, now).await?;
        return Ok(token.map(|t| Principal {
            actor: format!("token:{}", t.name),
            email: None,
            csrf: None,
            banner: None,
        }));
    }
    let Some(cookie) = cookie_value(headers, SESSION_COOKIE) else { return Ok(None) };
    let session = state.store.session(cookie, now, state.config.session_lifetime).await?;
    Ok(session.map(|s| Principal {
        actor: format!("admin:{}", s.email),
        email: Some(s.email),
        csrf: Some(s.csrf_token),
        banner: None,
    }))
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// An administrator calling the API. Unauthenticated: 401 JSON.
pub struct ApiAdmin(pub Principal);

impl FromRequestParts<AppState> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = authenticate(state, &parts.headers).await?.ok_or_else(ApiError::unauthorized)?;
        if let Some(expected) = &principal.csrf
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
        Ok(ApiAdmin(principal))
    }
}

/// An administrator viewing a page. Unauthenticated: a redirect to the login page.
pub struct PageAdmin(pub Principal);

fn login_redirect(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = format!("/login?next={}", super::pages::url_encode(next));
    Redirect::to(&target).into_response()
}

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match authenticate(state, &parts.headers).await {
            Ok(Some(mut p)) if p.csrf.is_some() => {
                if let Ok((settings, _)) = state.store.settings().await {
                    p.banner = settings.secret_warning(state.now().date()).map(|w| w.describe());
                }
                Ok(PageAdmin(p))
            }
            // Pages are for browsers: a bearer token does not open them.
            Ok(_) => Err(login_redirect(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A form posted by an administrator's browser, its CSRF token checked before `T` is read.
pub struct CsrfForm<T>(pub Principal, pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let PageAdmin(principal) = PageAdmin::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let sent = pairs.iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.as_str()).unwrap_or("");
        let expected = principal.csrf.as_deref().unwrap_or("\u{0}");
        if !constant_time_eq(sent, expected) {
            return Err((
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from SafeGPT. Go back, reload the page and try again.",
            )
                .into_response());
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("the form is invalid: {e}")).into_response())?;
        Ok(CsrfForm(principal, form))
    }
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
        let cross = matches!(fetch_site, Some("cross-site" | "same-site"))
            || origin.is_some_and(|o| o != "null" && !same_origin(o));
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

/// Slows down password guessing: after 5 failures for one key (an e-mail or an address),
/// that key is locked for 30 s, doubling with each further failure up to 15 minutes.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const FREE_ATTEMPTS: u32 = 5;

impl LoginThrottle {
    /// How long `key` must still wait, if it is locked.
    pub fn locked_for(&self, key: &str, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().expect("throttle lock");
        let (count, last) = failures.get(key)?;
        if *count < FREE_ATTEMPTS {
            return None;
        }
        let lock = Duration::from_secs(30u64 << (count - FREE_ATTEMPTS).min(5)).min(Duration::from_secs(900));
        (now < *last + lock).then(|| *last + lock - now)
    }

    pub fn failed(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().expect("throttle lock");
        // Forget keys idle for an hour so the map cannot grow without bound.
        failures.retain(|_, (_, last)| now.saturating_duration_since(*last) < Duration::from_secs(3600));
        let entry = failures.entry(key.to_owned()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now;
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("throttle lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_locks_after_five_failures_and_doubles() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(throttle.locked_for("a@x.org", t0), None, "attempt {i} is free");
            throttle.failed("a@x.org", t0);
        }
        assert_eq!(throttle.locked_for("a@x.org", t0), Some(Duration::from_secs(30)));
        assert_eq!(throttle.locked_for("a@x.org", t0 + Duration::from_secs(31)), None);
        throttle.failed("a@x.org", t0 + Duration::from_secs(31));
        assert_eq!(
            throttle.locked_for("a@x.org", t0 + Duration::from_secs(31)),
            Some(Duration::from_secs(60)),
            "the sixth failure doubles the lock"
        );
        assert_eq!(throttle.locked_for("b@x.org", t0), None, "other keys are not affected");
        throttle.succeeded("a@x.org");
        assert_eq!(throttle.locked_for("a@x.org", t0 + Duration::from_secs(31)), None);
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("wrong horse battery", &phc));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "lang=nl; safegpt_session=abc; x=1".parse().unwrap());
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(&headers, "missing"), None);
    }
}
