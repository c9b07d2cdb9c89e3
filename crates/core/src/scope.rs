//! The sync's scope: which users of the tenant it covers. This is the one place the rule
//! lives; the engine and the store only feed it data.
//!
//! With no group configured, every user of the tenant is covered. Otherwise a user is
//! covered when it is a direct member of a configured group or of any group nested below one
//! (at any depth, cycles allowed) — `groups/delta` reports direct members only, so nesting
//! is derived here.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::membership::{EntraChanges, MemberKind, Membership};
use crate::planner::Policy;
use crate::settings::Settings;

/// The scope of the settings: the tenant and cloud it reads, and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    tenant: Option<String>,
    cloud: String,
    /// Sorted, without duplicates; empty: every user of the tenant.
    groups: Vec<String>,
}

/// The users a scope covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Covered {
    /// No group is configured: every user of the tenant.
    #[default]
    EveryUser,
    /// Ids of the users that are members of a configured group, directly or by nesting.
    Members(HashSet<String>),
}

impl Covered {
    pub fn contains(&self, user_id: &str) -> bool {
        match self {
            Covered::EveryUser => true,
            Covered::Members(ids) => ids.contains(user_id),
        }
    }

    /// Counts `user_id` as covered (Graph said so directly).
    pub fn insert(&mut self, user_id: &str) {
        if let Covered::Members(ids) = self {
            ids.insert(user_id.to_owned());
        }
    }
}

/// What one round of Entra changes can do to the scope: the scope groups after it, the
/// groups that entered or left the scope tree, and the users whose coverage it may change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reach {
    pub groups_after: BTreeSet<String>,
    /// Groups that entered or left the scope tree: each of their direct user members may
    /// have changed coverage too (the store knows who they are).
    pub moved_groups: Vec<String>,
    /// Users the round reports, and users whose direct memberships it reports.
    pub users: BTreeSet<String>,
}

impl Scope {
    pub fn new(settings: &Settings) -> Scope {
        let mut groups: Vec<String> = settings.group_ids.iter().map(|g| g.to_string()).collect();
        groups.sort();
        groups.dedup();
        Scope {
            tenant: settings.tenant_id.as_ref().map(|t| t.to_string()),
            cloud: format!("{}:{}:{}", settings.cloud.name(), settings.cloud.login_url(), settings.cloud.graph_url()),
            groups,
        }
    }

    /// The configured groups (the roots of the scope tree).
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn is_whole_tenant(&self) -> bool {
        self.groups.is_empty()
    }

    /// What a plan was made for: the copy of Entra holds the whole tenant whatever the scope,
    /// but the users the last plans left alone are only "as the rules leave them" for this
    /// scope, these rules and this `$select`; a different key needs a full plan.
    pub fn key(&self, policy: &Policy, select: &str) -> String {
        let Policy {
            include_guests,
            auto_disable,
            auto_remove,
            remove_after_days,
            seats,
            threshold_count,
            threshold_percent,
        } = policy;
        format!(
            "tenant={};cloud={};groups={};guests={include_guests};auto_disable={auto_disable};\
             auto_remove={auto_remove};remove_after_days={remove_after_days};seats={seats};\
             threshold={threshold_count}/{threshold_percent}%;select={select}",
            self.tenant.as_deref().unwrap_or("-"),
            self.cloud,
            self.groups.join(","),
        )
    }

    /// What Graph's direct answer for one user (a member of a configured group, or not)
    /// means for its coverage.
    pub fn covered_if_member(&self, is_member: bool) -> Covered {
        if self.is_whole_tenant() || is_member { Covered::EveryUser } else { Covered::Members(HashSet::new()) }
    }

    /// The scope groups given the group tree's (parent, child) edges: the configured groups
    /// and every group nested below them.
    pub fn groups_covered<'a>(
        &'a self,
        child_groups: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> BTreeSet<String> {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for (parent, child) in child_groups {
            children.entry(parent).or_default().push(child);
        }
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut stack: Vec<&str> = self.groups.iter().map(String::as_str).collect();
        while let Some(group) = stack.pop() {
            if !found.insert(group.to_owned()) {
                continue;
            }
            stack.extend(children.get(group).into_iter().flatten().copied());
        }
        found
    }

    /// The users covered, given every direct membership of the tenant.
    pub fn users_covered(&self, memberships: &[Membership]) -> Covered {
        match self.covering(memberships) {
            None => Covered::EveryUser,
            Some(covering) => Covered::Members(covering.map(|m| m.member_id.to_string()).collect()),
        }
    }

