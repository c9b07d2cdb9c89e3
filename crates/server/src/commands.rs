//! The commands: each parses its input, calls the store or the engine, and prints.

use std::io::Read;
use std::time::Duration;

use safegpt_core::{SettingsPatch, Status};
use safegpt_graph::RetryPolicy;
use safegpt_store::{MASTER_KEY_ENV, RunStatus, Sealer, Store, UserFilter};
use safegpt_sync::{SyncError, SyncRequest};
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Failure;
use crate::cli::{
    AdminCommand, AzureCommand, Cli, CloudArg, Command, ConfigureArgs, RunsCommand, StatusArg, SyncArgs, TokensCommand,
    UsersCommand, exit,
};
use crate::views::{SettingsView, UserView};

const ACTOR: &str = "cli";

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("views serialize"));
}

pub async fn open_store(cli: &Cli) -> Result<Store, Failure> {
    let url =
        cli.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", cli.data_dir.join("safegpt.db").display()));
    let sealer = Sealer::load(std::env::var(MASTER_KEY_ENV).ok().as_deref(), &cli.data_dir)
        .map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(Store::open(&url, sealer).await?)
}

/// Operator settings for Graph requests, from the environment (seconds, decimals allowed).
pub fn retry_policy() -> Result<RetryPolicy, Failure> {
    let mut policy = RetryPolicy::default();
    for (var, slot) in [
        ("SAFEGPT_GRAPH_RETRY_BUDGET_SECS", &mut policy.budget),
        ("SAFEGPT_GRAPH_TIMEOUT_SECS", &mut policy.request_timeout),
    ] {
        if let Some(raw) = crate::config::setting(var) {
            let secs: f64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| Failure::invalid(format!("{var}: '{raw}' is not a positive number of seconds")))?;
            *slot = Duration::from_secs_f64(secs);
        }
    }
    Ok(policy)
}

/// The sync lease's lifetime from `SAFEGPT_LEASE_TTL_SECS` (default 60): how long a dead
/// process blocks the next sync.
pub fn lease_settings() -> Result<safegpt_sync::LeaseSettings, Failure> {
    let mut lease = safegpt_sync::LeaseSettings::default();
    if let Some(raw) = crate::config::setting("SAFEGPT_LEASE_TTL_SECS") {
        let secs: u64 = raw.trim().parse().ok().filter(|s| (2..=3600).contains(s)).ok_or_else(|| {
            Failure::invalid(format!("SAFEGPT_LEASE_TTL_SECS: '{raw}' is not a whole number of seconds from 2 to 3600"))
        })?;
        lease.ttl = Duration::from_secs(secs);
    }
    Ok(lease)
}

fn wall_clock() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub async fn run(cli: Cli) -> Result<u8, Failure> {
    if let Command::Demo(args) = &cli.command {
        return crate::demo::run(args).await;
    }
    let store = open_store(&cli).await?;
    match cli.command {
        Command::Demo(_) => unreachable!("handled above"),
        Command::Serve(args) => crate::serve::serve(store, &args).await,
        Command::Admin(AdminCommand::Create { email, password_stdin: _ }) => admin_create(&store, &email).await,
        Command::Tokens(cmd) => tokens(&store, cmd).await,
        Command::Azure(AzureCommand::Configure(args)) => configure(&store, *args).await,
        Command::Azure(AzureCommand::Show(f)) => show(&store, f.json).await,
        Command::Azure(AzureCommand::Test(f)) => test(&store, f.json).await,
        Command::Sync(args) => sync(&store, args).await,
        Command::Users(cmd) => users(&store, cmd).await,
        Command::Runs(RunsCommand::List(f)) => runs_list(&store, f.json).await,
        Command::Runs(RunsCommand::Show { id, json }) => run_show(&store, &id, json).await,
        Command::Audit(f) => audit(&store, f.json).await,
    }
}

fn read_stdin(what: &str) -> Result<String, Failure> {
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(|e| Failure::invalid(format!("{what}: cannot read standard input: {e}")))?;
    Ok(raw.trim_end_matches(['\n', '\r']).to_owned())
}

