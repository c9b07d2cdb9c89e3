//! `safegpt demo`: everything a newcomer needs in one process. graph-sim serves a generated
//! tenant (nested groups, guests, disabled accounts) on a free loopback port, Azure User Sync
//! is configured against it (active, scoped to the largest group, not yet synced), an
//! administrator with a random password is created, and the server starts.

use std::sync::Arc;

use graph_sim::{GenerateSpec, SimOptions, SimServer, generate};
use safegpt_app::{Operations, Platform, Principal, SettingsChange};
use safegpt_core::SettingsPatch;
use safegpt_store::{AdminRole, DEFAULT_ORG, MASTER_KEY_ENV, Sealer, Store, random_token};

use super::args::DemoArgs;
use super::exit::{self, Failure};
use super::serve::{bind, shutdown_signal};
use crate::web::WebConfig;

pub const DEMO_ADMIN: &str = "admin@demo.safegpt.example";

pub async fn run(args: &DemoArgs, operations: Operations) -> Result<u8, Failure> {
    let tenant =
        generate(&GenerateSpec { users: args.users, groups: 12, guests_percent: 8, seed: 42, ..Default::default() });
    let group = tenant.largest_group();
    let registration =
        tenant.apps.first().cloned().ok_or_else(|| Failure::failed("the generated tenant has no app"))?;
    let secret = registration
        .secrets
        .first()
        .map(|s| s.value.clone())
        .ok_or_else(|| Failure::failed("the app has no secret"))?;
    let tenant_id = tenant.tenant_id.clone();
    let sim = SimServer::start("127.0.0.1:0", tenant, SimOptions::default())
        .await
        .map_err(|e| Failure::failed(format!("cannot start graph-sim: {e}")))?;

    let data_dir = std::env::temp_dir().join(format!("safegpt-demo-{}", &random_token()[..10]));
    safegpt_store::create_private_dir(&data_dir)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", data_dir.display())))?;
    let sealer = Sealer::load(std::env::var(MASTER_KEY_ENV).ok().as_deref(), &data_dir)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let store = Store::open(&format!("sqlite://{}", data_dir.join("safegpt.db").display()), sealer).await?;
    let platform = Platform::new(Arc::new(store), operations);
    let app = platform.scope(&Principal::Demo, None).await?;

    let patch = SettingsPatch {
        active: Some(true),
        tenant_id: Some(tenant_id.clone()),
        client_id: Some(registration.client_id.clone()),
        group_ids: Some(group.iter().cloned().collect()),
        auto_disable: Some(true),
        auto_remove: Some(true),
        remove_after_days: Some("14".into()),
        login_url: Some(sim.base_url.clone()),
        graph_url: Some(sim.base_url.clone()),
        ..SettingsPatch::default()
    };
    app.configure(&Principal::Demo, SettingsChange { patch, client_secret: Some(secret) }).await?;
    let password = random_token()[..16].to_owned();
    // Like the setup link's first administrator: a platform operator and administrator of
    // the one organisation.
    let role = AdminRole { org: Some(DEFAULT_ORG.to_owned()), platform: true };
    platform.create_admin(&Principal::Demo, DEMO_ADMIN, &password, role).await?;

    let server = bind(platform, &args.listen, WebConfig::default()).await?;
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
