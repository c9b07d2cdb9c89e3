//! The Azure User Sync settings and their validation.
//!
//! Every edit, from the CLI or (later) the web form and the API, goes through
//! [`Settings::apply`], which validates each field and reports every invalid one at once.
//! The client secret is not part of these settings: it is write-only and sealed by the store.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, Email, GroupId, TenantId};

pub const DEFAULT_REMOVE_AFTER_DAYS: u32 = 14;
pub const MAX_REMOVE_AFTER_DAYS: u32 = 3650;
pub const DEFAULT_THRESHOLD_COUNT: u32 = 10;
pub const DEFAULT_THRESHOLD_PERCENT: u32 = 20;

/// Which Microsoft cloud the tenant lives in; decides the login and Graph roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cloud {
    Global,
    Usgov,
    China,
    /// Explicit roots, e.g. graph-sim in tests and demos.
    Custom {
        login_url: String,
        graph_url: String,
    },
}

impl Cloud {
    pub fn name(&self) -> &'static str {
        match self {
            Cloud::Global => "global",
            Cloud::Usgov => "usgov",
            Cloud::China => "china",
            Cloud::Custom { .. } => "custom",
        }
    }

    /// The login (token) root, without trailing slash.
    pub fn login_url(&self) -> &str {
        match self {
            Cloud::Global => "https://login.microsoftonline.com",
            Cloud::Usgov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
            Cloud::Custom { login_url, .. } => login_url,
        }
    }

    /// The Microsoft Graph root, without trailing slash and without `/v1.0`.
    pub fn graph_url(&self) -> &str {
        match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::Usgov => "https://graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
            Cloud::Custom { graph_url, .. } => graph_url,
        }
    }
}

/// Azure User Sync settings, as stored (without the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub active: bool,
    pub tenant_id: Option<TenantId>,
    pub client_id: Option<ClientId>,
    /// Object ids of the scope groups; empty means every user of the tenant.
    pub group_ids: Vec<GroupId>,
    pub auto_disable: bool,
    pub auto_remove: bool,
    pub remove_after_days: u32,
    pub include_guests: bool,
    pub cloud: Cloud,
    /// Seats of the deployment; 0 means unlimited.
    pub seats: u32,
    /// A run that would disable more than this many users *and* more than
    /// `threshold_percent` of the synced users is held for confirmation.
    pub threshold_count: u32,
    pub threshold_percent: u32,
    /// How often the server's scheduler runs the sync, in seconds.
    #[serde(default = "default_interval")]
    pub sync_interval_secs: u32,
    /// How often a sync reads every user and group instead of only the changes (a safety
    /// net under the delta queries), in seconds.
    #[serde(default = "default_full_interval")]
    pub full_sync_interval_secs: u32,
    /// When the client secret expires (`YYYY-MM-DD`), for warnings ahead of it.
    #[serde(default)]
    pub secret_expires: Option<String>,
    /// Who gets this organisation's e-mail alerts (held runs, failing syncs, an expiring
    /// secret, a missing permission, a failing webhook); empty: nobody.
    #[serde(default)]
    pub notify: Vec<Email>,
}

/// More addresses than this is a distribution list's job.
pub const MAX_NOTIFY_ADDRESSES: usize = 20;

fn default_interval() -> u32 {
    DEFAULT_INTERVAL_SECS
}

fn default_full_interval() -> u32 {
    DEFAULT_FULL_INTERVAL_SECS
}

/// A full read once a day by default.
pub const DEFAULT_FULL_INTERVAL_SECS: u32 = 24 * 3600;
/// Graph keeps directory delta tokens for 7 days; a full read must come well within that.
const MAX_FULL_INTERVAL_SECS: u32 = 6 * 24 * 3600;

/// The scheduler's default: every 15 minutes.
pub const DEFAULT_INTERVAL_SECS: u32 = 15 * 60;
/// Shorter intervals would mostly hammer Graph.
pub const MIN_INTERVAL_SECS: u32 = 10;
const MAX_INTERVAL_SECS: u32 = 7 * 24 * 3600;

/// A warning that the client secret expires soon or has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SecretWarning {
    pub expires: time::Date,
    /// Negative once expired.
    pub days_left: i64,
    /// The step reached: 30, 14, 7 or 1 day(s) ahead, or 0 when expired.
    pub step: u32,
}

impl SecretWarning {
    pub fn expired(&self) -> bool {
        self.days_left < 0
    }

