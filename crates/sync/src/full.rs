//! A full read planned and written a slice of Entra ids at a time (core's `Walk`): Entra's
//! users are read from where the read staged them and the directory from the database a
//! slice at a time, and the plan's changes and the copy of Entra's users are written as
//! each slice is planned, so that memory holds one slice of each, not the tenant.
//!
//! Two passes over the same slices: the first counts (seats, disables for the deletion
//! threshold, removals to confirm with Graph) and writes nothing; the second plans each slice
//! again and writes it, in one transaction with the copy of Entra (or, for a dry run or a
//! held run, only the run's list of changes).

use std::sync::Arc;

use safegpt_core::{
    Covered, Decisions, LocalUser, MemberKind, Membership, PackedUser, Planning, Policy, RemoteUser, Seen, Untouched,
    Walk,
};
use safegpt_store::{Advance, MirrorWrite, PlanWriter, RunStatus, RunTotals, Store, StoreError};
use time::OffsetDateTime;
use tracing::{info, warn};
use uuid::Uuid;

use crate::confirm::Confirm;
use crate::read::staging_failed;
use crate::staged::{SliceBounds, StagedMemberships, StagedUsers};
use crate::{Ending, Phase, RunFailure, SyncError, SyncOutcome, held_error};

/// How often a run reads the directory and plans again when administrators keep changing
/// users between its read and its write.
const PLAN_ATTEMPTS: u32 = 3;

/// The store refused a plan because users changed after the run read them: `Ok` to read
/// the directory and plan again, or the failure once `attempt` plans were refused.
pub(crate) fn plan_again(attempt: &mut u32, run_id: Uuid) -> Result<(), RunFailure> {
    if *attempt >= PLAN_ATTEMPTS {
        return Err(RunFailure::DirectoryKeptMoving { attempts: *attempt });
    }
    warn!(%run_id, attempt = *attempt, "users changed after the run read them; planning again");
    *attempt += 1;
    Ok(())
}

/// What a full read planned with: every user of the tenant, staged in id order, each
/// marked covered or not.
pub(crate) struct FullSnapshot {
    pub users: StagedUsers,
    /// No group is configured: every user is covered.
    pub every_user: bool,
}

/// A slice of Entra users, as staged, and what the first pass saw in it.
struct Slice<'a> {
    bounds: SliceBounds<'a>,
    seen: Option<Seen>,
}

fn slices(users: &StagedUsers) -> Vec<Slice<'_>> {
    users.slices().into_iter().map(|bounds| Slice { bounds, seen: None }).collect()
}

impl Slice<'_> {
    /// The slice's Entra users as staged (packed), and which of them are covered.
    fn packed(&self, staged: &StagedUsers) -> Result<Vec<PackedUser>, SyncError> {
        staged.load(&self.bounds).map_err(staging_failed)
    }

    /// The slice's Entra users, unpacked while it is planned, and which of them are covered.
    fn users(packed: &[PackedUser], every_user: bool) -> (Vec<RemoteUser>, Covered) {
        let covered = match every_user {
            true => Covered::EveryUser,
            false => Covered::Members(packed.iter().filter(|u| u.covered()).map(|u| u.id().to_owned()).collect()),
        };
        (packed.iter().map(PackedUser::unpack).collect(), covered)
    }

    /// The directory users the store gave for this range, checked against it as Rust
    /// compares ids: a user put in the wrong slice would look deleted in Entra.
    fn check(&self, linked: Vec<LocalUser>) -> Result<Vec<LocalUser>, SyncError> {
        let SliceBounds { from, to, .. } = self.bounds;
        let outside = linked.iter().find(|u| {
            let id = u.azure_object_id.as_deref().unwrap_or_default();
            from.is_some_and(|from| id < from) || to.is_some_and(|to| id >= to)
        });
        match outside {
            None => Ok(linked),
            Some(user) => Err(SyncError::Store(StoreError::Corrupt {
                what: format!("the directory's users linked to Entra ids from {from:?} to {to:?}"),
                cause: format!("the database gave user {} outside that range (an id collation?)", user.id),
            })),
        }
    }
}

/// The rest of a full read, written as the copy of Entra when the plan is applied.
pub(crate) struct EntraCopy<'a> {
    /// The groups, and their direct members, staged.
    pub memberships: &'a StagedMemberships,
    pub tombstones: &'a [(String, MemberKind)],
    pub users_link: &'a str,
    pub groups_link: &'a str,
    pub scope: &'a str,
    /// Graph contradicted itself while reading: the next run reads everything again.
    pub full_read_due: bool,
}

/// What the slices are planned with.
pub(crate) struct FullPlan<'a> {
    pub ending: &'a Ending<'a>,
    pub confirm: &'a Confirm<'a>,
    pub policy: &'a Policy,
}

