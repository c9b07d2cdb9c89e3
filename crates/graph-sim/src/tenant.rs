//! The tenant file format (see the README) and the in-memory directory built from it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::fidelity::Fidelity;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantFile {
    pub tenant_id: String,
    pub domain: String,
    #[serde(default)]
    pub apps: Vec<AppRecord>,
    #[serde(default)]
    pub users: Vec<UserRecord>,
    #[serde(default)]
    pub groups: Vec<GroupRecord>,
    /// Non-user directory objects that may appear in membership lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<OtherRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_principals: Vec<OtherRecord>,
    /// How strictly Graph is played; absent: as Microsoft documents it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fidelity: Option<Fidelity>,
    /// Faults in force from the start (as `PUT /_sim/faults` sets them later), e.g. a
    /// throttled token endpoint or expiring page tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::sim::Faults>,
}

impl TenantFile {
    /// The group with the most users, counting members of nested groups.
    pub fn largest_group(&self) -> Option<String> {
        let groups: HashMap<&str, &Vec<String>> = self.groups.iter().map(|g| (g.id.as_str(), &g.members)).collect();
        let users: HashSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        let count = |root: &str| {
            let (mut seen, mut found, mut stack) = (HashSet::from([root]), HashSet::new(), vec![root]);
            while let Some(g) = stack.pop() {
                for m in groups.get(g).into_iter().flat_map(|ms| ms.iter()) {
                    if users.contains(m.as_str()) {
                        found.insert(m.as_str());
                    } else if groups.contains_key(m.as_str()) && seen.insert(m.as_str()) {
                        stack.push(m.as_str());
                    }
                }
            }
            found.len()
        };
        self.groups.iter().max_by_key(|g| (count(&g.id), std::cmp::Reverse(g.id.clone()))).map(|g| g.id.clone())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    pub client_id: String,
    /// Granted application permissions (with admin consent), e.g. `User.Read.All`.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<SecretRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    pub value: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default = "member")]
    pub user_type: String,
    /// Other addresses (a guest's invitation address, usually).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_mails: Vec<String>,
}

/// The user properties whose changes delta rounds track, by their Graph names.
pub const TRACKED_USER_PROPERTIES: &[&str] = &[
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "accountEnabled",
    "userType",
    "otherMails",
];

impl UserRecord {
    /// A property by its Graph name, as Graph sends it (`null` when not set); `None` for a
    /// property the simulator does not keep.
    pub fn property(&self, name: &str) -> Option<serde_json::Value> {
        use serde_json::json;
        Some(match name {
            "id" => json!(self.id),
            "userPrincipalName" => json!(self.user_principal_name),
            "mail" => json!(self.mail),
            "displayName" => json!(self.display_name),
            "givenName" => json!(self.given_name),
            "surname" => json!(self.surname),
            "jobTitle" => json!(self.job_title),
            "department" => json!(self.department),
            "accountEnabled" => json!(self.account_enabled),
            "userType" => json!(self.user_type),
            "otherMails" => json!(self.other_mails),
            "businessPhones" => json!([]),
            _ => return None,
        })
    }
}

fn yes() -> bool {
    true
}

fn member() -> String {
    "Member".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtherRecord {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What kind of directory object an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Group,
    Device,
    ServicePrincipal,
}

impl ObjectKind {
    pub fn odata_type(self) -> &'static str {
        match self {
            ObjectKind::User => "#microsoft.graph.user",
            ObjectKind::Group => "#microsoft.graph.group",
            ObjectKind::Device => "#microsoft.graph.device",
            ObjectKind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
        }
    }
}

/// The sequence numbers of every change of an object, oldest first: a delta round reports
/// an object when any of its changes falls in the round, even if it changed again since.
#[derive(Debug, Clone, Default)]
pub struct History(Vec<u64>);

impl History {
    pub fn starting(seq: u64) -> Self {
        History(vec![seq])
    }

    pub fn record(&mut self, seq: u64) {
        self.0.push(seq);
    }

    /// The last change.
    pub fn last(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }

