#!/usr/bin/env bash
# Outbound-message benchmarks (figures go to BENCHMARKS.md, "Outbound messages").
#
#   bash infra/bench/outbound.sh
#
# 1. criterion: parse + validate of a 100-notification message beside raw quick-xml
#    tokenization (namespaces resolved) of the same bytes;
# 2. Ack latency p50/p99 and notifications/s through `forcelink dev` over HTTP (embedded store,
#    release build, one sequential client, 1 and 100 notifications per message).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/forcelink-target}
cargo bench -p outbound-webhook --bench parse
cargo test --release -p forcelink-cli --test outbound -- --ignored --nocapture ack_latency
