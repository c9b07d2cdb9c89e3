//! `safegpt`: the SafeGPT user directory with Azure User Sync.

use std::process::ExitCode;

use safegpt::cli::{self, exit};
use safegpt::config;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match config::parse() {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("safegpt: {message}");
            return ExitCode::from(exit::INVALID);
        }
    };
    // Logs go to stderr so that --json output on stdout stays machine-readable.
    let filter = config::setting("SAFEGPT_LOG")
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config::setting("SAFEGPT_LOG_FORMAT").as_deref() {
        Some("json") => logs.json().with_current_span(true).with_span_list(false).init(),
        Some("text") | None => logs.init(),
        Some(other) => {
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
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("safegpt: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
