//! The store's batched writes: applying a plan of 10,000 created users (user rows, run
//! changes, events, audit rows, in one transaction) to a fresh SQLite database.
//! `cargo bench -p safegpt-store`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use safegpt_core::{Policy, RemoteUser, Settings, Snapshot, UserType, plan};
use safegpt_store::{RunTotals, Sealer, Store};
use time::macros::datetime;
use uuid::Uuid;

fn remote(n: u32) -> RemoteUser {
    RemoteUser {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        user_principal_name: format!("user{n}@contoso.onmicrosoft.com"),
        mail: Some(format!("user{n}@contoso.com")),
        display_name: Some(format!("User {n}")),
        given_name: None,
        surname: None,
        job_title: None,
        department: Some("Sales".into()),
        account_enabled: true,
        user_type: UserType::Member,
        other_mail: None,
    }
}

fn apply(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let now = datetime!(2026-11-26 12:00 UTC);
    let policy = Policy::from(&Settings::default());
    let snapshot = Snapshot { users: (0..10_000).map(remote).collect(), covered: Default::default(), complete: true };
    let plan = plan(&[], &snapshot, &policy, now, Uuid::now_v7);

    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.bench_function("apply 10k creates (SQLite)", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                let store = rt.block_on(Store::open(&url, Sealer::from_key([3; 32]))).unwrap();
                let run = rt.block_on(store.start_run("bench", false, now)).unwrap();
                let version = rt.block_on(store.directory_version()).unwrap();
                (dir, store, run, version)
            },
            |(_dir, store, run, version)| {
                rt.block_on(store.apply_plan(run, &plan, version, None, RunTotals::default(), now)).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
