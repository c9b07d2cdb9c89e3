//! The project's own adversarial tests: what a hostile user, a careless administrator and a
//! hostile network would try, each against the real server, graph-sim and database in this
//! process (127.0.0.1, port 0), with real concurrency. `docs/security.md` maps every threat
//! to its test here. `.ci/run` runs them on SQLite and on PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod common;
mod edges;
mod entra_input;
mod held_runs;
mod logins;
mod secrets;
mod tokens;
