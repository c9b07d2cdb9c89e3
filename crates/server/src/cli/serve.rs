//! `safegpt serve`: binds, makes sure an administrator can get in, and serves until Ctrl-C
//! or SIGTERM.

use safegpt_app::Platform;
use safegpt_store::random_token;
use tracing::warn;

use super::args::ServeArgs;
use super::exit::{self, Failure};
use crate::web::{AppState, Server, WebConfig};

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

/// Binds the server. With no administrator yet, it arms a one-time setup link and prints it
/// on stdout, so the server never runs open to whoever comes first without the link.
pub async fn bind(platform: Platform, listen: &str, config: WebConfig) -> Result<Server, Failure> {
    let store = std::sync::Arc::clone(platform.store());
    let state = AppState::new(platform, config);
    let server = Server::bind(listen, state)
        .await
        .map_err(|e| Failure::invalid(format!("--listen: cannot listen on {listen}: {e}")))?;
    if store.admin_count().await? == 0 {
        let token = random_token();
        *server.state().setup_token.lock().expect("setup lock") = Some(token.clone());
        let base =
            server.state().config.public_url.clone().unwrap_or_else(|| format!("http://{}", server.local_addr()));
        let link = format!("{}/setup?token={token}", base.trim_end_matches('/'));
        // The link is a credential: it goes to the operator's terminal (stdout) only, never
        // to the log, which is shipped and kept elsewhere.
        warn!("no administrator exists yet; the one-time setup link is on the standard output of this process");
        println!(
            "No administrator exists yet. Create the first one at\n  {link}\n\
             (this link works once, until this process ends) or run `safegpt admin create --platform --org default --email E --password-stdin`."
        );
    }
    Ok(server)
}

pub async fn serve(platform: Platform, args: &ServeArgs) -> Result<u8, Failure> {
    if let Some(url) = &args.public_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(Failure::invalid(format!("--public-url: '{url}' must start with https:// or http://")));
    }
    let config = WebConfig { public_url: args.public_url.clone(), ..WebConfig::default() };
    let server = bind(platform, &args.listen, config).await?;
    // The actual address (port 0 picks one): tests and scripts read this line.
    println!("listening on http://{}", server.local_addr());
    server.run(shutdown_signal()).await.map_err(|e| Failure::failed(format!("server error: {e}")))?;
    Ok(exit::OK)
}
