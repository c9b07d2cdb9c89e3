#!/usr/bin/env bash
# Installs what the tests need and runs every test: formatting, lints, the Rust test suite
# (unit, property and integration tests against graph-sim on 127.0.0.1, and the alert and
# webhook tests against aiosmtpd and a receiver verifying with the Standard Webhooks library), the conformance
# test of Microsoft's Python SDK against graph-sim, and the browser tests of the admin UI in
# Debian's Chromium. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Toolchain"
cargo --version
missing=()
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    step "Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "Python venv with Microsoft's SDK (msal, azure-identity, msgraph-sdk)"
VENV=.venv-sdk
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk-conformance/requirements.txt

step "Python venv with schemathesis (API fuzzing)"
FUZZ_VENV=.venv-fuzz
if [ ! -x "$FUZZ_VENV/bin/python" ]; then
    python3 -m venv "$FUZZ_VENV"
fi
"$FUZZ_VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/fuzz/requirements.txt

step "Python venv with aiosmtpd and the Standard Webhooks library (alert and webhook tests)"
NOTIFY_VENV=.venv-notify
if [ ! -x "$NOTIFY_VENV/bin/python" ]; then
    python3 -m venv "$NOTIFY_VENV"
fi
"$NOTIFY_VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/notify/requirements.txt
export SAFEGPT_TEST_NOTIFY_PYTHON="$PWD/$NOTIFY_VENV/bin/python"

step "PostgreSQL: start the cluster, a role for the tests"
if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
    read -r PG_VERSION PG_CLUSTER _ < <(pg_lsclusters -h | head -n 1)
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
fi
for _ in $(seq 50); do su postgres -c "psql -qAtc 'SELECT 1'" >/dev/null 2>&1 && break; sleep 0.2; done
su postgres -c "psql -qAtc \"SELECT 1 FROM pg_roles WHERE rolname = 'safegpt_test'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE ROLE safegpt_test LOGIN CREATEDB PASSWORD 'safegpt_test'\""
# Each test creates its own database there; drop those of earlier runs.
su postgres -c "psql -qAtc \"SELECT datname FROM pg_database WHERE datname LIKE 'safegpt_test_%'\"" |
    while read -r db; do su postgres -c "dropdb --if-exists '$db'" < /dev/null; done
PG_TEST_URL=postgres://safegpt_test:safegpt_test@127.0.0.1:5432/postgres
# TLS with a test CA, so the tests can connect with sslmode=verify-full (crates/store/tests/tls.rs).
# Regenerated only when missing, or when the server certificate no longer verifies against the CA.
PG_TLS=target/pg-tls
mkdir -p "$PG_TLS"
if ! openssl verify -CAfile "$PG_TLS/ca.pem" "$PG_TLS/server.pem" >/dev/null 2>&1; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=SafeGPT test CA" \
        -keyout "$PG_TLS/ca.key" -out "$PG_TLS/ca.pem"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$PG_TLS/server.key" -out "$PG_TLS/server.csr"
    openssl x509 -req -in "$PG_TLS/server.csr" -CA "$PG_TLS/ca.pem" -CAkey "$PG_TLS/ca.key" -CAcreateserial \
        -days 825 -out "$PG_TLS/server.pem" \
        -extfile <(printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n')
fi
# PostgreSQL refuses a key that others can read; the postgres user must own it.
PG_TLS_SERVER=/var/lib/postgresql/safegpt-test-tls
install -d -o postgres -g postgres -m 0700 "$PG_TLS_SERVER"
install -o postgres -g postgres -m 0644 "$PG_TLS/server.pem" "$PG_TLS_SERVER/server.pem"
install -o postgres -g postgres -m 0600 "$PG_TLS/server.key" "$PG_TLS_SERVER/server.key"
# On stdin psql sends each statement alone: ALTER SYSTEM refuses the transaction `psql -c 'A; B'` makes.
su postgres -c "psql -qX -v ON_ERROR_STOP=1" >/dev/null <<SQL
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$PG_TLS_SERVER/server.pem';
ALTER SYSTEM SET ssl_key_file = '$PG_TLS_SERVER/server.key';
SELECT pg_reload_conf();
SQL
export PG_TLS_CA="$PWD/$PG_TLS/ca.pem"
# The reload is asynchronous: wait until a verified connection works, and fail here if it never does.
for i in $(seq 50); do
    psql "host=localhost port=5432 user=safegpt_test password=safegpt_test dbname=postgres sslmode=verify-full sslrootcert=$PG_TLS_CA" \
        -qAtXc 'SELECT 1' >/dev/null 2>&1 && break
    [ "$i" -lt 50 ] || { echo "PostgreSQL does not serve TLS with the test certificate" >&2; exit 1; }
    sleep 0.2
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (SQLite)"
cargo test --workspace --locked

step "cargo test (PostgreSQL)"
SAFEGPT_TEST_DATABASE_URL="$PG_TEST_URL" SAFEGPT_TEST_PG_TLS_CA="$PG_TLS_CA" cargo test --workspace --locked

step "Microsoft SDK conformance against graph-sim"
cargo build --locked -p graph-sim --bin graph-sim
# CA-bundle variables would override MSAL's transport settings (graph-wire.md §5.7).
env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE "$VENV/bin/python" tests/sdk-conformance/conformance.py target/debug/graph-sim

step "Browser tests: the seed's steps 4-5 in Chromium (playwright-core, no downloaded browser)"
cargo build --locked -p safegpt --bin safegpt
(
    cd tests/browser
    npm ci --no-audit --no-fund --loglevel=error
    CHROMIUM="$(command -v chromium)" node --test --test-concurrency=1 seed.test.js
)
echo "Screenshots: tests/browser/screenshots/"

step "REST API fuzzing from the OpenAPI document (schemathesis), on SQLite"
bash tests/fuzz/run.sh target/debug "$FUZZ_VENV"

step "REST API fuzzing, on PostgreSQL"
su postgres -c "dropdb --if-exists safegpt_fuzz && createdb -O safegpt_test safegpt_fuzz" < /dev/null
SAFEGPT_DATABASE_URL="${PG_TEST_URL%/postgres}/safegpt_fuzz" bash tests/fuzz/run.sh target/debug "$FUZZ_VENV"

step "All tests passed"
