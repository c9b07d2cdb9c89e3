//! Every rule of PRODUCT.md's "Who is in scope", "What one sync does" and "Licenses",
//! one scenario each, plus property tests over random directories.

use std::collections::HashSet;

use proptest::prelude::*;
use safegpt_core::planner::{apply, scope_of};
use safegpt_core::{
    Action, ChangeReason, Covered, DisabledReason, LocalUser, Plan, Policy, Profile, RemoteUser, Snapshot, Source,
    Status, Untouched, UserType, Walk, plan,
};
use time::{Duration, OffsetDateTime, macros::datetime};
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-11-26 12:00 UTC);

fn policy() -> Policy {
    Policy {
        include_guests: false,
        auto_disable: true,
        auto_remove: true,
        remove_after_days: 14,
        seats: 0,
        threshold_count: 10,
        threshold_percent: 20,
    }
}

fn remote(n: u32) -> RemoteUser {
    RemoteUser {
        id: format!("00000000-0000-0000-0000-{n:012}"),
        user_principal_name: format!("user{n}@contoso.onmicrosoft.com"),
        mail: Some(format!("user{n}@contoso.com")),
        display_name: Some(format!("User {n}")),
        given_name: Some("User".into()),
        surname: Some(format!("{n}")),
        job_title: None,
        department: None,
        account_enabled: true,
        user_type: UserType::Member,
        other_mail: None,
    }
}

fn snapshot(users: Vec<RemoteUser>, members: &[&RemoteUser]) -> Snapshot {
    Snapshot { covered: Covered::Members(members.iter().map(|u| u.id.clone()).collect()), users, complete: true }
}

/// A scope without groups: every user of the tenant.
fn whole_tenant(users: Vec<RemoteUser>) -> Snapshot {
    Snapshot { covered: Covered::EveryUser, users, complete: true }
}

fn counter() -> impl FnMut() -> Uuid {
    let mut n = 0u128;
    move || {
        n += 1;
        Uuid::from_u128(n)
    }
}

fn synced(r: &RemoteUser, status: Status) -> LocalUser {
    LocalUser {
        id: Uuid::from_u128(1_000_000 + r.id[24..].parse::<u128>().unwrap()),
        source: Source::Entra,
        azure_object_id: Some(r.id.clone()),
        profile: r.profile(),
        status,
        disabled_reason: None,
        disabled_at: None,
        in_scope: true,
        created_at: NOW - Duration::days(100),
    }
}

fn local_account(email: &str) -> LocalUser {
    LocalUser {
        id: Uuid::from_u128(9_000_000),
        source: Source::Local,
        azure_object_id: None,
        profile: Profile { email: email.into(), display_name: Some("Admin".into()), ..Profile::default() },
        status: Status::Active,
        disabled_reason: None,
        disabled_at: None,
        in_scope: true,
        created_at: NOW - Duration::days(300),
    }
}

fn only(plan: &Plan) -> &safegpt_core::Change {
    assert_eq!(plan.changes.len(), 1, "expected one change, got {:#?}", plan.changes);
    &plan.changes[0]
}

#[test]
fn unknown_member_is_created_active() {
    let a = remote(1);
    let p = plan(&[], &snapshot(vec![a.clone()], &[&a]), &policy(), NOW, counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Create);
    let after = c.after().unwrap();
    assert_eq!(after.status, Status::Active);
    assert_eq!(after.azure_object_id.as_deref(), Some(a.id.as_str()));
    assert_eq!(after.profile.email, "user1@contoso.com");
    assert_eq!(p.counts.created, 1);
}

#[test]
fn email_falls_back_to_upn_and_non_members_guests_and_disabled_are_not_created() {
    let mut no_mail = remote(1);
    no_mail.mail = None;
    let outsider = remote(2);
    let mut guest = remote(3);
    guest.user_type = UserType::Guest;
    let mut entra_disabled = remote(4);
    entra_disabled.account_enabled = false;
    let snap = snapshot(
        vec![no_mail.clone(), outsider, guest.clone(), entra_disabled.clone()],
        &[&no_mail, &guest, &entra_disabled],
    );
    let p = plan(&[], &snap, &policy(), NOW, counter());
    let c = only(&p);
    assert_eq!(c.after().unwrap().profile.email, "user1@contoso.onmicrosoft.com");

    let with_guests = Policy { include_guests: true, ..policy() };
    let p = plan(&[], &snap, &with_guests, NOW, counter());
    assert_eq!(p.counts.created, 2, "guest included when the setting is on");
}