    pub fn describe(&self) -> String {
        if self.expired() {
            format!(
                "The client secret expired on {}. Create a new one in Entra (App registrations > your app > \
                 Certificates & secrets > New client secret) and enter its Value and expiry date in SafeGPT.",
                self.expires
            )
        } else {
            format!(
                "The client secret expires in {} day(s), on {}. Create a new one in Entra (App registrations > \
                 your app > Certificates & secrets > New client secret) and enter its Value and expiry date in SafeGPT.",
                self.days_left, self.expires
            )
        }
    }
}

/// Warnings start 30 days ahead and step up at 14, 7 and 1 day(s).
const SECRET_WARNING_STEPS: [u32; 4] = [30, 14, 7, 1];

impl Settings {
    /// The secret's expiry date, when set.
    pub fn secret_expiry(&self) -> Option<time::Date> {
        self.secret_expires.as_deref().and_then(parse_date)
    }

    /// The warning due on `today`, if any.
    pub fn secret_warning(&self, today: time::Date) -> Option<SecretWarning> {
        let expires = self.secret_expiry()?;
        let days_left = (expires - today).whole_days();
        let step = if days_left < 0 {
            0
        } else {
            *SECRET_WARNING_STEPS.iter().rev().find(|&&step| days_left <= i64::from(step))?
        };
        Some(SecretWarning { expires, days_left, step })
    }
}

fn parse_date(raw: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw.trim(), &format).ok()
}

/// `15m`, `1h 30m`, `90s`, `900` (seconds).
fn parse_interval(raw: &str) -> Option<u32> {
    let raw = raw.trim();
    let secs = match raw.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => humantime::parse_duration(raw).ok()?.as_secs(),
    };
    u32::try_from(secs).ok()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            active: false,
            tenant_id: None,
            client_id: None,
            group_ids: Vec::new(),
            auto_disable: false,
            auto_remove: false,
            remove_after_days: DEFAULT_REMOVE_AFTER_DAYS,
            include_guests: false,
            cloud: Cloud::Global,
            seats: 0,
            threshold_count: DEFAULT_THRESHOLD_COUNT,
            threshold_percent: DEFAULT_THRESHOLD_PERCENT,
            sync_interval_secs: DEFAULT_INTERVAL_SECS,
            full_sync_interval_secs: DEFAULT_FULL_INTERVAL_SECS,
            secret_expires: None,
            notify: Vec::new(),
        }
    }
}

/// An edit of the settings: `None` keeps the current value.
/// Values are raw text as typed, so that validation can name what was wrong.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub active: Option<bool>,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// `Some(vec![])` clears the groups (all users).
    pub group_ids: Option<Vec<String>>,
    pub auto_disable: Option<bool>,
    pub auto_remove: Option<bool>,
    pub remove_after_days: Option<String>,
    pub include_guests: Option<bool>,
    /// `global`, `usgov`, `china`.
    pub cloud: Option<String>,
    pub login_url: Option<String>,
    pub graph_url: Option<String>,
    pub seats: Option<String>,
    pub threshold_count: Option<String>,
    pub threshold_percent: Option<String>,
    /// humantime, e.g. `15m`; at least 10 s.
    pub interval: Option<String>,
    /// humantime, e.g. `1d`; from 10 s to 6 days.
    pub full_sync_interval: Option<String>,
    /// `YYYY-MM-DD`; empty clears it.
    pub secret_expires: Option<String>,
    /// The alert addresses, replacing the list; `Some(vec![])` clears it. Entries may hold
    /// several addresses separated by commas, spaces, semicolons or lines.
    pub notify: Option<Vec<String>>,
}

impl SettingsPatch {
    /// A new secret replaces the old one and with it its expiry date: unless this edit gives
    /// the new date, the old date is cleared rather than warning about a secret that is gone.
    pub fn with_new_secret(mut self) -> Self {
        if self.secret_expires.is_none() {
            self.secret_expires = Some(String::new());
        }
        self
    }
}

/// One invalid field, named as in the form and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid settings: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidSettings(pub Vec<FieldError>);