async fn admin_create(store: &Store, email: &str) -> Result<u8, Failure> {
    let password = read_stdin("password")?;
    crate::web::auth::check_new_password(&password).map_err(Failure::invalid)?;
    let phc = crate::web::auth::hash_password(&password).map_err(Failure::failed)?;
    let admin = store.create_admin(email, &phc, ACTOR, wall_clock()).await?;
    println!("Administrator {} created.", admin.email);
    Ok(exit::OK)
}

async fn tokens(store: &Store, cmd: TokensCommand) -> Result<u8, Failure> {
    match cmd {
        TokensCommand::Create { name } => {
            let (_, value) = store.create_api_token(&name, ACTOR, wall_clock()).await?;
            // Alone on stdout so that `TOKEN=$(safegpt tokens create --name ci)` works.
            println!("{value}");
        }
        TokensCommand::List(f) => {
            let tokens = store.api_tokens().await?;
            if f.json {
                print_json(&tokens.iter().map(crate::views::TokenView::from).collect::<Vec<_>>());
            } else {
                for t in &tokens {
                    let state = t.revoked_at.map_or_else(|| "active".to_owned(), |at| format!("revoked {at}"));
                    println!("{}  {:<30} {}", t.id, t.name, state);
                }
            }
        }
        TokensCommand::Revoke { id } => {
            let t = store.revoke_api_token(&id, ACTOR, wall_clock()).await?;
            println!("Token '{}' ({}) is revoked.", t.name, t.id);
        }
    }
    Ok(exit::OK)
}

fn read_secret_from_stdin() -> Result<SecretString, Failure> {
    let secret = read_stdin("client_secret")?;
    if secret.trim().is_empty() {
        return Err(Failure::invalid(
            "client_secret: standard input was empty; pipe the secret's Value, e.g. `printf %s \"$SECRET\" | safegpt azure configure --client-secret-stdin`",
        ));
    }
    Ok(SecretString::from(secret))
}

async fn configure(store: &Store, args: ConfigureArgs) -> Result<u8, Failure> {
    let secret = if args.client_secret_stdin { Some(read_secret_from_stdin()?) } else { None };
    let patch = SettingsPatch {
        active: args.active,
        tenant_id: args.tenant_id,
        client_id: args.client_id,
        group_ids: if args.no_group {
            Some(Vec::new())
        } else if args.group_ids.is_empty() {
            None
        } else {
            Some(args.group_ids)
        },
        auto_disable: args.auto_disable,
        auto_remove: args.auto_remove,
        remove_after_days: args.remove_after_days,
        include_guests: args.include_guests,
        cloud: args.cloud.map(|c| match c {
            CloudArg::Global => "global".to_owned(),
            CloudArg::Usgov => "usgov".to_owned(),
            CloudArg::China => "china".to_owned(),
        }),
        login_url: args.login_url,
        graph_url: args.graph_url,
        seats: args.seats,
        threshold_count: args.threshold_count,
        threshold_percent: args.threshold_percent,
        interval: args.interval,
        full_sync_interval: args.full_sync_interval,
        secret_expires: args.secret_expires,
    };
    let patch = if secret.is_some() { patch.with_new_secret() } else { patch };
    let (current, _) = store.settings().await?;
    let next = current.apply(&patch).map_err(|invalid| {
        Failure::invalid(invalid.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("\n"))
    })?;
    store.save_settings(&next, secret.as_ref(), ACTOR, wall_clock()).await?;
    println!("Settings updated.");
    Ok(exit::OK)
}

async fn show(store: &Store, json: bool) -> Result<u8, Failure> {
    let (settings, secret_set) = store.settings().await?;
    let mut view =
        SettingsView::new(&settings, secret_set, store.seats_used().await?, store.next_run_at().await?, wall_clock());
    view.last_full_read_at = store.sync_cursor().await?.full_read_at;
    if json {
        print_json(&view);
    } else {
        println!("{}", view.to_text());
    }
    Ok(exit::OK)
}

