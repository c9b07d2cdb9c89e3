//! What the deployment tells people: an organisation's webhook endpoints with their delivery
//! state and log, the e-mails its alerts queue, and what the alerts have already said.
//!
//! Every instance on the database shares this state. An endpoint or an e-mail is worked on by
//! one instance at a time: it is claimed with one conditional update (`claimed_until` in the
//! past) before anything is sent, and every write after the send checks the claim again.

use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Entity, Result, Store, StoreError, parse_ts, ts};

/// A time as compared in SQL: whole seconds, so that text order is time order.
fn due(t: OffsetDateTime) -> String {
    ts(t.replace_nanosecond(0).unwrap_or(t))
}

/// One webhook endpoint of an organisation, without its secret.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub org: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    /// The organisation's last event this endpoint has had (or does not want).
    pub delivered_seq: i64,
    /// `active`, or `failing` once a message kept failing for the whole retry schedule.
    pub state: String,
    /// Failed attempts at the message now first in line.
    pub head_attempts: u32,
    pub head_first_failed_at: Option<OffsetDateTime>,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// One attempt at delivering a message, for the delivery log.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookAttempt {
    pub message_id: String,
    pub event_type: String,
    /// The event's sequence number; `None` for a test message.
    pub seq: Option<i64>,
    pub attempt: u32,
    pub at: String,
    pub status_code: Option<u16>,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub error: Option<String>,
}

/// An e-mail the alerts queued.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: String,
    pub org: String,
    pub kind: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    /// `pending`, `sent` or `failed` (given up after retrying).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

/// An e-mail to queue.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub kind: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// What the alerts of an organisation have read and said so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertState {
    /// The last event of the organisation the alerts have read.
    pub event_cursor: i64,
    /// Since when its syncs fail (`None`: the last run that decided something succeeded).
    pub failing_since: Option<OffsetDateTime>,
    /// When a failure was last mailed.
    pub failure_mailed_at: Option<OffsetDateTime>,
    /// The secret warning last mailed, as `<expiry date>/<step>`.
    pub secret_warned: Option<String>,
}

const ENDPOINT_COLUMNS: &str = "id, org_id, url, events, created_at, created_by, delivered_seq, state, head_attempts, \
     head_first_failed_at, next_attempt_at, last_error";

type EndpointRow =
    (String, String, String, String, String, String, i64, String, i64, Option<String>, Option<String>, Option<String>);

fn endpoint_from_row(row: EndpointRow) -> Result<WebhookEndpoint> {
    let (id, org, url, events, created_at, created_by, delivered_seq, state, attempts, first_failed, next, last_error) =
        row;
    let events = serde_json::from_str(&events).map_err(|e| StoreError::corrupt("webhook events", e))?;
    Ok(WebhookEndpoint {
        id,
        org,
        url,
        events,
        created_at,
        created_by,
        delivered_seq,
        state,
        head_attempts: attempts.clamp(0, u32::MAX.into()) as u32,
        head_first_failed_at: first_failed.as_deref().map(parse_ts).transpose()?,
        next_attempt_at: next.as_deref().map(parse_ts).transpose()?,
        last_error,
    })
}

/// message id, event type, seq, attempt, at, status code, outcome, error.
type AttemptRow = (String, String, Option<i64>, i64, String, Option<i64>, String, Option<String>);

const NOTIFICATION_COLUMNS: &str =
    "id, org_id, kind, recipients, subject, body, created_at, status, attempts, next_attempt_at, last_error, sent_at";

type NotificationRow =
    (String, String, String, String, String, String, String, String, i64, String, Option<String>, Option<String>);

fn notification_from_row(row: NotificationRow) -> Result<Notification> {
    let (id, org, kind, recipients, subject, body, created_at, status, attempts, next_attempt_at, last_error, sent_at) =
        row;
    let recipients =
        serde_json::from_str(&recipients).map_err(|e| StoreError::corrupt("notification recipients", e))?;
    let attempts = attempts.clamp(0, u32::MAX.into()) as u32;
    Ok(Notification {
        id,
        org,
        kind,
        recipients,
        subject,
        body,
        created_at,
        status,
        attempts,
        next_attempt_at,
        last_error,
        sent_at,
    })
}

