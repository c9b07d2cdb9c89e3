//! Settings > Integrations and the Azure User Sync form: save, test connection, preview, rocket.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use safegpt_app::{SettingsChange, Trigger};
use safegpt_core::SettingsPatch;
use serde::Deserialize;
use uuid::Uuid;

use super::frame::*;
use crate::web::auth::{Caller, CsrfForm, PageAdmin};
use crate::web::error::ApiError;
use crate::web::i18n::Texts;

pub(super) struct IntegrationRow {
    key: &'static str,
    name: &'static str,
    description: &'static str,
    enabled: bool,
    updated: String,
}

#[derive(Template)]
#[template(path = "integrations.html")]
pub(super) struct IntegrationsPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    rows: Vec<IntegrationRow>,
    notice: Option<Notice>,
}

pub(super) async fn render_integrations(
    headers: &HeaderMap,
    who: &Caller,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    let (t, f) = frame(headers, Some(who), "/settings/integrations", "integrations", texts_for(headers).integrations);
    let integrations = match who.app.integrations().await.map_err(ApiError::from) {
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

pub(super) async fn integrations_page(
    PageAdmin(who): PageAdmin,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let t = texts_for(&headers);
    let run = q.get("run").and_then(|r| Uuid::parse_str(r).ok());
    let notice = match q.get("notice").map(String::as_str) {
        Some("saved") => Some(Notice { class: "ok", text: t.notice_saved.into(), run: None }),
        Some("switched") => Some(Notice { class: "ok", text: t.notice_switched.into(), run: None }),
        Some("secret_cleared") => Some(Notice { class: "warn", text: t.notice_secret_cleared.into(), run: None }),
        Some("already_running") => Some(Notice { class: "warn", text: t.notice_already_running.into(), run }),
        _ => None,
    };
    render_integrations(&headers, &who, StatusCode::OK, notice).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SwitchForm {
    enabled: String,
}

pub(super) async fn switch_integration(
    headers: HeaderMap,
    Path(key): Path<String>,
    CsrfForm(who, form): CsrfForm<SwitchForm>,
) -> Response {
    match who.app.switch_integration(&who.principal, &key, form.enabled == "true").await.map_err(ApiError::from) {
        Ok(_) => see_other("/settings/integrations?notice=switched"),
        Err(e) => {
            let notice = Notice { class: "bad", text: e.detail.message.clone(), run: None };
            render_integrations(&headers, &who, e.status, Some(notice)).await
        }
    }
}

pub(super) async fn azure_sync(headers: HeaderMap, CsrfForm(who, NoFields {}): CsrfForm<NoFields>) -> Response {
    match who.app.start_sync(&who.principal, Trigger::Manual, false).await.map_err(ApiError::from) {
        Ok(run_id) => see_other(&format!("/runs/{run_id}")),
        Err(e) if e.detail.code == "already_running" => {
            let running = who.app.runner().current_run().map(|id| format!("&run={id}")).unwrap_or_default();
            see_other(&format!("/settings/integrations?notice=already_running{running}"))
        }
        Err(e) => {
            let notice = Notice { class: "bad", text: e.detail.message.clone(), run: None };
            render_integrations(&headers, &who, e.status, Some(notice)).await
        }
    }
}

// ---------------------------------------------------------------- Azure User Sync form

/// The form as posted. Unchecked boxes are absent.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AzureForm {
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
    interval: String,
    #[serde(default)]
    full_sync_interval: String,
    secret_expires: String,
    /// Left out (a form of before the alerts): the list is kept.
    notify: Option<String>,
}

/// What the form shows (never the secret).
pub(super) struct AzureValues {
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
    interval: String,
    full_sync_interval: String,
    secret_expires: String,
    notify: String,
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
pub(super) struct AzurePage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    v: AzureValues,
    secret_set: bool,
    errors: FieldErrors,
    advanced_open: bool,
}

const ADVANCED_FIELDS: [&str; 11] = [
    "notify",
    "include_guests",
    "seats",
    "threshold_count",
    "threshold_percent",
    "cloud",
    "login_url",
    "graph_url",
    "interval",
    "full_sync_interval",
    "secret_expires",
];

pub(super) fn azure_page_for(
    headers: &HeaderMap,
    who: &Caller,
    v: AzureValues,
    secret_set: bool,
    errors: FieldErrors,
) -> AzurePage {
    let (t, f) = frame(headers, Some(who), "/settings/integrations/azure", "integrations", "Azure User Sync");
    let advanced_open = errors.0.iter().any(|(field, _)| ADVANCED_FIELDS.contains(&field.as_str()));
    AzurePage { t, csrf: f.csrf.clone().unwrap_or_default(), f, v, secret_set, errors, advanced_open }
}

pub(super) async fn azure_page(PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    let s = match who.app.settings().await.map_err(ApiError::from) {
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
        interval: s.interval,
        full_sync_interval: s.full_sync_interval,
        secret_expires: s.secret_expires.unwrap_or_default(),
        notify: s.notify.join("\n"),
    };
    render(StatusCode::OK, azure_page_for(&headers, &who, v, s.client_secret_set, FieldErrors(Vec::new())))
}

pub(super) async fn azure_save(headers: HeaderMap, CsrfForm(who, form): CsrfForm<AzureForm>) -> Response {
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
        interval: Some(form.interval.clone()),
        full_sync_interval: Some(form.full_sync_interval.clone()),
        secret_expires: Some(form.secret_expires.clone()),
        notify: form.notify.clone().map(|n| vec![n]),
    };
    match who
        .app
        .configure(&who.principal, SettingsChange { patch, client_secret: Some(form.client_secret.clone()) })
        .await
        .map_err(ApiError::from)
    {
        Ok(view) if view.secret_cleared => see_other("/settings/integrations?notice=secret_cleared"),
        Ok(_) => see_other("/settings/integrations?notice=saved"),
        Err(e) if !e.detail.errors.is_empty() || e.detail.field.is_some() => {
            let mut errors: Vec<(String, String)> =
                e.detail.errors.iter().map(|m| (m.field.clone(), m.message.clone())).collect();
            if errors.is_empty() {
                errors.push((e.detail.field.clone().unwrap_or_default(), e.detail.message.clone()));
            }
            let secret_set = who.app.store().settings().await.map(|(_, set)| set).unwrap_or(false);
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
                interval: form.interval,
                full_sync_interval: form.full_sync_interval,
                secret_expires: form.secret_expires,
                notify: form.notify.unwrap_or_default(),
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, azure_page_for(&headers, &who, v, secret_set, FieldErrors(errors)))
        }
        Err(e) => error_page(&headers, &who, e, "/settings/integrations/azure"),
    }
}

