"""The image catalog: reference parsing, override semantics, pull errors (no root)."""

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
