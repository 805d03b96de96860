"""The ``k8snet`` command line: outputs and exit codes, driven through ``main([...])``
against a temporary state root (fake state folders as the supervisor writes them)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8snet import cli
from k8snet.lab import lifecycle
from k8snet.lab.config import LabConfig


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
    for command in ("up", "start", "stop", "down", "status", "list", "kubeconfig"):
        assert command in out.stdout


# -- main([...]) in this process ------------------------------------------------------------


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("K8SNET_STATE_ROOT", str(tmp_path))
    monkeypatch.delenv("K8SNET_LAB", raising=False)
    return tmp_path


@pytest.fixture()
def supervisor_pid():
    """A live process whose command line names the supervisor module, which is what
    lifecycle's liveness check looks for in /proc/<pid>/cmdline."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "k8snet.lab.supervisor"])
    # Popen may return while the child is still inside execve, when its cmdline reads empty
    deadline = time.monotonic() + 10
    while b"k8snet.lab.supervisor" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the fake supervisor did not start"
        time.sleep(0.01)
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lab(name: str, status: dict | None, **config) -> LabConfig:
    """A lab's state folder as the supervisor leaves it: config.json, and status.json."""
    lab = LabConfig(name=name, **config)
    lab.state_dir.mkdir(parents=True)
    lifecycle.save_config(lab)
    if status is not None:
        (lab.state_dir / "status.json").write_text(json.dumps(status))
    return lab


def ready(pid: int, port: int, nodes: list[str], mode: str = "iptables") -> dict:
    return {"phase": "Ready", "message": "", "pid": pid, "server": f"https://127.0.0.1:{port}",
            "kubeconfig": "unused", "nodes": nodes, "proxy_mode": mode}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_without_labs_says_where_it_looked(root, capsys):
    assert run(capsys, "lab", "list") == (0, "", f"no labs under {root}\n")
    assert run(capsys, "lab", "list", "--json")[:2] == (0, "[]\n")


def test_list_shows_every_lab_with_phase_nodes_mode_and_server(root, capsys, supervisor_pid):
    write_lab("alpha", ready(supervisor_pid, 40001, ["alpha-control-plane", "alpha-worker"], "nftables"),
              proxy_mode="nftables")
    write_lab("beta", {"phase": "Ready", "pid": _dead_pid(), "server": "https://127.0.0.1:40002"})
    write_lab("gamma", None)
    (root / "Not_A_Lab").mkdir()
    code, out, err = run(capsys, "lab", "list")
    assert code == 0 and err == ""
    rows = [line.split() for line in out.splitlines()]
    assert rows == [["NAME", "PHASE", "NODES", "PROXY-MODE", "API-SERVER"],
                    ["alpha", "Ready", "2", "nftables", "https://127.0.0.1:40001"],
                    ["beta", "Crashed", "-", "-", "https://127.0.0.1:40002"],
                    ["gamma", "Failed", "-", "-", "-"]]
    code, out, _ = run(capsys, "lab", "list", "--json")
    labs = json.loads(out)
    assert [(lab["name"], lab["phase"]) for lab in labs] == [("alpha", "Ready"), ("beta", "Crashed"), ("gamma", "Failed")]
    assert labs[0]["pid"] == supervisor_pid and labs[0]["details"]["proxy_mode"] == "nftables"
    assert "supervisor is gone" in labs[1]["message"]


def test_status_json_is_the_lab_status(root, capsys, supervisor_pid):
    lab = write_lab("alpha", ready(supervisor_pid, 40001, ["alpha-control-plane"]), nodes=1)
    lab.kubeconfig_path.write_text("kind: Config\n")
    code, out, _ = run(capsys, "lab", "status", "--name", "alpha", "--json")
    st = json.loads(out)
    assert code == 0
    assert st["name"] == "alpha" and st["phase"] == "Ready" and st["server"] == "https://127.0.0.1:40001"
    assert st["kubeconfig"] == str(lab.kubeconfig_path) and st["pid"] == supervisor_pid
    assert st["details"]["nodes"] == ["alpha-control-plane"]


def test_status_of_a_crashed_lab_exits_1(root, capsys):
    write_lab("beta", {"phase": "Ready", "pid": _dead_pid()})
    code, out, _ = run(capsys, "lab", "status", "--name", "beta")
    assert code == 1 and out.startswith("lab 'beta': Crashed — the supervisor is gone")
    assert json.loads(run(capsys, "lab", "status", "--name", "beta", "--json")[1])["phase"] == "Crashed"


