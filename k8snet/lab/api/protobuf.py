"""Decoding kubectl's protobuf request bodies (``application/vnd.kubernetes.protobuf``).

kubectl's typed clients (``kubectl create secret|configmap|namespace|deployment|job|role|rolebinding|
service|serviceaccount``, 1.32 through 1.37 alike) send the 4-byte magic ``k8s\\0`` and a
``runtime.Unknown`` whose ``raw`` field is the object message. JSON field names
equal the proto field names, so a table of field numbers (:data:`SCHEMA`, from
k8s.io/api and apimachinery ``generated.proto``, release-1.32) turns the message
straight into the JSON-shaped object.

Go marshals every non-pointer field, zero or not (``clusterIP: ""``,
``nodePort: 0``, an empty ``creationTimestamp``), so zero values are dropped
unless the field is a pointer whose zero means something (marked ``*`` in the
table, e.g. ``DeploymentSpec.replicas`` for ``--replicas=0``).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

from k8snet.lab.contracts import Obj
from k8snet.lab.errors import ApiError, bad_request
from k8snet.lab.timefmt import from_unix, rfc3339

MAGIC = b"k8s\x00"

# message: number=[]name:type  ([] repeated, ~ inlined into the parent, * keep zero); a line
# ending in a comma continues on the next, indented one
SCHEMA_TEXT = """
Unknown: 1=typeMeta:TypeMeta, 2=raw:bytes, 3=contentEncoding:string, 4=contentType:string
TypeMeta: 1=apiVersion:string, 2=kind:string
ObjectMeta: 1=name:string, 2=generateName:string, 3=namespace:string, 4=selfLink:string, 5=uid:string,
    6=resourceVersion:string, 7=generation:int64, 8=creationTimestamp:Time, 9=deletionTimestamp:Time,
    10=deletionGracePeriodSeconds:int64*, 11=labels:map<string,string>, 12=annotations:map<string,string>,
    13=[]ownerReferences:OwnerReference, 14=[]finalizers:string, 17=[]managedFields:ManagedFieldsEntry
OwnerReference: 1=kind:string, 3=name:string, 4=uid:string, 5=apiVersion:string, 6=controller:bool*,
    7=blockOwnerDeletion:bool*
ManagedFieldsEntry: 1=manager:string, 2=operation:string, 3=apiVersion:string, 4=time:Time, 6=fieldsType:string,
    7=fieldsV1:FieldsV1, 8=subresource:string
FieldsV1: 1=raw:json
Namespace: 1=metadata:ObjectMeta, 2=spec:NamespaceSpec, 3=status:NamespaceStatus
NamespaceSpec: 1=[]finalizers:string
NamespaceStatus: 1=phase:string, 2=[]conditions:NamespaceCondition
NamespaceCondition: 1=type:string, 2=status:string, 4=lastTransitionTime:Time, 5=reason:string, 6=message:string
Secret: 1=metadata:ObjectMeta, 2=data:map<string,bytes>, 3=type:string, 4=stringData:map<string,string>,
    5=immutable:bool*
ConfigMap: 1=metadata:ObjectMeta, 2=data:map<string,string>, 3=binaryData:map<string,bytes>, 4=immutable:bool*
ServiceAccount: 1=metadata:ObjectMeta, 2=[]secrets:ObjectReference, 3=[]imagePullSecrets:LocalObjectReference,
    4=automountServiceAccountToken:bool*
ObjectReference: 1=kind:string, 2=namespace:string, 3=name:string, 4=uid:string, 5=apiVersion:string,
    6=resourceVersion:string, 7=fieldPath:string
LocalObjectReference: 1=name:string
Service: 1=metadata:ObjectMeta, 2=spec:ServiceSpec, 3=status:ServiceStatus
ServiceSpec: 1=[]ports:ServicePort, 2=selector:map<string,string>, 3=clusterIP:string, 4=type:string,
    5=[]externalIPs:string, 7=sessionAffinity:string, 8=loadBalancerIP:string, 9=[]loadBalancerSourceRanges:string,
    10=externalName:string, 11=externalTrafficPolicy:string, 12=healthCheckNodePort:int32,
    13=publishNotReadyAddresses:bool, 14=sessionAffinityConfig:SessionAffinityConfig, 17=ipFamilyPolicy:string,
    18=[]clusterIPs:string, 19=[]ipFamilies:string, 20=allocateLoadBalancerNodePorts:bool*,
    21=loadBalancerClass:string, 22=internalTrafficPolicy:string, 23=trafficDistribution:string
