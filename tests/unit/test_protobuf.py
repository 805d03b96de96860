"""protobuf.decode against request bodies captured from the real kubectl 1.32
(a throwaway plain-HTTP recording server answered each POST with 201), e.g.
``kubectl create secret generic s --from-literal=a=b --from-literal=empty=``."""

from __future__ import annotations

import pytest

from k8snet.lab.api.protobuf import SCHEMA, decode
from k8snet.lab.errors import ApiError

# kubectl create secret generic s --from-literal=a=b --from-literal=empty=
# kubectl create configmap c --from-file=index.html(hello\n) --from-literal=k=v
# kubectl create namespace lab1
# kubectl create deployment my-nginx --image=nginx:1.27 --replicas=0 --port=80
# kubectl create deployment d2 --image=nginx -- sleep 10
# kubectl create service clusterip my-svc --tcp=80:8080
# kubectl create service clusterip headless --clusterip=None
# kubectl create service nodeport np --tcp=80:8080 --node-port=30080
# kubectl create service loadbalancer lb --tcp=443:8443
# kubectl create serviceaccount sa1
SECRET_GENERIC = bytes.fromhex(
    "6b3873000a0c0a0276311206536563726574122f0a180a017312001a0764656661756c7422002a003200380042001206"
    "0a016112016212090a05656d70747912001a001a002200"
)

CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d617012380a180a016312001a0764656661756c7422002a003200380042"
    "0012140a0a696e6465782e68746d6c120668656c6c6f0a12060a016b1201761a002200"
)

NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121c0a140a046c61623112001a0022002a0032003800420012001a"
    "020a001a002200"
)

DEPLOYMENT_REPLICAS_0 = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412d8010a300a086d792d6e67696e7812001a076465"
    "6661756c7422002a003200380042005a0f0a0361707012086d792d6e67696e78129501080012110a0f0a036170701208"
    "6d792d6e67696e781a760a210a0012001a0022002a003200380042005a0f0a0361707012086d792d6e67696e78125112"
    "330a056e67696e78120a6e67696e783a312e32372a00320a0a001000185022002a0042006a0072008001008801009001"
    "00a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c080010001800"
    "2000280038001a002200"
)

DEPLOYMENT_COMMAND = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412ba010a240a02643212001a0764656661756c7422"
    "002a003200380042005a090a03617070120264321283010801120b0a090a03617070120264321a6a0a1b0a0012001a00"
    "22002a003200380042005a090a0361707012026432124b122d0a056e67696e7812056e67696e781a05736c6565701a02"
    "31302a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2"
    "010022020a00280038001a0c0800100018002000280038001a002200"
)

SERVICE_CLUSTERIP = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512790a2c0a066d792d73766312001a0764656661756c7422002a003200"
    "380042005a0d0a0361707012066d792d73766312450a1b0a0738302d38303830120354435018502207080010903f1a00"
    "2800120d0a0361707012066d792d7376631a002209436c757374657249503a00420052005a00600068001a020a001a00"
    "2200"
)

SERVICE_HEADLESS = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512660a300a08686561646c65737312001a0764656661756c7422002a00"
    "3200380042005a0f0a036170701208686561646c657373122e120f0a036170701208686561646c6573731a044e6f6e65"
    "2209436c757374657249503a00420052005a00600068001a020a001a002200"
)

SERVICE_NODEPORT = bytes.fromhex(
    "6b3873000a0d0a027631120753657276696365126e0a240a026e7012001a0764656661756c7422002a00320038004200"
    "5a090a0361707012026e7012420a1d0a0738302d38303830120354435018502207080010903f1a002880eb0112090a03"
    "61707012026e701a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200"
)

SERVICE_LOADBALANCER = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512720a240a026c6212001a0764656661756c7422002a00320038004200"
    "5a090a0361707012026c6212460a1d0a083434332d38343433120354435018bb032207080010fb411a00280012090a03"
    "61707012026c621a00220c4c6f616442616c616e6365723a00420052005a00600068001a020a001a002200"
)

