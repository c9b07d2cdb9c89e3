//! `/metrics` in the Prometheus text format, `/readyz`.
//!
//! Most numbers come from the database at scrape time (runs, users, seats, the secret's
//! expiry, the last successful sync), so every instance on one database reports the same
//! directory; Graph traffic is counted per process.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use safegpt_graph::ProcessTraffic;

use super::AppState;
use super::auth::ApiAdmin;
use super::error::ApiError;

const DURATION_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> =
            labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.0, "{name}{labels} {value}");
    }
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!("readyz: the database does not answer: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "database unreachable"})))
                .into_response()
        }
    }
}

/// Needs an administrator or an API token, like every other route (Prometheus sends one
/// with `authorization: {credentials: sgpt_…}`).
pub async fn metrics(State(state): State<AppState>, _: ApiAdmin) -> Result<Response, ApiError> {
    let stats = state.store.directory_stats().await?;
    let (settings, _) = state.store.settings().await?;
    let seats_used = state.store.seats_used().await?;
    let now = state.now();
    let mut out = Exposition(String::new());

    out.family("safegpt_sync_runs_total", "counter", "Sync runs by outcome (all instances, all time).");
    for (status, n) in &stats.runs_by_status {
        out.sample("safegpt_sync_runs_total", &[("status", status)], *n as f64);
    }
    out.family("safegpt_sync_run_duration_seconds", "histogram", "Duration of finished sync runs (the last 10000).");
    for le in DURATION_BUCKETS {
        let n = stats.run_durations.iter().filter(|d| **d <= le).count();
        out.sample("safegpt_sync_run_duration_seconds_bucket", &[("le", &le.to_string())], n as f64);
    }
    let count = stats.run_durations.len() as f64;
    out.sample("safegpt_sync_run_duration_seconds_bucket", &[("le", "+Inf")], count);
    out.sample("safegpt_sync_run_duration_seconds_sum", &[], stats.run_durations.iter().sum());
    out.sample("safegpt_sync_run_duration_seconds_count", &[], count);

    out.family("safegpt_users", "gauge", "Users of the directory by status.");
    for status in ["active", "disabled", "awaiting_license"] {
        let n = stats.users_by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        out.sample("safegpt_users", &[("status", status)], n as f64);
    }
    out.family("safegpt_seats_used", "gauge", "Seats held by active and disabled users.");
    out.sample("safegpt_seats_used", &[], seats_used as f64);
    out.family("safegpt_seats_total", "gauge", "Seats of the deployment (0 = unlimited).");
    out.sample("safegpt_seats_total", &[], f64::from(settings.seats));

    let traffic = ProcessTraffic::get();
    out.family(
        "safegpt_graph_requests_total",
        "counter",
        "Requests to Entra and Microsoft Graph by this process, by HTTP status.",
    );
    for (status, n) in traffic.by_status() {
        out.sample("safegpt_graph_requests_total", &[("status", &status)], n as f64);
    }
    out.family("safegpt_graph_throttled_total", "counter", "Requests Microsoft Graph answered with 429 (retried).");
    out.sample("safegpt_graph_throttled_total", &[], traffic.throttled.load(Ordering::Relaxed) as f64);

    if let Some(expires) = settings.secret_expiry() {
        // The secret works through its expiry date (UTC).
        let end = expires.next_day().unwrap_or(expires).midnight().assume_utc();
        out.family(
            "safegpt_secret_expiry_seconds",
            "gauge",
            "Seconds until the client secret expires (negative: expired).",
        );
        out.sample("safegpt_secret_expiry_seconds", &[], (end - now).as_seconds_f64().round());
    }
    if let Some(at) = stats.last_success {
        out.family(
            "safegpt_last_successful_sync_timestamp_seconds",
            "gauge",
            "When the last successful sync finished.",
        );
        out.sample("safegpt_last_successful_sync_timestamp_seconds", &[], at.unix_timestamp() as f64);
    }
    if let (true, Some(at)) = (settings.active, state.store.next_run_at().await?) {
        out.family("safegpt_next_sync_timestamp_seconds", "gauge", "When the scheduler starts the next sync.");
        out.sample("safegpt_next_sync_timestamp_seconds", &[], at.unix_timestamp() as f64);
    }
    let mut response = out.0.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}
