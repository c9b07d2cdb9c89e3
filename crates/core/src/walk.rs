//! A plan made a slice of the tenant at a time, so that a full read of a million users can
//! be planned and applied holding one slice, not the tenant.
//!
//! The rules are the planner's (`planner.rs`); what a slice cannot know alone is settled in
//! two passes over the same slices in the same order:
//! 1. [`Counting`] plans each slice without giving out seats and keeps only totals: the seats
//!    held, the users awaiting a license (oldest first get the free seats), the creations,
//!    and the disables, which decide the deletion threshold before anything is written.
//! 2. [`Planning`] plans each slice again, gives out the seats as decided, and hands back
//!    its changes.
//!
//! A slice is the Entra users of an id range and the directory users linked to an id in the
//! same range (so a user deleted in Entra falls in exactly one slice). Local accounts not
//! linked to Entra are few and known to every slice: any Entra user may link one by e-mail.
//! [`crate::plan`] is the walk over a single slice.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::planner::{Action, Change, ChangeReason, Counts, Hold, Policy, Seats, Untouched, classify, out_of_scope};
use crate::planner::{Outcome, scope_of};
use crate::scope::Covered;
use crate::user::{LocalUser, RemoteUser, Source, Status};

/// What every slice shares.
pub struct Walk<'a> {
    policy: &'a Policy,
    now: OffsetDateTime,
    /// False when a source was not read to its end: nobody is then taken out of scope.
    complete: bool,
    untouched: Untouched,
    /// Local accounts not linked to Entra, by lower-cased address (the first one wins).
    unlinked: &'a [LocalUser],
    unlinked_by_email: HashMap<String, &'a LocalUser>,
}

/// A slice planned, before seats are given out.
struct Slice<'s> {
    /// Final state of every user the slice changes (or may), with the reason.
    outcomes: Vec<Outcome<'s>>,
    /// Indexes of `outcomes` that create a user, in the slice's order.
    creations: Vec<usize>,
    /// Creations counted without an outcome (the first pass).
    counted_creations: u64,
    /// Linked users in scope whose record would not change.
    unchanged_in_scope: u64,
    /// Of those, the ones holding a seat.
    unchanged_holding_seats: u64,
    /// Linked users that are active before the plan (the threshold's denominator).
    synced_active: u64,
}

impl<'a> Walk<'a> {
    /// `unlinked` are the directory's local accounts without an Entra id (in the order the
    /// directory lists them); `untouched` the totals of users no slice will hold.
    pub fn new(
        policy: &'a Policy,
        now: OffsetDateTime,
        complete: bool,
        untouched: Untouched,
        unlinked: &'a [LocalUser],
    ) -> Self {
        let mut unlinked_by_email = HashMap::new();
        for user in unlinked.iter().filter(|u| u.azure_object_id.is_none()) {
            unlinked_by_email.entry(user.profile.email.to_lowercase()).or_insert(user);
        }
        Walk { policy, now, complete, untouched, unlinked, unlinked_by_email }
    }

    /// The first pass.
    pub fn counting(&self) -> Counting<'_, 'a> {
        Counting { walk: self, linked_now: HashSet::new(), tally: Tally::default() }
    }

