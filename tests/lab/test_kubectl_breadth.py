"""kubectl beyond get/apply, against the lab, unmodified: attach (``run -it --rm``,
``attach``), ``logs -f``, ``get -w``, ``edit``, ``delete`` (waits for graceful
deletion), ``rollout status``, ``scale`` and ``describe`` for every kind the lab serves.

Interactive commands run in a pseudo-terminal through pexpect, so kubectl puts the
terminal in raw mode and sends resize frames exactly as it does for a user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pexpect
import pytest

from k8snet.lab.polling import wait_until

PROMPT = r"/ # "


@pytest.fixture()
def interactive(kubeconfig: str, namespace: str, tmp_path: Path):
    """Spawns kubectl in a pty (pexpect), in the test's namespace; killed at the end."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    spawned: list[pexpect.spawn] = []

    def spawn(*args: str, timeout: float = 60) -> pexpect.spawn:
        child = pexpect.spawn("kubectl", ["--kubeconfig", kubeconfig, "--cache-dir", str(tmp_path / "cache"),
                                          "-n", namespace, *args],
                              encoding="utf-8", timeout=timeout, dimensions=(30, 100))
        spawned.append(child)
        return child

    yield spawn
    for child in spawned:
        if child.isalive():
            child.close(force=True)


def _pod_gone(kubectl, name: str) -> bool:
    return "NotFound" in kubectl("get", "pod", name, check=False)


def _nginx_service(kubectl) -> str:
    kubectl("create", "deployment", "my-nginx", "--image=nginx", "--port=80")
    kubectl("expose", "deployment", "my-nginx", "--port=80")
    kubectl("rollout", "status", "deployment/my-nginx", "--timeout=60s")
    return kubectl("get", "svc", "my-nginx", "-o", "jsonpath={.spec.clusterIP}").strip()


# -- attach --------------------------------------------------------------------------

def test_run_it_rm_gives_an_interactive_shell_and_deletes_the_pod(kubectl, interactive, namespace):
    """The tutorial's `kubectl run -i --tty --image busybox:1.37 dns-test --restart=Never --rm -- sh`."""
    cluster_ip = _nginx_service(kubectl)
    shell = interactive("run", "-i", "--tty", "--image", "busybox:1.37", "dns-test", "--restart=Never",
                        "--rm", "--", "sh")
    shell.expect(PROMPT)
    spec = kubectl("get", "pod", "dns-test", "-o", "jsonpath={.spec.containers[0].stdin} "
                   "{.spec.containers[0].stdinOnce} {.spec.containers[0].tty}")
    assert spec.split() == ["true", "true", "true"], spec
    shell.sendline("nslookup my-nginx")
    shell.expect(rf"Name:\s+my-nginx\.{namespace}\.svc\.cluster\.local\s+Address: {re.escape(cluster_ip)}")
    shell.expect(PROMPT)
    shell.sendline("echo hi $((40 + 2)); tty; stty size")
    shell.expect(r"hi 42\s+/dev/pts/\d+\s+30 100")  # a real terminal, sized like the user's
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0
    assert 'pod "dns-test" deleted' in shell.before
    assert _pod_gone(kubectl, "dns-test")


def test_run_i_rm_pipes_stdin_until_eof(kubectl):
    """Without a tty: stdin is a pipe, closed (stdinOnce) when kubectl's input ends."""
    out = kubectl("run", "-i", "--rm", "--restart=Never", "--image=busybox", "x", "--",
                  "sh", "-c", "cat; echo end-of-input", input="first line\nsecond line\n")
    assert "first line\nsecond line\nend-of-input\n" in out, out
    assert 'pod "x" deleted' in out
    assert _pod_gone(kubectl, "x")


def test_run_i_reports_the_container_exit_code(kubeconfig, namespace, kubectl):
    proc = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "-n", namespace, "run", "-i", "--rm",
                           "--restart=Never", "--image=busybox", "fails", "--", "sh", "-c", "read x; exit 3"],
                          input="go\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert _pod_gone(kubectl, "fails")


