//! For tests of every crate: the database a test runs against.
//!
//! Without `SAFEGPT_TEST_DATABASE_URL` a test gets a SQLite file in its own directory. With
//! it set to a PostgreSQL server (`postgres://USER:PASSWORD@HOST/postgres`, a role that may
//! create databases), every call creates a fresh database there: tests run in parallel and
//! must not see each other's rows. `scripts/test.sh` runs the suite both ways.

use std::path::Path;

use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
use uuid::Uuid;

pub const TEST_DATABASE_URL_ENV: &str = "SAFEGPT_TEST_DATABASE_URL";

/// A database URL for one test; call it once per deployment the test needs.
pub async fn test_database_url(dir: &Path) -> String {
    match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(server) if server.starts_with("postgres://") || server.starts_with("postgresql://") => {
            sqlx::any::install_default_drivers();
            let name = format!("safegpt_test_{}", Uuid::new_v4().simple());
            let mut conn = AnyConnection::connect(&server)
                .await
                .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL_ENV}: cannot connect to {server}: {e}"));
            conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create a test database");
            let (base, query) = server.split_once('?').map_or((server.as_str(), None), |(b, q)| (b, Some(q)));
            let root = &base[..base.rfind('/').expect("a database URL has a path")];
            match query {
                Some(q) => format!("{root}/{name}?{q}"),
                None => format!("{root}/{name}"),
            }
        }
        _ => format!("sqlite://{}", dir.join("safegpt.db").display()),
    }
}

/// Every row of every table of a PostgreSQL database as text, to search it for what must
/// never be stored (a SQLite database is searched as files, WAL included).
pub async fn postgres_rows_as_text(url: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.expect("connect to the test database");
    let tables: Vec<(String,)> = sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(&mut conn)
        .await
        .expect("list tables");
    let mut text = String::new();
    for (table,) in tables {
        let rows: Vec<(Option<String>,)> =
            sqlx::query_as(AssertSqlSafe(format!("SELECT string_agg(t::text, E'\\n') FROM \"{table}\" t")))
                .fetch_all(&mut conn)
                .await
                .expect("read a table");
        text.extend(rows.into_iter().filter_map(|(r,)| r));
    }
    text
}

/// Runs `sql` (one or more statements) on the database at `url`: for tests that make the
/// database itself misbehave, such as a trigger refusing writes.
pub async fn execute(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let url =
        if url.starts_with("sqlite:") && !url.contains("mode=") { format!("{url}?mode=rwc") } else { url.to_owned() };
    let mut conn = AnyConnection::connect(&url).await.expect("connect to the test database");
    conn.execute(AssertSqlSafe(sql.to_owned())).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Creates the schema at `url` as it was at migration `version`, for tests of an upgrade:
/// the rows a test writes then are what an older release left.
pub async fn migrate_until(url: &str, version: i64) {
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let url = if sqlite && !url.contains("mode=") { format!("{url}?mode=rwc") } else { url.to_owned() };
    let mut migrator =
        if sqlite { sqlx::migrate!("./migrations/sqlite") } else { sqlx::migrate!("./migrations/postgres") };
    migrator.migrations = migrator.migrations.iter().filter(|m| m.version <= version).cloned().collect();
    let mut conn = AnyConnection::connect(&url).await.expect("connect to the test database");
    migrator.run(&mut conn).await.expect("apply the older migrations");
}
