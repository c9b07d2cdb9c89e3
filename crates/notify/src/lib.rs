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
