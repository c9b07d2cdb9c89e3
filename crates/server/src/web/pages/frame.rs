//! What every page shares: the frame (title, section, CSRF token, banner), rendering,
//! redirects, the error page, and formatting of times, counts and changes.

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use safegpt_app::views::{ChangeView, CountsView};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::web::auth::{Caller, Identity};
use crate::web::error::ApiError;
use crate::web::http::url_encode;
use crate::web::i18n::{Lang, Texts};

/// The one check of every redirect target a request names (`next`, `back`): an absolute
/// path on this site, made of visible ASCII only (no control characters, spaces, which
/// browsers strip, or backslashes, which they read as `/`), never containing `//`;
/// anything else goes to the home page. So no redirect leads off-site, and none fails to
/// become a header.
pub fn local_path(candidate: &str) -> &str {
    let ok = candidate.starts_with('/')
        && !candidate.contains("//")
        && candidate.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if ok { candidate } else { "/" }
}

pub fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

pub fn fmt_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

pub fn fmt_duration(ms: Option<u64>) -> String {
    match ms {
        None => "…".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

pub fn summary(t: &Texts, c: &CountsView) -> String {
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

pub fn texts_for(headers: &HeaderMap) -> &'static Texts {
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
    /// A platform operator: the header links to the platform page.
    pub platform: bool,
    /// The organisation the pages act in (empty on the platform page of an operator who
    /// opened none).
    pub org: String,
}

pub fn frame(
    headers: &HeaderMap,
    who: Option<&Caller>,
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
        platform: who.is_some_and(|p| matches!(p.principal, safegpt_app::Principal::Admin { platform: true, .. })),
        org: who.map(|p| p.app.store().org_slug().to_owned()).unwrap_or_default(),
    };
    (t, f)
}

/// The frame of a platform page, for a platform operator.
pub fn platform_frame(headers: &HeaderMap, who: &Identity, path: &str, title: &str) -> (&'static Texts, Frame) {
    let t = Lang::from_headers(headers).texts();
    let org = match &who.principal {
        safegpt_app::Principal::Admin { org, .. } => org.clone().unwrap_or_default(),
        _ => String::new(),
    };
    let f = Frame {
        title: title.to_owned(),
        section: "platform",
        csrf: who.csrf.clone(),
        email: who.email.clone().unwrap_or_default(),
        path_encoded: url_encode(path),
        banner: None,
        platform: true,
        org,
    };
    (t, f)
}

pub fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

pub struct Notice {
    pub class: &'static str,
    pub text: String,
    pub run: Option<Uuid>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub t: &'static Texts,
    pub f: Frame,
    pub message: String,
    pub back: String,
}

/// A failed action, shown as a page that names the cause (the API's message) and links back.
pub fn error_page(headers: &HeaderMap, who: &Caller, error: ApiError, back: &str) -> Response {
    let (t, f) = frame(headers, Some(who), back, "", &error.detail.code);
    render(error.status, MessagePage { t, f, message: error.detail.message, back: back.to_owned() })
}

#[derive(Deserialize, Default)]
pub struct NoFields {}

pub struct ChangeRow {
    pub action: String,
    pub action_label: &'static str,
    pub email: String,
    pub reason: String,
    pub fields: String,
}

pub fn change_rows(t: &Texts, changes: &[ChangeView]) -> Vec<ChangeRow> {
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
        assert_eq!(local_path("/\t/evil.example"), "/", "browsers strip the tab and go to //evil.example");
        assert_eq!(local_path("/ /evil.example"), "/");
        assert_eq!(local_path("/x\r\nSet-Cookie: a=b"), "/");
        assert_eq!(local_path("/users?q=a%20b&page=2"), "/users?q=a%20b&page=2");
        assert_eq!(local_path("/a//b"), "/");
        assert_eq!(local_path("/caf\u{e9}"), "/");
    }
}
