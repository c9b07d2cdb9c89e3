//! The command-line contract. Other tests and tools drive these exact flags and exit codes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "safegpt", version, about = "SafeGPT user directory with Azure User Sync")]
pub struct Cli {
    /// A TOML file with operator settings (flags and SAFEGPT_* variables win over it).
    #[arg(long, global = true, env = "SAFEGPT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the SQLite database and the master key live.
    #[arg(long, global = true, env = "SAFEGPT_DATA_DIR", default_value = "./safegpt-data")]
    pub data_dir: PathBuf,
    /// Database URL; default: a SQLite file in the data dir.
    #[arg(long, global = true, env = "SAFEGPT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The organisation a command acts in (its slug); default: the only one there is.
    #[arg(long, global = true, env = "SAFEGPT_ORG", value_name = "SLUG")]
    pub org: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Azure User Sync settings and connection test.
    #[command(subcommand)]
    Azure(AzureCommand),
    /// Run one sync now.
    Sync(SyncArgs),
    /// The user directory.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Sync run history.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// The audit log, newest first.
    Audit(JsonFlag),
    /// Serve the admin UI, the REST API (/api/v1) and /healthz.
    Serve(ServeArgs),
    /// Try it out: a simulated Entra tenant, Azure User Sync configured against it, an
    /// administrator, and the server, all in this process with a fresh data directory.
    Demo(DemoArgs),
    /// Administrators of the web UI.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// API tokens for automation.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The organisations of this deployment, each with its own Azure User Sync.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Webhook endpoints: every user change and run, signed the Standard Webhooks way.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The e-mail alerts of the organisation, queued, sent or given up on.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
}

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint; prints its id and its signing secret (whsec_…), once.
    Create {
        /// https://… (http only for 127.0.0.1 or localhost).
        #[arg(long)]
        url: String,
        /// Event types to send, comma-separated (default: all of user.created, user.updated,
        /// user.enabled, user.disabled, user.removed, sync.succeeded, sync.failed, sync.held).
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[arg(long)]
        json: bool,
    },
    /// List the endpoints with their delivery state (never their secrets).
    List(JsonFlag),
    /// Delete an endpoint and its delivery log.
    Delete { id: String },
    /// The delivery log of an endpoint, newest first.
    Deliveries {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Send a `webhook.test` message to the endpoint now and print how it went.
    Test {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// The newest e-mail alerts.
    List(JsonFlag),
}

#[derive(Subcommand)]
pub enum OrgsCommand {
    /// Create an organisation.
    Create {
        #[arg(long)]
        name: String,
        /// Its short name for --org and URLs, for good: lowercase letters, digits and '-'.
        #[arg(long)]
        slug: String,
        /// The language of what SafeGPT tells its people (default en).
        #[arg(long, value_name = "en|nl")]
        language: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the organisations.
    List(JsonFlag),
    /// Show one organisation.
    Show {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Rename an organisation or change its language.
    Update {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_name = "en|nl")]
        language: Option<String>,
    },
    /// Disable an organisation: no syncs, its administrators and tokens refused; nothing is deleted.
    Disable { slug: String },
    /// Enable a disabled organisation again.
    Enable { slug: String },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SAFEGPT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The URL browsers use, e.g. https://safegpt.example.org behind a TLS proxy: an https URL
    /// makes session cookies Secure, and its origin is trusted for form posts.
    #[arg(long, env = "SAFEGPT_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, env = "SAFEGPT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Users in the simulated tenant.
    #[arg(long, default_value_t = 400)]
    pub users: usize,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an administrator of the organisation (--org), a platform operator (--platform),
    /// or both; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        /// A platform operator: sees every organisation's health and may open any of them.
        /// With --org also administrator of that organisation.
        #[arg(long)]
        platform: bool,
        /// Read the password from standard input (trailing newline trimmed); at least 12 characters.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it alone on stdout, once; only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// What the token may do: read (GET routes, metrics, events), sync (also start,
        /// confirm and cancel runs) or admin (also settings, users, tokens).
        #[arg(long, default_value = "admin", value_name = "read|sync|admin")]
        scope: String,
        /// A platform token: the platform API and /metrics of every organisation, no
        /// organisation's users.
        #[arg(long)]
        platform: bool,
    },
    /// List tokens (never their values).
    List {
        #[arg(long)]
        json: bool,
        /// The platform tokens instead of the organisation's.
        #[arg(long)]
        platform: bool,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        /// A platform token.
        #[arg(long)]
        platform: bool,
    },
}

