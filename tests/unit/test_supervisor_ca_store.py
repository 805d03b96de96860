"""The supervisor imports aiohttp without the system's CA store, and puts
SSL_CERT_FILE back afterwards for the processes it starts (supervisor.py, top)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs the module as `python -m k8snet.lab.supervisor` does, with a config that does
# not exist: main() fails reading it, after every import-time step has run.
PROBE = """
import json, os, runpy, sys
sys.argv = ["supervisor", "/nonexistent/config.json"]
try:
    runpy.run_module("k8snet.lab.supervisor", run_name="__main__", alter_sys=True)
except (FileNotFoundError, SystemExit):
    pass
import aiohttp.connector
print(json.dumps({"after": os.environ.get("SSL_CERT_FILE"),
                  "cas_at_import": aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"]}))
"""


@pytest.mark.parametrize("before", [None, "/etc/ssl/certs/ca-certificates.crt"])
def test_imports_see_no_ca_store_and_the_variable_is_put_back(before: str | None) -> None:
    env = {"PATH": "/usr/bin:/bin"} | ({"SSL_CERT_FILE": before} if before else {})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"after": before, "cas_at_import": 0}, out.stderr
