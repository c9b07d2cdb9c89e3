//! Persistence of the directory: users, settings (with the sealed client secret), sync runs,
//! the audit log and the event outbox.
//!
//! SQLite is the default. The SQL is written once with `$N` placeholders and `ON CONFLICT`,
//! which PostgreSQL accepts as well, so the PostgreSQL store (`migrations/postgres`) is the
//! same API over a second concrete pool rather than a rewrite.

mod admin;
mod batch;
mod health;
mod held_runs;
mod lease;
mod login_throttle;
mod mirror;
mod notify;
mod orgs;
mod retention;
mod run_changes;
mod runs;
mod schedule;
mod seal;
pub mod testing;
mod users;
mod writer;

use std::path::Path;

use safegpt_core::{Cloud, Settings};
use secrecy::SecretString;
use serde_json::json;
use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use admin::{API_TOKEN_PREFIX, Admin, AdminRole, ApiToken, IntegrationSwitch, Session, random_token, token_hash};
pub use health::OrgHealth;
pub use lease::{DirectoryStats, Fence, LeaseHolder};
pub use login_throttle::LoginAttempt;
pub use mirror::{Advance, DirectoryTotals, MirrorWrite, SyncCursor};
pub use notify::{AlertState, AttemptRecord, NewNotification, Notification, WebhookAttempt, WebhookEndpoint};
pub use orgs::{Org, OrgChange};
pub use retention::{Batch, Kept};
pub use run_changes::{ChangeCount, ChangeFilter, ChangePage, RunChange};
pub use runs::{AuditEntry, Event, ReadMode, Resolution, RunError, RunRecord, RunStatus, RunTotals};
pub use schedule::Planned;
pub use seal::{MASTER_KEY_ENV, MASTER_KEY_FILE, SealError, Sealer};
pub use users::{DirectoryVersion, UserFilter};
pub use writer::PlanWriter;

/// The organisation every deployment starts with, and that an existing one was migrated into.
pub const DEFAULT_ORG: &str = "default";

/// What the store can be asked about by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Run,
    ApiToken,
    Org,
    Webhook,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Nothing has `key` (an id, or for users also an e-mail).
    #[error("{}", not_found_message(*.entity, .key))]
    NotFound { entity: Entity, key: String },
    /// The request contradicts what is stored; `field` is the request field at fault, if one is.
    #[error("{}{message}", .field.map(|f| format!("{f}: ")).unwrap_or_default())]
    Conflict { field: Option<&'static str>, message: String },
    /// A stored row the code cannot read: a fault of the data, never of the request.
    #[error("stored {what} is unreadable: {cause}")]
    Corrupt { what: String, cause: String },
    /// The database cannot be opened where the operator pointed it.
    #[error("{0}")]
    Unopenable(String),
    /// A plan was made from the directory as it was at an earlier [`DirectoryVersion`]:
    /// someone changed users since, and applying it could undo that. Nothing was written.
    #[error("the directory changed after the sync read it (an administrator's change); nothing was applied")]
    DirectoryMoved,
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE")]
    UnsupportedUrl(String),
    /// A fenced write found that another holder took the sync lease since this run took it
    /// (this process stalled past its lease): nothing was written.
    #[error(
        "another instance took over this organisation's sync lease while this process stalled; nothing was applied"
    )]
    Fenced,
}