#[derive(Args)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum AzureCommand {
    /// Change settings; settings not named keep their value.
    Configure(Box<ConfigureArgs>),
    /// Show the settings (never the secret).
    Show(JsonFlag),
    /// Check token, user read and group read; changes nothing.
    Test(JsonFlag),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CloudArg {
    Global,
    Usgov,
    China,
}

#[derive(Args)]
pub struct ConfigureArgs {
    /// Switch the integration on or off (off: no sync runs).
    #[arg(long, value_name = "true|false")]
    pub active: Option<bool>,
    /// Directory (tenant) ID, or a verified domain such as contoso.onmicrosoft.com.
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Application (client) ID.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read the client secret's Value from standard input (trailing newline trimmed).
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Object ID of a group whose members (also through nested groups) are in scope.
    /// Repeat for several groups; replaces the stored list.
    #[arg(long = "group-id", value_name = "ID", conflicts_with = "no_group")]
    pub group_ids: Vec<String>,
    /// Sync every user of the tenant (clears the groups).
    #[arg(long)]
    pub no_group: bool,
    /// Automatically disable users (if not in group).
    #[arg(long, value_name = "true|false")]
    pub auto_disable: Option<bool>,
    /// Automatically remove users (if disabled) after --remove-after-days.
    #[arg(long, value_name = "true|false")]
    pub auto_remove: Option<bool>,
    /// Remove after days (1–3650, default 14).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub remove_after_days: Option<String>,
    /// Include guest (B2B) users.
    #[arg(long, value_name = "true|false")]
    pub include_guests: Option<bool>,
    /// National cloud.
    #[arg(long, value_enum)]
    pub cloud: Option<CloudArg>,
    /// Custom login root, e.g. http://127.0.0.1:PORT for graph-sim (with --graph-url).
    #[arg(long)]
    pub login_url: Option<String>,
    /// Custom Graph root, e.g. http://127.0.0.1:PORT for graph-sim (with --login-url).
    #[arg(long)]
    pub graph_url: Option<String>,
    /// Seats of the deployment (0 = unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub seats: Option<String>,
    /// Deletion safety threshold: hold runs that disable more than this many users…
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub threshold_count: Option<String>,
    /// …and more than this percentage of the synced users.
    #[arg(long, value_name = "PCT", allow_hyphen_values = true)]
    pub threshold_percent: Option<String>,
    /// How often `safegpt serve` runs the sync, e.g. 15m, 1h, 90s (at least 10s; default 15m).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub interval: Option<String>,
    /// How often a sync reads every user and group instead of only the changes (delta),
    /// e.g. 1d, 12h (10s to 6 days; default 1d).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub full_sync_interval: Option<String>,
    /// When the client secret expires (YYYY-MM-DD), for warnings 30, 14, 7 and 1 day(s) ahead;
    /// an empty value clears it.
    #[arg(long, value_name = "YYYY-MM-DD", allow_hyphen_values = true)]
    pub secret_expires: Option<String>,
    /// An address for the e-mail alerts (held runs, failing syncs, an expiring secret, a
    /// missing permission, a failing webhook). Repeat for several; replaces the list.
    #[arg(long = "notify", value_name = "ADDRESS", conflicts_with = "no_notify")]
    pub notify: Vec<String>,
    /// Send the e-mail alerts to nobody (clears the list).
    #[arg(long)]
    pub no_notify: bool,
}

#[derive(Args)]
pub struct SyncArgs {
    /// Plan only: show what the sync would do, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The time the sync acts at (RFC 3339), e.g. to preview removals; default now.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Confirm the newest held run: it shows what the held run listed, and the sync may apply
    /// those disables and removals (and anything under the threshold); more is held again.
    /// Not with --dry-run, which would spend the decision on nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub confirm_mass_changes: bool,
    /// Read every user and group from Entra instead of only what changed since the last run.
    #[arg(long)]
    pub full: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Active,
    Disabled,
    #[value(name = "awaiting_license")]
    AwaitingLicense,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List users, oldest first.
    List {
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[arg(long)]
        json: bool,
    },
    /// Add a local account (not managed by the sync).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Disable a user (an administrator's decision; the sync never re-enables it).
    Disable { user: String },
    /// Enable a user.
    Enable { user: String },
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Recent sync runs, newest first.
    List(JsonFlag),
    /// One run, its changes by action and reason, and every change it made (or would make),
    /// streamed a page at a time.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}
