//! The administrator's pages: server-rendered, usable without JavaScript. Handlers gather
//! view rows (texts already translated) and render one template each; what they change goes
//! through [`super::actions`], shared with the REST API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use safegpt_core::{SettingsPatch, Source, Status};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::AppState;
use super::actions;
use super::auth::{self, CsrfForm, PageAdmin, Principal, SESSION_COOKIE};
use super::error::ApiError;
use super::i18n::{LANG_COOKIE, Lang, Texts};
use crate::views::{ChangeView, CountsView, RunView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/settings/integrations") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/setup", get(setup_page).post(setup))
        .route("/lang", get(switch_language))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/settings/integrations", get(integrations_page))
        .route("/settings/integrations/{key}/switch", post(switch_integration))
        .route("/settings/integrations/azure", get(azure_page).post(azure_save))
        .route("/settings/integrations/azure/test", post(azure_test))
        .route("/settings/integrations/azure/preview", post(azure_preview))
        .route("/settings/integrations/azure/sync", post(azure_sync))
        .route("/runs", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/confirm", post(run_confirm))
        .route("/runs/{id}/cancel", post(run_cancel))
        .route("/users", get(users_page))
        .route("/users/{id}/{action}", post(user_action))
        .route("/audit", get(audit_page))
        .route("/settings/tokens", get(tokens_page).post(token_create))
        .route("/settings/tokens/{id}/revoke", post(token_revoke))
}

// ---------------------------------------------------------------- helpers

pub fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only local paths: a redirect target from a form must not lead off-site.
fn local_path(candidate: &str) -> &str {
    let ok = candidate.starts_with('/') && !candidate.starts_with("//") && !candidate.contains('\\');
    if ok { candidate } else { "/" }
}

fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

fn fmt_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn fmt_duration(ms: Option<u64>) -> String {
    match ms {
        None => "…".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

fn summary(t: &Texts, c: &CountsView) -> String {
    let parts: Vec<String> = [
        (c.created, t.counts_created),
        (c.updated, t.counts_updated),
        (c.enabled, t.counts_enabled),
        (c.disabled, t.counts_disabled),
        (c.removed, t.counts_removed),
        (c.awaiting_license, t.counts_awaiting),
        (c.unchanged, t.counts_unchanged),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, label)| format!("{n} {label}"))
    .collect();
    if parts.is_empty() { t.no_changes.to_owned() } else { parts.join(", ") }
}

/// What every page's frame needs.
pub struct Frame {
    pub title: String,
    pub section: &'static str,
    pub csrf: Option<String>,
    pub email: String,
    pub path_encoded: String,
}

fn frame(
    headers: &HeaderMap,
    who: Option<&Principal>,
    path: &str,
    section: &'static str,
    title: &str,
) -> (&'static Texts, Frame) {
    let t = Lang::from_headers(headers).texts();
    let f = Frame {
        title: title.to_owned(),
        section,
        csrf: who.and_then(|p| p.csrf.clone()),
        email: who.and_then(|p| p.email.clone()).unwrap_or_default(),
        path_encoded: url_encode(path),
    };
    (t, f)
}

fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

pub struct Notice {
    pub class: &'static str,
    pub text: String,
    pub run: Option<Uuid>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    t: &'static Texts,
    f: Frame,
    message: String,
    back: String,
}

/// A failed action, shown as a page that names the cause (the API's message) and links back.
fn error_page(headers: &HeaderMap, who: &Principal, error: ApiError, back: &str) -> Response {
    let (t, f) = frame(headers, Some(who), back, "", &error.detail.code);
    render(error.status, MessagePage { t, f, message: error.detail.message, back: back.to_owned() })
}

#[derive(Deserialize, Default)]
struct NoFields {}

// ---------------------------------------------------------------- static assets

async fn stylesheet() -> Response {
    let mut r = include_str!("../../static/app.css").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

async fn script() -> Response {
    let mut r = include_str!("../../static/app.js").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

// ---------------------------------------------------------------- login, setup, language

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: &'static Texts,
    f: Frame,
    error: Option<String>,
    next: String,
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginQuery {
    next: String,
}

async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let (t, f) = frame(&headers, None, "/login", "", texts_for(&headers).log_in);
    render(StatusCode::OK, LoginPage { t, f, error: None, next: q.next, email: String::new() })
}

fn texts_for(headers: &HeaderMap) -> &'static Texts {
    Lang::from_headers(headers).texts()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    next: String,
}

fn session_cookie(state: &AppState, value: &str) -> HeaderValue {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"))
        .expect("cookie values are URL-safe")
}

/// argon2 costs ~50 ms of CPU and 19 MiB: at most two at a time.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(2))
}

