//! Administrators, API tokens, the audit log and the event outbox.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use safegpt_core::Email;
use safegpt_store::{Admin, AdminRole};

use crate::views::{AuditView, EventPage, EventView, TokenView};
use crate::{App, AppError, AppResult, Principal, TokenScope};

/// An argon2id PHC string of `password`.
pub fn hash_password(password: &str) -> AppResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("cannot hash a password: {e}")))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// The rule for every new administrator's password.
pub fn check_new_password(password: &str) -> AppResult<()> {
    if password.chars().count() < 12 {
        return Err(AppError::invalid("password", "use at least 12 characters"));
    }
    Ok(())
}

/// A token's name, as typed.
pub(crate) fn check_token_name(name: &str) -> AppResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.contains(char::is_control) {
        return Err(AppError::invalid("name", "give the token a name of 1 to 100 characters"));
    }
    Ok(name)
}

impl App {
    /// Creates an administrator of this organisation.
    pub async fn create_admin(&self, by: &Principal, email: &str, password: &str) -> AppResult<Admin> {
        by.require(TokenScope::Admin)?;
        let email = Email::parse(email).map_err(|e| AppError::invalid("email", e))?;
        check_new_password(password)?;
        let phc = hash_password(password)?;
        let role = AdminRole { org: Some(self.store.org_slug().to_owned()), platform: false };
        Ok(self.store.create_admin(&email, &phc, &role, &by.actor(), self.now()).await?)
    }

    /// Creates an API token of this organisation; its value is returned here only (the
    /// store keeps its hash).
    pub async fn create_token(&self, by: &Principal, name: &str, scope: TokenScope) -> AppResult<(TokenView, String)> {
        by.require(TokenScope::Admin)?;
        let name = check_token_name(name)?;
        let (token, value) = self.store.create_api_token(name, scope.as_str(), &by.actor(), self.now()).await?;
        Ok((TokenView::from(&token), value))
    }

    pub async fn tokens(&self) -> AppResult<Vec<TokenView>> {
        Ok(self.store.api_tokens().await?.iter().map(TokenView::from).collect())
    }

    /// Revokes a token at once; revoking a revoked token changes nothing.
    pub async fn revoke_token(&self, by: &Principal, id: &str) -> AppResult<TokenView> {
        by.require(TokenScope::Admin)?;
        Ok(TokenView::from(&self.store.revoke_api_token(id, &by.actor(), self.now()).await?))
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: u32) -> AppResult<Vec<AuditView>> {
        Ok(self.store.audit_log(limit).await?.iter().map(AuditView::from).collect())
    }

    /// The directory's changes after the cursor `after`, oldest first.
    pub async fn events(&self, after: i64, limit: u32) -> AppResult<EventPage> {
        if after < 0 {
            return Err(AppError::invalid("after", format!("{after} is not a cursor; use 0 or a next_cursor")));
        }
        let events: Vec<EventView> = self.store.events(after, limit).await?.iter().map(EventView::from).collect();
        // Read after the events: a removal that committed in between is seen here.
        let removed_through = self.store.events_removed_through().await?;
        if after > 0 && after < removed_through {
            let days = self.retention.events_days.map_or_else(String::new, |d| format!(" ({d} days)"));
            return Err(AppError::Gone(format!(
                "the events after {after} up to {removed_through} were removed by the retention period{days}; \
                 this follower missed them: read the directory afresh (GET /api/v1/users), then follow from \
                 after={removed_through}"
            )));
        }
        // Past what retention removed, so a follower starting from 0 never asks for it again.
        let next_cursor = events.last().map_or(after.max(removed_through), |e| e.seq);
        Ok(EventPage { events, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("wrong horse battery", &phc));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn a_new_password_has_twelve_characters() {
        assert!(check_new_password("elevenchars").is_err());
        assert!(check_new_password("twelve chars").is_ok());
    }
}
