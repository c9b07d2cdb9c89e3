//! What every request handler is given: the application, the web's own configuration
//! and the one-time setup link.

use std::sync::{Arc, Mutex};

use safegpt_app::Platform;
use safegpt_store::Store;
use time::OffsetDateTime;

/// Operator settings of the web server.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The address browsers use, e.g. `https://safegpt.example.org` behind a TLS proxy. An
    /// `https` URL makes session cookies `Secure`; its origin is trusted for form posts.
    pub public_url: Option<String>,
    pub session_lifetime: time::Duration,
    /// Run the sync on the schedule of the settings (off only in tests that drive it).
    pub scheduler: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { public_url: None, session_lifetime: time::Duration::hours(8), scheduler: true }
    }
}

impl WebConfig {
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

#[derive(Clone)]
pub struct AppState {
    /// Every operation goes through here: the platform's own, and an organisation's through
    /// the application [`Platform::scope`] gives the caller.
    pub platform: Platform,
    /// The store across organisations, for what only the web keeps in it: sessions and API
    /// token checks.
    pub store: Arc<Store>,
    pub config: Arc<WebConfig>,
    /// While no administrator exists: the token of the one-time setup link.
    pub setup_token: Arc<Mutex<Option<String>>>,
}

impl AppState {
    pub fn new(platform: Platform, config: WebConfig) -> AppState {
        AppState {
            store: Arc::clone(platform.store()),
            platform,
            config: Arc::new(config),
            setup_token: Arc::new(Mutex::new(None)),
        }
    }

    /// The application's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.platform.now()
    }
}
