//! Users: rows, listing, local accounts and an administrator's enable/disable.

use safegpt_core::{DisabledReason, Email, LocalUser, Profile, Source, Status};
use serde_json::json;
use sqlx::{Any, AnyConnection, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use futures_util::TryStreamExt;

use crate::batch::{Arg, insert_rows};
use crate::{Backend, Entity, Result, Store, StoreError, parse_ts, runs, ts};

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    source: String,
    azure_object_id: Option<String>,
    email: String,
    user_principal_name: Option<String>,
    display_name: Option<String>,
    given_name: Option<String>,
    surname: Option<String>,
    job_title: Option<String>,
    department: Option<String>,
    status: String,
    disabled_reason: Option<String>,
    disabled_at: Option<String>,
    in_scope: i64,
    created_at: String,
}

pub(crate) const USER_COLUMNS: &str = "id, source, azure_object_id, email, user_principal_name, display_name, given_name, \
     surname, job_title, department, status, disabled_reason, disabled_at, in_scope, created_at";

impl TryFrom<UserRow> for LocalUser {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<LocalUser> {
        let bad =
            |what: &str, v: &str| StoreError::corrupt(format!("user {}", r.id), format!("{what} '{v}' is invalid"));
        Ok(LocalUser {
            id: Uuid::parse_str(&r.id).map_err(|_| bad("id", &r.id))?,
            source: Source::parse(&r.source).ok_or_else(|| bad("source", &r.source))?,
            status: Status::parse(&r.status).ok_or_else(|| bad("status", &r.status))?,
            disabled_reason: match &r.disabled_reason {
                None => None,
                Some(v) => Some(DisabledReason::parse(v).ok_or_else(|| bad("disabled_reason", v))?),
            },
            disabled_at: r.disabled_at.as_deref().map(parse_ts).transpose()?,
            created_at: parse_ts(&r.created_at)?,
            in_scope: r.in_scope != 0,
            profile: Profile {
                email: r.email,
                user_principal_name: r.user_principal_name,
                display_name: r.display_name,
                given_name: r.given_name,
                surname: r.surname,
                job_title: r.job_title,
                department: r.department,
            },
            azure_object_id: r.azure_object_id,
        })
    }
}

/// Which users to list. The default is every user, oldest first.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<Status>,
    pub source: Option<Source>,
    /// Case-insensitive substring of e-mail, UPN or display name.
    pub search: Option<String>,
    pub limit: Option<u32>,
    pub offset: u32,
}

impl UserFilter {
    fn pattern(&self) -> Option<String> {
        let needle = self.search.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
        let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        Some(format!("%{}%", escaped.to_lowercase()))
    }
}

/// Searches `search_text`, folded in Rust: SQLite's `lower()` folds ASCII only, so "ZOË"
/// would never find "Zoë" there.
const USER_FILTER_SQL: &str = "org_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR source = $3)
     AND ($4 IS NULL OR search_text LIKE $4 ESCAPE '\\')";

const USER_INSERT: &str = "INSERT INTO users (id, org_id, source, azure_object_id, email, user_principal_name,
     display_name, given_name, surname, job_title, department, status, disabled_reason, disabled_at, in_scope,
     created_at, updated_at, search_text) VALUES";

/// What a search looks in: e-mail, UPN and display name, case-folded (Unicode), one per line
/// so that a search never matches across two of them.
pub(crate) fn search_text(email: &str, upn: Option<&str>, display_name: Option<&str>) -> String {
    [Some(email), upn, display_name].into_iter().flatten().collect::<Vec<_>>().join("\n").to_lowercase()
}

const USER_UPSERT_TAIL: &str = "ON CONFLICT (id) DO UPDATE SET source = excluded.source,
     azure_object_id = excluded.azure_object_id, email = excluded.email,
     user_principal_name = excluded.user_principal_name, display_name = excluded.display_name,
     given_name = excluded.given_name, surname = excluded.surname, job_title = excluded.job_title,
     department = excluded.department, status = excluded.status, disabled_reason = excluded.disabled_reason,
     disabled_at = excluded.disabled_at, in_scope = excluded.in_scope, updated_at = excluded.updated_at,
     search_text = excluded.search_text";

fn user_row(org: &str, u: &LocalUser, now: OffsetDateTime) -> Vec<Arg> {
    vec![
        u.id.to_string().into(),
        org.into(),
        u.source.as_str().into(),
        u.azure_object_id.clone().into(),
        u.profile.email.clone().into(),
        u.profile.user_principal_name.clone().into(),
        u.profile.display_name.clone().into(),
        u.profile.given_name.clone().into(),
        u.profile.surname.clone().into(),
        u.profile.job_title.clone().into(),
        u.profile.department.clone().into(),
        u.status.as_str().into(),
        u.disabled_reason.map(DisabledReason::as_str).into(),
        u.disabled_at.map(ts).into(),
        i64::from(u.in_scope).into(),
        ts(u.created_at).into(),
        ts(now).into(),
        search_text(&u.profile.email, u.profile.user_principal_name.as_deref(), u.profile.display_name.as_deref())
            .into(),
    ]
}

