//! The administrator's pages: server-rendered, usable without JavaScript. Handlers gather
//! view rows (texts already translated) and render one template each; what they change goes
//! through the application (`safegpt_app::App`), as the REST API's does.

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::web::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/settings/integrations") }))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/setup", get(session::setup_page).post(session::setup))
        .route("/lang", get(session::switch_language))
        .route("/static/app.css", get(assets::stylesheet))
        .route("/static/app.js", get(assets::script))
        .route("/settings/integrations", get(integrations::integrations_page))
        .route("/settings/integrations/{key}/switch", post(integrations::switch_integration))
        .route("/settings/integrations/azure", get(integrations::azure_page).post(integrations::azure_save))
        .route("/settings/integrations/azure/test", post(integrations::azure_test))
        .route("/settings/integrations/azure/preview", post(integrations::azure_preview))
        .route("/settings/integrations/azure/sync", post(integrations::azure_sync))
        .route("/runs", get(runs::runs_page))
        .route("/runs/{id}", get(runs::run_page))
        .route("/runs/{id}/confirm", post(runs::run_confirm))
        .route("/runs/{id}/cancel", post(runs::run_cancel))
        .route("/users", get(users::users_page))
        .route("/users/{id}/{action}", post(users::user_action))
        .route("/audit", get(admin::audit_page))
        .route("/settings/tokens", get(admin::tokens_page).post(admin::token_create))
        .route("/settings/tokens/{id}/revoke", post(admin::token_revoke))
        .route("/settings/webhooks", get(notify::webhooks_page).post(notify::webhook_create))
        .route("/settings/webhooks/{id}", get(notify::webhook_page))
        .route("/settings/webhooks/{id}/{action}", post(notify::webhook_action))
        .route("/settings/notifications", get(notify::notifications_page))
        .route("/platform", get(platform::platform_page))
        .route("/platform/orgs", post(platform::create_org))
        .route("/platform/orgs/{slug}/{action}", post(platform::org_action))
}

mod admin;
mod assets;
mod frame;
mod integrations;
mod notify;
mod platform;
mod runs;
mod session;
mod users;
