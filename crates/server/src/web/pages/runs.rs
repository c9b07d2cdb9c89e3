//! Sync runs: history, one run with live progress, and the decision on a held run.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use safegpt_app::views::{ChangeCountView, RunView};
use safegpt_app::{AppError, ChangeQuery, Trigger, parse_id};
use serde::Deserialize;
use uuid::Uuid;

use super::frame::*;
use crate::web::auth::{Caller, CsrfForm, PageAdmin};
use crate::web::error::ApiError;
use crate::web::http::url_encode;
use crate::web::i18n::Texts;
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

pub(super) async fn runs_page(PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    let (t, f) = frame(&headers, Some(&who), "/runs", "runs", texts_for(&headers).runs_title);
    match who.app.runs(200).await {
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

/// One line of the run's summary: a count and the link that lists those changes.
pub(super) struct BreakdownRow {
    action: String,
    action_label: &'static str,
    reason: String,
    count: u64,
    link: String,
}

pub(super) struct Choice {
    code: String,
    label: String,
    selected: bool,
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
    breakdown: Vec<BreakdownRow>,
    actions: Vec<Choice>,
    reasons: Vec<Choice>,
    q: String,
    filtered: bool,
    changes: Vec<ChangeRow>,
    changes_removed: String,
    first_link: Option<String>,
    next_link: Option<String>,
    resolution: Option<ResolutionRow>,
    notice: Option<Notice>,
}

/// The run page's filter of the changes list (the API's `/changes` parameters, one page of
/// `ChangeQuery::DEFAULT_LIMIT`).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(super) struct RunQuery {
    action: String,
    reason: String,
    q: String,
    cursor: String,
}

impl RunQuery {
    fn link(&self, id: Uuid, cursor: &str) -> String {
        format!(
            "/runs/{id}?action={}&reason={}&q={}&cursor={}#changes",
            url_encode(&self.action),
            url_encode(&self.reason),
            url_encode(&self.q),
            url_encode(cursor)
        )
    }
}

fn breakdown_rows(t: &Texts, id: Uuid, breakdown: &[ChangeCountView]) -> Vec<BreakdownRow> {
    breakdown
        .iter()
        .map(|b| BreakdownRow {
            action: b.action.clone(),
            action_label: t.action(&b.action),
            reason: b.reason.clone(),
            count: b.count,
            link: RunQuery { action: b.action.clone(), reason: b.reason_code.clone(), ..RunQuery::default() }
                .link(id, ""),
        })
        .collect()
}

pub(super) async fn render_run(
    headers: &HeaderMap,
    who: &Caller,
    id: Uuid,
    query: &RunQuery,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let t = texts_for(headers);
    let filter = ChangeQuery {
        action: Some(query.action.clone()),
        reason: Some(query.reason.clone()),
        q: Some(query.q.clone()),
        limit: None,
        cursor: Some(query.cursor.clone()),
    };
    let detail = match who.app.run_detail_filtered(id, &filter).await {
        Ok(d) => d,
        Err(e) => {
            // A filter typed wrong is fixed on the run's own page.
            let back = if matches!(e, AppError::Invalid(_)) { format!("/runs/{id}") } else { "/runs".to_owned() };
            return error_page(headers, who, ApiError::from(e), &back);
        }
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
    let actions = ["create", "update", "enable", "disable", "remove"]
        .into_iter()
        .map(|code| Choice { code: code.into(), label: t.action(code).into(), selected: query.action == code })
        .collect();
    // The reasons this run has, once each, as its summary names them.
    let mut reasons: Vec<Choice> = Vec::new();
    for b in &detail.run.breakdown {
        if !reasons.iter().any(|r| r.code == b.reason_code) {
            let label =
                if b.reason_code == "out_of_scope" { t.reason_out_of_scope.to_owned() } else { b.reason.clone() };
            reasons.push(Choice { code: b.reason_code.clone(), label, selected: query.reason == b.reason_code });
        }
    }
    let filtered = [&query.action, &query.reason, &query.q].iter().any(|v| !v.trim().is_empty());
    let page = RunPage {
        t,
        csrf: f.csrf.clone().unwrap_or_default(),
        f,
        running: detail.run.status == "running",
        held: detail.run.is_held(),
        breakdown: breakdown_rows(t, id, &detail.run.breakdown),
        actions,
        reasons,
        q: query.q.clone(),
        filtered,
        changes_removed: detail.run.changes_removed_at.map(fmt_time).unwrap_or_default(),
        run: run_row(t, &detail.run),
        progress,
        progress_labels: serde_json::to_string(&labels).unwrap_or_default(),
        changes: change_rows(t, &detail.changes),
        first_link: (!query.cursor.trim().is_empty()).then(|| query.link(id, "")),
        next_link: detail.changes_next_cursor.as_deref().map(|cursor| query.link(id, cursor)),
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
    PageAdmin(who): PageAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Response {
    match parse_id("id", &id).map_err(ApiError::from) {
        Ok(id) => render_run(&headers, &who, id, &query, None, StatusCode::OK).await,
        Err(e) => error_page(&headers, &who, e, "/runs"),
    }
}

pub(super) async fn run_confirm(
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let result = match parse_id("id", &id).map_err(ApiError::from) {
        Ok(id) => who
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
                let run = who.app.runner().current_run();
                let notice = Notice { class: "bad", text: e.detail.message.clone(), run };
                render_run(&headers, &who, id, &RunQuery::default(), Some(notice), e.status).await
            }
            Err(_) => error_page(&headers, &who, e, "/runs"),
        },
    }
}

pub(super) async fn run_cancel(
    headers: HeaderMap,
    Path(id): Path<String>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let id = match parse_id("id", &id).map_err(ApiError::from) {
        Ok(id) => id,
        Err(e) => return error_page(&headers, &who, e, "/runs"),
    };
    match who.app.cancel_held(&who.principal, id).await.map_err(ApiError::from) {
        Ok(_) => see_other(&format!("/runs/{id}")),
        Err(e) => {
            let notice = Notice { class: "bad", text: e.detail.message.clone(), run: None };
            render_run(&headers, &who, id, &RunQuery::default(), Some(notice), e.status).await
        }
    }
}