def test_run_i_rm_nslookup_without_a_tty_completes(kubectl, namespace):
    """`kubectl run -i --rm --restart=Never --image=busybox:1.37 <name> -- nslookup <service>`,
    as a script runs it (no tty). kubectl 1.37 waits for the pod through a streaming list
    (sendInitialEvents) and hung until the lab ended the initial events with a bookmark."""
    cluster_ip = _nginx_service(kubectl)
    fqdn = f"my-nginx.{namespace}.svc.cluster.local"
    start = time.monotonic()
    out = kubectl("run", "-i", "--rm", "--restart=Never", "--image=busybox:1.37", "lookup", "--", "nslookup", fqdn,
                  input="")
    assert time.monotonic() - start < 30, out
    assert re.search(rf"Name:\s+{re.escape(fqdn)}\s+Address: {re.escape(cluster_ip)}", out), out
    assert 'pod "lookup" deleted' in out, out
    assert _pod_gone(kubectl, "lookup")


def test_run_i_output_appears_once_when_the_container_exits_while_attached(kubectl):
    """The attach ends with a Success status on the v5 status channel when the container
    exits (the kubelet's ServeAttach): kubectl then neither warns nor re-reads the log."""
    out = kubectl("run", "-i", "--rm", "--restart=Never", "--image=busybox:1.37", "once", "--",
                  "sh", "-c", "sleep 1; echo hello", input="")
    assert out.count("hello") == 1, out
    assert "couldn't attach" not in out, out
    assert 'pod "once" deleted' in out, out
    assert _pod_gone(kubectl, "once")


def test_attach_to_a_running_pod_and_detach_keeps_it_running(kubectl, interactive):
    first = interactive("run", "-i", "--tty", "--image=busybox", "keep", "--restart=Never", "--", "sh")
    first.expect(PROMPT)
    # wait for the command's own output ("m""k" prints mk; the echoed input does not match)
    first.sendline('echo one > /tmp/mark && echo "m""k"')
    first.expect("mk")
    first.close(force=True)  # the user's terminal goes away: kubectl leaves, the shell stays
    wait_until("the detached kubectl to exit", lambda: not first.isalive(), 10)
    # A shell that died with the session would fail the re-attach below (a finished
    # container cannot be attached to), so no pause is needed for the phase to settle.
    assert kubectl("get", "pod", "keep", "-o", "jsonpath={.status.phase}") == "Running"

    again = interactive("attach", "-it", "keep")
    again.sendline("")  # attach shows only new output: ask the shell for a prompt
    again.expect(PROMPT)
    again.sendline("cat /tmp/mark; exit 4")
    again.expect("one")
    again.expect(pexpect.EOF)
    wait_until("the pod to fail", lambda: kubectl("get", "pod", "keep", "-o",
                                                   "jsonpath={.status.phase}") == "Failed", 30)
    code = kubectl("get", "pod", "keep", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}")
    assert code == "4"


def test_attach_without_stdin_streams_output(kubectl, interactive):
    kubectl("run", "ticker", "--image=busybox", "--restart=Never", "--",
            "sh", "-c", "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done")
    kubectl("wait", "--for=condition=Ready", "pod/ticker", "--timeout=60s")
    watcher = interactive("attach", "ticker")
    watcher.expect(r"tick \d+")
    watcher.expect("tick 39")
    watcher.expect(pexpect.EOF)


# -- logs, watch, edit, delete, rollout, scale -----------------------------------------

def test_logs_follow_streams_each_line_once_and_ends_with_the_container(kubectl):
    kubectl("run", "counter", "--image=busybox", "--restart=Never", "--",
            "sh", "-c", "sleep 1; for i in 1 2 3 4; do echo line $i; sleep 0.3; done")
    kubectl("wait", "--for=condition=Ready", "pod/counter", "--timeout=60s")
    start = time.monotonic()
    out = kubectl("logs", "-f", "counter")
    assert out == "line 1\nline 2\nline 3\nline 4\n", out
    assert time.monotonic() - start < 20


