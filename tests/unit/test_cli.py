import subprocess
import sys


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8snet", *args], capture_output=True, text=True, timeout=60)


def test_bad_lab_name_is_a_one_line_error():
    out = _cli("lab", "up", "--name", "Bad_Name")
    assert out.returncode == 1
    assert out.stderr.startswith("k8snet: lab name 'Bad_Name'") and out.stderr.count("\n") == 1


def test_too_many_nodes_is_refused():
    out = _cli("lab", "up", "--nodes", "0")
    assert out.returncode == 1 and "--nodes" in out.stderr


def test_help_lists_the_lab_commands():
    out = _cli("lab", "--help")
    for command in ("up", "down", "status", "kubeconfig"):
        assert command in out.stdout
