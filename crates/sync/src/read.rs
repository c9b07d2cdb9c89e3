//! Reading Entra: a full read (first delta rounds over users and groups) or an incremental
//! one (the rounds that follow the stored delta links). Either way a failure ends the read
//! and nothing partial is returned.

use std::collections::{BTreeMap, BTreeSet};

use safegpt_core::{EntraChanges, MemberKind, Membership, RemoteUser};
use safegpt_graph::{DeltaStart, GraphClient, GraphError, GroupDelta, UserDelta};
use tracing::info;
use uuid::Uuid;

use crate::{Phase, ProgressSender};

/// Everything a full read saw, and the links the next rounds start from.
pub(crate) struct FullRead {
    /// Every user of the tenant, by id, each once.
    pub users: Vec<RemoteUser>,
    pub groups: Vec<String>,
    pub memberships: Vec<Membership>,
    pub users_link: String,
    pub groups_link: String,
}

/// What changed since the stored links, and the links after it.
pub(crate) struct IncrementalRead {
    pub changes: EntraChanges,
    pub users_read: u64,
    pub users_link: String,
    pub groups_link: String,
}

fn missing_delta_link(resource: &str) -> GraphError {
    GraphError::new(
        safegpt_graph::ErrorKind::Unexpected,
        format!("Microsoft Graph ended a {resource} delta round without a deltaLink."),
        format!("{resource}/delta: last page had neither @odata.nextLink nor @odata.deltaLink"),
    )
}

/// Runs one `users/delta` round to its end, handing each user to `each`.
async fn users_round(
    client: &GraphClient,
    start: DeltaStart<'_>,
    run_id: Uuid,
    progress: &ProgressSender,
    mut each: impl FnMut(UserDelta),
) -> Result<String, GraphError> {
    progress.send_modify(|p| p.phase = Phase::ReadingUsers);
    let mut pager = client.users_delta(start);
    let mut read = 0;
    while let Some(page) = pager.next_page().await? {
        read += page.len();
        progress.send_modify(|p| {
            p.pages_read += 1;
            p.users_read += page.len() as u64;
        });
        page.into_iter().for_each(&mut each);
        info!(%run_id, pages = pager.pages, users = read, "read users delta page");
    }
    pager.delta_link.ok_or_else(|| missing_delta_link("users"))
}

/// Runs one `groups/delta` round to its end, handing each group to `each`.
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

/// Reads every user, group and direct membership of the tenant.
pub(crate) async fn read_full(
    client: &GraphClient,
    run_id: Uuid,
    progress: &ProgressSender,
) -> Result<FullRead, GraphError> {
    let mut users = Vec::new();
    let users_link = users_round(client, DeltaStart::Initial, run_id, progress, |delta| {
        // A first round may already report deletions; a deleted user is simply not read.
        if let UserDelta::Present(user) = delta {
            users.push(user);
        }
    })
    .await?;
    // Graph may report a user twice in a round: keep its last report, once.
    users.reverse();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    users.dedup_by(|later, kept| later.id == kept.id);

    let mut groups = BTreeSet::new();
    let mut members: BTreeMap<(String, String), MemberKind> = BTreeMap::new();
    let groups_link = groups_round(client, DeltaStart::Initial, run_id, progress, |group| {
        if group.removed {
            groups.remove(&group.id);
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
    info!(%run_id, users = users.len(), groups = groups.len(), "full read done");
    Ok(FullRead { users, groups: groups.into_iter().collect(), memberships, users_link, groups_link })
}

/// Reads what changed since the stored delta links.
pub(crate) async fn read_incremental(
    client: &GraphClient,
    users_link: &str,
    groups_link: &str,
    run_id: Uuid,
    progress: &ProgressSender,
) -> Result<IncrementalRead, GraphError> {
    let mut changes = EntraChanges::default();
    let mut users_read = 0;
    let users_link = users_round(client, DeltaStart::Link(users_link), run_id, progress, |delta| {
        users_read += 1;
        match delta {
            UserDelta::Present(user) => changes.users.insert(user.id.clone(), Some(user)),
            UserDelta::Removed(id) => changes.users.insert(id, None),
        };
    })
    .await?;
    let groups_link = groups_round(client, DeltaStart::Link(groups_link), run_id, progress, |group| {
        if group.removed {
            changes.groups.insert(group.id, false);
            return;
        }
        for member in group.members {
            changes.members.insert((group.id.clone(), member.id), member.kind);
        }
        changes.groups.insert(group.id, true);
    })
    .await?;
    info!(%run_id, users = changes.users.len(), memberships = changes.members.len(), "incremental read done");
    Ok(IncrementalRead { changes, users_read, users_link, groups_link })
}
