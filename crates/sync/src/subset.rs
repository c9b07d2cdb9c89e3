//! The inputs of an incremental plan: the users a delta round touched, read from the copy
//! of Entra and the directory, with the round's changes laid over them.
//!
//! Which users can a round change? Those it reports, those whose direct memberships it
//! reports, every direct member of a group that enters or leaves the scope tree, and the
//! users the rules look at whatever Entra says (see `Store::users_needing_a_look`). Every
//! other user is exactly as the last applied plan left it, with the same Entra data, so
//! planning it again would change nothing: only its totals go into the plan.

use std::collections::{BTreeSet, HashMap, HashSet};

use safegpt_core::membership::groups_in_scope;
use safegpt_core::{EntraChanges, LocalUser, MemberKind, Settings, Snapshot, Source, Status, Untouched};
use safegpt_graph::GraphError;
use safegpt_store::Store;

use crate::SyncError;

pub(crate) struct SubsetInputs {
    pub local: Vec<LocalUser>,
    pub snapshot: Snapshot,
    pub untouched: Untouched,
}

/// Fails with "group not found" when a configured group is not in the tenant after the
/// changes: as with a full read, a missing group never takes its members out of scope.
pub(crate) async fn gather(
    store: &Store,
    settings: &Settings,
    changes: &EntraChanges,
) -> Result<Result<SubsetInputs, GraphError>, SyncError> {
    let roots = &settings.group_ids;
    let present = store.mirror_groups_present(roots).await?;
    for root in roots {
        let exists = changes.groups.get(root).copied().unwrap_or(present.contains(root));
        if !exists {
            return Ok(Err(GraphError::group_not_found(root, "not among the groups of the last delta round")));
        }
    }

    // The group tree before and after the round.
    let edges_before = store.mirror_group_edges().await?;
    let mut edges_after: Vec<(&str, &str)> = edges_before
        .iter()
        .filter(|(g, m)| changes.member_after(g, m, true))
        .map(|(g, m)| (g.as_str(), m.as_str()))
        .collect();
    edges_after.extend(
        changes
            .members
            .iter()
            .filter(|((g, m), kind)| *kind == &Some(MemberKind::Group) && changes.member_after(g, m, false))
            .map(|((g, m), _)| (g.as_str(), m.as_str())),
    );
    let roots_iter = || roots.iter().map(String::as_str);
    let scope_before = groups_in_scope(roots_iter(), edges_before.iter().map(|(g, m)| (g.as_str(), m.as_str())));
    let scope_after = groups_in_scope(roots_iter(), edges_after);

    let mut affected: BTreeSet<String> = changes.users.keys().cloned().collect();
    affected.extend(changes.members.keys().map(|(_, member)| member.clone()));
    let moved: Vec<String> = scope_before.symmetric_difference(&scope_after).cloned().collect();
    affected.extend(store.mirror_user_members_of(&moved).await?);
    let affected: Vec<String> = affected.into_iter().collect();

    let mut local = store.users_by_azure_ids(&affected).await?;
    let seen: HashSet<uuid::Uuid> = local.iter().map(|u| u.id).collect();
    local.extend(store.users_needing_a_look().await?.into_iter().filter(|u| !seen.contains(&u.id)));
    local.sort_by_key(|u| (u.created_at, u.id));

    let mut ids: BTreeSet<String> = affected.into_iter().collect();
    ids.extend(local.iter().filter_map(|u| u.azure_object_id.clone()));
    let ids: Vec<String> = ids.into_iter().collect();

    let mut remote: HashMap<String, safegpt_core::RemoteUser> =
        store.mirror_users(&ids).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
    for (id, user) in &changes.users {
        match user {
            Some(user) => remote.insert(id.clone(), user.clone()),
            None => remote.remove(id),
        };
    }
    let mut users: Vec<_> = remote.into_values().collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));

    let mut group_members = HashSet::new();
    if !roots.is_empty() {
        for (group, member) in store.mirror_memberships_of(&ids).await? {
            if scope_after.contains(&group) && changes.member_after(&group, &member, true) {
                group_members.insert(member);
            }
        }
        for ((group, member), kind) in &changes.members {
            if *kind == Some(MemberKind::User)
                && scope_after.contains(group)
                && changes.member_after(group, member, false)
            {
                group_members.insert(member.clone());
            }
        }
    }

    let totals = store.directory_totals().await?;
    let count = |f: &dyn Fn(&LocalUser) -> bool| local.iter().filter(|u| f(u)).count() as u64;
    let untouched = Untouched {
        synced: totals.synced.saturating_sub(count(&|u| u.source == Source::Entra)),
        seats_held: totals.seats_held.saturating_sub(count(&|u| u.status.holds_seat())),
        synced_active: totals
            .synced_active
            .saturating_sub(count(&|u| u.source == Source::Entra && u.status == Status::Active)),
    };
    Ok(Ok(SubsetInputs { local, snapshot: Snapshot { users, group_members, complete: true }, untouched }))
}
