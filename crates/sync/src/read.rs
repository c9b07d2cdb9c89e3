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

use safegpt_core::{EntraChanges, MemberKind, Membership, RemoteUser, UserPatch};
use safegpt_graph::{DeltaStart, ErrorKind, GraphClient, GraphError, GroupDelta, UserDelta};
use safegpt_store::Store;
use tracing::info;
use uuid::Uuid;

use crate::{Phase, ProgressSender, SyncError};

/// Everything a full read saw, and the links the next rounds start from.
pub(crate) struct FullRead {
    /// Every user of the tenant, by id, each once.
    pub users: Vec<RemoteUser>,
    pub groups: Vec<String>,
    pub memberships: Vec<Membership>,
    pub users_link: String,
    pub groups_link: String,
    pub tombstones: Vec<(String, MemberKind)>,
}

/// What changed since the stored links, and the links after it.
pub(crate) struct IncrementalRead {
    pub changes: EntraChanges,
    pub users_read: u64,
    pub users_link: String,
    pub groups_link: String,
    pub tombstones: Vec<(String, MemberKind)>,
}

/// How an incremental read ended.
pub(crate) enum Incremental {
    Read(IncrementalRead),
    /// Users or groups came back from a soft delete: their memberships, kept by Entra
    /// all along, were never reported, so only a full read knows them.
    SomethingRestored(Vec<String>),
}

/// What a round said about one user, the later report winning.
// Nearly every event is `Present`: boxing it would add an allocation per user and save nothing.
#[allow(clippy::large_enum_variant)]
enum UserEvent {
    Present(UserPatch),
    Deleted { permanent: bool },
}

fn missing_delta_link(resource: &str) -> GraphError {
    GraphError::new(
        ErrorKind::Unexpected,
        format!("Microsoft Graph ended a {resource} delta round without a deltaLink."),
        format!("{resource}/delta: last page had neither @odata.nextLink nor @odata.deltaLink"),
    )
}

/// Runs one `users/delta` round to its end; each user's reports merged in order.
async fn users_round(
    client: &GraphClient,
    start: DeltaStart<'_>,
    run_id: Uuid,
    progress: &ProgressSender,
) -> Result<(BTreeMap<String, UserEvent>, u64, String), GraphError> {
    progress.send_modify(|p| p.phase = Phase::ReadingUsers);
    let mut pager = client.users_delta(start);
    let mut events: BTreeMap<String, UserEvent> = BTreeMap::new();
    let mut read = 0;
    while let Some(page) = pager.next_page().await? {
        read += page.len() as u64;
        progress.send_modify(|p| {
            p.pages_read += 1;
            p.users_read += page.len() as u64;
        });
        for delta in page {
            match delta {
                UserDelta::Present(patch) => match events.get_mut(&patch.id) {
                    Some(UserEvent::Present(known)) => known.merge(patch),
                    _ => {
                        events.insert(patch.id.clone(), UserEvent::Present(patch));
                    }
                },
                UserDelta::Removed { id, permanent } => {
                    events.insert(id, UserEvent::Deleted { permanent });
                }
            }
        }
        info!(%run_id, pages = pager.pages, users = read, "read users delta page");
    }
    let link = pager.delta_link.ok_or_else(|| missing_delta_link("users"))?;
    Ok((events, read, link))
}