#[test]
fn without_groups_every_enabled_member_is_in_scope() {
    let (a, b) = (remote(1), remote(2));
    let p = plan(&[], &whole_tenant(vec![a, b]), &policy(), NOW, counter());
    assert_eq!(p.counts.created, 2);
}

#[test]
fn renamed_user_is_updated_not_duplicated() {
    let a = remote(1);
    let local = vec![synced(&a, Status::Active)];
    let mut renamed = a.clone();
    renamed.user_principal_name = "new.name@contoso.onmicrosoft.com".into();
    renamed.mail = Some("new.name@contoso.com".into());
    renamed.department = Some("Sales".into());
    let p = plan(&local, &snapshot(vec![renamed.clone()], &[&renamed]), &policy(), NOW, counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.fields, ["email", "user_principal_name", "department"]);
    assert_eq!(c.user_id, local[0].id);
}

#[test]
fn local_account_with_same_email_is_linked() {
    let a = remote(1);
    let local = vec![local_account("USER1@contoso.com")];
    let p = plan(&local, &snapshot(vec![a.clone()], &[&a]), &policy(), NOW, counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.reason, ChangeReason::LinkedByEmail);
    let after = c.after().unwrap();
    assert_eq!(after.id, local[0].id);
    assert_eq!(after.source, Source::Entra);
    assert_eq!(after.azure_object_id.as_deref(), Some(a.id.as_str()));
}

#[test]
fn unlinked_local_accounts_are_never_touched() {
    let a = remote(1);
    let local = vec![local_account("admin@example.org")];
    let p = plan(&local, &snapshot(vec![a.clone()], &[&a]), &policy(), NOW, counter());
    assert!(p.changes.iter().all(|c| c.user_id != local[0].id));
}

#[test]
fn leaving_the_group_disables_with_reason_and_time() {
    let a = remote(1);
    let local = vec![synced(&a, Status::Active)];
    let p = plan(&local, &snapshot(vec![a], &[]), &policy(), NOW, counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Disable);
    let after = c.after().unwrap();
    assert_eq!(after.disabled_reason, Some(DisabledReason::NotInGroup));
    assert_eq!(after.disabled_at, Some(NOW));
    assert!(!after.in_scope);
}

#[test]
fn each_way_out_of_scope_has_its_reason() {
    type Mutation = Box<dyn Fn(&mut Vec<RemoteUser>)>;
    let cases: Vec<(Mutation, DisabledReason)> = vec![
        (Box::new(|users| users.clear()), DisabledReason::DeletedInEntra),
        (Box::new(|users| users[0].account_enabled = false), DisabledReason::DisabledInEntra),
        (Box::new(|users| users[0].user_type = UserType::Guest), DisabledReason::GuestExcluded),
    ];
    for (mutate, reason) in cases {
        let a = remote(1);
        let local = vec![synced(&a, Status::Active)];
        let mut users = vec![a.clone()];
        mutate(&mut users);
        let p = plan(&local, &snapshot(users, &[&a]), &policy(), NOW, counter());
        assert_eq!(only(&p).after().unwrap().disabled_reason, Some(reason));
    }
}

#[test]
fn with_auto_disable_off_the_user_stays_active_but_out_of_scope() {
    let a = remote(1);
    let local = vec![synced(&a, Status::Active)];
    let keep = Policy { auto_disable: false, ..policy() };
    let p = plan(&local, &snapshot(vec![a], &[]), &keep, NOW, counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.fields, ["in_scope"]);
    assert_eq!(c.after().unwrap().status, Status::Active);
}

#[test]
fn rejoining_enables_a_user_the_sync_disabled() {
    let a = remote(1);
    let mut user = synced(&a, Status::Disabled);
    user.disabled_reason = Some(DisabledReason::NotInGroup);
    user.disabled_at = Some(NOW - Duration::days(3));
    user.in_scope = false;
    let p = plan(&[user], &snapshot(vec![a.clone()], &[&a]), &policy(), NOW, counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Enable);
    let after = c.after().unwrap();
    assert_eq!((after.status, after.disabled_reason, after.disabled_at), (Status::Active, None, None));
}

