//! The platform: every organisation of one deployment. An organisation's [`App`] is had
//! only through [`Platform::scope`], the one place where who acts decides which
//! organisation is acted on; nothing below it can reach another organisation's rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use safegpt_core::Email;
use safegpt_store::{Admin, AdminRole, DEFAULT_ORG, Org, OrgChange, OrgHealth, Store};
use serde::Serialize;
use time::OffsetDateTime;

use crate::admin::{check_new_password, hash_password};
use crate::views::TokenView;
use crate::{App, AppError, AppResult, Clock, Operations, Principal, TokenScope, Trigger};

/// The languages an organisation can have.
pub const LANGUAGES: [&str; 2] = ["en", "nl"];

#[derive(Clone)]
pub struct Platform {
    pub(crate) store: Arc<Store>,
    pub(crate) operations: Operations,
    pub(crate) clock: Clock,
    /// One application (and so one runner, with its single flight and live progress) per
    /// organisation, made on first use.
    apps: Arc<Mutex<HashMap<String, App>>>,
    /// The scheduled syncs this process may run at once.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    /// Told whenever a scheduled sync ends and frees its slot.
    pub(crate) slot_freed: Arc<tokio::sync::Notify>,
}

/// An organisation as the platform shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgView {
    pub slug: String,
    pub name: String,
    pub language: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
}

impl From<&Org> for OrgView {
    fn from(org: &Org) -> Self {
        OrgView {
            slug: org.slug.clone(),
            name: org.name.clone(),
            language: org.language.clone(),
            created_at: org.created_at,
            disabled_at: org.disabled_at,
        }
    }
}

/// The newest run of an organisation, as the platform page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastRunView {
    pub id: uuid::Uuid,
    /// `running`, `succeeded`, `failed`, `held`, `dry_run`, …
    pub status: String,
    pub trigger: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The failure's stable kind (`invalid_client`, `throttled`, …), when it failed.
    pub error_kind: Option<String>,
}

/// Seats of an organisation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeatsView {
    pub used: u64,
    /// 0: unlimited.
    pub total: u32,
}

/// One organisation's sync health: what a platform operator watches, without any user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgHealthView {
    pub slug: String,
    pub name: String,
    pub language: String,
    /// When a platform operator disabled it (`null`: enabled).
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    /// Azure User Sync switched on.
    pub active: bool,
    pub last_run: Option<LastRunView>,
    /// Runs held by the deletion threshold, waiting for an administrator's decision.
    pub held_runs: u64,
    /// Since when its runs fail (the first failure after the last success); `null` while
    /// its newest run did not fail.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    pub failing_for_seconds: Option<i64>,
    /// When its client secret expires (`YYYY-MM-DD`), if the administrator entered it.
    pub secret_expires: Option<String>,
    /// Days until then (negative: expired).
    pub secret_expires_in_days: Option<i64>,
    pub seats: SeatsView,
}

impl OrgHealthView {
    fn new(h: &OrgHealth, now: OffsetDateTime) -> OrgHealthView {
        let expiry = h.settings.secret_expiry();
        OrgHealthView {
            slug: h.org.slug.clone(),
            name: h.org.name.clone(),
            language: h.org.language.clone(),
            disabled_at: h.org.disabled_at,
            active: h.settings.active,
            last_run: h.last_run.as_ref().map(|r| LastRunView {
                id: r.id,
                status: r.status.as_str().to_owned(),
                trigger: r.trigger.clone(),
                started_at: r.started_at,
                finished_at: r.finished_at,
                error_kind: r.error.as_ref().map(|e| e.kind.clone()),
            }),
            held_runs: h.held_runs,
            failing_since: h.failing_since,
            failing_for_seconds: h.failing_since.map(|since| (now - since).whole_seconds().max(0)),
            secret_expires: h.settings.secret_expires.clone(),
            secret_expires_in_days: expiry.map(|d| (d - now.date()).whole_days()),
            seats: SeatsView { used: h.seats_used, total: h.settings.seats },
        }
    }
}

/// A new organisation, as typed.
#[derive(Debug, Clone, Default)]
pub struct NewOrg {
    pub slug: String,
    pub name: String,
    pub language: Option<String>,
}

/// A slug: what `--org`, URLs and every table use to name the organisation, for good.
fn check_slug(raw: &str) -> AppResult<String> {
    let slug = raw.trim();
    let fine = (2..=40).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && !slug.ends_with('-')
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !fine {
        return Err(AppError::invalid(
            "slug",
            format!(
                "'{raw}' is not a slug: use 2 to 40 lowercase letters, digits and '-', starting with a letter, e.g. acme"
            ),
        ));
    }
    Ok(slug.to_owned())
}

