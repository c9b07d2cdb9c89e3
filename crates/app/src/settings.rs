//! Azure User Sync's settings and the integration switches of Settings → Integrations.

use safegpt_core::{FieldError, SettingsPatch};
use safegpt_store::SecretChange;
use secrecy::SecretString;

use crate::views::{IntegrationView, SettingsView};
use crate::{App, AppError, AppResult, Principal, TokenScope};

/// A change of the settings: fields left out keep their value.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub patch: SettingsPatch,
    /// A new client secret; `None`, empty or only spaces keeps the stored one.
    pub client_secret: Option<String>,
}

/// The integrations of the seed's screenshot: key, name, on by default. Only Azure User
/// Sync has behaviour; the others are switches that are stored.
pub const INTEGRATIONS: [(&str, &str, bool); 4] = [
    ("office_addin", "Office Add-in", true),
    ("azure_user_sync", "Azure User Sync", false),
    ("google_search", "Google Search", false),
    ("openzaak", "OpenZaak", false),
];

pub const AZURE: &str = "azure_user_sync";

impl App {
    /// The settings as administrators see them (the secret only as "set or not").
    pub async fn settings(&self) -> AppResult<SettingsView> {
        let (settings, secret_set) = self.store.settings().await?;
        let next_run_at = self.store.next_run_at().await?;
        let mut view =
            SettingsView::new(&settings, secret_set, self.store.seats_used().await?, next_run_at, self.now());
        view.last_full_read_at = self.store.sync_cursor().await?.full_read_at;
        Ok(view)
    }

    /// Validates every field, then saves with an audit row; nothing is saved when any field
    /// is invalid, and the error names each.
    pub async fn configure(&self, by: &Principal, change: SettingsChange) -> AppResult<SettingsView> {
        by.require(TokenScope::Admin)?;
        let (current, stored_secret) = self.store.settings().await?;
        let secret = change.client_secret.filter(|s| !s.trim().is_empty());
        let patch = if secret.is_some() { change.patch.with_new_secret() } else { change.patch };
        let secret_error = secret.as_deref().filter(|s| s.contains(char::is_control)).map(|_| FieldError {
            field: "client_secret",
            message: "the Client Secret contains a line break or control character; paste only the secret's Value"
                .into(),
        });
        match (current.apply(&patch), secret_error) {
            (Ok(next), None) => {
                let secret = secret.map(SecretString::from);
                // The secret was entered for these endpoints: it never follows the settings
                // to another login or Graph host unless it is entered again with the change.
                // Cleared whether or not one was seen stored: one saved since `current` was
                // read was entered for the old endpoints too.
                let moved = secret.is_none() && next.cloud != current.cloud;
                let cleared = moved && stored_secret;
                let change = match &secret {
                    Some(s) => SecretChange::Replace(s),
                    None if moved => SecretChange::Clear,
                    None => SecretChange::Keep,
                };
                self.store.save_settings(&next, change, &by.actor(), self.now()).await?;
                let mut view = self.settings().await?;
                view.secret_cleared = cleared;
                Ok(view)
            }
            (Ok(_), Some(error)) => Err(AppError::Invalid(vec![error])),
            (Err(invalid), error) => Err(AppError::Invalid(invalid.0.into_iter().chain(error).collect())),
        }
    }

    pub async fn integrations(&self) -> AppResult<Vec<IntegrationView>> {
        let switches = self.store.integration_switches().await?;
        let (settings, _) = self.store.settings().await?;
        let azure_updated = self.store.settings_updated_at().await?;
        Ok(INTEGRATIONS
            .iter()
            .map(|&(key, name, default_on)| {
                let (enabled, updated_at) = if key == AZURE {
                    (settings.active, azure_updated)
                } else {
                    switches
                        .iter()
                        .find(|s| s.key == key)
                        .map_or((default_on, None), |s| (s.enabled, Some(s.updated_at)))
                };
                IntegrationView { key, name, enabled, license: "included", updated_at }
            })
            .collect())
    }

    /// Azure User Sync's switch is its `active` setting (validated like every change).
    pub async fn switch_integration(&self, by: &Principal, key: &str, enabled: bool) -> AppResult<IntegrationView> {
        by.require(TokenScope::Admin)?;
        let unknown = || {
            AppError::NotFound(format!(
                "no integration '{key}'; the integrations are office_addin, azure_user_sync, google_search and openzaak"
            ))
        };
        if !INTEGRATIONS.iter().any(|(k, _, _)| *k == key) {
            return Err(unknown());
        }
        if key == AZURE {
            let patch = SettingsPatch { active: Some(enabled), ..SettingsPatch::default() };
            self.configure(by, SettingsChange { patch, client_secret: None }).await?;
        } else {
            self.store.set_integration_switch(key, enabled, &by.actor(), self.now()).await?;
        }
        self.integrations().await?.into_iter().find(|i| i.key == key).ok_or_else(unknown)
    }
}
