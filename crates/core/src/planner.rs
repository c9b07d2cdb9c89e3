//! The sync planner: every rule of PRODUCT.md as one pure function.
//!
//! `plan(local users, remote snapshot, policy, now)` says what one sync would do. It reads no
//! clock, does no I/O and has no randomness except the ids it is handed for new users, so the
//! same inputs always give the same plan. The engine gathers the inputs and applies the output.

use std::collections::HashSet;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::scope::Covered;
use crate::settings::Settings;
use crate::user::{DisabledReason, LocalUser, RemoteUser, Status, UserType};
use crate::walk::Walk;

/// The parts of the settings the planner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub include_guests: bool,
    pub auto_disable: bool,
    pub auto_remove: bool,
    pub remove_after_days: u32,
    pub seats: u32,
    pub threshold_count: u32,
    pub threshold_percent: u32,
}

impl From<&Settings> for Policy {
    fn from(s: &Settings) -> Self {
        Policy {
            include_guests: s.include_guests,
            auto_disable: s.auto_disable,
            auto_remove: s.auto_remove,
            remove_after_days: s.remove_after_days,
            seats: s.seats,
            threshold_count: s.threshold_count,
            threshold_percent: s.threshold_percent,
        }
    }
}

/// What was read from Entra.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every user of the tenant (a full read), or the users an incremental plan looks at.
    pub users: Vec<RemoteUser>,
    /// The users the scope covers (from [`crate::scope::Scope`]).
    pub covered: Covered,
    /// True only when every page of every source was read. An incomplete snapshot never
    /// takes anyone out of scope.
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Enable,
    Disable,
    Remove,
}

impl Action {
    /// Every action's name, as [`Action::as_str`] gives it (filters check against it).
    pub const NAMES: [&'static str; 5] = ["create", "update", "enable", "disable", "remove"];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Remove => "remove",
        }
    }

    /// The name of the event the platform receives for this change.
    pub fn event_kind(self) -> &'static str {
        match self {
            Action::Create => "user.created",
            Action::Update => "user.updated",
            Action::Enable => "user.enabled",
            Action::Disable => "user.disabled",
            Action::Remove => "user.removed",
        }
    }
}

/// Why a change is planned; shown to administrators beside each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ChangeReason {
    /// New in scope; `awaiting_license` when no seat was free.
    NewInScope {
        awaiting_license: bool,
    },
    /// An unlinked local account with the same e-mail was linked to the Entra user.
    LinkedByEmail,
    AttributesChanged,
    BackInScope,
    OutOfScope {
        reason: DisabledReason,
    },
    /// Disabled by the sync and out of scope for at least `days` days.
    RemovalDue {
        days: u32,
    },
    LicenseAvailable,
}

impl ChangeReason {
    /// Every reason's code, as [`ChangeReason::code`] gives it (filters check against it).
    pub const CODES: [&'static str; 7] = [
        "new_in_scope",
        "linked_by_email",
        "attributes_changed",
        "back_in_scope",
        "out_of_scope",
        "removal_due",
        "license_available",
    ];

    /// The machine name of the reason (its serialized `code`), stored with each run change.
    pub fn code(&self) -> &'static str {
        match self {
            ChangeReason::NewInScope { .. } => "new_in_scope",
            ChangeReason::LinkedByEmail => "linked_by_email",
            ChangeReason::AttributesChanged => "attributes_changed",
            ChangeReason::BackInScope => "back_in_scope",
            ChangeReason::OutOfScope { .. } => "out_of_scope",
            ChangeReason::RemovalDue { .. } => "removal_due",
            ChangeReason::LicenseAvailable => "license_available",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ChangeReason::NewInScope { awaiting_license: false } => "new in scope".into(),
            ChangeReason::NewInScope { awaiting_license: true } => {
                "new in scope; awaiting a license (no free seat)".into()
            }
            ChangeReason::LinkedByEmail => "existing local account linked by e-mail".into(),
            ChangeReason::AttributesChanged => "attributes changed in Entra ID".into(),
            ChangeReason::BackInScope => "back in scope".into(),
            ChangeReason::OutOfScope { reason } => format!("out of scope: {}", reason.describe()),
            ChangeReason::RemovalDue { days } => {
                format!("disabled by the sync and out of scope for {days} day(s) or more")
            }
            ChangeReason::LicenseAvailable => "a seat became free".into(),
        }
    }
}

/// One planned change of one user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub action: Action,
    pub user_id: Uuid,
    pub rows: Rows,
    /// Names of the fields that change.
    pub fields: Vec<&'static str>,
    pub reason: ChangeReason,
}

/// The user's row before and after a change. Boxed: a plan of a million creations holds a
/// pointer, not a row, per change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rows {
    /// A user created from Entra.
    Created { after: Box<LocalUser> },
    /// A user updated, linked, enabled or disabled.
    Changed { before: Box<LocalUser>, after: Box<LocalUser> },
    /// A user removed.
    Removed { before: Box<LocalUser> },
}