fn not_found_message(entity: Entity, key: &str) -> String {
    match entity {
        Entity::User => format!("no user with id or e-mail '{key}'"),
        Entity::Run => format!("no sync run with id '{key}'"),
        Entity::ApiToken => format!("no API token '{key}'"),
        Entity::Org => format!("no organisation '{key}'; `safegpt orgs list` shows them"),
        Entity::Webhook => format!("no webhook endpoint '{key}'; `safegpt webhooks list` shows them"),
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        StoreError::Corrupt { what: what.into(), cause: cause.to_string() }
    }

    pub(crate) fn conflict(field: Option<&'static str>, message: impl Into<String>) -> Self {
        StoreError::Conflict { field, message: message.into() }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// `url` with the password of its user info replaced, for error messages.
fn without_password(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..].find('/').map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => match url[authority_start..authority_start + at].find(':') {
            Some(colon) => format!("{}****{}", &url[..authority_start + colon + 1], &url[authority_start + at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Creates `dir` and its missing parents readable by the owner only (0700): the data
/// directory holds the database and the master key.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the SQLite file (and its directory) private to the owner before SQLite opens it:
/// SQLite gives its WAL and shared-memory files the database file's permissions, so all
/// three stay 0600. An existing file keeps the permissions its operator gave it.
fn create_private_file(file: &Path) -> Result<()> {
    let unopenable =
        |what: &Path, e: std::io::Error| StoreError::Unopenable(format!("cannot create {}: {e}", what.display()));
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(|e| unopenable(parent, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(unopenable(file, e)),
    }
}

/// The connection parameters sqlx understands. It ignores others silently, so a typo such as
/// `ssl_mode=require` would fall back to a connection that may not be encrypted: refused.
fn check_postgres_parameters(url: &str) -> Result<()> {
    const KNOWN: [&str; 17] = [
        "sslmode",
        "ssl-mode",
        "sslrootcert",
        "ssl-root-cert",
        "ssl-ca",
        "sslcert",
        "ssl-cert",
        "sslkey",
        "ssl-key",
        "statement-cache-capacity",
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "application_name",
    ];
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    for key in query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').map_or(p, |(k, _)| k)) {
        if !KNOWN.contains(&key) && key != "options" && !key.starts_with("options[") {
            return Err(StoreError::Unopenable(format!(
                "the database URL has the unknown parameter '{key}'; for TLS use sslmode=require, verify-ca or \
                 verify-full (with sslrootcert=PATH of the server's CA)"
            )));
        }
    }
    Ok(())
}

/// What a change of the settings does with the stored client secret.
#[derive(Debug, Clone, Copy)]
pub enum SecretChange<'a> {
    Keep,
    Replace(&'a SecretString),
    /// Forget it: it must not follow the settings to other endpoints.
    Clear,
}

impl<'a> From<Option<&'a SecretString>> for SecretChange<'a> {
    fn from(secret: Option<&'a SecretString>) -> Self {
        secret.map_or(SecretChange::Keep, SecretChange::Replace)
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Store {
    pool: AnyPool,
    backend: Backend,
    org: String,
    sealer: std::sync::Arc<Sealer>,
    /// Set on the store a sync run writes through ([`Store::fenced`]).
    fence: Option<std::sync::Arc<Fence>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("org", &self.org).finish_non_exhaustive()
    }
}

pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).expect("UTC times format as RFC 3339")
}

pub(crate) fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::corrupt(format!("time '{s}'"), e))
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    ///
    /// Both databases go through sqlx's `Any` driver: the schema keeps to types both share
    /// (TEXT for ids and RFC 3339 times, BIGINT/INTEGER for numbers and flags), and the SQL
    /// is written once with `$N` placeholders and `ON CONFLICT`, which both accept.
    pub async fn open(database_url: &str, sealer: Sealer) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) =
            database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))
        {
            let file = path.split('?').next().unwrap_or(path);
            if !file.is_empty() && !file.starts_with(':') && !path.contains("mode=memory") {
                create_private_file(Path::new(file))?;
            }
            let url = if path.contains("mode=") {
                format!("sqlite://{path}")
            } else {
                format!("sqlite://{path}{}mode=rwc", if path.contains('?') { "&" } else { "?" })
            };
            (Backend::Sqlite, url)
        } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            check_postgres_parameters(database_url)?;
            (Backend::Postgres, database_url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(without_password(database_url)));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers work beside the one writer; the busy timeout makes
                        // writers of several processes wait for each other instead of failing.
                        // The WAL grows to the size of the largest transaction (a first sync
                        // of a million users: over a gigabyte) and, without a limit, keeps
                        // that size on disk for as long as a connection stays open.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA journal_size_limit = 67108864;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let store =
            Store { pool, backend, org: DEFAULT_ORG.to_owned(), sealer: std::sync::Arc::new(sealer), fence: None };
        store.fill_search_text().await?;
        Ok(store)
    }

    /// Closes every connection. On SQLite the last connection to close checkpoints the WAL
    /// into the database and deletes it, so a process that ends (the CLI) leaves one file.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Once after the upgrade that added `users.search_text`: fills it for the rows written
    /// before, a chunk per transaction.
    async fn fill_search_text(&self) -> Result<()> {
        loop {
            let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT id, email, user_principal_name, display_name FROM users WHERE search_text IS NULL LIMIT 5000",
            )
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(());
            }
            let mut tx = self.begin_write().await?;
            for (id, email, upn, name) in rows {
                sqlx::query("UPDATE users SET search_text = $2 WHERE id = $1")
                    .bind(id)
                    .bind(users::search_text(&email, upn.as_deref(), name.as_deref()))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }

    /// A transaction that writes. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a transaction that reads first would hold a snapshot, and a write by
    /// another connection meanwhile (the lease heartbeat) would make its first write fail
    /// with SQLITE_BUSY_SNAPSHOT instead of waiting.
    ///
    /// A [fenced](Store::fenced) store checks its lease first, inside the transaction.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.begin_unfenced().await?;
        self.check_fence(&mut tx).await?;
        Ok(tx)
    }

    async fn begin_unfenced(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A transaction that writes events (and the users they are about). On PostgreSQL event
    /// sequence numbers are handed out at insert but become visible at commit, so two writers
    /// at once could commit out of order and a follower that already read the higher number
    /// would never see the lower one; each such transaction therefore takes its
    /// organisation's outbox lock first (before any row, so that no two wait for each other),
    /// and within an organisation — all a follower reads — sequence order is commit order.
    /// The lock is per organisation (a transaction-scoped advisory lock), so one
    /// organisation's long apply never holds up another's writes. SQLite serialises every
    /// writer already.
    pub(crate) async fn begin_event_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.begin_unfenced().await?;
        if self.backend == Backend::Postgres {
            // Selected as a number: the Any driver cannot read PostgreSQL's `void`.
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked")
                .bind(format!("events:{}", self.org))
                .execute(&mut *tx)
                .await?;
        }
        self.check_fence(&mut tx).await?;
        Ok(tx)
    }

    /// Serialises the writers of `table` until the transaction ends: a check and the write
    /// it decides become one act. SQLite's `BEGIN IMMEDIATE` ([`Store::begin_write`]) already
    /// serialises every writer.
    pub(crate) async fn lock_table(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, table: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            let sql = format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn secret_context(&self) -> String {
        format!("org:{}:azure_client_secret", self.org)
    }

    /// The settings row: the settings and the sealed client secret (`None`: never saved).
    async fn settings_row(&self) -> Result<Option<(Settings, Option<String>)>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT body, sealed_secret FROM settings WHERE org_id = $1")
                .bind(&self.org)
                .fetch_optional(&self.pool)
                .await?;
        let Some((body, sealed)) = row else { return Ok(None) };
        let settings = serde_json::from_str(&body).map_err(|e| StoreError::corrupt("settings", e))?;
        Ok(Some((settings, sealed)))
    }

    /// The settings and whether a client secret is stored.
    pub async fn settings(&self) -> Result<(Settings, bool)> {
        Ok(match self.settings_row().await? {
            None => (Settings::default(), false),
            Some((settings, sealed)) => (settings, sealed.is_some()),
        })
    }

    /// When the settings were last saved (`None`: never).
    pub async fn settings_updated_at(&self) -> Result<Option<OffsetDateTime>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT updated_at FROM settings WHERE org_id = $1")
            .bind(&self.org)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(at,)| parse_ts(&at)).transpose()
    }

    /// The client secret, unsealed, only if it is stored for `cloud`'s endpoints: read in one
    /// row with the endpoints, so that settings saved since the caller read `cloud` can never
    /// pair a secret with endpoints it was not entered for. Never log or return it.
    pub async fn client_secret_for(&self, cloud: &Cloud) -> Result<Option<SecretString>> {
        let Some((stored, Some(sealed))) = self.settings_row().await? else { return Ok(None) };
        if stored.cloud != *cloud {
            return Ok(None);
        }
        Ok(Some(self.sealer.unseal(&sealed, &self.secret_context())?))
    }

    /// Saves validated settings and, when given, a new client secret, with an audit row
    /// naming what changed (the secret only as "[redacted]").
    pub async fn save_settings(
        &self,
        settings: &Settings,
        secret: impl Into<SecretChange<'_>>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let secret = secret.into();
        let new_secret = match secret {
            SecretChange::Replace(s) => Some(s),
            SecretChange::Keep | SecretChange::Clear => None,
        };
        let (before, _) = self.settings().await?;
        let old = serde_json::to_value(&before).unwrap_or_default();
        let new = serde_json::to_value(settings).unwrap_or_default();
        let mut changed: Vec<String> = match (&old, &new) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                b.iter().filter(|(k, v)| a.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect()
            }
            _ => Vec::new(),
        };
        let sealed = new_secret.map(|s| self.sealer.seal(s, &self.secret_context()));
        let clear = matches!(secret, SecretChange::Clear);
        if sealed.is_some() || clear {
            changed.push("client_secret".into());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO settings (org_id, body, sealed_secret, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id) DO UPDATE SET body = excluded.body,
                 sealed_secret = CASE WHEN $5 = 1 THEN NULL ELSE COALESCE(excluded.sealed_secret, settings.sealed_secret) END,
                 updated_at = excluded.updated_at",
        )
        .bind(&self.org)
        .bind(new.to_string())
        .bind(&sealed)
        .bind(ts(now))
        .bind(i64::from(clear))
        .execute(&mut *tx)
        .await?;
        let mut details = json!({ "changed": changed, "settings": new });
        if sealed.is_some() {
            details["client_secret"] = json!("[redacted]");
        } else if clear {
            details["client_secret"] = json!("[cleared]");
        }
        self.insert_audit(&mut tx, now, actor, "settings.updated", Some("azure_user_sync"), &details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes an audit row on its own (e.g. a connection test).
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: Option<&str>,
        details: &serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.insert_audit(&mut tx, now, actor, action, target, details).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_about_a_database_url_never_shows_its_password() {
        assert_eq!(without_password("postgre://app:s3cr3t@db:5432/x?a=b"), "postgre://app:****@db:5432/x?a=b");
        assert_eq!(without_password("mysql://app:p@ss:w@rd@db/x"), "mysql://app:****@db/x");
        assert_eq!(without_password("mysql://app@db/x"), "mysql://app@db/x");
        assert_eq!(without_password("file.db"), "file.db");
    }

    #[test]
    fn unknown_postgres_parameters_are_refused_and_tls_ones_accepted() {
        let ok = "postgres://u:p@h/d?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x";
        assert!(check_postgres_parameters(ok).is_ok());
        let typo = check_postgres_parameters("postgres://u:p@h/d?ssl_mode=require").unwrap_err().to_string();
        assert!(typo.contains("'ssl_mode'") && typo.contains("sslmode=require"), "{typo}");
    }

    #[tokio::test]
    async fn an_unsupported_scheme_is_refused_without_the_password() {
        let e = Store::open("postgre://app:s3cr3t@db/x", Sealer::from_key([7; 32])).await.err().unwrap().to_string();
        assert!(e.contains("postgre://app:****@db/x") && !e.contains("s3cr3t"), "{e}");
    }
}
