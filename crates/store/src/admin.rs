//! Administrators, browser sessions, API tokens and the integration switches.
//!
//! Session ids and API tokens are random 256-bit values; only their SHA-256 is stored, so a
//! copy of the database opens no session and reveals no token. Password hashing (argon2id)
//! happens in the server, which owns the CPU budget for it; the store keeps PHC strings.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use safegpt_core::Email;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{Entity, Result, Store, StoreError, parse_ts, ts};

/// Prefix of API tokens, so that secret scanners and people recognise them.
pub const API_TOKEN_PREFIX: &str = "sgpt_";

#[derive(Debug, Clone)]
pub struct Admin {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
}

/// A live browser session.
#[derive(Debug, Clone)]
pub struct Session {
    pub admin_id: Uuid,
    pub email: String,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    /// `read`, `sync` or `admin` (checked by the application).
    pub scope: String,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A stored integration switch (Azure User Sync's switch is its `active` setting).
#[derive(Debug, Clone)]
pub struct IntegrationSwitch {
    pub key: String,
    pub enabled: bool,
    pub updated_at: OffsetDateTime,
}

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

type ApiTokenRow = (String, String, String, String, String, Option<String>, Option<String>);

fn api_token_from_row(
    (id, name, scope, created_by, created_at, last_used_at, revoked_at): ApiTokenRow,
) -> Result<ApiToken> {
    Ok(ApiToken {
        id: Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("token id '{id}'"), e))?,
        name,
        scope,
        created_by,
        created_at: parse_ts(&created_at)?,
        last_used_at: last_used_at.as_deref().map(parse_ts).transpose()?,
        revoked_at: revoked_at.as_deref().map(parse_ts).transpose()?,
    })
}

