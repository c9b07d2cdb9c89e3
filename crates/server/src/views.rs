//! The JSON shapes the CLI prints (and the API will serve). Field names are a contract.

use safegpt_core::{LocalUser, Settings};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Serialize)]
pub struct UserView<'a> {
    pub id: Uuid,
    pub source: &'static str,
    pub azure_object_id: Option<&'a str>,
    pub email: &'a str,
    pub user_principal_name: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub given_name: Option<&'a str>,
    pub surname: Option<&'a str>,
    pub job_title: Option<&'a str>,
    pub department: Option<&'a str>,
    pub status: &'static str,
    pub disabled_reason: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    pub in_scope: bool,
}

impl<'a> From<&'a LocalUser> for UserView<'a> {
    fn from(u: &'a LocalUser) -> Self {
        UserView {
            id: u.id,
            source: u.source.as_str(),
            azure_object_id: u.azure_object_id.as_deref(),
            email: &u.profile.email,
            user_principal_name: u.profile.user_principal_name.as_deref(),
            display_name: u.profile.display_name.as_deref(),
            given_name: u.profile.given_name.as_deref(),
            surname: u.profile.surname.as_deref(),
            job_title: u.profile.job_title.as_deref(),
            department: u.profile.department.as_deref(),
            status: u.status.as_str(),
            disabled_reason: u.disabled_reason.map(|r| r.as_str()),
            disabled_at: u.disabled_at,
            in_scope: u.in_scope,
        }
    }
}

#[derive(Serialize)]
pub struct SeatsView {
    pub used: u64,
    /// 0 = unlimited.
    pub total: u32,
}

/// The settings as shown to administrators: the secret only as "set or not".
#[derive(Serialize)]
pub struct SettingsView<'a> {
    pub active: bool,
    pub tenant_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret_set: bool,
    pub group_ids: &'a [String],
    pub auto_disable: bool,
    pub auto_remove: bool,
    pub remove_after_days: u32,
    pub include_guests: bool,
    pub cloud: &'static str,
    pub login_url: &'a str,
    pub graph_url: &'a str,
    pub seats: SeatsView,
    pub threshold_count: u32,
    pub threshold_percent: u32,
}

impl<'a> SettingsView<'a> {
    pub fn new(s: &'a Settings, secret_set: bool, seats_used: u64) -> Self {
        SettingsView {
            active: s.active,
            tenant_id: s.tenant_id.as_deref(),
            client_id: s.client_id.as_deref(),
            client_secret_set: secret_set,
            group_ids: &s.group_ids,
            auto_disable: s.auto_disable,
            auto_remove: s.auto_remove,
            remove_after_days: s.remove_after_days,
            include_guests: s.include_guests,
            cloud: s.cloud.name(),
            login_url: s.cloud.login_url(),
            graph_url: s.cloud.graph_url(),
            seats: SeatsView { used: seats_used, total: s.seats },
            threshold_count: s.threshold_count,
            threshold_percent: s.threshold_percent,
        }
    }

    pub fn to_text(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let or_unset = |v: Option<&str>| v.unwrap_or("(not set)").to_owned();
        let groups = if self.group_ids.is_empty() {
            "(none: all users of the tenant)".to_owned()
        } else {
            self.group_ids.join(", ")
        };
        let seats = if self.seats.total == 0 {
            format!("{} used (unlimited)", self.seats.used)
        } else {
            format!("{} used of {}", self.seats.used, self.seats.total)
        };
        let remove = if self.auto_remove { format!("yes, after {} days", self.remove_after_days) } else { "no".into() };
        [
            "Azure User Sync".to_owned(),
            format!("  Active:                                         {}", yes(self.active)),
            format!("  Tenant Id:                                      {}", or_unset(self.tenant_id)),
            format!("  Client Id:                                      {}", or_unset(self.client_id)),
            format!("  Client Secret:                                  {}", if self.client_secret_set { "set (hidden)" } else { "not set" }),
            format!("  Group Id:                                       {groups}"),
            format!("  Automatically disable users (if not in group):  {}", yes(self.auto_disable)),
            format!("  Automatically remove users (if disabled):       {remove}"),
            format!("  Include guest users:                            {}", yes(self.include_guests)),
            format!("  Cloud:                                          {} ({}, {})", self.cloud, self.login_url, self.graph_url),
            format!("  Seats:                                          {seats}"),
            format!(
                "  Deletion threshold:                             hold runs that disable more than {} users and more than {} %",
                self.threshold_count, self.threshold_percent
            ),
        ]
        .join("\n")
    }
}
