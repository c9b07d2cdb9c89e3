//! Who may do what: administrators' logins (throttled in the database, so every instance
//! shares the count), the one-time setup, and the scopes of API tokens.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use safegpt_core::Email;
use safegpt_store::{Admin, LoginAttempt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admin::{check_new_password, hash_password, verify_password};
use crate::{AppError, AppResult, Platform, Principal};

/// What an API token may do. Administrators signed in to the web UI and the operator at the
/// console may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// GET routes of the API, `/metrics` and the events feed.
    Read,
    /// Also start syncs and previews, test the connection, confirm and cancel held runs.
    Sync,
    /// Also change settings, users and tokens.
    Admin,
}

impl TokenScope {
    pub const ALL: [TokenScope; 3] = [TokenScope::Read, TokenScope::Sync, TokenScope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Sync => "sync",
            TokenScope::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> AppResult<TokenScope> {
        TokenScope::ALL
            .into_iter()
            .find(|s| s.as_str() == raw.trim())
            .ok_or_else(|| AppError::invalid("scope", format!("'{raw}' is not a token scope; use read, sync or admin")))
    }
}

impl Principal {
    /// What this principal may do at most.
    pub fn scope(&self) -> TokenScope {
        match self {
            Principal::Token { scope, .. } => *scope,
            _ => TokenScope::Admin,
        }
    }

    /// Refuses what only the platform may do (organisations, operators, platform tokens)
    /// to anyone else: an organisation's administrator or token is confined to it.
    pub(crate) fn require_platform(&self, needed: TokenScope) -> AppResult<()> {
        let allowed = match self {
            Principal::Operator | Principal::SetupLink | Principal::Demo => true,
            Principal::Admin { platform, .. } => *platform,
            Principal::Token { org, .. } => org.is_none(),
            Principal::Scheduler => false,
        };
        if !allowed {
            return Err(AppError::Unauthorised(
                "only a platform operator (or a platform token) may do this; an organisation's administrators and \
                 tokens act in their organisation only"
                    .to_owned(),
            ));
        }
        self.require(needed)
    }

    /// Refuses an operation that needs more than this principal may do.
    pub(crate) fn require(&self, needed: TokenScope) -> AppResult<()> {
        if self.scope() >= needed {
            return Ok(());
        }
        Err(AppError::Unauthorised(format!(
            "this API token has the scope '{}'; this needs '{}' (create a token with --scope {})",
            self.scope().as_str(),
            needed.as_str(),
            needed.as_str()
        )))
    }
}

/// How a login ended.
#[derive(Debug)]
pub enum Login {
    Admin(Admin),
    /// Wrong e-mail or password (which one is not said).
    Failed,
    /// Too many failures for this e-mail or client address: wait this long.
    Throttled(Duration),
}

/// argon2 costs ~50 ms of CPU and 19 MiB: at most two at a time.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(2))
}

/// Verifies on the blocking pool. An unknown e-mail is checked against a dummy hash so that
/// the answer takes as long as for a known one.
async fn verify_login(phc: Option<String>, password: String) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let Ok(_permit) = hashing_permits().acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| {
            DUMMY.get_or_init(|| hash_password("dummy password for timing").unwrap_or_default()).clone()
        });
        verify_password(&password, &phc) && known
    })
    .await
    .unwrap_or(false)
}

/// The keys a login attempt counts against. Bounded: an e-mail longer than any address is
/// cut (no administrator has it), and an IPv6 client counts as its /64, which one host
/// usually holds whole, so new addresses from it do not escape the lock.
fn throttle_keys(email: &str, client: IpAddr) -> [String; 2] {
    let email: String = email.trim().to_lowercase().chars().take(254).collect();
    let client = match client.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V4(v4) => v4.to_string(),
    };
    [format!("email:{email}"), format!("ip:{client}")]
}

