//! A deployment's store for in-process tests against graph-sim: a fresh database (SQLite,
//! or PostgreSQL with SAFEGPT_TEST_DATABASE_URL) with Azure User Sync configured for the
//! simulated tenant's first app, active, plus the settings a test names.

use graph_sim::SimServer;
use safegpt_core::SettingsPatch;
use safegpt_store::{Sealer, Store};
use secrecy::SecretString;
use time::OffsetDateTime;

pub async fn configured_store(sim: &SimServer, patch: SettingsPatch) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = safegpt_store::testing::test_database_url(dir.path()).await;
    let store = Store::open(&url, Sealer::from_key([7; 32])).await.unwrap();
    let (tenant_id, app) = {
        let state = sim.sim.lock();
        (state.dir.tenant_id.clone(), state.dir.apps[0].clone())
    };
    let patch = SettingsPatch {
        active: Some(true),
        tenant_id: Some(tenant_id),
        client_id: Some(app.client_id.clone()),
        login_url: Some(sim.base_url.clone()),
        graph_url: Some(sim.base_url.clone()),
        ..patch
    };
    let settings = store.settings().await.unwrap().0.apply(&patch).unwrap();
    let secret = SecretString::from(app.secrets[0].value.clone());
    store.save_settings(&settings, Some(&secret), "test", OffsetDateTime::now_utc()).await.unwrap();
    (store, dir)
}