def test_get_watch_shows_pods_through_a_scale(kubeconfig, namespace, kubectl):
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=1")
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    watch = subprocess.Popen(["kubectl", "--kubeconfig", kubeconfig, "-n", namespace, "get", "pods", "-l", "app=web",
                              "-w", "--request-timeout=20s"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    assert watch.stdout is not None
    seen: list[str] = []  # the watch's lines as they arrive, so the test can wait on them
    reader = threading.Thread(target=lambda: seen.extend(iter(watch.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        # the header and the one running pod: the watch is established
        wait_until("the watch's initial listing", lambda: len(seen) >= 2, 30)
        kubectl("scale", "deployment/web", "--replicas=3")
        kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        kubectl("scale", "deployment/web", "--replicas=1")
        wait_until("scale down", lambda: len(kubectl("get", "pods", "-l", "app=web", "-o", "name").split()) == 1, 60)
        wait_until("the watch to show the scale-down", lambda: any("Terminating" in line for line in seen), 30)
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        reader.join(timeout=10)
    out = "".join(seen)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], out
    assert sum(line.startswith("NAME") for line in lines) == 1, out  # one header: same columns as the list
    names = {line.split()[0] for line in lines[1:]}
    assert len(names) == 3, out
    assert any(re.search(r"\s1/1\s+Running\s", line) for line in lines), out
    assert any(re.search(r"\sTerminating\s", line) for line in lines), out


def test_edit_changes_replicas_and_service_type(kubeconfig, namespace, kubectl):
    _nginx_service(kubectl)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}

    def edit(*args: str, editor: str) -> str:
        proc = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "-n", namespace, "edit", *args],
                              env={**env, "KUBE_EDITOR": editor}, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    assert "deployment.apps/my-nginx edited" in edit("deployment/my-nginx",
                                                      editor="sed -i -e 's/^  replicas: 1$/  replicas: 2/'")
    kubectl("rollout", "status", "deployment/my-nginx", "--timeout=60s")
    assert kubectl("get", "deploy", "my-nginx", "-o", "jsonpath={.status.readyReplicas}") == "2"
    assert "service/my-nginx edited" in edit("svc/my-nginx", editor="sed -i -e 's/type: ClusterIP/type: NodePort/'")
    svc = kubectl("get", "svc", "my-nginx")
    assert re.search(r"my-nginx\s+NodePort\s+\S+\s+<none>\s+80:3\d{4}/TCP", svc), svc
    # an edit that changes nothing is reported as such, and writes nothing
    assert "Edit cancelled, no changes made." in edit("svc/my-nginx", editor="true")


def test_delete_waits_for_graceful_termination(kubectl):
    """`kubectl delete pod` returns only once the pod is gone; the container had its
    SIGTERM and the grace period to finish."""
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: slow
    image: busybox
    command: ["sh", "-c", "trap 'sleep 2; exit 0' TERM; while true; do sleep 0.1; done"]
""")
    kubectl("wait", "--for=condition=Ready", "pod/slow", "--timeout=60s")
    start = time.monotonic()
    out = kubectl("delete", "pod", "slow")
    took = time.monotonic() - start
    assert 'pod "slow" deleted' in out
    assert 1.5 < took < 10, took  # it waited for the trap, not for the whole grace period
    assert _pod_gone(kubectl, "slow")


def test_a_second_delete_shortens_the_grace_period(kubectl):
    """A pod whose PID 1 ignores SIGTERM waits out its grace period after a plain
    delete; `kubectl delete --now` meanwhile (grace 1 s) ends it within about a second,
    as the kubelet's pod workers cut a termination short (a grace period only shrinks)."""
    kubectl("run", "stubborn", "--image=busybox", "--restart=Never", "--command", "--", "sleep", "3600")
    kubectl("wait", "--for=condition=Ready", "pod/stubborn", "--timeout=60s")
    kubectl("delete", "pod", "stubborn", "--wait=false")  # grace 30 s: sleep as PID 1 ignores SIGTERM
    time.sleep(2)
    assert re.search(r"stubborn\s+1/1\s+Terminating", kubectl("get", "pod", "stubborn")), "still terminating"
    start = time.monotonic()
    out = kubectl("delete", "pod", "stubborn", "--now")
    took = time.monotonic() - start
    assert 'pod "stubborn" deleted' in out
    assert took < 5, took  # the 1 s grace had passed already: killed at once, not 28 s later
    assert _pod_gone(kubectl, "stubborn")


def test_scale_and_rollout_status(kubectl):
    """`rollout status --timeout=60s` returns once rolled out: kubectl 1.37 watches the
    Deployment through a streaming list and timed out when the lab never ended the
    initial events with a bookmark."""
    kubectl("create", "deployment", "app", "--image=nginx", "--replicas=1")
    assert "deployment.apps/app scaled" in kubectl("scale", "deployment", "app", "--replicas=3")
    out = kubectl("rollout", "status", "deployment/app", "--timeout=60s")
    assert 'deployment "app" successfully rolled out' in out
    assert kubectl("get", "deploy", "app", "-o", "jsonpath={.status.availableReplicas}") == "3"
    kubectl("set", "image", "deployment/app", "nginx=nginx:1.27")
    out = kubectl("rollout", "status", "deployment/app", "--timeout=90s")
    assert 'deployment "app" successfully rolled out' in out
    assert "deployment.apps/app scaled" in kubectl("scale", "deployment", "app", "--replicas=0")
    wait_until("no pods", lambda: "No resources found" in kubectl("get", "pods", "-l", "app=app"), 60)


# -- describe ---------------------------------------------------------------------------

def _describe(kubectl, *args: str) -> str:
    out = kubectl("describe", *args)
    assert "error" not in out.lower().replace("errors", ""), out
    assert "Failed to get" not in out and "could not find" not in out, out
    return out


def _sections(out: str, *names: str) -> None:
    for name in names:
        # "Name:  value" lines, or "Data" / "====" headings (secrets, config maps)
        assert re.search(rf"^\s*{re.escape(name)}(:|\n=+\n)", out, re.M), f"no {name!r} in:\n{out}"


def test_describe_every_kind(kubectl, namespace):
    _nginx_service(kubectl)
    kubectl("create", "secret", "generic", "creds", "--from-literal=user=admin")
    kubectl("create", "configmap", "settings", "--from-literal=mode=fast")
    kubectl("create", "serviceaccount", "robot")
    pod = kubectl("get", "pods", "-l", "app=my-nginx", "-o", "jsonpath={.items[0].metadata.name}")
    rs = kubectl("get", "rs", "-l", "app=my-nginx", "-o", "jsonpath={.items[0].metadata.name}")
    node = kubectl("get", "pod", pod, "-o", "jsonpath={.spec.nodeName}")
    eps = kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=my-nginx",
                  "-o", "jsonpath={.items[0].metadata.name}")

    out = _describe(kubectl, "pod", pod)
    _sections(out, "Name", "Namespace", "Node", "Start Time", "Status", "IP", "Controlled By", "Containers",
              "Container ID", "State", "Ready", "Restart Count", "Conditions", "Volumes", "QoS Class", "Events")
    assert re.search(rf"Node:\s+{node}/\d+\.\d+\.\d+\.\d+\n", out), out
    assert re.search(r"Normal\s+Scheduled\s+.*default-scheduler\s+Successfully assigned", out), out
    # kubectl 1.37 shows the event's involvedObject.fieldPath before the message
    assert re.search(r"Normal\s+Started\s+.*kubelet\s+spec\.containers\{nginx\}: Started container nginx", out), out

    out = _describe(kubectl, "deployment", "my-nginx")
    _sections(out, "Replicas", "StrategyType", "RollingUpdateStrategy", "Pod Template", "Conditions",
              "OldReplicaSets", "NewReplicaSet", "Events")
    assert re.search(r"NewReplicaSet:\s+my-nginx-\w+ \(1/1 replicas created\)", out), out
    assert "ScalingReplicaSet" in out, out

    out = _describe(kubectl, "replicaset", rs)
    _sections(out, "Controlled By", "Replicas", "Pods Status", "Pod Template", "Events")
    assert "SuccessfulCreate" in out, out

    out = _describe(kubectl, "service", "my-nginx")
    _sections(out, "Selector", "Type", "IP", "Port", "TargetPort", "Endpoints", "Session Affinity", "Events")
    assert re.search(r"Endpoints:\s+10\.244\.\d+\.\d+:80", out), out

    out = _describe(kubectl, "endpoints", "my-nginx")
    _sections(out, "Subsets", "Addresses", "Ports", "Events")
    out = _describe(kubectl, "endpointslice", eps)
    _sections(out, "AddressType", "Ports", "Endpoints", "Conditions", "TargetRef", "NodeName", "Events")
    out = _describe(kubectl, "secret", "creds")
    _sections(out, "Type", "Data")
    assert re.search(r"user:\s+5 bytes", out), out
    out = _describe(kubectl, "configmap", "settings")
    _sections(out, "Data", "Events")
    out = _describe(kubectl, "serviceaccount", "robot")
    # kubectl 1.37 no longer prints the legacy "Mountable secrets" and "Tokens" sections
    _sections(out, "Image pull secrets", "Events")
    out = _describe(kubectl, "namespace", namespace)
    _sections(out, "Name", "Labels", "Status")
    assert "Active" in out, out
    out = _describe(kubectl, "node", node)
    _sections(out, "Roles", "Conditions", "Addresses", "Capacity", "Allocatable", "System Info", "PodCIDR",
              "Non-terminated Pods", "Allocated resources", "Events")
    assert pod in out, out
    event = kubectl("get", "events", "--field-selector", f"involvedObject.name={pod},reason=Scheduled",
                    "-o", "jsonpath={.items[0].metadata.name}")
    out = _describe(kubectl, "event", event)
    _sections(out, "Involved Object", "Reason", "Message", "Source", "Type")
