//! Sync runs: history, one run with live progress, and the decision on a held run.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use safegpt_app::views::RunView;
use safegpt_app::{Trigger, parse_id};
use uuid::Uuid;

use super::frame::*;
use crate::web::auth::{Caller, CsrfForm, PageAdmin};
use crate::web::error::ApiError;
use crate::web::i18n::Texts;
use crate::web::state::AppState;
use safegpt_store::ReadMode;

pub(super) struct RunRow {
    id: Uuid,
    started: String,
    trigger: &'static str,
    duration: String,
    summary: String,
    status: &'static str,
    status_label: &'static str,
    error: String,
    users_read: u64,
    /// How the run read Entra, as a label; empty when it did not read.
    read_mode: &'static str,
    graph_requests: u64,
    confirmed_users: u64,
    kept_users: u64,
}

pub(super) fn run_row(t: &Texts, r: &RunView) -> RunRow {
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
        read_mode: match r.read_mode {
            Some(ReadMode::Full) => t.read_full,
            Some(ReadMode::Incremental) => t.read_incremental,
            None => "",
        },
        graph_requests: r.graph_requests,
        confirmed_users: r.confirmed_users,
        kept_users: r.kept_users,
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
pub(super) struct RunsPage {
    t: &'static Texts,
    f: Frame,
    runs: Vec<RunRow>,
}

pub(super) async fn runs_page(
    State(state): State<AppState>,
    PageAdmin(who): PageAdmin,
    headers: HeaderMap,
) -> Response {
    let (t, f) = frame(&headers, Some(&who), "/runs", "runs", texts_for(&headers).runs_title);
    match state.app.runs(200).await {
        Ok(runs) => render(
            StatusCode::OK,
            RunsPage { t, f, runs: runs.iter().map(|r| run_row(t, &RunView::from(r))).collect() },
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub(super) struct ResolutionRow {
    by: String,
    at: String,
    follow_up: Option<Uuid>,
}

#[derive(Template)]
#[template(path = "run.html")]
pub(super) struct RunPage {
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

pub(super) async fn render_run(
    state: &AppState,
    headers: &HeaderMap,
    who: &Caller,
    id: Uuid,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let t = texts_for(headers);
    let detail = match state.app.run_detail(id).await.map_err(ApiError::from) {
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

pub(super) async fn run_page(
    State(state): State<AppState>,
    PageAdmin(who): PageAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match parse_id("id", &id).map_err(ApiError::from) {
        Ok(id) => render_run(&state, &headers, &who, id, None, StatusCode::OK).await,
        Err(e) => error_page(&headers, &who, e, "/runs"),
    }
}

pub(super) async fn run_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let result = match parse_id("id", &id).map_err(ApiError::from) {
        Ok(id) => state
            .app
            .confirm_held(&who.principal, id, Trigger::Manual)
            .await
            .map_err(ApiError::from)
            .map(|next| (id, next)),
        Err(e) => Err(e),
    };
    match result {
        Ok((_, follow_up)) => see_other(&format!("/runs/{follow_up}")),
        Err(e) => match Uuid::parse_str(&id) {
            Ok(id) => {
                let run = state.app.runner().current_run();
                let notice = Notice { class: "bad", text: e.detail.message.clone(), run };
                render_run(&state, &headers, &who, id, Some(notice), e.status).await
            }
            Err(_) => error_page(&headers, &who, e, "/runs"),
        },
    }
}

pub(super) async fn run_cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let id = match parse_id("id", &id).map_err(ApiError::from) {
        Ok(id) => id,
        Err(e) => return error_page(&headers, &who, e, "/runs"),
    };
    match state.app.cancel_held(&who.principal, id).await.map_err(ApiError::from) {
        Ok(_) => see_other(&format!("/runs/{id}")),
        Err(e) => {
            let notice = Notice { class: "bad", text: e.detail.message.clone(), run: None };
            render_run(&state, &headers, &who, id, Some(notice), e.status).await
        }
    }
}
