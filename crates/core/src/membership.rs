//! Entra's groups as the sync mirrors them, and group membership derived from them locally.
//!
//! `groups/delta` reports *direct* members only. The directory keeps those edges; who is in
//! scope is derived from them by [`crate::scope::Scope`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::user::RemoteUser;

/// What a direct member of a group is. Other objects (devices, service principals) are not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(MemberKind::User),
            "group" => Some(MemberKind::Group),
            _ => None,
        }
    }
}

/// `member_id` is a direct member of `group_id`. A full read holds every direct membership
/// of the tenant, so the members of a group share its id, and an id is boxed rather than a
/// `String` (which keeps room to grow): 150 bytes a membership became 90.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Membership {
    pub group_id: Arc<str>,
    pub member_id: Box<str>,
    pub kind: MemberKind,
}

/// The net result of one round of `users/delta` and `groups/delta`. Graph may report an
/// object several times in a round; the last report wins, so reading is idempotent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntraChanges {
    /// Users created or changed (`Some`, the whole user) or deleted (`None`).
    pub users: BTreeMap<String, Option<RemoteUser>>,
    /// Direct memberships added (`Some(kind)`) or removed (`None`), by (group, member).
    pub members: BTreeMap<(String, String), Option<MemberKind>>,
    /// Groups that exist (`true`, new or changed) or were deleted (`false`).
    pub groups: BTreeMap<String, bool>,
}

impl EntraChanges {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.members.is_empty() && self.groups.is_empty()
    }

    /// Whether the membership (`group_id`, `member_id`) holds after these changes, given
    /// whether it held before.
    pub fn member_after(&self, group_id: &str, member_id: &str, before: bool) -> bool {
        if self.groups.get(group_id) == Some(&false) || self.groups.get(member_id) == Some(&false) {
            return false;
        }
        match self.members.get(&(group_id.to_owned(), member_id.to_owned())) {
            Some(change) => change.is_some(),
            None => before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_group_ends_every_membership_of_and_in_it() {
        let mut changes = EntraChanges::default();
        changes.groups.insert("g".into(), false);
        changes.members.insert(("h".into(), "u".into()), None);
        changes.members.insert(("h".into(), "v".into()), Some(MemberKind::User));
        assert!(!changes.member_after("g", "u", true));
        assert!(!changes.member_after("root", "g", true));
        assert!(!changes.member_after("h", "u", true));
        assert!(changes.member_after("h", "v", false));
        assert!(changes.member_after("h", "w", true));
    }
}
