//! Retries as Microsoft's SDKs do them (Kiota's retry handler, MSAL): 429, 503 and 504 are
//! retried honouring `Retry-After` (else jittered exponential backoff) within a time
//! budget; other server errors at most three times; a persistent failure ends the run.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::{ErrorKind, GraphError, Traffic};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included, for throttling (429), 503, 504 and
    /// transport failures.
    pub max_attempts: u32,
    /// Retries of other server errors (500, 502, …), which rarely pass by waiting.
    pub server_error_retries: u32,
    /// Total time one request may take with its retries: no retry starts after it.
    pub budget: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Timeout of each HTTP request.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            server_error_retries: 3,
            // A sync against a Graph that keeps failing fails within about half a minute.
            budget: Duration::from_secs(30),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Worth retrying, after the given delay if the server named one.
    Retry(GraphError, Option<Duration>),
    /// A server error other than 503/504: retried a few times only.
    ServerError(GraphError),
    Fatal(GraphError),
    /// 401 from Graph: the caller may fetch a new token once.
    TokenRejected(GraphError),
}

impl Attempt {
    pub(crate) fn transport(e: reqwest::Error) -> Attempt {
        let target = e.url().and_then(|u| u.host_str()).unwrap_or("the server").to_owned();
        let error = if e.is_timeout() {
            GraphError::new(
                ErrorKind::Timeout,
                format!("{target} did not answer in time. Check the network path to Microsoft; the run will retry."),
                e.to_string(),
            )
        } else {
            GraphError::new(
                ErrorKind::Unreachable,
                format!(
                    "Could not reach {target}. Check DNS, proxy and firewall: SafeGPT needs outbound HTTPS to the \
                     Entra login host and Microsoft Graph."
                ),
                e.to_string(),
            )
        };
        // A request that timed out is retried like a server error (a few times): each try
        // already took a whole timeout.
        if e.is_timeout() { Attempt::ServerError(error) } else { Attempt::Retry(error, None) }
    }

    pub(crate) fn into_error(self) -> GraphError {
        match self {
            Attempt::Retry(e, _) | Attempt::ServerError(e) | Attempt::Fatal(e) | Attempt::TokenRejected(e) => e,
        }
    }
}

/// `Retry-After` as decimal seconds (Graph sends e.g. `2.128`) or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::UNIX_EPOCH)
            .ok()?
            .saturating_sub(std::time::SystemTime::now().duration_since(std::time::SystemTime::UNIX_EPOCH).ok()?),
    )
}

pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(policy.max_delay);
    // Jitter between half and the full delay, so many clients do not retry in step.
    capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
}

pub(crate) async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    traffic: &Traffic,
    mut attempt_once: F,
) -> Result<T, Attempt>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut server_errors = 0u32;
    loop {
        let (error, after, out_of_tries) = match attempt_once().await {
            Err(Attempt::Retry(error, after)) => (error, after, false),
            Err(Attempt::ServerError(error)) => {
                server_errors += 1;
                (error, None, server_errors > policy.server_error_retries)
            }
            other => return other,
        };
        attempts += 1;
        let wait = after.unwrap_or_else(|| backoff(policy, attempts));
        if out_of_tries || attempts >= policy.max_attempts || started.elapsed() + wait > policy.budget {
            let mut error = error;
            error.detail = format!(
                "{}; gave up after {attempts} attempt(s) in {:.1} s",
                error.detail,
                started.elapsed().as_secs_f64()
            );
            return Err(Attempt::Fatal(error));
        }
        traffic.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(kind = error.kind.as_str(), wait_ms = wait.as_millis() as u64, attempt = attempts, detail = %error.detail, "retrying");
        tokio::time::sleep(wait).await;
    }
}

/// What a failed answer's HTTP status asks of the retry loop.
pub(crate) fn attempt_for(status: u16, error: GraphError, retry_after: Option<Duration>) -> Attempt {
    match status {
        429 | 503 | 504 => Attempt::Retry(error, retry_after),
        500..=599 => Attempt::ServerError(error),
        _ => Attempt::Fatal(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_decimal_seconds_and_dates() {
        assert_eq!(parse_retry_after("2.128"), Some(Duration::from_millis(2128)));
        assert_eq!(parse_retry_after("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = backoff(&p, 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let late = backoff(&p, 12);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
        }
    }
}