impl Settings {
    /// Applies `patch` on top of `self`, parsing every named field.
    /// Returns all field errors at once; on error nothing of the patch is applied.
    pub fn apply(&self, patch: &SettingsPatch) -> Result<Settings, InvalidSettings> {
        let mut next = self.clone();
        let mut errors = Vec::new();
        let mut field = |name: &'static str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError { field: name, message });
            }
        };
        let flags = [
            (patch.active, &mut next.active),
            (patch.auto_disable, &mut next.auto_disable),
            (patch.auto_remove, &mut next.auto_remove),
            (patch.include_guests, &mut next.include_guests),
        ];
        for (given, slot) in flags {
            if let Some(value) = given {
                *slot = value;
            }
        }
        field("tenant_id", set(text(&patch.tenant_id), &mut next.tenant_id, optional(TenantId::parse)));
        field("client_id", set(text(&patch.client_id), &mut next.client_id, optional(ClientId::parse)));
        if let Some(raw) = &patch.group_ids {
            let (groups, bad) = parse_groups(raw);
            next.group_ids = groups;
            bad.into_iter().for_each(|message| field("group_id", Err(message)));
        }
        field("remove_after_days", set(text(&patch.remove_after_days), &mut next.remove_after_days, days));
        field("cloud", set(text(&patch.cloud), &mut next.cloud, named_cloud));
        if patch.login_url.is_some() || patch.graph_url.is_some() {
            match custom_cloud(&self.cloud, patch.login_url.as_deref(), patch.graph_url.as_deref()) {
                Ok(cloud) => next.cloud = cloud,
                Err(bad) => bad.into_iter().for_each(|(name, message)| field(name, Err(message))),
            }
        }
        field("seats", set(text(&patch.seats), &mut next.seats, seats));
        field("threshold_count", set(text(&patch.threshold_count), &mut next.threshold_count, user_count));
        field("threshold_percent", set(text(&patch.threshold_percent), &mut next.threshold_percent, percent));
        field("interval", set(text(&patch.interval), &mut next.sync_interval_secs, sync_interval));
        field(
            "full_sync_interval",
            set(text(&patch.full_sync_interval), &mut next.full_sync_interval_secs, full_sync_interval),
        );
        field("secret_expires", set(text(&patch.secret_expires), &mut next.secret_expires, optional(expiry_date)));
        if let Some(raw) = &patch.notify {
            match parse_addresses(raw) {
                Ok(addresses) => next.notify = addresses,
                Err(bad) => bad.into_iter().for_each(|message| field("notify", Err(message))),
            }
        }
        if errors.is_empty() { Ok(next) } else { Err(InvalidSettings(errors)) }
    }

    /// What a sync needs before it can run, as field errors an administrator can fix.
    pub fn readiness(&self, secret_set: bool) -> Vec<FieldError> {
        let mut missing = Vec::new();
        if self.tenant_id.is_none() {
            missing.push(FieldError { field: "tenant_id", message: "Tenant Id is not set".into() });
        }
        if self.client_id.is_none() {
            missing.push(FieldError { field: "client_id", message: "Client Id is not set".into() });
        }
        if !secret_set {
            missing.push(FieldError { field: "client_secret", message: "Client Secret is not set".into() });
        }
        missing
    }
}

/// A patch field's text, trimmed.
fn text(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim)
}

fn parse_in_range(raw: &str, min: u32, max: u32) -> Option<u32> {
    let value: u32 = raw.trim().parse().ok()?;
    (min..=max).contains(&value).then_some(value)
}

// One parser per field: trimmed text in, the value or the cause and fix out.

