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
    /// The organisation this administrator administers (`None`: a platform operator only).
    pub org: Option<String>,
    /// A platform operator: sees every organisation's health and may open any of them.
    pub platform: bool,
}

/// What a new administrator is: of an organisation, a platform operator, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRole {
    pub org: Option<String>,
    pub platform: bool,
}

/// A live browser session.
#[derive(Debug, Clone)]
pub struct Session {
    pub admin_id: Uuid,
    pub email: String,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
    /// The organisation the session administers: the administrator's own, or the one a
    /// platform operator opened (`None`: none yet).
    pub org: Option<String>,
    pub platform: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    /// The organisation the token answers for (`None`: a platform token).
    #[serde(skip)]
    pub org: Option<String>,
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

type ApiTokenRow = (String, Option<String>, String, String, String, String, Option<String>, Option<String>);

const API_TOKEN_COLUMNS: &str = "id, org_id, name, scope, created_by, created_at, last_used_at, revoked_at";

fn api_token_from_row(
    (id, org, name, scope, created_by, created_at, last_used_at, revoked_at): ApiTokenRow,
) -> Result<ApiToken> {
    Ok(ApiToken {
        id: Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("token id '{id}'"), e))?,
        org,
        name,
        scope,
        created_by,
        created_at: parse_ts(&created_at)?,
        last_used_at: last_used_at.as_deref().map(parse_ts).transpose()?,
        revoked_at: revoked_at.as_deref().map(parse_ts).transpose()?,
    })
}

type AdminRow = (String, String, String, Option<String>, i64);

fn admin_from_row((id, email, password_hash, org, platform): AdminRow) -> Result<Admin> {
    Ok(Admin {
        id: Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("administrator id '{id}'"), e))?,
        email,
        password_hash,
        org,
        platform: platform != 0,
    })
}

