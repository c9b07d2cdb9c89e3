//! The planner on 100,000 users: a first sync (every user created) and a sync where nothing
//! changed. `cargo bench -p safegpt-core`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use safegpt_core::{LocalUser, Policy, RemoteUser, Settings, Snapshot, UserType, plan};
use time::macros::datetime;
use uuid::Uuid;

const USERS: u32 = 100_000;

fn remote(n: u32) -> RemoteUser {
    RemoteUser {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        user_principal_name: format!("user{n}@contoso.onmicrosoft.com"),
        mail: Some(format!("user{n}@contoso.com")),
        display_name: Some(format!("User {n}")),
        given_name: Some("User".into()),
        surname: Some(format!("{n}")),
        job_title: None,
        department: Some("Sales".into()),
        account_enabled: true,
        user_type: UserType::Member,
        other_mail: None,
    }
}

fn planner(c: &mut Criterion) {
    let now = datetime!(2026-11-26 12:00 UTC);
    let policy = Policy::from(&Settings { auto_disable: true, auto_remove: true, ..Settings::default() });
    let snapshot = Snapshot { users: (0..USERS).map(remote).collect(), covered: Default::default(), complete: true };
    let first = plan(&[], &snapshot, &policy, now, Uuid::now_v7);
    let local: Vec<LocalUser> = first.changes.iter().filter_map(|c| c.after().cloned()).collect();

    let mut group = c.benchmark_group("planner");
    group.sample_size(10);
    group.bench_function("100k users, first sync (all created)", |b| {
        b.iter(|| plan(black_box(&[]), black_box(&snapshot), &policy, now, Uuid::now_v7))
    });
    group.bench_function("100k users, nothing changed", |b| {
        b.iter(|| plan(black_box(&local), black_box(&snapshot), &policy, now, Uuid::now_v7))
    });
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
