//! `safegpt`: the SafeGPT user directory with Azure User Sync — the CLI and the web (admin
//! pages and REST API), two adapters over the application layer (`safegpt_app`). The binary
//! in `main.rs` only parses arguments and sets up logging.

pub mod cli;
pub mod config;
pub mod web;