/// Verifies on the blocking pool. An unknown e-mail is checked against a dummy hash so that
/// the answer takes as long as for a known one.
async fn verify_login(phc: Option<String>, password: String) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let Ok(_permit) = hashing_permits().acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| {
            DUMMY.get_or_init(|| auth::hash_password("dummy password for timing").unwrap_or_default()).clone()
        });
        auth::verify_password(&password, &phc) && known
    })
    .await
    .unwrap_or(false)
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = Lang::from_headers(&headers).texts();
    let keys = [format!("email:{}", form.email.trim().to_lowercase()), format!("ip:{}", peer.ip())];
    let now = Instant::now();
    let page = |status: StatusCode, error: String| {
        let (t, f) = frame(&headers, None, "/login", "", t.log_in);
        render(status, LoginPage { t, f, error: Some(error), next: form.next.clone(), email: form.email.clone() })
    };
    if let Some(wait) = keys.iter().filter_map(|k| state.throttle.locked_for(k, now)).max() {
        return page(StatusCode::TOO_MANY_REQUESTS, format!("{} {}", t.login_throttled, wait.as_secs() + 1));
    }
    let admin = match state.store.admin_by_email(&form.email).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !verify_login(admin.as_ref().map(|a| a.password_hash.clone()), form.password.clone()).await {
        for k in &keys {
            state.throttle.failed(k, now);
        }
        tracing::warn!(client = %peer.ip(), "failed administrator login");
        return page(StatusCode::UNAUTHORIZED, t.login_failed.to_owned());
    }
    let admin = admin.expect("verified logins have an administrator");
    for k in &keys {
        state.throttle.succeeded(k);
    }
    let cookie = match state.store.create_session(admin.id, state.now(), state.config.session_lifetime).await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut response = see_other(local_path(&form.next));
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &cookie));
    response
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(_, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    if let Some(cookie) = auth::cookie_value(&headers, SESSION_COOKIE)
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
struct SetupPage {
    t: &'static Texts,
    f: Frame,
    valid: bool,
    error: Option<String>,
    token: String,
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetupForm {
    token: String,
    email: String,
    password: String,
}

async fn setup_token_valid(state: &AppState, token: &str) -> bool {
    let expected = state.setup_token.lock().expect("setup lock").clone();
    expected.is_some_and(|e| auth::constant_time_eq(&e, token)) && state.store.admin_count().await.unwrap_or(1) == 0
}

async fn setup_page(State(state): State<AppState>, headers: HeaderMap, Query(form): Query<SetupForm>) -> Response {
    let valid = setup_token_valid(&state, &form.token).await;
    let (t, f) = frame(&headers, None, "/setup", "", texts_for(&headers).setup_title);
    let status = if valid { StatusCode::OK } else { StatusCode::NOT_FOUND };
    render(status, SetupPage { t, f, valid, error: None, token: form.token, email: String::new() })
}

async fn setup(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SetupForm>) -> Response {
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
    if let Err(e) = auth::check_new_password(&form.password) {
        return fail(t, f, e, form);
    }
    let phc = match auth::hash_password(&form.password) {
        Ok(p) => p,
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let admin = match state.store.create_admin(&form.email, &phc, "setup", state.now()).await {
        Ok(a) => a,
        Err(e) => return fail(t, f, ApiError::from(e).detail.message, form),
    };
    state.setup_token.lock().expect("setup lock").take();
    let cookie = match state.store.create_session(admin.id, state.now(), state.config.session_lifetime).await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut response = see_other("/settings/integrations");
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &cookie));
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LangQuery {
    to: String,
    back: String,
}

async fn switch_language(Query(q): Query<LangQuery>) -> Response {
    let lang = Lang::parse(&q.to).unwrap_or(Lang::En);
    let mut response = see_other(local_path(&q.back));
    let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii cookie"));
    response
}

// ---------------------------------------------------------------- integrations

struct IntegrationRow {
    key: &'static str,
    name: &'static str,
    description: &'static str,
    enabled: bool,
    updated: String,
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    rows: Vec<IntegrationRow>,
    notice: Option<Notice>,
}

async fn render_integrations(
    state: &AppState,
    headers: &HeaderMap,
    who: &Principal,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let (t, f) = frame(headers, Some(who), "/settings/integrations", "integrations", texts_for(headers).integrations);
    let integrations = match actions::integrations(state).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let rows = integrations
        .into_iter()
        .map(|i| IntegrationRow {
            key: i.key,
            name: i.name,
            description: match i.key {
                "office_addin" => t.desc_office_addin,
                "azure_user_sync" => t.desc_azure_user_sync,
                "google_search" => t.desc_google_search,
                _ => t.desc_openzaak,
            },
            enabled: i.enabled,
            updated: i.updated_at.map_or_else(|| t.not_available.to_owned(), fmt_time),
        })
        .collect();
    render(status, IntegrationsPage { t, csrf: f.csrf.clone().unwrap_or_default(), f, rows, notice })
}

async fn integrations_page(
    State(state): State<AppState>,
    PageAdmin(who): PageAdmin,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let t = texts_for(&headers);
    let run = q.get("run").and_then(|r| Uuid::parse_str(r).ok());
    let notice = match q.get("notice").map(String::as_str) {
        Some("saved") => Some(Notice { class: "ok", text: t.notice_saved.into(), run: None }),
        Some("switched") => Some(Notice { class: "ok", text: t.notice_switched.into(), run: None }),
        Some("already_running") => Some(Notice { class: "warn", text: t.notice_already_running.into(), run }),
        _ => None,
    };
    render_integrations(&state, &headers, &who, StatusCode::OK, notice).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SwitchForm {
    enabled: String,
}

async fn switch_integration(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    CsrfForm(who, form): CsrfForm<SwitchForm>,
) -> Response {
    match actions::switch_integration(&state, &key, form.enabled == "true", &who.actor).await {
        Ok(_) => see_other("/settings/integrations?notice=switched"),
        Err(e) => {
            let notice = Notice { class: "bad", text: e.detail.message.clone(), run: None };
            render_integrations(&state, &headers, &who, e.status, Some(notice)).await
        }
    }
}

async fn azure_sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    match actions::start_sync(&state, "manual").await {
        Ok(run_id) => see_other(&format!("/runs/{run_id}")),
        Err(e) if e.detail.code == "already_running" => {
            let running = state.runner.current_run().map(|id| format!("&run={id}")).unwrap_or_default();
            see_other(&format!("/settings/integrations?notice=already_running{running}"))
        }
        Err(e) => {
            let notice = Notice { class: "bad", text: e.detail.message.clone(), run: None };
            render_integrations(&state, &headers, &who, e.status, Some(notice)).await
        }
    }
}

// ---------------------------------------------------------------- Azure User Sync form

/// The form as posted. Unchecked boxes are absent.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AzureForm {
    active: Option<String>,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    group_ids: String,
    auto_disable: Option<String>,
    auto_remove: Option<String>,
    remove_after_days: String,
    include_guests: Option<String>,
    seats: String,
    threshold_count: String,
    threshold_percent: String,
    cloud: String,
    login_url: String,
    graph_url: String,
}

/// What the form shows (never the secret).
struct AzureValues {
    active: bool,
    tenant_id: String,
    client_id: String,
    group_ids: String,
    auto_disable: bool,
    auto_remove: bool,
    remove_after_days: String,
    include_guests: bool,
    seats: String,
    threshold_count: String,
    threshold_percent: String,
    cloud: String,
    login_url: String,
    graph_url: String,
}

pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    pub fn get(&self, field: &str) -> &str {
        self.0.iter().find(|(f, _)| f == field).map_or("", |(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Template)]
#[template(path = "azure.html")]
struct AzurePage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    v: AzureValues,
    secret_set: bool,
    errors: FieldErrors,
    advanced_open: bool,
}

const ADVANCED_FIELDS: [&str; 7] =
    ["include_guests", "seats", "threshold_count", "threshold_percent", "cloud", "login_url", "graph_url"];

fn azure_page_for(
    headers: &HeaderMap,
    who: &Principal,
    v: AzureValues,
    secret_set: bool,
    errors: FieldErrors,
) -> AzurePage {
    let (t, f) = frame(headers, Some(who), "/settings/integrations/azure", "integrations", "Azure User Sync");
    let advanced_open = errors.0.iter().any(|(field, _)| ADVANCED_FIELDS.contains(&field.as_str()));
    AzurePage { t, csrf: f.csrf.clone().unwrap_or_default(), f, v, secret_set, errors, advanced_open }
}

async fn azure_page(State(state): State<AppState>, PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    let s = match actions::settings_view(&state).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let custom = s.cloud == "custom";
    let v = AzureValues {
        active: s.active,
        tenant_id: s.tenant_id.unwrap_or_default(),
        client_id: s.client_id.unwrap_or_default(),
        group_ids: s.group_ids.join("\n"),
        auto_disable: s.auto_disable,
        auto_remove: s.auto_remove,
        remove_after_days: s.remove_after_days.to_string(),
        include_guests: s.include_guests,
        seats: s.seats.total.to_string(),
        threshold_count: s.threshold_count.to_string(),
        threshold_percent: s.threshold_percent.to_string(),
        cloud: s.cloud.to_owned(),
        login_url: if custom { s.login_url } else { String::new() },
        graph_url: if custom { s.graph_url } else { String::new() },
    };
    render(StatusCode::OK, azure_page_for(&headers, &who, v, s.client_secret_set, FieldErrors(Vec::new())))
}

async fn azure_save(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(who, form): CsrfForm<AzureForm>,
) -> Response {
    let custom = form.cloud == "custom";
    let patch = SettingsPatch {
        active: Some(form.active.is_some()),
        tenant_id: Some(form.tenant_id.clone()),
        client_id: Some(form.client_id.clone()),
        group_ids: Some(vec![form.group_ids.clone()]),
        auto_disable: Some(form.auto_disable.is_some()),
        auto_remove: Some(form.auto_remove.is_some()),
        remove_after_days: Some(form.remove_after_days.clone()),
        include_guests: Some(form.include_guests.is_some()),
        cloud: (!custom).then(|| form.cloud.clone()),
        login_url: custom.then(|| form.login_url.clone()),
        graph_url: custom.then(|| form.graph_url.clone()),
        seats: Some(form.seats.clone()),
        threshold_count: Some(form.threshold_count.clone()),
        threshold_percent: Some(form.threshold_percent.clone()),
    };
    match actions::update_settings(&state, &patch, Some(&form.client_secret), &who.actor).await {
        Ok(_) => see_other("/settings/integrations?notice=saved"),
        Err(e) if !e.detail.errors.is_empty() || e.detail.field.is_some() => {
            let mut errors: Vec<(String, String)> =
                e.detail.errors.iter().map(|m| (m.field.clone(), m.message.clone())).collect();
            if errors.is_empty() {
                errors.push((e.detail.field.clone().unwrap_or_default(), e.detail.message.clone()));
            }
            let secret_set = state.store.settings().await.map(|(_, set)| set).unwrap_or(false);
            let v = AzureValues {
                active: form.active.is_some(),
                tenant_id: form.tenant_id,
                client_id: form.client_id,
                group_ids: form.group_ids,
                auto_disable: form.auto_disable.is_some(),
                auto_remove: form.auto_remove.is_some(),
                remove_after_days: form.remove_after_days,
                include_guests: form.include_guests.is_some(),
                seats: form.seats,
                threshold_count: form.threshold_count,
                threshold_percent: form.threshold_percent,
                cloud: form.cloud,
                login_url: form.login_url,
                graph_url: form.graph_url,
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, azure_page_for(&headers, &who, v, secret_set, FieldErrors(errors)))
        }
        Err(e) => error_page(&headers, &who, e, "/settings/integrations/azure"),
    }
}

struct CheckRow {
    name: String,
    ok: bool,
    message: String,
}

#[derive(Template)]
#[template(path = "test.html")]
struct TestPage {
    t: &'static Texts,
    f: Frame,
    ok: bool,
    checks: Vec<CheckRow>,
    error: Option<String>,
}

async fn azure_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let (t, f) =
        frame(&headers, Some(&who), "/settings/integrations/azure", "integrations", texts_for(&headers).test_title);
    match actions::test_connection(&state, &who.actor).await {
        Ok(result) => {
            let checks =
                result.checks.into_iter().map(|c| CheckRow { name: c.name, ok: c.ok, message: c.message }).collect();
            render(StatusCode::OK, TestPage { t, f, ok: result.ok, checks, error: None })
        }
        Err(e) => render(e.status, TestPage { t, f, ok: false, checks: Vec::new(), error: Some(e.detail.message) }),
    }
}

