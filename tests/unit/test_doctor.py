"""`k8snet doctor`: the decisions of each check, and the real command as root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8snet import doctor, hosttools
from k8snet.doctor import Check
from k8snet.lab.lifecycle import LabStatus


def test_versions_are_read_from_any_kubectl_spelling():
    assert doctor.minor_version("v1.37.1") == (1, 37)
    assert doctor.minor_version("1.32+") == (1, 32)
    assert doctor.minor_version("v1.32.4-dispatcher") == (1, 32)
    assert doctor.minor_version("dev") is None
    assert doctor.minor_skew("v1.38.0", "v1.37.1") == 1
    assert doctor.minor_skew("v1.32.4", "v1.37.1") == -5
    assert doctor.minor_skew("v2.0.0", "v1.37.1") is None


def test_python_client_major_is_the_kubernetes_minor():
    assert doctor.python_client_kubernetes_version("37.0.2") == "1.37"
    assert doctor.python_client_kubernetes_version("garbage") is None


def test_verdicts_and_exit_rule():
    ok, warn, fail = Check("a", True, ""), Check("b", False, "", warn=True), Check("c", False, "")
    assert [c.verdict for c in (ok, warn, fail)] == ["ok", "warn", "FAIL"]
    assert doctor.passed([ok, warn]) and not doctor.passed([ok, warn, fail])


def test_platform_and_root():
    assert doctor.platform_check("linux").ok
    assert doctor.platform_check("darwin").verdict == "FAIL"
    assert doctor.root_check(0).ok
    normal = doctor.root_check(1000)
    assert normal.verdict == "warn" and "sudo k8snet lab up" in normal.fix


def test_kernel_checks_as_a_normal_user_are_warnings_and_touch_nothing():
    checks = doctor.kernel_checks("linux", 1000, 4242)
    assert [c.name for c in checks] == list(doctor.KERNEL_CHECKS)
    assert all(c.verdict == "warn" and "needs root" in c.detail for c in checks)
    assert not Path("/run/netns", doctor.doctor_netns_name(4242)).exists()


def test_missing_host_tools_name_the_packages_to_install():
    missing = [hosttools.HostTool("nft", "nftables", "x"), hosttools.HostTool("ss", "iproute2", "y"),
               hosttools.HostTool("ip", "iproute2", "z")]
    check = doctor.host_tools_check(missing)
    assert check.verdict == "FAIL" and "nft (nftables)" in check.detail
    assert check.fix.endswith("sudo apt-get install -y nftables iproute2)") and "scripts/setup.sh" in check.fix
    assert doctor.host_tools_check([]).ok


@pytest.fixture()
def kit(tmp_path: Path) -> Path:
    path = tmp_path / ".venv" / "bin" / "kubectl"
    path.parent.mkdir(parents=True)
    path.write_text("")
    return path


def test_kubectl_the_kits_within_skew_is_ok(kit):
    check = doctor.kubectl_check(str(kit), kit, "v1.37.1", "v1.37.1")
    assert check.ok and "(the kit's)" in check.detail and str(kit) in check.detail


def test_kubectl_another_within_skew_is_a_warning_naming_both(kit):
    check = doctor.kubectl_check("/usr/bin/kubectl", kit, "v1.36.0", "v1.37.1")
    assert check.verdict == "warn" and "/usr/bin/kubectl" in check.detail and str(kit) in check.detail
    assert check.fix == f"export PATH={kit.parent}:$PATH"


def test_kubectl_outside_the_skew_policy_fails(kit):
    check = doctor.kubectl_check("/usr/bin/kubectl", kit, "v1.32.4-dispatcher", "v1.37.1")
    assert check.verdict == "FAIL" and "one minor" in check.detail
    assert doctor.kubectl_check(str(kit), kit, "v1.39.0", "v1.37.1").verdict == "FAIL"


def test_kubectl_under_sudo_says_whose_path_it_saw(kit):
    check = doctor.kubectl_check("/usr/bin/kubectl", kit, "v1.32.4", "v1.37.1", under_sudo=True)
    assert check.verdict == "warn" and "sudo's PATH" in check.detail
    assert "sudo's PATH" not in doctor.kubectl_check(str(kit), kit, "v1.37.1", "v1.37.1", under_sudo=True).detail


def test_kubectl_absent_or_silent_fails(kit, tmp_path):
    assert doctor.kubectl_check(None, kit, None, "v1.37.1").fix == f"export PATH={kit.parent}:$PATH"
    no_kit = doctor.kubectl_check(None, tmp_path / "nowhere" / "kubectl", None, "v1.37.1")
    assert no_kit.verdict == "FAIL" and "setup.sh" in no_kit.fix
    assert doctor.kubectl_check(str(kit), kit, None, "v1.37.1").verdict == "FAIL"


def test_python_client_version_against_the_lab():
    assert doctor.python_client_check("37.0.2", "v1.37.1").ok
    old = doctor.python_client_check("31.0.0", "v1.37.1")
    assert old.verdict == "FAIL" and "Kubernetes 1.31" in old.detail
    assert doctor.python_client_check(None, "v1.37.1").verdict == "FAIL"


def test_environment_must_be_the_checkouts_venv(tmp_path):
    venv = tmp_path / ".venv"
    venv.mkdir()
    assert doctor.environment_check(str(venv), "/usr", f"{venv}/bin/python", venv).ok
    system = doctor.environment_check("/usr", "/usr", "/usr/bin/python3", venv)
    assert system.verdict == "FAIL" and "system Python" in system.detail and "setup.sh" in system.fix
    other = doctor.environment_check("/opt/other", "/usr", "/opt/other/bin/python", venv)
    assert other.verdict == "FAIL" and "/opt/other" in other.detail


def test_labs_crashed_ones_are_a_warning_with_the_down_command():
    ready = LabStatus("one", "Ready", "https://127.0.0.1:4443", None, 1)
    crashed = LabStatus("two", "Crashed", None, None, 2)
    assert doctor.labs_check([], Path("/x")).detail == "none under /x"
    assert doctor.labs_check([ready], Path("/x")) == Check("labs", True, "one Ready (https://127.0.0.1:4443)")
    check = doctor.labs_check([ready, crashed], Path("/x"))
    assert check.verdict == "warn" and check.fix == "sudo k8snet lab down --name two"


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0,
                    reason="the kernel checks need root on Linux; CI runs as root")
def test_doctor_as_root_passes_and_leaves_no_namespace():
    """The real command on this machine (CI: root, setup.sh done, the kit's kubectl first on PATH)."""
    out = subprocess.run([sys.executable, "-m", "k8snet", "doctor"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for name in ("root", *doctor.KERNEL_CHECKS, "host tools", "kubectl", "kubernetes client", "Python environment"):
        assert any(line.startswith("ok") and f"  {name}  " in line for line in lines), (name, out.stdout)
    assert not [n for n in os.listdir("/run/netns") if n.startswith("k8snet-doctor-")]