/// Runs one `groups/delta` round to its end, handing each group entry to `each`.
async fn groups_round(
    client: &GraphClient,
    start: DeltaStart<'_>,
    run_id: Uuid,
    progress: &ProgressSender,
    mut each: impl FnMut(GroupDelta),
) -> Result<String, GraphError> {
    progress.send_modify(|p| p.phase = Phase::ReadingGroups);
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

/// Users whose entries lack what every user has (nothing known to lay them over) are read
/// directly; a user Graph no longer has is left out.
async fn complete(
    client: &GraphClient,
    patches: Vec<(UserPatch, Option<&RemoteUser>)>,
    run_id: Uuid,
) -> Result<Vec<(String, Option<RemoteUser>)>, GraphError> {
    let mut out = Vec::with_capacity(patches.len());
    let mut unknown = Vec::new();
    for (patch, base) in patches {
        let id = patch.id.clone();
        match patch.apply(base) {
            Some(user) => out.push((id, Some(user))),
            None => unknown.push(id),
        }
    }
    if !unknown.is_empty() {
        info!(%run_id, users = unknown.len(), "reading users that delta sent only in part");
        for confirmed in client.confirm_users(&unknown, &[]).await? {
            out.push((confirmed.id, confirmed.user));
        }
    }
    Ok(out)
}

/// Reads every user, group and direct membership of the tenant.
pub(crate) async fn read_full(
    client: &GraphClient,
    run_id: Uuid,
    progress: &ProgressSender,
) -> Result<FullRead, GraphError> {
    let (events, _, users_link) = users_round(client, DeltaStart::Initial, run_id, progress).await?;
    let mut tombstones: Vec<(String, MemberKind)> = Vec::new();
    let mut patches = Vec::with_capacity(events.len());
    for (id, event) in events {
        match event {
            UserEvent::Present(patch) => patches.push((patch, None)),
            // A first round may already report deletions: a deleted user is simply not read.
            UserEvent::Deleted { permanent: false } => tombstones.push((id, MemberKind::User)),
            UserEvent::Deleted { permanent: true } => {}
        }
    }
    let mut users: Vec<RemoteUser> =
        complete(client, patches, run_id).await?.into_iter().filter_map(|(_, user)| user).collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));

    let mut groups = BTreeSet::new();
    let mut members: BTreeMap<(String, String), MemberKind> = BTreeMap::new();
    let groups_link = groups_round(client, DeltaStart::Initial, run_id, progress, |group| {
        if group.removed {
            groups.remove(&group.id);
            if !group.permanent {
                tombstones.push((group.id, MemberKind::Group));
            }
            return;
        }
        for member in group.members {
            let key = (group.id.clone(), member.id);
            match member.kind {
                Some(kind) => members.insert(key, kind),
                None => members.remove(&key),
            };
        }
        groups.insert(group.id);
    })
    .await?;
    let memberships = members
        .into_iter()
        .filter(|((group_id, _), _)| groups.contains(group_id))
        .map(|((group_id, member_id), kind)| Membership { group_id, member_id, kind })
        .collect();
    let known: BTreeSet<String> = tombstones.iter().map(|(id, _)| id.clone()).collect();
    tombstones.extend(
        deleted_users(client).await?.into_iter().filter(|id| !known.contains(id)).map(|id| (id, MemberKind::User)),
    );
    info!(%run_id, users = users.len(), groups = groups.len(), "full read done");
    Ok(FullRead { users, groups: groups.into_iter().collect(), memberships, users_link, groups_link, tombstones })
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
    let (events, users_read, users_link) =
        users_round(client, DeltaStart::Link(users_link), run_id, progress).await.map_err(graph)?;

    let mut changes = EntraChanges::default();
    let mut restored: Vec<String> = Vec::new();
    let mut group_tombstones: BTreeSet<String> =
        stored_tombstones.iter().filter(|(_, k)| **k == MemberKind::Group).map(|(id, _)| id.clone()).collect();
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

    // Restores: reported ones, and those `users/delta` left out (a soft-deleted user no
    // longer among the deleted items, not reported gone for good, may be back).
    let deleted_now = deleted_users(client).await.map_err(graph)?;
    let mut unsure = Vec::new();
    for (id, kind) in &stored_tombstones {
        if *kind != MemberKind::User || deleted_now.contains(id) {
            continue;
        }
        match events.get(id) {
            Some(UserEvent::Present(_)) => restored.push(id.clone()),
            Some(UserEvent::Deleted { permanent: true }) => {}
            _ => unsure.push(id.clone()),
        }
    }
    for (id, event) in &events {
        if matches!(event, UserEvent::Deleted { permanent: false })
            && !deleted_now.contains(id)
            && !stored_tombstones.contains_key(id)
        {
            unsure.push(id.clone());
        }
    }
    if !unsure.is_empty() {
        let confirmed = client.confirm_users(&unsure, &[]).await.map_err(graph)?;
        restored.extend(confirmed.into_iter().filter(|c| c.user.is_some()).map(|c| c.id));
    }
    if !restored.is_empty() {
        return Ok(Incremental::SomethingRestored(restored));
    }

    let present: Vec<String> =
        events.iter().filter(|(_, e)| matches!(e, UserEvent::Present(_))).map(|(id, _)| id.clone()).collect();
    let known: HashMap<String, RemoteUser> =
        store.mirror_users(&present).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
    let mut patches = Vec::with_capacity(present.len());
    for (id, event) in events {
        match event {
            UserEvent::Present(patch) => patches.push(patch),
            UserEvent::Deleted { .. } => {
                changes.users.insert(id, None);
            }
        }
    }
    let laid = patches.into_iter().map(|p| {
        let base = known.get(&p.id);
        (p, base)
    });
    for (id, user) in complete(client, laid.collect(), run_id).await.map_err(graph)? {
        changes.users.insert(id, user);
    }
    let mut tombstones: Vec<(String, MemberKind)> = deleted_now.into_iter().map(|id| (id, MemberKind::User)).collect();
    tombstones.extend(group_tombstones.into_iter().map(|id| (id, MemberKind::Group)));
    info!(%run_id, users = changes.users.len(), memberships = changes.members.len(), "incremental read done");
    Ok(Incremental::Read(IncrementalRead { changes, users_read, users_link, groups_link, tombstones }))
}
