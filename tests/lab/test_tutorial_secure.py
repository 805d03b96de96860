"""Steps 17-36 of the tutorial ("Securing the Service" and "Exposing the Service",
numbered as in notebooks/README.md, "Tutorial steps → cells") with real kubectl,
openssl and curl on the lab, then the same with a k8snet.tls certificate, and a
ConfigMap update reaching a running nginx.

Keys are generated into tmp_path for each run; none is ever committed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from pathlib import Path

from k8snet import tls
from k8snet.lab.lifecycle import load_config
from k8snet.lab.polling import wait_until

from .test_tutorial_kubectl import MANIFESTS, ready_pods

WELCOME = "<title>Welcome to nginx!</title>"


def make_keys(key: Path, cert: Path) -> None:
    """The kubernetes/examples Makefile's ``keys`` target, exactly (steps 17 and 23)."""
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "365", "-newkey", "rsa:2048",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=my-nginx/O=my-nginx"],
                   check=True, capture_output=True, timeout=60)


def curl(kubectl, pod: str, *args: str) -> tuple[int, str]:
    """curl in ``pod``; (exit code, output). -sS: no progress meter, but errors shown."""
    out = kubectl("exec", pod, "--", "sh", "-c", 'curl -sS --max-time 5 "$@" 2>&1; rc=$?; echo; echo "rc=$rc"',
                  "curl", *args)
    body, _, rc = out.rstrip().rpartition("\nrc=")
    return int(rc), body


def pod_names(kubectl, selector: str) -> list[str]:
    return [p["metadata"]["name"] for p in ready_pods(kubectl, selector, 1)]


def nginx_serves(kubectl, client: str, url: str, *curl_args: str, expect: str = WELCOME) -> str:
    """Waits until ``url`` answers with ``expect`` (endpoints and rules take a moment)."""
    def check():
        rc, body = curl(kubectl, client, *curl_args, url)
        return body if rc == 0 and expect in body else None
    return wait_until(f"{url} serving {expect!r}", check, timeout=30)