    /// The direct memberships of users that put them in scope, given every direct
    /// membership of the tenant; `None` when every user is.
    pub fn covering<'m>(&self, memberships: &'m [Membership]) -> Option<impl Iterator<Item = &'m Membership>> {
        if self.is_whole_tenant() {
            return None;
        }
        let edges = memberships.iter().filter(|m| m.kind == MemberKind::Group).map(|m| (&*m.group_id, &*m.member_id));
        let groups = self.groups_covered(edges);
        Some(memberships.iter().filter(move |m| m.kind == MemberKind::User && groups.contains(&*m.group_id)))
    }

    /// What `changes` can affect, given the group tree's edges before them.
    pub fn reach(&self, changes: &EntraChanges, child_groups_before: &[(String, String)]) -> Reach {
        let before = child_groups_before.iter().map(|(g, m)| (g.as_str(), m.as_str()));
        let mut after: Vec<(&str, &str)> = child_groups_before
            .iter()
            .filter(|(g, m)| changes.member_after(g, m, true))
            .map(|(g, m)| (g.as_str(), m.as_str()))
            .collect();
        after.extend(
            changes
                .members
                .iter()
                .filter(|((g, m), kind)| *kind == &Some(MemberKind::Group) && changes.member_after(g, m, false))
                .map(|((g, m), _)| (g.as_str(), m.as_str())),
        );
        let groups_before = self.groups_covered(before);
        let groups_after = self.groups_covered(after);
        let moved_groups = groups_before.symmetric_difference(&groups_after).cloned().collect();
        let mut users: BTreeSet<String> = changes.users.keys().cloned().collect();
        users.extend(changes.members.keys().map(|(_, member)| member.clone()));
        Reach { groups_after, moved_groups, users }
    }
}

impl Reach {
    /// Whether `member_id` is covered through `group_id` after `changes`, given whether it
    /// was a direct member of that group before them.
    pub fn covered_through(&self, changes: &EntraChanges, group_id: &str, member_id: &str, before: bool) -> bool {
        self.groups_after.contains(group_id) && changes.member_after(group_id, member_id, before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingsPatch;

    fn edge(group: &str, member: &str, kind: MemberKind) -> Membership {
        Membership { group_id: group.into(), member_id: member.into(), kind }
    }

    /// A scope of groups named for reading (settings only hold GUIDs).
    fn scoped(groups: &[&str]) -> Scope {
        Scope { groups: groups.iter().map(|g| g.to_string()).collect(), ..Scope::new(&Settings::default()) }
    }

    #[test]
    fn no_group_covers_every_user() {
        let scope = scoped(&[]);
        assert!(scope.is_whole_tenant());
        assert_eq!(scope.users_covered(&[edge("g", "u1", MemberKind::User)]), Covered::EveryUser);
        assert!(Covered::EveryUser.contains("anyone"));
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
        let scope = scoped(&["root"]);
        let users = scope.users_covered(&m);
        assert_eq!(users, Covered::Members(["u1", "u2"].into_iter().map(String::from).collect()));
        assert!(!users.contains("u3"), "a user only in an unconfigured group is not covered");
        let groups = scope
            .groups_covered(m.iter().filter(|e| e.kind == MemberKind::Group).map(|e| (&*e.group_id, &*e.member_id)));
        assert_eq!(groups, ["a", "b", "root"].into_iter().map(String::from).collect());
    }

    #[test]
    fn the_key_ignores_group_order_and_tenant_case_but_not_the_rules() {
        let settings = |groups: &str, tenant: &str| {
            let patch = SettingsPatch {
                group_ids: Some(vec![groups.to_owned()]),
                tenant_id: Some(tenant.to_owned()),
                ..SettingsPatch::default()
            };
            Settings::default().apply(&patch).unwrap()
        };
        let (g1, g2) = ("f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d1", "f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2");
        let a = settings(&format!("{g2},{g1}"), "Contoso.onmicrosoft.com");
        let b = settings(&format!("{g1} {g2} {}", g1.to_uppercase()), "contoso.onmicrosoft.com");
        let policy = Policy::from(&a);
        assert_eq!(Scope::new(&a).key(&policy, "id"), Scope::new(&b).key(&policy, "id"));
        let guests = Policy { include_guests: !policy.include_guests, ..policy.clone() };
        assert_ne!(Scope::new(&a).key(&policy, "id"), Scope::new(&a).key(&guests, "id"));
        assert_ne!(Scope::new(&a).key(&policy, "id"), Scope::new(&a).key(&policy, "id,mail"));
        assert_ne!(
            Scope::new(&a).key(&policy, "id"),
            Scope::new(&settings(g1, "contoso.onmicrosoft.com")).key(&policy, "id")
        );
    }

    #[test]
    fn a_round_reaches_reported_users_members_and_groups_that_move() {
        let scope = scoped(&["root"]);
        let edges_before = vec![("root".to_owned(), "old".to_owned())];
        let mut changes = EntraChanges::default();
        // `old` leaves the tree, `new` enters it; `u9` is reported changed.
        changes.members.insert(("root".into(), "old".into()), None);
        changes.members.insert(("root".into(), "new".into()), Some(MemberKind::Group));
        changes.members.insert(("new".into(), "u1".into()), Some(MemberKind::User));
        changes.users.insert("u9".into(), None);
        let reach = scope.reach(&changes, &edges_before);
        assert_eq!(reach.groups_after, BTreeSet::from(["root".to_owned(), "new".to_owned()]));
        assert_eq!(reach.moved_groups, ["new", "old"]);
        assert!(reach.users.contains("u9") && reach.users.contains("u1") && reach.users.contains("old"));
        assert!(reach.covered_through(&changes, "new", "u1", false));
        assert!(!reach.covered_through(&changes, "old", "u2", true), "old is out of the tree");
    }

    #[test]
    fn a_deleted_group_leaves_the_tree() {
        let scope = scoped(&["root"]);
        let edges_before = vec![("root".to_owned(), "child".to_owned())];
        let mut changes = EntraChanges::default();
        changes.groups.insert("child".into(), false);
        let reach = scope.reach(&changes, &edges_before);
        assert_eq!(reach.moved_groups, ["child"]);
        assert!(!reach.groups_after.contains("child"));
    }
}