impl FullPlan<'_> {
    /// Plans the snapshot of a full read against the directory and applies it with `copy`
    /// (or records it, for a dry run or a held run). Graph's and the engine's own failures
    /// come back as errors the run records.
    pub(crate) async fn run(
        &self,
        snapshot: &mut FullSnapshot,
        copy: &EntraCopy<'_>,
        totals: &mut RunTotals,
        finished_at: impl Fn() -> OffsetDateTime,
    ) -> Result<SyncOutcome, SyncError> {
        let Ending { store, run_id, request, progress } = *self.ending;
        let now = request.now;
        let (mut found_back, mut confirmed, mut attempt) = (false, false, 1);
        loop {
            let planned_from = store.directory_version().await?;
            let unlinked = store.unlinked_users().await?;
            // Every page of every source was read: a full read that was not fails instead.
            let walk = Walk::new(self.policy, now, true, Untouched::default(), &unlinked);
            let mut slices = slices(&snapshot.users);
            let decisions = count(store, &walk, &mut slices, snapshot).await?;
            if !confirmed && !decisions.removing().is_empty() {
                confirmed = true;
                let back = self.confirm.found_back(decisions.removing(), totals).await.map_err(SyncError::Client)?;
                if !back.is_empty() {
                    found_back = true;
                    snapshot.users.take_back(&back);
                    continue;
                }
            }
            info!(%run_id, slices = slices.len(), unlinked = unlinked.len(), "planned in slices");
            let hold = match &request.approval {
                Some(approval) => decisions.hold_beyond(&approval.users),
                None => decisions.hold,
            };
            let (status, error) = match hold.filter(|_| !request.dry_run) {
                Some(hold) => {
                    warn!(%run_id, would_disable = hold.would_disable, "sync held by the deletion threshold");
                    (RunStatus::Held, Some(held_error(&hold, request.approval.as_ref())))
                }
                None if request.dry_run => (RunStatus::DryRun, None),
                None => (RunStatus::Succeeded, None),
            };
            let advance = Advance {
                // The users are copied with the slices, the memberships after them.
                mirror: MirrorWrite::Replace { groups: copy.memberships.groups() },
                tombstones: copy.tombstones,
                full_read_due: found_back || copy.full_read_due,
                users_delta_link: copy.users_link,
                groups_delta_link: copy.groups_link,
                full_read_at: Some(now),
                scope: copy.scope,
            };
            // Applied, or only listed (a dry run, a held run): either way from the directory
            // as the first pass read it, or not at all.
            let begun = match status {
                RunStatus::Succeeded => store.begin_apply(run_id, planned_from, Some(&advance)).await,
                _ => store.begin_listing(run_id, planned_from).await,
            };
            let mut writer = match begun {
                Ok(writer) => writer,
                Err(StoreError::DirectoryMoved) => {
                    plan_again(&mut attempt, run_id).map_err(SyncError::Failed)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let at = finished_at();
            let mut planning = walk.planning(&decisions, Uuid::now_v7);
            write_slices(&slices, snapshot, &mut planning, &mut writer, at).await?;
            if status == RunStatus::Succeeded {
                copy_memberships(copy.memberships, &mut writer).await?;
            }
            let counts = planning.finish();
            match status {
                RunStatus::Succeeded => writer.applied(counts, *totals, at).await?,
                _ => writer.listed(status, counts, *totals, error.as_ref(), at).await?,
            }
            info!(%run_id, status = status.as_str(), read = ?totals.read_mode, counts = ?counts, "sync finished");
            progress.send_modify(|p| p.phase = Phase::Finished);
            return Ok(SyncOutcome { run_id, status, counts, error, hold, plan: None, read_mode: totals.read_mode });
        }
    }
}

/// The first pass: reads each slice of the directory, keeps totals only, and notes which
/// slices the second pass must read again.
async fn count(
    store: &Store,
    walk: &Walk<'_>,
    slices: &mut [Slice<'_>],
    snapshot: &FullSnapshot,
) -> Result<Decisions, SyncError> {
    let mut counting = walk.counting();
    for slice in slices {
        let SliceBounds { from, to, .. } = slice.bounds;
        let linked = slice.check(store.linked_users(from, to).await?)?;
        let (users, covered) = Slice::users(&slice.packed(&snapshot.users)?, snapshot.every_user);
        slice.seen = Some(counting.slice(&linked, &users, &covered));
    }
    Ok(counting.finish())
}

/// The second pass: copies each slice's users (when applying) and plans each slice the
/// first pass saw anything to plan in, reading its directory users inside the writing
/// transaction (when applying, the rows the first pass read: no one wrote users in
/// between, the version was checked under the lock), and writes its changes before the
/// next slice is read.
async fn write_slices(
    slices: &[Slice<'_>],
    snapshot: &FullSnapshot,
    planning: &mut Planning<'_, '_, impl FnMut() -> Uuid>,
    writer: &mut PlanWriter<'_>,
    at: OffsetDateTime,
) -> Result<(), SyncError> {
    for slice in slices {
        let SliceBounds { from, to, .. } = slice.bounds;
        let packed = slice.packed(&snapshot.users)?;
        writer.copy_users(from, to, &packed).await?;
        if let Some(seen) = slice.seen.filter(|seen| !seen.anything_to_plan()) {
            planning.skip(seen);
            continue;
        }
        let linked = slice.check(writer.linked_users(from, to).await?)?;
        let (users, covered) = Slice::users(&packed, snapshot.every_user);
        writer.write(&planning.slice(&linked, &users, &covered), at).await?;
    }
    Ok(())
}

/// How many memberships are compared with the copy at a time (more when a group has more).
const MEMBERSHIP_CHUNK: usize = 20_000;

/// Writes the memberships a full read gathered as the copy's, a range of groups at a time:
/// a chunk ends only where a group does, so each group's members are compared whole.
async fn copy_memberships(memberships: &StagedMemberships, writer: &mut PlanWriter<'_>) -> Result<(), SyncError> {
    let mut read = memberships.read().map_err(staging_failed)?;
    let mut chunk: Vec<Membership> = Vec::new();
    let mut from: Option<Arc<str>> = None;
    loop {
        let next = read.next().map_err(staging_failed)?;
        let ends = match &next {
            None => true,
            Some(m) => chunk.len() >= MEMBERSHIP_CHUNK && chunk.last().is_some_and(|last| last.group_id != m.group_id),
        };
        if ends {
            let to = next.as_ref().map(|m| m.group_id.clone());
            writer.copy_memberships(from.as_deref(), to.as_deref(), &chunk).await?;
            chunk.clear();
            from = to;
        }
        match next {
            Some(m) => chunk.push(m),
            None => return Ok(()),
        }
    }
}
