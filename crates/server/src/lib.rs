//! `safegpt`: the SafeGPT user directory with Azure User Sync — the CLI, the web UI and the
//! REST API. The binary in `main.rs` only parses arguments and sets up logging.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod serve;
pub mod views;
pub mod web;

use cli::exit;

/// A failure of a command, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure { code: exit::INVALID, message: message.into() }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Failure { code: exit::FAILED, message: message.into() }
    }
}

impl From<safegpt_store::StoreError> for Failure {
    fn from(e: safegpt_store::StoreError) -> Self {
        use safegpt_store::StoreError as E;
        match e {
            E::Invalid(_) | E::NotFound(_) | E::Conflict(_) | E::UnsupportedUrl(_) => Failure::invalid(e.to_string()),
            other => Failure::failed(other.to_string()),
        }
    }
}