/// How one attempt at the head message ended.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub message_id: &'a str,
    pub event_type: &'a str,
    pub seq: Option<i64>,
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
}

impl Store {
    fn webhook_secret_context(&self, id: &str) -> String {
        format!("org:{}:webhook:{id}", self.org)
    }

    /// Registers an endpoint; it receives the events written from now on.
    pub async fn create_webhook(
        &self,
        id: &str,
        url: &str,
        events: &[String],
        secret: &SecretString,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<WebhookEndpoint> {
        let sealed = self.sealer.seal(secret, &self.webhook_secret_context(id));
        let events_json = serde_json::to_string(events).unwrap_or_else(|_| "[]".into());
        // The outbox lock: no event of this organisation can commit below the starting point.
        let mut tx = self.begin_event_write().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, org_id, url, events, sealed_secret, created_at, created_by, delivered_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(seq), 0) FROM events WHERE org_id = $2))",
        )
        .bind(id)
        .bind(&self.org)
        .bind(url)
        .bind(&events_json)
        .bind(&sealed)
        .bind(ts(now))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        let details = serde_json::json!({"url": url, "events": events});
        self.insert_audit(&mut tx, now, actor, "webhook.created", Some(id), &details).await?;
        tx.commit().await?;
        self.webhook(id).await
    }

    /// This organisation's endpoints, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY id");
        let rows: Vec<EndpointRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&self.org).fetch_all(&self.pool).await?;
        rows.into_iter().map(endpoint_from_row).collect()
    }

    /// One endpoint of this organisation.
    pub async fn webhook(&self, id: &str) -> Result<WebhookEndpoint> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 AND id = $2");
        let row: Option<EndpointRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&self.org).bind(id.trim()).fetch_optional(&self.pool).await?;
        let row = row.ok_or_else(|| StoreError::NotFound { entity: Entity::Webhook, key: id.trim().to_owned() })?;
        endpoint_from_row(row)
    }

    /// The endpoint's signing secret, unsealed. Never log or return it.
    pub async fn webhook_secret(&self, id: &str) -> Result<SecretString> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT sealed_secret FROM webhook_endpoints WHERE org_id = $1 AND id = $2")
                .bind(&self.org)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let (sealed,) = row.ok_or_else(|| StoreError::NotFound { entity: Entity::Webhook, key: id.to_owned() })?;
        Ok(self.sealer.unseal(&sealed, &self.webhook_secret_context(id))?)
    }

    /// Deletes an endpoint and its delivery log.
    pub async fn delete_webhook(&self, id: &str, actor: &str, now: OffsetDateTime) -> Result<WebhookEndpoint> {
        let endpoint = self.webhook(id).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_attempts WHERE org_id = $1 AND endpoint_id = $2")
            .bind(&self.org)
            .bind(&endpoint.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2")
            .bind(&self.org)
            .bind(&endpoint.id)
            .execute(&mut *tx)
            .await?;
        let details = serde_json::json!({"url": endpoint.url});
        self.insert_audit(&mut tx, now, actor, "webhook.deleted", Some(&endpoint.id), &details).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    /// The delivery log of an endpoint, newest first.
    pub async fn webhook_attempts(&self, id: &str, limit: u32) -> Result<Vec<WebhookAttempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT message_id, event_type, seq, attempt, at, status_code, outcome, error FROM webhook_attempts
                 WHERE org_id = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(&self.org)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(message_id, event_type, seq, attempt, at, status_code, outcome, error)| WebhookAttempt {
                message_id,
                event_type,
                seq,
                attempt: attempt.clamp(0, u32::MAX.into()) as u32,
                at,
                status_code: status_code.and_then(|c| u16::try_from(c).ok()),
                outcome,
                error,
            })
            .collect())
    }

    /// Endpoints with events after their cursor whose next attempt is due and that no
    /// instance works on: `(organisation, endpoint id)`. Platform-wide.
    pub async fn webhooks_due(&self, now: OffsetDateTime) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT w.org_id, w.id FROM webhook_endpoints w
             WHERE (w.next_attempt_at IS NULL OR w.next_attempt_at <= $1)
               AND (w.claimed_until IS NULL OR w.claimed_until <= $1)
               AND EXISTS (SELECT 1 FROM events e WHERE e.org_id = w.org_id AND e.seq > w.delivered_seq)
             ORDER BY w.next_attempt_at, w.id",
        )
        .bind(due(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Claims the endpoint for `instance` until `until`, if no other instance holds it:
    /// one conditional update, so two instances never both deliver its messages.
    pub async fn claim_webhook(
        &self,
        id: &str,
        instance: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET claimed_by = $3, claimed_until = $4
             WHERE org_id = $1 AND id = $2 AND (claimed_until IS NULL OR claimed_until <= $5 OR claimed_by = $3)
               AND (next_attempt_at IS NULL OR next_attempt_at <= $5)",
        )
        .bind(&self.org)
        .bind(id)
        .bind(instance)
        .bind(due(until))
        .bind(due(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the claim back.
    pub async fn release_webhook(&self, id: &str, instance: &str) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_endpoints SET claimed_by = NULL, claimed_until = NULL
             WHERE org_id = $1 AND id = $2 AND claimed_by = $3",
        )
        .bind(&self.org)
        .bind(id)
        .bind(instance)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the endpoint's cursor to `seq` after its message was delivered (`attempt`
    /// recorded) or when the events up to `seq` are none it wants (`attempt` `None`). Only
    /// while `instance` holds the claim; returns whether it did.
    pub async fn webhook_advanced(
        &self,
        id: &str,
        instance: &str,
        seq: i64,
        attempt: Option<AttemptRecord<'_>>,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET delivered_seq = $4, state = 'active', head_attempts = 0,
                 head_first_failed_at = NULL, next_attempt_at = NULL, last_error = NULL
             WHERE org_id = $1 AND id = $2 AND claimed_by = $3 AND delivered_seq < $4",
        )
        .bind(&self.org)
        .bind(id)
        .bind(instance)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(attempt) = attempt {
            self.insert_attempt(&mut tx, id, &attempt, "delivered", now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a failed attempt at the head message and when to try again; `failing`:
    /// the endpoint is marked failing (the retry schedule ran out).
    #[allow(clippy::too_many_arguments)]
    pub async fn webhook_attempt_failed(
        &self,
        id: &str,
        instance: &str,
        attempt: AttemptRecord<'_>,
        first_failed_at: OffsetDateTime,
        next_attempt_at: OffsetDateTime,
        failing: bool,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET head_attempts = $4, head_first_failed_at = $5, next_attempt_at = $6,
                 last_error = $7, state = CASE WHEN $8 = 1 THEN 'failing' ELSE state END
             WHERE org_id = $1 AND id = $2 AND claimed_by = $3",
        )
        .bind(&self.org)
        .bind(id)
        .bind(instance)
        .bind(i64::from(attempt.attempt))
        .bind(ts(first_failed_at))
        .bind(due(next_attempt_at))
        .bind(attempt.error)
        .bind(i64::from(failing))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.insert_attempt(&mut tx, id, &attempt, "failed", now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records an attempt outside the outbox's order (a test message); returns it as the
    /// delivery log shows it.
    pub async fn record_webhook_attempt(
        &self,
        id: &str,
        attempt: AttemptRecord<'_>,
        now: OffsetDateTime,
    ) -> Result<WebhookAttempt> {
        let outcome = if attempt.error.is_none() { "delivered" } else { "failed" };
        let mut tx = self.begin_write().await?;
        self.insert_attempt(&mut tx, id, &attempt, outcome, now).await?;
        tx.commit().await?;
        Ok(WebhookAttempt {
            message_id: attempt.message_id.to_owned(),
            event_type: attempt.event_type.to_owned(),
            seq: attempt.seq,
            attempt: attempt.attempt,
            at: ts(now),
            status_code: attempt.status_code,
            outcome: outcome.to_owned(),
            error: attempt.error.map(str::to_owned),
        })
    }

    async fn insert_attempt(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &str,
        attempt: &AttemptRecord<'_>,
        outcome: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_attempts (org_id, endpoint_id, message_id, event_type, seq, attempt, at, status_code,
                 outcome, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&self.org)
        .bind(id)
        .bind(attempt.message_id)
        .bind(attempt.event_type)
        .bind(attempt.seq)
        .bind(i64::from(attempt.attempt))
        .bind(ts(now))
        .bind(attempt.status_code.map(i64::from))
        .bind(outcome)
        .bind(attempt.error)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Queues an e-mail for this organisation.
    pub async fn queue_notification(&self, mail: &NewNotification, now: OffsetDateTime) -> Result<String> {
        let mut tx = self.begin_write().await?;
        let id = self.insert_notification(&mut tx, mail, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn insert_notification(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        mail: &NewNotification,
        now: OffsetDateTime,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO notifications (id, org_id, kind, recipients, subject, body, created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&self.org)
        .bind(&mail.kind)
        .bind(serde_json::to_string(&mail.recipients).unwrap_or_else(|_| "[]".into()))
        .bind(&mail.subject)
        .bind(&mail.body)
        .bind(ts(now))
        .bind(due(now))
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }

    /// This organisation's e-mails, newest first.
    pub async fn notifications(&self, limit: u32) -> Result<Vec<Notification>> {
        let sql =
            format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE org_id = $1 ORDER BY id DESC LIMIT $2");
        let rows: Vec<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&self.org)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(notification_from_row).collect()
    }

    /// Claims up to `limit` e-mails due at `now` for `instance` until `until`, one
    /// conditional update each. Platform-wide.
    pub async fn claim_notifications(
        &self,
        instance: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let candidates: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1
                 AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(due(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for (id,) in candidates {
            let done = sqlx::query(
                "UPDATE notifications SET claimed_by = $2, claimed_until = $3
                 WHERE id = $1 AND status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $4)",
            )
            .bind(&id)
            .bind(instance)
            .bind(due(until))
            .bind(due(now))
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1");
                let row: NotificationRow =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&id).fetch_one(&self.pool).await?;
                claimed.push(notification_from_row(row)?);
            }
        }
        Ok(claimed)
    }

    /// Records how sending a claimed e-mail ended: sent (`error` `None`), to be retried at
    /// `retry_at`, or given up (`retry_at` `None`). Platform-wide, by id.
    pub async fn notification_attempted(
        &self,
        id: &str,
        instance: &str,
        error: Option<&str>,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let status = match (error, retry_at) {
            (None, _) => "sent",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        sqlx::query(
            "UPDATE notifications SET status = $3, attempts = attempts + 1, last_error = $4,
                 next_attempt_at = COALESCE($5, next_attempt_at), sent_at = $6, claimed_by = NULL, claimed_until = NULL
             WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(instance)
        .bind(status)
        .bind(error)
        .bind(retry_at.map(due))
        .bind(error.is_none().then(|| ts(now)))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the alerts have read and said; on first use they start at the newest event (an
    /// organisation's history is not mailed).
    pub async fn alert_state(&self) -> Result<AlertState> {
        sqlx::query(
            "INSERT INTO alert_state (org_id, event_cursor)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) FROM events WHERE org_id = $1)) ON CONFLICT (org_id) DO NOTHING",
        )
        .bind(&self.org)
        .execute(&self.pool)
        .await?;
        let (event_cursor, failing_since, failure_mailed_at, secret_warned): (
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = sqlx::query_as(
            "SELECT event_cursor, failing_since, failure_mailed_at, secret_warned FROM alert_state WHERE org_id = $1",
        )
        .bind(&self.org)
        .fetch_one(&self.pool)
        .await?;
        Ok(AlertState {
            event_cursor,
            failing_since: failing_since.as_deref().map(parse_ts).transpose()?,
            failure_mailed_at: failure_mailed_at.as_deref().map(parse_ts).transpose()?,
            secret_warned,
        })
    }

    /// Moves the alerts on from `before` to `after` and queues `mails`, in one transaction,
    /// only if no other instance moved them since (`false`: it did; nothing written).
    pub async fn advance_alerts(
        &self,
        before: &AlertState,
        after: &AlertState,
        mails: &[NewNotification],
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE alert_state SET event_cursor = $3, failing_since = $4, failure_mailed_at = $5, secret_warned = $6
             WHERE org_id = $1 AND event_cursor = $2
               AND failing_since IS NOT DISTINCT FROM $7 AND failure_mailed_at IS NOT DISTINCT FROM $8
               AND secret_warned IS NOT DISTINCT FROM $9",
        )
        .bind(&self.org)
        .bind(before.event_cursor)
        .bind(after.event_cursor)
        .bind(after.failing_since.map(ts))
        .bind(after.failure_mailed_at.map(ts))
        .bind(after.secret_warned.as_deref())
        .bind(before.failing_since.map(ts))
        .bind(before.failure_mailed_at.map(ts))
        .bind(before.secret_warned.as_deref())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for mail in mails {
            self.insert_notification(&mut tx, mail, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

impl Store {
    /// The enabled organisations with events their alerts have not read (or that have no
    /// alert state yet). Platform-wide.
    pub async fn orgs_with_unread_alert_events(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT o.id FROM orgs o LEFT JOIN alert_state a ON a.org_id = o.id
             WHERE o.disabled_at IS NULL
               AND (a.org_id IS NULL OR EXISTS (SELECT 1 FROM events e WHERE e.org_id = o.id AND e.seq > a.event_cursor))",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(org,)| org).collect())
    }
}

impl Store {
    /// This organisation's events of `kinds` after `after`, oldest first, at most `limit`, and
    /// the newest event of any kind the same read saw: a reader that got fewer than `limit`
    /// may move its cursor there, having missed none of `kinds`. One statement, so one
    /// snapshot on PostgreSQL (and within an organisation sequence order is commit order:
    /// [`Store::begin_event_write`]).
    pub async fn events_of_kinds(&self, after: i64, kinds: &[&str], limit: u32) -> Result<(Vec<crate::Event>, i64)> {
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 4)).collect();
        let in_kinds = if kinds.is_empty() { "NULL".to_owned() } else { placeholders.join(", ") };
        let sql = format!(
            "WITH top AS (SELECT COALESCE(MAX(seq), $2) AS top FROM events WHERE org_id = $1)
             SELECT e.seq, e.at, e.kind, e.user_id, e.payload, top.top FROM top
             LEFT JOIN events e ON e.org_id = $1 AND e.seq > $2 AND e.seq <= top.top AND e.kind IN ({in_kinds})
             ORDER BY e.seq LIMIT $3"
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&self.org).bind(after).bind(i64::from(limit));
        for kind in kinds {
            query = query.bind(*kind);
        }
        type Row = (Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>, i64);
        let rows: Vec<Row> = query.fetch_all(&self.pool).await?;
        let top = rows.first().map_or(after, |r| r.5).max(after);
        let events = rows
            .into_iter()
            .filter_map(|(seq, at, kind, user_id, payload, _)| {
                Some(crate::runs::event_from_row(seq?, at?, kind?, user_id?, payload?))
            })
            .collect();
        Ok((events, top))
    }
}

impl Store {
    /// For `/metrics`: this organisation's webhook endpoints by state and e-mails by status.
    pub async fn notify_stats(&self) -> Result<(Vec<(String, u64)>, Vec<(String, u64)>)> {
        let count = |rows: Vec<(String, i64)>| rows.into_iter().map(|(k, n)| (k, n.max(0) as u64)).collect();
        let endpoints: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM webhook_endpoints WHERE org_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(&self.org)
        .fetch_all(&self.pool)
        .await?;
        let mails: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM notifications WHERE org_id = $1 GROUP BY status ORDER BY status",
        )
        .bind(&self.org)
        .fetch_all(&self.pool)
        .await?;
        Ok((count(endpoints), count(mails)))
    }
}
