"""The image catalog: reference parsing, override semantics, pull errors, the busybox
images' wget launcher (no root)."""

import http.server
import importlib.util
import shutil
import subprocess
import threading
import time

import pytest

from k8snet.lab.images import catalog


@pytest.mark.parametrize("ref,expected", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("docker.io/library/nginx:latest", "docker.io/library/nginx:latest"),
    ("curlimages/curl", "docker.io/curlimages/curl:latest"),
    ("radial/busyboxplus:curl", "docker.io/radial/busyboxplus:curl"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.53", "registry.k8s.io/e2e-test-images/agnhost:2.53"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("nginx@sha256:abcd", "docker.io/library/nginx@sha256:abcd"),
])
def test_normalized(ref, expected):
    assert catalog.normalized(ref) == expected


@pytest.mark.parametrize("ref,name", [
    ("nginx", "nginx"), ("busybox:1.37", "busybox"), ("python:3.12-slim", "python"),
    ("registry.k8s.io/coredns/coredns:v1.11.3", "coredns"), ("bprashanth/nginxhttps:1.0", "bprashanth/nginxhttps"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.53", "agnhost"), ("curlimages/curl", "curlimages/curl"),
])
def test_resolve(ref, name):
    assert catalog.resolve(ref).name == name


def test_unknown_image_names_the_catalog():
    with pytest.raises(catalog.ImagePullError) as err:
        catalog.resolve("foo")
    assert str(err.value).startswith('Failed to pull image "foo": the k8snet lab runs only catalogued images: nginx')


def test_image_id_is_stable_and_per_repository():
    a, b = catalog.image_id("nginx"), catalog.image_id("docker.io/library/nginx:1.27")
    assert a == b and a.startswith("docker.io/library/nginx@sha256:") and len(a.split(":")[-1]) == 64
    assert catalog.image_id("bprashanth/nginxhttps:1.0").startswith("docker.io/bprashanth/nginxhttps@sha256:")


def test_docker_override_semantics():
    agnhost = catalog.resolve("registry.k8s.io/e2e-test-images/agnhost:2.53")
    assert catalog.effective_argv(agnhost, None, None) == ["/agnhost", "pause"]
    assert catalog.effective_argv(agnhost, None, ["netexec"]) == ["/agnhost", "netexec"]
    assert catalog.effective_argv(agnhost, ["/agnhost", "serve-hostname"], None) == ["/agnhost", "serve-hostname"]
    nginx = catalog.resolve("nginx")
    assert catalog.effective_argv(nginx, None, None) == ["nginx", "-g", "daemon off;"]
    assert catalog.effective_argv(nginx, ["sh", "-c"], ["echo hi"]) == ["sh", "-c", "echo hi"]


def test_host_argv_maps_image_paths(tmp_path):
    agnhost = catalog.resolve("registry.k8s.io/e2e-test-images/agnhost:2.53")
    argv = catalog.host_argv(agnhost, ["/agnhost", "netexec"], tmp_path)
    assert argv[1].endswith("agnhost.py") and argv[2:] == ["netexec"]
    busybox = catalog.resolve("busybox")
    catalog.prepare_tools(busybox, tmp_path)
    assert catalog.host_argv(busybox, ["/bin/sh", "-c", "x"], tmp_path) == ["/usr/local/bin/sh", "-c", "x"]
    assert catalog.host_argv(busybox, ["sh"], tmp_path) == ["sh"]


def test_nginx_files(tmp_path):
    mounts = catalog.prepare_files(catalog.resolve("nginx"), tmp_path)
    targets = {m.target: m.source for m in mounts}
    conf = (tmp_path / "rootfs/etc/nginx/nginx.conf").read_text()
    assert "include /etc/nginx/conf.d/*.conf;" in conf
    assert "listen       80;" in (tmp_path / "rootfs/etc/nginx/conf.d/default.conf").read_text()
    assert "Welcome to nginx!" in (tmp_path / "rootfs/usr/share/nginx/html/index.html").read_text()
    assert set(targets) == {"/etc/nginx", "/usr/share/nginx/html", "/var/log/nginx"}


# -- wget of the busybox-applet images (assets/wget.py) -------------------------------

def _wget_launcher():
    spec = importlib.util.spec_from_file_location("wget_launcher", catalog.WGET_LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args,kept,timeout", [
    (["-qO-", "-T", "5", "http://web/"], ["-qO-", "http://web/"], 5),
    (["-qT5", "-O-", "web"], ["-q", "-O-", "web"], 5),
    (["--time=3", "web"], ["web"], 3),  # getopt_long: an unambiguous prefix
    (["--timeout", "4", "web", "-T", "7"], ["web"], 7),  # options after the URL, last wins
    (["-O", "-T", "web"], ["-O", "-T", "web"], None),  # "-T" is -O's file name
    (["--header", "-T 5", "-U", "-T", "web"], ["--header", "-T 5", "-U", "-T", "web"], None),
    (["-nv", "-T2", "web"], ["-nv", "web"], 2),
    (["--", "-T", "5"], ["--", "-T", "5"], None),
    (["-T"], ["-T"], None),  # left to busybox: "option requires an argument"
])
def test_wget_launcher_takes_out_only_the_timeout(args, kept, timeout):
    assert _wget_launcher().split_timeout(args)[:2] == (kept, timeout)


def test_wget_launcher_rejects_a_bad_timeout_like_busybox():
    launcher = _wget_launcher()
    with pytest.raises(launcher.Usage, match="^wget: invalid number 'x'$"):
        launcher.split_timeout(["-T", "x", "web"])


needs_busybox = pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed (apt: busybox)")


@pytest.fixture()
def http_server():
    """A loopback HTTP server: / answers "hello", /slow answers after 10 s."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/slow":
                time.sleep(10)
            body = b"hello" if self.path in ("/", "/slow") else b"no"
            self.send_response(200 if body == b"hello" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@needs_busybox
def test_busybox_images_run_wget_through_the_launcher(tmp_path, http_server):
    wget = catalog.prepare_tools(catalog.resolve("busybox:1.37"), tmp_path) / "wget"
    assert not wget.is_symlink() and str(catalog.WGET_LAUNCHER) in wget.read_text()

    def run(*args):
        start = time.monotonic()
        proc = subprocess.run([str(wget), *args], capture_output=True, text=True, timeout=30)
        return proc.stdout, proc.stderr, proc.returncode, time.monotonic() - start

    assert run("-qO-", "-T", "5", http_server + "/")[:3] == ("hello", "", 0)
    assert run("-qO-", "--timeout=5", http_server + "/")[:3] == ("hello", "", 0)
    assert run("-q", "-T", "5", http_server + "/nosuch")[1:3] == (
        "wget: server returned error: HTTP/1.0 404 Not Found\n", 1)
    _, err, code, elapsed = run("-qO-", "-T", "1", http_server + "/slow")
    assert (err, code) == ("wget: download timed out\n", 1) and elapsed < 5
