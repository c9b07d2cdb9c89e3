//! The courier of `safegpt serve`: each turn it reads every organisation's new events for
//! the alert rules, delivers webhook messages in order, and sends queued e-mails. Nothing it
//! does touches a sync: a run only writes its event, in its own transaction, and the courier
//! reads it later, so sending can neither block nor fail a sync.
//!
//! Several instances may run a courier on one database. Each endpoint and each e-mail is
//! claimed by one instance (a conditional update) before anything is sent, and the alerts of
//! an organisation move on only from the state they were read in, so every event is alerted
//! once and every message is delivered by one instance at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use safegpt_core::Email;
use safegpt_notify::alerts::{Mail, Memory};
use safegpt_notify::{AlertInput, Alerts, Language, Mailer, SyncEventSeen, WebhookClient};
use safegpt_store::{AlertState, AttemptRecord, Event, NewNotification, Org, Store};
use serde_json::json;
use time::OffsetDateTime;
use tracing::{debug, warn};

use crate::notify::NotifySettings;
use crate::views::EventView;
use crate::{AppError, AppResult, Clock, Platform};

/// How long one endpoint is served in a turn before others get their turn.
const ENDPOINT_SHARE: Duration = Duration::from_secs(20);
/// Endpoints served at once.
const PARALLEL_ENDPOINTS: usize = 16;
/// E-mails one turn sends at most.
const MAILS_PER_TURN: usize = 20;
/// The events read at a time.
const PAGE: u32 = 200;
/// The secret's expiry is checked for every organisation this often (runs' events are read
/// every turn).
const EVERY_ORG: Duration = Duration::from_secs(3600);

/// What one turn did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourierTurn {
    pub alerts_queued: usize,
    pub messages_delivered: usize,
    pub mails_sent: usize,
}

#[derive(Clone)]
pub struct Courier {
    inner: Arc<Inner>,
}

struct Inner {
    /// Platform-wide; an organisation's rows through `for_org`.
    store: Arc<Store>,
    settings: NotifySettings,
    client: WebhookClient,
    mailer: Option<Mailer>,
    /// Who holds a claim: one id per courier.
    instance: String,
    public_url: Option<String>,
    clock: Clock,
    last_full_pass: std::sync::Mutex<Option<Instant>>,
}

impl Platform {
    /// The courier of this process; `public_url` is where links in e-mails point.
    pub fn courier(&self, public_url: Option<String>) -> AppResult<Courier> {
        let settings = self.operations.notify.clone();
        let client = WebhookClient::new(settings.allow_private_webhooks, settings.webhook_timeout)
            .map_err(AppError::Internal)?;
        let mailer = match &settings.smtp {
            Some(smtp) => Some(Mailer::new(smtp, Duration::from_secs(30)).map_err(AppError::Internal)?),
            None => None,
        };
        Ok(Courier {
            inner: Arc::new(Inner {
                store: Arc::new(self.store.platform_wide()),
                settings,
                client,
                mailer,
                instance: uuid::Uuid::now_v7().to_string(),
                public_url,
                clock: Arc::clone(&self.clock),
                last_full_pass: std::sync::Mutex::new(None),
            }),
        })
    }
}

impl Courier {
    fn now(&self) -> OffsetDateTime {
        (self.inner.clock)()
    }

