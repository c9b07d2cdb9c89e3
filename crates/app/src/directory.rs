//! The user directory: listing users, local accounts, and an administrator's enable/disable.

use safegpt_core::{Email, Source, Status};
use safegpt_store::UserFilter;
use uuid::Uuid;

use crate::views::{SeatsView, UserPage, UserView};
use crate::{App, AppError, AppResult, Principal, TokenScope};

/// Which users, oldest first.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Part of the e-mail or name, case-insensitive.
    pub search: Option<String>,
    pub status: Option<Status>,
    pub source: Option<Source>,
    /// `None`: every matching user.
    pub limit: Option<u32>,
    pub offset: u32,
}

impl App {
    /// A page of users with the total matching and the seats used.
    pub async fn users(&self, query: UserQuery) -> AppResult<UserPage> {
        let (settings, _) = self.store.settings().await?;
        let UserQuery { search, status, source, limit, offset } = query;
        let filter = UserFilter { status, source, search, limit, offset };
        let total = self.store.count_users(&filter).await?;
        let users = self.store.users(filter).await?;
        Ok(UserPage {
            users: users.iter().map(|u| UserView::new(u, &settings)).collect(),
            total,
            limit: limit.unwrap_or(u32::try_from(total).unwrap_or(u32::MAX)),
            offset,
            seats: SeatsView { used: self.store.seats_used().await?, total: settings.seats },
        })
    }

    pub async fn user(&self, id: Uuid) -> AppResult<UserView> {
        let (settings, _) = self.store.settings().await?;
        let user = self.store.find_user(&id.to_string()).await?;
        Ok(UserView::new(&user, &settings))
    }

    /// Adds a local (not Entra) account, active, taking a seat.
    pub async fn add_local_user(&self, by: &Principal, email: &str, name: &str) -> AppResult<UserView> {
        by.require(TokenScope::Admin)?;
        let email = Email::parse(email).map_err(|e| AppError::invalid("email", e))?;
        let (settings, _) = self.store.settings().await?;
        let user = self.store.add_local_user(&email, name, &by.actor(), self.now()).await?;
        Ok(UserView::new(&user, &settings))
    }

    /// An administrator's decision about a user (by id or e-mail). A disable is never undone
    /// by the sync.
    pub async fn set_user_status(&self, by: &Principal, user: &str, enable: bool) -> AppResult<UserView> {
        by.require(TokenScope::Admin)?;
        let (settings, _) = self.store.settings().await?;
        let user = self.store.set_status_by_admin(user, enable, &by.actor(), self.now()).await?;
        Ok(UserView::new(&user, &settings))
    }
}
