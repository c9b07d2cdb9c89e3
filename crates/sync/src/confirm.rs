//! Before anyone is removed, the run asks Graph directly (`GET /users/{id}` and
//! `checkMemberGroups`, in JSON batches) whether the user is still gone or out of scope.

use safegpt_core::planner::scope_of;
use safegpt_core::{Action, LocalUser, Plan, Policy, RemoteUser, Scope, Snapshot, Untouched, plan_subset};
use safegpt_graph::{GraphClient, GraphError};
use safegpt_store::RunTotals;
use tracing::{info, warn};
use uuid::Uuid;

use crate::SyncRequest;

/// Before anyone is removed, Graph is asked directly whether the user is still gone or
/// still out of scope: a restore `users/delta` never reported, or a copy of Entra that is
/// behind, must not cost anyone their account.
pub(crate) struct Confirm<'a> {
    pub client: &'a GraphClient,
    pub scope: &'a Scope,
    pub policy: &'a Policy,
    pub request: &'a SyncRequest,
    pub run_id: Uuid,
}

impl Confirm<'_> {
    /// Plans an incremental run (a full read plans in slices, `full.rs`); when the plan
    /// removes users, reads them directly, and if any is back in
    /// scope puts what Graph said into the snapshot and plans again (they are then kept
    /// or enabled, not removed). Returns the plan and the users found back.
    pub(crate) async fn plan_and_confirm(
        &self,
        local: &[LocalUser],
        snapshot: &mut Snapshot,
        untouched: Untouched,
        totals: &mut RunTotals,
    ) -> Result<(Plan, Vec<RemoteUser>), GraphError> {
        let now = self.request.now;
        let make = |snapshot: &Snapshot| plan_subset(local, snapshot, untouched, self.policy, now, Uuid::now_v7);
        let first = make(snapshot);
        let removing: Vec<String> = first
            .changes
            .iter()
            .filter(|c| c.action == Action::Remove)
            .filter_map(|c| c.before().and_then(|b| b.azure_object_id.clone()))
            .collect();
        if removing.is_empty() {
            return Ok((first, Vec::new()));
        }
        let back = self.found_back(&removing, totals).await?;
        if back.is_empty() {
            return Ok((first, back));
        }
        back.iter().for_each(|user| snapshot.covered.insert(&user.id));
        take_back(&mut snapshot.users, &back, |u| &u.id, RemoteUser::clone);
        Ok((make(snapshot), back))
    }

    /// Asks Graph directly about the users a plan would remove (`removing`: their Entra ids)
    /// and returns those that are back in scope.
    pub(crate) async fn found_back(
        &self,
        removing: &[String],
        totals: &mut RunTotals,
    ) -> Result<Vec<RemoteUser>, GraphError> {
        let confirmed = self.client.confirm_users(removing, self.scope.groups()).await?;
        totals.confirmed_users = removing.len() as u64;
        let back: Vec<_> = confirmed
            .into_iter()
            .filter_map(|c| {
                let user = c.user?;
                let covered = self.scope.covered_if_member(!c.member_of.is_empty());
                scope_of(Some(&user), &covered, self.policy).is_ok().then_some(user)
            })
            .collect();
        info!(run_id = %self.run_id, confirmed = removing.len(), back = back.len(), "confirmed removals with Graph");
        if !back.is_empty() {
            warn!(run_id = %self.run_id, users = back.len(), "users due for removal are back in Entra: kept; the next run reads everything");
            totals.kept_users = back.len() as u64;
        }
        Ok(back)
    }
}

/// Puts what Graph said directly about users found back (members of the scope, as Graph
/// said) into a snapshot's users, in id order, each kept as `keep` makes it.
pub(crate) fn take_back<U>(
    users: &mut Vec<U>,
    back: &[RemoteUser],
    id: impl Fn(&U) -> &str,
    keep: impl Fn(&RemoteUser) -> U,
) {
    for user in back {
        match users.binary_search_by(|u| id(u).cmp(&user.id)) {
            Ok(i) => users[i] = keep(user),
            Err(i) => users.insert(i, keep(user)),
        }
    }
}
