//! The REST API `/api/v1`: everything the pages do, for automation. Every route requires an
//! administrator's session or an API token; the OpenAPI document is generated from these
//! handlers, so it cannot forget one.

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use safegpt_core::{SettingsPatch, Source, Status};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use safegpt_app::views::{
    AuditView, ChangePageView, EventPage, IntegrationView, RunDetailView, RunView, SettingsView, TestResultView,
    TokenView, UserPage, UserView,
};
use safegpt_app::{App, ChangeQuery, SettingsChange, TokenScope, Trigger, UserQuery, parse_id};

use super::auth::{ApiAdmin, authenticate};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::state::AppState;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sgpt_…").build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("safegpt_session"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SafeGPT Directory API",
        version = "1",
        description = "The user directory of SafeGPT and its Azure User Sync. Authenticate with an API token \
                       (`Authorization: Bearer sgpt_…`) or an administrator's session; a session's writes must \
                       send its CSRF token as `X-CSRF-Token`. Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
    components(schemas(ErrorBody, StatusParam, SourceParam)),
    tags(
        (name = "settings", description = "Azure User Sync settings, connection test and preview"),
        (name = "runs", description = "Sync runs"),
        (name = "users", description = "The user directory"),
        (name = "admin", description = "Integrations, audit log and API tokens"),
        (name = "events", description = "The directory's changes, in order, for services that follow it"),
        (name = "platform", description = "Every organisation of the deployment: for platform operators and platform tokens"),
        (name = "notifications", description = "Webhook endpoints with their delivery logs, and the e-mail alerts")
    )
)]
struct ApiDoc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(test_connection))
        .routes(routes!(preview))
        .routes(routes!(start_sync))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(list_run_changes))
        .routes(routes!(confirm_run))
        .routes(routes!(cancel_run))
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(enable_user))
        .routes(routes!(disable_user))
        .routes(routes!(list_audit))
        .routes(routes!(list_integrations))
        .routes(routes!(set_integration))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_events))
        .merge(super::platform_api::router())
        .merge(super::notify_api::router())
}

/// Guards the OpenAPI document and the API browser.
pub async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match authenticate(&state, req.headers()).await {
        Ok(Some(_)) => next.run(req).await,
        Ok(None) => ApiError::unauthorized().into_response(),
        Err(e) => e.into_response(),
    }
}

/// A JSON body whose errors name the field at fault.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            // The media type exactly (parameters such as `charset` aside): `application/jsonx`
            // or `application/json-seq` are other formats.
            .is_some_and(|ct| ct.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid",
                "send the body as JSON with 'Content-Type: application/json'",
            )
            .with_field("body"));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            let (code, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                ("too_large", "the body is larger than the 2 MB this API accepts".to_owned())
            } else {
                ("invalid", e.body_text())
            };
            ApiError::new(status, code, message).with_field("body")
        })?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(deserializer).map(ApiJson).map_err(|e| invalid_input(e, "body"))
    }
}

/// Query parameters whose errors name the parameter at fault.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ApiQuery).map_err(|e| invalid_input(e, "query"))
    }
}

/// A 422 naming the field at fault. Unknown fields are reported at the root (`.`), so their
/// name comes from the message; `whole` names the input when nothing narrower is known.
fn invalid_input<E: std::fmt::Display>(e: serde_path_to_error::Error<E>, whole: &str) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let field = if path == "." { inner.to_string().split('`').nth(1).unwrap_or(whole).to_owned() } else { path };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", format!("{field}: {inner}")).with_field(field)
}

// ---------------------------------------------------------------- settings

