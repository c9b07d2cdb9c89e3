//! What an administrator can do, once: the pages and the REST API both call these, so
//! validation, auditing and the single-flight rule live in one place.

use axum::http::StatusCode;
use safegpt_core::{SettingsPatch, Source, Status};
use safegpt_store::{RunStatus, UserFilter};
use safegpt_sync::SyncRequest;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::views::{
    ChangeView, CheckView, ProgressView, RunDetailView, RunView, SeatsView, SettingsView, TestResultView, UserView,
};

pub fn parse_uuid(field: &str, raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        ApiError::invalid(field, format!("{field}: '{raw}' is not an id like 0190c3a2-…; copy it from a list"))
    })
}

pub async fn settings_view(state: &AppState) -> ApiResult<SettingsView> {
    let (settings, secret_set) = state.store.settings().await?;
    let next_run_at = state.store.next_run_at().await?;
    let mut view = SettingsView::new(&settings, secret_set, state.store.seats_used().await?, next_run_at, state.now());
    view.last_full_read_at = state.store.sync_cursor().await?.full_read_at;
    Ok(view)
}

/// Validates every field, then saves; nothing is saved when any field is invalid. An empty
/// secret keeps the stored one.
pub async fn update_settings(
    state: &AppState,
    patch: &SettingsPatch,
    secret: Option<&str>,
    actor: &str,
) -> ApiResult<SettingsView> {
    let (current, _) = state.store.settings().await?;
    let secret = secret.filter(|s| !s.trim().is_empty());
    let patch = if secret.is_some() { patch.clone().with_new_secret() } else { patch.clone() };
    let mut next = current.apply(&patch);
    if let Some(s) = secret
        && s.chars().any(char::is_control)
    {
        let field = safegpt_core::FieldError {
            field: "client_secret",
            message: "the Client Secret contains a line break or control character; paste only the secret's Value"
                .into(),
        };
        next = Err(match next {
            Ok(_) => safegpt_core::InvalidSettings(vec![field]),
            Err(mut invalid) => {
                invalid.0.push(field);
                invalid
            }
        });
    }
    let next = next?;
    let secret = secret.map(|s| SecretString::from(s.to_owned()));
    state.store.save_settings(&next, secret.as_ref(), actor, state.now()).await?;
    settings_view(state).await
}

pub async fn test_connection(state: &AppState, actor: &str) -> ApiResult<TestResultView> {
    let checks = safegpt_sync::test_connection(&state.store, state.runner_retry()).await?;
    let ok = checks.iter().all(|c| c.ok);
    state
        .store
        .audit(actor, "azure.tested", Some("azure_user_sync"), &json!({"ok": ok, "checks": checks}), state.now())
        .await?;
    Ok(TestResultView { ok, checks: checks.iter().map(CheckView::from).collect() })
}

/// A dry run to its end: the plan, user by user. It counts as a run (one at a time).
pub async fn preview(state: &AppState, trigger: &str) -> ApiResult<RunDetailView> {
    let request = SyncRequest { dry_run: true, ..SyncRequest::new(trigger, state.now()) };
    let outcome = state.runner.run_to_end(request).await?;
    run_detail(state, outcome.run_id).await
}

/// Starts a sync in the background; `full_read` reads every user and group instead of the
/// changes since the last run.
pub async fn start_sync(state: &AppState, trigger: &str, full_read: bool) -> ApiResult<Uuid> {
    let request = SyncRequest { full_read, ..SyncRequest::new(trigger, state.now()) };
    Ok(state.runner.start(request).await?)
}

pub async fn run_detail(state: &AppState, run_id: Uuid) -> ApiResult<RunDetailView> {
    let (run, changes) = state.store.run(&run_id.to_string()).await?;
    Ok(RunDetailView {
        run: RunView::from(&run),
        changes: changes.iter().map(ChangeView::from).collect(),
        progress: state.runner.progress(run_id).as_ref().map(ProgressView::from),
    })
}

async fn held_run(state: &AppState, run_id: Uuid) -> ApiResult<()> {
    let (run, _) = state.store.run(&run_id.to_string()).await?;
    if run.status != RunStatus::Held {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("run {run_id} is {}; only a held run can be confirmed or cancelled", run.status.as_str()),
        ));
    }
    Ok(())
}

