#!/usr/bin/env bash
# Lints the SAM template offline, without AWS credentials.
#
#   infra/lint-template.sh VENV [TEMPLATE]
#
# VENV is a Python virtualenv holding cfn-lint and aws-sam-cli, e.g. made with
#   python3 -m venv .venv-infra && .venv-infra/bin/pip install cfn-lint aws-sam-cli
# TEMPLATE defaults to template.yaml at the repository root.
#
# Four checks, each must pass with no error, warning or informational finding:
#   1. cfn-lint on the template;
#   2. sam validate (the SAM translator's own checks);
#   3. sam validate --lint;
#   4. cfn-lint on the template after the SAM transform, once per parameter set below. cfn-lint
#      on a SAM template misses mistakes inside serverless resources (a bad Architectures or
#      Runtime value, `ReportBatchItemFailure`); on the transformed template they are plain
#      AWS::Lambda::* properties and the schema catches them.
# Exits 0 when clean, 1 on any finding, 2 on bad usage.
set -uo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 VENV [TEMPLATE]" >&2
    exit 2
fi
venv=$1
repo_root=$(cd "$(dirname "$0")/.." && pwd)
template=${2:-$repo_root/template.yaml}
for tool in cfn-lint sam python; do
    if [[ ! -x $venv/bin/$tool ]]; then
        echo "error: $venv/bin/$tool not found; install with: $venv/bin/pip install cfn-lint aws-sam-cli" >&2
        exit 2
    fi
done
if [[ ! -f $template ]]; then
    echo "error: no template at $template" >&2
    exit 2
fi

# Offline and anonymous: no telemetry, no credentials, a fixed region.
export SAM_CLI_TELEMETRY=0 AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

step() {
    local name=$1
    shift
    echo "== $name"
    if "$@" >"$work/out" 2>&1; then
        cat "$work/out"
        echo "   ok"
    else
        cat "$work/out"
        echo "   FAILED: $name" >&2
        failed=1
    fi
}

step "cfn-lint $(basename "$template")" "$venv/bin/cfn-lint" --non-zero-exit-code informational --include-checks I -- "$template"
step "sam validate" "$venv/bin/sam" validate -t "$template" --region us-east-1
step "sam validate --lint" "$venv/bin/sam" validate --lint -t "$template" --region us-east-1

# The SAM transform, done locally with the translator sam ships, then cfn-lint on its output.
# Required parameters get placeholders; each line below is one parameter set (name=value ...).
transform() {
    local out=$1
    shift
    "$venv/bin/python" - "$template" "$out" "$@" <<'PY'
import json, re, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

template_path, out_path, *overrides = sys.argv[1:]
text = open(template_path, encoding="utf-8").read()
# `sam build` replaces local CodeUri paths with S3 locations; do the same with a placeholder.
text = re.sub(r"(?m)^(\s*CodeUri:\s*)\S+\s*$", r"\1s3://forcelink-lint-placeholder/code.zip", text)
params = {
    "PublicUrl": "https://forcelink.example.com",
    "SalesforceClientId": "lint-placeholder-client-id",
    "MailFrom": "forcelink <noreply@example.com>",
}
params.update(kv.split("=", 1) for kv in overrides)

class NoManagedPolicies:
    def load(self):
        return {}

try:
    out = transform(yaml_parse(text), params, NoManagedPolicies())
except Exception as e:  # the translator reports every document error at once
    print(f"SAM transform failed: {e}")
    sys.exit(1)
json.dump(out, open(out_path, "w", encoding="utf-8"), indent=1)
PY
}
param_sets=(
    ""
    "TracingMode=Active FrontDoor=none Architecture=x86_64 SalesforceClientSecretRef=arn:aws:secretsmanager:us-east-1:123456789012:secret:forcelink-AbCdEf SesIdentityArns=arn:aws:ses:us-east-1:123456789012:identity/example.com AlarmTopicArn=arn:aws:sns:us-east-1:123456789012:alarms"
    "CustomDomainName=forcelink.example.com CustomDomainCertificateArn=arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000 RosterSyncState=DISABLED"
)
i=0
for set in "${param_sets[@]}"; do
    i=$((i + 1))
    # shellcheck disable=SC2086 # word splitting of the parameter set is intended
    if transform "$work/transformed-$i.json" $set >"$work/out" 2>&1; then
        step "cfn-lint on the transformed template (parameter set $i${set:+: $set})" \
            "$venv/bin/cfn-lint" --non-zero-exit-code informational --include-checks I -- "$work/transformed-$i.json"
    else
        echo "== SAM transform (parameter set $i)"
        cat "$work/out"
        echo "   FAILED: SAM transform" >&2
        failed=1
    fi
done

if [[ $failed -ne 0 ]]; then
    echo "template lint: FAILED" >&2
    exit 1
fi
echo "template lint: clean"
