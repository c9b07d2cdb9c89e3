//! Webhooks (endpoints, the secret shown once, Send test, the delivery log) and the e-mail
//! alerts of the organisation.

use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use safegpt_app::{NotificationView, WebhookAttemptView, WebhookView};
use safegpt_notify::EVENT_TYPES;
use serde::Deserialize;

use super::frame::*;
use crate::web::auth::{Caller, CsrfForm, PageAdmin};
use crate::web::error::ApiError;
use crate::web::i18n::Texts;

#[derive(Template)]
#[template(path = "webhooks.html")]
pub(super) struct WebhooksPage {
    t: &'static Texts,
    f: Frame,
    csrf: String,
    webhooks: Vec<WebhookView>,
    event_types: &'static [&'static str],
    /// The new endpoint's secret, this once.
    created: Option<String>,
    /// What Send test did.
    tested: Option<WebhookAttemptView>,
    error: Option<String>,
}

async fn render_webhooks(
    headers: &HeaderMap,
    who: &Caller,
    status: StatusCode,
    created: Option<String>,
    tested: Option<WebhookAttemptView>,
    error: Option<String>,
) -> Response {
    let (t, f) = frame(headers, Some(who), "/settings/webhooks", "webhooks", texts_for(headers).n.webhooks_title);
    let webhooks = match who.app.webhooks(&who.principal).await {
        Ok(w) => w,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let page = WebhooksPage {
        t,
        csrf: f.csrf.clone().unwrap_or_default(),
        f,
        webhooks,
        event_types: &EVENT_TYPES,
        created,
        tested,
        error,
    };
    render(status, page)
}

pub(super) async fn webhooks_page(PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    render_webhooks(&headers, &who, StatusCode::OK, None, None, None).await
}

/// The form: a URL and a checkbox `event:<type>` per ticked event type (a form decoder
/// keeps one value per name, so each type has its own).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WebhookForm {
    url: String,
    #[serde(flatten)]
    fields: std::collections::HashMap<String, String>,
}

pub(super) async fn webhook_create(headers: HeaderMap, CsrfForm(who, form): CsrfForm<WebhookForm>) -> Response {
    let ticked: Vec<String> = EVENT_TYPES
        .iter()
        .filter(|t| form.fields.contains_key(&format!("event:{t}")))
        .map(|t| (*t).to_owned())
        .collect();
    let events = (!ticked.is_empty()).then_some(ticked.as_slice());
    match who.app.create_webhook(&who.principal, &form.url, events).await {
        Ok(created) => render_webhooks(&headers, &who, StatusCode::CREATED, Some(created.secret), None, None).await,
        Err(e) => {
            let e = ApiError::from(e);
            render_webhooks(&headers, &who, e.status, None, None, Some(e.detail.message)).await
        }
    }
}

pub(super) async fn webhook_action(
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(who, NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let id = match safegpt_app::parse_id("id", &id) {
        Ok(id) => id.to_string(),
        Err(e) => return error_page(&headers, &who, ApiError::from(e), "/settings/webhooks"),
    };
    let result = match action.as_str() {
        "delete" => who.app.delete_webhook(&who.principal, &id).await.map(|_| None),
        "test" => who.app.send_test_webhook(&who.principal, &id).await.map(Some),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match result {
        Ok(None) => see_other("/settings/webhooks"),
        Ok(Some(tested)) => render_webhooks(&headers, &who, StatusCode::OK, None, Some(tested), None).await,
        Err(e) => error_page(&headers, &who, ApiError::from(e), "/settings/webhooks"),
    }
}

#[derive(Template)]
#[template(path = "webhook.html")]
pub(super) struct WebhookPage {
    t: &'static Texts,
    f: Frame,
    webhook: WebhookView,
    attempts: Vec<WebhookAttemptView>,
}

pub(super) async fn webhook_page(PageAdmin(who): PageAdmin, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let loaded = async {
        let id = safegpt_app::parse_id("id", &id)?.to_string();
        Ok::<_, safegpt_app::AppError>((
            who.app.webhook(&who.principal, &id).await?,
            who.app.webhook_attempts(&who.principal, &id, 200).await?,
        ))
    };
    let (webhook, attempts) = match loaded.await {
        Ok(found) => found,
        Err(e) => return error_page(&headers, &who, ApiError::from(e), "/settings/webhooks"),
    };
    let path = format!("/settings/webhooks/{}", webhook.id);
    let (t, f) = frame(&headers, Some(&who), &path, "webhooks", texts_for(&headers).n.deliveries);
    render(StatusCode::OK, WebhookPage { t, f, webhook, attempts })
}

#[derive(Template)]
#[template(path = "notifications.html")]
pub(super) struct NotificationsPage {
    t: &'static Texts,
    f: Frame,
    notifications: Vec<NotificationView>,
    mail_configured: bool,
}

pub(super) async fn notifications_page(PageAdmin(who): PageAdmin, headers: HeaderMap) -> Response {
    let (t, f) = frame(
        &headers,
        Some(&who),
        "/settings/notifications",
        "notifications",
        texts_for(&headers).n.notifications_title,
    );
    let notifications = match who.app.notifications(&who.principal, 200).await {
        Ok(n) => n,
        Err(e) => return ApiError::from(e).into_response(),
    };
    render(StatusCode::OK, NotificationsPage { t, f, notifications, mail_configured: who.app.mail_configured() })
}