    /// Whether a change falls in `(from, to]`.
    pub fn any_in(&self, from: u64, to: u64) -> bool {
        self.0.iter().rev().take_while(|seq| **seq > from).any(|seq| *seq <= to)
    }
}

#[derive(Debug, Clone)]
pub struct SimUser {
    pub record: UserRecord,
    /// Every change, for delta.
    pub history: History,
    /// When the user was created or last restored: a round that saw it appear sends it whole.
    pub appeared: u64,
    /// Per tracked property, the sequence number of its last change.
    pub changed: BTreeMap<&'static str, u64>,
    /// The last soft delete, and the restore after it.
    pub deleted_at: Option<u64>,
    pub restored_at: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct SimGroup {
    pub display_name: String,
    /// Direct members, soft-deleted ones included (hidden while they are deleted).
    pub members: BTreeSet<String>,
    pub history: History,
}

/// One membership change, kept for `groups/delta`.
#[derive(Debug, Clone)]
pub struct MemberChange {
    pub seq: u64,
    pub group_id: String,
    pub member_id: String,
    pub added: bool,
}

/// The live directory of the simulated tenant.
#[derive(Debug, Default)]
pub struct Directory {
    pub tenant_id: String,
    pub domain: String,
    pub apps: Vec<AppRecord>,
    pub users: BTreeMap<String, SimUser>,
    /// Soft-deleted users (restorable), as they were; `deleted_at` holds the deletion.
    pub deleted_users: BTreeMap<String, SimUser>,
    /// Permanently deleted users: id -> sequence number of the deletion.
    pub purged_users: BTreeMap<String, u64>,
    pub groups: BTreeMap<String, SimGroup>,
    /// Soft-deleted groups and the sequence number of their deletion.
    pub deleted_groups: BTreeMap<String, (SimGroup, u64)>,
    pub purged_groups: BTreeMap<String, u64>,
    pub others: BTreeMap<String, (ObjectKind, Option<String>)>,
    pub member_log: Vec<MemberChange>,
    pub seq: u64,
    pub fidelity: Fidelity,
    transitive_cache: HashMap<String, (u64, std::sync::Arc<Vec<String>>)>,
}
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("group {group} lists member {member}, which is no user, group, device or service principal of the tenant")]
    UnknownMember { group: String, member: String },
    #[error("duplicate object id {0}")]
    DuplicateId(String),
}

impl Directory {
    pub fn from_file(file: TenantFile) -> Result<Self, TenantError> {
        let mut dir = Directory {
            tenant_id: file.tenant_id.to_ascii_lowercase(),
            domain: file.domain.to_ascii_lowercase(),
            apps: file.apps,
            fidelity: file.fidelity.unwrap_or_default(),
            ..Directory::default()
        };
        let mut seen = BTreeSet::new();
        let mut unique = |id: &str| {
            if seen.insert(id.to_owned()) { Ok(()) } else { Err(TenantError::DuplicateId(id.to_owned())) }
        };
        for user in file.users {
            unique(&user.id)?;
            dir.seq += 1;
            dir.users.insert(user.id.clone(), SimUser::new(user, dir.seq));
        }
        for d in file.devices {
            unique(&d.id)?;
            dir.others.insert(d.id, (ObjectKind::Device, d.display_name));
        }
        for sp in file.service_principals {
            unique(&sp.id)?;
            dir.others.insert(sp.id, (ObjectKind::ServicePrincipal, sp.display_name));
        }
        for g in &file.groups {
            unique(&g.id)?;
        }
        dir.seq += 1;
        for g in &file.groups {
            dir.groups.insert(
                g.id.clone(),
                SimGroup {
                    display_name: g.display_name.clone(),
                    members: BTreeSet::new(),
                    history: History::starting(dir.seq),
                },
            );
        }
        for g in file.groups {
            for m in g.members {
                if dir.kind_of(&m).is_none() {
                    return Err(TenantError::UnknownMember { group: g.id, member: m });
                }
                dir.groups.get_mut(&g.id).expect("inserted above").members.insert(m);
            }
        }
        Ok(dir)
    }