    /// Plans one slice: `local` are the directory users linked to the slice's Entra ids,
    /// `remote` the Entra users of the slice, `covered` which of those the scope covers
    /// (a full read knows it per user, so a slice brings its own). `linked_now` carries the local accounts
    /// earlier slices linked. Without `new_id` (the first pass) creations are only counted:
    /// a first sync creates the whole tenant, and its rows are built once, to be written.
    fn slice<'s>(
        &'s self,
        local: &'s [LocalUser],
        remote: &'s [RemoteUser],
        covered: &Covered,
        linked_now: &mut HashSet<Uuid>,
        mut new_id: Option<impl FnMut() -> Uuid>,
    ) -> Slice<'s> {
        let Walk { policy, now, complete, .. } = *self;
        let remote_by_id: HashMap<&str, &RemoteUser> = remote.iter().map(|u| (u.id.as_str(), u)).collect();
        let mut slice = Slice {
            outcomes: Vec::new(),
            creations: Vec::new(),
            counted_creations: 0,
            unchanged_in_scope: 0,
            unchanged_holding_seats: 0,
            synced_active: 0,
        };
        let mut linked_ids: HashSet<&str> = HashSet::new();
        for user in local {
            let Some(id) = user.azure_object_id.as_deref() else { continue };
            linked_ids.insert(id);
            if user.source == Source::Entra && user.status == Status::Active {
                slice.synced_active += 1;
            }
            let remote = remote_by_id.get(id).copied();
            match scope_of(remote, covered, policy) {
                Ok(()) => {
                    let remote = remote.expect("in scope implies present");
                    let profile = remote.profile();
                    if user.in_scope
                        && user.profile == profile
                        && !user.disabled_by_sync()
                        && user.status != Status::AwaitingLicense
                    {
                        slice.unchanged_in_scope += 1;
                        slice.unchanged_holding_seats += u64::from(user.status.holds_seat());
                        continue;
                    }
                    let mut after = user.clone();
                    after.profile = profile;
                    after.in_scope = true;
                    let mut reason =
                        if user.in_scope { ChangeReason::AttributesChanged } else { ChangeReason::BackInScope };
                    if user.disabled_by_sync() {
                        after.status = Status::Active;
                        after.disabled_reason = None;
                        after.disabled_at = None;
                        reason = ChangeReason::BackInScope;
                    }
                    slice.outcomes.push((Some(user), Some(Box::new(after)), reason));
                }
                Err(_) if !complete => {
                    // A partial read proves nothing about who left: leave the user alone.
                    slice.outcomes.push((Some(user), Some(Box::new(user.clone())), ChangeReason::AttributesChanged));
                }
                Err(why) => {
                    let (after, reason) = out_of_scope(user, remote, why, policy, now);
                    slice.outcomes.push((Some(user), after.map(Box::new), reason));
                }
            }
        }

        for remote in remote {
            if linked_ids.contains(remote.id.as_str()) || scope_of(Some(remote), covered, policy).is_err() {
                continue;
            }
            // Only an address the tenant vouches for links an account (see `linking_email`).
            let email = remote.linking_email().unwrap_or_default().to_lowercase();
            if let Some(local_user) = self.unlinked_by_email.get(&email).copied().filter(|_| !email.is_empty())
                && linked_now.insert(local_user.id)
            {
                let mut after = local_user.clone();
                after.source = Source::Entra;
                after.azure_object_id = Some(remote.id.clone());
                after.profile = remote.profile();
                after.in_scope = true;
                slice.outcomes.push((Some(local_user), Some(Box::new(after)), ChangeReason::LinkedByEmail));
                continue;
            }
            let Some(new_id) = new_id.as_mut() else {
                slice.counted_creations += 1;
                continue;
            };
            slice.creations.push(slice.outcomes.len());
            slice.outcomes.push((
                None,
                Some(Box::new(LocalUser {
                    id: new_id(),
                    source: Source::Entra,
                    azure_object_id: Some(remote.id.clone()),
                    profile: remote.profile(),
                    status: Status::AwaitingLicense,
                    disabled_reason: None,
                    disabled_at: None,
                    in_scope: true,
                    created_at: now,
                })),
                ChangeReason::NewInScope { awaiting_license: true },
            ));
        }
        slice
    }
}

/// An outcome that waits for a seat: a known user awaiting a license, in scope.
fn waiting(outcome: &Outcome<'_>) -> Option<(OffsetDateTime, Uuid)> {
    let (before, after, _) = outcome;
    let after = after.as_ref()?;
    (before.is_some() && after.status == Status::AwaitingLicense && after.in_scope)
        .then_some((after.created_at, after.id))
}

