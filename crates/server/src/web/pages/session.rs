//! Login, logout, the one-time setup link and the language switch.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use safegpt_app::{AppError, Login};
use serde::Deserialize;

use super::frame::*;
use crate::web::auth::{SESSION_COOKIE, SessionForm};
use crate::web::error::ApiError;
use crate::web::http::{constant_time_eq, cookie_value};
use crate::web::i18n::{LANG_COOKIE, Lang, Texts};
use crate::web::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    t: &'static Texts,
    f: Frame,
    error: Option<String>,
    next: String,
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LoginQuery {
    next: String,
}

pub(super) async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let (t, f) = frame(&headers, None, "/login", "", texts_for(&headers).log_in);
    render(StatusCode::OK, LoginPage { t, f, error: None, next: q.next, email: String::new() })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LoginForm {
    email: String,
    password: String,
    next: String,
}

pub(super) fn session_cookie(state: &AppState, value: &str) -> HeaderValue {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"))
        .expect("cookie values are URL-safe")
}

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = Lang::from_headers(&headers).texts();
    let page = |status: StatusCode, error: String| {
        let (t, f) = frame(&headers, None, "/login", "", t.log_in);
        render(status, LoginPage { t, f, error: Some(error), next: form.next.clone(), email: form.email.clone() })
    };
    let admin = match state.platform.log_in(&form.email, &form.password, peer.ip()).await {
        Ok(Login::Admin(admin)) => admin,
        Ok(Login::Failed) => return page(StatusCode::UNAUTHORIZED, t.login_failed.to_owned()),
        Ok(Login::Throttled(wait)) => {
            return page(StatusCode::TOO_MANY_REQUESTS, format!("{} {}", t.login_throttled, wait.as_secs() + 1));
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let cookie = match state.store.create_session(&admin, state.now(), state.config.session_lifetime).await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // A platform operator of no organisation starts on the platform page.
    let next = if admin.org.is_none() { "/platform" } else { local_path(&form.next) };
    let mut response = see_other(next);
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &cookie));
    response
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    SessionForm(_, NoFields {}): SessionForm<NoFields>,
) -> Response {
    if let Some(cookie) = cookie_value(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.delete_session(cookie).await
    {
        return ApiError::from(e).into_response();
    }
    let mut response = see_other("/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("safegpt_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

#[derive(Template)]
#[template(path = "setup.html")]
pub(super) struct SetupPage {
    t: &'static Texts,
    f: Frame,
    valid: bool,
    error: Option<String>,
    token: String,
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SetupForm {
    token: String,
    email: String,
    password: String,
}

pub(super) async fn setup_token_valid(state: &AppState, token: &str) -> bool {
    let expected = state.setup_token.lock().expect("setup lock").clone();
    expected.is_some_and(|e| constant_time_eq(&e, token)) && state.store.admin_count().await.unwrap_or(1) == 0
}

pub(super) async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(form): Query<SetupForm>,
) -> Response {
    let valid = setup_token_valid(&state, &form.token).await;
    let (t, f) = frame(&headers, None, "/setup", "", texts_for(&headers).setup_title);
    let status = if valid { StatusCode::OK } else { StatusCode::NOT_FOUND };
    render(status, SetupPage { t, f, valid, error: None, token: form.token, email: String::new() })
}

pub(super) async fn setup(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SetupForm>) -> Response {
    let (t, f) = frame(&headers, None, "/setup", "", texts_for(&headers).setup_title);
    if !setup_token_valid(&state, &form.token).await {
        return render(
            StatusCode::NOT_FOUND,
            SetupPage { t, f, valid: false, error: None, token: String::new(), email: form.email },
        );
    }
    let fail = |t, f, error: String, form: SetupForm| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            SetupPage { t, f, valid: true, error: Some(error), token: form.token, email: form.email },
        )
    };
    let admin = match state.platform.create_first_admin(&form.email, &form.password).await {
        Ok(a) => a,
        Err(e @ AppError::Internal(_)) => return ApiError::from(e).into_response(),
        Err(e) => return fail(t, f, e.to_string(), form),
    };
    state.setup_token.lock().expect("setup lock").take();
    let cookie = match state.store.create_session(&admin, state.now(), state.config.session_lifetime).await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut response = see_other("/settings/integrations");
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &cookie));
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LangQuery {
    to: String,
    back: String,
}

pub(super) async fn switch_language(Query(q): Query<LangQuery>) -> Response {
    let lang = Lang::parse(&q.to).unwrap_or(Lang::En);
    let mut response = see_other(local_path(&q.back));
    let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii cookie"));
    response
}