impl Store {
    /// How many administrators the platform has, of every organisation: none means the
    /// setup link is armed.
    pub async fn admin_count(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admins").fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    /// Creates an administrator; `password_hash` is an argon2id PHC string. Audited in the
    /// organisation's log (an administrator of one) and the platform's (an operator).
    pub async fn create_admin(
        &self,
        email: &Email,
        password_hash: &str,
        role: &AdminRole,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Admin> {
        self.insert_admin(email, password_hash, role, actor, now, false).await
    }

    /// Creates the first administrator (the one-time setup link), a platform operator and
    /// administrator of this store's organisation: in one transaction that fails when any
    /// administrator exists, so that of concurrent setups exactly one wins.
    pub async fn create_first_admin(
        &self,
        email: &Email,
        password_hash: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Admin> {
        let role = AdminRole { org: Some(self.org.clone()), platform: true };
        self.insert_admin(email, password_hash, &role, actor, now, true).await
    }

    async fn insert_admin(
        &self,
        email: &Email,
        password_hash: &str,
        role: &AdminRole,
        actor: &str,
        now: OffsetDateTime,
        first_only: bool,
    ) -> Result<Admin> {
        let email = email.as_str();
        let admin = Admin {
            id: Uuid::now_v7(),
            email: email.to_owned(),
            password_hash: password_hash.to_owned(),
            org: role.org.clone(),
            platform: role.platform,
        };
        let mut tx = self.begin_write().await?;
        self.lock_table(&mut tx, "admins").await?;
        // E-mail addresses are unique across the platform: a login names no organisation.
        let existing: Vec<(String,)> =
            sqlx::query_as("SELECT email FROM admins WHERE lower(email) = lower($1) OR $2 = 1")
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
        sqlx::query(
            "INSERT INTO admins (id, org_id, platform, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(admin.id.to_string())
        .bind(&admin.org)
        .bind(i64::from(admin.platform))
        .bind(&admin.email)
        .bind(&admin.password_hash)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let details = json!({"admin_id": admin.id, "org": admin.org, "platform": admin.platform});
        if admin.org.is_some() {
            self.insert_audit_for(&mut tx, admin.org.as_deref(), now, actor, "admin.created", Some(email), &details)
                .await?;
        }
        if admin.platform {
            self.insert_audit_for(&mut tx, None, now, actor, "admin.created", Some(email), &details).await?;
        }
        tx.commit().await?;
        Ok(admin)
    }

    /// The administrator with this e-mail, of any organisation. Platform-wide: a login
    /// names no organisation.
    pub async fn admin_by_email(&self, email: &str) -> Result<Option<Admin>> {
        let row: Option<AdminRow> = sqlx::query_as(
            "SELECT id, email, password_hash, org_id, platform FROM admins WHERE lower(email) = lower($1)",
        )
        .bind(email.trim())
        .fetch_optional(&self.pool)
        .await?;
        row.map(admin_from_row).transpose()
    }

    /// Opens a session administering the administrator's own organisation; returns the
    /// cookie value (shown to the browser only).
    pub async fn create_session(&self, admin: &Admin, now: OffsetDateTime, lifetime: Duration) -> Result<String> {
        let cookie = random_token();
        sqlx::query(
            "INSERT INTO sessions (id_hash, org_id, admin_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash(&cookie))
        .bind(&admin.org)
        .bind(admin.id.to_string())
        .bind(random_token())
        .bind(ts(now))
        .bind(ts(now + lifetime))
        .execute(&self.pool)
        .await?;
        // Expired sessions are swept on each login rather than by a background job.
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(ts(now)).execute(&self.pool).await?;
        Ok(cookie)
    }

    /// The live session behind a cookie value, of any organisation. Sliding expiry: a
    /// session used in the second half of its lifetime is extended by a full lifetime.
    pub async fn session(&self, cookie: &str, now: OffsetDateTime, lifetime: Duration) -> Result<Option<Session>> {
        let hash = token_hash(cookie);
        let row: Option<(String, String, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT s.admin_id, a.email, s.csrf_token, s.expires_at, s.org_id, a.platform
             FROM sessions s JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((admin_id, email, csrf_token, expires_at, org, platform)) = row else { return Ok(None) };
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
        Ok(Some(Session { admin_id, email, csrf_token, expires_at, org, platform: platform != 0 }))
    }

    /// Points a platform operator's session at the organisation `org` (`None`: back to the
    /// platform), audited in that organisation's log: its administrators see who came in.
    pub async fn open_org_in_session(
        &self,
        cookie: &str,
        org: Option<&str>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE sessions SET org_id = $2 WHERE id_hash = $1
             AND admin_id IN (SELECT id FROM admins WHERE platform = 1)",
        )
        .bind(token_hash(cookie))
        .bind(org)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::conflict(None, "only a platform operator's session can open an organisation"));
        }
        if let Some(org) = org {
            self.insert_audit_for(&mut tx, Some(org), now, actor, "org.opened_by_platform", Some(org), &json!({}))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_session(&self, cookie: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(token_hash(cookie)).execute(&self.pool).await?;
        Ok(())
    }

    /// Creates an API token of this store's organisation named `name` (checked by the
    /// caller); returns it with the token value, which is never stored.
    pub async fn create_api_token(
        &self,
        name: &str,
        scope: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(ApiToken, String)> {
        self.insert_api_token(Some(&self.org), name, scope, actor, now).await
    }

    /// Creates a platform token: it answers for the platform (its organisations' health,
    /// `/metrics` of all of them), never for one organisation's users.
    pub async fn create_platform_token(
        &self,
        name: &str,
        scope: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(ApiToken, String)> {
        self.insert_api_token(None, name, scope, actor, now).await
    }

    async fn insert_api_token(
        &self,
        org: Option<&str>,
        name: &str,
        scope: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(ApiToken, String)> {
        let value = format!("{API_TOKEN_PREFIX}{}", random_token());
        let token = ApiToken {
            id: Uuid::now_v7(),
            org: org.map(str::to_owned),
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
        .bind(org)
        .bind(&token.name)
        .bind(token_hash(&value))
        .bind(actor)
        .bind(ts(now))
        .bind(scope)
        .execute(&mut *tx)
        .await?;
        let details = json!({"token_id": token.id, "scope": scope});
        self.insert_audit_for(&mut tx, org, now, actor, "token.created", Some(name), &details).await?;
        tx.commit().await?;
        Ok((token, value))
    }

    /// The tokens of this store's organisation.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.api_tokens_of(Some(&self.org)).await
    }

    /// The platform tokens.
    pub async fn platform_tokens(&self) -> Result<Vec<ApiToken>> {
        self.api_tokens_of(None).await
    }

    async fn api_tokens_of(&self, org: Option<&str>) -> Result<Vec<ApiToken>> {
        let sql = format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE org_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id"
        );
        let rows: Vec<ApiTokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(&self.pool).await?;
        rows.into_iter().map(api_token_from_row).collect()
    }

    /// Revokes a token of this store's organisation by id. Revoking a revoked token changes
    /// nothing.
    pub async fn revoke_api_token(&self, id: &str, actor: &str, now: OffsetDateTime) -> Result<ApiToken> {
        self.revoke_token_of(Some(&self.org), id, actor, now).await
    }

    /// Revokes a platform token by id.
    pub async fn revoke_platform_token(&self, id: &str, actor: &str, now: OffsetDateTime) -> Result<ApiToken> {
        self.revoke_token_of(None, id, actor, now).await
    }

    async fn revoke_token_of(&self, org: Option<&str>, id: &str, actor: &str, now: OffsetDateTime) -> Result<ApiToken> {
        let sql =
            format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE org_id IS NOT DISTINCT FROM $1 AND id = $2");
        let row: Option<ApiTokenRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id.trim()).fetch_optional(&self.pool).await?;
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
        let details = json!({"token_id": token.id});
        self.insert_audit_for(&mut tx, org, now, actor, "token.revoked", Some(&token.name), &details).await?;
        tx.commit().await?;
        token.revoked_at = Some(now);
        Ok(token)
    }

    /// The live token with this value, of any organisation or the platform, marking it used.
    pub async fn authenticate_api_token(&self, value: &str, now: OffsetDateTime) -> Result<Option<ApiToken>> {
        let hash = token_hash(value.trim());
        let sql = format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL");
        let row: Option<ApiTokenRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&hash).fetch_optional(&self.pool).await?;
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