    pub fn to_file(&self) -> TenantFile {
        let others = |kind| {
            self.others
                .iter()
                .filter(|(_, (k, _))| *k == kind)
                .map(|(id, (_, name))| OtherRecord { id: id.clone(), display_name: name.clone() })
                .collect()
        };
        TenantFile {
            tenant_id: self.tenant_id.clone(),
            domain: self.domain.clone(),
            apps: self.apps.clone(),
            users: self.users.values().map(|u| u.record.clone()).collect(),
            groups: self
                .groups
                .iter()
                .map(|(id, g)| GroupRecord {
                    id: id.clone(),
                    display_name: g.display_name.clone(),
                    members: g.members.iter().cloned().collect(),
                })
                .collect(),
            devices: others(ObjectKind::Device),
            service_principals: others(ObjectKind::ServicePrincipal),
            fidelity: (self.fidelity != Fidelity::default()).then(|| self.fidelity.clone()),
            faults: None,
        }
    }

    pub fn kind_of(&self, id: &str) -> Option<ObjectKind> {
        if self.users.contains_key(id) {
            Some(ObjectKind::User)
        } else if self.groups.contains_key(id) {
            Some(ObjectKind::Group)
        } else {
            self.others.get(id).map(|(k, _)| *k)
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Whether `id` names an object a member list shows: not deleted, not unknown.
    pub fn is_visible(&self, id: &str) -> bool {
        self.kind_of(id).is_some()
    }

    /// Creates or replaces a user; restores it if it was soft-deleted.
    pub fn upsert_user(&mut self, record: UserRecord) {
        let seq = self.next_seq();
        let id = record.id.clone();
        if let Some(user) = self.users.get_mut(&id) {
            user.update(record, seq);
        } else if let Some(mut user) = self.deleted_users.remove(&id) {
            user.update(record, seq);
            user.appeared = seq;
            user.restored_at = Some(seq);
            self.users.insert(id, user);
        } else {
            self.purged_users.remove(&id);
            self.users.insert(id, SimUser::new(record, seq));
        }
    }

    /// Soft-deletes a user: gone from lists, reported as `@removed` (`changed`) by
    /// `users/delta`. With the soft-delete model its memberships stay, hidden; without it
    /// they are dropped and reported.
    pub fn delete_user(&mut self, id: &str) -> bool {
        let Some(mut user) = self.users.remove(id) else {
            return false;
        };
        let seq = self.next_seq();
        user.deleted_at = Some(seq);
        user.history.record(seq);
        self.deleted_users.insert(id.to_owned(), user);
        if !self.fidelity.soft_delete_keeps_memberships {
            for gid in self.groups_with_member(id) {
                self.set_member(&gid, id, false);
            }
        }
        true
    }

    /// Brings a soft-deleted user back, as it was, with the memberships it kept.
    pub fn restore_user(&mut self, id: &str) -> bool {
        let Some(mut user) = self.deleted_users.remove(id) else {
            return false;
        };
        let seq = self.next_seq();
        user.history.record(seq);
        user.appeared = seq;
        user.restored_at = Some(seq);
        self.users.insert(id.to_owned(), user);
        true
    }

    /// Deletes a user for good (at once, or after a soft delete): `@removed` (`deleted`)
    /// in `users/delta`, and removed from every group, which `groups/delta` reports.
    pub fn purge_user(&mut self, id: &str) -> bool {
        if self.users.remove(id).is_none() && self.deleted_users.remove(id).is_none() {
            return false;
        }
        for gid in self.groups_with_member(id) {
            self.set_member(&gid, id, false);
        }
        // Soft-deleted groups lose it too: it does not come back with them.
        for (group, _) in self.deleted_groups.values_mut() {
            group.members.remove(id);
        }
        let seq = self.next_seq();
        self.purged_users.insert(id.to_owned(), seq);
        true
    }

    /// Soft-deletes (`permanent`: deletes for good) a group. A soft-deleted group keeps its
    /// members and its place in other groups, hidden, until it is restored.
    pub fn delete_group(&mut self, id: &str, permanent: bool) -> bool {
        let Some(group) = self.groups.remove(id) else {
            return permanent && self.deleted_groups.remove(id).is_some() && self.record_group_purge(id);
        };
        if permanent {
            return self.record_group_purge(id);
        }
        let seq = self.next_seq();
        let mut group = group;
        group.history.record(seq);
        self.deleted_groups.insert(id.to_owned(), (group, seq));
        true
    }

    fn record_group_purge(&mut self, id: &str) -> bool {
        for gid in self.groups_with_member(id) {
            self.set_member(&gid, id, false);
        }
        let seq = self.next_seq();
        self.purged_groups.insert(id.to_owned(), seq);
        true
    }

    pub fn restore_group(&mut self, id: &str) -> bool {
        let Some((mut group, _)) = self.deleted_groups.remove(id) else {
            return false;
        };
        let seq = self.next_seq();
        group.history.record(seq);
        self.groups.insert(id.to_owned(), group);
        true
    }

    fn groups_with_member(&self, id: &str) -> Vec<String> {
        self.groups.iter().filter(|(_, g)| g.members.contains(id)).map(|(gid, _)| gid.clone()).collect()
    }

    /// The groups `id` is a direct member of (visible ones), sorted.
    pub fn member_of(&self, id: &str) -> Vec<String> {
        self.groups_with_member(id)
    }

    pub fn touch_user(&mut self, id: &str) {
        let seq = self.next_seq();
        if let Some(u) = self.users.get_mut(id) {
            u.history.record(seq);
        }
    }

    /// Adds or removes a direct member. Returns false when nothing changed.
    pub fn set_member(&mut self, group_id: &str, member_id: &str, added: bool) -> bool {
        let seq = self.seq + 1;
        let Some(group) = self.groups.get_mut(group_id) else {
            return false;
        };
        let changed = if added { group.members.insert(member_id.to_owned()) } else { group.members.remove(member_id) };
        if changed {
            self.seq = seq;
            group.history.record(seq);
            self.member_log.push(MemberChange {
                seq,
                group_id: group_id.to_owned(),
                member_id: member_id.to_owned(),
                added,
            });
        }
        changed
    }

    pub fn add_group(&mut self, id: String, display_name: String) {
        let seq = self.next_seq();
        self.groups.insert(id, SimGroup { display_name, members: BTreeSet::new(), history: History::starting(seq) });
    }

    /// Every object reachable from `group_id` through nested groups (excluding itself),
    /// sorted by id. Cycle-safe; cached until the directory changes.
    pub fn transitive_members(&mut self, group_id: &str) -> std::sync::Arc<Vec<String>> {
        if let Some((seq, list)) = self.transitive_cache.get(group_id)
            && *seq == self.seq
        {
            return list.clone();
        }
        let mut found = BTreeSet::new();
        let mut visited_groups = BTreeSet::from([group_id.to_owned()]);
        let mut stack = vec![group_id.to_owned()];
        while let Some(gid) = stack.pop() {
            let Some(group) = self.groups.get(&gid) else {
                continue;
            };
            for m in group.members.iter().filter(|m| self.is_visible(m)) {
                if m != group_id {
                    found.insert(m.clone());
                }
                if self.groups.contains_key(m) && visited_groups.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        let list = std::sync::Arc::new(found.into_iter().collect::<Vec<_>>());
        self.transitive_cache.insert(group_id.to_owned(), (self.seq, list.clone()));
        list
    }
}

impl SimUser {
    pub fn new(record: UserRecord, seq: u64) -> Self {
        SimUser {
            record,
            history: History::starting(seq),
            appeared: seq,
            changed: BTreeMap::new(),
            deleted_at: None,
            restored_at: None,
        }
    }

    /// Replaces the record, noting which tracked properties changed.
    fn update(&mut self, record: UserRecord, seq: u64) {
        for name in TRACKED_USER_PROPERTIES {
            if self.record.property(name) != record.property(name) {
                self.changed.insert(name, seq);
            }
        }
        self.record = record;
        self.history.record(seq);
    }
}
