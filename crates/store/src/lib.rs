//! Persistence of the directory: users, settings (with the sealed client secret), sync runs,
//! the audit log and the event outbox.
//!
//! SQLite is the default. The SQL is written once with `$N` placeholders and `ON CONFLICT`,
//! which PostgreSQL accepts as well, so the PostgreSQL store (`migrations/postgres`) is the
//! same API over a second concrete pool rather than a rewrite.

mod admin;
mod lease;
mod runs;
mod seal;
mod users;

use std::path::Path;
use std::str::FromStr;

use safegpt_core::Settings;
use secrecy::SecretString;
use serde_json::json;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use admin::{API_TOKEN_PREFIX, Admin, ApiToken, IntegrationSwitch, Session, random_token, token_hash};
pub use lease::{DirectoryStats, LeaseHolder};
pub use runs::{AuditEntry, Event, Resolution, RunChange, RunError, RunRecord, RunStatus, RunTotals};
pub use seal::{MASTER_KEY_ENV, MASTER_KEY_FILE, SealError, Sealer};
pub use users::UserFilter;

/// The organisation of a single-tenant deployment.
pub const DEFAULT_ORG: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unsupported database URL '{0}': use sqlite://PATH (PostgreSQL support is planned)")]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub struct Store {
    pool: SqlitePool,
    org: String,
    sealer: Sealer,
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
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::Invalid(format!("stored time '{s}' is invalid: {e}")))
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn open(database_url: &str, sealer: Sealer) -> Result<Store> {
        let Some(path) = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")) else {
            return Err(StoreError::UnsupportedUrl(database_url.to_owned()));
        };
        if let Some(parent) = Path::new(path.split('?').next().unwrap_or(path)).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Store { pool, org: DEFAULT_ORG.to_owned(), sealer })
    }

    fn secret_context(&self) -> String {
        format!("org:{}:azure_client_secret", self.org)
    }

    /// The settings and whether a client secret is stored.
    pub async fn settings(&self) -> Result<(Settings, bool)> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT body, sealed_secret FROM settings WHERE org_id = $1")
                .bind(&self.org)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok((Settings::default(), false)),
            Some((body, sealed)) => {
                let settings = serde_json::from_str(&body)
                    .map_err(|e| StoreError::Invalid(format!("stored settings are unreadable: {e}")))?;
                Ok((settings, sealed.is_some()))
            }
        }
    }

    /// When the settings were last saved (`None`: never).
    pub async fn settings_updated_at(&self) -> Result<Option<OffsetDateTime>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT updated_at FROM settings WHERE org_id = $1")
            .bind(&self.org)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(at,)| parse_ts(&at)).transpose()
    }

    /// The client secret, unsealed. Never log or return it.
    pub async fn client_secret(&self) -> Result<Option<SecretString>> {
        let sealed: Option<(Option<String>,)> = sqlx::query_as("SELECT sealed_secret FROM settings WHERE org_id = $1")
            .bind(&self.org)
            .fetch_optional(&self.pool)
            .await?;
        match sealed.and_then(|(s,)| s) {
            None => Ok(None),
            Some(sealed) => Ok(Some(self.sealer.unseal(&sealed, &self.secret_context())?)),
        }
    }

    /// Saves validated settings and, when given, a new client secret, with an audit row
    /// naming what changed (the secret only as "[redacted]").
    pub async fn save_settings(
        &self,
        settings: &Settings,
        new_secret: Option<&SecretString>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
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
        if sealed.is_some() {
            changed.push("client_secret".into());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO settings (org_id, body, sealed_secret, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id) DO UPDATE SET body = excluded.body,
                 sealed_secret = COALESCE(excluded.sealed_secret, settings.sealed_secret),
                 updated_at = excluded.updated_at",
        )
        .bind(&self.org)
        .bind(new.to_string())
        .bind(&sealed)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let mut details = json!({ "changed": changed, "settings": new });
        if sealed.is_some() {
            details["client_secret"] = json!("[redacted]");
        }
        runs::insert_audit(&mut tx, &self.org, now, actor, "settings.updated", Some("azure_user_sync"), &details)
            .await?;
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
        runs::insert_audit(&mut tx, &self.org, now, actor, action, target, details).await?;
        tx.commit().await?;
        Ok(())
    }
}
