//! `safegpt webhooks …` and `safegpt notifications …`.

use safegpt_app::{App, NotificationView, WebhookAttemptView, WebhookView};

use super::args::{NotificationsCommand, WebhooksCommand};
use super::commands::{OPERATOR, print_json};
use super::exit::{self, Failure};

const LOG_LIMIT: u32 = 100;

fn print_webhook(w: &WebhookView) {
    let waiting = match (&w.next_attempt_at, w.attempts) {
        (Some(at), n) if n > 0 => format!(
            " ({n} failed attempt(s), next {}: {})",
            at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            w.last_error.as_deref().unwrap_or("")
        ),
        _ => String::new(),
    };
    println!("{}  {:<8} {}  [{}]{waiting}", w.id, w.state, w.url, w.events.join(","));
}

fn print_attempt(a: &WebhookAttemptView) {
    let status = a.status_code.map_or_else(|| "-".to_owned(), |s| s.to_string());
    let error = a.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default();
    println!("{}  {:<9} {:>3}  #{} {} {}{error}", a.at, a.outcome, status, a.attempt, a.event_type, a.message_id);
}

pub async fn webhooks(app: &App, cmd: WebhooksCommand) -> Result<u8, Failure> {
    match cmd {
        WebhooksCommand::Create { url, events, json } => {
            let created = app.create_webhook(&OPERATOR, &url, events.as_deref()).await?;
            if json {
                print_json(&created);
            } else {
                println!("Webhook endpoint {} created for {}.", created.webhook.id, created.webhook.url);
                println!("Signing secret (shown once; verify webhook-signature with it):");
                println!("{}", created.secret);
            }
        }
        WebhooksCommand::List(f) => {
            let list = app.webhooks(&OPERATOR).await?;
            if f.json {
                print_json(&list);
            } else if list.is_empty() {
                println!("No webhook endpoints. Add one with `safegpt webhooks create --url https://…`.");
            } else {
                list.iter().for_each(print_webhook);
            }
        }
        WebhooksCommand::Delete { id } => {
            let gone = app.delete_webhook(&OPERATOR, &id).await?;
            println!("Webhook endpoint {} ({}) deleted.", gone.id, gone.url);
        }
        WebhooksCommand::Deliveries { id, json } => {
            let log = app.webhook_attempts(&OPERATOR, &id, LOG_LIMIT).await?;
            if json {
                print_json(&log);
            } else {
                log.iter().for_each(print_attempt);
            }
        }
        WebhooksCommand::Test { id, json } => {
            let attempt = app.send_test_webhook(&OPERATOR, &id).await?;
            if json {
                print_json(&attempt);
            } else {
                print_attempt(&attempt);
            }
            if attempt.outcome != "delivered" {
                return Ok(exit::FAILED);
            }
        }
    }
    Ok(exit::OK)
}

fn print_notification(n: &NotificationView) {
    let error = n.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default();
    println!("{}  {:<7} {:<18} {}  to {}{error}", n.created_at, n.status, n.kind, n.subject, n.recipients.join(", "));
}

pub async fn notifications(app: &App, cmd: NotificationsCommand) -> Result<u8, Failure> {
    let NotificationsCommand::List(f) = cmd;
    let list = app.notifications(&OPERATOR, LOG_LIMIT).await?;
    if f.json {
        print_json(&list);
    } else {
        if !app.mail_configured() {
            eprintln!(
                "SAFEGPT_SMTP_URL is not set here; a `safegpt serve` without it queues alerts and does not send them."
            );
        }
        list.iter().for_each(print_notification);
    }
    Ok(exit::OK)
}