    /// Runs a turn every `every` until the task is dropped.
    pub async fn run(self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.turn().await {
                Ok(turn) if turn != CourierTurn::default() => debug!(?turn, "courier turn"),
                Ok(_) => {}
                Err(e) => warn!("courier: {e}"),
            }
        }
    }

    /// One turn: alerts, then webhooks, then e-mails (so that an alert of this turn goes out in it).
    pub async fn turn(&self) -> AppResult<CourierTurn> {
        let mut turn = CourierTurn::default();
        let orgs = self.inner.store.orgs().await?;
        let full = {
            let mut last = self.inner.last_full_pass.lock().expect("courier lock");
            let due = last.is_none_or(|at| at.elapsed() >= EVERY_ORG);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        let with_news = self.inner.store.orgs_with_unread_alert_events().await?;
        for org in orgs.iter().filter(|o| o.disabled_at.is_none()) {
            if full || with_news.contains(&org.slug) {
                match self.alert_pass(org).await {
                    Ok(n) => turn.alerts_queued += n,
                    Err(e) => warn!(org = %org.slug, "alerts: {e}"),
                }
            }
        }
        turn.messages_delivered = self.deliver_due(&orgs).await?;
        turn.mails_sent = self.send_mails().await?;
        Ok(turn)
    }

    /// Reads an organisation's new events through the alert rules; returns the e-mails queued.
    async fn alert_pass(&self, org: &Org) -> AppResult<usize> {
        let store = self.inner.store.for_org(&org.slug);
        let now = self.now();
        let before = store.alert_state().await?;
        let (events, top) = store.events_of_kinds(before.event_cursor, &RUN_ENDS, PAGE).await?;
        let cursor = next_cursor(&events, top, before.event_cursor);
        let seen: Vec<SyncEventSeen> = events.iter().filter_map(sync_event_seen).collect();
        let (settings, _) = store.settings().await?;
        let secret_warning = if settings.active { settings.secret_warning(now.date()) } else { None };
        let mut memory = Memory {
            failing_since: before.failing_since,
            failure_mailed_at: before.failure_mailed_at,
            secret_warned: before.secret_warned.clone(),
        };
        let input = AlertInput {
            org_name: &org.name,
            language: Language::of(&org.language),
            public_url: self.inner.public_url.as_deref(),
            now,
            events: &seen,
            secret_warning,
        };
        let mails = Alerts::pass(&input, &mut memory);
        let after = AlertState {
            event_cursor: cursor,
            failing_since: memory.failing_since,
            failure_mailed_at: memory.failure_mailed_at,
            secret_warned: memory.secret_warned,
        };
        if after == before {
            return Ok(0);
        }
        // With no address the rules still move on: nothing is mailed later about the past.
        let queued = addressed(mails, &settings.notify);
        // Another instance moved them first: it queued what this pass would have.
        let moved = store.advance_alerts(&before, &after, &queued, now).await?;
        Ok(if moved { queued.len() } else { 0 })
    }

    /// Delivers the due messages of every endpoint, a few endpoints at once.
    async fn deliver_due(&self, orgs: &[Org]) -> AppResult<usize> {
        let due = self.inner.store.webhooks_due(self.now()).await?;
        let mut delivered = 0;
        let mut tasks = tokio::task::JoinSet::new();
        for (slug, id) in due {
            let Some(org) = orgs.iter().find(|o| o.slug == slug && o.disabled_at.is_none()).cloned() else {
                continue;
            };
            if tasks.len() >= PARALLEL_ENDPOINTS {
                delivered += tasks.join_next().await.and_then(Result::ok).unwrap_or(0);
            }
            let courier = self.clone();
            tasks.spawn(async move {
                courier.deliver_endpoint(&org, &id).await.unwrap_or_else(|e| {
                    warn!(org = %org.slug, webhook = %id, "webhook delivery: {e}");
                    0
                })
            });
        }
        while let Some(done) = tasks.join_next().await {
            delivered += done.unwrap_or(0);
        }
        Ok(delivered)
    }

    async fn deliver_endpoint(&self, org: &Org, id: &str) -> AppResult<usize> {
        let store = self.inner.store.for_org(&org.slug);
        let instance = &self.inner.instance;
        let now = self.now();
        if !store.claim_webhook(id, instance, now, now + self.inner.settings.claim).await? {
            return Ok(0);
        }
        let result = self.deliver_claimed(&store, org, id).await;
        if let Err(e) = store.release_webhook(id, instance).await {
            warn!(webhook = %id, "could not release the endpoint's claim: {e}");
        }
        result
    }

    /// Sends the endpoint's messages in order while it holds the claim, until one fails,
    /// the events run out, or its share of the turn is used.
    async fn deliver_claimed(&self, store: &Store, org: &Org, id: &str) -> AppResult<usize> {
        let instance = self.inner.instance.as_str();
        let endpoint = store.webhook(id).await?;
        let secret = store.webhook_secret(id).await?;
        let started = Instant::now();
        let mut cursor = endpoint.delivered_seq;
        let mut head_attempts = endpoint.head_attempts;
        let mut head_first_failed = endpoint.head_first_failed_at;
        let mut delivered = 0;
        let wanted: Vec<&str> = endpoint.events.iter().map(String::as_str).collect();
        while started.elapsed() < ENDPOINT_SHARE {
            let (events, top) = store.events_of_kinds(cursor, &wanted, PAGE).await?;
            for event in &events {
                let now = self.now();
                // Renewed before each send, so the claim outlasts the request.
                if !store.claim_webhook(id, instance, now, now + self.inner.settings.claim).await? {
                    return Ok(delivered);
                }
                let message_id = message_id(&org.slug, event.seq);
                let body = message_body(event);
                let sent = self.inner.client.send(&endpoint.url, &secret, &message_id, now, &body).await;
                let attempt_number = head_attempts + 1;
                let (status_code, error) = sent.status_and_error();
                let attempt = AttemptRecord {
                    message_id: &message_id,
                    event_type: &event.kind,
                    seq: Some(event.seq),
                    attempt: attempt_number,
                    status_code,
                    error,
                };
                let now = self.now();
                let Some(error) = error else {
                    if !store.webhook_advanced(id, instance, event.seq, Some(attempt), now).await? {
                        return Ok(delivered);
                    }
                    cursor = event.seq;
                    head_attempts = 0;
                    head_first_failed = None;
                    delivered += 1;
                    continue;
                };
                let first_failed = head_first_failed.unwrap_or(now);
                let (next, failing) = self.inner.settings.webhook_retry.after(attempt_number, first_failed, now);
                let recorded =
                    store.webhook_attempt_failed(id, instance, attempt, first_failed, next, failing, now).await?;
                if recorded && failing && endpoint.state != "failing" {
                    self.alert_webhook_failing(store, org, &endpoint.url, error).await?;
                }
                return Ok(delivered);
            }
            // Past what the endpoint does not want, up to what this read saw.
            let next = next_cursor(&events, top, cursor);
            if next > cursor {
                if !store.webhook_advanced(id, instance, next, None, self.now()).await? {
                    return Ok(delivered);
                }
                cursor = next;
            }
            if events.len() < PAGE as usize {
                break;
            }
        }
        Ok(delivered)
    }

    async fn alert_webhook_failing(&self, store: &Store, org: &Org, url: &str, error: &str) -> AppResult<()> {
        let (settings, _) = store.settings().await?;
        let mail = Alerts::webhook_failing(Language::of(&org.language), &org.name, url, error);
        for notification in addressed(vec![mail], &settings.notify) {
            store.queue_notification(&notification, self.now()).await?;
        }
        Ok(())
    }

    /// Sends the e-mails that are due; without SMTP settings they stay queued.
    async fn send_mails(&self) -> AppResult<usize> {
        let Some(mailer) = &self.inner.mailer else { return Ok(0) };
        let instance = self.inner.instance.as_str();
        let mut sent = 0;
        // One at a time, each claimed just before it is sent: a slow server never keeps a
        // batch claimed past its expiry, for another instance to send again.
        for _ in 0..MAILS_PER_TURN {
            let now = self.now();
            let Some(mail) =
                self.inner.store.claim_notifications(instance, now, now + self.inner.settings.claim, 1).await?.pop()
            else {
                break;
            };
            let result = mailer.send(&mail.recipients, &mail.subject, &mail.body).await;
            let now = self.now();
            match result {
                Ok(()) => {
                    self.inner.store.notification_attempted(&mail.id, instance, None, None, now).await?;
                    sent += 1;
                }
                Err(error) => {
                    warn!(notification = %mail.id, "could not send an e-mail: {error}");
                    let created =
                        OffsetDateTime::parse(&mail.created_at, &time::format_description::well_known::Rfc3339)
                            .unwrap_or(now);
                    let (next, give_up) = self.inner.settings.mail_retry.after(mail.attempts + 1, created, now);
                    let retry_at = (!give_up).then_some(next);
                    self.inner.store.notification_attempted(&mail.id, instance, Some(&error), retry_at, now).await?;
                }
            }
        }
        Ok(sent)
    }
}

