#!/usr/bin/env bash
# AWS calls and sequential round trips per unit of work, on moto with the Salesforce simulator
# (infra/cli/examples/aws_calls.rs). Starts moto on a free port unless FORCELINK_TEST_MOTO_URL
# names a running one; prints a Markdown table.
#   bash infra/bench/aws_calls.sh [LATENCY_MS=20] [REPS=3]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
export AWS_CALLS_LATENCY_MS=${1:-20} AWS_CALLS_REPS=${2:-3}
venv=${FORCELINK_VENV:-$HOME/.cache/forcelink-venv}
cargo build -q -p forcelink-cli --example aws_calls
if [[ -z ${FORCELINK_TEST_MOTO_URL:-} ]]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$venv/bin/python" infra/testing/moto_serial_dynamodb.py 127.0.0.1 "$port" >/dev/null 2>&1 &
    moto=$!
    trap 'kill "$moto" 2>/dev/null; wait 2>/dev/null' EXIT
    FORCELINK_TEST_MOTO_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do curl -sf "$FORCELINK_TEST_MOTO_URL/moto-api/" >/dev/null && break; sleep 0.1; done
fi
export AWS_ENDPOINT_URL=$FORCELINK_TEST_MOTO_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 RUST_LOG=error
"$CARGO_TARGET_DIR/debug/examples/aws_calls"
