//! Reading Entra: a full read (first delta rounds over users and groups) or an incremental
//! one (the rounds that follow the stored delta links). Either way a failure ends the read
//! and nothing partial is returned.
//!
//! Graph as Microsoft documents it (docs/graph-fidelity.md): an entry may carry only the
//! properties that changed, so entries are laid over the copy of Entra, and a user known
//! only from such an entry is read directly; the same object may come more than once and in
//! any order; a soft-deleted user or group keeps its memberships without `groups/delta`
//! saying so, and its restore may not be reported at all, so a run that finds something
//! back reads everything instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use safegpt_core::{EntraChanges, MemberKind, PackedUser, RemoteUser, Scope, UserPatch};
use safegpt_graph::{DeltaStart, ErrorKind, GraphClient, GraphError, GroupDelta, UserDelta};
use safegpt_store::Store;
use tracing::info;
use uuid::Uuid;

use crate::full::FullSnapshot;
use crate::staged::{
    CoveredId, MEMBER_RUN_ENTRIES, MemberEntry, Packed, RUN_ENTRIES, Sorted, Sorter, StagedMemberships, UsersWriter,
};
use crate::{Phase, ProgressSender, RunFailure, SyncError};

/// Everything a full read saw, and the links the next rounds start from.
pub(crate) struct FullRead {
    /// Every user of the tenant, staged in id order, each marked covered or not.
    pub snapshot: FullSnapshot,
    /// How many of them have an address in Entra that is not an e-mail address.
    pub invalid_emails: u64,
    /// The groups that exist, in id order, and their direct members, staged.
    pub memberships: StagedMemberships,
    pub users_link: String,
    pub groups_link: String,
    pub tombstones: Vec<(String, MemberKind)>,
    /// Graph contradicted itself (a reported user not found directly): read everything next.
    pub full_read_due: bool,
}

/// What changed since the stored links, and the links after it.
pub(crate) struct IncrementalRead {
    pub changes: EntraChanges,
    pub users_read: u64,
    pub users_link: String,
    pub groups_link: String,
    pub tombstones: Vec<(String, MemberKind)>,
    /// Graph contradicted itself (a reported user not found directly): read everything next.
    pub full_read_due: bool,
}

/// How an incremental read ended.
pub(crate) enum Incremental {
    Read(IncrementalRead),
    /// Users or groups came back from a soft delete: their memberships, kept by Entra
    /// all along, were never reported, so only a full read knows them.
    SomethingRestored(Vec<String>),
}

/// A `users/delta` entry as a round keeps it until the round ends, when its entries are
/// folded to one per user.
pub(crate) trait Entry {
    /// The user the entry is about.
    fn id(&self) -> &str;
    /// `later`, a later entry about the same user, laid over this one; what is left in
    /// `later` is dropped.
    fn lay_over(&mut self, later: &mut Self);
}

impl Entry for UserDelta {
    fn id(&self) -> &str {
        match self {
            UserDelta::Present(patch) => &patch.id,
            UserDelta::Removed { id, .. } => id,
        }
    }

    fn lay_over(&mut self, later: &mut Self) {
        match (self, later) {
            (UserDelta::Present(known), UserDelta::Present(later)) => known.merge(std::mem::take(later)),
            (known, later) => std::mem::swap(known, later),
        }
    }
}

/// A round's entries folded to one per user, by id: a later report of a user wins, and
/// later partial entries are laid over earlier ones (Graph may send a user several times).
/// Not copied: a full read's round holds every user of the tenant.
pub(crate) fn fold<E: Entry>(mut entries: Vec<E>) -> Vec<E> {
    // A stable sort keeps each user's entries in their arrival order; its scratch buffer is
    // at most half the round (an arrival number would make a packed entry larger than the
    // user it becomes).
    entries.sort_by(|a, b| a.id().cmp(b.id()));
    entries.dedup_by(|later, known| {
        let same = later.id() == known.id();
        if same {
            known.lay_over(later);
        }
        same
    });
    entries
}

fn missing_delta_link(resource: &str) -> GraphError {
    GraphError::new(
        ErrorKind::Unexpected,
        format!("Microsoft Graph ended a {resource} delta round without a deltaLink."),
        format!("{resource}/delta: last page had neither @odata.nextLink nor @odata.deltaLink"),
    )
}