#[derive(Default)]
struct Tally {
    seats_held: u64,
    waiting: Vec<(OffsetDateTime, Uuid)>,
    creations: u64,
    /// The users the plan disables.
    disabling: Vec<Uuid>,
    /// The Entra ids of the users the plan removes.
    removing: Vec<String>,
    synced_active: u64,
}

/// The first pass: totals only.
pub struct Counting<'w, 'a> {
    walk: &'w Walk<'a>,
    linked_now: HashSet<Uuid>,
    tally: Tally,
}

impl<'w, 'a> Counting<'w, 'a> {
    /// Counts one slice, and says whether the second pass has anything to plan in it.
    pub fn slice(&mut self, local: &[LocalUser], remote: &[RemoteUser], covered: &Covered) -> Seen {
        let slice = self.walk.slice(local, remote, covered, &mut self.linked_now, None::<fn() -> Uuid>);
        let seen = Seen {
            anything: !slice.outcomes.is_empty() || slice.counted_creations > 0,
            unchanged: slice.unchanged_in_scope,
        };
        let tally = &mut self.tally;
        tally.seats_held += slice.unchanged_holding_seats;
        tally.synced_active += slice.synced_active;
        tally.creations += slice.counted_creations;
        for outcome in slice.outcomes {
            tally.waiting.extend(waiting(&outcome));
            let (before, after, reason) = outcome;
            tally.seats_held += u64::from(after.as_ref().is_some_and(|u| u.status.holds_seat()));
            // Seats only ever enable: whether a change disables or removes is known without them.
            match classify(before, after, reason) {
                Some(c) if c.action == Action::Disable => tally.disabling.push(c.user_id),
                Some(c) if c.action == Action::Remove => tally.removing.extend(c.user().azure_object_id.clone()),
                _ => {}
            }
        }
        seen
    }

    /// Gives out the free seats (users awaiting a license oldest first, then new users in
    /// the order of the slices) and decides the deletion threshold.
    pub fn finish(self) -> Decisions {
        let Counting { walk, linked_now, mut tally } = self;
        let policy = walk.policy;
        let unlinked_holding = walk
            .unlinked
            .iter()
            .filter(|u| u.azure_object_id.is_none() && !linked_now.contains(&u.id) && u.status.holds_seat())
            .count() as u64;
        let mut used = walk.untouched.seats_held + unlinked_holding + tally.seats_held;
        let total = u64::from(policy.seats);
        let free = |used: u64| if total == 0 { u64::MAX } else { total.saturating_sub(used) };
        tally.waiting.sort_unstable();
        let seated = (free(used).min(tally.waiting.len() as u64)) as usize;
        let waiting_seated: HashSet<Uuid> = tally.waiting[..seated].iter().map(|(_, id)| *id).collect();
        used += seated as u64;
        let creations_seated = free(used).min(tally.creations);
        used += creations_seated;
        // Entra users without an id are not in any slice (the store never writes such a row).
        let unlinked_active = walk
            .unlinked
            .iter()
            .filter(|u| u.azure_object_id.is_none() && u.source == Source::Entra && u.status == Status::Active)
            .count() as u64;
        let synced_active = walk.untouched.synced_active + tally.synced_active + unlinked_active;
        Decisions {
            waiting_seated,
            creations_seated,
            seats: Seats { used, total },
            hold: Hold::check(
                tally.disabling.len() as u64,
                synced_active,
                policy.threshold_count,
                policy.threshold_percent,
            ),
            disabling: tally.disabling,
            removing: tally.removing,
        }
    }
}

/// What the first pass saw of one slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    anything: bool,
    unchanged: u64,
}

impl Seen {
    /// Whether the second pass may change anyone in the slice (a link, a creation, a user
    /// to update, enable, disable or remove). A slice of users in scope as they were (the
    /// daily full read, mostly) need not be read again: [`Planning::skip`] counts it.
    pub fn anything_to_plan(&self) -> bool {
        self.anything
    }
}