/// Confirms a held run: a fresh sync (the directory may have changed since) that applies
/// even above the deletion threshold. Returns the id of that run.
pub async fn confirm_held(state: &AppState, run_id: Uuid, trigger: &str, actor: &str) -> ApiResult<Uuid> {
    held_run(state, run_id).await?;
    let request = SyncRequest { confirm_mass_changes: true, ..SyncRequest::new(trigger, state.now()) };
    let follow_up = state.runner.start(request).await?;
    state.store.resolve_held(run_id, RunStatus::Confirmed, actor, Some(follow_up), state.now()).await?;
    Ok(follow_up)
}

pub async fn cancel_held(state: &AppState, run_id: Uuid, actor: &str) -> ApiResult<RunView> {
    held_run(state, run_id).await?;
    state.store.resolve_held(run_id, RunStatus::Cancelled, actor, None, state.now()).await?;
    Ok(run_detail(state, run_id).await?.run)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Users matching the filter (all pages).
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
    pub seats: SeatsView,
}

pub async fn users(
    state: &AppState,
    search: Option<String>,
    status: Option<Status>,
    source: Option<Source>,
    limit: u32,
    offset: u32,
) -> ApiResult<UserPage> {
    let (settings, _) = state.store.settings().await?;
    let filter = UserFilter { status, source, search, limit: Some(limit), offset };
    let total = state.store.count_users(&filter).await?;
    let users = state.store.users(filter).await?;
    Ok(UserPage {
        users: users.iter().map(|u| UserView::new(u, &settings)).collect(),
        total,
        limit,
        offset,
        seats: SeatsView { used: state.store.seats_used().await?, total: settings.seats },
    })
}

pub async fn user(state: &AppState, id: Uuid) -> ApiResult<UserView> {
    let (settings, _) = state.store.settings().await?;
    let user = state.store.find_user(&id.to_string()).await?;
    Ok(UserView::new(&user, &settings))
}

pub async fn set_user_status(state: &AppState, id: Uuid, enable: bool, actor: &str) -> ApiResult<UserView> {
    let (settings, _) = state.store.settings().await?;
    let user = state.store.set_status_by_admin(&id.to_string(), enable, actor, state.now()).await?;
    Ok(UserView::new(&user, &settings))
}

/// The integrations of the seed's screenshot. Only Azure User Sync has behaviour; the
/// others are switches that are stored.
pub const INTEGRATIONS: [(&str, &str, bool); 4] = [
    ("office_addin", "Office Add-in", true),
    ("azure_user_sync", "Azure User Sync", false),
    ("google_search", "Google Search", false),
    ("openzaak", "OpenZaak", false),
];

pub const AZURE: &str = "azure_user_sync";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationView {
    /// `office_addin`, `azure_user_sync`, `google_search` or `openzaak`.
    pub key: &'static str,
    pub name: &'static str,
    pub enabled: bool,
    /// Always `included`.
    pub license: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

pub async fn integrations(state: &AppState) -> ApiResult<Vec<IntegrationView>> {
    let switches = state.store.integration_switches().await?;
    let (settings, _) = state.store.settings().await?;
    let azure_updated = state.store.settings_updated_at().await?;
    Ok(INTEGRATIONS
        .iter()
        .map(|&(key, name, default_on)| {
            let (enabled, updated_at) = if key == AZURE {
                (settings.active, azure_updated)
            } else {
                switches.iter().find(|s| s.key == key).map_or((default_on, None), |s| (s.enabled, Some(s.updated_at)))
            };
            IntegrationView { key, name, enabled, license: "included", updated_at }
        })
        .collect())
}

/// Azure User Sync's switch is its `active` setting (validated like the form).
pub async fn switch_integration(state: &AppState, key: &str, enabled: bool, actor: &str) -> ApiResult<IntegrationView> {
    if !INTEGRATIONS.iter().any(|(k, _, _)| *k == key) {
        return Err(ApiError::not_found(format!(
            "no integration '{key}'; the integrations are office_addin, azure_user_sync, google_search and openzaak"
        )));
    }
    if key == AZURE {
        update_settings(state, &SettingsPatch { active: Some(enabled), ..SettingsPatch::default() }, None, actor)
            .await?;
    } else {
        state.store.set_integration_switch(key, enabled, actor, state.now()).await?;
    }
    integrations(state)
        .await?
        .into_iter()
        .find(|i| i.key == key)
        .ok_or_else(|| ApiError::not_found(format!("no integration '{key}'")))
}