/// Runs one `users/delta` round to its end, handing each entry to `keep` as it arrives;
/// returns how many entries it read and the delta link.
async fn users_round(
    client: &GraphClient,
    start: DeltaStart<'_>,
    run_id: Uuid,
    progress: &ProgressSender,
    mut keep: impl FnMut(UserDelta) -> Result<(), SyncError>,
) -> Result<(u64, String), SyncError> {
    let mut pager = client.users_delta(start);
    let mut read = 0;
    while let Some(page) = pager.next_page().await.map_err(SyncError::Client)? {
        read += page.len() as u64;
        progress.send_modify(|p| {
            p.pages_read += 1;
            p.users_read += page.len() as u64;
        });
        page.into_iter().try_for_each(&mut keep)?;
        info!(%run_id, pages = pager.pages, users = read, "read users delta page");
    }
    let link = pager.delta_link.ok_or_else(|| SyncError::Client(missing_delta_link("users")))?;
    Ok((read, link))
}

/// Runs one `groups/delta` round to its end, handing each group entry to `each`.
async fn groups_round(
    client: &GraphClient,
    start: DeltaStart<'_>,
    run_id: Uuid,
    progress: &ProgressSender,
    mut each: impl FnMut(GroupDelta),
) -> Result<String, GraphError> {
    let mut pager = client.groups_delta(start);
    while let Some(page) = pager.next_page().await? {
        progress.send_modify(|p| {
            p.pages_read += 1;
            p.groups_read += page.len() as u64;
        });
        page.into_iter().for_each(&mut each);
        info!(%run_id, pages = pager.pages, "read groups delta page");
    }
    pager.delta_link.ok_or_else(|| missing_delta_link("groups"))
}

/// The ids of the users Entra holds as soft-deleted now.
async fn deleted_users(client: &GraphClient) -> Result<BTreeSet<String>, GraphError> {
    let mut pager = client.deleted_user_ids();
    let mut ids = BTreeSet::new();
    while let Some(page) = pager.next_page().await? {
        ids.extend(page);
    }
    Ok(ids)
}

/// The users after a round's entries. Entries that lack what every user has (nothing known
/// to lay them over) are read directly; the ids Graph then does not have are returned apart.
async fn complete(
    client: &GraphClient,
    patches: Vec<(UserPatch, Option<&RemoteUser>)>,
    run_id: Uuid,
) -> Result<(Vec<RemoteUser>, Vec<String>), GraphError> {
    let mut users = Vec::with_capacity(patches.len());
    let mut unknown = Vec::new();
    for (patch, base) in patches {
        if base.is_none() && !patch.is_whole() {
            unknown.push(patch.id);
        } else {
            users.extend(patch.apply(base));
        }
    }
    let missing = read_directly(client, &unknown, &mut users, run_id).await?;
    Ok((users, missing))
}

/// Reads the users `unknown` names directly (delta sent them only in part, with nothing
/// known to lay them over) into `users`; returns the ids Graph then does not have.
async fn read_directly(
    client: &GraphClient,
    unknown: &[String],
    users: &mut Vec<RemoteUser>,
    run_id: Uuid,
) -> Result<Vec<String>, GraphError> {
    let mut missing = Vec::new();
    if unknown.is_empty() {
        return Ok(missing);
    }
    info!(%run_id, users = unknown.len(), "reading users that delta sent only in part");
    for confirmed in client.confirm_users(unknown, &[]).await? {
        match confirmed.user {
            Some(user) => users.push(user),
            None => missing.push(confirmed.id),
        }
    }
    Ok(missing)
}

