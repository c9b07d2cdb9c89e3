//! The commands: each turns its flags into one operation of the application and prints the
//! result. What an operation checks, audits or refuses is decided there, not here.

use std::io::Read;
use std::sync::Arc;

use safegpt_app::views::{ChangeView, TokenView, UserRecordView};
use safegpt_app::{
    App, AppError, ChangeQuery, NewOrg, OrgView, Platform, Principal, SettingsChange, SyncNow, TokenScope, Trigger,
    UserQuery,
};
use safegpt_core::{Counts, SettingsPatch, Status};
use safegpt_store::{AdminRole, MASTER_KEY_ENV, OrgChange, RunStatus, Sealer, Store};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::args::{
    AdminCommand, AzureCommand, Cli, CloudArg, Command, ConfigureArgs, OrgsCommand, RunsCommand, StatusArg, SyncArgs,
    TokensCommand, UsersCommand,
};
use super::exit::{self, Failure, INACTIVE};

/// Whoever runs `safegpt` at the server's console.
pub(super) const OPERATOR: Principal = Principal::Operator;

pub(super) fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("views serialize"));
}

pub async fn open_store(cli: &Cli) -> Result<Store, Failure> {
    let url =
        cli.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", cli.data_dir.join("safegpt.db").display()));
    let sealer = Sealer::load(std::env::var(MASTER_KEY_ENV).ok().as_deref(), &cli.data_dir)
        .map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(Store::open(&url, sealer).await?)
}

pub async fn run(cli: Cli) -> Result<u8, Failure> {
    let operations = crate::config::operations().map_err(Failure::invalid)?;
    if let Command::Demo(args) = &cli.command {
        return super::demo::run(args, operations).await;
    }
    let store = Arc::new(open_store(&cli).await?);
    let platform = Platform::new(store.clone(), operations);
    let outcome = dispatch(&platform, cli).await;
    // Closed, not dropped at exit: SQLite then folds its write-ahead log into the database.
    // Bounded: `serve` may stop while a sync still holds a connection, and the exit must not
    // wait for it.
    tokio::time::timeout(std::time::Duration::from_secs(5), store.close()).await.ok();
    outcome
}

async fn dispatch(platform: &Platform, cli: Cli) -> Result<u8, Failure> {
    let org = cli.org.as_deref();
    // What is the platform's, not one organisation's.
    match cli.command {
        Command::Serve(args) => return super::serve::serve(platform.clone(), &args).await,
        Command::Orgs(cmd) => return orgs(platform, cmd).await,
        Command::Admin(AdminCommand::Create { email, platform: true, password_stdin: _ }) => {
            let password = read_stdin("password")?;
            let role = AdminRole { org: org.map(str::to_owned), platform: true };
            let admin = platform.create_admin(&OPERATOR, &email, &password, role).await?;
            println!("Platform operator {} created.", admin.email);
            return Ok(exit::OK);
        }
        Command::Tokens(
            cmd @ (TokensCommand::Create { platform: true, .. }
            | TokensCommand::List { platform: true, .. }
            | TokensCommand::Revoke { platform: true, .. }),
        ) => return platform_tokens(platform, cmd).await,
        _ => {}
    }
    let app = platform.scope(&OPERATOR, org).await?;
    let app = &app;
    match cli.command {
        Command::Demo(_) | Command::Serve(_) | Command::Orgs(_) => unreachable!("handled above"),
        Command::Admin(AdminCommand::Create { email, .. }) => admin_create(app, &email).await,
        Command::Tokens(cmd) => tokens(app, cmd).await,
        Command::Azure(AzureCommand::Configure(args)) => configure(app, *args).await,
        Command::Azure(AzureCommand::Show(f)) => show(app, f.json).await,
        Command::Azure(AzureCommand::Test(f)) => test(app, f.json).await,
        Command::Sync(args) => sync(app, args).await,
        Command::Users(cmd) => users(app, cmd).await,
        Command::Runs(RunsCommand::List(f)) => runs_list(app, f.json).await,
        Command::Runs(RunsCommand::Show { id, json }) => run_show(app, &id, json).await,
        Command::Audit(f) => audit(app, f.json).await,
        Command::Webhooks(cmd) => super::notify::webhooks(app, cmd).await,
        Command::Notifications(cmd) => super::notify::notifications(app, cmd).await,
    }
}

