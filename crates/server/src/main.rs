//! `safegpt`: the SafeGPT user directory with Azure User Sync.

use std::process::ExitCode;

use clap::Parser;
use safegpt::cli::{Cli, exit};
use safegpt::commands;
use tracing_subscriber::EnvFilter;

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
