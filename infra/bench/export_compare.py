#!/usr/bin/env python3
"""The baseline for the export benchmark: a plain simple-salesforce script doing forcelink's
job (upsert Learning_Result__c records by External_Id__c) against the Salesforce simulator, once
record by record (`sf.Learning_Result__c.upsert('External_Id__c/KEY', {...})`) and once with Bulk
API 2.0 (`sf.bulk2.Learning_Result__c.upsert(records=..., external_id_field=...)`).

API calls are read from the simulator's counter (`api_used`, the calls counted against the org's
daily limit; the SOAP login is not counted), reset before each run. Prints JSON on stdout:

    {"per_record": {"events": N, "calls": C, "seconds": S}, "bulk2": {...}}

Usually run by `cargo run --release -p export-pusher --example export_bench` (infra/bench/export.sh),
which starts the simulator and passes --url, --ca and --org. Alone, against `forcelink sim`:

    REQUESTS_CA_BUNDLE=.sfsim/ca.pem python infra/bench/export_compare.py \
        --url https://127.0.0.1:8443 --ca .sfsim/ca.pem --events 10000
"""

import argparse
import json
import os
import sys
import time
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the simulator's HTTPS base URL")
    p.add_argument("--ca", required=True, help="the simulator's CA (PEM)")
    p.add_argument("--org", default="acme", help="org id or name in the simulator")
    p.add_argument("--username", default="admin@acme.example")
    p.add_argument("--password", default="password")
    p.add_argument("--token", default="TOKEN", help="security token")
    p.add_argument("--events", type=int, default=10_000, help="records for the bulk2 run")
    p.add_argument("--per-record-events", type=int, default=None, help="records for the per-record run (default --events)")
    p.add_argument("--bulk-wait", type=int, default=1, help="bulk2 poll interval, seconds (the library's default is 5)")
    a = p.parse_args()
    os.environ["REQUESTS_CA_BUNDLE"] = a.ca
    base = a.url.rstrip("/")
    host = urlparse(base).netloc
    admin = requests.Session()
    admin.verify = a.ca

    def reset() -> None:
        admin.post(f"{base}/_sim/orgs/{a.org}/calls/reset", timeout=30).raise_for_status()

    def used() -> int:
        r = admin.get(f"{base}/_sim/orgs/{a.org}/calls", timeout=30)
        r.raise_for_status()
        return int(r.json().get("api_used", 0))

    def records(prefix: str) -> dict:
        r = admin.get(f"{base}/_sim/orgs/{a.org}/records/Learning_Result__c", timeout=120)
        r.raise_for_status()
        out = {}
        for rec in r.json():
            key = rec.get("External_Id__c") or ""
            if key.startswith(prefix):
                if key in out:
                    raise SystemExit(f"duplicate record for {key}")
                out[key] = rec
        return out

    # `domain` is formatted into https://{domain}.salesforce.com: the simulator takes the
    # leading path segment as the host (see tests/sfsim/README.md).
    sf = Salesforce(username=a.username, password=a.password, security_token=a.token, domain=f"{host}/login")

    def record(i: int) -> dict:
        return {
            "Score__c": i % 100,
            "Course__c": f"course py_{i}",
            "Completed_At__c": "2026-03-01T10:00:00Z",
            "Completed__c": True,
        }

    result = {}
    n = a.per_record_events if a.per_record_events is not None else a.events
    reset()
    t0 = time.perf_counter()
    for i in range(n):
        sf.Learning_Result__c.upsert(f"External_Id__c/py_{i}", record(i))
    took = time.perf_counter() - t0
    result["per_record"] = {"events": n, "calls": used(), "seconds": took}
    got = records("py_")
    if len(got) != n:
        raise SystemExit(f"per-record: {len(got)} records for {n} events")
    print(f"simple-salesforce per-record upsert: {n} records, {result['per_record']['calls']} calls, {took:.1f} s", file=sys.stderr)

    rows = []
    for i in range(a.events):
        r = record(i)
        r["External_Id__c"] = f"py_{i}"
        r["Completed__c"] = "true"
        rows.append({k: str(v) for k, v in r.items()})
    reset()
    t0 = time.perf_counter()
    answer = sf.bulk2.Learning_Result__c.upsert(records=rows, external_id_field="External_Id__c", wait=a.bulk_wait)
    took = time.perf_counter() - t0
    result["bulk2"] = {"events": a.events, "calls": used(), "seconds": took}
    done = sum(int(j.get("numberRecordsProcessed", 0)) - int(j.get("numberRecordsFailed", 0)) for j in answer)
    if done != a.events or len(records("py_")) != max(n, a.events):
        raise SystemExit(f"bulk2: {done} rows done for {a.events} events: {answer}")
    print(f"simple-salesforce bulk2 upsert: {a.events} records, {result['bulk2']['calls']} calls, {took:.1f} s", file=sys.stderr)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