ServicePort: 1=name:string, 2=protocol:string, 3=port:int32, 4=targetPort:IntOrString, 5=nodePort:int32,
    6=appProtocol:string
SessionAffinityConfig: 1=clientIP:ClientIPConfig
ClientIPConfig: 1=timeoutSeconds:int32
ServiceStatus: 1=loadBalancer:LoadBalancerStatus, 2=[]conditions:Condition
LoadBalancerStatus: 1=[]ingress:LoadBalancerIngress
LoadBalancerIngress: 1=ip:string, 2=hostname:string, 3=ipMode:string, 4=[]ports:PortStatus
PortStatus: 1=port:int32, 2=protocol:string, 3=error:string
Condition: 1=type:string, 2=status:string, 3=observedGeneration:int64, 4=lastTransitionTime:Time, 5=reason:string,
    6=message:string
Deployment: 1=metadata:ObjectMeta, 2=spec:DeploymentSpec, 3=status:DeploymentStatus
DeploymentSpec: 1=replicas:int32*, 2=selector:LabelSelector, 3=template:PodTemplateSpec, 4=strategy:DeploymentStrategy,
    5=minReadySeconds:int32, 6=revisionHistoryLimit:int32*, 7=paused:bool, 9=progressDeadlineSeconds:int32*
DeploymentStrategy: 1=type:string, 2=rollingUpdate:RollingUpdateDeployment
RollingUpdateDeployment: 1=maxUnavailable:IntOrString, 2=maxSurge:IntOrString
DeploymentStatus: 1=observedGeneration:int64, 2=replicas:int32, 3=updatedReplicas:int32, 4=availableReplicas:int32,
    5=unavailableReplicas:int32, 6=[]conditions:DeploymentCondition, 7=readyReplicas:int32, 8=collisionCount:int32
DeploymentCondition: 1=type:string, 2=status:string, 4=reason:string, 5=message:string, 6=lastUpdateTime:Time,
    7=lastTransitionTime:Time
ReplicaSet: 1=metadata:ObjectMeta, 2=spec:ReplicaSetSpec, 3=status:ReplicaSetStatus
ReplicaSetSpec: 1=replicas:int32*, 2=selector:LabelSelector, 3=template:PodTemplateSpec, 4=minReadySeconds:int32
ReplicaSetStatus: 1=replicas:int32*, 2=fullyLabeledReplicas:int32, 3=observedGeneration:int64, 4=readyReplicas:int32,
    5=availableReplicas:int32
PodTemplateSpec: 1=metadata:ObjectMeta, 2=spec:PodSpec
Job: 1=metadata:ObjectMeta, 2=spec:JobSpec, 3=status:JobStatus
JobSpec: 1=parallelism:int32*, 2=completions:int32*, 3=activeDeadlineSeconds:int64*, 4=selector:LabelSelector,
    5=manualSelector:bool*, 6=template:PodTemplateSpec, 7=backoffLimit:int32*, 8=ttlSecondsAfterFinished:int32*,
    9=completionMode:string*, 10=suspend:bool*, 12=backoffLimitPerIndex:int32*, 13=maxFailedIndexes:int32*,
    14=podReplacementPolicy:string*, 15=managedBy:string*
JobStatus: 1=[]conditions:JobCondition, 2=startTime:Time, 3=completionTime:Time, 4=active:int32, 5=succeeded:int32,
    6=failed:int32, 7=completedIndexes:string, 9=ready:int32*, 11=terminating:int32*
JobCondition: 1=type:string, 2=status:string, 3=lastProbeTime:Time, 4=lastTransitionTime:Time, 5=reason:string,
    6=message:string
PodSpec: 1=[]volumes:Volume, 2=[]containers:Container, 3=restartPolicy:string, 4=terminationGracePeriodSeconds:int64*,
    5=activeDeadlineSeconds:int64, 6=dnsPolicy:string, 7=nodeSelector:map<string,string>, 8=serviceAccountName:string,
    9=serviceAccount:string, 10=nodeName:string, 11=hostNetwork:bool, 12=hostPID:bool, 13=hostIPC:bool,
    15=[]imagePullSecrets:LocalObjectReference, 16=hostname:string, 17=subdomain:string, 19=schedulerName:string,
    20=[]initContainers:Container, 21=automountServiceAccountToken:bool*, 22=[]tolerations:Toleration,
    23=[]hostAliases:HostAlias, 24=priorityClassName:string, 25=priority:int32*, 29=runtimeClassName:string,
    30=enableServiceLinks:bool*, 31=preemptionPolicy:string, 35=setHostnameAsFQDN:bool*, 37=hostUsers:bool*
