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
    /// Tenant to serve (format: see the README), or several: `{"tenants": [TENANT, …]}`.
    #[arg(long, conflicts_with_all = ["generate", "generate_tenants"])]
    tenant_file: Option<PathBuf>,
    /// Generate a tenant: users=N,groups=G,nesting=D,guests=PCT,disabled=PCT,seed=S,memberships=M
    /// (M: direct user memberships in all; by default about 1.07 per user).
    #[arg(long, conflicts_with = "generate_tenants")]
    generate: Option<GenerateSpec>,
    /// Generate N tenants, each like --generate (seeds SEED, SEED+1, …): N,users=U,groups=G,…
    #[arg(long, value_name = "N,SPEC")]
    generate_tenants: Option<String>,
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
    let tenants: Vec<TenantFile> = match (&cli.tenant_file, &cli.generate, &cli.generate_tenants) {
        (Some(path), _, _) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return fail(format!("cannot read tenant file {}: {e}", path.display())),
            };
            match serde_json::from_str::<TenantSet>(&text) {
                Ok(TenantSet::Many { tenants }) => tenants,
                Ok(TenantSet::One(tenant)) => vec![*tenant],
                Err(e) => return fail(format!("tenant file {} is invalid: {e}", path.display())),
            }
        }
        (None, _, Some(raw)) => match generate_tenants(raw) {
            Ok(tenants) => tenants,
            Err(e) => return fail(format!("--generate-tenants: {e}")),
        },
        (None, Some(spec), None) => vec![generate(spec)],
        (None, None, None) => vec![generate(&GenerateSpec::default())],
    };
    if let Some(path) = &cli.write_tenant {
        let json = match tenants.as_slice() {
            [one] => serde_json::to_vec_pretty(one),
            many => serde_json::to_vec_pretty(&serde_json::json!({ "tenants": many })),
        }
        .expect("tenants serialize");
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
    let first = &tenants[0];
    let app = first.apps.first().cloned();
    let (tenant_id, users, groups) = (first.tenant_id.clone(), first.users.len(), first.groups.len());
    let count = tenants.len();
    let options = SimOptions { public_login_url: cli.public_login_url, public_graph_url: cli.public_graph_url };
    let server = match SimServer::start_many(&listen, tenants, options).await {
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
    if count == 1 {
        let _ = writeln!(out, "serving {users} users in {groups} groups; control API at {}/_sim/", server.base_url);
    } else {
        let _ = writeln!(
            out,
            "serving {count} tenants (the first: {users} users in {groups} groups); control API at {}/_sim/tenants/TENANT/",
            server.base_url
        );
    }
    let _ = out.flush();
    drop(out);
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// A tenant file: one tenant, or several.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TenantSet {
    Many { tenants: Vec<TenantFile> },
    One(Box<TenantFile>),
}

/// `N,SPEC`: N tenants generated like `--generate SPEC`, with seeds SEED, SEED+1, …
fn generate_tenants(raw: &str) -> Result<Vec<TenantFile>, String> {
    let (count, spec) = raw.split_once(',').unwrap_or((raw, ""));
    let count: usize = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=100_000).contains(n))
        .ok_or_else(|| format!("'{count}' is not a number of tenants from 1 to 100000 (e.g. 1000,users=200)"))?;
    let spec: GenerateSpec = spec.parse()?;
    Ok((0..count as u64).map(|i| generate(&GenerateSpec { seed: spec.seed + i, ..spec.clone() })).collect())
}

fn fail(message: String) -> ExitCode {
    eprintln!("graph-sim: {message}");
    ExitCode::from(2)
}
