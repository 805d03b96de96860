"""Request bodies to JSON-shaped values, with the limits the real API server has.

kube-apiserver reads at most 3 MiB of a request body (``MaxRequestBodyBytes``,
413 ``Request entity too large: limit is 3145728``), decodes JSON with Go's
``encoding/json`` (no ``NaN``/``Infinity``; nesting beyond its max depth refused) and
YAML with go-yaml, which refuses "excessive aliasing" (the billion-laughs bomb) and
deep nesting. Python's parsers have none of these guards: ``json`` accepts ``NaN``
and raises ``RecursionError`` on deep documents, PyYAML shares aliased nodes, so a
600-byte bomb parses at once and then explodes when the object is copied or
serialised. This module puts the guards back, before anything walks the value.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import yaml

from ..errors import ApiError, bad_request

MAX_BODY_BYTES = 3 * 1024 * 1024
# Go's encoding/json stops at 10000 levels; the lab's Python code (copying, patching,
# validating) recurses over objects, so its limit is lower. Real objects nest < 30 deep.
MAX_DEPTH = 100
# go-yaml's excessive-aliasing rule (yaml.v2 decode.go allowedAliasRatio): a document
# may expand through aliases only up to a fraction of what it decodes.
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000


def too_large(limit: int = MAX_BODY_BYTES) -> ApiError:
    """413, as apiserver's limitedReadBody reports an over-long body."""
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def _too_deep() -> ApiError:
    return bad_request(f"exceeded max depth of {MAX_DEPTH}")


def _refuse_constant(name: str) -> Any:
    # Go's decoder sees NaN / Infinity as a syntax error.
    raise ValueError(f"invalid character '{name[0] if name[0] != '-' else name[1]}' looking for beginning of value")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """400 when ``value`` nests deeper than ``limit`` (iterative: no recursion to blow up)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children)


def parse_json(raw: bytes) -> Any:
    """A JSON body; 400 on syntax errors, NaN/Infinity and excessive depth."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as err:
        raise bad_request(f"couldn't get version/kind; json parse error: {err}") from None
    check_depth(value)
    return value


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_node_graph(root: yaml.Node) -> None:
    """Depth and alias expansion of a composed YAML document, without expanding it.

    PyYAML's composer makes an alias the very node object of its anchor, so the
    expanded size of a node is 1 + the expanded sizes of its children, each node
    computed once (memoised by identity)."""
    expanded: dict[int, int] = {}
    depth_of: dict[int, int] = {id(root): 1}
    order: list[yaml.Node] = []
    stack = [root]
    seen: set[int] = set()
    while stack:  # a DFS listing each distinct node once, parents before children
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        for child in _children(node):
            depth_of[id(child)] = max(depth_of.get(id(child), 0), depth_of[id(node)] + 1)
            if depth_of[id(child)] > MAX_DEPTH + 1:
                raise _too_deep()
            stack.append(child)
    for node in reversed(order):  # children before parents (a document is acyclic)
        expanded[id(node)] = 1 + sum(expanded.get(id(c), 1) for c in _children(node))
    total, distinct = expanded[id(root)], len(order)
    via_aliases = total - distinct
    if total > _ALIAS_RATIO_HIGH or (via_aliases > 100 and total > 1000
                                     and via_aliases / total > _allowed_alias_ratio(total)):
        raise bad_request("error converting YAML to JSON: yaml: document contains excessive aliasing")


def _json_scalar(value: Any) -> Any:
    """A YAML scalar as sigs.k8s.io/yaml hands it to the JSON decoder: timestamps as
    their text, no NaN/Infinity, nothing JSON cannot hold."""
    if isinstance(value, float) and not math.isfinite(value):
        go_text = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")  # Go's float formatting
        raise bad_request(f"error converting YAML to JSON: json: unsupported value: {go_text}")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat().replace("+00:00", "Z")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise bad_request(f"error converting YAML to JSON: unsupported value of type {type(value).__name__}")


def _to_json_shape(value: Any) -> Any:
    """Scalars converted in place, map keys as strings (iterative; sizes are bounded
    by :func:`_check_node_graph` already)."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(item, dict):
            if any(not isinstance(k, str) for k in item):
                fixed = {str(_json_scalar(k)).lower() if isinstance(k, bool) else str(_json_scalar(k)): v
                         for k, v in item.items()}
                item.clear()
                item.update(fixed)
            stack.extend((item, k) for k in item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
        else:
            parent[key] = _json_scalar(item)
    return root[0]


def parse_yaml(raw: bytes, what: str = "error converting YAML to JSON") -> Any:
    """One YAML document as JSON-shaped data; 400 on syntax errors, excessive
    aliasing, excessive depth and values JSON cannot hold (``.nan``, ``.inf``)."""
    try:
        loader = yaml.SafeLoader(raw.decode("utf-8"))
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_node_graph(node)
            value = loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise _too_deep() from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise bad_request(f"{what}: {err}") from None
    return _to_json_shape(value)