#[test]
fn an_administrators_disable_wins() {
    let a = remote(1);
    let mut user = synced(&a, Status::Disabled);
    user.disabled_reason = Some(DisabledReason::Admin);
    user.disabled_at = Some(NOW - Duration::days(300));
    let p = plan(&[user.clone()], &snapshot(vec![a.clone()], &[&a]), &policy(), NOW, counter());
    assert!(p.changes.is_empty());
    // Out of scope for a long time: still not removed, only marked.
    let p = plan(&[user], &snapshot(vec![a], &[]), &policy(), NOW, counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.after().unwrap().status, Status::Disabled);
}

#[test]
fn removal_happens_exactly_after_the_grace_period() {
    let a = remote(1);
    let mut user = synced(&a, Status::Disabled);
    user.disabled_reason = Some(DisabledReason::NotInGroup);
    user.disabled_at = Some(NOW);
    user.in_scope = false;
    let snap = snapshot(vec![a], &[]);
    let just_before = NOW + Duration::days(14) - Duration::seconds(1);
    assert!(plan(&[user.clone()], &snap, &policy(), just_before, counter()).changes.is_empty());
    let p = plan(&[user.clone()], &snap, &policy(), NOW + Duration::days(14), counter());
    let c = only(&p);
    assert_eq!(c.action, Action::Remove);
    assert_eq!(c.reason, ChangeReason::RemovalDue { days: 14 });
    let no_remove = Policy { auto_remove: false, ..policy() };
    assert!(plan(&[user], &snap, &no_remove, NOW + Duration::days(400), counter()).changes.is_empty());
}

#[test]
fn seats_run_out_and_free_up_oldest_first() {
    let (a, b, c) = (remote(1), remote(2), remote(3));
    let limited = Policy { seats: 2, ..policy() };
    let admin = local_account("admin@example.org");
    let p = plan(
        std::slice::from_ref(&admin),
        &whole_tenant(vec![a.clone(), b.clone(), c.clone()]),
        &limited,
        NOW,
        counter(),
    );
    let statuses: Vec<_> = p.changes.iter().map(|c| c.after().unwrap().status).collect();
    assert_eq!(statuses, [Status::Active, Status::AwaitingLicense, Status::AwaitingLicense]);
    assert_eq!(p.counts.awaiting_license, 2);
    assert_eq!(p.seats.used, 2);

    let mut local = vec![admin];
    apply(&mut local, &p);
    // Make b older than c, then free one seat by deleting a in Entra with auto-remove.
    local.iter_mut().find(|u| u.azure_object_id.as_deref() == Some(c.id.as_str())).unwrap().created_at = NOW;
    local.iter_mut().find(|u| u.azure_object_id.as_deref() == Some(b.id.as_str())).unwrap().created_at =
        NOW - Duration::days(1);
    let a_user = local.iter_mut().find(|u| u.azure_object_id.as_deref() == Some(a.id.as_str())).unwrap();
    a_user.status = Status::Disabled;
    a_user.disabled_reason = Some(DisabledReason::DeletedInEntra);
    a_user.disabled_at = Some(NOW - Duration::days(20));
    let later = NOW + Duration::days(1);
    let p = plan(&local, &whole_tenant(vec![b.clone(), c.clone()]), &limited, later, counter());
    let actions: Vec<_> = p.changes.iter().map(|c| (c.action, c.reason)).collect();
    assert_eq!(
        actions,
        [(Action::Remove, ChangeReason::RemovalDue { days: 14 }), (Action::Enable, ChangeReason::LicenseAvailable)]
    );
    assert_eq!(p.changes[1].after().unwrap().azure_object_id.as_deref(), Some(b.id.as_str()));
}

