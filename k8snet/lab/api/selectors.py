"""Label and field selectors, with the grammar of apimachinery's labels and fields packages.

Label selectors: comma-separated requirements, all of which must hold:
``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k``
(does not exist), ``k>1``, ``k<1``. Field selectors: comma-separated ``path=v``,
``path==v``, ``path!=v`` over the field labels each resource supports; an unknown
label is 400 ``field label not supported: <label>`` like the real server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import bad_request

Obj = dict[str, Any]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")
# Tokens: operators first (longest match), then identifiers (anything up to a delimiter).
_TOKEN_RE = re.compile(r"\s*(==|!=|=|!|\(|\)|,|>|<|[^\s=!(),<>]+)")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        try:  # gt / lt compare integers; a non-integer label never matches
            number, bound = int(str(value)), int(self.values[0])
        except ValueError:
            return False
        return present and (number > bound if self.op == ">" else number < bound)

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a nil LabelSelector object selects nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parses a ``labelSelector`` query string; 400 BadRequest on bad syntax."""
    if not text or not text.strip():
        return LabelSelector()
    tokens = _tokenize(text)
    reqs: list[Requirement] = []
    pos = 0

    def fail(why: str) -> Exception:
        return bad_request(f'unable to parse requirement: couldn\'t parse the selector string "{text}": {why}')

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("unexpected end of selector")
        pos += 1
        return tokens[pos - 1]

    while pos < len(tokens):
        tok = take()
        if tok == "!":
            reqs.append(_requirement(take(), "!", (), text))
        else:
            nxt = tokens[pos] if pos < len(tokens) else ","
            if nxt == ",":
                reqs.append(_requirement(tok, "exists", (), text))
            elif nxt in ("=", "==", "!=", ">", "<"):
                pos += 1
                value = tokens[pos] if pos < len(tokens) and tokens[pos] != "," else ""
                if value:
                    pos += 1
                op = "=" if nxt == "==" else nxt
                reqs.append(_requirement(tok, op, (value,), text))
            elif nxt in ("in", "notin"):
                pos += 1
                if take() != "(":
                    raise fail(f"found '{tokens[pos - 1]}', expected: '('")
                values: list[str] = []
                while True:
                    item = take()
                    if item == ")":
                        break
                    if item == ",":
                        continue
                    values.append(item)
                reqs.append(_requirement(tok, nxt, tuple(values), text))
            else:
                raise fail(f"found '{nxt}', expected: in, notin, =, ==, !=, gt, lt")
        if pos < len(tokens):
            if tokens[pos] != ",":
                raise fail(f"found '{tokens[pos]}', expected: ',' or 'end of string'")
            pos += 1
            if pos == len(tokens):
                raise fail("found '', expected: identifier")
    return LabelSelector(tuple(reqs))


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if not m:  # every character matches some token; kept as a guard
            raise bad_request(f'unable to parse requirement: couldn\'t parse the selector string "{text}"')
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def _requirement(key: str, op: str, values: tuple[str, ...], text: str) -> Requirement:
    if not _KEY_RE.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(f'unable to parse requirement: key: Invalid value: "{key}": name part must consist '
                          "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                          "alphanumeric character")
    if op in ("in", "notin") and not values:
        raise bad_request("unable to parse requirement: values: Invalid value: []: for 'in', 'notin' "
                          "operators, values set can't be empty")
    if op in (">", "<"):
        if len(values) != 1 or not re.fullmatch(r"-?\d+", values[0]):
            raise bad_request(f'unable to parse requirement: values[0]: Invalid value: "{values[0] if values else ""}"'
                              ": for 'Gt', 'Lt' operators, the value must be an integer")
    for v in values:
        if not _VALUE_RE.match(v):
            raise bad_request(f'unable to parse requirement: values[0][{key}]: Invalid value: "{v}": a valid '
                              "label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                              "'.', and must start and end with an alphanumeric character")
    return Requirement(key, op, tuple(sorted(set(values))) if op in ("in", "notin") else values)


# -- LabelSelector objects (spec.selector of Deployments, ReplicaSets) -------------------

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from_object(selector: Obj | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, ``{}`` everything."""
    if selector is None:
        return LabelSelector(nothing=True)
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = _OPERATORS.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(f'"{expr.get("operator")}" is not a valid label selector operator')
        values = tuple(sorted(str(v) for v in expr.get("values") or []))
        reqs.append(Requirement(str(expr.get("key", "")), op, values))
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def selector_string(selector: Obj | None) -> str:
    """The selector as a query string, e.g. for a Scale's ``status.selector``."""
    return str(selector_from_object(selector)) if selector is not None else ""


def match_labels(selector: Obj | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a LabelSelector object selects an object with these labels."""
    return selector_from_object(selector).matches(labels)


# -- field selectors ----------------------------------------------------------------------

_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")

# Field labels each resource supports beyond metadata.name and metadata.namespace
# (the real registries' GetAttrs/fieldLabelConversionFuncs), mapped to object paths.
FIELD_LABELS: dict[str, dict[str, str]] = {
    "pods": {f: f for f in ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                             "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                             "status.podIP", "status.nominatedNodeName")},
    "events": {**{f"involvedObject.{f}": f"involvedObject.{f}" for f in _INVOLVED},
               "reason": "reason", "reportingComponent": "reportingComponent",
               "source": "source.component", "type": "type"},
    "events.k8s.io/events": {**{f"regarding.{f}": f"regarding.{f}" for f in _INVOLVED},
                             "reason": "reason", "reportingController": "reportingController",
                             "type": "type"},
    "secrets": {"type": "type"},
    "namespaces": {"status.phase": "status.phase"},
    "nodes": {"spec.unschedulable": "spec.unschedulable"},
    "services": {"spec.clusterIP": "spec.clusterIP", "spec.type": "spec.type"},
    "apps/replicasets": {"status.replicas": "status.replicas"},
}


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    equal: bool
    value: str

    def matches(self, obj: Obj) -> bool:
        return (field_value(obj, self.path) == self.value) == self.equal


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Obj) -> bool:
        return all(r.matches(obj) for r in self.requirements)


def field_value(obj: Obj, path: str) -> str:
    """A field as the real server renders it for selectors: missing is "", booleans
    are "true"/"false"."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None, key: str) -> FieldSelector:
    """Parses a ``fieldSelector`` for resource ``key``; 400 on bad syntax or labels."""
    if not text or not text.strip():
        return FieldSelector()
    labels = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace",
              **FIELD_LABELS.get(key, {})}
    reqs = []
    for term in _split_unescaped(text, ","):
        m = re.match(r"^(.*?)(!=|==|=)(.*)$", term)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        label, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3).strip())
        if label not in labels:
            raise bad_request(f'field label not supported: {label}')
        reqs.append(FieldRequirement(labels[label], op != "!=", value))
    return FieldSelector(tuple(reqs))


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, escaped = [], "", False
    for ch in text:
        if escaped:
            cur += "\\" + ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur + ("\\" if escaped else ""))
    return [p for p in parts if p.strip()]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
