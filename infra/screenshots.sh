#!/usr/bin/env bash
# Screenshots of link-redirect's pages (bad links, the fresh-link answer, the scanner page) with
# headless Chromium, into test-artifacts/ (gitignored). Optional in CI: needs `chromium`.
#   bash infra/screenshots.sh            # builds forcelink, starts `forcelink dev` on a free port
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install -y chromium)" >&2; exit 1; }
cargo build -q -p forcelink-cli
bin="$CARGO_TARGET_DIR/debug/forcelink"
out="$repo/test-artifacts"
mkdir -p "$out"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export FORCELINK_PUBLIC_URL="$base" RUST_LOG=warn
fl() { "$bin" --data-dir "$work/data" "$@"; }
cleanup() { [[ -n ${dev:-} ]] && kill "$dev" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

fl apply infra/examples/acme.toml >/dev/null
fl verify acme --email lms-admin@acme.example --timeout 0 >/dev/null
fl dev --no-sim --port "$port" >"$work/dev.log" 2>&1 &
dev=$!
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

user=lms-admin@acme.example
expired=$(fl link acme --user "$user" --target /surveys/onboarding --ttl-secs 1 2>/dev/null)
used=$(fl link acme --user "$user" --target /surveys/onboarding --single-use 2>/dev/null)
good=$(fl link acme --user "$user" --target /surveys/onboarding 2>/dev/null)
curl -s -o /dev/null "$used"
# A link signed by another installation's keys: unknown key.
"$bin" --data-dir "$work/other" apply infra/examples/acme.toml >/dev/null
"$bin" --data-dir "$work/other" verify acme --email "$user" --timeout 0 >/dev/null
foreign=$("$bin" --data-dir "$work/other" link acme --user "$user" --target /x 2>/dev/null)
sleep 2
token=${good##*/}
tampered="$base/l/${token:0:40}$([[ ${token:40:1} == A ]] && echo B || echo A)${token:41}"

# Fetch each page with curl (a person's click; headless Chromium counts as a link scanner),
# then render the saved HTML.
shoot() { # name url [curl args…]
    local name=$1 url=$2; shift 2
    local status
    status=$(curl -s -o "$work/$name.html" -w '%{http_code}' "$@" "$url")
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --user-data-dir="$(mktemp -d)" --screenshot="$out/link-$name.png" \
        --window-size=1000,700 "file://$work/$name.html" >/dev/null 2>&1
    echo "link-$name.png  HTTP $status"
}
shoot expired "$expired"
shoot used "$used"
shoot tampered "$tampered"
shoot malformed "$base/l/abc123"
shoot unknown "$foreign"  # signed by the other installation, same public URL
shoot scanner "$good" -A "Mozilla/5.0 (compatible; BingPreview/1.0b)"
ticket=$(grep -o 'name="ticket" value="[^"]*"' "$work/expired.html" | sed 's/.*value="//; s/"$//')
shoot renewed "$base/l/renew" --data-urlencode "ticket=$ticket"
echo "screenshots in $out"

# oauth-callback's pages (connected and every error page), saved as HTML by its end-to-end
# tests (`cargo test -p oauth-callback --test e2e`) into test-artifacts/oauth-callback/.
if [[ ${SKIP_OAUTH:-0} != 1 ]]; then
    cargo test -q -p oauth-callback --test e2e >/dev/null
    for page in "$out"/oauth-callback/*.html; do
        name=$(basename "$page" .html)
        chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
            --disable-sync --no-first-run --user-data-dir="$(mktemp -d)" --screenshot="$out/oauth-$name.png" \
            --window-size=1000,700 "file://$page" >/dev/null 2>&1
        echo "oauth-$name.png"
    done
fi