/// The events the alerts read: the ends of runs.
const RUN_ENDS: [&str; 3] = ["sync.succeeded", "sync.failed", "sync.held"];

/// Where a reader of `events` (read after `cursor`, the newest of any kind seen `top`) goes
/// on from: past everything seen when the page was not full, else after its last event.
fn next_cursor(events: &[Event], top: i64, cursor: i64) -> i64 {
    if events.len() < PAGE as usize { top.max(cursor) } else { events.last().map_or(cursor, |e| e.seq) }
}

/// The rules' e-mails to the organisation's notification addresses (none without any).
fn addressed(mails: Vec<Mail>, addresses: &[Email]) -> Vec<NewNotification> {
    if addresses.is_empty() {
        return Vec::new();
    }
    let recipients: Vec<String> = addresses.iter().map(|e| e.as_str().to_owned()).collect();
    mails
        .into_iter()
        .map(|m| NewNotification {
            kind: m.kind.to_owned(),
            recipients: recipients.clone(),
            subject: m.subject,
            body: m.body,
        })
        .collect()
}

/// The `webhook-id` of an event's message: the same for every attempt.
pub fn message_id(org: &str, seq: i64) -> String {
    format!("msg_{org}_{seq}")
}

/// `{"type", "timestamp", "data": the event as the events feed gives it}`.
fn message_body(event: &Event) -> Vec<u8> {
    let body = json!({"type": event.kind, "timestamp": event.at, "data": EventView::from(event)});
    body.to_string().into_bytes()
}

fn sync_event_seen(event: &Event) -> Option<SyncEventSeen> {
    if !event.kind.starts_with("sync.") {
        return None;
    }
    let p = &event.payload;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    Some(SyncEventSeen {
        kind: event.kind.clone(),
        run_id: p["run_id"].as_str().unwrap_or_default().to_owned(),
        would_disable: p["disabled"].as_u64().unwrap_or(0),
        would_remove: p["removed"].as_u64().unwrap_or(0),
        error_kind: text(&p["error"]["kind"]),
        error_message: text(&p["error"]["message"]),
    })
}