#[test]
fn mass_disable_is_held_but_small_changes_are_not() {
    let users: Vec<RemoteUser> = (1..=50).map(remote).collect();
    let local: Vec<LocalUser> = users.iter().map(|u| synced(u, Status::Active)).collect();
    // The group was emptied by mistake: 50 of 50 would be disabled.
    let p = plan(&local, &snapshot(users.clone(), &[]), &policy(), NOW, counter());
    let hold = p.hold.expect("held");
    assert_eq!((hold.would_disable, hold.synced_active), (50, 50));
    // 10 leave: not more than 10 users, so not held.
    let members: Vec<&RemoteUser> = users.iter().skip(10).collect();
    let p = plan(&local, &snapshot(users.clone(), &members), &policy(), NOW, counter());
    assert_eq!(p.counts.disabled, 10);
    assert!(p.hold.is_none());
}

#[test]
fn incomplete_snapshot_disables_nobody() {
    let (a, b) = (remote(1), remote(2));
    let local = vec![synced(&a, Status::Active)];
    let mut snap = snapshot(vec![b.clone()], &[&b]);
    snap.complete = false;
    let p = plan(&local, &snap, &policy(), NOW, counter());
    assert_eq!(p.counts.disabled, 0);
    assert_eq!(p.counts.created, 1, "users seen in scope may still be created");
}

// ---- property tests ----

#[derive(Debug, Clone)]
struct World {
    remote: Vec<RemoteUser>,
    covered: Covered,
    local: Vec<LocalUser>,
    policy: Policy,
    now_offset_days: i64,
}

fn world() -> impl Strategy<Value = World> {
    let remote_user = (any::<bool>(), any::<bool>(), prop::bool::weighted(0.8), any::<bool>(), 0u8..3);
    let local_kind = (0u8..6, 0i64..40, any::<bool>());
    let policy = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), 1u32..30, 0u32..8, 0u32..5, 0u32..60);
    // A local account either has an address of its own or takes the address of a generated
    // Entra user (in another case), so that linking by e-mail is exercised.
    let local_accounts = prop::collection::vec(prop::option::of(0usize..24), 0..3);
    (prop::collection::vec((remote_user, local_kind), 0..24), policy, 0i64..60, local_accounts).prop_map(
        |(rows, p, now_offset_days, local_accounts)| {
            let policy = Policy {
                include_guests: p.1,
                auto_disable: p.2,
                auto_remove: p.3,
                remove_after_days: p.4,
                seats: p.5,
                threshold_count: p.6,
                threshold_percent: p.7,
            };
            let mut remote_users = Vec::new();
            let mut generated = Vec::new();
            let mut members = HashSet::new();
            let mut local = Vec::new();
            for (i, ((in_tenant, guest, enabled, member, email_variant), (kind, age, in_scope))) in
                rows.into_iter().enumerate()
            {
                let mut r = remote(i as u32);
                r.user_type = if guest { UserType::Guest } else { UserType::Member };
                r.account_enabled = enabled;
                if email_variant == 1 {
                    r.mail = None;
                }
                if member {
                    members.insert(r.id.clone());
                }
                generated.push(r.clone());
                let (status, reason) = match kind {
                    // An Entra user the directory has no account for yet.
                    0 => {
                        if in_tenant {
                            remote_users.push(r);
                        }
                        continue;
                    }
                    1 => (Status::Active, None),
                    2 => (Status::Disabled, Some(DisabledReason::NotInGroup)),
                    3 => (Status::Disabled, Some(DisabledReason::Admin)),
                    4 => (Status::AwaitingLicense, None),
                    _ => (Status::Disabled, Some(DisabledReason::DeletedInEntra)),
                };
                let mut l = synced(&r, status);
                l.created_at = NOW - Duration::days(age);
                l.disabled_reason = reason;
                l.disabled_at = reason.map(|_| NOW - Duration::days(age));
                l.in_scope = in_scope;
                if email_variant == 2 {
                    l.profile.display_name = Some("stale".into());
                }
                local.push(l);
                if in_tenant {
                    remote_users.push(r);
                }
            }
            for (n, collides_with) in local_accounts.into_iter().enumerate() {
                let email = collides_with
                    .and_then(|i| generated.get(i))
                    .and_then(|r| r.linking_email())
                    .map_or_else(|| format!("local{n}@example.org"), str::to_uppercase);
                let mut acct = local_account(&email);
                acct.id = Uuid::from_u128(9_000_000 + n as u128);
                local.push(acct);
            }
            let covered = if p.0 { Covered::Members(members) } else { Covered::EveryUser };
            World { remote: remote_users, covered, local, policy, now_offset_days }
        },
    )
}