pub struct ChangeRow {
    action: String,
    action_label: &'static str,
    email: String,
    reason: String,
    fields: String,
}

fn change_rows(t: &Texts, changes: &[ChangeView]) -> Vec<ChangeRow> {
    changes
        .iter()
        .map(|c| ChangeRow {
            action: c.action.clone(),
            action_label: t.action(&c.action),
            email: c.email.clone(),
            reason: c.reason.clone(),
            fields: c.fields.join(", "),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "preview.html")]
struct PreviewPage {
    t: &'static Texts,
    f: Frame,
    summary: String,
    changes: Vec<ChangeRow>,
    error: Option<String>,
}

async fn azure_preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let (t, f) =
        frame(&headers, Some(&who), "/settings/integrations/azure", "integrations", texts_for(&headers).preview_title);
    match actions::preview(&state, "manual").await {
        Ok(detail) => {
            let failed = detail.run.error.as_ref().map(|e| e.message.clone());
            let summary = summary(t, &detail.run.counts);
            render(
                StatusCode::OK,
                PreviewPage { t, f, summary, changes: change_rows(t, &detail.changes), error: failed },
            )
        }
        Err(e) => render(
            e.status,
            PreviewPage { t, f, summary: String::new(), changes: Vec::new(), error: Some(e.detail.message) },
        ),
    }
}

