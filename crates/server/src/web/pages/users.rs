//! The user directory: search, filters, seats, enable and disable.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use safegpt_app::{UserQuery, parse_id};
use safegpt_core::{Source, Status};
use serde::Deserialize;
use uuid::Uuid;

use super::frame::*;
use crate::web::auth::{CsrfForm, PageAdmin};
use crate::web::error::ApiError;
use crate::web::http::url_encode;
use crate::web::i18n::Texts;

pub(super) struct UserRow {
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

pub(super) struct StatusOption {
    code: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
pub(super) struct UsersPage {
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
pub(super) struct UsersQuery {
    q: String,
    status: String,
    source: String,
    offset: u32,
}

const USERS_PER_PAGE: u32 = 100;

pub(super) async fn users_page(PageAdmin(who): PageAdmin, headers: HeaderMap, Query(q): Query<UsersQuery>) -> Response {
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
    let query = UserQuery { search, status, source, limit: Some(USERS_PER_PAGE), offset: q.offset };
    let page = match who.app.users(query).await.map_err(ApiError::from) {
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
pub(super) struct BackForm {
    back: String,
}

pub(super) async fn user_action(
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(who, form): CsrfForm<BackForm>,
) -> Response {
    let enable = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return error_page(&headers, &who, ApiError::not_found("no such action; use enable or disable"), "/users"),
    };
    let result = match parse_id("id", &id).map_err(ApiError::from) {
        Ok(id) => who.app.set_user_status(&who.principal, &id.to_string(), enable).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(local_path(if form.back.is_empty() { "/users" } else { &form.back })),
        Err(e) => error_page(&headers, &who, e, "/users"),
    }
}