fn print_org(org: &OrgView) {
    let state = org
        .disabled_at
        .map_or_else(|| "active".to_owned(), |at| format!("disabled {}", at.format(&Rfc3339).unwrap_or_default()));
    println!("{:<24} {:<40} {:<3} {}", org.slug, org.name, org.language, state);
}

async fn orgs(platform: &Platform, cmd: OrgsCommand) -> Result<u8, Failure> {
    let changed = |org: OrgView, what: &str| {
        println!("Organisation {} ({}) {what}.", org.slug, org.name);
        Ok(exit::OK)
    };
    match cmd {
        OrgsCommand::Create { name, slug, language, json } => {
            let org = platform.create_org(&OPERATOR, NewOrg { slug, name, language }).await?;
            if json {
                print_json(&org);
                return Ok(exit::OK);
            }
            changed(org, "created")
        }
        OrgsCommand::List(f) => {
            let orgs = platform.orgs(&OPERATOR).await?;
            if f.json {
                print_json(&orgs);
            } else {
                orgs.iter().for_each(print_org);
            }
            Ok(exit::OK)
        }
        OrgsCommand::Show { slug, json } => {
            let org = platform.org(&OPERATOR, &slug).await?;
            if json {
                print_json(&org);
            } else {
                print_org(&org);
            }
            Ok(exit::OK)
        }
        OrgsCommand::Update { slug, name, language } => {
            let change = OrgChange { name, language, disabled: None };
            changed(platform.change_org(&OPERATOR, &slug, change).await?, "updated")
        }
        OrgsCommand::Disable { slug } => {
            let change = OrgChange { disabled: Some(true), ..OrgChange::default() };
            changed(
                platform.change_org(&OPERATOR, &slug, change).await?,
                "is disabled: no syncs, its administrators and tokens are refused",
            )
        }
        OrgsCommand::Enable { slug } => {
            let change = OrgChange { disabled: Some(false), ..OrgChange::default() };
            changed(platform.change_org(&OPERATOR, &slug, change).await?, "is enabled")
        }
    }
}

fn read_stdin(what: &str) -> Result<String, Failure> {
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(|e| Failure::invalid(format!("{what}: cannot read standard input: {e}")))?;
    Ok(raw.trim_end_matches(['\n', '\r']).to_owned())
}

async fn admin_create(app: &App, email: &str) -> Result<u8, Failure> {
    let password = read_stdin("password")?;
    let admin = app.create_admin(&OPERATOR, email, &password).await?;
    println!("Administrator {} created.", admin.email);
    Ok(exit::OK)
}

fn print_tokens(tokens: &[TokenView], json: bool) {
    if json {
        print_json(&tokens);
    } else {
        for t in tokens {
            let state = t.revoked_at.map_or_else(|| "active".to_owned(), |at| format!("revoked {at}"));
            println!("{}  {:<30} {}", t.id, t.name, state);
        }
    }
}

async fn tokens(app: &App, cmd: TokensCommand) -> Result<u8, Failure> {
    match cmd {
        TokensCommand::Create { name, scope, .. } => {
            let (_, value) = app.create_token(&OPERATOR, &name, TokenScope::parse(&scope)?).await?;
            // Alone on stdout so that `TOKEN=$(safegpt tokens create --name ci)` works.
            println!("{value}");
        }
        TokensCommand::List { json, .. } => print_tokens(&app.tokens().await?, json),
        TokensCommand::Revoke { id, .. } => {
            let t = app.revoke_token(&OPERATOR, &id).await?;
            println!("Token '{}' ({}) is revoked.", t.name, t.id);
        }
    }
    Ok(exit::OK)
}

async fn platform_tokens(platform: &Platform, cmd: TokensCommand) -> Result<u8, Failure> {
    match cmd {
        TokensCommand::Create { name, scope, .. } => {
            let (_, value) = platform.create_platform_token(&OPERATOR, &name, TokenScope::parse(&scope)?).await?;
            println!("{value}");
        }
        TokensCommand::List { json, .. } => print_tokens(&platform.platform_tokens(&OPERATOR).await?, json),
        TokensCommand::Revoke { id, .. } => {
            let t = platform.revoke_platform_token(&OPERATOR, &id).await?;
            println!("Platform token '{}' ({}) is revoked.", t.name, t.id);
        }
    }
    Ok(exit::OK)
}

fn settings_patch(args: ConfigureArgs) -> SettingsPatch {
    SettingsPatch {
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
        notify: if args.no_notify {
            Some(Vec::new())
        } else if args.notify.is_empty() {
            None
        } else {
            Some(args.notify)
        },
    }
}

