//! The inputs of an incremental plan: the users a delta round touched, read from the copy
//! of Entra and the directory, with the round's changes laid over them.
//!
//! Which users can a round change? Those it reports, those whose direct memberships it
//! reports, every direct member of a group that enters or leaves the scope tree, and the
//! users the rules look at whatever Entra says (see `Store::users_needing_a_look`). Every
//! other user is exactly as the last applied plan left it, with the same Entra data, so
//! planning it again would change nothing: only its totals go into the plan.

use std::collections::{BTreeSet, HashMap, HashSet};

use safegpt_core::{Covered, EntraChanges, LocalUser, MemberKind, Scope, Snapshot, Source, Status, Untouched};
use safegpt_store::Store;

use crate::{RunFailure, SyncError};

pub(crate) struct SubsetInputs {
    pub local: Vec<LocalUser>,
    pub snapshot: Snapshot,
    pub untouched: Untouched,
}

/// Fails with "group not found" when a configured group is not in the tenant after the
/// changes: as with a full read, a missing group never takes its members out of scope.
pub(crate) async fn gather(store: &Store, scope: &Scope, changes: &EntraChanges) -> Result<SubsetInputs, SyncError> {
    let present = store.mirror_groups_present(scope.groups()).await?;
    for root in scope.groups() {
        let exists = changes.groups.get(root).copied().unwrap_or(present.contains(root));
        if !exists {
            let detail = "not among the groups of the last delta round";
            return Err(SyncError::Failed(RunFailure::GroupMissing { group: root.clone(), detail }));
        }
    }

    let reach = scope.reach(changes, &store.mirror_group_edges().await?);
    let mut affected = reach.users.clone();
    affected.extend(store.mirror_user_members_of(&reach.moved_groups).await?);
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

    let mut covered = Covered::Members(HashSet::new());
    if scope.is_whole_tenant() {
        covered = Covered::EveryUser;
    } else {
        for (group, member) in store.mirror_memberships_of(&ids).await? {
            if reach.covered_through(changes, &group, &member, true) {
                covered.insert(&member);
            }
        }
        for ((group, member), kind) in &changes.members {
            if *kind == Some(MemberKind::User) && reach.covered_through(changes, group, member, false) {
                covered.insert(member);
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
    Ok(SubsetInputs { local, snapshot: Snapshot { users, covered, complete: true }, untouched })
}
