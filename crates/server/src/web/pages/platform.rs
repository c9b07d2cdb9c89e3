//! The platform page: every organisation's sync health for platform operators, who create,
//! disable and enable organisations, start their syncs, and open one to act as its
//! administrator (recorded in its audit log). It shows no user.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use safegpt_app::{NewOrg, OrgHealthView, Trigger};
use safegpt_store::OrgChange;
use serde::Deserialize;

use super::frame::*;
use crate::web::auth::{Identity, PagePlatform, SESSION_COOKIE, SessionForm};
use crate::web::error::ApiError;
use crate::web::http::cookie_value;
use crate::web::i18n::Texts;
use crate::web::state::AppState;

pub(super) struct OrgRow {
    slug: String,
    name: String,
    language: String,
    disabled: bool,
    active: bool,
    last_run: String,
    held: u64,
    failing: String,
    secret: String,
    seats: String,
}

impl OrgRow {
    fn new(t: &Texts, o: OrgHealthView) -> OrgRow {
        let last_run = o.last_run.as_ref().map_or_else(
            || t.org_none.to_owned(),
            |r| {
                let kind = r.error_kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default();
                format!("{}{kind}, {}", t.run_status(&r.status), fmt_time(r.started_at))
            },
        );
        let seats = if o.seats.total == 0 {
            format!("{} / ∞", o.seats.used)
        } else {
            format!("{} / {}", o.seats.used, o.seats.total)
        };
        OrgRow {
            failing: o.failing_since.map(fmt_time).unwrap_or_default(),
            secret: o.secret_expires.clone().unwrap_or_default(),
            slug: o.slug,
            name: o.name,
            language: o.language,
            disabled: o.disabled_at.is_some(),
            active: o.active,
            last_run,
            held: o.held_runs,
            seats,
        }
    }
}

#[derive(Template)]
#[template(path = "platform.html")]
pub(super) struct PlatformPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    orgs: Vec<OrgRow>,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NoticeQuery {
    notice: String,
}

pub(super) async fn platform_page(
    State(state): State<AppState>,
    PagePlatform(who): PagePlatform,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let (t, f) = platform_frame(&headers, &who, "/platform", texts_for(&headers).platform_title);
    let orgs = match state.platform.overview(&who.principal).await {
        Ok(orgs) => orgs.into_iter().map(|o| OrgRow::new(t, o)).collect(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let notice = match q.notice.as_str() {
        "created" => Some(t.org_created),
        "synced" => Some(t.org_sync_started),
        "changed" => Some(t.org_changed),
        _ => None,
    };
    let csrf = who.csrf.clone().unwrap_or_default();
    render(StatusCode::OK, PlatformPage { t, f, csrf, orgs, notice })
}

/// A failed platform action as a page naming the cause, linking back.
fn failed(headers: &HeaderMap, who: &Identity, error: ApiError) -> Response {
    let (t, f) = platform_frame(headers, who, "/platform", &error.detail.code);
    render(error.status, MessagePage { t, f, message: error.detail.message, back: "/platform".to_owned() })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OrgForm {
    name: String,
    slug: String,
    language: String,
}

pub(super) async fn create_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    SessionForm(who, form): SessionForm<OrgForm>,
) -> Response {
    let new = NewOrg { slug: form.slug, name: form.name, language: Some(form.language).filter(|l| !l.is_empty()) };
    match state.platform.create_org(&who.principal, new).await {
        Ok(_) => see_other("/platform?notice=created"),
        Err(e) => failed(&headers, &who, e.into()),
    }
}

pub(super) async fn org_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((slug, action)): Path<(String, String)>,
    SessionForm(who, NoFields {}): SessionForm<NoFields>,
) -> Response {
    let platform = &state.platform;
    let result = match action.as_str() {
        "open" => {
            let cookie = cookie_value(&headers, SESSION_COOKIE).unwrap_or_default();
            match platform.open_org(&who.principal, cookie, &slug).await {
                Ok(()) => return see_other("/settings/integrations"),
                Err(e) => Err(e),
            }
        }
        "sync" => platform.start_sync(&who.principal, &slug, Trigger::Manual).await.map(|_| "synced"),
        "disable" | "enable" => {
            let change = OrgChange { disabled: Some(action == "disable"), ..OrgChange::default() };
            platform.change_org(&who.principal, &slug, change).await.map(|_| "changed")
        }
        _ => return ApiError::not_found(format!("no platform action '{action}'")).into_response(),
    };
    match result {
        Ok(notice) => see_other(&format!("/platform?notice={notice}")),
        Err(e) => failed(&headers, &who, e.into()),
    }
}