def test_k8snet_lab_is_the_default_name_of_every_command(root, capsys, monkeypatch):
    monkeypatch.setenv("K8SNET_LAB", "fromenv")
    assert json.loads(run(capsys, "lab", "status", "--json")[1])["name"] == "fromenv"
    code, _, err = run(capsys, "lab", "kubeconfig")
    assert code == 1 and err == "k8snet: there is no lab 'fromenv': create it with 'sudo k8snet lab up --name fromenv'\n"
    parser = cli.build_parser()
    for command in ("up", "start", "stop", "down", "status", "kubeconfig"):
        assert parser.parse_args(["lab", command]).name == "fromenv"
    assert parser.parse_args(["lab", "status", "--name", "other"]).name == "other"


def test_a_bad_k8snet_lab_is_a_one_line_error(root, capsys, monkeypatch):
    monkeypatch.setenv("K8SNET_LAB", "Bad_Name")
    code, _, err = run(capsys, "lab", "status")
    assert code == 1 and err.startswith("k8snet: lab name 'Bad_Name'") and err.count("\n") == 1


@pytest.fixture()
def as_root(monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)


@pytest.fixture()
def as_user(monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)


def test_up_passes_the_timeout(root, capsys, as_root, monkeypatch):
    seen = {}

    def fake_up(config, *, timeout):
        seen.update(name=config.name, timeout=timeout)
        return lifecycle.LabStatus(config.name, "Ready", "https://127.0.0.1:1", root / "kc", 1, "",
                                   {"nodes": ["x"], "proxy_mode": "iptables"})

    monkeypatch.setattr(lifecycle, "up", fake_up)
    code, out, _ = run(capsys, "lab", "up", "--name", "tim", "--timeout", "12.5")
    assert code == 0 and seen == {"name": "tim", "timeout": 12.5} and "is Ready" in out
    assert "export KUBECONFIG=" in out and "--context" not in out, "nothing merged: the lab's own kubeconfig only"
    assert run(capsys, "lab", "up", "--name", "tim")[0] == 0 and seen["timeout"] == lifecycle.READY_TIMEOUT_S
    code, _, err = run(capsys, "lab", "up", "--timeout", "-1")
    assert code == 1 and err == "k8snet: --timeout must be a positive number of seconds, not -1\n"


@pytest.mark.skipif(sys.platform != "linux", reason="the root check applies on Linux only")
def test_a_normal_user_is_told_the_sudo_command(root, capsys, as_user, monkeypatch):
    monkeypatch.setattr(lifecycle, "up", lambda *a, **k: pytest.fail("up ran without root"))
    monkeypatch.setenv("K8SNET_LAB", "mine")
    code, _, err = run(capsys, "lab", "up", "--nodes", "3")
    assert code == 1
    assert err == f"k8snet: needs root: run 'sudo K8SNET_STATE_ROOT={root} k8snet lab up --nodes 3 --name mine'\n"
    monkeypatch.delenv("K8SNET_STATE_ROOT")
    code, _, err = run(capsys, "lab", "down", "--name", "x")
    assert (code, err) == (1, "k8snet: needs root: run 'sudo k8snet lab down --name x'\n")


def test_lab_errors_are_one_line(root, capsys, as_root, monkeypatch):
    def fail(config, *, timeout):
        raise lifecycle.LabError("lab 'x' failed to start: boom (log: /somewhere)")

    monkeypatch.setattr(lifecycle, "up", fail)
    assert run(capsys, "lab", "up", "--name", "x")[::2] == (1, "k8snet: lab 'x' failed to start: boom (log: /somewhere)\n")


def test_interrupted_up_says_how_to_clean_up(root, capsys, as_root, monkeypatch):
    def interrupted(config, *, timeout):
        raise KeyboardInterrupt

    monkeypatch.setattr(lifecycle, "up", interrupted)
    monkeypatch.delenv("K8SNET_STATE_ROOT")
    code, _, err = run(capsys, "lab", "up", "--name", "half")
    assert code == 130
    assert err == ("k8snet: interrupted; lab 'half' may be half started: run 'sudo k8snet lab stop --name half' "
                   "(keeps its objects) or 'sudo k8snet lab down --name half' (removes it)\n")


def test_a_missing_program_points_at_setup(root, capsys, as_root, monkeypatch):
    def no_ip(name):
        raise FileNotFoundError(2, "No such file or directory", "ip")

    monkeypatch.setattr(lifecycle, "down", no_ip)
    code, _, err = run(capsys, "lab", "down", "--name", "x")
    assert code == 1 and err == "k8snet: ip: program not found: install the host tools with 'sudo bash scripts/setup.sh'\n"


def test_an_unreadable_state_folder_is_one_line_naming_kubectl_context(root, capsys, monkeypatch):
    def denied(name):
        raise PermissionError(13, "Permission denied", str(root / name / "config.json"))

    monkeypatch.setattr(lifecycle, "load_config", denied)
    code, _, err = run(capsys, "lab", "status", "--name", "prod")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"k8snet: lab 'prod' exists, but its state folder {root / 'prod'} is readable by root only")
    assert "'kubectl --context k8snet-prod' works without root" in err
    assert json.loads(run(capsys, "lab", "status", "--name", "prod", "--json")[1])["phase"] == lifecycle.UNREADABLE