def test_securing_the_service(kubectl, namespace, tmp_path):
    # The first half left a Deployment and Service my-nginx (steps 1 and 5); step 25 replaces them.
    kubectl("apply", "-f", str(MANIFESTS / "run-my-nginx.yaml"))
    kubectl("expose", "deployment/my-nginx")

    # 17-19: make keys, kubectl create secret tls, kubectl get secrets
    key, cert = tmp_path / "nginx.key", tmp_path / "nginx.crt"
    make_keys(key, cert)
    assert "secret/nginxsecret created" in kubectl("create", "secret", "tls", "nginxsecret",
                                                   "--key", str(key), "--cert", str(cert))
    secrets = kubectl("get", "secrets")
    assert re.match(r"NAME\s+TYPE\s+DATA\s+AGE\n", secrets)
    assert re.search(r"^nginxsecret\s+kubernetes\.io/tls\s+2\s+\d+s$", secrets, re.M)

    # 20-22: the ConfigMap from default.conf; get; describe (double space as in the tutorial)
    conf = (MANIFESTS / "default.conf").read_text()
    (tmp_path / "default.conf").write_text(conf)
    assert "configmap/nginxconfigmap created" in kubectl("create", "configmap", "nginxconfigmap",
                                                         f"--from-file={tmp_path / 'default.conf'}")
    assert re.search(r"^nginxconfigmap\s+1\s+\d+s$", kubectl("get", "configmaps"), re.M)
    described = kubectl("describe", "configmap", "nginxconfigmap")
    assert re.match(rf"Name:\s+nginxconfigmap\nNamespace:\s+{namespace}\nLabels:\s+<none>\n"
                    r"Annotations:\s+<none>\n\nData\n====\ndefault\.conf:\n----\n", described)
    assert conf.strip() in described
    assert re.search(r"\nBinaryData\n====\n\nEvents:\s+<none>\n?$", described)
    secret_described = kubectl("describe", "secret", "nginxsecret")
    assert re.search(r"Type:\s+kubernetes\.io/tls", secret_described)
    assert re.search(rf"tls\.crt:\s+{cert.stat().st_size} bytes", secret_described)
    assert re.search(rf"tls\.key:\s+{key.stat().st_size} bytes", secret_described)

    # 23-24: the manual path: openssl again, base64 into nginxsecrets.yaml, kubectl apply
    make_keys(key, cert)
    b64 = {name: base64.b64encode(path.read_bytes()).decode() for name, path in (("crt", cert), ("key", key))}
    manifest = tmp_path / "nginxsecrets.yaml"
    manifest.write_text(f'apiVersion: "v1"\nkind: "Secret"\nmetadata:\n  name: "nginxsecret"\n'
                        f'  namespace: "{namespace}"\ntype: kubernetes.io/tls\ndata:\n'
                        f'  tls.crt: "{b64["crt"]}"\n  tls.key: "{b64["key"]}"\n')
    assert "secret/nginxsecret configured" in kubectl("apply", "-f", str(manifest))
    assert re.search(r"^nginxsecret\s+kubernetes\.io/tls\s+2\s", kubectl("get", "secrets"), re.M)

    # 25-26: replace the plain nginx with the secure one; its pod IP
    out = kubectl("delete", "deployments,svc", "my-nginx")
    assert 'deployment.apps "my-nginx" deleted' in out and 'service "my-nginx" deleted' in out
    created = kubectl("create", "-f", str(MANIFESTS / "nginx-secure-app.yaml"))
    assert "service/my-nginx created" in created and "deployment.apps/my-nginx created" in created
    wait_until("the old my-nginx pods gone", lambda: len(json.loads(
        kubectl("get", "pods", "-l", "run=my-nginx", "-o", "json"))["items"]) == 1, timeout=60)
    [nginx] = ready_pods(kubectl, "run=my-nginx", 1)
    pod_ip = nginx["status"]["podIP"]
    columns = kubectl("get", "pods", "-l", "run=my-nginx", "-o", "custom-columns=POD_IP:.status.podIPs")
    assert columns.split() == ["POD_IP", f"[map[ip:{pod_ip}]]"]

    # 27: "node $ curl -k https://<pod IP>" from another node; without -k the self-signed cert is refused
    nodes = [n["metadata"]["name"] for n in json.loads(kubectl("get", "nodes", "-o", "json"))["items"]]
    other = next(n for n in nodes if n != nginx["spec"]["nodeName"])
    kubectl("run", "node-shell", "--image=curlimages/curl", "--restart=Never",
            f"--overrides={json.dumps({'spec': {'nodeName': other}})}", "--command", "--", "sleep", "3600")
    ready_pods(kubectl, "run=node-shell", 1)
    nginx_serves(kubectl, "node-shell", f"https://{pod_ip}", "-k")
    rc, out = curl(kubectl, "node-shell", f"https://{pod_ip}")
    assert rc == 60 and "self-signed certificate" in out, out

    # 28: the curl pod with the Secret mounted at /etc/nginx/ssl
    assert "deployment.apps/curl-deployment created" in kubectl("apply", "-f", str(MANIFESTS / "curlpod.yaml"))
    [client] = pod_names(kubectl, "app=curlpod")
    listing = kubectl("get", "pods", "-l", "app=curlpod")
    assert re.match(r"NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n", listing)
    assert re.search(rf"^{client}\s+1/1\s+Running\s+0\s", listing, re.M)

    # 29: verified by name against the cert itself. curl (OpenSSL) still falls back to the
    # CN when a cert has no subjectAltName, so "my-nginx" passes; every other name of the
    # Service fails, and RFC 6125 clients (Go, browsers, k8snet.tls) refuse even "my-nginx".
    nginx_serves(kubectl, client, "https://my-nginx", "--cacert", "/etc/nginx/ssl/tls.crt")
    fqdn = f"my-nginx.{namespace}.svc.cluster.local"
    rc, out = curl(kubectl, client, f"https://{fqdn}", "--cacert", "/etc/nginx/ssl/tls.crt")
    assert rc == 60 and "does not match target host name" in out, out
    assert WELCOME in curl(kubectl, client, f"https://{fqdn}", "-k")[1]
    assert tls.subject_alt_names(cert.read_bytes()) == []

    # Better: a CA and a server cert with the Service's names (k8snet.tls). The Secret
    # update reaches both pods' mounted files; nginx loads the new cert on reload.
    ca = tls.create_ca()
    server = tls.server_cert(ca, "my-nginx", namespace)
    secret = tls.tls_secret("nginxsecret", server.chain_pem(ca), server.key_pem, namespace, ca_pem=ca.cert_pem)
    assert "secret/nginxsecret configured" in kubectl("apply", "-f", "-", input=json.dumps(secret))
    pem = server.chain_pem(ca).decode()
    for pod in (nginx["metadata"]["name"], client):
        wait_until(f"the new certificate in {pod}", lambda pod=pod: kubectl(
            "exec", pod, "--", "cat", "/etc/nginx/ssl/tls.crt") == pem, timeout=10)
    kubectl("exec", nginx["metadata"]["name"], "--", "nginx", "-s", "reload")
    for name in tls.service_dns_names("my-nginx", namespace):
        nginx_serves(kubectl, client, f"https://{name}", "--cacert", "/etc/nginx/ssl/tls.crt")
        nginx_serves(kubectl, client, f"https://{name}", "--cacert", "/etc/nginx/ssl/ca.crt")
    rc, out = curl(kubectl, client, f"https://{pod_ip}", "--cacert", "/etc/nginx/ssl/ca.crt")
    assert rc == 60 and "no alternative certificate subject name matches" in out, out


