//! Webhook endpoints and e-mail alerts of the caller's organisation:
//! `/api/v1/webhooks…` and `/api/v1/notifications`.

use axum::extract::Path;
use axum::http::StatusCode;
use safegpt_app::{App, NotificationView, WebhookAttemptView, WebhookCreatedView, WebhookView};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{ApiJson, ApiQuery};
use super::auth::ApiAdmin;
use super::error::{ApiResult, ErrorBody};
use super::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(send_test))
        .routes(routes!(list_notifications))
}

/// The organisation's webhook endpoints with their delivery state (never their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "notifications",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_webhooks(ApiAdmin(who): ApiAdmin) -> ApiResult<axum::Json<Vec<WebhookView>>> {
    Ok(axum::Json(who.app.webhooks(&who.principal).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://…`; `http://` only for 127.0.0.1 or localhost. Private addresses are refused
    /// unless the operator allows them.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    /// Event types to send; left out: all of them.
    pub events: Option<Vec<String>>,
}

/// Registers an endpoint; its signing secret (`whsec_…`) is in this answer only.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "notifications", request_body = NewWebhook,
    responses((status = 201, body = WebhookCreatedView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_webhook(
    ApiAdmin(who): ApiAdmin,
    ApiJson(body): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, axum::Json<WebhookCreatedView>)> {
    let created = who.app.create_webhook(&who.principal, &body.url, body.events.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

fn endpoint_id(raw: &str) -> ApiResult<String> {
    Ok(safegpt_app::parse_id("id", raw)?.to_string())
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "notifications",
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_webhook(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<WebhookView>> {
    Ok(axum::Json(who.app.webhook(&who.principal, &endpoint_id(&id)?).await?))
}

/// Deletes an endpoint and its delivery log; nothing more is sent to it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "notifications",
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn delete_webhook(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<WebhookView>> {
    Ok(axum::Json(who.app.delete_webhook(&who.principal, &endpoint_id(&id)?).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// 1–1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The delivery log of an endpoint, newest first: every attempt with its status and error.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "notifications",
    params(("id" = uuid::Uuid, Path, description = "Endpoint id"), LogQuery),
    responses((status = 200, body = Vec<WebhookAttemptView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_deliveries(
    ApiAdmin(who): ApiAdmin,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<axum::Json<Vec<WebhookAttemptView>>> {
    let limit = App::limit(q.limit, 100, 1000)?;
    Ok(axum::Json(who.app.webhook_attempts(&who.principal, &endpoint_id(&id)?, limit).await?))
}

/// Sends a `webhook.test` message to the endpoint now and answers how it went (also in the
/// delivery log). A failed test is still a 200: the answer says why it failed.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "notifications",
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses((status = 200, body = WebhookAttemptView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_test(ApiAdmin(who): ApiAdmin, Path(id): Path<String>) -> ApiResult<axum::Json<WebhookAttemptView>> {
    Ok(axum::Json(who.app.send_test_webhook(&who.principal, &endpoint_id(&id)?).await?))
}

/// The organisation's e-mail alerts, newest first: queued, sent or given up on.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(LogQuery),
    responses((status = 200, body = Vec<NotificationView>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_notifications(
    ApiAdmin(who): ApiAdmin,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<axum::Json<Vec<NotificationView>>> {
    let limit = App::limit(q.limit, 100, 1000)?;
    Ok(axum::Json(who.app.notifications(&who.principal, limit).await?))
}
