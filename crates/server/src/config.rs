//! Operator settings, in rising precedence: built-in defaults, a TOML file (`--config FILE`
//! or `SAFEGPT_CONFIG`), `SAFEGPT_*` environment variables, command-line flags.
//!
//! ```toml
//! data_dir = "/var/lib/safegpt"
//! database_url = "postgres://safegpt@db.internal/safegpt"
//! listen = "0.0.0.0:8080"
//! public_url = "https://safegpt.example.org"
//! log = "info"
//! log_format = "json"
//! lease_ttl_secs = 60
//! graph_retry_budget_secs = 25
//! graph_timeout_secs = 30
//! retention_run_changes_days = 180   # 0 keeps for ever
//! retention_audit_days = 180
//! retention_events_days = 30
//! full_read_slice = 5000             # Entra users a full read plans and writes at a time
//! max_concurrent_syncs = 4           # scheduled syncs at once, over every organisation
//! ```
//! The master key is not a file setting: give it as `SAFEGPT_MASTER_KEY` or keep
//! `DATA_DIR/master.key`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use safegpt_app::{NotifySettings, Operations, Retention};
use safegpt_graph::RetryPolicy;
use safegpt_notify::SmtpSettings;
use safegpt_sync::{LeaseSettings, SliceSize};
use serde::Deserialize;

use crate::cli::args::{Cli, Command};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub lease_ttl_secs: Option<u64>,
    pub graph_retry_budget_secs: Option<f64>,
    pub graph_timeout_secs: Option<f64>,
    pub retention_run_changes_days: Option<u32>,
    pub retention_audit_days: Option<u32>,
    pub retention_events_days: Option<u32>,
    pub full_read_slice: Option<usize>,
    pub max_concurrent_syncs: Option<usize>,
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--config: cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("--config: {} is not a valid configuration: {e}", path.display()))
    }

    /// The file's value for a setting named by its environment variable.
    fn value_of(&self, env: &str) -> Option<String> {
        match env {
            "SAFEGPT_LOG" => self.log.clone(),
            "SAFEGPT_LOG_FORMAT" => self.log_format.clone(),
            "SAFEGPT_LEASE_TTL_SECS" => self.lease_ttl_secs.map(|v| v.to_string()),
            "SAFEGPT_GRAPH_RETRY_BUDGET_SECS" => self.graph_retry_budget_secs.map(|v| v.to_string()),
            "SAFEGPT_GRAPH_TIMEOUT_SECS" => self.graph_timeout_secs.map(|v| v.to_string()),
            "SAFEGPT_RETENTION_RUN_CHANGES_DAYS" => self.retention_run_changes_days.map(|v| v.to_string()),
            "SAFEGPT_RETENTION_AUDIT_DAYS" => self.retention_audit_days.map(|v| v.to_string()),
            "SAFEGPT_RETENTION_EVENTS_DAYS" => self.retention_events_days.map(|v| v.to_string()),
            "SAFEGPT_FULL_READ_SLICE" => self.full_read_slice.map(|v| v.to_string()),
            "SAFEGPT_MAX_CONCURRENT_SYNCS" => self.max_concurrent_syncs.map(|v| v.to_string()),
            _ => None,
        }
    }
}

static FILE: OnceLock<FileConfig> = OnceLock::new();

/// A setting read outside clap: its environment variable, else the config file.
pub fn setting(env: &str) -> Option<String> {
    std::env::var(env).ok().or_else(|| FILE.get().and_then(|f| f.value_of(env)))
}

/// What the operations need from the operator: Graph's retry policy, the sync lease, the
/// retention periods and the size of a full read's slices.
pub fn operations() -> Result<Operations, String> {
    Ok(Operations {
        retry: retry_policy()?,
        lease: lease_settings()?,
        retention: retention()?,
        full_read_slice: full_read_slice()?,
        max_concurrent_syncs: max_concurrent_syncs()?,
        notify: notify_settings()?,
    })
}

/// `SAFEGPT_SMTP_URL` and `SAFEGPT_SMTP_FROM` (e-mail alerts; unset: queued, not sent) and
/// `SAFEGPT_WEBHOOK_ALLOW_PRIVATE` (webhook endpoints on private addresses).
fn notify_settings() -> Result<NotifySettings, String> {
    let smtp = match setting("SAFEGPT_SMTP_URL").filter(|u| !u.trim().is_empty()) {
        Some(url) => Some(SmtpSettings::parse(&url, setting("SAFEGPT_SMTP_FROM").as_deref())?),
        None => None,
    };
    let allow_private_webhooks = match setting("SAFEGPT_WEBHOOK_ALLOW_PRIVATE").as_deref().map(str::trim) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => return Err(format!("SAFEGPT_WEBHOOK_ALLOW_PRIVATE: '{other}' is not true or false")),
    };
    Ok(NotifySettings { smtp, allow_private_webhooks, ..NotifySettings::default() })
}

/// `SAFEGPT_MAX_CONCURRENT_SYNCS` (default 4): scheduled syncs one `safegpt serve` runs at
/// once, over every organisation. Each holds a database connection while it writes.
fn max_concurrent_syncs() -> Result<usize, String> {
    let Some(raw) = setting("SAFEGPT_MAX_CONCURRENT_SYNCS") else {
        return Ok(safegpt_app::MAX_CONCURRENT_SYNCS);
    };
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=256).contains(n))
        .ok_or_else(|| format!("SAFEGPT_MAX_CONCURRENT_SYNCS: '{raw}' is not a whole number of syncs from 1 to 256"))
}