/// Parses a given value into `slot`; `None` (not given) keeps it.
fn set<T>(raw: Option<&str>, slot: &mut T, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<(), String> {
    if let Some(raw) = raw {
        *slot = parse(raw)?;
    }
    Ok(())
}

/// Empty text clears an optional setting.
fn optional<T>(parse: impl FnOnce(&str) -> Result<T, String>) -> impl FnOnce(&str) -> Result<Option<T>, String> {
    move |raw| if raw.is_empty() { Ok(None) } else { parse(raw).map(Some) }
}

/// Addresses separated by commas, spaces, semicolons or lines; duplicates dropped.
fn parse_addresses(raw: &[String]) -> Result<Vec<Email>, Vec<String>> {
    let mut addresses: Vec<Email> = Vec::new();
    let mut bad = Vec::new();
    for entry in raw.iter().flat_map(|r| r.split([',', ';', ' ', '\n', '\r', '\t'])).filter(|e| !e.is_empty()) {
        match Email::parse(entry) {
            Ok(email) if !addresses.contains(&email) => addresses.push(email),
            Ok(_) => {}
            Err(message) => bad.push(message),
        }
    }
    if addresses.len() > MAX_NOTIFY_ADDRESSES {
        bad.push(format!(
            "{} addresses given, at most {MAX_NOTIFY_ADDRESSES}: send to a distribution list instead",
            addresses.len()
        ));
    }
    if bad.is_empty() { Ok(addresses) } else { Err(bad) }
}

/// Groups separated by commas, spaces, semicolons or lines; duplicates dropped. Returns the
/// groups and one message per invalid entry.
fn parse_groups(raw: &[String]) -> (Vec<GroupId>, Vec<String>) {
    let (mut groups, mut bad) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for raw in raw.iter().flat_map(|g| g.split([',', ' ', '\n', ';'])).map(str::trim).filter(|g| !g.is_empty()) {
        match GroupId::parse(raw) {
            Ok(group) if seen.insert(group.clone()) => groups.push(group),
            Ok(_) => {}
            Err(message) => bad.push(message),
        }
    }
    (groups, bad)
}

fn days(raw: &str) -> Result<u32, String> {
    parse_in_range(raw, 1, MAX_REMOVE_AFTER_DAYS)
        .ok_or_else(|| format!("'{raw}' is not a whole number of days from 1 to {MAX_REMOVE_AFTER_DAYS}"))
}

fn seats(raw: &str) -> Result<u32, String> {
    parse_in_range(raw, 0, 10_000_000).ok_or_else(|| format!("'{raw}' is not a whole number of seats (0 = unlimited)"))
}

fn user_count(raw: &str) -> Result<u32, String> {
    parse_in_range(raw, 0, 10_000_000).ok_or_else(|| format!("'{raw}' is not a whole number of users"))
}

fn percent(raw: &str) -> Result<u32, String> {
    parse_in_range(raw, 0, 100).ok_or_else(|| format!("'{raw}' is not a percentage from 0 to 100"))
}

fn sync_interval(raw: &str) -> Result<u32, String> {
    parse_interval(raw)
        .filter(|secs| (MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(secs))
        .ok_or_else(|| format!("'{raw}' is not an interval from 10s to 7 days; write it like 15m, 1h or 90s"))
}

fn full_sync_interval(raw: &str) -> Result<u32, String> {
    parse_interval(raw).filter(|secs| (MIN_INTERVAL_SECS..=MAX_FULL_INTERVAL_SECS).contains(secs)).ok_or_else(|| {
        format!("'{raw}' is not an interval from 10s to 6 days (delta links last 7 days); write it like 1d or 12h")
    })
}

fn expiry_date(raw: &str) -> Result<String, String> {
    // Entra's client secrets last at most two years (older ones up to 2299): a year outside
    // 2000–2299 is a typing error, not a date to plan by.
    let plausible = |date: &time::Date| (2000..=2299).contains(&date.year());
    parse_date(raw).filter(plausible).map(|date| date.to_string()).ok_or_else(|| {
        format!(
            "'{raw}' is not a date like 2028-11-29; copy the \"Expires\" date of the client secret \
             from Entra (Certificates & secrets)"
        )
    })
}

fn named_cloud(raw: &str) -> Result<Cloud, String> {
    match raw.to_ascii_lowercase().as_str() {
        "global" => Ok(Cloud::Global),
        "usgov" => Ok(Cloud::Usgov),
        "china" => Ok(Cloud::China),
        other => {
            Err(format!("'{other}' is not a known cloud; use global, usgov or china, or give login_url and graph_url"))
        }
    }
}

/// Custom endpoints: the roots given, the current custom ones for a root not given. Errors
/// name `login_url` or `graph_url`.
fn custom_cloud(
    current: &Cloud,
    login: Option<&str>,
    graph: Option<&str>,
) -> Result<Cloud, Vec<(&'static str, String)>> {
    let (old_login, old_graph) = match current {
        Cloud::Custom { login_url, graph_url } => (Some(login_url.clone()), Some(graph_url.clone())),
        _ => (None, None),
    };
    let login = login.map(normalize_root).or(old_login);
    let graph = graph.map(normalize_root).or(old_graph);
    let mut errors = Vec::new();
    for (field, value) in [("login_url", &login), ("graph_url", &graph)] {
        match value {
            None => errors.push((field, "custom endpoints need both login_url and graph_url".to_owned())),
            Some(url) if !is_acceptable_root(url) => errors.push((
                field,
                format!(
                    "'{url}' must be an https:// URL (plain http:// is allowed only for \
                     127.0.0.1 or localhost, e.g. graph-sim), without query or fragment"
                ),
            )),
            Some(_) => {}
        }
    }
    match (login, graph) {
        (Some(login_url), Some(graph_url)) if errors.is_empty() => Ok(Cloud::Custom { login_url, graph_url }),
        _ => Err(errors),
    }
}

fn normalize_root(raw: &str) -> String {
    raw.trim().trim_end_matches('/').to_owned()
}

fn is_acceptable_root(url: &str) -> bool {
    if url.contains(['?', '#', ' ']) {
        return false;
    }
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split('/').next().unwrap_or_default();
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host });
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return false;
        }
        rest
    } else {
        return false;
    };
    !rest.is_empty() && !rest.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch() -> SettingsPatch {
        SettingsPatch::default()
    }

    #[test]
    fn valid_values_are_normalized() {
        let s = Settings::default()
            .apply(&SettingsPatch {
                tenant_id: Some(" 4E4DFF32-6150-4C66-AE0D-CFC4AB7BC4D1 ".into()),
                client_id: Some("4f6847d7-fd3f-4b2d-9740-79170e634de5".into()),
                group_ids: Some(vec![
                    "f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2, F3E5E6C4-7F2D-4A4C-9B2C-8E2F3A8C01D2".into(),
                ]),
                remove_after_days: Some("30".into()),
                ..patch()
            })
            .unwrap();
        assert_eq!(s.tenant_id.as_deref(), Some("4e4dff32-6150-4c66-ae0d-cfc4ab7bc4d1"));
        assert_eq!(s.group_ids, vec!["f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2"]);
        assert_eq!(s.remove_after_days, 30);
    }

    #[test]
    fn every_invalid_field_is_reported_and_nothing_applied() {
        let before = Settings::default();
        let err = before
            .apply(&SettingsPatch {
                tenant_id: Some("not a tenant!".into()),
                client_id: Some("SafeGPT".into()),
                group_ids: Some(vec!["Sales team".into()]),
                remove_after_days: Some("0".into()),
                seats: Some("-1".into()),
                ..patch()
            })
            .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["tenant_id", "client_id", "group_id", "group_id", "remove_after_days", "seats"]);
        assert!(err.0[2].message.contains("Object ID"));
    }

    #[test]
    fn tenant_may_be_a_verified_domain() {
        let s = Settings::default()
            .apply(&SettingsPatch { tenant_id: Some("Contoso.onmicrosoft.com".into()), ..patch() })
            .unwrap();
        assert_eq!(s.tenant_id.as_deref(), Some("contoso.onmicrosoft.com"));
    }

    #[test]
    fn remove_after_days_bounds() {
        let s = Settings::default();
        assert!(s.apply(&SettingsPatch { remove_after_days: Some("3650".into()), ..patch() }).is_ok());
        assert!(s.apply(&SettingsPatch { remove_after_days: Some("3651".into()), ..patch() }).is_err());
        assert!(s.apply(&SettingsPatch { remove_after_days: Some("1.5".into()), ..patch() }).is_err());
    }

    #[test]
    fn custom_endpoints_need_https_except_on_loopback() {
        let s = Settings::default();
        let ok = s
            .apply(&SettingsPatch {
                login_url: Some("http://127.0.0.1:8081/".into()),
                graph_url: Some("http://127.0.0.1:8081".into()),
                ..patch()
            })
            .unwrap();
        assert_eq!(ok.cloud.login_url(), "http://127.0.0.1:8081");
        let err = s
            .apply(&SettingsPatch {
                login_url: Some("http://login.example.com".into()),
                graph_url: Some("https://graph.example.com".into()),
                ..patch()
            })
            .unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].field, "login_url");
        let err =
            s.apply(&SettingsPatch { graph_url: Some("https://graph.example.com".into()), ..patch() }).unwrap_err();
        assert_eq!(err.0[0].field, "login_url");
    }

    #[test]
    fn national_clouds_have_their_own_endpoints() {
        let s = Settings::default();
        assert_eq!(s.cloud.login_url(), "https://login.microsoftonline.com");
        assert_eq!(s.cloud.graph_url(), "https://graph.microsoft.com");
        let us = s.apply(&SettingsPatch { cloud: Some("usgov".into()), ..patch() }).unwrap();
        assert_eq!(
            (us.cloud.login_url(), us.cloud.graph_url()),
            ("https://login.microsoftonline.us", "https://graph.microsoft.us")
        );
        let cn = s.apply(&SettingsPatch { cloud: Some("China".into()), ..patch() }).unwrap();
        assert_eq!(cn.cloud.graph_url(), "https://microsoftgraph.chinacloudapi.cn");
        assert_eq!(s.apply(&SettingsPatch { cloud: Some("mars".into()), ..patch() }).unwrap_err().0[0].field, "cloud");
    }

    #[test]
    fn empty_group_list_means_all_users() {
        let group = GroupId::parse("f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2").unwrap();
        let s = Settings { group_ids: vec![group], ..Settings::default() };
        let s = s.apply(&SettingsPatch { group_ids: Some(vec![]), ..patch() }).unwrap();
        assert!(s.group_ids.is_empty());
    }
}

