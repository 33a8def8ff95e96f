#!/usr/bin/env bash
# The simulator's fidelity suite with a second unchanged client: jsforce (pinned in package.json and
# package-lock.json), run with node:test against the sfsim binary over HTTPS.
#
#   tests/sfsim/fidelity/jsforce/run.sh [node --test options]
#
# jsforce comes from the npm registry into a cache (FORCELINK_JSFORCE_HOME, default
# ~/.cache/forcelink-jsforce; `npm ci` from the committed lock file, about 10 s and 100 MB the first
# time) and is reused while the lock file is unchanged. The simulator binary is SFSIM_BIN (default
# $CARGO_TARGET_DIR/debug/sfsim, built by `cargo build -p sfsim`); it starts on free ports with a
# fresh CA, which Node trusts through NODE_EXTRA_CA_CERTS, and is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
js_home=${FORCELINK_JSFORCE_HOME:-$HOME/.cache/forcelink-jsforce}
sfsim_bin=${SFSIM_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/sfsim}

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "error: node and npm not found; install Node.js 18 or newer" >&2
    exit 1
fi
if [[ ! -x $sfsim_bin ]]; then
    echo "error: no simulator at $sfsim_bin (cargo build -p sfsim, or set SFSIM_BIN)" >&2
    exit 1
fi

# jsforce, once per lock file
mkdir -p "$js_home"
if ! cmp -s "$here/package-lock.json" "$js_home/package-lock.json" || [[ ! -d $js_home/node_modules/jsforce ]]; then
    start=$(date +%s)
    cp "$here/package.json" "$here/package-lock.json" "$js_home/"
    (cd "$js_home" && npm ci --no-audit --no-fund --loglevel=error)
    echo "installed jsforce $(node -p "require('$js_home/node_modules/jsforce/package.json').version") in $(($(date +%s) - start)) s"
fi

# the simulator
work=$(mktemp -d)
sim_pid=
cleanup() {
    if [[ -n $sim_pid ]]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
"$sfsim_bin" --https-port 0 --http-port 0 --ca-dir "$work/ca" --info-file "$work/info.json" --seed 7 >"$work/sfsim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 300); do
    [[ -s $work/info.json ]] && break
    if ! kill -0 "$sim_pid" 2>/dev/null; then
        cat "$work/sfsim.log" >&2
        echo "error: sfsim exited" >&2
        exit 1
    fi
    sleep 0.1
done
[[ -s $work/info.json ]] || { echo "error: sfsim did not start" >&2; exit 1; }
sleep 0.05
ca=$(node -p "require('$work/info.json').urls.ca_pem_path")
[[ $ca == /* ]] || ca="$PWD/$ca"

# ES modules resolve jsforce next to the test file: run a copy beside a link to the cache
export NODE_EXTRA_CA_CERTS="$ca" SFSIM_INFO="$work/info.json" NODE_NO_WARNINGS=1
ln -s "$js_home/node_modules" "$work/node_modules"
cp "$here/package.json" "$here/sfsim.test.mjs" "$work/"
node --test "$@" "$work/sfsim.test.mjs"