proptest! {
    #[test]
    fn planning_again_after_applying_changes_nothing(w in world(), complete in any::<bool>()) {
        let snap = Snapshot { users: w.remote.clone(), covered: w.covered.clone(), complete };
        let now = NOW + Duration::days(w.now_offset_days);
        let first = plan(&w.local, &snap, &w.policy, now, counter());
        let mut local = w.local.clone();
        apply(&mut local, &first);
        let second = plan(&local, &snap, &w.policy, now, counter());
        prop_assert!(second.changes.is_empty(), "second plan not empty: {:#?}", second.changes);
    }

    #[test]
    fn an_admin_disabled_user_is_never_enabled_or_removed(w in world(), complete in any::<bool>()) {
        let snap = Snapshot { users: w.remote.clone(), covered: w.covered.clone(), complete };
        let p = plan(&w.local, &snap, &w.policy, NOW + Duration::days(w.now_offset_days), counter());
        for c in &p.changes {
            if c.before().is_some_and(|b| b.disabled_reason == Some(DisabledReason::Admin)) {
                let after = c.after().expect("never removed");
                prop_assert_eq!(after.status, Status::Disabled);
                prop_assert_eq!(after.disabled_reason, Some(DisabledReason::Admin));
            }
        }
    }

    #[test]
    fn unlinked_local_accounts_are_never_touched_by_any_plan(w in world(), complete in any::<bool>()) {
        let snap = Snapshot { users: w.remote.clone(), covered: w.covered.clone(), complete };
        let p = plan(&w.local, &snap, &w.policy, NOW + Duration::days(w.now_offset_days), counter());
        // Accounts whose address no Entra user vouches for (the others may be linked).
        let vouched: HashSet<String> = w.remote.iter().filter_map(|r| r.linking_email()).map(str::to_lowercase).collect();
        let locals: HashSet<Uuid> = w
            .local
            .iter()
            .filter(|u| u.source == Source::Local && !vouched.contains(&u.profile.email.to_lowercase()))
            .map(|u| u.id)
            .collect();
        prop_assert!(p.changes.iter().all(|c| !locals.contains(&c.user_id)));
    }

    #[test]
    fn a_local_account_an_entra_user_vouches_for_is_linked_not_duplicated(w in world()) {
        let snap = Snapshot { users: w.remote.clone(), covered: w.covered.clone(), complete: true };
        let p = plan(&w.local, &snap, &w.policy, NOW + Duration::days(w.now_offset_days), counter());
        let mut local = w.local.clone();
        apply(&mut local, &p);
        let linked_before: HashSet<&str> = w.local.iter().filter_map(|u| u.azure_object_id.as_deref()).collect();
        for r in &w.remote {
            let Some(email) = r.linking_email().map(str::to_lowercase) else { continue };
            let accounts: Vec<Uuid> = w
                .local
                .iter()
                .filter(|u| u.source == Source::Local && u.profile.email.to_lowercase() == email)
                .map(|u| u.id)
                .collect();
            if accounts.is_empty() || linked_before.contains(r.id.as_str()) || scope_of(Some(r), &w.covered, &w.policy).is_err() {
                continue;
            }
            let holders: Vec<Uuid> =
                local.iter().filter(|u| u.azure_object_id.as_deref() == Some(r.id.as_str())).map(|u| u.id).collect();
            prop_assert_eq!(holders.len(), 1, "one account for {}", email);
            prop_assert!(accounts.contains(&holders[0]), "{} linked to its existing account, not a new one", email);
        }
    }

    #[test]
    fn an_incomplete_snapshot_never_disables_removes_or_unscopes(w in world()) {
        let snap = Snapshot { users: w.remote.clone(), covered: w.covered.clone(), complete: false };
        let p = plan(&w.local, &snap, &w.policy, NOW + Duration::days(w.now_offset_days), counter());
        for c in &p.changes {
            prop_assert!(!matches!(c.action, Action::Disable | Action::Remove), "{:?}", c);
            prop_assert!(c.after().is_none_or(|a| a.in_scope || c.before().is_some_and(|b| !b.in_scope)));
        }
    }

    #[test]
    fn seats_are_never_oversubscribed_by_the_sync(w in world(), complete in any::<bool>()) {
        let snap = Snapshot { users: w.remote.clone(), covered: w.covered.clone(), complete };
        let before_used = w.local.iter().filter(|u| u.status.holds_seat()).count() as u64;
        let p = plan(&w.local, &snap, &w.policy, NOW + Duration::days(w.now_offset_days), counter());
        let mut local = w.local.clone();
        apply(&mut local, &p);
        let used = local.iter().filter(|u| u.status.holds_seat()).count() as u64;
        prop_assert_eq!(used, p.seats.used);
        if w.policy.seats > 0 {
            prop_assert!(used <= u64::from(w.policy.seats).max(before_used));
        }
    }

    /// A full read of a million users is planned a slice of Entra ids at a time: whatever the
    /// slices, the plan is the one made whole (the snapshot in id order, as a full read has it).
    #[test]
    fn a_plan_walked_in_slices_of_ids_is_the_plan_made_whole(
        w in world(),
        complete in any::<bool>(),
        cuts in prop::collection::vec(0u32..26, 0..6),
        twins in prop::collection::vec((0usize..24, 0usize..24), 0..4),
    ) {
        // Entra users may share an address: the first in id order links a local account.
        let mut remote = w.remote.clone();
        for (a, b) in twins {
            if let (Some(mail), true) = (remote.get(a).and_then(|r| r.mail.clone()), b < remote.len()) {
                remote[b].mail = Some(mail);
            }
        }
        remote.sort_by(|a, b| a.id.cmp(&b.id));
        let snap = Snapshot { users: remote.clone(), covered: w.covered.clone(), complete };
        let now = NOW + Duration::days(w.now_offset_days);
        // The directory oldest first, as the store lists it; the slices hold it in id order.
        let mut local = w.local.clone();
        local.sort_by_key(|u| (u.created_at, u.id));
        let whole = plan(&local, &snap, &w.policy, now, counter());

        let bounds: Vec<String> = cuts.iter().map(|c| remote_id(*c)).collect();
        let (mut changes, counts, decisions) = walk_in_slices(&w.local, &snap, &w.policy, now, &bounds);
        prop_assert_eq!(counts, whole.counts);
        prop_assert_eq!(decisions.hold, whole.hold);
        prop_assert_eq!(decisions.seats, whole.seats);
        // What the first pass hands the engine: the removals to confirm with Graph, and the
        // hold left after an administrator approved some of the disables.
        let mut removing = decisions.removing().to_vec();
        removing.sort();
        let mut expected_removing: Vec<String> = whole
            .changes
            .iter()
            .filter(|c| c.action == Action::Remove)
            .filter_map(|c| c.user().azure_object_id.clone())
            .collect();
        expected_removing.sort();
        prop_assert_eq!(removing, expected_removing);
        let approved: HashSet<Uuid> =
            whole.changes.iter().filter(|c| c.action == Action::Disable).step_by(2).map(|c| c.user_id).collect();
        prop_assert_eq!(decisions.hold_beyond(&approved), whole.hold_beyond(&approved));
        let mut expected = whole.changes.clone();
        expected.sort_by_key(|c| c.user_id);
        changes.sort_by_key(|c| c.user_id);
        prop_assert_eq!(changes, expected);
    }
}