#[cfg(test)]
mod schedule_and_expiry_tests {
    use time::macros::date;

    use super::*;

    fn patch(interval: &str) -> SettingsPatch {
        SettingsPatch { interval: Some(interval.into()), ..SettingsPatch::default() }
    }

    #[test]
    fn intervals_are_humantime_and_at_least_ten_seconds() {
        let s = Settings::default();
        assert_eq!(s.sync_interval_secs, 900, "the default is 15 minutes");
        assert_eq!(s.apply(&patch("15m")).unwrap().sync_interval_secs, 900);
        assert_eq!(s.apply(&patch("1h 30m")).unwrap().sync_interval_secs, 5400);
        assert_eq!(s.apply(&patch("10s")).unwrap().sync_interval_secs, 10);
        assert_eq!(s.apply(&patch("600")).unwrap().sync_interval_secs, 600);
        assert_eq!(s.full_sync_interval_secs, 86_400, "a full read once a day by default");
        let full = |raw: &str| SettingsPatch { full_sync_interval: Some(raw.into()), ..SettingsPatch::default() };
        assert_eq!(s.apply(&full("12h")).unwrap().full_sync_interval_secs, 43_200);
        for bad in ["7d", "5s", "daily"] {
            let err = s.apply(&full(bad)).unwrap_err();
            assert_eq!(err.0[0].field, "full_sync_interval", "{bad}");
        }
        for bad in ["9s", "0", "soon", "-5m", "30d"] {
            let err = s.apply(&patch(bad)).unwrap_err();
            assert_eq!(err.0[0].field, "interval", "{bad}");
        }
    }

