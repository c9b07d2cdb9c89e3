//! The organisations of the platform. An organisation's slug is its id: every table's
//! `org_id` holds it, so a slug never changes once created.

use serde_json::json;
use time::OffsetDateTime;

use crate::{Entity, Result, Store, StoreError, parse_ts, ts};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub slug: String,
    pub name: String,
    /// `en` or `nl`: the language of what the platform tells this organisation's people.
    pub language: String,
    pub created_at: OffsetDateTime,
    /// Disabled: no sync runs, and its administrators and tokens are refused; nothing is
    /// deleted.
    pub disabled_at: Option<OffsetDateTime>,
}

pub(crate) type OrgRow = (String, String, String, String, Option<String>);

pub(crate) fn org_from_row((slug, name, language, created_at, disabled_at): OrgRow) -> Result<Org> {
    Ok(Org {
        slug,
        name,
        language,
        created_at: parse_ts(&created_at)?,
        disabled_at: disabled_at.as_deref().map(parse_ts).transpose()?,
    })
}

/// An organisation's stored settings (`None`: never saved, the defaults), for what reads
/// them across organisations.
pub(crate) fn settings_of(org: &str, body: Option<String>) -> Result<safegpt_core::Settings> {
    match body {
        Some(body) => serde_json::from_str(&body).map_err(|e| StoreError::corrupt(format!("settings of '{org}'"), e)),
        None => Ok(safegpt_core::Settings::default()),
    }
}

const ORG_COLUMNS: &str = "id, name, language, created_at, disabled_at";

/// What may change of an organisation.
#[derive(Debug, Clone, Default)]
pub struct OrgChange {
    pub name: Option<String>,
    pub language: Option<String>,
    /// `Some(true)`: disable, `Some(false)`: enable again.
    pub disabled: Option<bool>,
}

impl Store {
    /// The same database, acting for the organisation `slug`. Whether it exists is the
    /// caller's check (the application's scoping); every query of the returned store is
    /// confined to it.
    pub fn for_org(&self, slug: &str) -> Store {
        Store {
            pool: self.pool.clone(),
            backend: self.backend,
            org: slug.to_owned(),
            sealer: self.sealer.clone(),
            fence: None,
        }
    }

    /// The same database acting for no organisation (an empty slug, which no organisation
    /// can have): for what is the platform's. Should a query of one organisation be called
    /// on it by mistake, it finds nothing instead of some organisation's rows.
    pub fn platform_wide(&self) -> Store {
        self.for_org("")
    }

    /// The organisation this store acts for.
    pub fn org_slug(&self) -> &str {
        &self.org
    }

    /// Every organisation, by slug. Platform-wide.
    pub async fn orgs(&self) -> Result<Vec<Org>> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY id");
        let rows: Vec<OrgRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.into_iter().map(org_from_row).collect()
    }

    /// The organisation `slug`. Platform-wide.
    pub async fn find_org(&self, slug: &str) -> Result<Option<Org>> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1");
        let row: Option<OrgRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(slug.trim()).fetch_optional(&self.pool).await?;
        row.map(org_from_row).transpose()
    }

    /// Creates an organisation (slug, name and language checked by the caller), audited in
    /// the platform's log and in the new organisation's own.
    pub async fn create_org(
        &self,
        slug: &str,
        name: &str,
        language: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Org> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO orgs (id, name, language, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(slug)
        .bind(name)
        .bind(language)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::conflict(Some("slug"), format!("an organisation '{slug}' exists already")));
        }
        let details = json!({"name": name, "language": language});
        self.insert_audit_for(&mut tx, None, now, actor, "org.created", Some(slug), &details).await?;
        self.insert_audit_for(&mut tx, Some(slug), now, actor, "org.created", Some(slug), &details).await?;
        tx.commit().await?;
        Ok(Org {
            slug: slug.to_owned(),
            name: name.to_owned(),
            language: language.to_owned(),
            created_at: now,
            disabled_at: None,
        })
    }

    /// Changes what `change` names of the organisation `slug`, in one conditional update,
    /// audited in the platform's log and the organisation's.
    pub async fn change_org(&self, slug: &str, change: &OrgChange, actor: &str, now: OffsetDateTime) -> Result<Org> {
        let mut tx = self.begin_write().await?;
        let disable = change.disabled.map(i64::from);
        let updated = sqlx::query(
            "UPDATE orgs SET name = COALESCE($2, name), language = COALESCE($3, language),
                 disabled_at = CASE WHEN $4 = 1 THEN COALESCE(disabled_at, $5) WHEN $4 = 0 THEN NULL ELSE disabled_at END
             WHERE id = $1",
        )
        .bind(slug.trim())
        .bind(&change.name)
        .bind(&change.language)
        .bind(disable)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: Entity::Org, key: slug.to_owned() });
        }
        let action = match change.disabled {
            Some(true) => "org.disabled",
            Some(false) => "org.enabled",
            None => "org.updated",
        };
        let details = json!({"name": change.name, "language": change.language});
        self.insert_audit_for(&mut tx, None, now, actor, action, Some(slug), &details).await?;
        self.insert_audit_for(&mut tx, Some(slug), now, actor, action, Some(slug), &details).await?;
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1");
        let row: OrgRow = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(slug.trim()).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        org_from_row(row)
    }
}
