//! `safegpt demo`: everything a newcomer needs in one process. graph-sim serves a generated
//! tenant (nested groups, guests, disabled accounts) on a free loopback port, Azure User Sync
//! is configured against it (active, scoped to the largest group, not yet synced), an
//! administrator with a random password is created, and the server starts.

use std::collections::{HashMap, HashSet};

use graph_sim::{GenerateSpec, SimOptions, SimServer, TenantFile, generate};
use safegpt_core::SettingsPatch;
use safegpt_store::{MASTER_KEY_ENV, Sealer, Store, random_token};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::Failure;
use crate::cli::{DemoArgs, exit};
use crate::serve::{bind, shutdown_signal};
use crate::web::WebConfig;

pub const DEMO_ADMIN: &str = "admin@demo.safegpt.example";

/// The group with the most users, counting members of nested groups.
pub fn largest_group(tenant: &TenantFile) -> Option<String> {
    let groups: HashMap<&str, &Vec<String>> = tenant.groups.iter().map(|g| (g.id.as_str(), &g.members)).collect();
    let users: HashSet<&str> = tenant.users.iter().map(|u| u.id.as_str()).collect();
    let count = |root: &str| {
        let (mut seen, mut found, mut stack) = (HashSet::from([root]), HashSet::new(), vec![root]);
        while let Some(g) = stack.pop() {
            for m in groups.get(g).into_iter().flat_map(|ms| ms.iter()) {
                if users.contains(m.as_str()) {
                    found.insert(m.as_str());
                } else if groups.contains_key(m.as_str()) && seen.insert(m.as_str()) {
                    stack.push(m.as_str());
                }
            }
        }
        found.len()
    };
    tenant.groups.iter().max_by_key(|g| (count(&g.id), std::cmp::Reverse(g.id.clone()))).map(|g| g.id.clone())
}

pub async fn run(args: &DemoArgs) -> Result<u8, Failure> {
    let tenant = generate(&GenerateSpec {
        users: args.users,
        groups: 12,
        nesting: 3,
        guests_percent: 8,
        disabled_percent: 5,
        seed: 42,
    });
    let group = largest_group(&tenant);
    let app = tenant.apps.first().cloned().ok_or_else(|| Failure::failed("the generated tenant has no app"))?;
    let secret =
        app.secrets.first().map(|s| s.value.clone()).ok_or_else(|| Failure::failed("the app has no secret"))?;
    let tenant_id = tenant.tenant_id.clone();
    let sim = SimServer::start("127.0.0.1:0", tenant, SimOptions::default())
        .await
        .map_err(|e| Failure::failed(format!("cannot start graph-sim: {e}")))?;

    let data_dir = std::env::temp_dir().join(format!("safegpt-demo-{}", &random_token()[..10]));
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", data_dir.display())))?;
    let sealer = Sealer::load(std::env::var(MASTER_KEY_ENV).ok().as_deref(), &data_dir)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let store = Store::open(&format!("sqlite://{}", data_dir.join("safegpt.db").display()), sealer).await?;

    let now = OffsetDateTime::now_utc();
    let patch = SettingsPatch {
        active: Some(true),
        tenant_id: Some(tenant_id.clone()),
        client_id: Some(app.client_id.clone()),
        group_ids: Some(group.iter().cloned().collect()),
        auto_disable: Some(true),
        auto_remove: Some(true),
        remove_after_days: Some("14".into()),
        login_url: Some(sim.base_url.clone()),
        graph_url: Some(sim.base_url.clone()),
        ..SettingsPatch::default()
    };
    let (current, _) = store.settings().await?;
    let settings = current.apply(&patch).map_err(|e| Failure::failed(e.to_string()))?;
    store.save_settings(&settings, Some(&SecretString::from(secret)), "demo", now).await?;

    let password = random_token()[..16].to_owned();
    let phc = crate::web::auth::hash_password(&password).map_err(Failure::failed)?;
    store.create_admin(DEMO_ADMIN, &phc, "demo", now).await?;

    let server = bind(store, &args.listen, WebConfig::default()).await?;
    let url = format!("http://{}", server.local_addr());
    println!("SafeGPT demo is running at {url}");
    println!("  log in as      {DEMO_ADMIN}");
    println!("  password       {password}");
    println!("  Entra tenant   {tenant_id} (simulated by graph-sim at {})", sim.base_url);
    println!("  data           {} (delete it when you are done)", data_dir.display());
    println!("Open Settings > Integrations, press the rocket to sync. Ctrl-C stops the demo.");
    let result = server.run(shutdown_signal()).await;
    sim.shutdown().await;
    result.map_err(|e| Failure::failed(format!("server error: {e}")))?;
    Ok(exit::OK)
}