Toleration: 1=key:string, 2=operator:string, 3=value:string, 4=effect:string, 5=tolerationSeconds:int64*
HostAlias: 1=ip:string, 2=[]hostnames:string
Container: 1=name:string, 2=image:string, 3=[]command:string, 4=[]args:string, 5=workingDir:string,
    6=[]ports:ContainerPort, 7=[]env:EnvVar, 8=resources:ResourceRequirements, 9=[]volumeMounts:VolumeMount,
    13=terminationMessagePath:string, 14=imagePullPolicy:string, 16=stdin:bool, 17=stdinOnce:bool, 18=tty:bool,
    19=[]envFrom:EnvFromSource, 20=terminationMessagePolicy:string, 24=restartPolicy:string
ContainerPort: 1=name:string, 2=hostPort:int32, 3=containerPort:int32, 4=protocol:string, 5=hostIP:string
EnvVar: 1=name:string, 2=value:string, 3=valueFrom:EnvVarSource
EnvVarSource: 1=fieldRef:ObjectFieldSelector, 3=configMapKeyRef:ConfigMapKeySelector, 4=secretKeyRef:SecretKeySelector
ObjectFieldSelector: 1=apiVersion:string, 2=fieldPath:string
ConfigMapKeySelector: 1=~localObjectReference:LocalObjectReference, 2=key:string, 3=optional:bool*
SecretKeySelector: 1=~localObjectReference:LocalObjectReference, 2=key:string, 3=optional:bool*
EnvFromSource: 1=prefix:string, 2=configMapRef:ConfigMapEnvSource, 3=secretRef:SecretEnvSource
ConfigMapEnvSource: 1=~localObjectReference:LocalObjectReference, 2=optional:bool*
SecretEnvSource: 1=~localObjectReference:LocalObjectReference, 2=optional:bool*
ResourceRequirements: 1=limits:map<string,Quantity>, 2=requests:map<string,Quantity>, 3=[]claims:ResourceClaim
ResourceClaim: 1=name:string, 2=request:string
VolumeMount: 1=name:string, 2=readOnly:bool, 3=mountPath:string, 4=subPath:string, 5=mountPropagation:string,
    6=subPathExpr:string, 7=recursiveReadOnly:string
Volume: 1=name:string, 2=~volumeSource:VolumeSource
VolumeSource: 1=hostPath:HostPathVolumeSource, 2=emptyDir:EmptyDirVolumeSource, 6=secret:SecretVolumeSource,
    19=configMap:ConfigMapVolumeSource
HostPathVolumeSource: 1=path:string, 2=type:string*
EmptyDirVolumeSource: 1=medium:string, 2=sizeLimit:Quantity
SecretVolumeSource: 1=secretName:string, 2=[]items:KeyToPath, 3=defaultMode:int32*, 4=optional:bool*
ConfigMapVolumeSource: 1=~localObjectReference:LocalObjectReference, 2=[]items:KeyToPath, 3=defaultMode:int32*,
    4=optional:bool*
KeyToPath: 1=key:string, 2=path:string, 3=mode:int32*
LabelSelector: 1=matchLabels:map<string,string>, 2=[]matchExpressions:LabelSelectorRequirement
LabelSelectorRequirement: 1=key:string, 2=operator:string, 3=[]values:string
Role: 1=metadata:ObjectMeta, 2=[]rules:PolicyRule
ClusterRole: 1=metadata:ObjectMeta, 2=[]rules:PolicyRule, 3=aggregationRule:AggregationRule
PolicyRule: 1=[]verbs:string, 2=[]apiGroups:string, 3=[]resources:string, 4=[]resourceNames:string,
    5=[]nonResourceURLs:string
