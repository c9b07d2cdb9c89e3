//! Sending one webhook message, and when to try a failed one again.

use std::time::Duration;

use secrecy::SecretString;
use time::OffsetDateTime;
use url::Url;

use crate::policy::{check_url, is_loopback_host, is_private_literal, resolver};
use crate::signing::sign;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The endpoint answered 2xx.
    Delivered { status: u16 },
    /// Anything else: an error answer, a redirect (never followed), no answer in time, no
    /// connection, or an address the policy refuses.
    Failed { status: Option<u16>, error: String },
}

impl Sent {
    /// The endpoint's HTTP status, if it answered, and the error, if it failed.
    pub fn status_and_error(&self) -> (Option<u16>, Option<&str>) {
        match self {
            Sent::Delivered { status } => (Some(*status), None),
            Sent::Failed { status, error } => (*status, Some(error)),
        }
    }
}

/// The HTTP client of webhook deliveries: no redirects, a timeout, and the address policy
/// applied where names are resolved.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private: bool,
}

/// The most of an endpoint's answer kept in the delivery log.
const ERROR_BODY_CHARS: usize = 200;

impl WebhookClient {
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Self, String> {
        safegpt_graph::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("SafeGPT-Directory-Webhooks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the names itself, past the address rules.
            .no_proxy()
            .dns_resolver(resolver(allow_private))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(WebhookClient { http, allow_private })
    }

    /// Posts `body` to `url`, signed with `secret` as message `message_id` at `now`.
    pub async fn send(
        &self,
        url: &str,
        secret: &SecretString,
        message_id: &str,
        now: OffsetDateTime,
        body: &[u8],
    ) -> Sent {
        let failed = |error: String| Sent::Failed { status: None, error };
        // Again at each send: an address literal is never resolved, so the resolver's check
        // would not see it.
        let url: Url = match check_url(url, self.allow_private) {
            Ok(url) => url,
            Err(e) => return failed(format!("endpoint refused: {e}")),
        };
        // What a loopback or private service answers is not shown to whoever registered the
        // endpoint (an organisation's administrator must not read the server's neighbours).
        let show_answers = url.scheme() == "https" && !is_loopback_host(&url) && !is_private_literal(&url);
        let timestamp = now.unix_timestamp();
        let signature = match sign(secret, message_id, timestamp, body) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec());
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status();
        if status.is_success() {
            return Sent::Delivered { status: status.as_u16() };
        }
        let error = if status.is_redirection() {
            let to = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("?").to_owned();
            format!("HTTP {} redirect to {to}: redirects are not followed; register the final URL", status.as_u16())
        } else if show_answers {
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(ERROR_BODY_CHARS).collect();
            format!("HTTP {}: {}", status.as_u16(), text.trim())
        } else {
            format!("HTTP {}", status.as_u16())
        };
        Sent::Failed { status: Some(status.as_u16()), error }
    }
}

/// The error with its causes.
fn describe(e: &reqwest::Error) -> String {
    let head = if e.is_timeout() { "no answer in time".to_owned() } else { e.to_string() };
    crate::with_causes(head, e)
}

/// When a failed message is tried again: after each failure the next delay of `delays` (the
/// last one repeating), until `give_up_after` since its first failure; then the endpoint is
/// failing and the message is tried every `failing_every` (nothing is dropped: once the
/// endpoint answers again, delivery goes on in order).
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    pub give_up_after: Duration,
    pub failing_every: Duration,
}

impl Default for RetrySchedule {
    /// First retry within seconds, then growing, for a day (5 s, 30 s, 2 min, 10 min, 30 min,
    /// 1 h, 2 h, 4 h, 8 h, then 8 h).
    fn default() -> Self {
        let secs = Duration::from_secs;
        RetrySchedule {
            delays: vec![
                secs(5),
                secs(30),
                secs(120),
                secs(600),
                secs(1800),
                secs(3600),
                secs(7200),
                secs(14400),
                secs(28800),
            ],
            give_up_after: secs(24 * 3600),
            failing_every: secs(3600),
        }
    }
}

impl RetrySchedule {
    /// After failed attempt number `attempts` (1 = the first) of a message that first
    /// failed at `first_failed`: when to try again, and whether the endpoint is now failing.
    pub fn after(&self, attempts: u32, first_failed: OffsetDateTime, now: OffsetDateTime) -> (OffsetDateTime, bool) {
        let failing = now - first_failed >= self.give_up_after;
        if failing {
            return (now + self.failing_every, true);
        }
        let index = (attempts.max(1) as usize - 1).min(self.delays.len().saturating_sub(1));
        let delay = self.delays.get(index).copied().unwrap_or(self.failing_every);
        (now + delay, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retries_start_within_seconds_grow_and_give_up_after_a_day() {
        let schedule = RetrySchedule::default();
        let t0 = datetime!(2026-12-03 10:00 UTC);
        assert_eq!(schedule.after(1, t0, t0), (t0 + Duration::from_secs(5), false));
        assert_eq!(schedule.after(2, t0, t0), (t0 + Duration::from_secs(30), false));
        let late = t0 + Duration::from_secs(20 * 3600);
        assert_eq!(schedule.after(12, t0, late), (late + Duration::from_secs(28800), false));
        let day = t0 + Duration::from_secs(24 * 3600);
        assert_eq!(schedule.after(13, t0, day), (day + Duration::from_secs(3600), true));
        // The whole schedule fits in the day: about ten attempts before failing.
        let mut at = t0;
        let mut attempts = 1;
        while !schedule.after(attempts, t0, at).1 {
            at = schedule.after(attempts, t0, at).0;
            attempts += 1;
        }
        assert!((9..=12).contains(&attempts), "{attempts} attempts");
    }
}