async fn configure(app: &App, args: ConfigureArgs) -> Result<u8, Failure> {
    let client_secret = if args.client_secret_stdin {
        let secret = read_stdin("client_secret")?;
        if secret.trim().is_empty() {
            return Err(Failure::invalid(
                "client_secret: standard input was empty; pipe the secret's Value, e.g. `printf %s \"$SECRET\" | safegpt azure configure --client-secret-stdin`",
            ));
        }
        Some(secret)
    } else {
        None
    };
    let view = app.configure(&OPERATOR, SettingsChange { patch: settings_patch(args), client_secret }).await?;
    println!("Settings updated.");
    if view.secret_cleared {
        eprintln!(
            "The stored client secret was cleared because the endpoints changed: enter it again with \
             --client-secret-stdin so that it goes only to the endpoints it was entered for."
        );
    }
    Ok(exit::OK)
}

async fn show(app: &App, json: bool) -> Result<u8, Failure> {
    let view = app.settings().await?;
    if json {
        print_json(&view);
    } else {
        println!("{}", view.to_text());
    }
    Ok(exit::OK)
}

/// The `error` object of `--json` output.
fn error_json(e: &AppError) -> serde_json::Value {
    let message = if matches!(e, AppError::Inactive) { INACTIVE.to_owned() } else { e.to_string() };
    json!({"kind": e.kind(), "message": message})
}

async fn test(app: &App, json: bool) -> Result<u8, Failure> {
    let result = match app.test_connection(&OPERATOR).await {
        Ok(result) => result,
        Err(e @ AppError::NotConfigured(_)) if json => {
            print_json(&json!({"ok": false, "checks": [], "error": error_json(&e)}));
            return Ok(exit::FAILED);
        }
        Err(e) => return Err(Failure::failed(e.to_string())),
    };
    if json {
        print_json(&result);
    } else {
        for c in &result.checks {
            println!("{} {:<48} {}", if c.ok { "[ok]  " } else { "[FAIL]" }, c.name, c.message);
        }
    }
    Ok(if result.ok { exit::OK } else { exit::FAILED })
}

/// Shows (on stderr, so that `--json` stays one document) what confirming the newest held
/// run approves, and returns its id: an approval covers only what was shown.
async fn show_approval(app: &App) -> Result<Uuid, Failure> {
    let (held, targets) = app.pending_approval().await?;
    eprintln!(
        "Confirming held run {} ({} to disable, {} to remove). The sync may apply these {} changes, and \
         anything under the deletion threshold; it is held again if it would disable more:",
        held.id,
        held.counts.disabled,
        held.counts.removed,
        targets.len()
    );
    for change in &targets {
        eprintln!("  {:<8} {:<40} {}", change.action, change.email, change.reason);
    }
    Ok(held.id)
}

