//! `safegpt`: the SafeGPT user directory with Azure User Sync.

use std::process::ExitCode;

use clap::Parser;
use safegpt::cli::{Cli, exit};
use safegpt::commands;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr so that --json output on stdout stays machine-readable.
    let filter = EnvFilter::try_from_env("SAFEGPT_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("SAFEGPT_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().with_current_span(true).with_span_list(false).init(),
        Ok("text") | Err(_) => logs.init(),
        Ok(other) => {
            eprintln!("safegpt: SAFEGPT_LOG_FORMAT: '{other}' is not a log format; use text or json");
            return ExitCode::from(exit::INVALID);
        }
    }
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
