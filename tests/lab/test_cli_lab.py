"""The real ``k8snet`` command against a real lab: ``lab list --json`` and ``lab status --json``
report what the lab itself reports, and the kubeconfig they name reaches its API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from k8snet.lab import lifecycle


def _k8snet(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8snet", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_list_and_status_json_describe_the_running_lab(lab: lifecycle.LabStatus):
    listed = _k8snet("lab", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [entry for entry in json.loads(listed.stdout) if entry["name"] == lab.name]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["phase"] == "Ready" and entry["server"] == lab.server and entry["pid"] == lab.pid
    assert entry["kubeconfig"] == str(lab.kubeconfig)
    assert entry["details"]["nodes"] == lab.details["nodes"]

    # K8SNET_LAB is the default --name
    status = _k8snet("lab", "status", "--json", K8SNET_LAB=lab.name)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == entry

    # the kubeconfig they name reaches the API server at the address they report
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=entry["kubeconfig"])
    try:
        assert api_client.configuration.host == entry["server"]
        assert client.VersionApi(api_client).get_code().git_version == lifecycle.load_config(lab.name).kubernetes_version
    finally:
        api_client.close()


def test_list_text_has_one_line_for_the_lab(lab: lifecycle.LabStatus):
    out = _k8snet("lab", "list")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}
    assert rows[lab.name] == [lab.name, "Ready", str(len(lab.details["nodes"])),
                              lab.details["proxy_mode"], lab.server]