async fn test(store: &Store, json: bool) -> Result<u8, Failure> {
    let checks = match safegpt_sync::test_connection(store, retry_policy()?).await {
        Ok(checks) => checks,
        Err(e @ SyncError::NotConfigured(_)) if json => {
            print_json(&json!({"ok": false, "checks": [], "error": {"kind": e.kind(), "message": e.to_string()}}));
            return Ok(exit::FAILED);
        }
        Err(e) => return Err(Failure::failed(e.to_string())),
    };
    let ok = checks.iter().all(|c| c.ok);
    store
        .audit(ACTOR, "azure.tested", Some("azure_user_sync"), &json!({"ok": ok, "checks": checks}), wall_clock())
        .await?;
    if json {
        print_json(&json!({"ok": ok, "checks": checks}));
    } else {
        for c in &checks {
            println!("{} {:<48} {}", if c.ok { "[ok]  " } else { "[FAIL]" }, c.name, c.message);
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

async fn sync(store: &Store, args: SyncArgs) -> Result<u8, Failure> {
    let now = match &args.now {
        None => wall_clock(),
        Some(raw) => OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
            Failure::invalid(format!("--now: '{raw}' is not an RFC 3339 time like 2026-12-10T09:00:00Z"))
        })?,
    };
    let request = SyncRequest {
        dry_run: args.dry_run,
        confirm_mass_changes: args.confirm_mass_changes,
        full_read: args.full,
        lease: lease_settings()?,
        ..SyncRequest::new("cli", now)
    };
    let outcome = match safegpt_sync::run_sync(store, &request, retry_policy()?).await {
        Ok(o) => o,
        Err(e @ SyncError::AlreadyRunning { .. }) => {
            let SyncError::AlreadyRunning { run_id } = &e else { unreachable!() };
            if args.json {
                print_json(
                    &json!({"run_id": run_id, "status": "already_running", "counts": safegpt_core::Counts::default(),
                                   "error": {"kind": e.kind(), "message": e.to_string()}}),
                );
            } else {
                eprintln!("safegpt: {e}");
            }
            return Ok(exit::ALREADY_RUNNING);
        }
        Err(e @ (SyncError::NotConfigured(_) | SyncError::Inactive)) => {
            if args.json {
                print_json(&json!({"run_id": null, "status": "failed", "counts": safegpt_core::Counts::default(),
                                   "error": {"kind": e.kind(), "message": e.to_string()}}));
            } else {
                eprintln!("safegpt: {e}");
            }
            return Ok(exit::FAILED);
        }
        Err(e) => return Err(Failure::failed(e.to_string())),
    };
    if args.json {
        print_json(&json!({
            "run_id": outcome.run_id,
            "status": outcome.status.as_str(),
            "counts": outcome.counts,
            "error": outcome.error.as_ref().map(|e| json!({"kind": e.kind, "message": e.message})),
            "read_mode": outcome.read_mode,
        }));
    } else {
        let c = outcome.counts;
        let summary = format!(
            "{} created, {} updated, {} enabled, {} disabled, {} removed, {} unchanged, {} awaiting license",
            c.created, c.updated, c.enabled, c.disabled, c.removed, c.unchanged, c.awaiting_license
        );
        match outcome.status {
            RunStatus::Succeeded => println!("Sync succeeded (run {}): {summary}", outcome.run_id),
            RunStatus::DryRun => {
                println!("Dry run (run {}), nothing changed; the sync would make: {summary}", outcome.run_id);
                for change in outcome.plan.iter().flat_map(|p| &p.changes) {
                    let user = change.after.as_ref().or(change.before.as_ref()).expect("before or after");
                    println!("  {:<8} {:<40} {}", change.action.as_str(), user.profile.email, change.reason.describe());
                }
            }
            RunStatus::Held => println!(
                "Sync held (run {}): {}",
                outcome.run_id,
                outcome.error.as_ref().map(|e| e.message.as_str()).unwrap_or_default()
            ),
            _ => {
                let e = outcome.error.as_ref();
                println!(
                    "Sync failed (run {}): {}: {}\nNothing was changed.",
                    outcome.run_id,
                    e.map(|e| e.kind.as_str()).unwrap_or("unknown"),
                    e.map(|e| e.message.as_str()).unwrap_or_default()
                );
            }
        }
    }
    Ok(match outcome.status {
        RunStatus::Succeeded | RunStatus::DryRun => exit::OK,
        RunStatus::Held => exit::HELD,
        _ => exit::FAILED,
    })
}

async fn users(store: &Store, cmd: UsersCommand) -> Result<u8, Failure> {
    match cmd {
        UsersCommand::List { status, json } => {
            let status = status.map(|s| match s {
                StatusArg::Active => Status::Active,
                StatusArg::Disabled => Status::Disabled,
                StatusArg::AwaitingLicense => Status::AwaitingLicense,
            });
            let users = store.users(UserFilter { status, ..UserFilter::default() }).await?;
            if json {
                let (settings, _) = store.settings().await?;
                print_json(&users.iter().map(|u| UserView::new(u, &settings).user).collect::<Vec<_>>());
            } else {
                for u in &users {
                    let reason = u.disabled_reason.map(|r| format!(" ({})", r.as_str())).unwrap_or_default();
                    let scope = if u.in_scope { "" } else { " [not in scope]" };
                    println!("{:<40} {:<6} {}{reason}{scope}", u.profile.email, u.source.as_str(), u.status.as_str());
                }
                println!("{} user(s)", users.len());
            }
        }
        UsersCommand::Add { email, name } => {
            let user = store.add_local_user(&email, &name, ACTOR, wall_clock()).await?;
            println!("Added local user {} ({})", user.profile.email, user.id);
        }
        UsersCommand::Disable { user } => {
            let u = store.set_status_by_admin(&user, false, ACTOR, wall_clock()).await?;
            println!("Disabled {} (an administrator's decision: the sync will not enable this user)", u.profile.email);
        }
        UsersCommand::Enable { user } => {
            let u = store.set_status_by_admin(&user, true, ACTOR, wall_clock()).await?;
            println!("Enabled {}", u.profile.email);
        }
    }
    Ok(exit::OK)
}

async fn runs_list(store: &Store, json: bool) -> Result<u8, Failure> {
    let runs = store.runs(100).await?;
    if json {
        print_json(&runs);
    } else {
        for r in &runs {
            let c = r.counts;
            println!(
                "{}  {}  {:<11} {:<7} {:<11} +{} ~{} ↑{} ↓{} -{}{}",
                r.id,
                r.started_at.format(&Rfc3339).unwrap_or_default(),
                r.status.as_str(),
                r.trigger,
                r.totals.read_mode.map_or("-", |m| m.as_str()),
                c.created,
                c.updated,
                c.enabled,
                c.disabled,
                c.removed,
                r.error.as_ref().map(|e| format!("  {}: {}", e.kind, e.message)).unwrap_or_default()
            );
        }
    }
    Ok(exit::OK)
}

async fn run_show(store: &Store, id: &str, json: bool) -> Result<u8, Failure> {
    let (run, changes) = store.run(id).await?;
    if json {
        print_json(&json!({"run": run, "changes": changes}));
    } else {
        println!(
            "Run {} ({}, trigger {}): {}",
            run.id,
            if run.dry_run { "dry run" } else { "sync" },
            run.trigger,
            run.status.as_str()
        );
        if let Some(e) = &run.error {
            println!("  {}: {}", e.kind, e.message);
        }
        for ch in &changes {
            println!("  {:<8} {:<40} {}", ch.action, ch.email, ch.reason);
        }
    }
    Ok(exit::OK)
}

async fn audit(store: &Store, json: bool) -> Result<u8, Failure> {
    let entries = store.audit_log(500).await?;
    if json {
        print_json(&entries);
    } else {
        for e in &entries {
            println!("{}  {:<44} {:<18} {}", e.at, e.actor, e.action, e.target.as_deref().unwrap_or("-"));
        }
    }
    Ok(exit::OK)
}