async fn sync(app: &App, args: SyncArgs) -> Result<u8, Failure> {
    let at = match &args.now {
        None => None,
        Some(raw) => Some(OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
            Failure::invalid(format!("--now: '{raw}' is not an RFC 3339 time like 2026-12-10T09:00:00Z"))
        })?),
    };
    let confirm = if args.confirm_mass_changes { Some(show_approval(app).await?) } else { None };
    let request = SyncNow { trigger: Trigger::Cli, dry_run: args.dry_run, confirm, full_read: args.full, at };
    let outcome = match app.sync_now(&Principal::Operator, request).await {
        Ok(o) => o,
        Err(e @ (AppError::AlreadyRunning { .. } | AppError::NotConfigured(_) | AppError::Inactive)) => {
            let (run_id, status, code) = match &e {
                AppError::AlreadyRunning { run_id } => (*run_id, "already_running", exit::ALREADY_RUNNING),
                _ => (None, "failed", exit::FAILED),
            };
            if args.json {
                print_json(&json!({"run_id": run_id, "status": status, "counts": Counts::default(),
                                   "error": error_json(&e)}));
            } else {
                eprintln!("safegpt: {}", error_json(&e)["message"].as_str().unwrap_or_default());
            }
            return Ok(code);
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
                each_change(app, outcome.run_id, |ch| {
                    println!("  {:<8} {:<40} {}", ch.action, ch.email, ch.reason);
                    Ok(())
                })
                .await?;
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

async fn users(app: &App, cmd: UsersCommand) -> Result<u8, Failure> {
    match cmd {
        UsersCommand::List { status, json } => {
            let status = status.map(|s| match s {
                StatusArg::Active => Status::Active,
                StatusArg::Disabled => Status::Disabled,
                StatusArg::AwaitingLicense => Status::AwaitingLicense,
            });
            let page = app.users(UserQuery { status, ..UserQuery::default() }).await?;
            let users: Vec<&UserRecordView> = page.users.iter().map(|u| &u.user).collect();
            if json {
                print_json(&users);
            } else {
                for u in &users {
                    let reason = u.disabled_reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    let scope = if u.in_scope { "" } else { " [not in scope]" };
                    println!("{:<40} {:<6} {}{reason}{scope}", u.email, u.source, u.status);
                }
                println!("{} user(s)", users.len());
            }
        }
        UsersCommand::Add { email, name } => {
            let user = app.add_local_user(&OPERATOR, &email, &name).await?;
            println!("Added local user {} ({})", user.user.email, user.user.id);
        }
        UsersCommand::Disable { user } => {
            let u = app.set_user_status(&OPERATOR, &user, false).await?;
            println!("Disabled {} (an administrator's decision: the sync will not enable this user)", u.user.email);
        }
        UsersCommand::Enable { user } => {
            let u = app.set_user_status(&OPERATOR, &user, true).await?;
            println!("Enabled {}", u.user.email);
        }
    }
    Ok(exit::OK)
}

async fn runs_list(app: &App, json: bool) -> Result<u8, Failure> {
    let runs = app.runs(100).await?;
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

/// Prints a run and every change of it, a page at a time: a run of a million changes is
/// streamed, never held. With `--json` the output is still one JSON document.
async fn run_show(app: &App, id: &str, json: bool) -> Result<u8, Failure> {
    use std::io::Write;
    let run = app.run(id).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = |e: std::io::Error| Failure::failed(format!("cannot write to stdout: {e}"));
    if json {
        let head = serde_json::to_string_pretty(&run).expect("views serialize");
        write!(out, "{{\n\"run\": {head},\n\"changes\": [").map_err(written)?;
    } else {
        writeln!(
            out,
            "Run {} ({}, trigger {}): {}",
            run.id,
            if run.dry_run { "dry run" } else { "sync" },
            run.trigger,
            run.status.as_str()
        )
        .map_err(written)?;
        if let Some(e) = &run.error {
            writeln!(out, "  {}: {}", e.kind, e.message).map_err(written)?;
        }
        for b in &run.breakdown {
            writeln!(out, "  {:>8} × {:<8} {}", b.count, b.action, b.reason).map_err(written)?;
        }
        if let Some(at) = run.changes_removed_at {
            let at = at.format(&Rfc3339).unwrap_or_default();
            writeln!(out, "  the list of changes was removed on {at} (retention period)").map_err(written)?;
        }
    }
    let mut first = true;
    // A removed list is said above; there is nothing to page through.
    if run.changes_removed_at.is_none() {
        each_change(app, run.id, |ch| {
            if json {
                let sep = if first { "\n" } else { ",\n" };
                write!(out, "{sep}{}", serde_json::to_string(ch).expect("views serialize")).map_err(written)?;
            } else {
                writeln!(out, "  {:<8} {:<40} {}", ch.action, ch.email, ch.reason).map_err(written)?;
            }
            first = false;
            Ok(())
        })
        .await?;
    }
    if json {
        writeln!(out, "\n]}}").map_err(written)?;
    }
    out.flush().map_err(written)?;
    Ok(exit::OK)
}

/// Hands every change of a run to `each`, a page at a time.
async fn each_change(
    app: &App,
    run: Uuid,
    mut each: impl FnMut(&ChangeView) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut query = ChangeQuery { limit: Some(ChangeQuery::MAX_LIMIT), ..ChangeQuery::default() };
    loop {
        let page = app.run_changes(run, &query).await?;
        page.changes.iter().try_for_each(&mut each)?;
        match page.next_cursor {
            Some(next) => query.cursor = Some(next),
            None => return Ok(()),
        }
    }
}

async fn audit(app: &App, json: bool) -> Result<u8, Failure> {
    let entries = app.audit_log(500).await?;
    if json {
        print_json(&entries);
    } else {
        for e in &entries {
            println!("{}  {:<44} {:<18} {}", e.at, e.actor, e.action, e.target.as_deref().unwrap_or("-"));
        }
    }
    Ok(exit::OK)
}
