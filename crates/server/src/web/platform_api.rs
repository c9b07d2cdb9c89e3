//! The platform's REST API, `/api/v1/platform`: every organisation's sync health, and what a
//! platform operator may do to organisations (create, disable, enable, start a sync). For a
//! platform operator's session or a platform token; an organisation's administrators and
//! tokens get 403. No route here shows a user.

use axum::extract::Path;
use axum::http::StatusCode;
use safegpt_app::{NewOrg, OrgHealthView, OrgView, Trigger};
use safegpt_store::OrgChange;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{ApiJson, SyncStarted};
use super::auth::ApiPlatform;
use super::error::{ApiResult, ErrorBody};
use super::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(disable_org))
        .routes(routes!(enable_org))
        .routes(routes!(sync_org))
}

/// Every organisation with its sync health: active or not, its newest run, held runs
/// waiting for a decision, failing since when, the client secret's expiry, seats.
#[utoipa::path(get, path = "/api/v1/platform/orgs", tag = "platform",
    responses((status = 200, body = Vec<OrgHealthView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_orgs(ApiPlatform(who): ApiPlatform) -> ApiResult<axum::Json<Vec<OrgHealthView>>> {
    Ok(axum::Json(who.platform.overview(&who.identity.principal).await?))
}

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrgBody {
    /// For good: 2–40 lowercase letters, digits and `-`, starting with a letter.
    pub slug: String,
    pub name: String,
    /// `en` (default) or `nl`.
    pub language: Option<String>,
}

/// Creates an organisation.
#[utoipa::path(post, path = "/api/v1/platform/orgs", tag = "platform", request_body = NewOrgBody,
    responses((status = 201, body = OrgView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_org(
    ApiPlatform(who): ApiPlatform,
    ApiJson(body): ApiJson<NewOrgBody>,
) -> ApiResult<(StatusCode, axum::Json<OrgView>)> {
    let new = NewOrg { slug: body.slug, name: body.name, language: body.language };
    Ok((StatusCode::CREATED, axum::Json(who.platform.create_org(&who.identity.principal, new).await?)))
}

/// Disables an organisation: no syncs, its administrators and tokens refused, nothing deleted.
#[utoipa::path(post, path = "/api/v1/platform/orgs/{slug}/disable", tag = "platform",
    params(("slug" = String, Path, description = "The organisation's slug")),
    responses((status = 200, body = OrgView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn disable_org(ApiPlatform(who): ApiPlatform, Path(slug): Path<String>) -> ApiResult<axum::Json<OrgView>> {
    let change = OrgChange { disabled: Some(true), ..OrgChange::default() };
    Ok(axum::Json(who.platform.change_org(&who.identity.principal, &slug, change).await?))
}

/// Enables a disabled organisation again.
#[utoipa::path(post, path = "/api/v1/platform/orgs/{slug}/enable", tag = "platform",
    params(("slug" = String, Path, description = "The organisation's slug")),
    responses((status = 200, body = OrgView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn enable_org(ApiPlatform(who): ApiPlatform, Path(slug): Path<String>) -> ApiResult<axum::Json<OrgView>> {
    let change = OrgChange { disabled: Some(false), ..OrgChange::default() };
    Ok(axum::Json(who.platform.change_org(&who.identity.principal, &slug, change).await?))
}

/// Starts a sync of the organisation in the background. 409 while one is running there.
#[utoipa::path(post, path = "/api/v1/platform/orgs/{slug}/sync", tag = "platform",
    params(("slug" = String, Path, description = "The organisation's slug")),
    responses((status = 202, body = SyncStarted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn sync_org(
    ApiPlatform(who): ApiPlatform,
    Path(slug): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<SyncStarted>)> {
    let run_id = who.platform.start_sync(&who.identity.principal, &slug, Trigger::Api).await?;
    // The run is the organisation's: its administrators follow it at this URL.
    Ok((StatusCode::ACCEPTED, axum::Json(SyncStarted { run_id, url: format!("/api/v1/runs/{run_id}") })))
}