def test_configmap_update_reaches_running_nginx(kubectl, namespace):
    """Editing the ConfigMap rewrites /etc/nginx/conf.d/default.conf in the running pod
    (the ..data swap, read-only to the container); ``nginx -s reload`` serves it."""
    ca = tls.create_ca()
    server = tls.server_cert(ca, "my-nginx", namespace)
    kubectl("apply", "-f", "-", input=json.dumps(tls.tls_secret("nginxsecret", server.chain_pem(ca),
                                                                 server.key_pem)))
    conf = (MANIFESTS / "default.conf").read_text()
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nginxconfigmap"},
                 "data": {"default.conf": conf}}
    kubectl("apply", "-f", "-", input=json.dumps(configmap))
    kubectl("apply", "-f", str(MANIFESTS / "nginx-secure-app.yaml"))
    [nginx] = pod_names(kubectl, "run=my-nginx")
    assert kubectl("exec", nginx, "--", "cat", "/etc/nginx/conf.d/default.conf") == conf
    target = kubectl("exec", nginx, "--", "readlink", "/etc/nginx/conf.d/default.conf").strip()
    assert target == "..data/default.conf"
    denied = kubectl("exec", nginx, "--", "sh", "-c", "echo x > /etc/nginx/conf.d/default.conf", check=False)
    assert "Read-only file system" in denied
    nginx_serves(kubectl, nginx, "https://localhost/version", "-k", expect="404 Not Found")

    changed = conf.replace("        location / {",
                           '        location = /version { return 200 "v2\\n"; }\n\n        location / {')
    configmap["data"]["default.conf"] = changed
    began = time.monotonic()
    kubectl("apply", "-f", "-", input=json.dumps(configmap))
    wait_until("the new default.conf in the pod", lambda: kubectl(
        "exec", nginx, "--", "cat", "/etc/nginx/conf.d/default.conf") == changed, timeout=10, interval=0.05)
    assert time.monotonic() - began < 3, "the update should arrive with the watch event, not a resync period"
    rc, body = curl(kubectl, nginx, "-k", "https://localhost/version")
    assert "404 Not Found" in body, "nginx must not see the change before a reload"
    kubectl("exec", nginx, "--", "nginx", "-s", "reload")
    assert nginx_serves(kubectl, nginx, "https://localhost/version", "-k", expect="v2").strip() == "v2"


