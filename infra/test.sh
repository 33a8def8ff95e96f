#!/usr/bin/env bash
# Runs every test forcelink has, on a fresh machine too:
#   formatting, clippy (-D warnings), the whole Rust suite (the AWS backends against moto's
#   server, SMTP against aiosmtpd), the simulator's fidelity suites with simple-salesforce and
#   with jsforce (tests/sfsim/fidelity/jsforce/run.sh, which installs it from npm into
#   ~/.cache/forcelink-jsforce once),
#   the SAM template lint, and the Salesforce metadata check (infra/salesforce/validate.sh,
#   which installs the Salesforce CLI from npm into ~/.cache/forcelink-sf once).
#
# It installs the Python tools it needs into a virtualenv (FORCELINK_VENV, default
# ~/.cache/forcelink-venv), starts moto and aiosmtpd on free loopback ports and stops them on
# exit, failure included. Set CARGO_TARGET_DIR to reuse a build directory.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv=${FORCELINK_VENV:-$HOME/.cache/forcelink-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

step() { printf '\n== %s\n' "$*"; }

step "python tools into $venv"
if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-test.txt

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        if "$venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1 ($2)" >&2
    return 1
}

step "moto and aiosmtpd on loopback"
moto_port=$(free_port)
# moto with DynamoDB requests serialized: real DynamoDB applies a conditional write atomically,
# moto's threaded server does not (see the script).
"$venv/bin/python" infra/testing/moto_serial_dynamodb.py 127.0.0.1 "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
smtp_port=$(free_port)
# aiosmtpd creates the Maildir (with tmp/new/cur) only if the folder does not exist yet.
"$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$work/maildir" >"$work/smtp.log" 2>&1 &
pids+=($!)
wait_port "$moto_port" moto
wait_port "$smtp_port" aiosmtpd
export FORCELINK_TEST_MOTO_URL="http://127.0.0.1:$moto_port"
export FORCELINK_TEST_SMTP="127.0.0.1:$smtp_port"
export FORCELINK_TEST_SMTP_MAILDIR="$work/maildir"
# An independent JOSE library (PyJWT) checks the platform's login tokens.
export FORCELINK_TEST_PYTHON="$venv/bin/python"
echo "moto $FORCELINK_TEST_MOTO_URL, smtp $FORCELINK_TEST_SMTP"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Lambda functions' own configuration: the core without its embedded backends.
cargo clippy --locked -p forcelink --no-default-features --features lambda -- -D warnings
cargo clippy --locked -p link-redirect -p oauth-callback -p outbound-webhook -p export-pusher -p roster-sync --bins -- -D warnings

step "cargo test (whole workspace)"
cargo test --workspace --locked --no-fail-fast

step "browser flows: headless Chromium (infra/browser/run.sh)"
FORCELINK_BIN="$CARGO_TARGET_DIR/debug/forcelink" bash infra/browser/run.sh

step "forcelink demo on the embedded backends, then on the AWS backends (moto, after forcelink aws-bootstrap)"
RUST_LOG=error "$CARGO_TARGET_DIR/debug/forcelink" demo
(
    export AWS_ENDPOINT_URL=$FORCELINK_TEST_MOTO_URL FORCELINK_DATA_DIR=$work/aws-demo
    exports=$("$CARGO_TARGET_DIR/debug/forcelink" aws-bootstrap --prefix "demo-$$")
    eval "$exports"
    FORCELINK_BACKEND=aws RUST_LOG=error "$CARGO_TARGET_DIR/debug/forcelink" demo
)

step "simulator fidelity: simple-salesforce"
export SFSIM_BIN="$CARGO_TARGET_DIR/debug/sfsim"
"$venv/bin/python" -m pytest -q tests/sfsim/fidelity

step "simulator fidelity: jsforce"
bash tests/sfsim/fidelity/jsforce/run.sh

step "SAM template lint"
bash infra/lint-template.sh "$venv"

step "Salesforce metadata (XML checks, sf project convert source)"
bash infra/salesforce/validate.sh

step "all checks passed"
