//! graph-sim: a simulator of the Entra ID token endpoint and the Microsoft Graph v1.0
//! endpoints SafeGPT's Azure User Sync uses. It is a test double of the cloud, not of our
//! code: paging, delta, errors, throttling and headers follow the real service
//! (`shared/reference/graph-wire.md`), and Microsoft's own SDKs work against it.

pub mod batch;
pub mod control;
pub mod delta;
pub mod fidelity;
pub mod generate;
pub mod graph_api;
pub mod http;
pub mod sim;
pub mod tenant;
pub mod token;

use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use fidelity::Fidelity;
pub use generate::{GenerateSpec, generate};
pub use sim::{Faults, PublicUrls, Sim, Tenants};
pub use tenant::{AppRecord, Directory, GroupRecord, SecretRecord, TenantFile, UserRecord};

pub(crate) fn is_guid(s: &str) -> bool {
    let lengths = [8, 4, 4, 4, 12];
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip(lengths).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Base URLs to advertise instead of the listening address (for clients that insist on the
/// real Microsoft hosts and rewrite them in their transport).
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    pub public_login_url: Option<String>,
    pub public_graph_url: Option<String>,
}

/// A running simulator. Dropping it does not stop the server; call [`SimServer::shutdown`].
pub struct SimServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, the root of both the token endpoint and Graph.
    pub base_url: String,
    pub sim: Sim,
    /// Every tenant served (the first is `sim`).
    pub tenants: Tenants,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("invalid tenant: {0}")]
    Tenant(#[from] tenant::TenantError),
    #[error("no tenant to serve")]
    NoTenant,
}

impl SimServer {
    /// Starts serving `tenant` on `listen` (use port 0 for a free port).
    pub async fn start(listen: &str, tenant: TenantFile, options: SimOptions) -> Result<SimServer, StartError> {
        Self::start_many(listen, vec![tenant], options).await
    }

    /// Starts serving several tenants on `listen`, as Entra and Graph serve every tenant
    /// at one address: a token request names its tenant in the path, and a Graph request
    /// is answered from the tenant that issued its token. `sim` is the first tenant.
    pub async fn start_many(
        listen: &str,
        tenants: Vec<TenantFile>,
        options: SimOptions,
    ) -> Result<SimServer, StartError> {
        let listener =
            TcpListener::bind(listen).await.map_err(|source| StartError::Listen { addr: listen.into(), source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: listen.into(), source })?;
        let base_url = format!("http://{addr}");
        let urls = PublicUrls {
            login: options.public_login_url.unwrap_or_else(|| base_url.clone()).trim_end_matches('/').to_owned(),
            graph: options.public_graph_url.unwrap_or_else(|| base_url.clone()).trim_end_matches('/').to_owned(),
        };
        if tenants.is_empty() {
            return Err(StartError::NoTenant);
        }
        let mut sims = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let faults = tenant.faults.clone();
            let sim = Sim::new(Directory::from_file(tenant)?, urls.clone());
            if let Some(faults) = faults {
                sim.lock().set_faults(faults);
            }
            sims.push(sim);
        }
        let tenants = Tenants::new(sims);
        let sim = tenants.first().clone();
        let app = axum::Router::new().fallback(http::dispatch).with_state(tenants.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(SimServer { addr, base_url, sim, tenants, shutdown: Some(tx), task })
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}
