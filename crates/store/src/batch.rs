//! Multi-row statements: one `INSERT … VALUES (…), (…), …` per chunk instead of one
//! statement per row, which is what makes applying 100,000 changes take a second rather
//! than twenty. PostgreSQL gets `$N` placeholders; SQLite gets `?`, because SQLite looks up
//! the name of a numbered parameter by walking a list, which makes binding N named
//! parameters cost N² (a 100,000-user apply took 100 s with `$N` and large batches).

use std::fmt::Write;

use sqlx::{Any, AssertSqlSafe, Transaction};

use crate::{Backend, Result};

/// Below SQLite's (32766) and PostgreSQL's (65535) limits on bound parameters.
const MAX_BINDS: usize = 30_000;

/// How many values one multi-row statement binds. SQLite compiles a statement into a
/// program that grows with its parameters and sqlx keeps each distinct statement compiled
/// per connection: at 30,000 parameters those programs held 22 MB of a 100,000-user full
/// read's 95 MB heap. 8,000 took 2 MB and was as fast (2,000 was slower).
fn binds_per_statement(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 8_000,
        Backend::Postgres => MAX_BINDS,
    }
}

fn placeholder(backend: Backend, sql: &mut String, n: usize) {
    match backend {
        Backend::Sqlite => sql.push('?'),
        Backend::Postgres => {
            let _ = write!(sql, "${n}");
        }
    }
}

/// One bound value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(i64),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

/// `head` is `INSERT INTO t (a, b) VALUES`, `tail` what follows the rows (e.g. `ON CONFLICT …`);
/// every row has `columns` values. The rows are consumed: their values move into the
/// statement instead of being copied.
pub(crate) async fn insert_rows(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    head: &str,
    tail: &str,
    columns: usize,
    rows: Vec<Vec<Arg>>,
) -> Result<()> {
    let per_statement = (binds_per_statement(backend) / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Arg>> = rows.by_ref().take(per_statement).collect();
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * columns * 6);
        sql.push_str(head);
        let mut n = 1;
        for (i, row) in chunk.iter().enumerate() {
            debug_assert_eq!(row.len(), columns);
            sql.push_str(if i == 0 { " (" } else { ", (" });
            for c in 0..columns {
                if c > 0 {
                    sql.push_str(", ");
                }
                placeholder(backend, &mut sql, n);
                n += 1;
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        // A full chunk's statement comes back for the next chunk; the last, shorter one
        // is not worth keeping compiled.
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == per_statement);
        for arg in chunk.into_iter().flatten() {
            query = match arg {
                Arg::Text(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
            };
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// How many ids one `… IN (…)` statement takes (the organisation is the first parameter).
pub(crate) const IN_CHUNK: usize = MAX_BINDS - 1;

/// `{head} org_id = $1 AND {column} IN ($2, …) {tail}` for `n` ids. Its text changes with
/// `n`, so callers do not keep it compiled (`persistent(false)`).
pub(crate) fn org_and_in(backend: Backend, head: &str, column: &str, n: usize, tail: &str) -> String {
    let mut sql = format!("{head} org_id = ");
    placeholder(backend, &mut sql, 1);
    let _ = write!(sql, " AND {column} IN (");
    for i in 2..n + 2 {
        if i > 2 {
            sql.push_str(", ");
        }
        placeholder(backend, &mut sql, i);
    }
    sql.push_str(") ");
    sql.push_str(tail);
    sql
}

/// `DELETE FROM t WHERE org_id = $1 AND {column} IN (…)`, chunked.
pub(crate) async fn delete_where_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    table: &str,
    column: &str,
    org: &str,
    ids: &[String],
) -> Result<()> {
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = org_and_in(backend, &format!("DELETE FROM {table} WHERE"), column, chunk.len(), "");
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false).bind(org.to_owned());
        for id in chunk {
            query = query.bind(id.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `DELETE FROM t WHERE org_id = $1 AND id IN (…)`, chunked.
pub(crate) async fn delete_ids(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    table: &str,
    org: &str,
    ids: &[String],
) -> Result<()> {
    delete_where_in(tx, backend, table, "id", org, ids).await
}