/// The settings to change; fields left out keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub active: Option<bool>,
    /// GUID, or a verified domain such as contoso.onmicrosoft.com.
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// Write-only: stored sealed, never returned. Empty or left out keeps the stored one.
    pub client_secret: Option<String>,
    /// Group object ids; `[]` = every user of the tenant.
    pub group_ids: Option<Vec<String>>,
    pub auto_disable: Option<bool>,
    pub auto_remove: Option<bool>,
    /// 1–3650.
    #[schema(minimum = 1, maximum = 3650)]
    pub remove_after_days: Option<i64>,
    pub include_guests: Option<bool>,
    /// `global`, `usgov` or `china`; for custom endpoints set `login_url` and `graph_url`.
    pub cloud: Option<String>,
    pub login_url: Option<String>,
    pub graph_url: Option<String>,
    /// 0 = unlimited.
    #[schema(minimum = 0, maximum = 10000000)]
    pub seats: Option<i64>,
    #[schema(minimum = 0, maximum = 10000000)]
    pub threshold_count: Option<i64>,
    #[schema(minimum = 0, maximum = 100)]
    pub threshold_percent: Option<i64>,
    /// How often the server runs the sync: `15m`, `1h`, `90s` (at least 10 s).
    pub interval: Option<String>,
    /// How often a sync reads everything instead of the changes (delta): `1d`, `12h` (10 s to 6 days).
    pub full_sync_interval: Option<String>,
    /// When the client secret expires, `YYYY-MM-DD`; `""` clears it.
    pub secret_expires: Option<String>,
    /// Addresses for the e-mail alerts, replacing the list; `[]` sends to nobody.
    pub notify: Option<Vec<String>>,
}

impl SettingsUpdate {
    fn change(self) -> SettingsChange {
        let n = |v: Option<i64>| v.map(|v| v.to_string());
        let patch = SettingsPatch {
            active: self.active,
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            group_ids: self.group_ids.clone(),
            auto_disable: self.auto_disable,
            auto_remove: self.auto_remove,
            remove_after_days: n(self.remove_after_days),
            include_guests: self.include_guests,
            cloud: self.cloud.clone(),
            login_url: self.login_url.clone(),
            graph_url: self.graph_url.clone(),
            seats: n(self.seats),
            threshold_count: n(self.threshold_count),
            threshold_percent: n(self.threshold_percent),
            interval: self.interval.clone(),
            full_sync_interval: self.full_sync_interval.clone(),
            secret_expires: self.secret_expires.clone(),
            notify: self.notify.clone(),
        };
        SettingsChange { patch, client_secret: self.client_secret }
    }
}

/// Azure User Sync settings (the secret only as `client_secret_set`).
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = SettingsView), (status = 401, body = ErrorBody)))]
async fn get_settings(ApiAdmin(who): ApiAdmin) -> ApiResult<axum::Json<SettingsView>> {
    Ok(axum::Json(who.app.settings().await?))
}