def test_a_denied_file_elsewhere_names_it_and_the_sudo_command(root, capsys, monkeypatch):
    class DeniedPath(type(Path())):
        def read_text(self, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(self))

    kubeconfig = DeniedPath(root / "alpha" / "kubeconfig")
    monkeypatch.setattr(lifecycle, "readable_status", lambda name: lifecycle.LabStatus(
        name, "Ready", "https://127.0.0.1:40001", kubeconfig, 1))
    monkeypatch.delenv("K8SNET_STATE_ROOT")
    code, _, err = run(capsys, "lab", "kubeconfig", "--name", "alpha")
    assert (code, err) == (1, f"k8snet: {kubeconfig}: permission denied; "
                              "needs root: run 'sudo k8snet lab kubeconfig --name alpha'\n")


def test_argparse_errors_stay_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["lab", "bogus"])
    assert exit_.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


def test_doctor_prints_one_line_per_check_and_exits_by_fails(capsys, monkeypatch):
    from k8snet import doctor

    checks = [doctor.Check("one", True, "fine"), doctor.Check("two", False, "meh", "do this", warn=True)]
    monkeypatch.setattr(doctor, "run_checks", lambda: checks)
    assert run(capsys, "doctor") == (0, "ok    one  fine\nwarn  two  meh — fix: do this\n", "")
    checks.append(doctor.Check("three", False, "broken", "fix it"))
    code, out, _ = run(capsys, "doctor")
    assert code == 1 and out.splitlines()[-1] == "FAIL  three  broken — fix: fix it"


def test_up_names_the_context_it_merged_into_a_users_kubeconfig(root, capsys, as_root, monkeypatch):
    from k8snet.lab import kubeconfig

    def fake_up(config, *, timeout):
        config.state_dir.mkdir()
        record = kubeconfig.MergeRecord(str(root / "home"), 1000, 1000, "k8snet-mrg", "k8snet-mrg", "k8snet-mrg-admin")
        kubeconfig.write_records(config.state_dir / lifecycle.MERGED_KUBECONFIGS, [record])
        return lifecycle.LabStatus(config.name, "Ready", "https://127.0.0.1:1", config.kubeconfig_path, 1, "",
                                   {"nodes": ["x"], "proxy_mode": "iptables"})

    monkeypatch.setattr(lifecycle, "up", fake_up)
    code, out, _ = run(capsys, "lab", "up", "--name", "mrg")
    assert code == 0
    assert f"context k8snet-mrg added to {root / 'home' / '.kube' / 'config'}" in out
    assert "  kubectl --context k8snet-mrg get nodes -o wide" in out


def _stopped_lab(name: str) -> LabConfig:
    """A lab ``stop`` left: config, store, CA, and status Stopped naming its nodes."""
    lab = write_lab(name, {"phase": "Stopped", "message": "", "server": "https://127.0.0.1:40003",
                           "nodes": [f"{name}-control-plane"], "proxy_mode": "iptables"}, nodes=1)
    lab.db_path.write_text("")
    lab.pki_dir.mkdir()
    (lab.pki_dir / "ca.crt").write_text("")
    return lab


def test_a_stopped_lab_is_listed_as_stopped_and_its_status_says_start(root, capsys):
    _stopped_lab("kept")
    code, out, _ = run(capsys, "lab", "list")
    assert code == 0 and out.splitlines()[1].split() == ["kept", "Stopped", "1", "iptables", "https://127.0.0.1:40003"]
    code, out, _ = run(capsys, "lab", "status", "--name", "kept")
    assert code == 0 and out.startswith("lab 'kept': Stopped — ") and "'sudo k8snet lab start --name kept'" in out
    code, _, err = run(capsys, "lab", "kubeconfig", "--name", "kept")
    assert code == 1 and err == "k8snet: lab 'kept' is stopped; start it with 'sudo k8snet lab start --name kept'\n"


def test_no_lab_is_absent_not_stopped(root, capsys):
    code, out, _ = run(capsys, "lab", "status", "--name", "none")
    assert code == 0 and out == "lab 'none': Absent — no such lab: 'sudo k8snet lab up --name none' creates it\n"


def test_start_and_stop_need_root(root, capsys, as_user):
    for command in ("start", "stop"):
        code, _, err = run(capsys, "lab", command, "--name", "kept")
        assert code == 1 and err.startswith("k8snet: needs root: run 'sudo K8SNET_STATE_ROOT=")
        assert f"k8snet lab {command} --name kept'" in err


def test_up_of_a_kept_lab_refuses_another_shape(root, capsys, as_root):
    _stopped_lab("kept")
    code, _, err = run(capsys, "lab", "up", "--name", "kept", "--nodes", "3")
    assert code == 1 and "exists with 1 node in iptables mode" in err and err.count("\n") == 1
