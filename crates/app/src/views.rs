//! The JSON shapes the CLI prints and the REST API serves. Field names are a contract.
//!
//! These are views, kept apart from the domain types so that the wire format changes only on
//! purpose and the OpenAPI schemas describe exactly what is sent.

use safegpt_core::{Counts, LocalUser, Settings};
use safegpt_store::{ApiToken, AuditEntry, ChangeCount, Event, ReadMode, RunChange, RunRecord, RunStatus};
use safegpt_sync::{Check, Phase, Progress};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user as the CLI prints it (`safegpt users list --json`): this key set is a contract.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRecordView {
    pub id: Uuid,
    /// `entra` (managed by Azure User Sync) or `local`.
    pub source: &'static str,
    pub azure_object_id: Option<String>,
    pub email: String,
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    /// `active`, `disabled` or `awaiting_license`.
    pub status: &'static str,
    /// Why a disabled user is disabled: `not_in_group`, `deleted_in_entra`, `disabled_in_entra`,
    /// `guest_excluded` or `admin`.
    pub disabled_reason: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    /// Whether the user is in the sync's scope in Entra (always true for local users).
    pub in_scope: bool,
}

/// A user as the API serves it: the CLI's record plus when it was created and, for users
/// waiting for removal, when the sync will remove it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    #[serde(flatten)]
    pub user: UserRecordView,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the sync will remove this user (disabled by the sync, automatic removal on).
    #[serde(with = "time::serde::rfc3339::option")]
    pub removal_due: Option<OffsetDateTime>,
}

