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
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/setup", get(session::setup_page).post(session::setup))
        .route("/lang", get(session::switch_language))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/settings/integrations", get(integrations::integrations_page))
        .route("/settings/integrations/{key}/switch", post(integrations::switch_integration))
        .route("/settings/integrations/azure", get(integrations::azure_page).post(integrations::azure_save))
        .route("/settings/integrations/azure/test", post(integrations::azure_test))
        .route("/settings/integrations/azure/preview", post(integrations::azure_preview))
        .route("/settings/integrations/azure/sync", post(integrations::azure_sync))
        .route("/runs", get(runs::runs_page))
        .route("/runs/{id}", get(runs::run_page))
        .route("/runs/{id}/confirm", post(runs::run_confirm))
        .route("/runs/{id}/cancel", post(runs::run_cancel))
        .route("/users", get(users::users_page))
        .route("/users/{id}/{action}", post(users::user_action))
        .route("/audit", get(admin::audit_page))
        .route("/settings/tokens", get(admin::tokens_page).post(admin::token_create))
        .route("/settings/tokens/{id}/revoke", post(admin::token_revoke))
}

mod admin;
mod integrations;
mod runs;
mod session;
mod users;

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

fn texts_for(headers: &HeaderMap) -> &'static Texts {
    Lang::from_headers(headers).texts()
}

/// What every page's frame needs.
pub struct Frame {
    pub title: String,
    pub section: &'static str,
    pub csrf: Option<String>,
    pub email: String,
    pub path_encoded: String,
    pub banner: Option<String>,
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
        banner: who.and_then(|p| p.banner.clone()),
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
    let mut r = include_str!("../../../static/app.css").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

async fn script() -> Response {
    let mut r = include_str!("../../../static/app.js").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

pub(super) struct ChangeRow {
    pub(super) action: String,
    pub(super) action_label: &'static str,
    pub(super) email: String,
    pub(super) reason: String,
    pub(super) fields: String,
}

pub(super) fn change_rows(t: &Texts, changes: &[ChangeView]) -> Vec<ChangeRow> {
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
