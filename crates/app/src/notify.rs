//! An organisation's webhook endpoints and e-mail alerts, as administrators manage and read
//! them. What is sent, and when, is the courier's ([`crate::courier`]).

use safegpt_notify::{EVENT_TYPES, RetrySchedule, SmtpSettings, WebhookClient, check_url, new_secret};
use safegpt_store::{AttemptRecord, Notification, WebhookAttempt, WebhookEndpoint};
use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{App, AppError, AppResult, Principal, TokenScope};

/// The operator's settings of what the deployment sends.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// `SAFEGPT_SMTP_URL` and `SAFEGPT_SMTP_FROM`; `None`: e-mails are queued, not sent.
    pub smtp: Option<SmtpSettings>,
    /// `SAFEGPT_WEBHOOK_ALLOW_PRIVATE`: endpoints on private addresses are allowed.
    pub allow_private_webhooks: bool,
    pub webhook_retry: RetrySchedule,
    pub mail_retry: RetrySchedule,
    /// How long one webhook request may take.
    pub webhook_timeout: std::time::Duration,
    /// How long a courier's claim on an endpoint or an e-mail lasts unrenewed: what an
    /// instance that died mid-delivery holds up before another takes over. Well over one
    /// request's timeout, so that a live instance never loses it mid-send.
    pub claim: std::time::Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        let secs = std::time::Duration::from_secs;
        NotifySettings {
            smtp: None,
            allow_private_webhooks: false,
            webhook_retry: RetrySchedule::default(),
            mail_retry: RetrySchedule {
                delays: vec![secs(30), secs(120), secs(600), secs(1800), secs(3600), secs(7200), secs(14400)],
                give_up_after: secs(24 * 3600),
                failing_every: secs(3600),
            },
            webhook_timeout: secs(15),
            claim: secs(120),
        }
    }
}

/// A webhook endpoint, without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    /// `active`, or `failing`: a message kept failing for a day; it is retried every hour and
    /// delivery goes on in order once the endpoint answers.
    pub state: String,
    /// The last event (`seq`) it has had.
    pub delivered_seq: i64,
    /// Failed attempts at the message now first in line (0: none waiting).
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

impl From<&WebhookEndpoint> for WebhookView {
    fn from(w: &WebhookEndpoint) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            created_at: w.created_at.clone(),
            created_by: w.created_by.clone(),
            state: w.state.clone(),
            delivered_seq: w.delivered_seq,
            attempts: w.head_attempts,
            next_attempt_at: w.next_attempt_at,
            last_error: w.last_error.clone(),
        }
    }
}

/// A new endpoint and its signing secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookCreatedView {
    pub webhook: WebhookView,
    /// `whsec_…` (base64): verify each message's `webhook-signature` with it, as the
    /// Standard Webhooks libraries do. It is not shown again.
    pub secret: String,
}

/// One attempt at delivering a message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAttemptView {
    /// The `webhook-id` header: the same for every attempt at one message.
    pub message_id: String,
    pub event_type: String,
    /// The event's `seq`; `null` for a test message.
    pub seq: Option<i64>,
    pub attempt: u32,
    pub at: String,
    pub status_code: Option<u16>,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub error: Option<String>,
}

impl From<&WebhookAttempt> for WebhookAttemptView {
    fn from(a: &WebhookAttempt) -> Self {
        WebhookAttemptView {
            message_id: a.message_id.clone(),
            event_type: a.event_type.clone(),
            seq: a.seq,
            attempt: a.attempt,
            at: a.at.clone(),
            status_code: a.status_code,
            outcome: a.outcome.clone(),
            error: a.error.clone(),
        }
    }
}

/// An e-mail alert, queued, sent or given up on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    /// `held`, `failing`, `still_failing`, `recovered`, `missing_permission`,
    /// `secret_expiring` or `webhook_failing`.
    pub kind: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    /// `pending` (to be sent or retried), `sent`, or `failed` (retried for a day).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        NotificationView {
            id: n.id.clone(),
            kind: n.kind.clone(),
            recipients: n.recipients.clone(),
            subject: n.subject.clone(),
            body: n.body.clone(),
            created_at: n.created_at.clone(),
            status: n.status.clone(),
            attempts: n.attempts,
            next_attempt_at: n.next_attempt_at.clone(),
            last_error: n.last_error.clone(),
            sent_at: n.sent_at.clone(),
        }
    }
}