// ---------------------------------------------------------------- runs

struct RunRow {
    id: Uuid,
    started: String,
    trigger: &'static str,
    duration: String,
    summary: String,
    status: &'static str,
    status_label: &'static str,
    error: String,
    users_read: u64,
    graph_requests: u64,
}

fn run_row(t: &Texts, r: &RunView) -> RunRow {
    RunRow {
        id: r.id,
        started: fmt_time(r.started_at),
        trigger: t.trigger(&r.trigger),
        duration: fmt_duration(r.duration_ms),
        summary: if r.status == "failed" || r.status == "interrupted" { String::new() } else { summary(t, &r.counts) },
        status: r.status,
        status_label: t.run_status(r.status),
        error: r.error.as_ref().map(|e| e.message.clone()).unwrap_or_default(),
        users_read: r.users_read,
        graph_requests: r.graph_requests,
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    t: &'static Texts,
    f: Frame,
    runs: Vec<RunRow>,
}

async fn runs_page(State(state): State<AppState>, PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    let (t, f) = frame(&headers, Some(&who), "/runs", "runs", texts_for(&headers).runs_title);
    match state.store.runs(200).await {
        Ok(runs) => render(
            StatusCode::OK,
            RunsPage { t, f, runs: runs.iter().map(|r| run_row(t, &RunView::from(r))).collect() },
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

struct ResolutionRow {
    by: String,
    at: String,
    follow_up: Option<Uuid>,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    run: RunRow,
    running: bool,
    held: bool,
    progress: String,
    progress_labels: String,
    changes: Vec<ChangeRow>,
    resolution: Option<ResolutionRow>,
    notice: Option<Notice>,
}

async fn render_run(
    state: &AppState,
    headers: &HeaderMap,
    who: &Principal,
    id: Uuid,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let t = texts_for(headers);
    let detail = match actions::run_detail(state, id).await {
        Ok(d) => d,
        Err(e) => return error_page(headers, who, e, "/runs"),
    };
    let (t, f) = frame(headers, Some(who), &format!("/runs/{id}"), "runs", t.run_title);
    let progress = detail.progress.as_ref().map_or_else(String::new, |p| {
        format!("{} · {}: {} · {}: {}", t.phase(p.phase), t.pages_read, p.pages_read, t.users_read, p.users_read)
    });
    let labels: HashMap<&str, &str> = ["starting", "reading_users", "reading_groups", "applying", "finished"]
        .iter()
        .map(|p| (*p, t.phase(p)))
        .chain([("pages", t.pages_read), ("users", t.users_read)])
        .collect();
    let page = RunPage {
        t,
        csrf: f.csrf.clone().unwrap_or_default(),
        f,
        running: detail.run.status == "running",
        held: detail.run.is_held(),
        run: run_row(t, &detail.run),
        progress,
        progress_labels: serde_json::to_string(&labels).unwrap_or_default(),
        changes: change_rows(t, &detail.changes),
        resolution: detail.run.resolution.as_ref().map(|r| ResolutionRow {
            by: r.by.clone(),
            at: fmt_time(r.at),
            follow_up: r.follow_up_run,
        }),
        notice,
    };
    render(status, page)
}

async fn run_page(
    State(state): State<AppState>,
    PageAdmin(who): PageAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match actions::parse_uuid("id", &id) {
        Ok(id) => render_run(&state, &headers, &who, id, None, StatusCode::OK).await,
        Err(e) => error_page(&headers, &who, e, "/runs"),
    }
}

async fn run_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let result = match actions::parse_uuid("id", &id) {
        Ok(id) => actions::confirm_held(&state, id, "manual", &who.actor).await.map(|next| (id, next)),
        Err(e) => Err(e),
    };
    match result {
        Ok((_, follow_up)) => see_other(&format!("/runs/{follow_up}")),
        Err(e) => match Uuid::parse_str(&id) {
            Ok(id) => {
                let run = state.runner.current_run();
                let notice = Notice { class: "bad", text: e.detail.message.clone(), run };
                render_run(&state, &headers, &who, id, Some(notice), e.status).await
            }
            Err(_) => error_page(&headers, &who, e, "/runs"),
        },
    }
}

async fn run_cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let id = match actions::parse_uuid("id", &id) {
        Ok(id) => id,
        Err(e) => return error_page(&headers, &who, e, "/runs"),
    };
    match actions::cancel_held(&state, id, &who.actor).await {
        Ok(_) => see_other(&format!("/runs/{id}")),
        Err(e) => {
            let notice = Notice { class: "bad", text: e.detail.message.clone(), run: None };
            render_run(&state, &headers, &who, id, Some(notice), e.status).await
        }
    }
}

// ---------------------------------------------------------------- users

struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    source: &'static str,
    status: &'static str,
    status_label: &'static str,
    reason: &'static str,
    since: String,
    removal: String,
    in_scope: bool,
}

struct StatusOption {
    code: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    users: Vec<UserRow>,
    seats: String,
    q: String,
    status_options: Vec<StatusOption>,
    source: String,
    range: String,
    back: String,
    prev_link: Option<String>,
    next_link: Option<String>,
    notice: Option<Notice>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsersQuery {
    q: String,
    status: String,
    source: String,
    offset: u32,
}

const USERS_PER_PAGE: u32 = 100;

async fn users_page(
    State(state): State<AppState>,
    PageAdmin(who): PageAdmin,
    headers: HeaderMap,
    Query(q): Query<UsersQuery>,
) -> Response {
    let path = format!(
        "/users?q={}&status={}&source={}&offset={}",
        url_encode(&q.q),
        url_encode(&q.status),
        url_encode(&q.source),
        q.offset
    );
    let (t, f) = frame(&headers, Some(&who), &path, "users", texts_for(&headers).users_title);
    let status = Status::parse(&q.status);
    let source = Source::parse(&q.source);
    let search = (!q.q.trim().is_empty()).then(|| q.q.clone());
    let page = match actions::users(&state, search, status, source, USERS_PER_PAGE, q.offset).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let users = page
        .users
        .iter()
        .map(|view| (&view.user, view))
        .map(|(u, view)| UserRow {
            id: u.id,
            email: u.email.clone(),
            name: u.display_name.clone().unwrap_or_default(),
            source: if u.source == "entra" { t.source_entra } else { t.source_local },
            status: u.status,
            status_label: t.status(u.status),
            reason: u.disabled_reason.map_or("", |r| t.reason(r)),
            since: fmt_time(u.disabled_at.unwrap_or(view.created_at)),
            removal: view.removal_due.map(fmt_date).unwrap_or_default(),
            in_scope: u.in_scope,
        })
        .collect();
    let seats = if page.seats.total == 0 {
        format!("{} / {}", page.seats.used, t.unlimited)
    } else {
        format!("{} / {}", page.seats.used, page.seats.total)
    };
    let link = |offset: u32| {
        format!(
            "/users?q={}&status={}&source={}&offset={offset}",
            url_encode(&q.q),
            url_encode(&q.status),
            url_encode(&q.source)
        )
    };
    let shown_to = (u64::from(q.offset) + page.users.len() as u64).min(page.total);
    let status_options = ["active", "disabled", "awaiting_license"]
        .into_iter()
        .map(|code| StatusOption { code, label: t.status(code), selected: q.status == code })
        .collect();
    let notice = None;
    render(
        StatusCode::OK,
        UsersPage {
            t,
            csrf: f.csrf.clone().unwrap_or_default(),
            f,
            users,
            seats,
            q: q.q.clone(),
            status_options,
            source: q.source.clone(),
            range: format!("{}–{} / {}", u64::from(q.offset) + 1, shown_to, page.total),
            back: path.clone(),
            prev_link: (q.offset > 0).then(|| link(q.offset.saturating_sub(USERS_PER_PAGE))),
            next_link: (shown_to < page.total).then(|| link(q.offset + USERS_PER_PAGE)),
            notice,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BackForm {
    back: String,
}

async fn user_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(who, form): CsrfForm<BackForm>,
) -> Response {
    let enable = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return error_page(&headers, &who, ApiError::not_found("no such action; use enable or disable"), "/users"),
    };
    let result = match actions::parse_uuid("id", &id) {
        Ok(id) => actions::set_user_status(&state, id, enable, &who.actor).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(local_path(if form.back.is_empty() { "/users" } else { &form.back })),
        Err(e) => error_page(&headers, &who, e, "/users"),
    }
}

// ---------------------------------------------------------------- audit and tokens

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    t: &'static Texts,
    f: Frame,
    entries: Vec<AuditRow>,
}

async fn audit_page(State(state): State<AppState>, PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    let (t, f) = frame(&headers, Some(&who), "/audit", "audit", texts_for(&headers).audit_title);
    let entries = match state.store.audit_log(500).await {
        Ok(e) => e,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let entries = entries
        .into_iter()
        .map(|e| AuditRow {
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target.unwrap_or_default(),
            details: serde_json::to_string_pretty(&e.details).unwrap_or_default(),
        })
        .collect();
    render(StatusCode::OK, AuditPage { t, f, entries })
}

struct TokenRow {
    id: Uuid,
    name: String,
    created: String,
    last_used: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    tokens: Vec<TokenRow>,
    created: Option<String>,
    error: Option<String>,
}

async fn render_tokens(
    state: &AppState,
    headers: &HeaderMap,
    who: &Principal,
    status: StatusCode,
    created: Option<String>,
    error: Option<String>,
) -> Response {
    let (t, f) = frame(headers, Some(who), "/settings/tokens", "tokens", texts_for(headers).tokens_title);
    let tokens = match state.store.api_tokens().await {
        Ok(tokens) => tokens,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let tokens = tokens
        .iter()
        .map(|tok| TokenRow {
            id: tok.id,
            name: tok.name.clone(),
            created: format!("{} ({})", fmt_time(tok.created_at), tok.created_by),
            last_used: tok.last_used_at.map_or_else(|| t.never.to_owned(), fmt_time),
            revoked: tok.revoked_at.map(fmt_time).unwrap_or_default(),
        })
        .collect();
    render(status, TokensPage { t, csrf: f.csrf.clone().unwrap_or_default(), f, tokens, created, error })
}

async fn tokens_page(State(state): State<AppState>, PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    render_tokens(&state, &headers, &who, StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    name: String,
}

async fn token_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(who, form): CsrfForm<TokenForm>,
) -> Response {
    match state.store.create_api_token(&form.name, &who.actor, state.now()).await {
        Ok((_, value)) => render_tokens(&state, &headers, &who, StatusCode::CREATED, Some(value), None).await,
        Err(e) => {
            let e = ApiError::from(e);
            render_tokens(&state, &headers, &who, e.status, None, Some(e.detail.message)).await
        }
    }
}

async fn token_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    match state.store.revoke_api_token(&id, &who.actor, state.now()).await {
        Ok(_) => see_other("/settings/tokens"),
        Err(e) => error_page(&headers, &who, ApiError::from(e), "/settings/tokens"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_stay_on_this_site() {
        assert_eq!(local_path("/runs/1"), "/runs/1");
        assert_eq!(local_path("//evil.example/x"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path(""), "/");
    }
}