fn remote_id(n: u32) -> String {
    remote(n).id
}

/// Plans `snap` a slice at a time, cut at `bounds` (Entra ids): each slice holds the Entra
/// users of its id range and the directory users linked to one, in id order.
fn walk_in_slices(
    local: &[LocalUser],
    snap: &Snapshot,
    policy: &Policy,
    now: OffsetDateTime,
    bounds: &[String],
) -> (Vec<safegpt_core::Change>, safegpt_core::Counts, safegpt_core::Decisions) {
    let mut bounds = bounds.to_vec();
    bounds.sort();
    bounds.dedup();
    let lows = std::iter::once(None).chain(bounds.iter().map(|b| Some(b.as_str())));
    let highs = bounds.iter().map(|b| Some(b.as_str())).chain(std::iter::once(None));
    let within =
        |id: &str, lo: Option<&str>, hi: Option<&str>| lo.is_none_or(|lo| id >= lo) && hi.is_none_or(|hi| id < hi);
    let slices: Vec<(Vec<LocalUser>, Vec<RemoteUser>, Covered)> = lows
        .zip(highs)
        .map(|(lo, hi)| {
            let mut linked: Vec<LocalUser> = local
                .iter()
                .filter(|u| u.azure_object_id.as_deref().is_some_and(|id| within(id, lo, hi)))
                .cloned()
                .collect();
            linked.sort_by(|a, b| a.azure_object_id.cmp(&b.azure_object_id));
            let mut remote: Vec<RemoteUser> = snap.users.iter().filter(|u| within(&u.id, lo, hi)).cloned().collect();
            remote.sort_by(|a, b| a.id.cmp(&b.id));
            // As the engine does: a slice knows the coverage of its own Entra users only.
            let covered = match &snap.covered {
                Covered::EveryUser => Covered::EveryUser,
                Covered::Members(_) => Covered::Members(
                    remote.iter().filter(|u| snap.covered.contains(&u.id)).map(|u| u.id.clone()).collect(),
                ),
            };
            (linked, remote, covered)
        })
        .collect();
    let unlinked: Vec<LocalUser> = local.iter().filter(|u| u.azure_object_id.is_none()).cloned().collect();
    let walk = Walk::new(policy, now, snap.complete, Untouched::default(), &unlinked);
    let mut counting = walk.counting();
    let seen: Vec<_> = slices.iter().map(|(linked, remote, covered)| counting.slice(linked, remote, covered)).collect();
    let decisions = counting.finish();
    let mut planning = walk.planning(&decisions, counter());
    let mut changes = Vec::new();
    for ((linked, remote, covered), seen) in slices.iter().zip(seen) {
        // As the engine does: a slice with nothing to plan is not read again.
        if seen.anything_to_plan() {
            changes.extend(planning.slice(linked, remote, covered));
        } else {
            planning.skip(seen);
        }
    }
    (changes, planning.finish(), decisions)
}