/// `SAFEGPT_FULL_READ_SLICE` (default 5000): Entra users a full read plans and writes at a
/// time. Larger slices take more memory and fewer database reads.
fn full_read_slice() -> Result<SliceSize, String> {
    let Some(raw) = setting("SAFEGPT_FULL_READ_SLICE") else {
        return Ok(SliceSize::default());
    };
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .and_then(std::num::NonZeroUsize::new)
        .map(SliceSize)
        .ok_or_else(|| format!("SAFEGPT_FULL_READ_SLICE: '{raw}' is not a whole number of users from 1 to 1000000"))
}

/// How many days run change lists, audit rows and events are kept; `0` keeps them for ever.
fn retention() -> Result<Retention, String> {
    let mut retention = Retention::default();
    for (var, slot) in [
        ("SAFEGPT_RETENTION_RUN_CHANGES_DAYS", &mut retention.run_changes_days),
        ("SAFEGPT_RETENTION_AUDIT_DAYS", &mut retention.audit_days),
        ("SAFEGPT_RETENTION_EVENTS_DAYS", &mut retention.events_days),
    ] {
        if let Some(raw) = setting(var) {
            let days: u32 = raw.trim().parse().ok().filter(|d| *d <= 36_500).ok_or_else(|| {
                format!("{var}: '{raw}' is not a whole number of days from 0 (keep for ever) to 36500")
            })?;
            *slot = (days > 0).then_some(days);
        }
    }
    Ok(retention)
}

/// Graph requests' retry budget and timeout, in seconds (decimals allowed).
fn retry_policy() -> Result<RetryPolicy, String> {
    let mut policy = RetryPolicy::default();
    for (var, slot) in [
        ("SAFEGPT_GRAPH_RETRY_BUDGET_SECS", &mut policy.budget),
        ("SAFEGPT_GRAPH_TIMEOUT_SECS", &mut policy.request_timeout),
    ] {
        if let Some(raw) = setting(var) {
            let secs: f64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("{var}: '{raw}' is not a positive number of seconds"))?;
            *slot = Duration::from_secs_f64(secs);
        }
    }
    Ok(policy)
}

/// The sync lease's lifetime from `SAFEGPT_LEASE_TTL_SECS` (default 60): how long a dead
/// process blocks the next sync.
fn lease_settings() -> Result<LeaseSettings, String> {
    let mut lease = LeaseSettings::default();
    if let Some(raw) = setting("SAFEGPT_LEASE_TTL_SECS") {
        let secs: u64 = raw.trim().parse().ok().filter(|s| (2..=3600).contains(s)).ok_or_else(|| {
            format!("SAFEGPT_LEASE_TTL_SECS: '{raw}' is not a whole number of seconds from 2 to 3600")
        })?;
        lease.ttl = Duration::from_secs(secs);
    }
    Ok(lease)
}

fn from_default(matches: &ArgMatches, id: &str) -> bool {
    !matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
}

/// Parses the command line and fills what neither a flag nor the environment gave from the
/// config file.
pub fn parse() -> Result<Cli, String> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let Some(path) = cli.config.clone() else { return Ok(cli) };
    let file = FileConfig::read(&path)?;
    if from_default(&matches, "data_dir")
        && let Some(dir) = &file.data_dir
    {
        cli.data_dir = dir.clone();
    }
    if cli.database_url.is_none() {
        cli.database_url = file.database_url.clone();
    }
    let sub = matches.subcommand().map(|(_, m)| m);
    match &mut cli.command {
        Command::Serve(args) => {
            if sub.is_some_and(|m| from_default(m, "listen"))
                && let Some(listen) = &file.listen
            {
                args.listen = listen.clone();
            }
            if args.public_url.is_none() {
                args.public_url = file.public_url.clone();
            }
        }
        Command::Demo(args) => {
            if sub.is_some_and(|m| from_default(m, "listen"))
                && let Some(listen) = &file.listen
            {
                args.listen = listen.clone();
            }
        }
        _ => {}
    }
    let _ = FILE.set(file);
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_names_its_unknown_keys_and_maps_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("safegpt.toml");
        std::fs::write(
            &path,
            "log = \"info\"\nlease_ttl_secs = 30\ngraph_timeout_secs = 2.5\nretention_events_days = 7\n",
        )
        .unwrap();
        let file = FileConfig::read(&path).unwrap();
        assert_eq!(file.value_of("SAFEGPT_LOG").as_deref(), Some("info"));
        assert_eq!(file.value_of("SAFEGPT_LEASE_TTL_SECS").as_deref(), Some("30"));
        assert_eq!(file.value_of("SAFEGPT_GRAPH_TIMEOUT_SECS").as_deref(), Some("2.5"));
        assert_eq!(file.value_of("SAFEGPT_RETENTION_EVENTS_DAYS").as_deref(), Some("7"));
        std::fs::write(&path, "listen = \"0.0.0.0:80\"\nlisten_port = 80\n").unwrap();
        let err = FileConfig::read(&path).unwrap_err();
        assert!(err.contains("listen_port"), "{err}");
    }
}
