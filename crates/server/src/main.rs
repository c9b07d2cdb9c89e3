//! `safegpt`: the SafeGPT user directory with Azure User Sync.

mod cli;
mod commands;
mod views;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, exit};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr so that --json output on stdout stays machine-readable.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SAFEGPT_LOG").unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("safegpt: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("safegpt: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