def host_curl(url: str) -> str:
    """curl from the host itself (the lab's nodes and LoadBalancer addresses are on the
    host's link to the lab)."""
    proc = subprocess.run(["curl", "-sS", "-k", "--max-time", "5", url], capture_output=True, text=True, timeout=30)
    return proc.stdout if proc.returncode == 0 else f"curl exit {proc.returncode}: {proc.stderr}"


def test_exposing_the_service(kubectl, kubeconfig, namespace, lab):
    """Steps 30-36: the secure app's NodePorts from the host, then `kubectl edit` to
    LoadBalancer, its EXTERNAL-IP from the host, `describe` showing the ingress."""
    ca = tls.create_ca()
    server = tls.server_cert(ca, "my-nginx", namespace)
    secret = tls.tls_secret("nginxsecret", server.chain_pem(ca), server.key_pem, namespace)
    kubectl("apply", "-f", "-", input=json.dumps(secret))
    kubectl("create", "configmap", "nginxconfigmap", f"--from-file={MANIFESTS / 'default.conf'}")
    kubectl("create", "-f", str(MANIFESTS / "nginx-secure-app.yaml"))
    ready_pods(kubectl, "run=my-nginx", 1)

    # 30: the allocated nodePorts, both in the default range
    fragment = kubectl("get", "svc", "my-nginx", "-o", "yaml")
    ports = {p["name"]: p for p in json.loads(kubectl("get", "svc", "my-nginx", "-o", "json"))["spec"]["ports"]}
    assert set(ports) == {"http", "https"} and all(30000 <= p["nodePort"] <= 32767 for p in ports.values())
    assert f"nodePort: {ports['https']['nodePort']}" in fragment
    # 31: nodes report their ExternalIP
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    external = [a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "ExternalIP"]
    assert len(external) == len(nodes) and "type: ExternalIP" in kubectl("get", "nodes", "-o", "yaml")
    # 32: curl https://<EXTERNAL-IP>:<NODE-PORT> -k from the host, at every node
    for ip in external:
        page = wait_until(f"https on {ip}", lambda ip=ip: (lambda out: out if WELCOME in out else None)(
            host_curl(f"https://{ip}:{ports['https']['nodePort']}")), timeout=20)
        assert WELCOME in page

    # 33: kubectl edit svc my-nginx: NodePort -> LoadBalancer
    proc = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "-n", namespace, "edit", "svc", "my-nginx"],
                          env={"PATH": os.environ["PATH"], "HOME": "/root",
                               "KUBE_EDITOR": "sed -i -e 's/^  type: NodePort$/  type: LoadBalancer/'"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "service/my-nginx edited" in proc.stdout, proc.stdout + proc.stderr
    # 34: EXTERNAL-IP from the lab's pool, both ports listed with their node ports
    line = wait_until("an EXTERNAL-IP", lambda: next((row for row in kubectl("get", "svc", "my-nginx").splitlines()
                                                     if "LoadBalancer" in row and "<pending>" not in row), None), 10)
    name, kind, cluster_ip, external_ip, port_list, _age = line.split()
    assert kind == "LoadBalancer" and external_ip in load_config(lab.name).loadbalancer_pool
    assert port_list == f"8080:{ports['http']['nodePort']}/TCP,443:{ports['https']['nodePort']}/TCP"
    # 35: curl https://<EXTERNAL-IP> -k from the host
    assert WELCOME in wait_until("the EXTERNAL-IP to answer", lambda: (lambda out: out if WELCOME in out else None)(
        host_curl(f"https://{external_ip}")), timeout=20)
    # 36: describe shows the ingress
    assert re.search(rf"LoadBalancer Ingress:\s+{re.escape(external_ip)}", kubectl("describe", "service", "my-nginx"))
