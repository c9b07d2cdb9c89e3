//! `safegpt serve`: the administrator's web UI, the REST API and the health check.
//!
//! An adapter over the application layer (`safegpt_app`): pages and REST handlers parse the
//! request, call one operation, and render its result; `error.rs` maps its errors to HTTP
//! once. Only what is the web's own (sessions, CSRF, login throttling, cookies) lives here.

pub mod api;
pub mod auth;
pub mod error;
pub mod http;
pub mod i18n;
pub mod i18n_notify;
pub mod metrics;
pub mod notify_api;
pub mod pages;
pub mod platform_api;
pub mod server;
pub mod state;

pub use server::{Server, router};
pub use state::{AppState, WebConfig};
