"""Starts the sfsim binary on free ports for the fidelity suite."""
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests


def _bin():
    default = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "debug" / "sfsim"
    return os.environ.get("SFSIM_BIN", str(default))


@pytest.fixture(scope="session")
def sim():
    tmp = Path(tempfile.mkdtemp(prefix="sfsim-fidelity-"))
    info_file = tmp / "info.json"
    proc = subprocess.Popen(
        [_bin(), "--https-port", "0", "--http-port", "0", "--ca-dir", str(tmp / "ca"),
         "--info-file", str(info_file), "--seed", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 30
        while not info_file.exists() or info_file.stat().st_size == 0:
            if proc.poll() is not None:
                raise RuntimeError(f"sfsim exited: {proc.stderr.read().decode()}")
            if time.time() > deadline:
                raise RuntimeError("sfsim did not start")
            time.sleep(0.05)
        time.sleep(0.05)
        info = json.loads(info_file.read_text())
        os.environ["REQUESTS_CA_BUNDLE"] = info["urls"]["ca_pem_path"]
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def admin(sim):
    base = sim["urls"]["https"] + "/_sim"

    class Admin:
        def get(self, path):
            r = requests.get(base + path)
            r.raise_for_status()
            return r.json()

        def post(self, path, body=None, method="POST"):
            r = requests.request(method, base + path, json=body if body is not None else {})
            r.raise_for_status()
            return r.json()

    return Admin()