AggregationRule: 1=[]clusterRoleSelectors:LabelSelector
RoleBinding: 1=metadata:ObjectMeta, 2=[]subjects:Subject, 3=roleRef:RoleRef
ClusterRoleBinding: 1=metadata:ObjectMeta, 2=[]subjects:Subject, 3=roleRef:RoleRef
Subject: 1=kind:string, 2=apiGroup:string, 3=name:string, 4=namespace:string
RoleRef: 1=apiGroup:string, 2=kind:string, 3=name:string
SelfSubjectAccessReview: 1=metadata:ObjectMeta, 2=spec:SelfSubjectAccessReviewSpec, 3=status:SubjectAccessReviewStatus
SelfSubjectAccessReviewSpec: 1=resourceAttributes:ResourceAttributes, 2=nonResourceAttributes:NonResourceAttributes
SubjectAccessReview: 1=metadata:ObjectMeta, 2=spec:SubjectAccessReviewSpec, 3=status:SubjectAccessReviewStatus
LocalSubjectAccessReview: 1=metadata:ObjectMeta, 2=spec:SubjectAccessReviewSpec, 3=status:SubjectAccessReviewStatus
SubjectAccessReviewSpec: 1=resourceAttributes:ResourceAttributes, 2=nonResourceAttributes:NonResourceAttributes,
    3=user:string, 4=[]groups:string, 6=uid:string
ResourceAttributes: 1=namespace:string, 2=verb:string, 3=group:string, 4=version:string, 5=resource:string,
    6=subresource:string, 7=name:string
NonResourceAttributes: 1=path:string, 2=verb:string
SubjectAccessReviewStatus: 1=allowed:bool, 2=reason:string, 3=evaluationError:string, 4=denied:bool
SelfSubjectRulesReview: 1=metadata:ObjectMeta, 2=spec:SelfSubjectRulesReviewSpec, 3=status:SubjectRulesReviewStatus
SelfSubjectRulesReviewSpec: 1=namespace:string
SubjectRulesReviewStatus: 3=incomplete:bool, 4=evaluationError:string
SelfSubjectReview: 1=metadata:ObjectMeta, 2=status:SelfSubjectReviewStatus
SelfSubjectReviewStatus: 1=userInfo:UserInfo
UserInfo: 1=username:string, 2=uid:string, 3=[]groups:string
TokenRequest: 1=metadata:ObjectMeta, 2=spec:TokenRequestSpec, 3=status:TokenRequestStatus
TokenRequestSpec: 1=[]audiences:string, 3=boundObjectRef:BoundObjectReference, 4=expirationSeconds:int64*
BoundObjectReference: 1=kind:string, 2=apiVersion:string, 3=name:string, 4=uid:string
TokenRequestStatus: 1=token:string, 2=expirationTimestamp:Time
"""

_SCALARS = {"string", "bytes", "bool", "int32", "int64", "Time", "IntOrString", "Quantity", "json"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # a scalar of _SCALARS, a message name, or "map"
    repeated: bool = False
    inline: bool = False
    keep_zero: bool = False
    value_type: str = ""  # for maps


def _parse_schema(text: str) -> dict[str, dict[int, Field]]:
    schema: dict[str, dict[int, Field]] = {}
    entry = re.compile(r"(\d+)=(\[\])?(~)?(\w*):(map<string,(\w+)>|\w+)(\*)?$")
    for line in re.sub(r",\n\s+", ", ", text.strip()).splitlines():
        message, _, body = line.partition(":")
        fields = {}
        for item in re.split(r",\s+(?=\d+=)", body.strip()):
            m = entry.match(item.strip())
            if not m:
                raise ValueError(f"bad schema entry {item!r} in {message}")
            num, rep, inline, name, typ, value_type, keep = m.groups()
            fields[int(num)] = Field(name, "map" if value_type else typ, bool(rep), bool(inline), bool(keep),
                                     value_type or "")
        schema[message] = fields
    for message, fields in schema.items():
        for f in fields.values():
            for t in (f.type, f.value_type):
                if t and t != "map" and t not in _SCALARS and t not in schema:
                    raise ValueError(f"{message}.{f.name}: unknown type {t}")
    return schema


SCHEMA = _parse_schema(SCHEMA_TEXT)
_KINDS = {"Namespace", "Secret", "ConfigMap", "ServiceAccount", "Service", "Deployment", "ReplicaSet", "Job",
          "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "SelfSubjectAccessReview",
          "SubjectAccessReview", "LocalSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview",
          "TokenRequest"}


class _Garbage(Exception):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise _Garbage("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) with value an int or bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise _Garbage("truncated field")
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wire == 5:
            value, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise _Garbage(f"unsupported wire type {wire}")
        if num == 0:
            raise _Garbage("field number 0")
        yield num, wire, value


def _int(v: int | bytes) -> int:
    """A varint or fixed field's value; a length-delimited one here is garbage."""
    if isinstance(v, bytes):
        raise _Garbage("a length-delimited field where a number belongs")
    return v