fn check_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.contains(char::is_control) {
        return Err(AppError::invalid("name", "give the organisation a name of 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

fn check_language(raw: &str) -> AppResult<String> {
    let language = raw.trim().to_ascii_lowercase();
    if !LANGUAGES.contains(&language.as_str()) {
        return Err(AppError::invalid("language", format!("'{raw}' is not a language of SafeGPT; use en or nl")));
    }
    Ok(language)
}

impl Platform {
    pub fn new(store: Arc<Store>, operations: Operations) -> Platform {
        Platform {
            store: Arc::new(store.platform_wide()),
            slots: Arc::new(tokio::sync::Semaphore::new(operations.max_concurrent_syncs.max(1))),
            slot_freed: Arc::new(tokio::sync::Notify::new()),
            operations,
            clock: Arc::new(OffsetDateTime::now_utc),
            apps: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A fixed clock for tests; set before any organisation's application is made.
    pub fn with_clock(mut self, clock: Clock) -> Platform {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// For what only an adapter does with the database across organisations (sessions,
    /// token checks, readiness).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The application of the organisation `slug`, unchecked: only [`Platform::scope`] and
    /// the scheduler, which read the organisation themselves, call this.
    pub(crate) fn app(&self, slug: &str) -> App {
        let mut apps = self.apps.lock().expect("apps lock");
        apps.entry(slug.to_owned())
            .or_insert_with(|| {
                App::new(Arc::new(self.store.for_org(slug)), self.operations.clone()).with_clock(self.clock.clone())
            })
            .clone()
    }

    /// The application `principal` acts in: the one place organisation scoping is decided.
    ///
    /// - An administrator or a token acts in its own organisation, and only there: naming
    ///   another (`requested`) is answered as if it did not exist.
    /// - A platform operator's session acts in the organisation it opened; a platform
    ///   token in none.
    /// - The operator at the console, the scheduler and the demo act in the organisation
    ///   named, or the only one there is.
    ///
    /// A disabled organisation is refused to everyone: nothing runs in it until it is
    /// enabled again (`safegpt orgs enable`).
    pub async fn scope(&self, principal: &Principal, requested: Option<&str>) -> AppResult<App> {
        let own = match principal {
            Principal::Admin { org, .. } | Principal::Token { org, .. } => Some(org.as_deref().ok_or_else(|| {
                AppError::Unauthorised(match principal {
                    Principal::Token { .. } => "a platform token answers for the platform only (/api/v1/platform); \
                                               use a token of the organisation"
                        .to_owned(),
                    _ => "open an organisation on the platform page (/platform) first".to_owned(),
                })
            })?),
            Principal::Operator | Principal::SetupLink | Principal::Demo | Principal::Scheduler => None,
        };
        let slug = match (own, requested) {
            (Some(own), Some(asked)) if own != asked.trim() => {
                return Err(AppError::NotFound(format!("no organisation '{}'", asked.trim())));
            }
            (Some(own), _) => own.to_owned(),
            (None, Some(asked)) => asked.trim().to_owned(),
            (None, None) => self.only_org().await?,
        };
        match principal {
            // The console operator manages a disabled organisation too (revokes its tokens,
            // reads its runs); what would run in it is refused where every run starts.
            Principal::Operator => self.existing_app(&slug).await.map(|(app, _)| app),
            _ => self.enabled_app(&slug).await,
        }
    }

    /// The application of `slug` and whether the organisation is disabled, if it exists.
    async fn existing_app(&self, slug: &str) -> AppResult<(App, bool)> {
        let org =
            self.store.find_org(slug).await?.ok_or_else(|| {
                AppError::NotFound(format!("no organisation '{slug}'; `safegpt orgs list` shows them"))
            })?;
        Ok((self.app(slug), org.disabled_at.is_some()))
    }

    /// The application of `slug` if it exists and is enabled.
    async fn enabled_app(&self, slug: &str) -> AppResult<App> {
        let (app, disabled) = self.existing_app(slug).await?;
        if disabled {
            return Err(AppError::Unauthorised(format!(
                "the organisation '{slug}' is disabled; a platform operator can enable it again (safegpt orgs enable {slug})"
            )));
        }
        Ok(app)
    }

    /// Every organisation's sync health, for platform operators: no user's details.
    pub async fn overview(&self, by: &Principal) -> AppResult<Vec<OrgHealthView>> {
        by.require_platform(TokenScope::Read)?;
        let now = self.now();
        Ok(self.store.org_health().await?.iter().map(|h| OrgHealthView::new(h, now)).collect())
    }

    /// Starts a sync of the organisation `slug` for a platform operator: the run is the
    /// organisation's, and its audit log says who started it.
    pub async fn start_sync(&self, by: &Principal, slug: &str, trigger: Trigger) -> AppResult<uuid::Uuid> {
        by.require_platform(TokenScope::Sync)?;
        let app = self.enabled_app(slug).await?;
        let run_id = app.start_sync(by, trigger, false).await?;
        // The organisation's administrators read who outside it started a run that may
        // disable and remove their users.
        let details = serde_json::json!({"run_id": run_id});
        app.store()
            .audit(&by.actor(), "sync.started_by_platform", Some(&run_id.to_string()), &details, self.now())
            .await?;
        Ok(run_id)
    }

    /// Points a platform operator's browser session at the organisation `slug`: from then
    /// on its pages are that organisation's, as for its administrator. Audited in the
    /// organisation's log, which its administrators read.
    pub async fn open_org(&self, by: &Principal, session_cookie: &str, slug: &str) -> AppResult<()> {
        if !matches!(by, Principal::Admin { platform: true, .. }) {
            return Err(AppError::Unauthorised("only a platform operator's session can open an organisation".into()));
        }
        self.enabled_app(slug).await?;
        Ok(self.store.open_org_in_session(session_cookie, Some(slug), &by.actor(), self.now()).await?)
    }

    /// The organisation when there is one; with several, an error naming them.
    async fn only_org(&self) -> AppResult<String> {
        let orgs = self.store.orgs().await?;
        match orgs.as_slice() {
            [only] => Ok(only.slug.clone()),
            [] => Ok(DEFAULT_ORG.to_owned()),
            several => Err(AppError::invalid(
                "org",
                format!(
                    "this deployment has {} organisations ({}); choose one with --org SLUG or SAFEGPT_ORG",
                    several.len(),
                    several.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    pub async fn orgs(&self, by: &Principal) -> AppResult<Vec<OrgView>> {
        by.require_platform(TokenScope::Read)?;
        Ok(self.store.orgs().await?.iter().map(OrgView::from).collect())
    }

    pub async fn org(&self, by: &Principal, slug: &str) -> AppResult<OrgView> {
        by.require_platform(TokenScope::Read)?;
        let org = self.store.find_org(slug).await?;
        org.as_ref().map(OrgView::from).ok_or_else(|| AppError::NotFound(format!("no organisation '{}'", slug.trim())))
    }

    pub async fn create_org(&self, by: &Principal, new: NewOrg) -> AppResult<OrgView> {
        by.require_platform(TokenScope::Admin)?;
        let slug = check_slug(&new.slug);
        let name = check_name(&new.name);
        let language = check_language(new.language.as_deref().unwrap_or("en"));
        let errors: Vec<_> = [slug.as_ref().err(), name.as_ref().err(), language.as_ref().err()]
            .into_iter()
            .flatten()
            .flat_map(|e| match e {
                AppError::Invalid(fields) => fields.clone(),
                _ => Vec::new(),
            })
            .collect();
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let (slug, name, language) = (slug?, name?, language?);
        let org = self.store.create_org(&slug, &name, &language, &by.actor(), self.now()).await?;
        Ok(OrgView::from(&org))
    }

    /// Renames, changes the language of, disables or enables an organisation.
    pub async fn change_org(&self, by: &Principal, slug: &str, change: OrgChange) -> AppResult<OrgView> {
        by.require_platform(TokenScope::Admin)?;
        let change = OrgChange {
            name: change.name.as_deref().map(check_name).transpose()?,
            language: change.language.as_deref().map(check_language).transpose()?,
            disabled: change.disabled,
        };
        if change.name.is_none() && change.language.is_none() && change.disabled.is_none() {
            return Err(AppError::invalid("org", "nothing to change: give --name or --language"));
        }
        Ok(OrgView::from(&self.store.change_org(slug, &change, &by.actor(), self.now()).await?))
    }

    /// Creates an administrator of the organisation `org`, a platform operator, or both.
    pub async fn create_admin(&self, by: &Principal, email: &str, password: &str, role: AdminRole) -> AppResult<Admin> {
        by.require_platform(TokenScope::Admin)?;
        let email = Email::parse(email).map_err(|e| AppError::invalid("email", e))?;
        if let Some(org) = &role.org
            && self.store.find_org(org).await?.is_none()
        {
            return Err(AppError::NotFound(format!("no organisation '{org}'; `safegpt orgs list` shows them")));
        }
        check_new_password(password)?;
        let phc = hash_password(password)?;
        Ok(self.store.create_admin(&email, &phc, &role, &by.actor(), self.now()).await?)
    }

    /// Creates a platform token; its value is returned here only.
    pub async fn create_platform_token(
        &self,
        by: &Principal,
        name: &str,
        scope: TokenScope,
    ) -> AppResult<(TokenView, String)> {
        by.require_platform(TokenScope::Admin)?;
        let name = crate::admin::check_token_name(name)?;
        let (token, value) = self.store.create_platform_token(name, scope.as_str(), &by.actor(), self.now()).await?;
        Ok((TokenView::from(&token), value))
    }

    pub async fn platform_tokens(&self, by: &Principal) -> AppResult<Vec<TokenView>> {
        by.require_platform(TokenScope::Read)?;
        Ok(self.store.platform_tokens().await?.iter().map(TokenView::from).collect())
    }

    pub async fn revoke_platform_token(&self, by: &Principal, id: &str) -> AppResult<TokenView> {
        by.require_platform(TokenScope::Admin)?;
        Ok(TokenView::from(&self.store.revoke_platform_token(id, &by.actor(), self.now()).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_short_lowercase_words() {
        assert_eq!(check_slug(" acme-2 ").unwrap(), "acme-2");
        for bad in ["", "a", "Acme", "2acme", "acme-", "ac me", "acmé", &"a".repeat(41)] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
        assert!(check_language("NL").is_ok() && check_language("de").is_err());
    }
}