/// What the first pass settled for the second.
#[derive(Debug, Clone)]
pub struct Decisions {
    waiting_seated: HashSet<Uuid>,
    creations_seated: u64,
    /// Seats after the plan is applied.
    pub seats: Seats,
    /// The deletion threshold's verdict: a held run applies nothing.
    pub hold: Option<Hold>,
    disabling: Vec<Uuid>,
    removing: Vec<String>,
}

impl Decisions {
    /// The Entra ids of the users the plan would remove: Graph is asked about them first.
    pub fn removing(&self) -> &[String] {
        &self.removing
    }

    /// The hold that remains once an administrator approved a held plan that listed
    /// `approved`: as [`crate::Plan::hold_beyond`].
    pub fn hold_beyond(&self, approved: &HashSet<Uuid>) -> Option<Hold> {
        let hold = self.hold?;
        let unreviewed = self.disabling.iter().filter(|id| !approved.contains(id)).count() as u64;
        Hold::check(unreviewed, hold.synced_active, hold.threshold_count, hold.threshold_percent)
    }
}

impl<'a> Walk<'a> {
    /// The second pass, over the same slices in the same order as the first.
    pub fn planning<'w, F: FnMut() -> Uuid>(&'w self, decisions: &'w Decisions, new_id: F) -> Planning<'w, 'a, F> {
        let counts = Counts { unchanged: self.untouched.synced, ..Counts::default() };
        Planning { walk: self, decisions, new_id, linked_now: HashSet::new(), creations: 0, counts }
    }
}

/// The second pass: a slice's changes, with seats given out as decided.
pub struct Planning<'w, 'a, F> {
    walk: &'w Walk<'a>,
    decisions: &'w Decisions,
    new_id: F,
    linked_now: HashSet<Uuid>,
    /// Creations planned so far, for the seats the first pass left them.
    creations: u64,
    counts: Counts,
}

impl<F: FnMut() -> Uuid> Planning<'_, '_, F> {
    pub fn slice(&mut self, local: &[LocalUser], remote: &[RemoteUser], covered: &Covered) -> Vec<Change> {
        let mut slice = self.walk.slice(local, remote, covered, &mut self.linked_now, Some(&mut self.new_id));
        let counts = &mut self.counts;
        counts.unchanged += slice.unchanged_in_scope;
        for outcome in &mut slice.outcomes {
            if let Some((_, id)) = waiting(outcome)
                && self.decisions.waiting_seated.contains(&id)
            {
                if let Some(after) = outcome.1.as_mut() {
                    after.status = Status::Active;
                }
                outcome.2 = ChangeReason::LicenseAvailable;
            }
        }
        for &i in &slice.creations {
            if self.creations < self.decisions.creations_seated {
                if let Some(after) = slice.outcomes[i].1.as_mut() {
                    after.status = Status::Active;
                }
                slice.outcomes[i].2 = ChangeReason::NewInScope { awaiting_license: false };
            }
            self.creations += 1;
        }
        let mut changes = Vec::with_capacity(slice.outcomes.len());
        for (before, after, reason) in slice.outcomes {
            if let Some(after) = &after
                && after.source == Source::Entra
                && after.status == Status::AwaitingLicense
            {
                counts.awaiting_license += 1;
            }
            let Some(change) = classify(before, after, reason) else {
                counts.unchanged += 1;
                continue;
            };
            match change.action {
                Action::Create => counts.created += 1,
                Action::Update => counts.updated += 1,
                Action::Enable => counts.enabled += 1,
                Action::Disable => counts.disabled += 1,
                Action::Remove => counts.removed += 1,
            }
            changes.push(change);
        }
        changes
    }

    /// A slice the first pass saw nothing to plan in, counted without reading it again.
    pub fn skip(&mut self, seen: Seen) {
        debug_assert!(!seen.anything, "a slice with something to plan is planned");
        self.counts.unchanged += seen.unchanged;
    }

    /// The plan's counts once every slice was planned.
    pub fn finish(self) -> Counts {
        self.counts
    }
}