def _bytes(v: int | bytes) -> bytes:
    """A length-delimited field's value; a number here is garbage."""
    if not isinstance(v, bytes):
        raise _Garbage("a number where a length-delimited field belongs")
    return v


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _time(buf: bytes) -> str | None:
    parts = {n: v for n, _, v in _fields(buf)}
    seconds = _signed(_int(parts.get(1, 0)))
    if seconds == 0:
        return None  # Go's zero time: unset
    return rfc3339(from_unix(seconds))


def _int_or_string(buf: bytes) -> int | str:
    parts = {n: v for n, _, v in _fields(buf)}
    if parts.get(1, 0) == 1:
        return bytes(parts.get(3, b"")).decode()
    return _int32(_int(parts.get(2, 0)))


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _scalar(typ: str, wire: int, value: Any) -> Any:
    if typ in ("int32", "int64", "bool") and wire != 0:
        raise _Garbage(f"{typ} with wire type {wire}")
    if typ not in ("int32", "int64", "bool") and wire != 2:
        raise _Garbage(f"{typ} with wire type {wire}")
    if typ == "string":
        return bytes(value).decode("utf-8")
    if typ == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if typ == "bool":
        return bool(value)
    if typ == "int32":
        return _int32(value)
    if typ == "int64":
        return _signed(value)
    if typ == "Time":
        return _time(value)
    if typ == "IntOrString":
        return _int_or_string(value)
    if typ == "Quantity":
        return bytes(next((v for n, _, v in _fields(value) if n == 1), b"")).decode()
    if typ == "json":
        return json.loads(bytes(value)) if value else {}
    raise AssertionError(typ)


def _is_zero(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False or value == {} or value == []


def _map_entry(buf: bytes, value_type: str) -> tuple[str, Any]:
    key, value = "", None
    for n, wire, v in _fields(buf):
        if n == 1:
            key = _scalar("string", wire, v)
        elif n == 2:
            value = _scalar(value_type, wire, v) if value_type in _SCALARS else _message(value_type, _bytes(v))
    if value is None:  # proto3 omits an empty value
        value = {"bool": False, "int32": 0, "int64": 0}.get(value_type, "" if value_type in _SCALARS else {})
    return key, value


def _message(name: str, buf: bytes) -> dict[str, Any]:
    spec = SCHEMA[name]
    out: dict[str, Any] = {}
    for num, wire, value in _fields(buf):
        f = spec.get(num)
        if f is None:
            # Non-pointer fields we do not know arrive as zero values; anything else
            # would be silently lost, so refuse it.
            if value in (0, b""):
                continue
            raise _Garbage(f"unsupported field {num} in {name}")
        if f.type == "map":
            if wire != 2:
                raise _Garbage(f"map {name}.{f.name} with wire type {wire}")
            k, v = _map_entry(_bytes(value), f.value_type)
            out.setdefault(f.name, {})[k] = v
            continue
        if f.type in _SCALARS:
            decoded = _scalar(f.type, wire, value)
        elif wire != 2:
            raise _Garbage(f"message {name}.{f.name} with wire type {wire}")
        else:
            decoded = _message(f.type, _bytes(value))
        if f.inline:
            out.update(decoded)
        elif f.repeated:
            out.setdefault(f.name, []).append(decoded)
        else:
            out[f.name] = decoded
    # Drop Go's zero values (see module docstring); map values are kept as sent.
    return {k: v for k, v in out.items() if not _is_zero(v) or _keep_zero(spec, k)}


def _keep_zero(spec: dict[int, Field], name: str) -> bool:
    return any(f.name == name and f.keep_zero for f in spec.values())


def decode(body: bytes) -> Obj:
    """The JSON-shaped object of a ``k8s\\0`` runtime.Unknown body; 400 on garbage."""
    if not body.startswith(MAGIC):
        raise bad_request("the body of the request was not a Kubernetes protobuf message (missing k8s\\x00 magic)")
    try:
        envelope = {num: value for num, _, value in _fields(body[len(MAGIC):])}
        type_meta = {n: bytes(v).decode() for n, _, v in _fields(_bytes(envelope.get(1, b"")))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        if envelope.get(3):
            raise bad_request(f"unsupported protobuf content encoding {bytes(envelope[3]).decode()!r}")
        if kind not in _KINDS:
            raise ApiError(415, "UnsupportedMediaType",
                           f"protobuf decoding of {api_version}/{kind} is not supported; send JSON")
        obj = _message(kind, bytes(envelope.get(2, b"")))
    except (_Garbage, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise bad_request(f"unable to decode protobuf body: {e}") from e
    return {"apiVersion": api_version, "kind": kind, **obj}
