//! Telling people what happened: webhooks signed the Standard Webhooks way and delivered
//! under an address policy, e-mail over SMTP, and the alert rules that decide what is mailed
//! (pure: state and events in, state and e-mails out).

pub mod alerts;
pub mod mail;
pub mod policy;
pub mod signing;
pub mod webhook;

pub use alerts::{AlertInput, Alerts, Language, SyncEventSeen};
pub use mail::{Mailer, SmtpSettings};
pub use policy::check_url;
pub use signing::{new_secret, sign};
pub use webhook::{RetrySchedule, Sent, WebhookClient};

/// `head`, then each cause of `error` (reqwest's and lettre's own texts name only the outer one).
pub(crate) fn with_causes(mut head: String, error: &dyn std::error::Error) -> String {
    let mut source = error.source();
    while let Some(cause) = source {
        head.push_str(": ");
        head.push_str(&cause.to_string());
        source = cause.source();
    }
    head
}

/// Every event type a webhook can receive, as `--events` and the API name them.
pub const EVENT_TYPES: [&str; 8] = [
    "user.created",
    "user.updated",
    "user.enabled",
    "user.disabled",
    "user.removed",
    "sync.succeeded",
    "sync.failed",
    "sync.held",
];