/// Changes settings. Every field is validated; when any is invalid nothing is saved and the
/// answer names each invalid field.
#[utoipa::path(put, path = "/api/v1/settings", tag = "settings", request_body = SettingsUpdate,
    responses((status = 200, body = SettingsView), (status = 401, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_settings(
    ApiAdmin(who): ApiAdmin,
    ApiJson(update): ApiJson<SettingsUpdate>,
) -> ApiResult<axum::Json<SettingsView>> {
    Ok(axum::Json(who.app.configure(&who.principal, update.change()).await?))
}

/// Test connection: token, read users, read each group. Changes nothing.
#[utoipa::path(post, path = "/api/v1/settings/test", tag = "settings",
    responses((status = 200, body = TestResultView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn test_connection(ApiAdmin(who): ApiAdmin) -> ApiResult<axum::Json<TestResultView>> {
    Ok(axum::Json(who.app.test_connection(&who.principal).await?))
}

/// Preview: a dry run's plan, user by user. Changes no user; recorded as a `dry_run` run.
#[utoipa::path(post, path = "/api/v1/settings/preview", tag = "settings",
    responses((status = 200, body = RunDetailView), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview(ApiAdmin(who): ApiAdmin) -> ApiResult<axum::Json<RunDetailView>> {
    Ok(axum::Json(who.app.preview(&who.principal, Trigger::Api).await?))
}

// ---------------------------------------------------------------- runs

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStarted {
    pub run_id: Uuid,
    /// Poll this for progress and the result.
    pub url: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    /// Read every user and group instead of only the changes since the last run.
    pub full: Option<bool>,
}

/// Starts a sync in the background (the rocket). 409 while one is running.
#[utoipa::path(post, path = "/api/v1/syncs", tag = "runs", params(SyncQuery),
    responses((status = 202, body = SyncStarted), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start_sync(
    ApiAdmin(who): ApiAdmin,
    ApiQuery(q): ApiQuery<SyncQuery>,
) -> ApiResult<(StatusCode, axum::Json<SyncStarted>)> {
    let run_id = who.app.start_sync(&who.principal, Trigger::Api, q.full.unwrap_or(false)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(SyncStarted { run_id, url: format!("/api/v1/runs/{run_id}") })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    /// How many, newest first (1–500; default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Sync runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(LimitQuery),
    responses((status = 200, body = Vec<RunView>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_runs(ApiAdmin(who): ApiAdmin, ApiQuery(q): ApiQuery<LimitQuery>) -> ApiResult<axum::Json<Vec<RunView>>> {
    let limit = App::limit(q.limit, 50, 500)?;
    Ok(axum::Json(who.app.runs(limit).await?.iter().map(RunView::from).collect()))
}

/// One run: its counts, its changes by action and reason (`run.breakdown`), the first 100
/// changes (the rest: `/api/v1/runs/{id}/changes`), and live progress while it runs.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = uuid::Uuid, Path, description = "Run id")),
    responses((status = 200, body = RunDetailView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_run(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<RunDetailView>> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(who.app.run_detail(id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Only this action: `create`, `update`, `enable`, `disable` or `remove`.
    pub action: Option<String>,
    /// Only this reason code, e.g. `out_of_scope` (the run's `breakdown` lists its codes).
    pub reason: Option<String>,
    /// Part of the e-mail address, or a whole user id or Entra object id.
    pub q: Option<String>,
    /// Page size (1–1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A run's changes, a page at a time in the order the run made them, filtered by action,
/// reason and text. 410 once the retention period removed the run's list (its `breakdown`
/// stays).
#[utoipa::path(get, path = "/api/v1/runs/{id}/changes", tag = "runs",
    params(("id" = uuid::Uuid, Path, description = "Run id"), ChangesQuery),
    responses((status = 200, body = ChangePageView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_run_changes(
    ApiAdmin(who): ApiAdmin,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<axum::Json<ChangePageView>> {
    let id = parse_id("id", &id)?;
    let query = ChangeQuery { action: q.action, reason: q.reason, q: q.q, limit: q.limit, cursor: q.cursor };
    Ok(axum::Json(who.app.run_changes(id, &query).await?))
}

/// Confirms a run held by the deletion threshold: starts a sync that applies it.
#[utoipa::path(post, path = "/api/v1/runs/{id}/confirm", tag = "runs", params(("id" = uuid::Uuid, Path, description = "Run id")),
    responses((status = 202, body = SyncStarted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn confirm_run(
    ApiAdmin(who): ApiAdmin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<SyncStarted>)> {
    let id = parse_id("id", &id)?;
    let run_id = who.app.confirm_held(&who.principal, id, Trigger::Api).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(SyncStarted { run_id, url: format!("/api/v1/runs/{run_id}") })))
}

/// Cancels a run held by the deletion threshold; nothing is applied.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = uuid::Uuid, Path, description = "Run id")),
    responses((status = 200, body = RunView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn cancel_run(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<RunView>> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(who.app.cancel_held(&who.principal, id).await?))
}

// ---------------------------------------------------------------- users

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusParam {
    Active,
    Disabled,
    AwaitingLicense,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceParam {
    Entra,
    Local,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    /// Part of the e-mail, UPN or display name (case-insensitive).
    pub q: Option<String>,
    pub status: Option<StatusParam>,
    pub source: Option<SourceParam>,
    /// 1–1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl StatusParam {
    pub fn status(self) -> Status {
        match self {
            StatusParam::Active => Status::Active,
            StatusParam::Disabled => Status::Disabled,
            StatusParam::AwaitingLicense => Status::AwaitingLicense,
        }
    }
}

impl SourceParam {
    pub fn source(self) -> Source {
        match self {
            SourceParam::Entra => Source::Entra,
            SourceParam::Local => Source::Local,
        }
    }
}

/// Users, oldest first, with seats used and total.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UsersQuery),
    responses((status = 200, body = UserPage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_users(ApiAdmin(who): ApiAdmin, ApiQuery(q): ApiQuery<UsersQuery>) -> ApiResult<axum::Json<UserPage>> {
    let query = UserQuery {
        search: q.q,
        status: q.status.map(StatusParam::status),
        source: q.source.map(SourceParam::source),
        limit: Some(App::limit(q.limit, 100, 1000)?),
        offset: q.offset.unwrap_or(0),
    };
    let page = who.app.users(query).await?;
    Ok(axum::Json(page))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_user(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<UserView>> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(who.app.user(id).await?))
}

/// Enables a user (an administrator's decision).
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", params(("id" = uuid::Uuid, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn enable_user(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<UserView>> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(who.app.set_user_status(&who.principal, &id.to_string(), true).await?))
}

/// Disables a user. An administrator's disable is never undone by the sync.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", params(("id" = uuid::Uuid, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn disable_user(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<UserView>> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(who.app.set_user_status(&who.principal, &id.to_string(), false).await?))
}

// ---------------------------------------------------------------- admin

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(LimitQuery),
    responses((status = 200, body = Vec<AuditView>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_audit(
    ApiAdmin(who): ApiAdmin,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<axum::Json<Vec<AuditView>>> {
    let limit = App::limit(q.limit, 50, 500)?;
    Ok(axum::Json(who.app.audit_log(limit).await?))
}

/// The integrations of Settings → Integrations.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "admin",
    responses((status = 200, body = Vec<IntegrationView>), (status = 401, body = ErrorBody)))]
async fn list_integrations(ApiAdmin(who): ApiAdmin) -> ApiResult<axum::Json<Vec<IntegrationView>>> {
    Ok(axum::Json(who.app.integrations().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSwitch {
    pub enabled: bool,
}

/// Switches an integration on or off (for Azure User Sync: its `active` setting).
#[utoipa::path(put, path = "/api/v1/integrations/{key}", tag = "admin", request_body = IntegrationSwitch,
    params(("key" = String, Path, description = "office_addin, azure_user_sync, google_search or openzaak")),
    responses((status = 200, body = IntegrationView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_integration(
    ApiAdmin(who): ApiAdmin,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<IntegrationSwitch>,
) -> ApiResult<axum::Json<IntegrationView>> {
    Ok(axum::Json(who.app.switch_integration(&who.principal, &key, body.enabled).await?))
}

/// API tokens (never their values).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)))]
async fn list_tokens(ApiAdmin(who): ApiAdmin) -> ApiResult<axum::Json<Vec<TokenView>>> {
    Ok(axum::Json(who.app.tokens().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for, 1–100 characters, not only spaces.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// What the token may do: `read` (GET routes, metrics, events), `sync` (also start,
    /// confirm and cancel runs) or `admin` (also settings, users and tokens; the default).
    pub scope: Option<TokenScope>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub token: TokenView,
    /// The token itself: shown once, only its hash is stored.
    pub value: String,
}

/// Creates an API token; its value is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 401, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    ApiAdmin(who): ApiAdmin,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let (token, value) =
        who.app.create_token(&who.principal, &body.name, body.scope.unwrap_or(TokenScope::Admin)).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { token, value })))
}

/// Revokes an API token at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin", params(("id" = uuid::Uuid, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn revoke_token(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<TokenView>> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(who.app.revoke_token(&who.principal, &id.to_string()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The `next_cursor` of the previous page; 0 (the default) reads from the start.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// 1–1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The outbox of directory changes (user created, updated, enabled, disabled, removed), oldest
/// first, with the user's id and the changed fields. 410 (`gone`) when events after the
/// cursor were removed by the retention period: the follower missed them and reads the
/// directory afresh.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 401, body = ErrorBody), (status = 410, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn list_events(ApiAdmin(who): ApiAdmin, ApiQuery(q): ApiQuery<EventsQuery>) -> ApiResult<axum::Json<EventPage>> {
    let limit = App::limit(q.limit, 100, 1000)?;
    Ok(axum::Json(who.app.events(q.after.unwrap_or(0), limit).await?))
}
