#!/usr/bin/env bash
# Load run: redirects per second through the local stack (`forcelink dev`, release build,
# embedded SQLite store) with wrk. Each request verifies the token, reads the site, the user and
# the link's state, and writes a click record.
#   bash infra/bench/links.sh [DURATION=20s] [CONNECTIONS=32] [THREADS=2]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
duration=${1:-20s} connections=${2:-32} threads=${3:-2}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build -q --release -p forcelink-cli
bin="$CARGO_TARGET_DIR/release/forcelink"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export FORCELINK_PUBLIC_URL="$base" RUST_LOG=error
fl() { "$bin" --data-dir "$work/data" "$@"; }
cleanup() { [[ -n ${dev:-} ]] && kill "$dev" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

fl apply infra/examples/acme.toml >/dev/null
fl verify acme --email lms-admin@acme.example --timeout 0 >/dev/null
url=$(fl link acme --user lms-admin@acme.example --target /surveys/onboarding 2>/dev/null)
fl dev --no-sim --port "$port" >"$work/dev.log" 2>&1 &
dev=$!
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
[[ $(curl -s -o /dev/null -w '%{http_code}' "$url") == 302 ]] || { echo "the link does not redirect" >&2; exit 1; }
echo "wrk -t$threads -c$connections -d$duration --latency <link> against forcelink dev (release) on $(nproc) cores"
wrk -t"$threads" -c"$connections" -d"$duration" --latency "$url"
echo "clicks recorded: $(sqlite3 "$work/data/store.db" "select count(*) from items where pk='CLICK#acme'" 2>/dev/null || echo '?')"