#[test]
fn in_slices_a_local_account_is_linked_once_by_the_first_entra_user_with_its_address() {
    let (first, mut twin) = (remote(1), remote(7));
    twin.mail = first.mail.clone();
    let account = local_account("USER1@contoso.com");
    let snap = whole_tenant(vec![first.clone(), twin.clone()]);
    let (changes, counts, _) = walk_in_slices(std::slice::from_ref(&account), &snap, &policy(), NOW, &[remote_id(5)]);
    assert_eq!((counts.created, counts.updated), (1, 1), "{changes:#?}");
    let linked = changes.iter().find(|c| c.user_id == account.id).expect("the account is linked");
    assert_eq!(linked.reason, ChangeReason::LinkedByEmail);
    assert_eq!(linked.after().unwrap().azure_object_id.as_deref(), Some(first.id.as_str()));
    let created = changes.iter().find(|c| c.action == Action::Create).unwrap();
    assert_eq!(created.after().unwrap().azure_object_id.as_deref(), Some(twin.id.as_str()));
}

#[test]
fn in_slices_free_seats_go_to_the_oldest_users_awaiting_a_license_whatever_their_slice() {
    let policy = Policy { seats: 2, ..policy() };
    let users: Vec<RemoteUser> = (1..=3).map(remote).collect();
    let mut local: Vec<LocalUser> = users.iter().map(|r| synced(r, Status::AwaitingLicense)).collect();
    // The user in the last slice waits longest, then the one in the first.
    for (user, age) in local.iter_mut().zip([50, 10, 90]) {
        user.created_at = NOW - Duration::days(age);
    }
    let snap = whole_tenant(users.clone());
    let (changes, counts, decisions) = walk_in_slices(&local, &snap, &policy, NOW, &[remote_id(2), remote_id(3)]);
    let enabled: HashSet<String> = changes
        .iter()
        .filter(|c| c.action == Action::Enable)
        .filter_map(|c| c.user().azure_object_id.clone())
        .collect();
    assert_eq!(enabled, HashSet::from([users[2].id.clone(), users[0].id.clone()]), "{changes:#?}");
    assert_eq!((counts.enabled, counts.awaiting_license, decisions.seats.used), (2, 1, 2));
}