/// Reads every user, group and direct membership of the tenant: the users staged on disk
/// as they arrive (see `staged`), marked covered or not by `scope`, cut in slices of
/// `slice` users.
pub(crate) async fn read_full(
    client: &GraphClient,
    run_id: Uuid,
    progress: &ProgressSender,
    scope: &Scope,
    slice: usize,
) -> Result<FullRead, SyncError> {
    let graph = SyncError::Client;
    // The two rounds run at once: a full read costs the longer round's round trips, not
    // their sum. Each keeps its own tombstones (user and group ids never collide).
    progress.send_modify(|p| p.phase = Phase::ReadingUsers);
    let users_read = async {
        let mut entries = Sorter::new(RUN_ENTRIES);
        let (_, users_link) = users_round(client, DeltaStart::Initial, run_id, progress, |entry| {
            entries.push(Packed::from(entry)).map_err(staging_failed)
        })
        .await?;
        // What may still be read is groups.
        progress.send_modify(|p| p.phase = Phase::ReadingGroups);
        Ok::<_, SyncError>((entries.finish().map_err(staging_failed)?, users_link))
    };
    let groups_read = async {
        let mut groups = BTreeSet::new();
        // Every `members@delta` entry (a later one about the same edge wins), the members
        // an entry carries sharing its group's id.
        let mut members = Sorter::new(MEMBER_RUN_ENTRIES);
        let mut staged = Ok(());
        let mut tombstones: BTreeMap<String, MemberKind> = BTreeMap::new();
        let groups_link = groups_round(client, DeltaStart::Initial, run_id, progress, |group| {
            if group.removed {
                groups.remove(&group.id);
                if !group.permanent {
                    tombstones.insert(group.id, MemberKind::Group);
                }
                return;
            }
            tombstones.remove(&group.id);
            let group_id: Arc<str> = group.id.as_str().into();
            for member in group.members {
                let arrival = u32::try_from(members.held()).unwrap_or(u32::MAX);
                let entry = MemberEntry {
                    group_id: group_id.clone(),
                    member_id: member.id.into_boxed_str(),
                    kind: member.kind,
                    arrival,
                };
                if staged.is_ok() {
                    staged = members.push(entry);
                }
            }
            groups.insert(group.id);
        })
        .await
        .map_err(graph)?;
        staged.map_err(staging_failed)?;
        let members = members.finish().map_err(staging_failed)?;
        Ok::<_, SyncError>((StagedMemberships::new(members, groups.into_iter().collect()), groups_link, tombstones))
    };
    let ((entries, users_link), (memberships, groups_link, mut tombstones)) =
        tokio::try_join!(users_read, groups_read)?;
    // The deleted items may lag behind a restore the round already saw: present wins.
    let mut deleted = deleted_users(client).await.map_err(graph)?;

    // The users the scope covers, in id order, met in step with the users as they merge.
    let covered = memberships.covered(scope).map_err(staging_failed)?;
    let mut covered_ids = covered.as_ref().map(Sorted::merge).transpose().map_err(staging_failed)?;
    let mut next_covered: Option<CoveredId> = None;
    if let Some(ids) = &mut covered_ids {
        next_covered = ids.next().map_err(staging_failed)?;
    }
    let mut writer = UsersWriter::new(slice).map_err(staging_failed)?;
    // Entries that lack what every user has, with nothing known to lay them over.
    let mut unknown = Vec::new();
    let mut invalid_emails = 0;
    // Each user made in place from its folded entry, marked and written: a first round
    // holds the whole tenant.
    let mut merged = entries.merge().map_err(staging_failed)?;
    let mut n = 0u32;
    while let Some(entry) = merged.next().map_err(staging_failed)? {
        match entry {
            Packed::Present { patch, .. } => match PackedUser::from_whole(patch) {
                Ok(mut user) => {
                    invalid_emails += u64::from(user.has_invalid_address());
                    deleted.remove(user.id());
                    if let Some(ids) = &mut covered_ids {
                        while next_covered.as_ref().is_some_and(|c| &*c.0 < user.id()) {
                            next_covered = ids.next().map_err(staging_failed)?;
                        }
                        if next_covered.as_ref().is_some_and(|c| &*c.0 == user.id()) {
                            user.cover();
                        }
                    }
                    writer.push(&user).map_err(staging_failed)?;
                }
                Err(patch) => unknown.push(patch.id().to_owned()),
            },
            // A first round may already report deletions: a deleted user is simply not read.
            Packed::Removed { id, permanent: false } => {
                tombstones.insert(id.into_string(), MemberKind::User);
            }
            Packed::Removed { permanent: true, .. } => {}
        }
        // The merge is the work of seconds at a million users: the lease is renewed meanwhile.
        n = n.wrapping_add(1);
        if n.is_multiple_of(4096) {
            tokio::task::yield_now().await;
        }
    }
    drop(merged);
    // A user Graph did not have when read directly is not read this time; the next run
    // reads everything again.
    let mut read = Vec::new();
    let missing = read_directly(client, &unknown, &mut read, run_id).await.map_err(graph)?;
    // Those of them the scope covers: a pass over the covered ids, for the few read directly.
    let mut covered_directly: BTreeSet<Box<str>> = BTreeSet::new();
    if let Some(covered) = covered.as_ref().filter(|_| !read.is_empty()) {
        let wanted: BTreeSet<&str> = read.iter().map(|u| u.id.as_str()).collect();
        let mut ids = covered.merge().map_err(staging_failed)?;
        while let Some(CoveredId(id)) = ids.next().map_err(staging_failed)? {
            if wanted.contains(&*id) {
                covered_directly.insert(id);
            }
        }
    }
    let directly: Vec<PackedUser> = read
        .iter()
        .map(|user| {
            invalid_emails += u64::from(user.has_invalid_address());
            deleted.remove(&user.id);
            let mut packed = PackedUser::pack(user);
            if covered.is_none() || covered_directly.contains(user.id.as_str()) {
                packed.cover();
            }
            packed
        })
        .collect();
    let users = writer.finish(directly).map_err(staging_failed)?;
    tombstones.extend(deleted.into_iter().map(|id| (id, MemberKind::User)));
    let tombstones = tombstones.into_iter().collect();
    info!(%run_id, users = users.len(), groups = memberships.groups().len(), "full read done");
    Ok(FullRead {
        snapshot: FullSnapshot { users, every_user: covered.is_none() },
        invalid_emails,
        memberships,
        users_link,
        groups_link,
        tombstones,
        full_read_due: !missing.is_empty(),
    })
}