impl UserView {
    pub fn new(u: &LocalUser, settings: &Settings) -> Self {
        let removal_due = (settings.auto_remove && u.disabled_by_sync())
            .then(|| u.disabled_at.map(|at| at + Duration::days(i64::from(settings.remove_after_days))))
            .flatten();
        let user = UserRecordView {
            id: u.id,
            source: u.source.as_str(),
            azure_object_id: u.azure_object_id.clone(),
            email: u.profile.email.clone(),
            user_principal_name: u.profile.user_principal_name.clone(),
            display_name: u.profile.display_name.clone(),
            given_name: u.profile.given_name.clone(),
            surname: u.profile.surname.clone(),
            job_title: u.profile.job_title.clone(),
            department: u.profile.department.clone(),
            status: u.status.as_str(),
            disabled_reason: u.disabled_reason.map(|r| r.as_str()),
            disabled_at: u.disabled_at,
            in_scope: u.in_scope,
        };
        UserView { user, created_at: u.created_at, removal_due }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct SeatsView {
    pub used: u64,
    /// 0 = unlimited.
    pub total: u32,
}

/// The settings as shown to administrators: the secret only as "set or not".
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsView {
    pub active: bool,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// The secret itself is write-only and never returned.
    pub client_secret_set: bool,
    /// In the answer to a change only: the change moved the login or Graph URL (or the
    /// cloud) without a new secret, so the stored secret was cleared; enter it again.
    pub secret_cleared: bool,
    /// Empty: every user of the tenant.
    pub group_ids: Vec<String>,
    pub auto_disable: bool,
    pub auto_remove: bool,
    pub remove_after_days: u32,
    pub include_guests: bool,
    /// `global`, `usgov`, `china` or `custom`.
    pub cloud: &'static str,
    pub login_url: String,
    pub graph_url: String,
    pub seats: SeatsView,
    pub threshold_count: u32,
    pub threshold_percent: u32,
    /// How often `safegpt serve` runs the sync, e.g. `15m`.
    pub interval: String,
    pub interval_secs: u32,
    /// How often a sync reads every user and group instead of the changes, e.g. `1day`.
    pub full_sync_interval: String,
    pub full_sync_interval_secs: u32,
    /// When a sync last read every user and group (the runs in between read changes only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_full_read_at: Option<OffsetDateTime>,
    /// `YYYY-MM-DD`, when set.
    pub secret_expires: Option<String>,
    /// Set from 30 days before the secret expires.
    pub secret_warning: Option<SecretWarningView>,
    /// Who gets the e-mail alerts; empty: nobody.
    pub notify: Vec<String>,
    /// When the scheduler starts the next sync (while active).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretWarningView {
    /// Negative once expired.
    pub days_left: i64,
    /// 30, 14, 7 or 1 day(s) ahead; 0 when expired.
    pub step: u32,
    pub message: String,
}

impl SettingsView {
    pub fn new(
        s: &Settings,
        secret_set: bool,
        seats_used: u64,
        next_run_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Self {
        SettingsView {
            active: s.active,
            tenant_id: s.tenant_id.as_ref().map(ToString::to_string),
            client_id: s.client_id.as_ref().map(ToString::to_string),
            client_secret_set: secret_set,
            secret_cleared: false,
            group_ids: s.group_ids.iter().map(ToString::to_string).collect(),
            auto_disable: s.auto_disable,
            auto_remove: s.auto_remove,
            remove_after_days: s.remove_after_days,
            include_guests: s.include_guests,
            cloud: s.cloud.name(),
            login_url: s.cloud.login_url().to_owned(),
            graph_url: s.cloud.graph_url().to_owned(),
            seats: SeatsView { used: seats_used, total: s.seats },
            threshold_count: s.threshold_count,
            threshold_percent: s.threshold_percent,
            interval: humantime::format_duration(std::time::Duration::from_secs(u64::from(s.sync_interval_secs)))
                .to_string(),
            interval_secs: s.sync_interval_secs,
            full_sync_interval: humantime::format_duration(std::time::Duration::from_secs(u64::from(
                s.full_sync_interval_secs,
            )))
            .to_string(),
            full_sync_interval_secs: s.full_sync_interval_secs,
            last_full_read_at: None,
            secret_expires: s.secret_expires.clone(),
            secret_warning: s.secret_warning(now.date()).map(|w| SecretWarningView {
                days_left: w.days_left,
                step: w.step,
                message: w.describe(),
            }),
            notify: s.notify.iter().map(|e| e.as_str().to_owned()).collect(),
            next_run_at: next_run_at.filter(|_| s.active),
        }
    }

    pub fn to_text(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let or_unset = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".to_owned());
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
            format!("  Tenant Id:                                      {}", or_unset(&self.tenant_id)),
            format!("  Client Id:                                      {}", or_unset(&self.client_id)),
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
            format!("  Sync interval:                                  {}", self.interval),
            format!(
                "  Full read:                                      every {}; last {}",
                self.full_sync_interval,
                self.last_full_read_at.map_or_else(
                    || "never (the next run reads everything)".to_owned(),
                    |at| at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
                )
            ),
            format!(
                "  Next sync:                                      {}",
                self.next_run_at.map_or_else(
                    || if self.active { "when `safegpt serve` runs".to_owned() } else { "(not active)".to_owned() },
                    |at| at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
                )
            ),
            format!(
                "  Client secret expires:                          {}",
                self.secret_expires.clone().unwrap_or_else(|| "(not set)".into())
            ),
        ]
        .into_iter()
        .chain(self.secret_warning.as_ref().map(|w| format!("\nWARNING: {}", w.message)))
        .collect::<Vec<_>>()
        .join("\n")
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct CountsView {
    pub created: u64,
    pub updated: u64,
    pub enabled: u64,
    pub disabled: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub awaiting_license: u64,
}

impl From<Counts> for CountsView {
    fn from(c: Counts) -> Self {
        CountsView {
            created: c.created,
            updated: c.updated,
            enabled: c.enabled,
            disabled: c.disabled,
            removed: c.removed,
            unchanged: c.unchanged,
            awaiting_license: c.awaiting_license,
        }
    }
}

/// A failure: `kind` is stable for programs, `message` names the cause and the fix.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunErrorView {
    pub kind: String,
    pub message: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResolutionView {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub follow_up_run: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    pub id: Uuid,
    /// `cli`, `manual`, `api` or `schedule`.
    pub trigger: String,
    pub dry_run: bool,
    /// `running`, `succeeded`, `failed`, `held`, `dry_run`, `interrupted`, `confirmed`, `cancelled` or `superseded`.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<u64>,
    pub counts: CountsView,
    pub users_read: u64,
    pub graph_requests: u64,
    /// `full` (every user and group read) or `incremental` (only the changes, by delta
    /// query); absent when the run failed before it read.
    #[schema(value_type = Option<String>)]
    pub read_mode: Option<ReadMode>,
    /// Users the run asked Graph about directly before removing them.
    pub confirmed_users: u64,
    /// Of those, users Graph had back in scope: kept, not removed.
    pub kept_users: u64,
    /// Users read whose address in Entra is not an e-mail address; stored without one.
    pub invalid_emails: u64,
    pub error: Option<RunErrorView>,
    pub resolution: Option<ResolutionView>,
    /// The run's changes by action and reason (its list: `GET /api/v1/runs/{id}/changes`).
    pub breakdown: Vec<ChangeCountView>,
    /// When the retention period removed the list of the run's changes; the breakdown stays.
    #[serde(with = "time::serde::rfc3339::option")]
    pub changes_removed_at: Option<OffsetDateTime>,
}

/// How many changes of a run share an action and a reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeCountView {
    /// `create`, `update`, `enable`, `disable` or `remove`.
    pub action: String,
    /// The `reason` filter of the run's changes, e.g. `out_of_scope`.
    pub reason_code: String,
    pub reason: String,
    pub count: u64,
}

impl From<&ChangeCount> for ChangeCountView {
    fn from(c: &ChangeCount) -> Self {
        ChangeCountView {
            action: c.action.clone(),
            reason_code: c.reason_code.clone(),
            reason: c.reason.clone(),
            count: c.count,
        }
    }
}

impl From<&RunRecord> for RunView {
    fn from(r: &RunRecord) -> Self {
        RunView {
            id: r.id,
            trigger: r.trigger.clone(),
            dry_run: r.dry_run,
            status: r.status.as_str(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.finished_at.map(|f| (f - r.started_at).whole_milliseconds().max(0) as u64),
            counts: r.counts.into(),
            users_read: r.totals.users_read,
            read_mode: r.totals.read_mode,
            graph_requests: r.totals.graph_requests,
            confirmed_users: r.totals.confirmed_users,
            kept_users: r.totals.kept_users,
            invalid_emails: r.totals.invalid_emails,
            error: r.error.as_ref().map(|e| RunErrorView {
                kind: e.kind.clone(),
                message: e.message.clone(),
                detail: e.detail.clone(),
            }),
            resolution: r.resolution.as_ref().map(|x| ResolutionView {
                by: x.by.clone(),
                at: x.at,
                follow_up_run: x.follow_up_run,
            }),
            breakdown: r.breakdown.iter().map(ChangeCountView::from).collect(),
            changes_removed_at: r.changes_removed_at,
        }
    }
}

impl RunView {
    pub fn is_held(&self) -> bool {
        self.status == RunStatus::Held.as_str()
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeView {
    pub seq: i64,
    pub user_id: String,
    pub azure_object_id: Option<String>,
    pub email: String,
    /// `create`, `update`, `enable`, `disable` or `remove`.
    pub action: String,
    pub reason_code: String,
    pub reason: String,
    /// Changed attributes, for updates.
    pub fields: Vec<String>,
}

impl From<&RunChange> for ChangeView {
    fn from(c: &RunChange) -> Self {
        ChangeView {
            seq: c.seq,
            user_id: c.user_id.clone(),
            azure_object_id: c.azure_object_id.clone(),
            email: c.email.clone(),
            action: c.action.clone(),
            reason_code: c.reason_code.clone(),
            reason: c.reason.clone(),
            fields: c.fields.0.clone(),
        }
    }
}

/// One page of a run's changes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangePageView {
    pub changes: Vec<ChangeView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgressView {
    /// `starting`, `reading_users`, `reading_groups`, `applying` or `finished`.
    pub phase: &'static str,
    pub pages_read: u64,
    pub users_read: u64,
    pub groups_read: u64,
}

impl From<&Progress> for ProgressView {
    fn from(p: &Progress) -> Self {
        ProgressView {
            phase: match p.phase {
                Phase::Starting => "starting",
                Phase::ReadingUsers => "reading_users",
                Phase::ReadingGroups => "reading_groups",
                Phase::Applying => "applying",
                Phase::Finished => "finished",
            },
            pages_read: p.pages_read,
            users_read: p.users_read,
            groups_read: p.groups_read,
        }
    }
}

/// A run with the first page of the changes it made (or, for dry runs and held runs, would
/// make); `run.breakdown` counts them all.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetailView {
    pub run: RunView,
    /// The first changes, in order (at most 100).
    pub changes: Vec<ChangeView>,
    /// Present when the run has more changes: the `cursor` of
    /// `GET /api/v1/runs/{id}/changes` that lists the rest.
    pub changes_next_cursor: Option<String>,
    /// Live progress while this server runs it.
    pub progress: Option<ProgressView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckView {
    /// `token`, `read users` or `read group <id>`.
    pub name: String,
    pub ok: bool,
    /// What was checked, or the cause of the failure and its fix.
    pub message: String,
    pub kind: Option<String>,
}

impl From<&Check> for CheckView {
    fn from(c: &Check) -> Self {
        CheckView { name: c.name.clone(), ok: c.ok, message: c.message.clone(), kind: c.kind.clone() }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestResultView {
    pub ok: bool,
    pub checks: Vec<CheckView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    /// `admin:<e-mail>`, `token:<name>`, `sync:<run id>` or `cli`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
}

impl From<&AuditEntry> for AuditView {
    fn from(e: &AuditEntry) -> Self {
        AuditView {
            id: e.id,
            at: e.at.clone(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            details: e.details.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    /// `read`, `sync` or `admin`.
    pub scope: String,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            scope: t.scope.clone(),
            created_by: t.created_by.clone(),
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// One change of the directory, for services that follow it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    /// The cursor: strictly increasing.
    pub seq: i64,
    pub at: String,
    /// `user.created`, `user.updated`, `user.enabled`, `user.disabled`, `user.removed`, or
    /// a run's end: `sync.succeeded`, `sync.failed`, `sync.held`.
    pub kind: String,
    /// The user of a `user.*` event; `null` for a `sync.*` event.
    pub user_id: Option<String>,
    /// `user.*`: `{"user_id", "azure_object_id", "email", "status", "changed": [field…], "reason"}`;
    /// `sync.*`: `{"run_id", "status", "created", "updated", "enabled", "disabled", "removed",
    /// "error": {"kind", "message"} or null}` (a held run's counts are what it would do).
    pub payload: serde_json::Value,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            seq: e.seq,
            at: e.at.clone(),
            kind: e.kind.clone(),
            user_id: (!e.user_id.is_empty()).then(|| e.user_id.clone()),
            payload: e.payload.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `after` to read on; equals the request's `after` when nothing is new.
    pub next_cursor: i64,
}

/// A page of users.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Users matching the filter (all pages).
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
    pub seats: SeatsView,
}

/// An integration of Settings → Integrations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationView {
    /// `office_addin`, `azure_user_sync`, `google_search` or `openzaak`.
    pub key: &'static str,
    pub name: &'static str,
    pub enabled: bool,
    /// Always `included`.
    pub license: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}
