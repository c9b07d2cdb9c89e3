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

use axum::http::HeaderMap;
use safegpt_app::Principal;
use safegpt_core::Settings;
use safegpt_store::{DirectoryStats, Store};
use time::OffsetDateTime;

use super::AppState;
use super::auth::authenticate;
use super::error::ApiError;

const DURATION_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample<V: AsRef<str>>(&mut self, name: &str, labels: &[(&str, V)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.as_ref().replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
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

/// What `/metrics` reports of one organisation.
struct OrgMetrics {
    slug: String,
    stats: DirectoryStats,
    settings: Settings,
    seats_used: u64,
    next_run_at: Option<OffsetDateTime>,
    /// Webhook endpoints by state, e-mails by status.
    webhooks: Vec<(String, u64)>,
    mails: Vec<(String, u64)>,
}

async fn org_metrics(store: &Store) -> Result<OrgMetrics, ApiError> {
    let (webhooks, mails) = store.notify_stats().await?;
    Ok(OrgMetrics {
        slug: store.org_slug().to_owned(),
        stats: store.directory_stats().await?,
        settings: store.settings().await?.0,
        seats_used: store.seats_used().await?,
        next_run_at: store.next_run_at().await?,
        webhooks,
        mails,
    })
}

/// Needs an administrator or an API token, like every other route (Prometheus sends one
/// with `authorization: {credentials: sgpt_…}`). An organisation's token gets its
/// organisation's series; a platform token (or a platform operator who opened no
/// organisation) every organisation's, each with an `org` label.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = authenticate(&state, &headers).await?.ok_or_else(ApiError::unauthorized)?;
    let platform_wide = matches!(
        &who.principal,
        Principal::Token { org: None, .. } | Principal::Admin { org: None, platform: true, .. }
    );
    let orgs = if platform_wide {
        let mut all = Vec::new();
        for org in state.store.orgs().await? {
            all.push(org_metrics(&state.store.for_org(&org.slug)).await?);
        }
        all
    } else {
        let app = state.platform.scope(&who.principal, None).await?;
        vec![org_metrics(app.store()).await?]
    };
    let now = state.now();
    let mut out = Exposition(String::new());
    // The `org` label only where the series are of several organisations.
    let labels = |org: &OrgMetrics, rest: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut labels: Vec<(&'static str, String)> =
            if platform_wide { vec![("org", org.slug.clone())] } else { Vec::new() };
        labels.extend(rest.iter().cloned());
        labels
    };

    out.family("safegpt_sync_runs_total", "counter", "Sync runs by outcome (all instances, all time).");
    for org in &orgs {
        for (status, n) in &org.stats.runs_by_status {
            out.sample("safegpt_sync_runs_total", &labels(org, &[("status", status.clone())]), *n as f64);
        }
    }
    out.family("safegpt_sync_run_duration_seconds", "histogram", "Duration of finished sync runs (the last 10000).");
    for org in &orgs {
        let durations = &org.stats.run_durations;
        for le in DURATION_BUCKETS {
            let n = durations.iter().filter(|d| **d <= le).count();
            out.sample("safegpt_sync_run_duration_seconds_bucket", &labels(org, &[("le", le.to_string())]), n as f64);
        }
        let count = durations.len() as f64;
        out.sample("safegpt_sync_run_duration_seconds_bucket", &labels(org, &[("le", "+Inf".into())]), count);
        out.sample("safegpt_sync_run_duration_seconds_sum", &labels(org, &[]), durations.iter().sum());
        out.sample("safegpt_sync_run_duration_seconds_count", &labels(org, &[]), count);
    }

    out.family("safegpt_users", "gauge", "Users of the directory by status.");
    for org in &orgs {
        for status in ["active", "disabled", "awaiting_license"] {
            let n = org.stats.users_by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            out.sample("safegpt_users", &labels(org, &[("status", status.into())]), n as f64);
        }
    }
    out.family("safegpt_seats_used", "gauge", "Seats held by active and disabled users.");
    for org in &orgs {
        out.sample("safegpt_seats_used", &labels(org, &[]), org.seats_used as f64);
    }
    out.family("safegpt_seats_total", "gauge", "Seats of the organisation (0 = unlimited).");
    for org in &orgs {
        out.sample("safegpt_seats_total", &labels(org, &[]), f64::from(org.settings.seats));
    }

    // This process's Graph traffic is every organisation's: only the platform sees it, or
    // the one organisation of a deployment that has one.
    if platform_wide || state.store.orgs().await?.len() == 1 {
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
        out.sample(
            "safegpt_graph_throttled_total",
            &[] as &[(&str, &str)],
            traffic.throttled.load(Ordering::Relaxed) as f64,
        );
    }

    let expiring: Vec<_> = orgs.iter().filter_map(|o| o.settings.secret_expiry().map(|e| (o, e))).collect();
    if !expiring.is_empty() {
        out.family(
            "safegpt_secret_expiry_seconds",
            "gauge",
            "Seconds until the client secret expires (negative: expired).",
        );
    }
    for (org, expires) in expiring {
        // The secret works through its expiry date (UTC).
        let end = expires.next_day().unwrap_or(expires).midnight().assume_utc();
        out.sample("safegpt_secret_expiry_seconds", &labels(org, &[]), (end - now).as_seconds_f64().round());
    }
    let succeeded: Vec<_> = orgs.iter().filter_map(|o| o.stats.last_success.map(|at| (o, at))).collect();
    if !succeeded.is_empty() {
        out.family(
            "safegpt_last_successful_sync_timestamp_seconds",
            "gauge",
            "When the last successful sync finished.",
        );
    }
    for (org, at) in succeeded {
        out.sample("safegpt_last_successful_sync_timestamp_seconds", &labels(org, &[]), at.unix_timestamp() as f64);
    }
    let scheduled: Vec<_> =
        orgs.iter().filter_map(|o| o.next_run_at.filter(|_| o.settings.active).map(|at| (o, at))).collect();
    if !scheduled.is_empty() {
        out.family("safegpt_next_sync_timestamp_seconds", "gauge", "When the scheduler starts the next sync.");
    }
    for (org, at) in scheduled {
        out.sample("safegpt_next_sync_timestamp_seconds", &labels(org, &[]), at.unix_timestamp() as f64);
    }
    out.family(
        "safegpt_webhook_endpoints",
        "gauge",
        "Webhook endpoints by state (failing: a message failed for a day).",
    );
    for org in &orgs {
        for (state, n) in &org.webhooks {
            out.sample("safegpt_webhook_endpoints", &labels(org, &[("state", state.clone())]), *n as f64);
        }
    }
    out.family("safegpt_notifications", "gauge", "E-mail alerts by status (pending: not sent yet; failed: given up).");
    for org in &orgs {
        for (status, n) in &org.mails {
            out.sample("safegpt_notifications", &labels(org, &[("status", status.clone())]), *n as f64);
        }
    }
    let mut response = out.0.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}