impl Change {
    /// The row before the change; `None` for a creation.
    pub fn before(&self) -> Option<&LocalUser> {
        match &self.rows {
            Rows::Created { .. } => None,
            Rows::Changed { before, .. } | Rows::Removed { before } => Some(before),
        }
    }

    /// The row after the change; `None` for a removal.
    pub fn after(&self) -> Option<&LocalUser> {
        match &self.rows {
            Rows::Created { after } | Rows::Changed { after, .. } => Some(after),
            Rows::Removed { .. } => None,
        }
    }

    /// The user as the change leaves it, or as it was when removed.
    pub fn user(&self) -> &LocalUser {
        match &self.rows {
            Rows::Created { after } | Rows::Changed { after, .. } => after,
            Rows::Removed { before } => before,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub enabled: u64,
    pub disabled: u64,
    pub removed: u64,
    /// Entra users the run left as they were.
    pub unchanged: u64,
    /// Entra users awaiting a license after the run.
    pub awaiting_license: u64,
}

/// A run held by the deletion threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub would_disable: u64,
    pub synced_active: u64,
    pub threshold_count: u32,
    pub threshold_percent: u32,
}

impl Hold {
    /// The deletion threshold: a run that would disable more than `threshold_count` users
    /// and more than `threshold_percent` % of the active synced users is held.
    pub fn check(would_disable: u64, synced_active: u64, threshold_count: u32, threshold_percent: u32) -> Option<Hold> {
        (would_disable > u64::from(threshold_count)
            && would_disable * 100 > u64::from(threshold_percent) * synced_active)
            .then_some(Hold { would_disable, synced_active, threshold_count, threshold_percent })
    }

