//! PostgreSQL over TLS: the store honours `sslmode` and `sslrootcert` in its database URL.
//!
//! Runs only with `SAFEGPT_TEST_PG_TLS_CA` naming the CA that signed the server's certificate
//! (for `localhost`); `scripts/test.sh` makes both. The server is the one of
//! `SAFEGPT_TEST_DATABASE_URL`, or the local one the script sets up.

use safegpt_store::testing::TEST_DATABASE_URL_ENV;
use safegpt_store::{Sealer, Store};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Executor};
use uuid::Uuid;

const TLS_CA_ENV: &str = "SAFEGPT_TEST_PG_TLS_CA";
const DEFAULT_SERVER: &str = "postgres://safegpt_test:safegpt_test@127.0.0.1:5432/postgres";

/// The test CA, or `None` when the server was not set up for TLS and the test is skipped.
fn tls_ca() -> Option<String> {
    let ca = std::env::var(TLS_CA_ENV).ok();
    if ca.is_none() {
        eprintln!("skipped: {TLS_CA_ENV} is not set");
    }
    ca
}

/// A fresh database (Store::open migrates it, and tests must not share rows), created over the
/// plain URL so that only the connections under test depend on TLS. Its URL has host
/// `localhost`, the name in the server's certificate, and `params` as the only query.
async fn fresh_database(params: &str) -> String {
    let server = std::env::var(TEST_DATABASE_URL_ENV)
        .ok()
        .filter(|url| url.starts_with("postgres"))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    // The `safegpt_test_` prefix lets scripts/test.sh drop it on the next run.
    let name = format!("safegpt_test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&server).await.expect("connect to the test server");
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create a test database");
    conn.close().await.expect("disconnect");
    // postgres://USER:PASSWORD@HOST[:PORT]/DATABASE[?QUERY]: keep the credentials and the port.
    let (credentials, rest) = server.rsplit_once('@').expect("a URL with user and password");
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let port = authority.rsplit_once(':').map(|(_, port)| port).filter(|port| port.parse::<u16>().is_ok());
    let port = port.unwrap_or("5432");
    format!("{credentials}@localhost:{port}/{name}?{params}")
}

fn sealer() -> Sealer {
    Sealer::from_key([42; 32])
}

/// Asserts that every connection to the database of `url` is encrypted: a new one made with
/// `url` and the ones the store's pool keeps open (which pg_stat_ssl sees from the server side).
async fn assert_all_encrypted(url: &str) {
    let mut conn = PgConnection::connect(url).await.expect("connect with the same URL");
    let (all, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .expect("read pg_stat_ssl");
    assert!(all >= 2, "expected this connection and the store's, found {all}");
    assert_eq!(encrypted, all, "unencrypted connections to {url}");
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_opens_an_encrypted_store() {
    let Some(ca) = tls_ca() else { return };
    let url = fresh_database(&format!("sslmode=verify-full&sslrootcert={ca}")).await;
    let store = Store::open(&url, sealer()).await.expect("open over verified TLS");
    store.settings().await.expect("read over TLS");
    assert_all_encrypted(&url).await;
}

#[tokio::test]
async fn verify_full_refuses_a_server_signed_by_an_untrusted_ca() {
    if tls_ca().is_none() {
        return;
    }
    // Without sslrootcert only the system's roots are trusted, and none signed the test CA.
    let url = fresh_database("sslmode=verify-full").await;
    let err = Store::open(&url, sealer()).await.expect_err("the server's certificate must not verify").to_string();
    // The operator must learn that the certificate is at fault, not just that connecting failed.
    assert!(err.contains("certificate"), "unhelpful error: {err}");
}

#[tokio::test]
async fn require_encrypts_without_verifying() {
    if tls_ca().is_none() {
        return;
    }
    let url = fresh_database("sslmode=require").await;
    let store = Store::open(&url, sealer()).await.expect("open over unverified TLS");
    store.settings().await.expect("read over TLS");
    assert_all_encrypted(&url).await;
}
