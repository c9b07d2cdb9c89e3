//! The command line: `safegpt …`. Each command parses its flags, calls one operation of the
//! application (`safegpt_app::App`) and prints its result; errors become exit codes in
//! [`exit`].

pub mod args;
pub mod commands;
pub mod demo;
pub mod exit;
pub mod notify;
pub mod serve;

pub use args::{Cli, Command};
pub use commands::run;
pub use exit::Failure;
