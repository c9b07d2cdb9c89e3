//! Entra's groups as the sync mirrors them, and group membership derived from them locally.
//!
//! `groups/delta` reports *direct* members only. The directory keeps those edges and derives
//! who is in scope itself: a user is in scope when it is a direct member of a configured
//! group or of any group nested below one (at any depth, cycles allowed).

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// `member_id` is a direct member of `group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Membership {
    pub group_id: String,
    pub member_id: String,
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

/// The configured groups and every group nested below them: the groups whose direct user
/// members are in scope. `child_groups` are (parent, child) edges.
pub fn groups_in_scope<'a>(
    roots: impl IntoIterator<Item = &'a str>,
    child_groups: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeSet<String> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (parent, child) in child_groups {
        children.entry(parent).or_default().push(child);
    }
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<&str> = roots.into_iter().collect();
    while let Some(group) = stack.pop() {
        if !found.insert(group.to_owned()) {
            continue;
        }
        stack.extend(children.get(group).into_iter().flatten().copied());
    }
    found
}

/// Ids of the users that are members of a configured group, directly or through nesting.
pub fn users_in_scope(roots: &[String], memberships: &[Membership]) -> std::collections::HashSet<String> {
    let edges =
        memberships.iter().filter(|m| m.kind == MemberKind::Group).map(|m| (m.group_id.as_str(), m.member_id.as_str()));
    let groups = groups_in_scope(roots.iter().map(String::as_str), edges);
    memberships
        .iter()
        .filter(|m| m.kind == MemberKind::User && groups.contains(&m.group_id))
        .map(|m| m.member_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(group: &str, member: &str, kind: MemberKind) -> Membership {
        Membership { group_id: group.into(), member_id: member.into(), kind }
    }

    #[test]
    fn nested_groups_bring_their_users_in_scope_and_cycles_end() {
        let m = [
            edge("root", "a", MemberKind::Group),
            edge("a", "b", MemberKind::Group),
            edge("b", "root", MemberKind::Group),
            edge("b", "u1", MemberKind::User),
            edge("root", "u2", MemberKind::User),
            edge("other", "u3", MemberKind::User),
            edge("other", "a", MemberKind::Group),
        ];
        let users = users_in_scope(&["root".to_owned()], &m);
        assert_eq!(users, ["u1", "u2"].into_iter().map(String::from).collect());
        let groups = groups_in_scope(
            ["root"],
            m.iter().filter(|e| e.kind == MemberKind::Group).map(|e| (e.group_id.as_str(), e.member_id.as_str())),
        );
        assert_eq!(groups, ["a", "b", "root"].into_iter().map(String::from).collect());
    }

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