impl Platform {
    /// An administrator's login from `client`, of any organisation (e-mail addresses are
    /// unique across the platform). A failure slot is reserved for the e-mail and
    /// the address before the password is verified, so concurrent guesses lock like
    /// sequential ones: after 5 failures, 30 s, doubling up to 15 minutes.
    pub async fn log_in(&self, email: &str, password: &str, client: IpAddr) -> AppResult<Login> {
        let keys = throttle_keys(email, client);
        if let LoginAttempt::Locked(wait) = self.store().reserve_login_attempt(&keys, self.now()).await? {
            return Ok(Login::Throttled(wait));
        }
        let admin = self.store().admin_by_email(email).await?;
        if !verify_login(admin.as_ref().map(|a| a.password_hash.clone()), password.to_owned()).await {
            tracing::warn!(%client, "failed administrator login");
            return Ok(Login::Failed);
        }
        self.store().clear_login_failures(&keys).await?;
        Ok(admin.map_or(Login::Failed, Login::Admin))
    }

    /// The first administrator, from the one-time setup link: a platform operator and
    /// administrator of `default`, so that a deployment of one organisation works as one
    /// always did. Refused once any administrator exists, also when several setups race.
    pub async fn create_first_admin(&self, email: &str, password: &str) -> AppResult<Admin> {
        let email = Email::parse(email).map_err(|e| AppError::invalid("email", e))?;
        check_new_password(password)?;
        let phc = hash_password(password)?;
        let store = self.store().for_org(safegpt_store::DEFAULT_ORG);
        Ok(store.create_first_admin(&email, &phc, &Principal::SetupLink.actor(), self.now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_keys_are_bounded_and_an_ipv6_host_is_its_64() {
        let [email, ip] = throttle_keys(
            &format!(" Ann@Example.ORG{} ", "x".repeat(2_000_000)),
            "2001:db8:1:2:aa::5".parse().unwrap(),
        );
        assert!(email.starts_with("email:ann@example.orgxx") && email.len() == 6 + 254, "{}", &email[..40]);
        assert_eq!(ip, "ip:2001:db8:1:2::/64");
        let [_, other] = throttle_keys("a", "2001:db8:1:2:ffff::9".parse().unwrap());
        assert_eq!(other, ip, "another address of the same /64 shares the lock");
        assert_eq!(throttle_keys("a", "::ffff:192.0.2.7".parse().unwrap())[1], "ip:192.0.2.7");
        assert_eq!(throttle_keys("a", "192.0.2.7".parse().unwrap())[1], "ip:192.0.2.7");
    }

    #[test]
    fn scopes_are_ordered_by_what_they_allow() {
        let token = |scope| Principal::Token { name: "t".into(), scope, org: Some("default".into()) };
        assert!(token(TokenScope::Read).require(TokenScope::Read).is_ok());
        assert!(token(TokenScope::Read).require(TokenScope::Sync).is_err());
        assert!(token(TokenScope::Sync).require(TokenScope::Admin).is_err());
        assert!(token(TokenScope::Admin).require(TokenScope::Admin).is_ok());
        let admin = |platform| Principal::Admin { email: "a@x.org".into(), org: Some("default".into()), platform };
        assert!(admin(false).require(TokenScope::Admin).is_ok());
        let needs = TokenScope::Admin;
        assert!(admin(false).require_platform(needs).is_err() && admin(true).require_platform(needs).is_ok());
        assert!(token(TokenScope::Admin).require_platform(needs).is_err(), "an organisation's token is confined to it");
        let platform_token = |scope| Principal::Token { name: "p".into(), scope, org: None };
        assert!(platform_token(TokenScope::Admin).require_platform(needs).is_ok());
        assert!(platform_token(TokenScope::Read).require_platform(needs).is_err());
        assert!(platform_token(TokenScope::Read).require_platform(TokenScope::Read).is_ok());
        assert_eq!(TokenScope::parse(" sync").unwrap(), TokenScope::Sync);
        assert!(TokenScope::parse("root").is_err());
    }
}