SERVICEACCOUNT = bytes.fromhex(
    "6b3873000a140a027631120e536572766963654163636f756e74121c0a1a0a0373613112001a0764656661756c742200"
    "2a003200380042001a002200"
)


def test_secret_bytes_become_base64_and_empty_values_stay():
    assert decode(SECRET_GENERIC) == {"apiVersion": "v1", "kind": "Secret",
                                      "metadata": {"name": "s", "namespace": "default"},
                                      "data": {"a": "Yg==", "empty": ""}}


def test_configmap_namespace_serviceaccount():
    assert decode(CONFIGMAP)["data"] == {"index.html": "hello\n", "k": "v"}
    assert decode(NAMESPACE) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab1"}}
    assert decode(SERVICEACCOUNT) == {"apiVersion": "v1", "kind": "ServiceAccount",
                                      "metadata": {"name": "sa1", "namespace": "default"}}


def test_deployment_keeps_pointer_zero_and_drops_go_zero_values():
    d = decode(DEPLOYMENT_REPLICAS_0)
    assert d["apiVersion"] == "apps/v1" and d["kind"] == "Deployment"
    assert d["metadata"] == {"name": "my-nginx", "namespace": "default", "labels": {"app": "my-nginx"}}
    assert d["spec"] == {"replicas": 0, "selector": {"matchLabels": {"app": "my-nginx"}}, "template": {
        "metadata": {"labels": {"app": "my-nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}
    assert "status" not in d
    c = decode(DEPLOYMENT_COMMAND)["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["sleep", "10"]


def test_services_int_or_string_and_node_port():
    assert decode(SERVICE_CLUSTERIP)["spec"] == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "my-svc"}, "type": "ClusterIP"}
    assert decode(SERVICE_HEADLESS)["spec"]["clusterIP"] == "None"
    assert decode(SERVICE_NODEPORT)["spec"]["ports"][0]["nodePort"] == 30080
    assert decode(SERVICE_LOADBALANCER)["spec"]["type"] == "LoadBalancer"


def _msg(*fields: tuple[int, bytes | int]) -> bytes:
    out = b""
    for num, value in fields:
        if isinstance(value, int):
            out += bytes([num << 3]) + _varint(value)
        else:
            out += bytes([(num << 3) | 2]) + _varint(len(value)) + value
    return out


def _varint(v: int) -> bytes:
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def _envelope(api_version: bytes, kind: bytes, raw: bytes) -> bytes:
    return b"k8s\x00" + _msg((1, _msg((1, api_version), (2, kind))), (2, raw))


def test_time_string_target_port_and_quantity():
    ts = _msg((1, 1_700_000_000))
    meta = _msg((1, b"x"), (8, ts))
    port = _msg((3, 80), (4, _msg((1, 1), (3, b"http"))))
    svc = _envelope(b"v1", b"Service", _msg((1, meta), (2, _msg((1, port)))))
    out = decode(svc)
    assert out["metadata"] == {"name": "x", "creationTimestamp": "2023-11-14T22:13:20Z"}
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": "http"}]
    qty = _msg((1, b"100m"))
    resources = _msg((1, _msg((1, b"cpu"), (2, qty))))
    container = _msg((1, b"c"), (2, b"img"), (8, resources))
    template = _msg((2, _msg((2, container))))
    dep = _envelope(b"apps/v1", b"Deployment", _msg((2, _msg((3, template)))))
    c = decode(dep)["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"limits": {"cpu": "100m"}}


@pytest.mark.parametrize("body", [
    b"{}", b"k8s\x00\xff", SERVICE_NODEPORT[:-7],
    _envelope(b"v1", b"Pod", b""),
    _envelope(b"v1", b"Secret", _msg((9, b"surprise"))),
])
def test_garbage_is_rejected(body):
    with pytest.raises(ApiError) as e:
        decode(body)
    assert e.value.code in (400, 415)


def test_schema_table_is_consistent():
    assert SCHEMA["Volume"][2].inline and SCHEMA["DeploymentSpec"][1].keep_zero