/// Entra's users could not be staged on disk: the run fails, having applied nothing.
pub(crate) fn staging_failed(e: std::io::Error) -> SyncError {
    SyncError::Failed(RunFailure::Staging { cause: e.to_string() })
}

/// Reads what changed since the stored delta links.
pub(crate) async fn read_incremental(
    client: &GraphClient,
    store: &Store,
    users_link: &str,
    groups_link: &str,
    run_id: Uuid,
    progress: &ProgressSender,
) -> Result<Incremental, SyncError> {
    let graph = SyncError::Client;
    let stored_tombstones: HashMap<String, MemberKind> = store.tombstones().await?.into_iter().collect();
    progress.send_modify(|p| p.phase = Phase::ReadingUsers);
    let mut events = Vec::new();
    let (users_read, users_link) = users_round(client, DeltaStart::Link(users_link), run_id, progress, |entry| {
        events.push(entry);
        Ok(())
    })
    .await?;
    let events = fold(events);
    // `fold` left one entry per user, in id order.
    let event_of = |id: &str| events.binary_search_by(|e| e.id().cmp(id)).ok().map(|i| &events[i]);

    let mut changes = EntraChanges::default();
    let mut restored: Vec<String> = Vec::new();
    let mut group_tombstones: BTreeSet<String> =
        stored_tombstones.iter().filter(|(_, k)| **k == MemberKind::Group).map(|(id, _)| id.clone()).collect();
    progress.send_modify(|p| p.phase = Phase::ReadingGroups);
    let groups_link = groups_round(client, DeltaStart::Link(groups_link), run_id, progress, |group| {
        if group.removed {
            changes.groups.insert(group.id.clone(), false);
            if group.permanent {
                group_tombstones.remove(&group.id);
            } else {
                group_tombstones.insert(group.id);
            }
            return;
        }
        if group_tombstones.remove(&group.id) {
            restored.push(group.id.clone());
        }
        for member in group.members {
            changes.members.insert((group.id.clone(), member.id), member.kind);
        }
        changes.groups.insert(group.id, true);
    })
    .await
    .map_err(graph)?;

    // Restores: reported ones (a tombstoned user present again), and those `users/delta`
    // left out: a tombstoned user no longer among the deleted items may be back, or gone
    // for good; a user reported deleted softly but not (yet) among them, too. Graph itself
    // answers for those, directly.
    let deleted_now = deleted_users(client).await.map_err(graph)?;
    // The deleted items may lag behind a restore or creation the round saw: present wins.
    let mut user_tombstones: BTreeSet<String> =
        deleted_now.iter().filter(|id| !matches!(event_of(id), Some(UserDelta::Present(_)))).cloned().collect();
    let mut unsure = Vec::new();
    for (id, kind) in &stored_tombstones {
        if *kind != MemberKind::User {
            continue;
        }
        match event_of(id) {
            Some(UserDelta::Present(_)) => restored.push(id.clone()),
            Some(UserDelta::Removed { .. }) => {}
            None if deleted_now.contains(id) => {}
            None => unsure.push(id.clone()),
        }
    }
    for event in &events {
        if let UserDelta::Removed { id, permanent: false } = event {
            // Deleted softly per delta, whatever the deleted items say yet.
            user_tombstones.insert(id.clone());
            if !deleted_now.contains(id) {
                unsure.push(id.clone());
            }
        }
    }
    if !unsure.is_empty() {
        for confirmed in client.confirm_users(&unsure, &[]).await.map_err(graph)? {
            match confirmed.user {
                Some(_) => restored.push(confirmed.id),
                // Gone for good, unless delta said it was only deleted softly.
                None if event_of(&confirmed.id).is_none() => {
                    user_tombstones.remove(&confirmed.id);
                }
                None => {}
            }
        }
    }
    if !restored.is_empty() {
        return Ok(Incremental::SomethingRestored(restored));
    }

    let present: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            UserDelta::Present(patch) => Some(patch.id.clone()),
            UserDelta::Removed { .. } => None,
        })
        .collect();
    let known: HashMap<String, RemoteUser> =
        store.mirror_users(&present).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
    let mut patches = Vec::with_capacity(present.len());
    for event in events {
        match event {
            UserDelta::Present(patch) => patches.push(patch),
            UserDelta::Removed { id, .. } => {
                changes.users.insert(id, None);
            }
        }
    }
    let laid = patches.into_iter().map(|p| {
        let base = known.get(&p.id);
        (p, base)
    });
    let (users, missing) = complete(client, laid.collect(), run_id).await.map_err(graph)?;
    for user in users {
        changes.users.insert(user.id.clone(), Some(user));
    }
    // Reported, yet not found when read directly: Graph's replicas disagree. Left as it was
    // this time; the next run reads everything.
    let full_read_due = !missing.is_empty();
    let mut tombstones: Vec<(String, MemberKind)> =
        user_tombstones.into_iter().map(|id| (id, MemberKind::User)).collect();
    tombstones.extend(group_tombstones.into_iter().map(|id| (id, MemberKind::Group)));
    info!(%run_id, users = changes.users.len(), memberships = changes.members.len(), "incremental read done");
    Ok(Incremental::Read(IncrementalRead { changes, users_read, users_link, groups_link, tombstones, full_read_due }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(id: &str, name: &str) -> UserDelta {
        UserDelta::Present(UserPatch { id: id.into(), display_name: Some(Some(name.into())), ..UserPatch::default() })
    }

    #[test]
    fn a_rounds_entries_fold_to_one_per_user_the_later_winning() {
        let mut titled = UserPatch { id: "u1".into(), job_title: Some(Some("Clerk".into())), ..UserPatch::default() };
        let entries = vec![
            named("u2", "B"),
            named("u1", "A"),
            UserDelta::Removed { id: "u3".into(), permanent: false },
            UserDelta::Present(titled.clone()),
            UserDelta::Removed { id: "u2".into(), permanent: true },
            named("u3", "C"),
        ];
        let packed: Vec<UserDelta> = fold(entries.iter().cloned().map(Packed::from).collect())
            .into_iter()
            .map(|entry| match entry {
                Packed::Present { patch, .. } => UserDelta::Present(patch.unpack()),
                Packed::Removed { id, permanent } => UserDelta::Removed { id: id.into_string(), permanent },
            })
            .collect();
        let folded = fold(entries);
        assert_eq!(packed, folded, "a first round's packed entries fold as the entries themselves");
        titled.display_name = Some(Some("A".into()));
        assert_eq!(
            folded,
            vec![UserDelta::Present(titled), UserDelta::Removed { id: "u2".into(), permanent: true }, named("u3", "C"),],
            "partial entries merge, a removal after a report wins, a report after a removal wins"
        );
    }
}
