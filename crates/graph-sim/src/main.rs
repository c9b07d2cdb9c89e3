use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use graph_sim::{GenerateSpec, SimOptions, SimServer, TenantFile, generate};

/// A simulator of the Entra ID token endpoint and Microsoft Graph v1.0 for SafeGPT.
#[derive(Parser)]
#[command(name = "graph-sim", version)]
struct Cli {
    /// Address to serve on; port 0 picks a free port. Without it, graph-sim only writes
    /// the tenant (with --write-tenant) and exits.
    #[arg(long)]
    listen: Option<String>,
    /// Tenant to serve (format: see the README).
    #[arg(long, conflicts_with = "generate")]
    tenant_file: Option<PathBuf>,
    /// Generate a tenant: users=N,groups=G,nesting=D,guests=PCT,disabled=PCT,seed=S,memberships=M
    /// (M: direct user memberships in all; by default about 1.07 per user).
    #[arg(long)]
    generate: Option<GenerateSpec>,
    /// Write the tenant (generated or loaded) to this file.
    #[arg(long)]
    write_tenant: Option<PathBuf>,
    /// Login root to advertise in discovery documents instead of the listening address.
    #[arg(long)]
    public_login_url: Option<String>,
    /// Graph root to advertise in @odata.nextLink / deltaLink instead of the listening address.
    #[arg(long)]
    public_graph_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let tenant: TenantFile = match (&cli.tenant_file, &cli.generate) {
        (Some(path), _) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return fail(format!("cannot read tenant file {}: {e}", path.display())),
            };
            match serde_json::from_str(&text) {
                Ok(t) => t,
                Err(e) => return fail(format!("tenant file {} is invalid: {e}", path.display())),
            }
        }
        (None, Some(spec)) => generate(spec),
        (None, None) => generate(&GenerateSpec::default()),
    };
    if let Some(path) = &cli.write_tenant {
        let json = serde_json::to_vec_pretty(&tenant).expect("tenant serializes");
        if let Err(e) = std::fs::write(path, json) {
            return fail(format!("cannot write {}: {e}", path.display()));
        }
    }
    let Some(listen) = cli.listen else {
        if cli.write_tenant.is_none() {
            return fail("nothing to do: give --listen ADDR to serve, or --write-tenant FILE".into());
        }
        return ExitCode::SUCCESS;
    };
    let app = tenant.apps.first().cloned();
    let (tenant_id, users, groups) = (tenant.tenant_id.clone(), tenant.users.len(), tenant.groups.len());
    let options = SimOptions { public_login_url: cli.public_login_url, public_graph_url: cli.public_graph_url };
    let server = match SimServer::start(&listen, tenant, options).await {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", server.base_url);
    let _ = writeln!(out, "tenant-id {tenant_id}");
    if let Some(app) = app {
        let _ = writeln!(out, "client-id {}", app.client_id);
        if let Some(secret) = app.secrets.first() {
            let _ = writeln!(out, "client-secret {}", secret.value);
        }
    }
    let _ = writeln!(out, "serving {users} users in {groups} groups; control API at {}/_sim/", server.base_url);
    let _ = out.flush();
    drop(out);
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

fn fail(message: String) -> ExitCode {
    eprintln!("graph-sim: {message}");
    ExitCode::from(2)
}