    #[test]
    fn the_secret_warning_steps_at_30_14_7_and_1_days_and_after_expiry() {
        let s = Settings::default()
            .apply(&SettingsPatch { secret_expires: Some("2028-11-29".into()), ..SettingsPatch::default() })
            .unwrap();
        assert_eq!(s.secret_expires.as_deref(), Some("2028-11-29"));
        let step = |today| s.secret_warning(today).map(|w| (w.days_left, w.step));
        assert_eq!(step(date!(2028 - 10 - 29)), None, "31 days ahead: no warning yet");
        assert_eq!(step(date!(2028 - 10 - 30)), Some((30, 30)));
        assert_eq!(step(date!(2028 - 11 - 15)), Some((14, 14)));
        assert_eq!(step(date!(2028 - 11 - 20)), Some((9, 14)));
        assert_eq!(step(date!(2028 - 11 - 22)), Some((7, 7)));
        assert_eq!(step(date!(2028 - 11 - 28)), Some((1, 1)));
        assert_eq!(step(date!(2028 - 11 - 29)), Some((0, 1)), "the last day still works");
        let expired = s.secret_warning(date!(2028 - 11 - 30)).unwrap();
        assert!(expired.expired() && expired.step == 0);
        assert!(expired.describe().contains("expired on 2028-11-29"));
        for year in ["0000-01-01", "-0001-01-01", "+10000-01-01", "1999-12-31", "2300-01-01"] {
            let bad = SettingsPatch { secret_expires: Some(year.into()), ..SettingsPatch::default() };
            assert_eq!(Settings::default().apply(&bad).unwrap_err().0[0].field, "secret_expires", "{year}");
        }
        let bad = SettingsPatch { secret_expires: Some("29/11/2026".into()), ..SettingsPatch::default() };
        assert_eq!(s.apply(&bad).unwrap_err().0[0].field, "secret_expires");
        let cleared = SettingsPatch::default().with_new_secret();
        assert_eq!(s.apply(&cleared).unwrap().secret_expires, None, "a new secret clears the old expiry date");
    }
}