/// Creates or updates many users with few statements.
pub(crate) async fn upsert_users(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    org: &str,
    users: &[&LocalUser],
    now: OffsetDateTime,
) -> Result<()> {
    let rows: Vec<Vec<Arg>> = users.iter().map(|u| user_row(org, u, now)).collect();
    insert_rows(tx, backend, USER_INSERT, USER_UPSERT_TAIL, 18, rows).await
}

pub(crate) async fn upsert_user(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    org: &str,
    u: &LocalUser,
    now: OffsetDateTime,
) -> Result<()> {
    upsert_users(tx, backend, org, &[u], now).await
}

/// Streamed: one row at a time becomes a user, so a large directory is not held twice.
pub(crate) async fn collect_users(
    mut rows: impl futures_util::Stream<Item = std::result::Result<UserRow, sqlx::Error>> + Unpin,
) -> Result<Vec<LocalUser>> {
    let mut users = Vec::new();
    while let Some(row) = rows.try_next().await? {
        users.push(LocalUser::try_from(row)?);
    }
    Ok(users)
}

/// Where the directory stood when a sync read it: see [`Store::directory_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryVersion(i64);

impl Store {
    /// The users matching `filter`, oldest first.
    pub async fn users(&self, filter: UserFilter) -> Result<Vec<LocalUser>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {USER_FILTER_SQL} ORDER BY created_at, id LIMIT $5 OFFSET $6"
        );
        let rows = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql))
            .bind(&self.org)
            .bind(filter.status.map(Status::as_str))
            .bind(filter.source.map(Source::as_str))
            .bind(filter.pattern())
            .bind(filter.limit.map_or(i64::MAX, i64::from))
            .bind(i64::from(filter.offset))
            .fetch(&self.pool);
        collect_users(rows).await
    }

    /// How many users match `filter` (ignoring its limit and offset).
    pub async fn count_users(&self, filter: &UserFilter) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM users WHERE {USER_FILTER_SQL}");
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&self.org)
            .bind(filter.status.map(Status::as_str))
            .bind(filter.source.map(Source::as_str))
            .bind(filter.pattern())
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// A user by id or (case-insensitive) e-mail. Several users with one e-mail is an error
    /// that asks for the id.
    pub async fn find_user(&self, key: &str) -> Result<LocalUser> {
        self.find_user_on(&mut *self.pool.acquire().await?, key).await
    }

    /// [`Store::find_user`] on a connection, or inside a transaction.
    async fn find_user_on(&self, conn: &mut AnyConnection, key: &str) -> Result<LocalUser> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND (id = $2 OR lower(email) = lower($2)) ORDER BY created_at"
        );
        let mut rows: Vec<UserRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&self.org).bind(key.trim()).fetch_all(conn).await?;
        match rows.len() {
            0 => Err(StoreError::NotFound { entity: Entity::User, key: key.to_owned() }),
            1 => rows.pop().expect("one row").try_into(),
            n => Err(StoreError::conflict(
                None,
                format!("{n} users have the e-mail '{key}'; name the user by id instead"),
            )),
        }
    }

    pub async fn seats_used(&self) -> Result<u64> {
        self.seats_used_on(&mut *self.pool.acquire().await?).await
    }

    async fn seats_used_on(&self, conn: &mut AnyConnection) -> Result<u64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE org_id = $1 AND status IN ('active', 'disabled')")
                .bind(&self.org)
                .fetch_one(conn)
                .await?;
        Ok(n as u64)
    }

    /// Where the directory stands now. A sync notes it before it reads the users it plans
    /// from, and [`Store::apply_plan`] refuses the plan if it moved since.
    pub async fn directory_version(&self) -> Result<DirectoryVersion> {
        self.directory_version_on(&mut *self.pool.acquire().await?).await
    }

    pub(crate) async fn directory_version_on(&self, conn: &mut AnyConnection) -> Result<DirectoryVersion> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM directory_versions WHERE org_id = $1")
            .bind(&self.org)
            .fetch_optional(conn)
            .await?;
        Ok(DirectoryVersion(row.map_or(0, |(v,)| v)))
    }

    /// Every transaction that writes users calls this: a plan made before is refused.
    pub(crate) async fn move_directory_version(&self, tx: &mut Transaction<'_, Any>) -> Result<()> {
        sqlx::query(
            "INSERT INTO directory_versions (org_id, version) VALUES ($1, 1)
             ON CONFLICT (org_id) DO UPDATE SET version = directory_versions.version + 1",
        )
        .bind(&self.org)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// `Some((used, total))` when all `total` seats are taken (0 is unlimited), counted on
    /// `conn`: inside the transaction that takes the seat, so two cannot take the last one.
    /// (`total` is read before that transaction: a writer holding SQLite's lock must not
    /// wait for a second connection of the pool.)
    async fn seats_full_on(&self, conn: &mut AnyConnection, total: u32) -> Result<Option<(u64, u32)>> {
        if total == 0 {
            return Ok(None);
        }
        let used = self.seats_used_on(conn).await?;
        Ok((used >= u64::from(total)).then_some((used, total)))
    }

    /// Creates a local (not Entra) account, active, taking a seat.
    pub async fn add_local_user(
        &self,
        email: &Email,
        name: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<LocalUser> {
        let email = email.as_str();
        let (settings, _) = self.settings().await?;
        // Checked inside the transaction that writes: two requests at once cannot both pass.
        let mut tx = self.begin_event_write().await?;
        match self.find_user_on(&mut tx, email).await {
            Err(StoreError::NotFound { .. }) => {}
            Ok(_) | Err(StoreError::Conflict { .. }) => {
                return Err(StoreError::conflict(
                    Some("email"),
                    format!("a user with the e-mail '{email}' exists already"),
                ));
            }
            Err(e) => return Err(e),
        }
        if let Some((used, total)) = self.seats_full_on(&mut tx, settings.seats).await? {
            return Err(StoreError::conflict(
                None,
                format!("no free seat ({used} of {total} used); raise the seat count or remove users first"),
            ));
        }
        let name = name.trim();
        let user = LocalUser {
            id: Uuid::now_v7(),
            source: Source::Local,
            azure_object_id: None,
            profile: Profile {
                email: email.to_owned(),
                display_name: (!name.is_empty()).then(|| name.to_owned()),
                ..Profile::default()
            },
            status: Status::Active,
            disabled_reason: None,
            disabled_at: None,
            in_scope: true,
            created_at: now,
        };
        upsert_user(&mut tx, self.backend, &self.org, &user, now).await?;
        self.move_directory_version(&mut tx).await?;
        let payload = runs::event_payload(&user, &[], None);
        self.insert_event(&mut tx, now, "user.created", user.id, &payload).await?;
        self.insert_audit(&mut tx, now, actor, "user.created", Some(email), &json!({"source": "local"})).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// An administrator disables or enables a user. A disable by an administrator is never
    /// undone by the sync.
    pub async fn set_status_by_admin(
        &self,
        key: &str,
        enable: bool,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<LocalUser> {
        let (settings, _) = self.settings().await?;
        // Read inside the transaction that writes: a sync applying meanwhile waits for it or
        // is seen whole, and its change to this user is never written back over.
        let mut tx = self.begin_event_write().await?;
        let before = self.find_user_on(&mut tx, key).await?;
        let mut after = before.clone();
        if enable {
            if before.status == Status::Active {
                return Ok(before);
            }
            after.status = Status::Active;
            after.disabled_reason = None;
            after.disabled_at = None;
        } else {
            if before.status == Status::Disabled && before.disabled_reason == Some(DisabledReason::Admin) {
                return Ok(before);
            }
            after.status = Status::Disabled;
            after.disabled_reason = Some(DisabledReason::Admin);
            after.disabled_at = Some(now);
        }
        // Active and disabled users hold a seat; one awaiting a license has none, so either
        // decision about it takes a seat, which must be free.
        if !before.status.holds_seat()
            && after.status.holds_seat()
            && let Some((used, total)) = self.seats_full_on(&mut tx, settings.seats).await?
        {
            let what = if enable { "enable" } else { "hold disabled" };
            return Err(StoreError::conflict(
                None,
                format!(
                    "no free seat ({used} of {total} used) to {what} {}; a user awaiting a license has no access meanwhile",
                    before.profile.email
                ),
            ));
        }
        let kind = if enable { "user.enabled" } else { "user.disabled" };
        upsert_user(&mut tx, self.backend, &self.org, &after, now).await?;
        self.move_directory_version(&mut tx).await?;
        let payload = runs::event_payload(&after, &["status", "disabled_reason"], Some("admin"));
        self.insert_event(&mut tx, now, kind, after.id, &payload).await?;
        self.insert_audit(
            &mut tx,
            now,
            actor,
            kind,
            Some(&after.profile.email),
            &json!({"user_id": after.id, "previous_status": before.status.as_str()}),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}