impl Store {
    pub async fn admin_count(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admins WHERE org_id = $1")
            .bind(&self.org)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// Creates an administrator; `password_hash` is an argon2id PHC string.
    pub async fn create_admin(
        &self,
        email: &Email,
        password_hash: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Admin> {
        self.insert_admin(email, password_hash, actor, now, false).await
    }

    /// Creates the first administrator (the one-time setup link): in one transaction that
    /// fails when any administrator exists, so that of concurrent setups exactly one wins.
    pub async fn create_first_admin(
        &self,
        email: &Email,
        password_hash: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Admin> {
        self.insert_admin(email, password_hash, actor, now, true).await
    }

    async fn insert_admin(
        &self,
        email: &Email,
        password_hash: &str,
        actor: &str,
        now: OffsetDateTime,
        first_only: bool,
    ) -> Result<Admin> {
        let email = email.as_str();
        let admin = Admin { id: Uuid::now_v7(), email: email.to_owned(), password_hash: password_hash.to_owned() };
        let mut tx = self.begin_write().await?;
        self.lock_table(&mut tx, "admins").await?;
        let existing: Vec<(String,)> =
            sqlx::query_as("SELECT email FROM admins WHERE org_id = $1 AND (lower(email) = lower($2) OR $3 = 1)")
                .bind(&self.org)
                .bind(email)
                .bind(i64::from(first_only))
                .fetch_all(&mut *tx)
                .await?;
        if first_only && !existing.is_empty() {
            return Err(StoreError::conflict(None, "the first administrator exists already; sign in instead"));
        }
        if !existing.is_empty() {
            return Err(StoreError::conflict(Some("email"), format!("an administrator '{email}' exists already")));
        }
        sqlx::query("INSERT INTO admins (id, org_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(admin.id.to_string())
            .bind(&self.org)
            .bind(&admin.email)
            .bind(&admin.password_hash)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        self.insert_audit(&mut tx, now, actor, "admin.created", Some(email), &json!({"admin_id": admin.id})).await?;
        tx.commit().await?;
        Ok(admin)
    }

    pub async fn admin_by_email(&self, email: &str) -> Result<Option<Admin>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT id, email, password_hash FROM admins WHERE org_id = $1 AND lower(email) = lower($2)",
        )
        .bind(&self.org)
        .bind(email.trim())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, email, password_hash)| {
            Ok(Admin {
                id: Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("administrator id '{id}'"), e))?,
                email,
                password_hash,
            })
        })
        .transpose()
    }

    /// Opens a session; returns the cookie value (shown to the browser only).
    pub async fn create_session(&self, admin_id: Uuid, now: OffsetDateTime, lifetime: Duration) -> Result<String> {
        let cookie = random_token();
        sqlx::query(
            "INSERT INTO sessions (id_hash, org_id, admin_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash(&cookie))
        .bind(&self.org)
        .bind(admin_id.to_string())
        .bind(random_token())
        .bind(ts(now))
        .bind(ts(now + lifetime))
        .execute(&self.pool)
        .await?;
        // Expired sessions are swept on each login rather than by a background job.
        sqlx::query("DELETE FROM sessions WHERE org_id = $1 AND expires_at < $2")
            .bind(&self.org)
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        Ok(cookie)
    }

    /// The live session behind a cookie value. Sliding expiry: a session used in the second
    /// half of its lifetime is extended by a full lifetime.
    pub async fn session(&self, cookie: &str, now: OffsetDateTime, lifetime: Duration) -> Result<Option<Session>> {
        let hash = token_hash(cookie);
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT s.admin_id, a.email, s.csrf_token, s.expires_at FROM sessions s JOIN admins a ON a.id = s.admin_id
             WHERE s.org_id = $1 AND s.id_hash = $2",
        )
        .bind(&self.org)
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((admin_id, email, csrf_token, expires_at)) = row else { return Ok(None) };
        let mut expires_at = parse_ts(&expires_at)?;
        if expires_at <= now {
            return Ok(None);
        }
        if expires_at - now < lifetime / 2 {
            expires_at = now + lifetime;
            sqlx::query("UPDATE sessions SET expires_at = $2 WHERE id_hash = $1")
                .bind(&hash)
                .bind(ts(expires_at))
                .execute(&self.pool)
                .await?;
        }
        let admin_id =
            Uuid::parse_str(&admin_id).map_err(|e| StoreError::corrupt(format!("administrator id '{admin_id}'"), e))?;
        Ok(Some(Session { admin_id, email, csrf_token, expires_at }))
    }

    pub async fn delete_session(&self, cookie: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(token_hash(cookie)).execute(&self.pool).await?;
        Ok(())
    }

    /// Creates an API token named `name` (checked by the caller); returns it with the token
    /// value, which is never stored.
    pub async fn create_api_token(
        &self,
        name: &str,
        scope: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(ApiToken, String)> {
        let value = format!("{API_TOKEN_PREFIX}{}", random_token());
        let token = ApiToken {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            scope: scope.to_owned(),
            created_by: actor.to_owned(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, org_id, name, token_hash, created_by, created_at, scope)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id.to_string())
        .bind(&self.org)
        .bind(&token.name)
        .bind(token_hash(&value))
        .bind(actor)
        .bind(ts(now))
        .bind(scope)
        .execute(&mut *tx)
        .await?;
        let details = json!({"token_id": token.id, "scope": scope});
        self.insert_audit(&mut tx, now, actor, "token.created", Some(name), &details).await?;
        tx.commit().await?;
        Ok((token, value))
    }

    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows: Vec<ApiTokenRow> = sqlx::query_as(
            "SELECT id, name, scope, created_by, created_at, last_used_at, revoked_at FROM api_tokens
             WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(&self.org)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(api_token_from_row).collect()
    }

    /// Revokes a token by id. Revoking a revoked token changes nothing.
    pub async fn revoke_api_token(&self, id: &str, actor: &str, now: OffsetDateTime) -> Result<ApiToken> {
        let row: Option<ApiTokenRow> = sqlx::query_as(
            "SELECT id, name, scope, created_by, created_at, last_used_at, revoked_at FROM api_tokens
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&self.org)
        .bind(id.trim())
        .fetch_optional(&self.pool)
        .await?;
        let mut token = api_token_from_row(
            row.ok_or_else(|| StoreError::NotFound { entity: Entity::ApiToken, key: id.to_owned() })?,
        )?;
        if token.revoked_at.is_some() {
            return Ok(token);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1")
            .bind(token.id.to_string())
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        self.insert_audit(&mut tx, now, actor, "token.revoked", Some(&token.name), &json!({"token_id": token.id}))
            .await?;
        tx.commit().await?;
        token.revoked_at = Some(now);
        Ok(token)
    }

    /// The live token with this value, marking it used.
    pub async fn authenticate_api_token(&self, value: &str, now: OffsetDateTime) -> Result<Option<ApiToken>> {
        let hash = token_hash(value.trim());
        let row: Option<ApiTokenRow> = sqlx::query_as(
            "SELECT id, name, scope, created_by, created_at, last_used_at, revoked_at FROM api_tokens
             WHERE org_id = $1 AND token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(&self.org)
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1")
            .bind(&hash)
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        api_token_from_row(row).map(Some)
    }

    pub async fn integration_switches(&self) -> Result<Vec<IntegrationSwitch>> {
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT key, enabled, updated_at FROM integrations WHERE org_id = $1")
                .bind(&self.org)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(key, enabled, at)| Ok(IntegrationSwitch { key, enabled: enabled != 0, updated_at: parse_ts(&at)? }))
            .collect()
    }

    pub async fn set_integration_switch(
        &self,
        key: &str,
        enabled: bool,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO integrations (org_id, key, enabled, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id, key) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
        )
        .bind(&self.org)
        .bind(key)
        .bind(i64::from(enabled))
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        self.insert_audit(&mut tx, now, actor, "integration.switched", Some(key), &json!({"enabled": enabled})).await?;
        tx.commit().await?;
        Ok(())
    }
}