    pub fn describe(&self) -> String {
        format!(
            "this run would disable {} of {} active synced users, more than the safety threshold \
             ({} users and {} %); nothing was changed. Check the group and scope settings, then \
             confirm the run (safegpt sync --confirm-mass-changes) or fix the cause",
            self.would_disable, self.synced_active, self.threshold_count, self.threshold_percent
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Seats {
    pub used: u64,
    /// 0 = unlimited.
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub counts: Counts,
    pub hold: Option<Hold>,
    /// Seats after the plan is applied.
    pub seats: Seats,
}

impl Plan {
    /// The hold that remains once an administrator approved a held plan that listed
    /// `approved` (the users it would disable or remove): only the disables of *other*
    /// users count against the threshold. So a confirmation covers what was reviewed and
    /// anything under the threshold, never a larger disable that appeared since.
    pub fn hold_beyond(&self, approved: &HashSet<Uuid>) -> Option<Hold> {
        let hold = self.hold?;
        let unreviewed =
            self.changes.iter().filter(|c| c.action == Action::Disable && !approved.contains(&c.user_id)).count()
                as u64;
        Hold::check(unreviewed, hold.synced_active, hold.threshold_count, hold.threshold_percent)
    }
}

/// Whether a remote user is in scope, and if not, why.
pub fn scope_of(remote: Option<&RemoteUser>, covered: &Covered, policy: &Policy) -> Result<(), DisabledReason> {
    let Some(remote) = remote else {
        return Err(DisabledReason::DeletedInEntra);
    };
    if !remote.account_enabled {
        return Err(DisabledReason::DisabledInEntra);
    }
    if remote.user_type == UserType::Guest && !policy.include_guests {
        return Err(DisabledReason::GuestExcluded);
    }
    if !covered.contains(&remote.id) {
        return Err(DisabledReason::NotInGroup);
    }
    Ok(())
}

/// The directory users an incremental plan is not handed: Entra users no change in Entra
/// touched, which the rules would leave as they are. Only their totals matter to the plan
/// (seats, the deletion threshold, the count of unchanged users).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Untouched {
    /// Entra users left out.
    pub synced: u64,
    /// Of all users left out, those holding a seat.
    pub seats_held: u64,
    /// Entra users left out that are active.
    pub synced_active: u64,
}

/// A user the plan looks at: its row before (if any), after (if kept), and why.
pub(crate) type Outcome<'a> = (Option<&'a LocalUser>, Option<Box<LocalUser>>, ChangeReason);

/// Plans one sync over the whole directory. `new_id` supplies ids for users the plan creates.
pub fn plan(
    local: &[LocalUser],
    snapshot: &Snapshot,
    policy: &Policy,
    now: OffsetDateTime,
    new_id: impl FnMut() -> Uuid,
) -> Plan {
    plan_subset(local, snapshot, Untouched::default(), policy, now, new_id)
}

/// Plans one sync over part of the directory: `local` and `snapshot` hold the users that may
/// change (every local account among them), `untouched` the totals of the rest. With
/// `Untouched::default()` and the whole directory this is [`plan`]; an incremental run gives
/// the users Entra reported as changed, so that its work follows the number of changes.
pub fn plan_subset(
    local: &[LocalUser],
    snapshot: &Snapshot,
    untouched: Untouched,
    policy: &Policy,
    now: OffsetDateTime,
    new_id: impl FnMut() -> Uuid,
) -> Plan {
    // One slice holding everything: its changes come in the order of `local`, then of the
    // snapshot's users.
    let walk = Walk::new(policy, now, snapshot.complete, untouched, local);
    let mut counting = walk.counting();
    counting.slice(local, &snapshot.users, &snapshot.covered);
    let decisions = counting.finish();
    let mut planning = walk.planning(&decisions, new_id);
    let changes = planning.slice(local, &snapshot.users, &snapshot.covered);
    Plan { changes, counts: planning.finish(), hold: decisions.hold, seats: decisions.seats }
}

/// The state of a known Entra user that is out of scope, per the policy.
pub(crate) fn out_of_scope(
    user: &LocalUser,
    remote: Option<&RemoteUser>,
    why: DisabledReason,
    policy: &Policy,
    now: OffsetDateTime,
) -> (Option<LocalUser>, ChangeReason) {
    let reason = ChangeReason::OutOfScope { reason: why };
    let mut after = user.clone();
    if let Some(remote) = remote {
        after.profile = remote.profile();
    }
    after.in_scope = false;
    match user.status {
        Status::Active if policy.auto_disable => {
            after.status = Status::Disabled;
            after.disabled_reason = Some(why);
            after.disabled_at = Some(now);
        }
        Status::Disabled if user.disabled_by_sync() && policy.auto_remove => {
            let since = user.disabled_at.unwrap_or(now);
            if now >= since + Duration::days(i64::from(policy.remove_after_days)) {
                return (None, ChangeReason::RemovalDue { days: policy.remove_after_days });
            }
        }
        // Never had a seat or access, so there is nothing to keep for a grace period.
        Status::AwaitingLicense if policy.auto_remove => return (None, reason),
        _ => {}
    }
    (Some(after), reason)
}

/// Turns a before/after pair into a change, or `None` when nothing differs.
pub(crate) fn classify(
    before: Option<&LocalUser>,
    after: Option<Box<LocalUser>>,
    reason: ChangeReason,
) -> Option<Change> {
    let (action, rows) = match (before, after) {
        (None, None) => return None,
        (None, Some(after)) => (Action::Create, Rows::Created { after }),
        (Some(b), None) => (Action::Remove, Rows::Removed { before: Box::new(b.clone()) }),
        (Some(b), Some(a)) if *b == *a => return None,
        (Some(b), Some(after)) => {
            let action = match (b.status, after.status) {
                (Status::Active, Status::Disabled) => Action::Disable,
                (Status::Disabled | Status::AwaitingLicense, Status::Active) => Action::Enable,
                _ => Action::Update,
            };
            (action, Rows::Changed { before: Box::new(b.clone()), after })
        }
    };
    let fields = match &rows {
        Rows::Changed { before, after } => changed_fields(before, after),
        _ => Vec::new(),
    };
    let reason = match (action, reason) {
        (Action::Update, ChangeReason::OutOfScope { .. } | ChangeReason::BackInScope)
            if !fields.contains(&"in_scope") =>
        {
            ChangeReason::AttributesChanged
        }
        _ => reason,
    };
    let user_id = match &rows {
        Rows::Created { after } => after.id,
        Rows::Changed { before, .. } | Rows::Removed { before } => before.id,
    };
    Some(Change { action, user_id, rows, fields, reason })
}

fn changed_fields(before: &LocalUser, after: &LocalUser) -> Vec<&'static str> {
    let mut fields = before.profile.changed_fields(&after.profile);
    if before.source != after.source {
        fields.push("source");
    }
    if before.azure_object_id != after.azure_object_id {
        fields.push("azure_object_id");
    }
    if before.status != after.status {
        fields.push("status");
    }
    if before.disabled_reason != after.disabled_reason {
        fields.push("disabled_reason");
    }
    if before.in_scope != after.in_scope {
        fields.push("in_scope");
    }
    fields
}

/// Applies a plan to an in-memory list of users: the model the store's transaction follows.
pub fn apply(local: &mut Vec<LocalUser>, plan: &Plan) {
    for change in &plan.changes {
        match (change.after(), local.iter().position(|u| u.id == change.user_id)) {
            (Some(after), Some(i)) => local[i] = after.clone(),
            (Some(after), None) => local.push(after.clone()),
            (None, Some(i)) => {
                local.remove(i);
            }
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_the_serialized_codes_and_all_listed() {
        let reasons = [
            ChangeReason::NewInScope { awaiting_license: true },
            ChangeReason::LinkedByEmail,
            ChangeReason::AttributesChanged,
            ChangeReason::BackInScope,
            ChangeReason::OutOfScope { reason: DisabledReason::NotInGroup },
            ChangeReason::RemovalDue { days: 14 },
            ChangeReason::LicenseAvailable,
        ];
        let codes: Vec<&str> = reasons.iter().map(ChangeReason::code).collect();
        assert_eq!(codes, ChangeReason::CODES);
        for reason in reasons {
            assert_eq!(serde_json::to_value(reason).unwrap()["code"], reason.code());
        }
        let actions = [Action::Create, Action::Update, Action::Enable, Action::Disable, Action::Remove];
        assert_eq!(actions.map(Action::as_str), Action::NAMES);
    }
}