pub(super) struct CheckRow {
    name: String,
    ok: bool,
    message: String,
}

#[derive(Template)]
#[template(path = "test.html")]
pub(super) struct TestPage {
    t: &'static Texts,
    f: Frame,
    ok: bool,
    checks: Vec<CheckRow>,
    error: Option<String>,
}

pub(super) async fn azure_test(headers: HeaderMap, CsrfForm(who, NoFields {}): CsrfForm<NoFields>) -> Response {
    let (t, f) =
        frame(&headers, Some(&who), "/settings/integrations/azure", "integrations", texts_for(&headers).test_title);
    match who.app.test_connection(&who.principal).await.map_err(ApiError::from) {
        Ok(result) => {
            let checks =
                result.checks.into_iter().map(|c| CheckRow { name: c.name, ok: c.ok, message: c.message }).collect();
            render(StatusCode::OK, TestPage { t, f, ok: result.ok, checks, error: None })
        }
        Err(e) => render(e.status, TestPage { t, f, ok: false, checks: Vec::new(), error: Some(e.detail.message) }),
    }
}

#[derive(Template)]
#[template(path = "preview.html")]
pub(super) struct PreviewPage {
    t: &'static Texts,
    f: Frame,
    summary: String,
    changes: Vec<ChangeRow>,
    /// The run page, when the plan has more changes than this page shows.
    more: Option<String>,
    error: Option<String>,
}

pub(super) async fn azure_preview(headers: HeaderMap, CsrfForm(who, NoFields {}): CsrfForm<NoFields>) -> Response {
    let (t, f) =
        frame(&headers, Some(&who), "/settings/integrations/azure", "integrations", texts_for(&headers).preview_title);
    match who.app.preview(&who.principal, Trigger::Manual).await.map_err(ApiError::from) {
        Ok(detail) => {
            let failed = detail.run.error.as_ref().map(|e| e.message.clone());
            let summary = summary(t, &detail.run.counts);
            render(
                StatusCode::OK,
                PreviewPage {
                    t,
                    f,
                    summary,
                    changes: change_rows(t, &detail.changes),
                    more: detail.changes_next_cursor.as_ref().map(|_| format!("/runs/{}#changes", detail.run.id)),
                    error: failed,
                },
            )
        }
        Err(e) => render(
            e.status,
            PreviewPage {
                t,
                f,
                summary: String::new(),
                changes: Vec::new(),
                more: None,
                error: Some(e.detail.message),
            },
        ),
    }
}