/// Event types as given (`None`: every type); the error names the unknown ones.
pub fn parse_event_types(given: Option<&[String]>) -> AppResult<Vec<String>> {
    let Some(given) = given else { return Ok(EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect()) };
    let mut types: Vec<String> = Vec::new();
    for raw in given.iter().flat_map(|g| g.split([',', ' '])).map(str::trim).filter(|t| !t.is_empty()) {
        if !EVENT_TYPES.contains(&raw) {
            return Err(AppError::invalid(
                "events",
                format!("'{raw}' is not an event type; use some of {}", EVENT_TYPES.join(", ")),
            ));
        }
        if !types.iter().any(|t| t == raw) {
            types.push(raw.to_owned());
        }
    }
    if types.is_empty() {
        return Err(AppError::invalid("events", format!("name at least one of {}", EVENT_TYPES.join(", "))));
    }
    Ok(types)
}

impl App {
    /// Registers a webhook endpoint; its secret is returned here only.
    pub async fn create_webhook(
        &self,
        by: &Principal,
        url: &str,
        events: Option<&[String]>,
    ) -> AppResult<WebhookCreatedView> {
        by.require(TokenScope::Admin)?;
        let url = check_url(url, self.notify.allow_private_webhooks).map_err(|e| AppError::invalid("url", e))?;
        let events = parse_event_types(events)?;
        let secret = new_secret();
        let id = uuid::Uuid::now_v7().to_string();
        let endpoint = self.store.create_webhook(&id, url.as_str(), &events, &secret, &by.actor(), self.now()).await?;
        Ok(WebhookCreatedView { webhook: WebhookView::from(&endpoint), secret: secret.expose_secret().to_owned() })
    }

    pub async fn webhooks(&self, by: &Principal) -> AppResult<Vec<WebhookView>> {
        by.require(TokenScope::Admin)?;
        Ok(self.store.webhooks().await?.iter().map(WebhookView::from).collect())
    }

    pub async fn webhook(&self, by: &Principal, id: &str) -> AppResult<WebhookView> {
        by.require(TokenScope::Admin)?;
        Ok(WebhookView::from(&self.store.webhook(id).await?))
    }

    pub async fn delete_webhook(&self, by: &Principal, id: &str) -> AppResult<WebhookView> {
        by.require(TokenScope::Admin)?;
        Ok(WebhookView::from(&self.store.delete_webhook(id, &by.actor(), self.now()).await?))
    }

    /// The delivery log of an endpoint, newest first.
    pub async fn webhook_attempts(&self, by: &Principal, id: &str, limit: u32) -> AppResult<Vec<WebhookAttemptView>> {
        by.require(TokenScope::Admin)?;
        self.store.webhook(id).await?;
        Ok(self.store.webhook_attempts(id, limit).await?.iter().map(WebhookAttemptView::from).collect())
    }

    /// Sends a `webhook.test` message to the endpoint now, outside the order of the events,
    /// and logs it with the deliveries.
    pub async fn send_test_webhook(&self, by: &Principal, id: &str) -> AppResult<WebhookAttemptView> {
        by.require(TokenScope::Admin)?;
        let endpoint = self.store.webhook(id).await?;
        let secret = self.store.webhook_secret(&endpoint.id).await?;
        let now = self.now();
        let message_id = format!("msg_test_{}", uuid::Uuid::now_v7().simple());
        let body = serde_json::json!({
            "type": "webhook.test",
            "timestamp": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "data": {"webhook_id": endpoint.id, "sent_by": by.actor()},
        });
        let client = WebhookClient::new(self.notify.allow_private_webhooks, self.notify.webhook_timeout)
            .map_err(AppError::Internal)?;
        let sent = client.send(&endpoint.url, &secret, &message_id, now, body.to_string().as_bytes()).await;
        let (status_code, error) = sent.status_and_error();
        let attempt = AttemptRecord {
            message_id: &message_id,
            event_type: "webhook.test",
            seq: None,
            attempt: 1,
            status_code,
            error,
        };
        let recorded = self.store.record_webhook_attempt(&endpoint.id, attempt, now).await?;
        Ok(WebhookAttemptView::from(&recorded))
    }

    /// This organisation's e-mail alerts, newest first.
    pub async fn notifications(&self, by: &Principal, limit: u32) -> AppResult<Vec<NotificationView>> {
        by.require(TokenScope::Read)?;
        Ok(self.store.notifications(limit).await?.iter().map(NotificationView::from).collect())
    }

    /// Whether e-mails are sent (SMTP configured) or only queued.
    pub fn mail_configured(&self) -> bool {
        self.notify.smtp.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_default_to_all_and_unknown_ones_are_named() {
        assert_eq!(parse_event_types(None).unwrap().len(), EVENT_TYPES.len());
        let some = parse_event_types(Some(&["user.created,sync.held".into(), "user.created".into()])).unwrap();
        assert_eq!(some, ["user.created", "sync.held"]);
        let err = parse_event_types(Some(&["user.deleted".into()])).unwrap_err().to_string();
        assert!(err.contains("events") && err.contains("'user.deleted'"), "{err}");
        assert!(parse_event_types(Some(&[" ".into()])).is_err());
    }
}
