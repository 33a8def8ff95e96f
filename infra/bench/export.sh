#!/usr/bin/env bash
# Export benchmarks (figures go to BENCHMARKS.md, "Export"), in one run against one simulator:
#
#   bash infra/bench/export.sh [EVENTS]
#
# forcelink's continuous export (one event per SQS message, batches of up to 200) and
# historical export (Bulk API 2.0), beside a plain simple-salesforce script doing the same job
# (per-record upsert and bulk2 upsert): Salesforce API calls per 10,000 events and wall time;
# then event-to-Salesforce latency p50/p99 through the dev stack's feeder (1 s batching window).
#
# PYTHON: an interpreter with simple-salesforce (default ~/.cache/forcelink-venv/bin/python).
# FORCELINK_BENCH_RATE / FORCELINK_BENCH_SECS: the latency run's events per second and length.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/forcelink-target}
export FORCELINK_BENCH_EVENTS=${1:-${FORCELINK_BENCH_EVENTS:-10000}}
export FORCELINK_BENCH_PYTHON=${PYTHON:-$HOME/.cache/forcelink-venv/bin/python}
if ! "$FORCELINK_BENCH_PYTHON" -c 'import simple_salesforce' 2>/dev/null; then
    echo "error: $FORCELINK_BENCH_PYTHON has no simple-salesforce (pip install simple-salesforce==1.12.10)" >&2
    exit 2
fi
export RUST_LOG=${RUST_LOG:-warn}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
cargo run --release -q -p export-pusher --example export_bench
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
